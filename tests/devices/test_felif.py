"""FeLIF neuron circuit: generated files, parameter checks, REFERENCE.md acceptance in the ideal limit (first
crossings, spike steps, f-I curve), the trace against cosim.felif.physics, Verilog-A on VACASK against ngspice, the
standalone testbench deck and the characterisation. Real simulators throughout."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from cosim.devices import felif
from cosim.devices.fecap import FeCapParameters, nrmse, sample_devices
from cosim.devices.felif import (
    REFERENCE_FIRST_CROSSING_S,
    FeLIFCircuitParameters,
    current_step_job,
    polarisation,
    result_spikes,
    spike_steps,
)
from cosim.felif import physics
from cosim.felif.physics import FeLIFParameters
from cosim.spice import Circuit, DcSweep, SimJob, run, run_many

REFERENCE = FeLIFCircuitParameters.reference()


@pytest.mark.parametrize("n", felif.SHIPPED_DOMAIN_COUNTS)
def test_neuron_files_are_generated(n):
    paths = felif.neuron_files(n)
    assert paths["ngspice"].read_text() == felif.render_ngspice(n), "run python -m cosim.devices.felif"
    assert paths["vacask"].read_text() == felif.render_vacask(n), "run python -m cosim.devices.felif"
    assert felif.CONTROLLER_VA.read_text() == felif.render_controller_va(), "run python -m cosim.devices.felif"


@pytest.mark.parametrize("change, message", [
    (dict(v_erase=-1.0), "v_erase < v_reset"),
    (dict(fecap=FeCapParameters(physics=FeLIFParameters(v_reset=3.0))), "v_reset < v_thr"),
    (dict(t_erase=2e-3), "t_erase"),
    (dict(r_on=0.0), "r_on"),
    (dict(tau_q=1e-6), "tau_q"),
    (dict(t_clk=-1e-3), "t_clk"),
    (dict(fecap=FeCapParameters(physics=FeLIFParameters(t_fe=-1e-9))), "t_fe"),
    (dict(fecap=FeCapParameters(physics=FeLIFParameters(p_s=0.0))), "p_s"),
    (dict(v_dd=2.0), "v_thr < v_dd"),
    (dict(v_ss=-3.9), "v_ss < v_erase"),
    (dict(i_sd=0.0), "i_sd"),
    (dict(r_sd=-1.0), "r_sd"),
    (dict(v_ss=-4.2), "v_min = -5.0049, v_max = 3.8049 V are not where this circuit's input protection holds"),
])
@pytest.mark.parametrize("simulator", ["ngspice", "vacask"])
def test_bad_parameters_are_rejected_before_any_simulation(change, message, simulator):
    with pytest.raises(ValueError, match=message):
        current_step_job(FeLIFCircuitParameters().replace(**change), 1e-9, 1e-3, simulator=simulator)


@pytest.fixture(scope="module")
def reference_runs():
    """Ideal-limit single-domain neuron on ngspice: 30 ms at REFERENCE.md's input currents."""
    currents = (1e-9, 5e-9, 10e-9, 50e-9)
    jobs = [current_step_job(REFERENCE, i, 30e-3) for i in currents]
    return dict(zip(currents, run_many(jobs, progress=False, raise_errors=True)))


@pytest.mark.parametrize("current, key", [(1e-9, "1"), (5e-9, "5"), (10e-9, "10"), (50e-9, "50")])
def test_first_threshold_crossing_matches_reference(reference_runs, current, key):
    first = result_spikes(reference_runs[current], REFERENCE)[0]
    assert first == pytest.approx(REFERENCE_FIRST_CROSSING_S[key], rel=0.01)


@pytest.mark.parametrize("current, steps", [
    (1e-9, [12, 27]),
    (5e-9, list(range(2, 30, 4))),
    (10e-9, list(range(1, 30, 3))),
    (50e-9, list(range(0, 30, 2))),
])
def test_spike_steps_match_reference(reference_runs, current, steps):
    assert spike_steps(result_spikes(reference_runs[current], REFERENCE), REFERENCE.t_clk) == steps


