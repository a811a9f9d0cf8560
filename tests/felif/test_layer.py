"""FeLIFLayer: the nn.Module shell (current scale, dtype, per-neuron parameters, records, streaming, methods)."""
from __future__ import annotations

import pytest
import torch

from cosim.felif.bruno import bruno_step
from cosim.felif.layer import METHODS, FeLIFLayer, step_method
from cosim.felif.physics import FeLIFParameters, FeLIFState, initial_state
from cosim.felif.step import StepConfig


def inputs(t: int, batch: int, n: int, seed: int, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(t, batch, n, generator=g) * 12).to(dtype)


def test_forward_is_the_step_method_on_scaled_currents():
    layer = FeLIFLayer(6, current_scale=0.5e-9, dtype=torch.float64)
    x = inputs(15, 3, 6, seed=1, dtype=torch.float64).requires_grad_()
    spikes, record = layer(x, record=True)
    params = FeLIFParameters()
    state = initial_state((3, 6), params, torch.float64)
    s = torch.zeros(3, 6, dtype=torch.float64)
    x_ref = x.detach().clone().requires_grad_()
    expected, vs = [], []
    for x_t in x_ref:
        s, state = bruno_step(x_t * 0.5e-9, state, s, params, StepConfig())
        expected.append(s)
        vs.append(state.v)
    assert torch.equal(spikes, torch.stack(expected))
    assert torch.equal(record.v, torch.stack(vs))
    assert 0 < spikes.sum() < spikes.numel()
    (spikes.sum() + record.v.sum()).backward()
    (torch.stack(expected).sum() + torch.stack(vs).sum()).backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-12, atol=0)


def test_dtypes_and_shapes():
    layer = FeLIFLayer(4)
    x = inputs(5, 2, 4, seed=2)
    spikes, record = layer(x, record=True)
    assert spikes.shape == (5, 2, 4) and spikes.dtype == torch.float32
    assert record.v.shape == record.p.shape == (5, 2, 4) and record.v.dtype == torch.float32
    layer64 = FeLIFLayer(4, dtype=torch.float64)
    spikes64, record64 = layer64(x, record=True)
    assert spikes64.dtype == torch.float32, "spikes come back in the input's dtype"
    assert record64.v.dtype == torch.float64
    assert torch.equal(spikes, spikes64)
    with pytest.raises(ValueError, match=r"\[T, batch, 4\]"):
        layer(torch.zeros(5, 4))
    with pytest.raises(ValueError, match="current_scale"):
        FeLIFLayer(4, current_scale=0.0)


def test_per_neuron_parameters_are_buffers():
    area = torch.linspace(20e-12, 30e-12, 4, dtype=torch.float64)
    layer = FeLIFLayer(4, params=FeLIFParameters(area=area, v_thr=2.0))
    assert layer.param_area.dtype == torch.float32
    assert "param_area" in layer.state_dict()
    assert layer.params.v_thr == 2.0 and torch.equal(layer.params.area, area.float())
    x = torch.full((20, 1, 4), 5.0)
    spikes = layer(x)
    first = [int(spikes[:, 0, j].nonzero()[0]) for j in range(4)]
    assert first == sorted(first) and first[0] < first[-1], "larger FeCaps take longer to reach threshold"
    layer.params = FeLIFParameters()
    assert "param_area" not in layer.state_dict()
    with pytest.raises(ValueError, match="does not broadcast"):
        FeLIFLayer(4, params=FeLIFParameters(area=torch.full((3,), 25e-12)))
    with pytest.raises(ValueError, match="area must be > 0"):
        FeLIFLayer(4, params=FeLIFParameters(area=-1.0))


def test_stateful_streaming_equals_one_long_call():
    x = inputs(20, 2, 5, seed=3)
    whole = FeLIFLayer(5)(x)
    stream = FeLIFLayer(5, stateful=True)
    parts = torch.cat([stream(x[:7]), stream(x[7:])])
    assert torch.equal(parts, whole)
    stream.reset_state(2)
    assert torch.equal(stream(x[:7]), whole[:7])
    with pytest.raises(ValueError, match=r"reset_state\(3\)"):
        stream(inputs(4, 3, 5, seed=4))
    stateless = FeLIFLayer(5)
    assert torch.equal(stateless(x[:7]), stateless(x[:7])), "without stateful every call starts at rest"


def test_methods_registry():
    with pytest.raises(ValueError, match="registered: .*bruno"):
        FeLIFLayer(3, method="no-such-method")

    def stopped_rate_bruno(i_in, state, s_prev, params, cfg):
        return bruno_step(i_in, state, s_prev, params, StepConfig(rate_grad="stop"))

    METHODS["test_stopped"] = stopped_rate_bruno
    try:
        assert step_method("test_stopped") is stopped_rate_bruno
        x = inputs(6, 1, 3, seed=5)
        assert torch.equal(FeLIFLayer(3, method="test_stopped")(x), FeLIFLayer(3)(x))
    finally:
        del METHODS["test_stopped"]
    assert step_method("coarse") is METHODS["coarse"], "the baselines register themselves on first use"


def test_gradient_reaches_the_synaptic_weights():
    torch.manual_seed(0)
    linear = torch.nn.Linear(10, 4, bias=False)
    layer = FeLIFLayer(4, current_scale=2e-9)
    x = (torch.rand(30, 8, 10) < 0.3).float()
    spikes = layer(linear(x))
    spikes.sum().backward()
    assert linear.weight.grad is not None
    assert torch.isfinite(linear.weight.grad).all() and linear.weight.grad.abs().sum() > 0


def test_state_types():
    layer = FeLIFLayer(2, stateful=True)
    layer.reset_state(3)
    state, s = layer._state
    assert isinstance(state, FeLIFState) and state.v.shape == (3, 2) and torch.all(state.p == -0.22)
    assert torch.all(s == 0)


def test_cycle_to_cycle_variability_redraws_every_call():
    import torch

    from cosim.felif.layer import FeLIFLayer
    from cosim.felif.step import StepConfig

    x = torch.full((6, 2, 8), 5.0)  # 5 nA at the default 1 nA per unit: spikes every 4th step at rest
    cfg = StepConfig(h=1e-5)
    still = FeLIFLayer(8, cfg=cfg)
    assert torch.equal(*(still(x, record=True)[1].v for _ in range(2)))

    noisy = FeLIFLayer(8, cfg=cfg, c2c_sigma=0.05)
    first, second = (noisy(x, record=True)[1].v for _ in range(2))
    assert not torch.equal(first, second)
    # a spread around the nominal neuron: compare the first step, before a spike can shift by a step
    spread = (first[0] - still(x, record=True)[1].v[0]).abs()
    assert 0 < spread.max() < 0.5


def test_negative_cycle_to_cycle_sigma_is_rejected():
    import pytest

    from cosim.felif.layer import FeLIFLayer

    with pytest.raises(ValueError, match="c2c_sigma"):
        FeLIFLayer(3, c2c_sigma=-0.1)
