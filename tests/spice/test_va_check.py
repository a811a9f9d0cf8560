"""`cosim check-va` (cosim.spice.va_check) with the real openvaf-r and VACASK.

Each model in va_pitfalls/ marks the findings it must give with `// expect: severity:kind` on their lines; the
check must give exactly those. What the checker says OpenVAF does is checked too: the kinds it calls refused
make openvaf-r fail at one of their lines, the others compile, and VACASK runs show the wrong physics.
"""
from __future__ import annotations

import re
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cosim.cli import main
from cosim.spice import Circuit, NetlistError, SimJob, Tran, run
from cosim.spice.elements import Pwl, VerilogAInstance, VoltageSource
from cosim.spice.va_check import VerilogAPitfallWarning, VerilogASyntaxError, check_va
from cosim.spice.veriloga import compile_va

PITFALLS = Path(__file__).parent / "va_pitfalls"
VA = Path(__file__).parent / "va"
MODELS = Path(__file__).parents[2] / "models"
EXPECT = re.compile(r"//\s*expect:\s*(.+)$")
REFUSED = {"random", "array", "event", "event-or", "unsupported-function", "macro", "include"}
"""Kinds of finding for which openvaf-r refuses the source; with only other kinds it compiles."""
R_OHM = 1e3
"""Resistance parameter `r` of the pitfall models (their default)."""

pytestmark = pytest.mark.filterwarnings("ignore::cosim.spice.va_check.VerilogAPitfallWarning")


def expected_findings(model: Path) -> Counter:
    """(file name, line, severity, kind) of the `// expect:` marks in a model and the local files it includes."""
    included = re.findall(r'`include\s+"([^"]+)"', model.read_text())
    marks: Counter = Counter()
    for file in [model, *(PITFALLS / name for name in included if (PITFALLS / name).is_file())]:
        for number, text in enumerate(file.read_text().splitlines(), start=1):
            if match := EXPECT.search(text):
                for item in match[1].split(","):
                    severity, kind = item.strip().split(":")
                    marks[(file.name, number, severity, kind)] += 1
    return marks


def found(model: Path) -> Counter:
    return Counter((Path(f.file).name, f.line, f.severity, f.kind) for f in check_va(model))


@pytest.mark.parametrize("model", sorted(PITFALLS.glob("*.va")), ids=lambda path: path.stem)
def test_each_pitfall_is_found_on_its_line(model):
    assert found(model) == expected_findings(model)


def test_state_on_an_internal_node_is_clean():
    assert check_va(PITFALLS / "state_node.va") == ()


@pytest.mark.parametrize("model", sorted(MODELS.glob("*.va")), ids=lambda path: path.stem)
def test_shipped_models_are_clean(model):
    assert check_va(model) == ()


@pytest.mark.parametrize("model", sorted(PITFALLS.glob("*.va")), ids=lambda path: path.stem)
def test_openvaf_refuses_exactly_what_the_check_calls_refused(model, tmp_path, monkeypatch):
    monkeypatch.setenv("COSIM_CACHE", str(tmp_path))
    refused = {(Path(f.file).name, f.line) for f in check_va(model) if f.kind in REFUSED}
    if not refused:
        assert compile_va(model).is_file()
        return
    with pytest.raises(NetlistError) as caught:
        compile_va(model)
    file, line = caught.value.line.split(":")[:2]  # openvaf-r's first error
    assert (Path(file).name, int(line)) in refused


TRIANGLE = Pwl(((0.0, 0.0), (1e-3, 1.0), (2e-3, 0.0), (3e-3, -1.0), (4e-3, 0.0)))
"""0 -> 1 V -> 0 -> -1 V -> 0, 1 ms per segment: sets the switch models, then resets them."""


def conductance(model: str, module: str, waveform: Pwl, stop: float, times: list[float]) -> np.ndarray:
    """I/V (S) of a two-terminal pitfall model driven by `waveform` in a VACASK transient, at `times` (s)."""
    circuit = Circuit(netlist="", verilog_a=(str(PITFALLS / model),), elements=(
        VoltageSource("V1", "a", "0", waveform=waveform), VerilogAInstance("N1", ("a", "0"), module)))
    result = run(SimJob(circuit, Tran(step=1e-5, stop=stop, max_step=1e-5), simulator="vacask", name=module))
    return np.interp(times, result.x, -result["i(v1)"]) / np.interp(times, result.x, result["v(a)"])


