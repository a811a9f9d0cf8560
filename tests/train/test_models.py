"""The two networks: shapes, synapse counts, quantisation and variability from the config, and the synaptic
current gain putting the FeLIF neurons in their 0.5-100 nA operating range at initialisation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from cosim.data import synthetic_braille_data
from cosim.felif.layer import FeLIFLayer
from cosim.felif.physics import FeLIFParameters
from cosim.felif.step import StepConfig
from cosim.snn.lif import LIF, RecurrentLIF
from cosim.train.config import ConfigError, load_config
from cosim.train.models import MusicPredictor, TactileClassifier, build_model

FAST = ["model.h=1e-5"]
DEAD_ZONE = 8e-9
"""Constant FeLIF input current (A) from which BRUNO's coarse-step gradient is zero (models.py docstring)."""


def felif_input_current(model: torch.nn.Module, layer: FeLIFLayer, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """|input current| (A) of the FeLIF layer on every step and sample, and the model's spikes."""
    seen = {}
    handle = layer.register_forward_hook(lambda module, inputs, output: seen.update(x=inputs[0].detach()))
    with torch.no_grad():
        out = model(x)
    handle.remove()
    return seen["x"].abs() * layer.current_scale, out.spikes


def chorale_like(batch: int, steps: int, keys: int, voices: int = 4, seed: int = 0) -> torch.Tensor:
    """0/1 rolls with `voices` keys on per step (the JSB chorales average 3.9)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(batch, steps, keys)
    on = torch.stack([torch.randperm(keys, generator=g)[:voices] for _ in range(batch * steps)])
    x.view(batch * steps, keys).scatter_(1, on, 1.0)
    return x


def test_music_network_at_initialisation():
    cfg = load_config("music", FAST)
    torch.manual_seed(0)
    model = build_model(cfg.model, 54, 54)
    assert isinstance(model, MusicPredictor) and isinstance(model.neurons, FeLIFLayer)
    w = model.synapses.weight.detach()
    assert w.shape == (150, 54) and float(w.min()) >= 0 and float(w.max()) <= np.sqrt(1 / 150)
    assert model.readout.bias is not None and model.synapses.bias is None
    assert model.neurons.params.v_thr == 2.0 and model.neurons.cfg.surrogate == "tanh"
    current, spikes = felif_input_current(model, model.neurons, chorale_like(4, 30, 54))
    assert 0.5e-9 < float(current.median()) < 100e-9
    assert 0.05 < float(spikes["hidden"].mean()) < 0.5  # spiking, not saturated (at most 1 spike per 2 steps)
    assert model(chorale_like(2, 7, 54)).logits.shape == (2, 7, 54)


def test_tactile_network_at_initialisation():
    cfg = load_config("tactile", FAST)
    data = synthetic_braille_data(2, seed=0)
    torch.manual_seed(0)
    model = build_model(cfg.model, data.channels, data.n_classes)
    assert isinstance(model, TactileClassifier) and isinstance(model.output, FeLIFLayer)
    synapses = sum(p.numel() for name, p in model.named_parameters() if "synapses" in name)
    assert synapses == 128 * 256 + 256 * 27 == 39_680  # REFERENCE.md section 4
    assert model.hidden.mem_decay.requires_grad and model.gain.shape == model.bias.shape == (128,)
    current, spikes = felif_input_current(model, model.output, data.train.inputs[:32])
    assert 0.5e-9 < float(current.median()) < 100e-9
    assert float((current > DEAD_ZONE).float().mean()) < 0.05  # the output neurons get a training signal
    assert all(0.02 < float(s.mean()) < 0.5 for s in spikes.values()), {k: float(s.mean()) for k, s in spikes.items()}
    out = model(data.train.inputs[:3])
    assert out.logits.shape == (3, 27) and torch.equal(out.logits, out.spikes["output"].sum(0))

    lif = build_model(load_config("tactile-lif").model, data.channels, data.n_classes)
    assert isinstance(lif.output, LIF)


def test_tactile_initialisation_is_configurable():
    """model.encoding_gain / encoding_bias / weight_scale (the real recordings' initialisation)."""
    overrides = ["model.recurrent=true", "model.encoding_gain=[-4, 4]", "model.encoding_bias=[-2, 0]"]
    models = {}
    for scale in (1.0, 0.3):
        torch.manual_seed(0)
        cfg = load_config("tactile-lif", [*overrides, f"model.weight_scale={scale}"])
        models[scale] = build_model(cfg.model, 4, 27)
    small, shipped = models[0.3], models[1.0]
    assert float(small.gain.min()) >= -4 and float(small.gain.max()) <= 4 and float(small.gain.min()) < -1
    assert float(small.bias.min()) >= -2 and float(small.bias.max()) <= 0
    for layer in ("hidden_synapses", "hidden.recurrent", "output_synapses"):
        w_small, w_shipped = (m.get_submodule(layer).weight.detach() for m in (small, shipped))
        assert torch.allclose(w_small, 0.3 * w_shipped), layer
    assert torch.equal(small.gain, shipped.gain)


@pytest.mark.parametrize("bits", [None, 3])
def test_recurrent_lif_network(bits: int | None):
    """model.recurrent: the paper's recurrent-LIF network, its hidden layer recurrent through quantised synapses."""
    cfg = load_config("tactile-lif", ["model.recurrent=true", f"model.bits={bits}" if bits else 'model.bits="float"'])
    data = synthetic_braille_data(2, seed=0)
    torch.manual_seed(0)
    model = build_model(cfg.model, data.channels, data.n_classes)
    assert isinstance(model.hidden, RecurrentLIF) and isinstance(model.output, LIF)
    synapses = sum(p.numel() for name, p in model.named_parameters() if "synapses" in name or "recurrent" in name)
    assert synapses == 128 * 256 + 256 * 256 + 256 * 27 == 105_216  # REFERENCE.md section 4
    recurrent = model.hidden.recurrent
    assert recurrent.bits == bits
    if bits:
        levels = recurrent.sample_weight().detach() / (recurrent.weight.detach().abs().max() / (2 ** (bits - 1) - 0.5))
        assert torch.allclose(levels, levels.round(), atol=1e-4) and int(levels.round().abs().max()) <= 3
    x = data.train.inputs[:8]
    out = model(x)
    F.cross_entropy(out.logits, data.train.labels[:8]).backward()
    assert recurrent.weight.grad is not None and float(recurrent.weight.grad.abs().sum()) > 0
    with torch.no_grad():
        recurrent.weight.zero_()
        torch.manual_seed(1)
        silent = model(x).spikes["hidden"]
        recurrent.weight.fill_(0.5)
        torch.manual_seed(1)
        assert float(model(x).spikes["hidden"].sum()) > float(silent.sum()), "excitatory recurrence adds spikes"
    with pytest.raises(ConfigError, match="model.recurrent"):
        load_config("music", ["model.recurrent=true"])


def count_gradient(current: float, steps: int = 30) -> float:
    """d(spike count)/dI, per nA, of one FeLIF neuron under a constant input current (A), BRUNO as configured."""
    cfg = load_config("tactile", ["model.h=1e-5"]).model
    layer = FeLIFLayer(1, FeLIFParameters(v_thr=cfg.v_thr), StepConfig(h=cfg.h, rate_grad=cfg.rate_grad),
                       current_scale=1e-9)
    x = torch.full((steps, 1, 1), current / 1e-9, requires_grad=True)
    layer(x).sum().backward()
    return float(x.grad.sum())


def test_gradient_dead_zone_above_8_na():
    """The coarse step's V clip leaves no gradient for strong inputs (why the tactile gain is 10 nA/unit)."""
    assert count_gradient(1e-9) > 10 and count_gradient(4e-9) > 0
    assert count_gradient(DEAD_ZONE) == 0 and count_gradient(50e-9) == 0


@pytest.mark.parametrize("bits", [3, 4, 8])
def test_quantised_synapses_take_their_levels(bits: int):
    cfg = load_config("tactile", [f"model.bits={bits}", *FAST])
    torch.manual_seed(0)
    model = build_model(cfg.model, 4, 27)
    for layer in (model.hidden_synapses, model.output_synapses):
        assert layer.bits == bits
        realised = layer.sample_weight().detach()
        step = layer.weight.detach().abs().max() / (2 ** (bits - 1) - 0.5)
        levels = realised / step
        assert torch.allclose(levels, levels.round(), atol=1e-4)
        assert int(levels.round().abs().max()) <= 2 ** (bits - 1) - 1
    float_model = build_model(load_config("tactile", FAST).model, 4, 27)
    assert float_model.hidden_synapses.bits is None


def test_device_variability_is_drawn_once_per_seed():
    cfg = load_config("music", ["model.variability_sigma=0.1", *FAST])
    draws = []
    for seed in (1, 1, 2):
        torch.manual_seed(seed)
        draws.append(build_model(cfg.model, 54, 54).neurons.params)
    assert draws[0].area.shape == (150,) and torch.equal(draws[0].area, draws[1].area)
    assert not torch.equal(draws[0].area, draws[2].area)
    assert 0.05 < float(draws[0].e_a.std() / draws[0].e_a.mean()) < 0.15


def test_cycle_to_cycle_variability_redraws_every_forward():
    cfg = load_config("music", ["model.cycle_to_cycle_sigma=0.1", *FAST])
    torch.manual_seed(0)
    model = build_model(cfg.model, 54, 54)
    assert model.neurons.c2c_sigma == 0.1
    x = (torch.rand(2, 24, 54) < 0.05).float()
    first, second = (model(x).spikes["hidden"] for _ in range(2))
    assert not torch.equal(first, second), "the device parameters must be redrawn on every call"
    quiet = build_model(load_config("music", FAST).model, 54, 54)
    quiet.load_state_dict(model.state_dict())
    assert torch.equal(quiet(x).spikes["hidden"], quiet(x).spikes["hidden"])
    with pytest.raises(ValueError, match="cycle_to_cycle_sigma"):
        load_config("music", ["model.cycle_to_cycle_sigma=-0.1"])
