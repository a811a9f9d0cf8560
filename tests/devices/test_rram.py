"""RRAM compact model: Verilog-A (VACASK) vs ngspice subcircuit, read model, read disturb, parameter checks,
level mapping and the write-verify Monte Carlo. Real simulators throughout."""
from __future__ import annotations

import numpy as np
import pytest

from cosim.devices.characterize import characterize
from cosim.devices.rram import (
    LevelMapping,
    ProgrammedLevels,
    RRAMParameters,
    RRAMVariability,
    WriteVerifyConfig,
    chord_conductance,
    device_circuit,
    gap_for_conductance,
    gap_vector,
    iv_loop_job,
    program_levels,
    read_current,
    rram_element,
)
from cosim.snn.synapses import ConductanceLevels
from cosim.spice import DcSweep, SimJob, Tran, run, run_many
from cosim.spice.elements import VoltageSource


def test_verilog_a_and_ngspice_subcircuit_give_the_same_switching_iv_loop():
    ngspice, vacask = run_many([iv_loop_job(simulator="ngspice"), iv_loop_job(simulator="vacask")],
                               progress=False, raise_errors=True)
    current = -ngspice["i(vin)"]
    other = -np.interp(ngspice.x, vacask.x, vacask["i(vin)"])
    nrmse = np.sqrt(np.mean((current - other) ** 2)) / np.ptp(current)
    assert nrmse < 0.01
    # The loop really switches: the set makes the device much more conductive than it started (HRS).
    v_te = ngspice["v(te)"]
    late = ngspice.x > 0.45 * ngspice.x[-1]
    g_start = current[5] / v_te[5]
    g_after_set = np.max(current[late & (v_te > 0.2)] / v_te[late & (v_te > 0.2)])
    assert g_after_set > 10 * g_start


@pytest.mark.parametrize("simulator", ["ngspice", "vacask"])
def test_read_current_matches_python_and_a_long_read_does_not_disturb_the_state(simulator):
    params = RRAMParameters(gap_ini=1.2e-9)
    read_time = 1e-3  # one coarse step of the crossbar
    device = rram_element("d", "te", "0", params, simulator)
    elements = (VoltageSource("Vr", "te", "0", dc=0.1), device)
    job = SimJob(device_circuit(elements, simulator), Tran(step=read_time / 50, stop=read_time),
                 outputs=("i(vr)", gap_vector(device)), simulator=simulator)
    result = run(job)
    expected = read_current(0.1, 1.2e-9, params)
    assert -result["i(vr)"][-1] == pytest.approx(expected, rel=1e-6)
    assert abs(result[gap_vector(device)][-1] - 1.2) < 1e-6  # nm: the gap does not move at the read voltage


def test_a_dc_sweep_holds_the_state_of_the_full_model_on_both_simulators():
    """ngspice sets `time` to the swept value in a .dc sweep: the subcircuit's state equation is switched by a
    source that is 0 V in every DC analysis instead (with `time <= 0`, the sweep moved the gap and stopped)."""
    params = RRAMParameters(gap_ini=1.2e-9)
    jobs = []
    for simulator in ("ngspice", "vacask"):
        device = rram_element("d", "te", "0", params, simulator)
        circuit = device_circuit((VoltageSource("Vr", "te", "0"), device), simulator)
        jobs.append(SimJob(circuit, DcSweep(source="Vr", start=-2.5, stop=2.5, step=0.25),
                           outputs=("i(vr)", gap_vector(device)), simulator=simulator))
    for job, result in zip(jobs, run_many(jobs, progress=False, raise_errors=True)):
        assert np.all(result[job.outputs[1]] == pytest.approx(1.2, abs=1e-9))  # nm, set and reset voltages included
        assert np.allclose(-result["i(vr)"], read_current(result.x, 1.2e-9, params), rtol=1e-9, atol=1e-15)


def test_conductance_and_gap_are_inverse():
    params = RRAMParameters()
    gaps = np.linspace(params.gap_min, params.gap_max, 7)
    assert np.allclose(gap_for_conductance(chord_conductance(gaps, 0.1, params), 0.1, params), gaps, rtol=1e-12)


@pytest.mark.parametrize("changes, message", [
    ({"tox": -12e-9}, "tox"),
    ({"i0": 0.0}, "i0"),
    ({"gap_min": 2e-9}, "gap_min < gap_max"),
    ({"gap_ini": 3e-9}, "gap_ini"),
    ({"rth": -1.0}, "rth"),
])
def test_bad_device_parameters_are_rejected(changes, message):
    with pytest.raises(ValueError, match=message):
        RRAMParameters(**changes)


