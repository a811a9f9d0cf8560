"""The ngspice back end through the worker pool: real libngspice, results against closed-form circuit theory."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cosim.spice import (
    Ac,
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
from cosim.spice.ngspice import CONVERGENCE_POLICY, find_library, render_deck

THERMAL_VOLTAGE_27C = 1.380649e-23 * 300.15 / 1.602176634e-19
"""kT/q at ngspice's default 27 degC, V."""
GMIN = 1e-12
"""SPICE's default minimum junction conductance, S."""

RC_LOWPASS = "V1 in 0 dc 0 ac 1 pulse(0 1 0 1n 1n 1 2)\nR1 in out {r}\nC1 out 0 {c}"


def rc_job(r: float = 1e3, c: float = 1e-6, **job) -> SimJob:
    """RC low-pass driven by a 1 V step at t = 0 (1 ns rise); R in ohm, C in F."""
    circuit = Circuit(RC_LOWPASS, title="rc low-pass", parameters=(("r", r), ("c", c)))
    return SimJob(circuit, job.pop("analysis", Tran(step=r * c / 100, stop=5 * r * c)), **job)


def test_rc_transient_matches_analytic_charging_curve():
    r, c = 1e3, 1e-6
    result = run(rc_job(r, c, outputs=("v(out)",)))
    assert result.axis == "time" and set(result.vectors) == {"v(out)", "time"}
    t = result.x
    assert t[-1] == pytest.approx(5 * r * c)
    analytic = np.where(t > 1e-9, 1 - np.exp(-(t - 0.5e-9) / (r * c)), 0.0)
    assert np.max(np.abs(result["v(out)"] - analytic)) < 0.005 * 1.0  # 0.5 % of the 1 V step


def test_diode_dc_sweep_follows_shockley_with_model_is_and_n():
    saturation, emission = 1e-14, 1.5
    circuit = Circuit(f"V1 a 0 0\nD1 a 0 dmod\n.model dmod d(is={saturation} n={emission})")
    result = run(SimJob(circuit, DcSweep(source="V1", start=0.0, stop=0.8, step=0.01)))
    voltage, current = result.x, -result["i(v1)"]  # i(v1) flows into V1's + terminal: minus the diode current
    assert result.axis == "v1" and voltage[0] == 0.0 and voltage[-1] == pytest.approx(0.8)
    assert np.all(np.diff(current) > 0)
    # Shockley plus the GMIN conductance SPICE puts across every junction
    model = saturation * np.expm1(voltage / (emission * THERMAL_VOLTAGE_27C)) + GMIN * voltage
    measurable = voltage >= 0.1  # above 1e-13 A, where ngspice's 1 pA absolute tolerance is loose
    np.testing.assert_allclose(current[measurable], model[measurable], rtol=1e-3)
    exponential = (voltage >= 0.3) & (voltage <= 0.7)  # GMIN's 1 pA/V negligible: pure exponential
    slope = np.gradient(np.log(current[exponential]), voltage[exponential])
    np.testing.assert_allclose(slope, 1 / (emission * THERMAL_VOLTAGE_27C), rtol=0.02)


def test_ac_rc_lowpass_corner_at_one_over_two_pi_rc():
    r, c = 1e3, 1e-6
    result = run(rc_job(r, c, analysis=Ac(points_per_decade=100, start=10, stop=10e3), outputs=("v(out)",)))
    assert result.axis == "frequency" and result.x.dtype == np.float64
    assert np.iscomplexobj(result["v(out)"])
    gain_db = 20 * np.log10(np.abs(result["v(out)"]))
    below = np.nonzero(gain_db < -10 * math.log10(2))[0][0]
    log_f = np.interp(-10 * math.log10(2), gain_db[[below, below - 1]], np.log10(result.x[[below, below - 1]]))
    assert 10**log_f == pytest.approx(1 / (2 * math.pi * r * c), rel=0.01)