def test_state_kept_in_a_variable_gives_no_hysteresis_in_vacask():
    at_0v2 = [0.2e-3, 1.8e-3]  # 0.2 V before the set (rising) and after it (falling)
    g_variable = conductance("state_variable.va", "state_variable", TRIANGLE, 4e-3, at_0v2)
    g_node = conductance("state_node.va", "state_node", TRIANGLE, 4e-3, at_0v2)
    assert g_node == pytest.approx([1e-6, 1e-3], rel=1e-2)  # on the internal node the switch remembers the set
    assert g_variable == pytest.approx([1e-6, 1e-6], rel=1e-2)  # in a variable it forgot it: no hysteresis


@pytest.mark.parametrize("model, module", [("initial_step.va", "pitfall_initial_step"),
                                           ("final_step.va", "pitfall_final_step")])
def test_event_bodies_run_at_every_evaluation_in_vacask(model, module):
    # By the language the conductance is 2/r (initial_step: v0 keeps V(0) = 0) and 1/r (final_step: the gain is
    # 3 only at the end); the bodies running at every evaluation give 3/r for both (see the models' comments).
    ramp = Pwl(((0.0, 0.0), (1e-3, 0.4)))
    g = conductance(model, module, ramp, 1e-3, [0.25e-3, 0.5e-3, 1e-3])
    assert g == pytest.approx([3 / R_OHM] * 3, rel=1e-6)


def test_bound_step_is_honoured_by_vacask():
    circuit = Circuit(netlist="", verilog_a=(str(PITFALLS / "bound_step.va"),), elements=(
        VoltageSource("V1", "a", "0", waveform=Pwl(((0.0, 0.0), (1e-4, 1.0)))),
        VerilogAInstance("N1", ("a", "0"), "pitfall_bound_step")))
    result = run(SimJob(circuit, Tran(step=2e-5, stop=1e-4), simulator="vacask", name="bound_step"))
    assert np.diff(result.x).max() == pytest.approx(1e-6, rel=1e-6)  # the model's bound (5e-6 s without it)


def test_compile_va_warns_once_per_source_content(tmp_path, monkeypatch):
    monkeypatch.setenv("COSIM_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "state_variable.va"
    source.write_text((PITFALLS / "state_variable.va").read_text() + f"// {tmp_path}: content of its own\n")
    with pytest.warns(VerilogAPitfallWarning) as first:
        compile_va(source)
    messages = [str(w.message) for w in first if w.category is VerilogAPitfallWarning]
    assert messages == [str(finding) for finding in check_va(source)]
    assert messages[0].startswith(f"{source}:20: error: 'on' is read here before it is assigned")
    with warnings.catch_warnings(record=True) as second:
        warnings.simplefilter("always")
        compile_va(source)
    assert not [w for w in second if w.category is VerilogAPitfallWarning]


def test_compile_va_says_when_it_could_not_check(tmp_path, monkeypatch):
    monkeypatch.setenv("COSIM_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "broken.va"
    source.write_text((VA / "va_syntax_error.va").read_text() + f"// {tmp_path}: content of its own\n")
    with pytest.warns(VerilogAPitfallWarning, match=r"could not read .*broken.va:10: expected ';'"), \
            pytest.raises(NetlistError):
        compile_va(source)


def test_unreadable_source_names_file_and_line():
    with pytest.raises(VerilogASyntaxError, match=r"va_syntax_error.va:10: expected ';', found 'I'"):
        check_va(VA / "va_syntax_error.va")
    with pytest.raises(FileNotFoundError, match="no_such_model.va"):
        check_va(VA / "no_such_model.va")


def test_cli_exit_status(capsys):
    assert main(["check-va", str(PITFALLS / "state_node.va"), *map(str, sorted(MODELS.glob("*.va")))]) == 0
    assert main(["check-va", str(PITFALLS / "bound_step.va")]) == 0  # warnings only
    assert f"{PITFALLS / 'bound_step.va'}:11: warning: $bound_step" in capsys.readouterr().out
    assert main(["check-va", str(PITFALLS / "state_node.va"), str(PITFALLS / "state_variable.va")]) == 1
    out = capsys.readouterr().out
    assert f"{PITFALLS / 'state_variable.va'}:20: error: 'on' is read here" in out and " Fix: keep the state" in out
    assert main(["check-va", str(VA / "no_such_model.va"), str(PITFALLS / "state_variable.va")]) == 2
    assert "no_such_model.va does not exist" in capsys.readouterr().err


def test_cli_as_a_command():
    done = subprocess.run([sys.executable, "-m", "cosim", "check-va", str(PITFALLS / "events.va")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "events.va:13: error: @(cross(...)): openvaf-r refuses" in done.stdout
    assert done.stdout.strip().endswith("6 error(s), 0 warning(s) in 1 file(s) checked")
