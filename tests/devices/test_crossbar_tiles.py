"""The array as built: a tiled crossbar (its own wires, sensing and mirrors per tile) in ngspice against the
untiled one, the IR drop of its tiles, and the staged read of a wired linear array (tests/devices/
test_crossbar_staged.py: the sinh read, with neurons)."""
from __future__ import annotations

import numpy as np
import pytest

from cosim.devices.crossbar import Crossbar, CrossbarConfig, NeuronBank, TileConfig
from cosim.devices.rram import LevelMapping
from cosim.spice import run, run_many

ROWS, COLS = 40, 7
TILE = TileConfig(16, 3)
"""Tiles that do not divide the array: 3 row tiles (16, 16, 8 rows) x 3 column tiles (3, 3, 1 pairs)."""


def _outputs(result, crossbar: Crossbar) -> np.ndarray:
    return np.array([float(np.ravel(result[f"i(vout{j})"])[-1]) for j in range(crossbar.cols)])


def _case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(-3, 4, size=(ROWS, COLS)), LevelMapping().v_read * (rng.random(ROWS) < 0.5)


@pytest.mark.parametrize("read_model", ["sinh", "linear"])
def test_tiled_array_with_ideal_wires_equals_the_untiled_one(read_model):
    weights, v = _case(0)
    bars = [Crossbar.from_weights(weights, LevelMapping(), CrossbarConfig(read_model=read_model, tile=tile))
            for tile in (TileConfig(), TILE)]
    untiled, tiled = run_many([bar.op_job(v) for bar in bars], progress=False, raise_errors=True)
    assert bars[1].tiles == ([range(0, 16), range(16, 32), range(32, 40)], [range(0, 3), range(3, 6), range(6, 7)])
    expected = _outputs(untiled, bars[0])
    assert np.allclose(_outputs(tiled, bars[1]), expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())
    # the row tiles' partial sums add up to the outputs, each the ideal partial dot product
    partial = bars[1].partial_outputs(tiled)
    assert partial.shape == (3, COLS)
    assert np.allclose(partial.sum(axis=0), expected, rtol=1e-9, atol=1e-12)
    assert np.allclose(partial, bars[1].ideal_partial_outputs(v), rtol=1e-3, atol=1e-3 * np.abs(partial).max())


def test_tiles_cut_the_ir_drop_and_report_it_per_tile():
    weights, v = _case(1)
    bars = [Crossbar.from_weights(weights, LevelMapping(), CrossbarConfig(r_wire=2.0, read_model="linear",
                                                                          tile=tile))
            for tile in (TileConfig(), TILE)]
    results = run_many([bar.op_job(v) for bar in bars], progress=False, raise_errors=True)
    ideal = bars[0].ideal_outputs(v)
    untiled_error, tiled_error = (np.linalg.norm(_outputs(r, bar) - ideal) / np.linalg.norm(ideal)
                                  for r, bar in zip(results, bars))
    assert 0 < tiled_error < tiled_error * 2 < untiled_error
    errors = bars[1].tile_errors(bars[1].partial_outputs(results[1]), v)
    assert errors.shape == (3, 3) and np.all(errors > 0) and np.all(errors < untiled_error)
    # the untiled array is one tile whose error is the array's
    assert bars[0].tile_errors(bars[0].partial_outputs(results[0]), v)[0, 0] == pytest.approx(untiled_error)


def test_staged_read_of_a_wired_linear_array_gives_its_transient_outputs():
    weights, _ = _case(2)
    config = CrossbarConfig(r_wire=2.0, read_model="linear", tile=TILE, dt=1e-4, edge=1e-6)
    wired = Crossbar.from_weights(weights, LevelMapping(), config)
    spikes = (np.random.default_rng(3).random((5, ROWS)) < 0.4).astype(int)
    read = wired.staged_read([spikes])
    assert read.patterns == ROWS and read.jobs == 9  # each row tile's unit patterns: outputs by superposition
    result = run(wired.tran_job(spikes, step=config.dt / 20))
    middle = (np.arange(5) + 0.5) * config.dt
    coupled = np.array([np.interp(middle, result.x, result[f"i(vout{j})"]) for j in range(COLS)]).T
    assert np.abs(read.currents[0] - coupled).max() < 1e-6 * np.abs(coupled).max()
    ideal = wired.ideal_outputs(config.v_read * spikes)
    assert np.abs(coupled - ideal).max() > 1e-3 * np.abs(coupled).max(), "the wires must matter for this to test"


def test_with_wires_a_job_holds_whole_column_tiles(tmp_path):
    library = tmp_path / "integrator.lib"
    library.write_text(".subckt integrator in params: c=1e-12\nC1 in 0 {c}\n.ends integrator\n")
    bank = NeuronBank("integrator", (str(library),), ports=("in",), params=((("c", 1e-9),),))
    weights, _ = _case(4)
    spikes = np.eye(ROWS, dtype=int)[:2]
    for r_wire, expected in ((0.0, [[0], [1], [2], [3], [4], [5], [6]]), (1.0, [[0, 1, 2], [3, 4, 5], [6]])):
        bar = Crossbar.from_weights(weights, LevelMapping(), CrossbarConfig(r_wire=r_wire, read_model="linear",
                                                                            tile=TILE))
        jobs = bar.column_jobs(spikes, bank, columns_per_job=1)
        assert [list(columns) for _, columns in jobs] == expected


def test_bad_tiles_are_rejected():
    with pytest.raises(ValueError, match="TileConfig.rows"):
        TileConfig(-1, 4)
    with pytest.raises(ValueError, match="TileConfig.cols"):
        TileConfig(4, 2.5)
