"""The crossbar with FeLIF neurons on VACASK against ngspice (issue 16's cross-check), column partitioning, and
the choice of simulator in verification."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cosim.devices.crossbar import Crossbar, CrossbarConfig, felif_bank
from cosim.devices.felif import FeLIFCircuitParameters, spike_times
from cosim.devices.plugins import NeuronBank
from cosim.devices.rram import LevelMapping
from cosim.spice import Circuit, NetlistError, SimError, SimJob, Tran, run, run_many
from cosim.spice.elements import Pwl, Resistor, VoltageSource
from cosim.spice.vacask import render_netlist
from cosim.verify.export import HardwareConfig, HardwareLayer

NEURON = FeLIFCircuitParameters()


def _case(rows: int = 16, cols: int = 3, steps: int = 30) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    weights = rng.integers(-1, 4, size=(rows, cols))  # mostly excitatory: every neuron spikes a few times
    spikes = (rng.random((steps, rows)) < 0.3).astype(int)
    return weights, spikes


def _spikes(results, jobs, bank: NeuronBank) -> list[np.ndarray]:
    trains = []
    for (_, columns), result in zip(jobs, results):
        if isinstance(result, SimError):
            raise result
        trains += [spike_times(result.x, result[f"v({bank.node('spk', k)})"], NEURON.v_spk)
                   for k in range(len(columns))]
    return trains


@pytest.mark.parametrize("read_model", ["linear", "sinh"])
def test_vacask_and_ngspice_give_the_same_spikes_through_a_small_crossbar(read_model):
    weights, spikes = _case()
    bank = felif_bank(NEURON)
    crossbar = Crossbar.from_weights(weights, LevelMapping(), CrossbarConfig(read_model=read_model))
    trains = {}
    for simulator in ("ngspice", "vacask"):
        jobs = crossbar.column_jobs(spikes, bank, 0, name=f"small-{simulator}", simulator=simulator)
        assert jobs[0][0].simulator == simulator
        trains[simulator] = _spikes(run_many([job for job, _ in jobs], progress=False), jobs, bank)
    counts = [len(t) for t in trains["ngspice"]]
    assert min(counts) >= 2, f"every neuron should spike a few times, got {counts}"
    assert [len(t) for t in trains["vacask"]] == counts
    for ng, va in zip(trains["ngspice"], trains["vacask"]):
        assert np.max(np.abs(va - ng)) < 10e-6  # 1 % of the 1 ms coarse step


def test_column_partitions_give_the_spikes_of_one_netlist():
    weights, spikes = _case()
    bank = felif_bank(NEURON)
    crossbar = Crossbar.from_weights(weights, LevelMapping(), CrossbarConfig(read_model="sinh"))
    whole = crossbar.column_jobs(spikes, bank, 0, name="whole", simulator="vacask")
    parts = crossbar.column_jobs(spikes, bank, 1, name="part", simulator="vacask")
    assert len(whole) == 1 and [list(c) for _, c in parts] == [[0], [1], [2]]
    results = run_many([job for job, _ in whole + parts], progress=False)
    one, split = _spikes(results[:1], whole, bank), _spikes(results[1:], parts, bank)
    assert [len(t) for t in split] == [len(t) for t in one]
    for a, b in zip(one, split):
        assert np.max(np.abs(a - b)) < 10e-6


def test_vacask_operating_point_matches_ngspice_with_the_sinh_read():
    rng = np.random.default_rng(4)
    crossbar = Crossbar.from_weights(rng.integers(-3, 4, size=(8, 2)), LevelMapping(),
                                     CrossbarConfig(read_model="sinh"))
    v_rows = np.linspace(0.0, 0.2, 8)  # off v_read: the sinh curvature counts
    ng, va = (run(crossbar.op_job(v_rows, simulator=sim)) for sim in ("ngspice", "vacask"))
    for name in [f"i(vs{b})" for b in range(4)] + ["i(vout0)", "i(vout1)"]:
        assert float(va[name]) == pytest.approx(float(ng[name]), rel=1e-6, abs=1e-15)
    expected = crossbar.ideal_outputs(v_rows)
    assert [float(va[f"i(vout{j})"]) for j in range(2)] == pytest.approx(list(expected), rel=1e-6)


def test_simulator_options_reach_both_simulators_and_change_the_job_key():
    weights, spikes = _case(rows=4, cols=1, steps=3)
    crossbar = Crossbar.from_weights(weights, LevelMapping(), CrossbarConfig(read_model="linear"))
    bank = felif_bank(NEURON)
    for simulator in ("ngspice", "vacask"):
        plain = crossbar.tran_job(spikes, bank, simulator=simulator)
        tight = crossbar.tran_job(spikes, bank, simulator=simulator, options=(("reltol", 1e-6),))
        assert plain.key() != tight.key()
        # a tighter tolerance takes more time points
        assert run(tight).x.size > run(plain).x.size
    with pytest.raises(NetlistError, match="no_such_option"):
        run(crossbar.tran_job(spikes, simulator="vacask", options=(("no_such_option", 1.0),)))


def test_verification_runs_on_vacask_where_the_circuits_allow():
    weights, _ = _case()
    crossbar = Crossbar.from_weights(weights, LevelMapping(), CrossbarConfig(read_model="sinh"))
    bank = felif_bank(NEURON)
    ngspice_only = dataclasses.replace(bank, vacask_libraries=(), verilog_a=())
    auto = HardwareConfig()
    assert HardwareLayer(None, crossbar, bank, auto).simulator == "vacask"
    assert HardwareLayer(None, crossbar, ngspice_only, auto).simulator == "ngspice"
    assert HardwareLayer(None, crossbar, bank, HardwareConfig(simulator="ngspice")).simulator == "ngspice"
    with pytest.raises(ValueError, match="no VACASK subcircuit"):
        crossbar.tran_job(np.zeros((2, 16), dtype=int), ngspice_only, simulator="vacask")


def test_vacask_saves_only_the_requested_node_voltages_in_their_netlist_casing():
    circuit = Circuit(netlist="", elements=(VoltageSource("V1", "IN", "0", waveform=Pwl(((0.0, 0.0), (1e-6, 1.0)))),
                                            Resistor("R1", "IN", "Out", 1e3), Resistor("R2", "Out", "0", 1e3)))
    job = SimJob(circuit, Tran(step=1e-7, stop=2e-6), outputs=("v(out)",), simulator="vacask")
    assert "  save v(Out)" in render_netlist(job).splitlines()
    result = run(job)
    assert result["v(out)"][-1] == pytest.approx(0.5, rel=1e-6)
    # a branch current or an unknown node: VACASK saves everything, as before
    for outputs in (("v(out)", "i(v1)"), ("v(nowhere)",)):
        assert "save" not in render_netlist(dataclasses.replace(job, outputs=outputs))


def test_rows_that_never_spike_are_left_out_with_ideal_wires_only():
    weights, spikes = _case()
    spikes[:, 8:] = 0  # half the inputs silent
    bank = felif_bank(NEURON)
    crossbar = Crossbar.from_weights(weights, LevelMapping(), CrossbarConfig(read_model="sinh"))
    (job, columns), = crossbar.column_jobs(spikes, bank, 0, name="active", simulator="vacask")
    assert job.circuit.netlist.count("rram_read gap=") == 8 * 2 * 3  # 8 active rows x 3 pairs
    full = crossbar.tran_job(spikes, bank, job.outputs, step=job.analysis.step, simulator="vacask")
    results = run_many([job, full], progress=False)
    reduced, whole = _spikes(results[:1], [(job, columns)], bank), _spikes(results[1:], [(full, columns)], bank)
    assert min(len(t) for t in whole) >= 2 and [len(t) for t in reduced] == [len(t) for t in whole]
    for a, b in zip(reduced, whole):
        assert np.max(np.abs(a - b)) < 1e-6
    wired = Crossbar(crossbar.g_plus, crossbar.g_minus, CrossbarConfig(read_model="linear", r_wire=1.0))
    (job, _), = wired.column_jobs(spikes, bank, 0, simulator="vacask")
    assert job.circuit.netlist.count("cosim_resistor r=") >= 16 * 2 * 3  # every device kept: the wires carry drops