def test_trace_integrates_the_reference_equations(reference_runs):
    """V and P up to the first spike at 1 nA against physics.euler_step at REFERENCE.md's h = 1 us."""
    result, h, steps = reference_runs[1e-9], 1e-6, 12000
    state = physics.FeLIFState(torch.zeros(1, dtype=torch.float64), torch.full((1,), -0.22, dtype=torch.float64))
    current = torch.full((1,), 1e-9, dtype=torch.float64)
    v, p = [0.0], [-0.22]
    for _ in range(steps):
        state = physics.euler_step(state, current, REFERENCE.physics, h)
        v.append(state.v.item())
        p.append(state.p.item())
    time = np.arange(steps + 1) * h
    assert nrmse(np.array(v), np.interp(time, result.x, result["v(mem)"])) < 1e-3
    assert nrmse(np.array(p), np.interp(time, result.x, polarisation(result, REFERENCE))) < 1e-3


def test_fi_curve_is_monotone_and_saturates_at_the_refractory_limit():
    currents = (0.5e-9, 1e-9, 2e-9, 5e-9, 10e-9, 20e-9, 50e-9, 100e-9)
    stop = 100e-3
    results = run_many([current_step_job(REFERENCE, i, stop) for i in currents], progress=False, raise_errors=True)
    rates = np.array([len(result_spikes(r, REFERENCE)) / stop for r in results])
    limit = 1.0 / (2.0 * REFERENCE.t_clk)
    assert rates[0] > 0 and np.all(np.diff(rates) >= 0), rates
    assert np.all(rates <= limit) and rates[-1] == limit and rates[-2] == limit, rates
    assert rates[3] < 0.6 * limit  # 5 nA: well below saturation


@pytest.mark.parametrize("params", [REFERENCE, FeLIFCircuitParameters()], ids=["single-domain", "default"])
def test_verilog_a_neuron_on_vacask_matches_ngspice(params):
    currents = (1e-9, 10e-9)
    jobs = [current_step_job(params, i, 15e-3, simulator=sim) for i in currents for sim in ("ngspice", "vacask")]
    results = run_many(jobs, progress=False, raise_errors=True)
    for k, current in enumerate(currents):
        ngspice, vacask = (result_spikes(r, params) for r in results[2 * k:2 * k + 2])
        assert vacask[0] == pytest.approx(ngspice[0], rel=0.01), f"{current * 1e9:g} nA"
        assert spike_steps(vacask, params.t_clk) == spike_steps(ngspice, params.t_clk)


def test_protection_draws_negligible_current_between_erase_and_threshold():
    """The protection's ngspice rendering swept on its own: at most i_sd = 1 fA (1e-4 of the 10 pA discharge)
    from the -4 V erase drive to the 2.5 V threshold, and 300 nA at the model's limits v_min and v_max."""
    circuit = FeLIFCircuitParameters()
    params = " ".join(f"{name}={getattr(circuit, name)!r}" for name in ("v_dd", "v_ss", "i_sd", "n_d", "r_sd"))
    body = f".subckt prot in params: {params}\nBprot in 0 I={felif.PROTECTION}\n.ends prot\nVm m 0 0\nXp m prot"
    result = run(SimJob(Circuit(body), DcSweep(source="Vm", start=-5.2, stop=4.0, step=0.0001), outputs=("i(vm)",)))
    v, current = result.x, -result["i(vm)"]  # the source's current into the node = the protection's out of it

    def at(volts: float) -> float:
        return float(np.interp(volts, v, current))

    operating = (v >= circuit.v_erase) & (v <= circuit.physics.v_thr)
    assert np.abs(current[operating]).max() <= 1.0001e-15
    assert abs(at(2.5)) <= 1.0001e-15 and abs(at(-4.0)) <= 1.0001e-15
    limits = FeLIFParameters()
    assert at(limits.v_min) == pytest.approx(-300e-9, rel=0.01) and at(limits.v_max) == pytest.approx(300e-9, rel=0.01)


