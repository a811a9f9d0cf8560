"""Crossbar generator in ngspice: currents against the ideal dot product, IR-drop error growth, spike inputs,
parameter checks."""
from __future__ import annotations

import numpy as np
import pytest

from cosim.devices.characterize import characterize
from cosim.devices.crossbar import Crossbar, CrossbarConfig, NeuronBank
from cosim.devices.rram import LevelMapping
from cosim.spice import run, run_many


def _line_currents(result, crossbar: Crossbar) -> np.ndarray:
    return np.array([result[f"i(vs{b})"] for b in range(2 * crossbar.cols)])


def _outputs(result, crossbar: Crossbar) -> np.ndarray:
    return np.array([result[f"i(vout{j})"] for j in range(crossbar.cols)])


@pytest.mark.parametrize("read_model", ["sinh", "linear"])
def test_ideal_wires_give_g_times_v_and_the_weighted_sum_at_full_size(read_model):
    rng = np.random.default_rng(0)
    mapping = LevelMapping()
    weights = rng.integers(-3, 4, size=(256, 27))  # 13,824 devices
    crossbar = Crossbar.from_weights(weights, mapping, CrossbarConfig(read_model=read_model))
    spikes = (rng.random(256) < 0.5).astype(int)
    result = run(crossbar.op_job(mapping.v_read * spikes))
    # Each bit line carries sum_i G_i v_i, G the chord conductance at v_read (the read nonlinearity accounted).
    expected_lines = (crossbar.lines * (mapping.v_read * spikes)[:, None]).sum(axis=0)
    assert np.allclose(_line_currents(result, crossbar), expected_lines, rtol=0.01)
    # The mirrored outputs are the quantised dot product times the current per weight level.
    expected = crossbar.config.mirror_gain * mapping.v_read * mapping.weight_step_s * (spikes @ weights)
    assert np.allclose(_outputs(result, crossbar), expected, rtol=0.01, atol=1e-3 * np.abs(expected).max())


def test_wire_resistance_error_grows_with_array_size():
    rng = np.random.default_rng(1)
    config = CrossbarConfig(r_wire=2.0, read_model="linear")
    jobs, crossbars, inputs = [], [], []
    for rows in (8, 16, 32):
        crossbar = Crossbar.from_weights(rng.integers(-3, 4, size=(rows, 8)), LevelMapping(), config)
        v = config.v_read * (rng.random(rows) < 0.5)
        crossbars.append(crossbar)
        inputs.append(v)
        jobs.append(crossbar.op_job(v))
    errors = []
    for crossbar, v, result in zip(crossbars, inputs, run_many(jobs, progress=False, raise_errors=True)):
        ideal = crossbar.ideal_line_currents(v)
        errors.append(np.linalg.norm(_line_currents(result, crossbar) - ideal) / np.linalg.norm(ideal))
    assert errors[0] > 1e-4
    assert errors[0] < errors[1] < errors[2]


@pytest.mark.parametrize("r_wire, read_model, rows, cols", [(0.0, "sinh", 12, 3), (1.0, "sinh", 12, 3),
                                                            (0.0, "linear", 256, 27)])
def test_spike_trains_drive_rows_for_one_coarse_step(r_wire, read_model, rows, cols):
    rng = np.random.default_rng(2)
    config = CrossbarConfig(r_wire=r_wire, read_model=read_model, dt=1e-4, edge=1e-6)
    crossbar = Crossbar.from_weights(rng.integers(-3, 4, size=(rows, cols)), LevelMapping(), config)
    spikes = (rng.random((6, rows)) < 0.4).astype(int)
    spikes[:, 0] = [1, 1, 0, 1, 0, 0]  # held across steps, and isolated
    result = run(crossbar.tran_job(spikes, step=config.dt / 20))
    mid_step = (np.arange(6) + 0.5) * config.dt
    simulated = np.array([np.interp(mid_step, result.x, result[f"i(vout{j})"]) for j in range(cols)]).T
    # The sinh model with ideal wires reproduces the ideal currents; with wires, the op of the same inputs.
    if r_wire == 0:
        expected = crossbar.ideal_outputs(config.v_read * spikes)
    else:
        ops = run_many([crossbar.op_job(config.v_read * s) for s in spikes], progress=False, raise_errors=True)
        expected = np.array([_outputs(op, crossbar) for op in ops])
    assert np.allclose(simulated, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def test_bad_crossbar_parameters_are_rejected():
    mapping = LevelMapping()
    with pytest.raises(ValueError, match="r_wire"):
        CrossbarConfig(r_wire=-1.0)
    with pytest.raises(ValueError, match="read_model"):
        CrossbarConfig(read_model="spline")
    with pytest.raises(ValueError, match="window"):
        Crossbar(np.full((2, 2), 1.0), np.full((2, 2), 1e-5))  # 1 S: far beyond the device's low-resistance bound
    with pytest.raises(ValueError, match="> 0"):
        Crossbar(np.full((2, 2), -1e-5), np.full((2, 2), 1e-5))
    with pytest.raises(ValueError, match="-3..3"):
        Crossbar.from_weights(np.array([[4]]), mapping)
    with pytest.raises(ValueError, match="v_read"):
        Crossbar.from_weights(np.array([[1]]), mapping, CrossbarConfig(v_read=0.2))
    crossbar = Crossbar.from_weights(np.array([[1, -1]]), mapping)
    with pytest.raises(ValueError, match="spikes"):
        crossbar.input_sources(np.array([[2]]))


def test_mirrored_currents_feed_a_bank_of_neuron_subcircuits(tmp_path):
    # The simplest "neuron": a capacitor integrating its input current, so v(in<j>) is the delivered charge / C.
    library = tmp_path / "integrator.lib"
    library.write_text(".subckt integrator in params: c=1e-12\nC1 in 0 {c}\n.ends integrator\n")
    bank = NeuronBank("integrator", (str(library),), ports=("in",), params=((("c", 1e-9),),))
    rng = np.random.default_rng(3)
    config = CrossbarConfig(dt=1e-4, edge=1e-6)
    crossbar = Crossbar.from_weights(rng.integers(-3, 4, size=(16, 4)), LevelMapping(), config)
    spikes = (rng.random((5, 16)) < 0.5).astype(int)
    result = run(crossbar.tran_job(spikes, neurons=bank))
    charge = crossbar.ideal_outputs(config.v_read * spikes).sum(axis=0) * config.dt  # edges: a few 1e-3 of it
    final = np.array([result[f"v(in{j})"][-1] for j in range(4)])
    assert np.allclose(final, charge / 1e-9, rtol=0.02, atol=0.02 * np.abs(charge / 1e-9).max())


def test_quick_characterisation_writes_data_plots_and_summary(tmp_path):
    summary = characterize("crossbar", tmp_path, quick=True)
    for name in ("column_currents_vs_ideal.png", "error_vs_size.png", "spike_transient.png", "crossbar.npz",
                 "summary.json"):
        assert (tmp_path / name).is_file()
    assert summary["ideal_error_rel"] < 0.01
    errors = list(summary["error_by_size"]["1"].values())
    assert errors == sorted(errors) and errors[0] > 0
