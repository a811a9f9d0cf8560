"""IR-drop-aware training: the per-tile first-order model of the tiled array against ngspice, the quantised
synapses read through it, and how the config switches it on and carries it into verification."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from cosim.devices.crossbar import Crossbar, CrossbarConfig, TileConfig
from cosim.devices.rram import LevelMapping
from cosim.snn.synapses import QuantizedLinear
from cosim.spice import run_many
from cosim.surrogates.crossbar_fit import ArrayRead, CrossbarModel, ReadCorrection, tiled_differential_conductance
from cosim.train.config import ConfigError, load_config
from cosim.train.models import build_model
from cosim.verify.export import device_layer


def _model_outputs(bar: Crossbar, x: np.ndarray) -> np.ndarray:
    model = CrossbarModel.of(bar.config, ReadCorrection.analytic(bar.config.v_read, bar.config.device.v0))
    with torch.no_grad():
        g = tiled_differential_conductance(torch.as_tensor(x), torch.as_tensor(bar.g_plus),
                                           torch.as_tensor(bar.g_minus), model, bar.config.tile)
    return g.numpy() * bar.config.v_read * bar.config.mirror_gain


def test_per_tile_model_against_ngspice_on_small_wired_arrays():
    """Tolerance: the model's output error against ngspice is at most 10 % of the IR-drop error it corrects and at
    most 0.3 % of the outputs (measured: 2-4 % of it, 0.02-0.1 %)."""
    rng = np.random.default_rng(4)
    cases = []
    for rows, cols, tile, r_wire, occupancy, read_model in ((48, 10, TileConfig(16, 4), 2.0, 0.2, "sinh"),
                                                            (48, 10, TileConfig(16, 4), 2.0, 0.9, "sinh"),
                                                            (64, 12, TileConfig(32, 8), 1.0, 0.5, "linear")):
        weights = rng.integers(-3, 4, size=(rows, cols))
        bar = Crossbar.from_weights(weights, LevelMapping(), CrossbarConfig(r_wire=r_wire, tile=tile,
                                                                           read_model=read_model))
        cases.append((bar, (rng.random(rows) < occupancy).astype(float)))
    results = run_many([bar.op_job(bar.config.v_read * x) for bar, x in cases], progress=False, raise_errors=True)
    for (bar, x), result in zip(cases, results):
        spice = np.array([float(np.ravel(result[f"i(vout{j})"])[-1]) for j in range(bar.cols)])
        ideal_error = np.linalg.norm(bar.ideal_outputs(bar.config.v_read * x) - spice) / np.linalg.norm(spice)
        model_error = np.linalg.norm(_model_outputs(bar, x) - spice) / np.linalg.norm(spice)
        assert ideal_error > 0.005, "the wires must matter for this to test anything"
        assert model_error < 0.1 * ideal_error and model_error < 0.003, (bar.config.tile, ideal_error, model_error)


def test_ideal_wires_give_the_ideal_product_and_the_model_is_differentiable():
    rng = np.random.default_rng(5)
    g_plus, g_minus = (torch.tensor(rng.uniform(10e-6, 80e-6, size=(20, 5)), requires_grad=True) for _ in range(2))
    x = torch.tensor((rng.random((3, 20)) < 0.5).astype(float))
    tile = TileConfig(8, 2)
    ideal = tiled_differential_conductance(x, g_plus, g_minus, CrossbarModel(0.0), tile)
    assert torch.allclose(ideal, x @ (g_plus - g_minus), rtol=1e-12)
    wired = tiled_differential_conductance(x, g_plus, g_minus, CrossbarModel(1.0), tile)
    assert torch.all((wired - ideal).abs() > 0)
    wired.sum().backward()
    assert torch.isfinite(g_plus.grad).all() and g_plus.grad.abs().sum() > 0


def test_quantised_synapses_read_through_the_array():
    mapping = LevelMapping()
    read = ArrayRead(CrossbarModel(0.0), TileConfig(32, 16), mapping.levels_s[0], mapping.weight_step_s)
    layer = QuantizedLinear(40, 6, bits=3, array=read)
    x = (torch.rand(7, 3, 40) < 0.4).float()
    torch.manual_seed(1)
    out = layer(x)
    torch.manual_seed(1)
    assert torch.allclose(out, F.linear(x, layer.sample_weight()), rtol=1e-5, atol=1e-6)
    wired = QuantizedLinear(40, 6, bits=3, array=ArrayRead(CrossbarModel(1.0), TileConfig(32, 16),
                                                           mapping.levels_s[0], mapping.weight_step_s))
    wired.load_state_dict(layer.state_dict())
    torch.manual_seed(1)
    drop = out - wired(x)
    assert 0 < drop.abs().max() < 0.1 * out.abs().max()
    with pytest.raises(ValueError, match="float weights"):
        QuantizedLinear(4, 2, bits=None, array=read)


def test_the_config_switches_the_model_on_and_verification_uses_it():
    with pytest.raises(ConfigError, match="ir_drop"):
        load_config("tactile", ["model.bits=3", "model.ir_drop=true"])  # no wire resistance
    with pytest.raises(ConfigError, match="r_wire"):
        load_config("tactile", ["model.r_wire=-1"])
    cfg = load_config("tactile", ["model.bits=3", "model.r_wire=1.0", "model.ir_drop=true", "model.hidden=64"])
    torch.manual_seed(0)
    model = build_model(cfg.model, 4, 27)
    assert model.output_synapses.array is not None and model.hidden_synapses.array is None
    layer = device_layer(model)
    spikes = (np.random.default_rng(6).random((5, 64)) < 0.5).astype(float)
    ideal = layer.current_per_level * spikes @ layer.level_means[layer.levels + layer.max_level]
    with_drop = layer.currents(spikes)
    assert 0 < np.abs(with_drop - ideal).max() < 0.1 * np.abs(ideal).max()