def test_operating_point_gives_0d_vectors_and_provenance():
    job = SimJob(Circuit("V1 in 0 2\nR1 in out 1k\nR2 out 0 3k"), Op(), seed=7, name="divider")
    result = run(job)
    assert result.axis is None and result.x is None
    assert result["v(out)"].shape == () and float(result["V(OUT)"]) == pytest.approx(1.5)
    assert float(result["i(v1)"]) == pytest.approx(-0.5e-3)
    provenance = result.provenance
    assert provenance["simulator"] == "ngspice" and provenance["simulator_version"].startswith("3")
    assert provenance["netlist_sha256"] == job.circuit.content_hash() and provenance["job_key"] == job.key()
    assert provenance["seed"] == 7 and provenance["job_name"] == "divider" and provenance["wall_s"] > 0
    assert provenance["convergence_attempt"] == 1 and provenance["host"]


def test_includes_parameters_and_outputs(tmp_path: Path):
    models = tmp_path / "divider.lib"
    models.write_text(".subckt half a b\nR1 a b {rtop}\nR2 b 0 {rtop}\n.ends\n")
    circuit = Circuit("V1 in 0 1\nX1 in mid half", includes=(str(models),), parameters=(("rtop", 2e3),))
    result = run(SimJob(circuit, Op(), outputs=("v(mid)", "@r.x1.r1[i]")))
    assert set(result.vectors) == {"v(mid)", "@r.x1.r1[i]"}
    assert float(result["v(mid)"]) == pytest.approx(0.5) and float(result["@r.x1.r1[i]"]) == pytest.approx(0.25e-3)


def test_missing_outputs_are_named():
    circuit = Circuit("V1 in 0 1\nR1 in 0 1k")
    with pytest.raises(NetlistError, match=r"v\(nowhere\)"):
        run(SimJob(circuit, Op(), outputs=("v(in)", "v(nowhere)")))
    with pytest.raises(NetlistError, match="none of the requested outputs") as caught:
        run(SimJob(circuit, Op(), outputs=("v(nowhere)",)))
    assert caught.value.line == ".save v(nowhere)"


@pytest.mark.parametrize("body, reason", [
    ("V1 in 0 1\nR1 in out {rundefined}\nR2 out 0 1k", "Undefined parameter"),
    ("V1 in 0 1\nB1 in out I=v(in)*+*2\nR2 out 0 1k", "parameter value out of range"),
])
def test_malformed_netlist_names_the_line(body, reason):
    with pytest.raises(NetlistError, match=reason) as caught:
        run(SimJob(Circuit(body), Op(), name="malformed"))
    assert "netlist line 2" in str(caught.value)
    assert caught.value.line.lower().replace(" ", "").startswith(body.splitlines()[1][:2].lower())


def test_unknown_model_and_subcircuit_are_named():
    with pytest.raises(NetlistError, match="unknown model 'nosuchdiode'") as caught:
        run(SimJob(Circuit("V1 in 0 1\nD1 in 0 nosuchdiode"), Op()))
    assert caught.value.line == "D1 in 0 nosuchdiode"
    with pytest.raises(NetlistError, match="unknown subcircuit in netlist line 2") as caught:
        run(SimJob(Circuit("V1 in 0 1\nX1 in 0 nosuchsubckt"), Op()))
    assert "nosuchsubckt" in caught.value.line


def test_non_convergence_tries_the_policy_then_reports_the_log():
    contradictory = Circuit("V1 a 0 1\nV2 a 0 2")  # two ideal sources forcing one node to 1 V and 2 V
    with pytest.raises(SimulationError) as caught:
        run(SimJob(contradictory, Op(), name="contradictory"))
    message = str(caught.value)
    assert "did not converge" in message and "contradictory" in message
    assert all(f"{n}: {attempt.name}" in message for n, attempt in enumerate(CONVERGENCE_POLICY, 1))
    assert "simulation(s) aborted" in caught.value.log_tail