def test_bad_level_mappings_are_rejected_before_any_simulation():
    with pytest.raises(ValueError, match="equally spaced"):
        LevelMapping(levels_s=(10e-6, 20e-6, 35e-6))
    with pytest.raises(ValueError, match="tolerance"):
        LevelMapping(tolerance_s=6e-6)
    with pytest.raises(ValueError, match="weight_max"):
        LevelMapping(weight_max=8)
    outside = LevelMapping(levels_s=tuple(1e-6 * (k + 1) for k in range(8)), tolerance_s=0.2e-6)
    with pytest.raises(ValueError, match="window"):
        # A simulation would take seconds; the check is immediate, before any job is built.
        program_levels(4, seed=0, mapping=outside, simulator="no-such-simulator")
    with pytest.raises(ValueError, match="unknown RRAM parameter"):
        RRAMVariability(d2d=(("thickness", 0.1),))
    with pytest.raises(ValueError, match="v_max"):
        WriteVerifyConfig(v_start=1.5, v_max=1.2)
    with pytest.raises(ValueError, match="gate_set must lie in"):
        WriteVerifyConfig(gate_set=0.4)  # below the transistor's threshold: the cell never conducts
    with pytest.raises(ValueError, match="3 gate voltages for 8 levels"):
        program_levels(2, seed=0, config=WriteVerifyConfig(gate_set=(1.0, 1.1, 1.2)))


def test_differential_pairs_realise_the_seven_symmetric_weight_levels():
    mapping = LevelMapping()
    levels = np.asarray(mapping.levels_s)
    assert mapping.weight_max == 3 and mapping.stride == 2
    for q in range(-3, 4):
        k_plus, k_minus = mapping.pair_levels(q)
        assert levels[k_plus] - levels[k_minus] == pytest.approx(q * mapping.weight_step_s)
    assert mapping.weight_step_s == pytest.approx(20e-6)
    with pytest.raises(ValueError):
        mapping.pair_levels(4)
    four_bit = LevelMapping(weight_max=7)
    assert [four_bit.pair_levels(q) for q in (-7, 7)] == [(0, 7), (7, 0)]


def test_write_verify_programs_eight_levels_with_under_one_percent_adjacent_overlap():
    result = program_levels(24, seed=3, progress=False)  # default variability, 192 devices
    targets = np.asarray(result.mapping.levels_s)
    assert result.converged.mean() >= 0.99
    assert np.all(np.abs(result.mean_s - targets) < result.mapping.tolerance_s)
    assert np.all(result.std_s > 0)  # variability is really there
    assert np.all(result.adjacent_overlap < 0.01)
    assert np.all(result.adjacent_overlap_gaussian < 0.01)
    # Programming needed several pulses and the trajectory ends on the verified value.
    assert result.pulses.min() >= 1
    last = result.trajectories[0, 0, result.pulses[0, 0]]
    assert last == result.conductance_s[0, 0]
    # The pair statistics feed the training's level table: its weight levels come out at -3..3.
    table = ConductanceLevels(**{k: tuple(v) for k, v in result.weight_level_table().items()})
    means, spreads = table.mean_spread()
    assert np.allclose(means.numpy(), np.arange(-3, 4), atol=0.15)
    assert np.all(spreads.numpy() > 0)


def test_write_verify_programs_a_1t1r_cell_with_the_gate_voltage_as_the_set_compliance():
    """The 1T1R option: no series resistor; SET pulses with the select transistor's gate at 1.0 V, 20 mV more per
    further SET pulse (its saturation current is the compliance), RESETs through the source line."""
    config = WriteVerifyConfig(r_series=0.0, gate_set=1.0, gate_step=0.02)
    result = program_levels(3, seed=5, config=config, progress=False)
    assert result.converged.mean() >= 0.9
    assert np.all(result.adjacent_overlap < 0.01)
    targets = np.asarray(result.mapping.levels_s)[:, None]
    assert np.all(np.abs(result.conductance_s - targets)[result.converged] <= result.mapping.tolerance_s)
    assert result.pulses.min() >= 1


def test_quick_characterisation_writes_data_plots_and_summary(tmp_path):
    summary = characterize("rram", tmp_path, quick=True)
    for name in ("iv_loops.png", "programming_trajectories.png", "level_histograms.png", "iv_loops.npz",
                 "levels.npz", "summary.json"):
        assert (tmp_path / name).is_file()
    assert len(summary["mean_s"]) == len(summary["std_s"]) == 8
    assert len(summary["adjacent_overlap"]) == 7 and max(summary["adjacent_overlap"]) < 0.01
    assert all(value < 0.01 for value in summary["iv_nrmse_vacask_vs_ngspice"].values())
    reloaded = ProgrammedLevels.load(tmp_path / "levels")  # what the surrogate fitting and the export read
    assert np.allclose(reloaded.mean_s, summary["mean_s"])
