"""JART VCM v1b port: generated files, parameter checks, the numpy read law against both simulators, the I-V loop
on VACASK and ngspice, read disturb, the 1T1R SET compliance and RESET, the thermal time constant; the synapse
plug-in: registration, read card, write-verify into the bands, a tiny network trained on its level table and
verified in SPICE. Real simulators."""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from cosim.devices import jart_vcm
from cosim.devices.jart_vcm import (
    JART_CELL,
    JARTDevice,
    JartVcmParameters,
    chord_conductance,
    concentration_for_conductance,
    conductance_window,
    disc_concentration,
    iv_loop_job,
    jart_vcm_element,
    jart_vcm_files,
    read_current,
    read_element,
    state_vector,
    verified_conductance,
    write_verify_config,
)
from cosim.devices.plugins import register_synapse, synapse_device
from cosim.devices.select_transistor import SelectTransistor, set_and_read_job
from cosim.devices.write_verify import ProgrammedLevels, WriteVerifyConfig, round_job
from cosim.spice import Circuit, DcSweep, Op, SimJob, Tran, run_many
from cosim.spice.elements import VoltageSource
from cosim.train.config import load_config
from cosim.train.loop import train
from cosim.train.models import SYNAPSE_LEVELS
from cosim.verify.compare import spice_traces
from cosim.verify.export import HardwareConfig, device_layer, program, sample_jobs
from cosim.verify.runner import load_run, select_samples, verify_run

V_READ = 0.2
"""Read voltage of these tests, V."""


def _cell(params: JartVcmParameters, simulator: str):
    return partial(jart_vcm_element, params=params, simulator=simulator)


def test_model_files_are_generated_from_the_equations():
    assert jart_vcm.MODEL_VA.read_text() == jart_vcm.render_verilog_a(), "run python -m cosim.devices.jart_vcm"
    assert jart_vcm.NETLIST_LIB.read_text() == jart_vcm.render_ngspice(), "run python -m cosim.devices.jart_vcm"


@pytest.mark.parametrize("changes, message", [
    ({"r_fil": -45e-9}, "r_fil"),
    ({"dwa": 0.0}, "dwa"),
    ({"tau_th": float("nan")}, "tau_th"),
    ({"n_disc_min": 30e26}, "n_disc_min < n_disc_max"),
    ({"n_ini": 50e26}, "n_ini"),
    ({"l_disc": 4e-9}, "l_disc"),
    ({"phi_n": 0.2}, "phi_n < phi_bn0"),
])
@pytest.mark.parametrize("simulator", ["ngspice", "vacask"])
def test_bad_parameters_are_rejected_before_any_simulation(changes, message, simulator):
    with pytest.raises(ValueError, match=message):
        iv_loop_job(JartVcmParameters(**changes), simulator=simulator)


