"""LIF and recurrent LIF layers (cosim.snn.lif): decay, threshold, reset by subtraction, clamps, surrogate."""
from __future__ import annotations

import pytest
import torch

from cosim.snn.lif import LIF, LIFParameters, RecurrentLIF, initial_lif_state, lif_sequence, lif_step


def _mem_trace(x: torch.Tensor, params: LIFParameters) -> tuple[list[float], list[float]]:
    state = initial_lif_state((1, 1))
    mems, spikes = [], []
    for x_t in x:
        s, state = lif_step(x_t.reshape(1, 1), state, params)
        mems.append(float(state.mem))
        spikes.append(float(s))
    return mems, spikes


def test_decay_without_spikes():
    params = LIFParameters(mem_decay=0.9, syn_decay=0.8)
    x = torch.tensor([0.3, 0.0, 0.0, 0.0])
    mems, spikes = _mem_trace(x, params)
    syn, mem = 0.0, 0.0
    for x_t, got in zip(x.tolist(), mems):
        syn = 0.8 * syn + x_t
        mem = 0.9 * mem + syn
        assert got == pytest.approx(mem, rel=1e-6)
    assert spikes == [0, 0, 0, 0]


def test_threshold_and_reset_by_subtraction_at_the_next_step():
    params = LIFParameters(mem_decay=1.0, syn_decay=0.5)
    mems, spikes = _mem_trace(torch.full((6,), 0.3), params)
    first = spikes.index(1.0)
    assert mems[first] > 1.0 and all(m <= 1.0 for m in mems[:first])
    syn_next = 0.3 * sum(0.5**k for k in range(first + 2))
    assert mems[first + 1] == pytest.approx(mems[first] + syn_next - 1.0, rel=1e-6)


def test_decays_are_clamped_to_half_and_one():
    x = torch.rand(30, 2, 3)
    clamped = lif_sequence(x, LIFParameters(mem_decay=0.5, syn_decay=1.0))
    assert torch.equal(lif_sequence(x, LIFParameters(mem_decay=0.2, syn_decay=1.3)), clamped)
    layer = LIF(3, learn_decay=True)
    with torch.no_grad():
        layer.mem_decay.copy_(torch.tensor([0.3, 0.7, 1.2]))
    layer(x * 2).sum().backward()
    grad = layer.mem_decay.grad
    assert grad[0] == 0 and grad[2] == 0 and grad[1] != 0, "no gradient outside the clamp range"


def test_learnable_or_fixed_decays():
    assert {n for n, _ in LIF(4, learn_decay=True).named_parameters()} == {"mem_decay", "syn_decay"}
    fixed = LIF(4)
    assert list(fixed.parameters()) == [] and {n for n, _ in fixed.named_buffers()} == {"mem_decay", "syn_decay"}
    with pytest.raises(ValueError, match=r"\[T, batch, 4\]"):
        fixed(torch.zeros(3, 4))


def test_superspike_surrogate_and_no_gradient_through_the_reset():
    mem = torch.tensor([[0.7, 1.2]], requires_grad=True)
    state = initial_lif_state((1, 2))._replace(mem=mem, spikes=torch.tensor([[0.0, 1.0]], requires_grad=True))
    params = LIFParameters(mem_decay=1.0, syn_decay=1.0, steepness=10.0)
    spikes, new = lif_step(torch.zeros(1, 2), state, params)
    (g_mem,) = torch.autograd.grad(spikes.sum(), mem, retain_graph=True)
    v = new.mem.detach()
    torch.testing.assert_close(g_mem, 1.0 / (1.0 + 10.0 * (v - 1.0).abs()))
    assert torch.autograd.grad(new.mem.sum(), state.spikes, allow_unused=True)[0] is None


def test_recurrent_layer_adds_the_previous_spikes_through_its_weights():
    torch.manual_seed(1)
    layer = RecurrentLIF(5, bits=None)
    x = torch.rand(20, 2, 5)
    w = layer.recurrent.weight
    expected, state = [], initial_lif_state((2, 5))
    for x_t in x:
        s, state = lif_step(x_t + state.spikes @ w.T, state, layer.params)
        expected.append(s)
    out = layer(x)
    assert torch.equal(out, torch.stack(expected))
    assert not torch.equal(out, LIF(5)(x)), "the recurrence changes the spikes"
    out.sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0


def test_quantised_recurrent_weights_are_drawn_once_per_sequence():
    torch.manual_seed(2)
    layer = RecurrentLIF(6, bits=3)
    x = torch.rand(15, 1, 6)
    torch.manual_seed(3)
    out = layer(x)
    torch.manual_seed(3)
    w_rec = layer.recurrent.sample_weight()
    assert torch.equal(out, lif_sequence(x, layer.params, w_rec))