def test_convergence_attempts_change_the_deck():
    job = rc_job()
    decks = [render_deck(job, attempt).text for attempt in CONVERGENCE_POLICY]
    assert len(set(decks)) == len(CONVERGENCE_POLICY)
    tran = next(line.split() for line in decks[2].splitlines() if line.startswith(".tran"))
    assert "method=gear" in decks[2]
    assert float(tran[4]) == pytest.approx(min(job.analysis.step, job.analysis.stop / 50) / 10)


@pytest.mark.parametrize("body, refused", [
    ("V1 in 0 1\n.control\nshell rm -rf /tmp/x\n.endc", "'shell'"),
    ("V1 in 0 1\n.control\nset x = 1\n.endc", r"\.control section"),
    ("V1 in 0 1\n.control\nwrdata /tmp/out v(in)\n.endc", "'wrdata'"),
    ("V1 in 0 1\n.include /etc/passwd", r"\.include"),
    ("V1 in 0 1\n.lib /etc/models.lib typical", r"\.lib"),
    ("V1 in 0 1\nA1 out src\n.model src filesource(file=\"/etc/shadow\")", "model reading a file"),
])
def test_unsafe_netlists_are_refused_before_running(body, refused):
    with pytest.raises(NetlistError, match=refused) as caught:
        run(SimJob(Circuit(body), Op()))
    assert "allow_shell" in str(caught.value) and caught.value.line


def test_refusal_also_covers_included_files(tmp_path: Path):
    sneaky = tmp_path / "sneaky.lib"
    sneaky.write_text("R9 a 0 1k\n.control\n+\nshell touch /tmp/pwned\n.endc\n")
    with pytest.raises(NetlistError, match=f"{sneaky}:4"):
        render_deck(SimJob(Circuit("V1 a 0 1", includes=(str(sneaky),)), Op()))


def test_job_fields_cannot_smuggle_in_cards():
    control = "\n.control\nshell id\n.endc\n*"
    with pytest.raises(NetlistError, match="single words"):
        render_deck(SimJob(Circuit("V1 in 0 1"), Op(), outputs=("v(in)" + control,)))
    with pytest.raises(NetlistError, match="'shell'"):
        render_deck(SimJob(Circuit("V1 in 0 1"), DcSweep(source="V1" + control, start=0, stop=1, step=0.1)))
    with pytest.raises(NetlistError, match="not a number"):
        render_deck(SimJob(Circuit("V1 in 0 {x}", parameters=(("x", "1" + control),)), Op()))
    with pytest.raises(NetlistError, match="not a valid SPICE identifier"):
        render_deck(SimJob(Circuit("V1 in 0 {x}", parameters=(("x=1" + control, 1.0),)), Op()))


def test_allow_shell_runs_control_sections(tmp_path: Path):
    marker = tmp_path / "marker.txt"
    job = SimJob(Circuit(f"V1 in 0 1\nR1 in 0 1k\n.control\nshell touch {marker}\n.endc"), Op(), allow_shell=True)
    run(job)
    assert marker.exists()


def test_body_must_not_carry_its_own_analysis_or_end():
    with pytest.raises(NetlistError, match="netlist line 3"):
        render_deck(SimJob(Circuit("V1 in 0 1\nR1 in 0 1k\n.tran 1u 1m\n.end"), Op()))


def test_missing_library_says_what_to_install(monkeypatch):
    monkeypatch.setenv("NGSPICE_LIBRARY_PATH", "/nonexistent/libngspice.so.0")
    assert find_library() is None
    pool = WorkerPool()  # a fresh worker inherits the environment above
    try:
        with pytest.raises(SimulatorNotFoundError, match="apt-get install libngspice0"):
            pool.run(rc_job())
    finally:
        pool.close()


def test_verilog_a_on_debian_ngspice_points_to_vacask(tmp_path: Path):
    resistor = Path(__file__).parent / "va" / "va_resistor.va"
    job = SimJob(Circuit("V1 in 0 1\nN1 in 0 res", verilog_a=(str(resistor),)), Op())
    with pytest.raises(SimulatorNotFoundError, match="simulator='vacask'"):
        run(job)