def test_read_law_in_numpy_is_what_both_simulators_compute():
    """DC sweeps of the fixed-state read model (ngspice) and of the full model held at its start state (ngspice and
    VACASK) against `read_current`: the same equations, Joule heating included; to the simulators' Newton tolerance
    (reltol 1e-3 on the internal node's voltage). The ngspice full model holds its state through the .dc sweep
    (ngspice sets `time` to the swept value there, which released the state while `time <= 0` was the test)."""
    params = JartVcmParameters()
    states = (params.n_disc_min, 1e26, params.n_disc_max)
    jobs = []
    for n in states:
        for simulator, element, full in (
                ("ngspice", read_element("d", "te", "0", n, params), False),
                ("ngspice", jart_vcm_element("d", "te", "0", params.replace(n_ini=n), "ngspice"), True),
                ("vacask", jart_vcm_element("d", "te", "0", params.replace(n_ini=n), "vacask"), True)):
            circuit = Circuit(netlist="", elements=(VoltageSource("Vr", "te", "0"), element),
                              **jart_vcm_files(simulator))
            outputs = ("i(vr)", state_vector(element)) if full else ("i(vr)",)
            jobs.append(SimJob(circuit, DcSweep(source="Vr", start=-1.0, stop=1.0, step=0.1), outputs=outputs,
                               simulator=simulator))
    results = run_many(jobs, progress=False, raise_errors=True)
    for k, (job, result) in enumerate(zip(jobs, results)):
        n = states[k // 3]
        expected = read_current(result.x, n, params)
        assert np.allclose(-result["i(vr)"], expected, rtol=1e-3, atol=1e-12), job.circuit.elements[1]
        if len(job.outputs) == 2:
            assert np.allclose(result[job.outputs[1]], np.log(n / jart_vcm.N_UNIT), rtol=0, atol=1e-9)


def test_conductance_window_and_its_inverse():
    params = JartVcmParameters()
    low, high = conductance_window(V_READ, params)
    assert 5e-6 < low < 20e-6 and 400e-6 < high < 800e-6  # ~100 kohm HRS, ~1.6 kohm LRS (the release's cell)
    n = np.geomspace(params.n_disc_min, params.n_disc_max, 7)
    assert np.all(np.diff(chord_conductance(n, V_READ, params)) > 0)
    back = concentration_for_conductance(chord_conductance(n, V_READ, params), V_READ, params)
    assert np.allclose(back, n, rtol=1e-9)
    with pytest.raises(ValueError, match="window"):
        concentration_for_conductance(2 * high, V_READ, params)


def test_iv_loop_switches_and_vacask_and_ngspice_agree():
    jobs = [iv_loop_job(simulator=simulator) for simulator in ("ngspice", "vacask")]
    ngspice, vacask = run_many(jobs, progress=False, raise_errors=True)
    # compared on a uniform time grid: the simulators' own time points crowd where the cell switches
    grid = np.linspace(0.0, ngspice.x[-1], 4001)
    current = -np.interp(grid, ngspice.x, ngspice["i(vin)"])
    other = -np.interp(grid, vacask.x, vacask["i(vin)"])
    assert np.sqrt(np.mean((current - other) ** 2)) / np.ptp(current) < 0.01
    for job, result in zip(jobs, (ngspice, vacask)):
        n = disc_concentration(result, job.circuit.elements[-1])
        half = np.searchsorted(result.x, result.x[-1] / 2)
        params = JartVcmParameters()
        assert n[0] == pytest.approx(params.n_disc_min) and n[half] > 0.9 * params.n_disc_max  # SET: HRS -> LRS
        assert n[-1] < 1.01 * params.n_disc_min  # RESET: back to HRS
        # the read current at V_READ after the SET is many times that before it and after the RESET
        g_hrs, g_lrs, g_end = chord_conductance(n[[0, half, -1]], V_READ, params)
        assert g_lrs > 30 * g_hrs and g_lrs > 30 * g_end


@pytest.mark.parametrize("simulator", ["ngspice", "vacask"])
def test_a_long_read_does_not_disturb_the_state(simulator):
    """1 ms at V_READ (one coarse step of a crossbar read) from the high-resistance state, where the field on the
    disc is highest, and from a middle state, where the read heats the filament most (it creeps by ~2e-6 in ln N
    per read): the state stays, the current is the read law's."""
    for n in (JartVcmParameters().n_disc_min, 1e26):
        params = JartVcmParameters(n_ini=n)
        cell = jart_vcm_element("d", "te", "0", params, simulator)
        circuit = Circuit(netlist="", elements=(VoltageSource("Vr", "te", "0", dc=V_READ), cell),
                          **jart_vcm_files(simulator))
        result = run_many([SimJob(circuit, Tran(step=2e-5, stop=1e-3), outputs=("i(vr)", state_vector(cell)),
                                  simulator=simulator)], progress=False, raise_errors=True)[0]
        x = result[state_vector(cell)]
        assert np.abs(x - np.log(n / jart_vcm.N_UNIT)).max() < 1e-5
        assert -result["i(vr)"][-1] == pytest.approx(read_current(V_READ, n, params), rel=1e-3)


def test_1t1r_gate_voltage_sets_the_set_compliance():
    """A SET through the select transistor: the current saturates at the transistor's saturation current for the
    gate voltage; a higher gate, a higher current, a more conductive cell. The two simulators land in the same
    state."""
    params, transistor = JartVcmParameters(), SelectTransistor()
    gates = (0.8, 1.0, 1.2)
    jobs = [set_and_read_job(_cell(params, simulator), jart_vcm_files(simulator), simulator, gate, points=500,
                             outputs=(state_vector(_cell(params, simulator)("dut", "bl", "cell")),))
            for simulator in ("vacask", "ngspice") for gate in gates]
    results = run_many(jobs, progress=False, raise_errors=True)
    vacask, ngspice = results[:3], results[3:]
    conductance = []
    for gate, job, result in zip(gates, jobs, vacask):
        peak = (-result["i(vbl)"]).max()
        # the drain sits at a few 100 mV at most, so channel-length modulation adds < 15 % to the square law
        assert 1.0 < peak / transistor.saturation_current(gate) < 1.15
        conductance.append(float(chord_conductance(jart_vcm.N_UNIT * np.exp(result[job.outputs[-1]][-1]),
                                                   V_READ, params)))
    assert np.all(np.diff(conductance) > 0) and conductance[-1] > 3 * conductance[0]
    for job_v, job_n, result_v, result_n in zip(jobs[:3], jobs[3:], vacask, ngspice):
        assert result_n[job_n.outputs[-1]][-1] == pytest.approx(result_v[job_v.outputs[-1]][-1], abs=2e-3)


def test_the_thermal_time_constant_does_not_change_a_set():
    """tau_th (not in the release) at 100 ps against 1 ps, on VACASK: the state after a 1T1R SET moves < 1e-3."""
    jobs = []
    for tau in (1e-10, 1e-12):
        cell = _cell(JartVcmParameters(tau_th=tau), "vacask")
        jobs.append(set_and_read_job(cell, jart_vcm_files("vacask"), "vacask", 1.0, points=500,
                                     outputs=(state_vector(cell("dut", "bl", "cell")),)))
    slow, fast = (result[job.outputs[-1]][-1] for job, result in
                  zip(jobs, run_many(jobs, progress=False, raise_errors=True)))
    assert slow > np.log(JartVcmParameters().n_disc_min / jart_vcm.N_UNIT) + 1  # it did SET
    assert abs(slow - fast) < 1e-3


def test_a_1t1r_reset_through_the_source_line_lowers_the_conductance_on_both_simulators():
    """RESET pulses of 0.95 .. 1.3 V on the source line with the gate fully on, from 240 uS: the more voltage, the
    lower the conductance, the same on both simulators. (Through VACASK's spice/mos1.osdi, which conducts
    backwards here, every such RESET stopped: its limiting stalled Newton.)"""
    params = JartVcmParameters()
    start = params.replace(n_ini=float(concentration_for_conductance(240e-6, V_READ, params)))
    amplitudes = np.array([0.95, 1.05, 1.15, 1.3])
    policy = WriteVerifyConfig(pulse_width=20e-9, edge=2e-9, read_time=10e-9, r_series=0.0, gate_set=0.8)
    jobs = [round_job(JART_CELL, [start] * amplitudes.size, -amplitudes, np.zeros(amplitudes.size), V_READ, policy,
                      simulator, "reset") for simulator in ("vacask", "ngspice")]
    conductances = []
    for job, result in zip(jobs, run_many(jobs, progress=False, raise_errors=True)):
        final = np.array([result[name][-1] for name in job.outputs]).reshape(amplitudes.size, 4)
        conductances.append(verified_conductance(-final[:, 1], final[:, 2] - final[:, 3], V_READ, [start] * 4))
    vacask, ngspice = conductances
    assert 230e-6 < vacask[0] < 240e-6 and vacask[-1] < 100e-6 and np.all(np.diff(vacask) < 0)
    assert np.allclose(ngspice, vacask, rtol=0.03)


def test_the_plug_in_registers_and_reads_its_state_through_its_read_card():
    device = synapse_device("jart_vcm")
    assert isinstance(device, JARTDevice) and register_synapse(JARTDevice()) is not None  # the interface check
    mapping = device.mapping()
    mapping.check_window(conductance_window(mapping.v_read, device.parameters()))
    assert mapping.v_read == V_READ and mapping.n_levels == 8
    sampled = device.sample(device.parameters(), 6, 0.05, seed=2)
    assert sampled == device.sample(device.parameters(), 6, 0.05, seed=2) and len({d.r_fil for d in sampled}) == 6
    # a crossbar read of three programmed devices: the card's current at v_read is conductance * v_read
    targets = (30e-6, 120e-6, 240e-6)
    cards = [device.read_card(f"s{k}", "row", "0", g, V_READ) for k, g in enumerate(targets)]
    cards = [card.replace("row 0", f"row{k} 0") for k, card in enumerate(cards)]
    sources = tuple(VoltageSource(f"Vr{k}", f"row{k}", "0", dc=V_READ) for k in range(len(targets)))
    circuit = Circuit(netlist="\n".join(cards), elements=sources, includes=device.read_libraries)
    result = run_many([SimJob(circuit, Op(), outputs=tuple(f"i(vr{k})" for k in range(len(targets))))],
                      progress=False, raise_errors=True)[0]
    measured = [-float(np.ravel(result[f"i(vr{k})"])[-1]) / V_READ for k in range(len(targets))]
    assert np.allclose(measured, targets, rtol=1e-3)


def test_write_verify_programs_eight_levels_of_1t1r_cells_into_their_bands():
    device = JARTDevice()
    levels = device.program(device.mapping(), 4, seed=1, progress=False)
    mapping = levels.mapping
    assert levels.converged.mean() >= 0.9
    targets = np.asarray(mapping.levels_s)[:, None]
    assert np.all(np.abs(levels.conductance_s - targets)[levels.converged] <= mapping.tolerance_s)
    assert np.all(levels.adjacent_overlap < 0.01) and levels.pulses.min() >= 1
    gates = write_verify_config(mapping).gate_set  # the controller's table: a higher level, a higher gate
    assert len(gates) == 8 and np.all(np.diff(gates) > 0)


def test_its_level_table_trains_a_tiny_network_whose_crossbar_verifies(write_jsb, tmp_path: Path):
    """One epoch of a 4-neuron music predictor on the programmed level table of 3 JART cells per level, then SPICE
    verification with every synapse drawn from that population, read by its chord conductance; and one column read
    through the device's read card (`jart_vcm_read`, ~100x slower in ngspice: 2 steps) spikes as with the chord
    conductance."""
    jsb = write_jsb(5, train=(14, 12), valid=(12,), test=(14,), low=55, high=80)
    run = tmp_path / "run"
    cfg = load_config("music", ["data.dataset=jsb", f"data.path={json.dumps(str(jsb))}", 'model.synapse="jart_vcm"',
                                'model.synapse_levels="programmed"', "model.synapse_devices=3", "model.hidden=4",
                                "model.bits=3", "model.current_scale=1e-8", "run.epochs=1", "run.threads=1",
                                f"run.out={json.dumps(str(run))}"])
    history = train(cfg, progress=False)
    assert np.isfinite(history[-1]["test_loss"])
    levels = ProgrammedLevels.load(run / SYNAPSE_LEVELS)
    assert levels.mapping.v_read == V_READ and levels.converged.mean() >= 0.9
    summary = verify_run(run, samples=1, hw=HardwareConfig(levels_file=str(run / SYNAPSE_LEVELS)), progress=False)
    assert summary["synapse_device"] == "jart_vcm" and summary["spikes_spice"] > 0
    assert summary["prediction_agreement"] >= 0.9

    _, model, task, _ = load_run(run)
    layer, steps = device_layer(model), 2
    spikes = select_samples(task, "test", 1, max_steps=steps)[0][1].inputs[0].numpy()
    grid = (np.arange(steps * 20) + 1) * layer.dt / 20
    traces = {}
    for read_model in ("linear", "sinh"):
        chip = program(layer, HardwareConfig(read_model=read_model, columns_per_job=1), levels)
        jobs = sample_jobs(chip, spikes, read_model)
        if read_model == "linear":
            results = run_many([job for job, _ in jobs], progress=False, raise_errors=True)
            column = int(np.argmax([len(spice_traces(r, chip.neurons.select(c), 1, grid, layer.dt)[0].spikes)
                                    for r, (_, c) in zip(results, jobs)]))
        job, columns = jobs[column]
        result = run_many([job], progress=False, raise_errors=True)[0]
        traces[read_model] = spice_traces(result, chip.neurons.select(columns), 1, grid, layer.dt)[0].spikes
    assert "jart_vcm_read n=" in job.circuit.netlist and str(jart_vcm.NETLIST_LIB) in job.circuit.includes
    assert len(traces["linear"]) > 0 and len(traces["sinh"]) == len(traces["linear"])
    assert np.allclose(traces["sinh"], traces["linear"], rtol=0, atol=10e-6)
