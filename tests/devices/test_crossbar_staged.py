"""The staged simulation of the array as built (`Crossbar.staged_read` + `Crossbar.current_jobs`): the tiles'
outputs per distinct input pattern, then the neurons on the summed currents, against the coupled netlist of the
wired array with its neurons in it (VACASK, and an ngspice cross-check), and with ideal wires against the ideal
path."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cosim.devices.crossbar import Crossbar, CrossbarConfig, TileConfig, felif_bank
from cosim.devices.felif import FeLIFCircuitParameters, spike_times
from cosim.devices.plugins import NeuronBank
from cosim.devices.rram import LevelMapping
from cosim.spice import run, run_many

NEURON = FeLIFCircuitParameters()
CONFIG = CrossbarConfig(r_wire=5.0, read_model="sinh", tile=TileConfig(4, 2), mirror_gain=2e-3)
"""8 x 3 pairs in 4 x 2 tiles (2 row tiles x 2 column tiles of 2 and 1 pairs), 5 ohm per segment, sinh read;
mirrors of 2e-3 so that every neuron spikes a few times in 10 ms."""
TOLERANCE_S = 0.01 * CONFIG.dt
"""Spike times: within 1 % of the coarse step (10 us)."""


def _case() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    weights = rng.integers(-1, 4, size=(8, 3))  # mostly excitatory
    spikes = (rng.random((10, 8)) < 0.4).astype(int)
    spikes[4] = 0  # a step with no input: no current
    return weights, spikes


def _trains(jobs, bank: NeuronBank) -> list[np.ndarray]:
    results = run_many([job for job, _ in jobs], progress=False, raise_errors=True)
    return [spike_times(result.x, result[f"v({bank.node('spk', k)})"], NEURON.v_spk)
            for (_, columns), result in zip(jobs, results) for k in range(len(columns))]


def _staged(crossbar: Crossbar, spikes: np.ndarray, bank: NeuronBank, simulator: str) -> list[np.ndarray]:
    currents = crossbar.staged_read([spikes], simulator).currents[0]
    return _trains(crossbar.current_jobs(currents, bank, 1, name=f"staged-{simulator}", simulator=simulator), bank)


def _assert_same_spikes(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert [len(t) for t in a] == [len(t) for t in b]
    assert min(len(t) for t in a) >= 2, f"every neuron should spike a few times, got {[len(t) for t in a]}"
    for x, y in zip(a, b):
        assert np.max(np.abs(x - y)) < TOLERANCE_S


def test_staged_read_gives_the_wired_arrays_currents_per_distinct_pattern():
    weights, spikes = _case()
    wired = Crossbar.from_weights(weights, LevelMapping(), CONFIG)
    other = spikes[::-1].copy()  # a second train: its patterns are the first one's, simulated once
    read = wired.staged_read([spikes, other], "vacask")
    distinct = sum(len({tuple(row) for row in spikes[:, rows.start:rows.stop] if row.any()})
                   for rows in wired.tiles[0])
    assert read.patterns == distinct and read.jobs == 2 * 2
    # the coupled array's outputs over the flat part of each step (its transient, no neurons)
    result = run(wired.tran_job(spikes, step=CONFIG.dt / 20, simulator="vacask"))
    middle = (np.arange(len(spikes)) + 0.5) * CONFIG.dt
    coupled = np.array([np.interp(middle, result.x, result[f"i(vout{j})"]) for j in range(3)]).T
    scale = np.abs(coupled).max()
    assert np.abs(read.currents[0] - coupled).max() < 1e-6 * scale
    assert np.abs(read.currents[1] - coupled[::-1]).max() < 1e-6 * scale
    assert not read.currents[0][4].any()
    ideal = wired.ideal_outputs(CONFIG.v_read * spikes)
    assert np.abs(coupled - ideal).max() > 1e-3 * scale, "the wires must matter for this to test anything"


def test_staged_simulation_gives_the_spikes_of_the_coupled_wired_netlist():
    weights, spikes = _case()
    bank = felif_bank(NEURON)
    wired = Crossbar.from_weights(weights, LevelMapping(), CONFIG)
    coupled = _trains(wired.column_jobs(spikes, bank, 1, name="coupled", simulator="vacask"), bank)
    _assert_same_spikes(_staged(wired, spikes, bank, "vacask"), coupled)
    # ngspice cross-check: the staged path on ngspice against VACASK's coupled netlist
    _assert_same_spikes(_staged(wired, spikes, bank, "ngspice"), coupled)


def test_staged_simulation_with_ideal_wires_gives_the_ideal_path():
    weights, spikes = _case()
    bank = felif_bank(NEURON)
    ideal = Crossbar.from_weights(weights, LevelMapping(), dataclasses.replace(CONFIG, r_wire=0.0))
    direct = _trains(ideal.column_jobs(spikes, bank, 1, name="ideal", simulator="vacask"), bank)
    _assert_same_spikes(_staged(ideal, spikes, bank, "vacask"), direct)


def test_current_jobs_reject_currents_of_another_shape():
    weights, spikes = _case()
    crossbar = Crossbar.from_weights(weights, LevelMapping(), CONFIG)
    with pytest.raises(ValueError, match=r"currents must be \[steps, 3\]"):
        crossbar.current_jobs(np.zeros((10, 2)), felif_bank(NEURON))
    with pytest.raises(ValueError, match="spikes must be 0/1"):
        crossbar.staged_read([spikes[:, :4]])
