"""Quantised RRAM synapses (cosim.snn.synapses): levels, unbiased stochastic rounding, STE, level tables."""
from __future__ import annotations

import json

import pytest
import torch

from cosim.snn.synapses import (
    ConductanceLevels,
    LevelTable,
    QuantizedLinear,
    UniformLevels,
    integer_levels,
    level_table_from_dict,
    max_level,
)


def _layer(bits: int | None = 3, **kw) -> QuantizedLinear:
    torch.manual_seed(0)
    return QuantizedLinear(8, 6, bits=bits, **kw)


def _draws(layer: QuantizedLinear, n: int) -> torch.Tensor:
    with torch.no_grad():
        return torch.stack([layer.sample_weight() for _ in range(n)])


@pytest.mark.parametrize("bits", [3, 4, 8])
def test_levels_are_the_symmetric_integers(bits):
    layer = _layer(bits)
    step = layer.weight.detach().abs().max() / (2 ** (bits - 1) - 0.5)
    levels = _draws(layer, 400) / step
    torch.testing.assert_close(levels, levels.round(), rtol=0, atol=1e-4)
    found = set(levels.round().to(torch.int64).unique().tolist())
    top = max_level(bits)
    assert found <= set(range(-top, top + 1))
    if bits == 3:
        assert found == set(range(-3, 4)), "3 bits: exactly the 7 levels -3..3"
    assert max(abs(q) for q in found) == top, "the largest weight sits on the top level"


def test_stochastic_rounding_is_unbiased_and_resampled_in_eval():
    layer = _layer(3)
    with torch.no_grad():  # largest weight maps to 3.5; keep the others inside +-3 levels where E[q] = x holds
        w = layer.weight
        w.clamp_(-0.8 * w.abs().max(), 0.8 * w.abs().max())
        w[0, 0] = 1.25 * w.abs().max()
    layer.eval()
    n = 4000
    draws = _draws(layer, n)
    assert not torch.equal(draws[0], draws[1]), "a fresh draw on every call, also in eval mode"
    step = layer.weight.abs().max() / 3.5
    x = layer.weight.detach() / step
    inside = x.abs() <= 3
    frac = x - x.floor()
    standard_error = step * torch.sqrt(frac * (1 - frac)) / n**0.5
    error = (draws.mean(0) - layer.weight.detach()).abs()
    assert bool((error[inside] <= 5 * standard_error[inside] + 1e-7).all())
    assert (error[inside] > 0).any()


def test_straight_through_gradient_reaches_the_float_weights():
    layer = _layer(3)
    reference = torch.nn.Linear(8, 6, bias=False)
    with torch.no_grad():
        reference.weight.copy_(layer.weight)
    x = torch.randn(5, 3, 8)
    g = torch.randn(5, 3, 6)
    (layer(x) * g).sum().backward()
    (reference(x) * g).sum().backward()
    torch.testing.assert_close(layer.weight.grad, reference.weight.grad)


def test_float_mode_and_bias():
    layer = _layer(None, bias=True)
    x = torch.randn(4, 8)
    torch.testing.assert_close(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias))
    with pytest.raises(ValueError, match="no integer levels"):
        layer.integer_levels()
    with pytest.raises(ValueError, match="needs bits"):
        QuantizedLinear(2, 2, bits=None, level_table=UniformLevels(3))
    with pytest.raises(ValueError, match="levels"):
        QuantizedLinear(2, 2, bits=4, level_table=UniformLevels(3))


def test_all_zero_weights_give_zero_not_nan():
    layer = _layer(3)
    with torch.no_grad():
        layer.weight.zero_()
    assert torch.equal(layer(torch.ones(2, 8)), torch.zeros(2, 6))


def _device_table() -> ConductanceLevels:
    # four states of one device, 10 uS apart, 1 uS programming spread each (3 bits through a differential pair)
    return ConductanceLevels.from_device_states([5e-6, 15e-6, 25e-6, 35e-6], [1e-6, 1e-6, 1.5e-6, 2e-6])


@pytest.mark.parametrize("table", [UniformLevels(4), UniformLevels(3, spread=0.1), _device_table()])
def test_level_table_round_trip(table):
    assert isinstance(table, LevelTable)
    rebuilt = level_table_from_dict(json.loads(json.dumps(table.to_dict())))
    assert rebuilt == table
    for a, b in zip(rebuilt.mean_spread(), table.mean_spread()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="unknown level table kind"):
        level_table_from_dict({"kind": "pcm"})


def test_conductance_table_levels_from_a_differential_pair():
    table = _device_table()
    means, spreads = table.mean_spread()
    assert table.max_level == 3 and table.g_unit == pytest.approx(10e-6)
    torch.testing.assert_close(means, torch.arange(-3.0, 4.0, dtype=torch.float64))
    g_plus, g_minus = table.conductances(torch.tensor([-3, 0, 2]))
    torch.testing.assert_close(g_plus, torch.tensor([5e-6, 5e-6, 25e-6], dtype=torch.float64))
    torch.testing.assert_close(g_minus, torch.tensor([35e-6, 5e-6, 5e-6], dtype=torch.float64))
    assert spreads[3] == pytest.approx(2**0.5 * 0.1) and spreads[0] == pytest.approx((2e-6**2 + 1e-6**2) ** 0.5 / 1e-5)


def test_level_spread_is_sampled_per_synapse_on_every_call():
    """Weights sitting on levels: each realised weight scatters around its level's mean by its spread."""
    table = _device_table()
    layer = QuantizedLinear(7, 1, bits=3, level_table=table)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.5]]))  # 3.5 always lands on +3
    step = 1.0
    n = 6000
    draws = _draws(layer, n)[:, 0, :] / step
    means, spreads = table.mean_spread()
    levels = torch.tensor([-3, -2, -1, 0, 1, 2, 3]) + 3
    sample_mean, sample_std = draws.mean(0).double(), draws.std(0).double()
    assert bool(((sample_mean - means[levels]).abs() <= 5 * spreads[levels] / n**0.5).all())
    assert bool(((sample_std / spreads[levels] - 1).abs() <= 5 / (2 * n) ** 0.5).all())


def test_integer_levels_and_export():
    layer = _layer(3)
    levels, step = layer.integer_levels()
    assert levels.dtype == torch.int8 and levels.shape == (6, 8)
    assert int(levels.abs().max()) == 3
    torch.testing.assert_close(levels.double() * step, layer.weight.detach().double(), rtol=0,
                               atol=0.5001 * float(step))  # the largest weight (3.5 steps) is clipped to 3
    exported = json.loads(json.dumps(layer.export()))
    assert exported["bits"] == 3 and exported["levels"] == levels.tolist()
    assert level_table_from_dict(exported["level_table"]) == UniformLevels(3)
    q, _ = integer_levels(torch.linspace(-1, 1, 101), 127)
    assert q.dtype == torch.int8 and int(q.max()) == 127