@pytest.mark.parametrize("params", [REFERENCE, FeLIFCircuitParameters()], ids=["single-domain", "default"])
def test_negative_input_settles_at_the_derived_limit_on_both_simulators(params):
    """-6, -30 and -300 nA from rest: the membrane settles where the clamp diode carries the current (the bare
    circuit fell to -20 V and below), within 1 mV of `membrane_limits` on ngspice and VACASK alike, never below
    the training model's v_min (the limit at 300 nA, its default) by more than the first time step's overshoot."""
    currents = (-6e-9, -30e-9, -300e-9)
    jobs = [current_step_job(params, i, 3e-3, simulator=sim) for i in currents for sim in ("ngspice", "vacask")]
    results = run_many(jobs, progress=False, raise_errors=True)
    limits = FeLIFParameters()
    assert (limits.v_min, limits.v_max) == pytest.approx(params.membrane_limits(), abs=1e-4)
    for k, current in enumerate(currents):
        expected = params.membrane_limits(-current)[0]
        for result in results[2 * k:2 * k + 2]:
            v = result["v(mem)"]
            assert v[-1] == pytest.approx(expected, abs=1e-3), f"{current * 1e9:g} nA"
            assert v.min() > limits.v_min - 0.01, f"{current * 1e9:g} nA"
            assert np.all(result["v(spk)"] < 0.5 * params.v_spk), "no spike under negative input"
        assert results[2 * k]["v(mem)"][-1] == pytest.approx(results[2 * k + 1]["v(mem)"][-1], abs=1e-4)
    assert results[0]["v(mem)"][-1] > results[4]["v(mem)"][-1] + 0.09  # 60 mV a decade: -4.90 V vs -5.00 V


def test_sample_neurons_vary_only_their_fecaps():
    neurons = felif.sample_neurons(FeLIFCircuitParameters(), 4, 0.05, seed=11)
    devices = sample_devices(FeCapParameters(), 4, 0.05, seed=11)
    assert [neuron.fecap for neuron in neurons] == devices
    assert all(neuron.replace(fecap=FeCapParameters()) == FeLIFCircuitParameters() for neuron in neurons)


def test_standalone_testbench_deck():
    deck = Path(felif.NETLISTS_DIR) / "tb" / "felif_nd1_step.cir"
    done = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=120)
    found = dict(re.findall(r"^(\w+_spike)\s*=\s*(\S+)", done.stdout, re.MULTILINE))
    assert float(found["first_spike"]) == pytest.approx(REFERENCE_FIRST_CROSSING_S["1"], rel=0.01)
    assert spike_steps([float(found["second_spike"])], 1e-3) == [27]


def test_characterize_quick(tmp_path):
    from cosim.devices.characterize import characterize

    summary = characterize("felif", tmp_path, quick=True)
    assert json.loads((tmp_path / "summary.json").read_text()) == json.loads(json.dumps(summary))
    for name in ("traces.npz", "traces.png", "fi_curve.csv", "fi_curve.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert list(summary["first_spike_s"]) == ["1", "2", "5", "10", "50"]
    first = list(summary["first_spike_s"].values())
    assert np.all(np.diff(first) < 0)  # more current, earlier spike
    reference = summary["reference_single_domain"]["first_spike_s"]
    for key, value in REFERENCE_FIRST_CROSSING_S.items():
        assert reference[key] == pytest.approx(value, rel=0.01)
    rates = summary["fi_curve"]["rate_hz"]
    assert len(rates) == len(summary["fi_curve"]["current_na"]) and np.all(np.diff(rates) >= 0)
    assert rates[-1] == summary["rate_limit_hz"]
    assert all(v < 0.01 for v in summary["vacask_vs_ngspice_rel"].values())
