"""The BRUNO baselines (cosim.felif.baselines): fine-step BPTT, checkpointed BPTT, the coarse-only ablation."""
from __future__ import annotations

import pytest
import torch

from cosim.felif import integrators, physics
from cosim.felif.baselines import bptt_ckpt_step, bptt_step, chunk_length, coarse_only_step
from cosim.felif.bruno import bruno_step
from cosim.felif.layer import FeLIFLayer, step_method
from cosim.felif.physics import FeLIFParameters, FeLIFState
from cosim.felif.step import StepConfig

# Some tests run BRUNO on its pure-torch fine loop (same ops as the BPTT loop, no kernel build), which warns.
pytestmark = pytest.mark.filterwarnings("ignore:FeLIF fine forward on the pure-torch loop:RuntimeWarning")

F64 = torch.float64
PARAMS = FeLIFParameters()
TINY = StepConfig(dt=3e-6, h=1e-6)  # 3 sub-steps per coarse step: one small graph to compile (seconds, not a minute)


def _start(v: list[float], p: list[float]) -> tuple[FeLIFState, torch.Tensor]:
    state = FeLIFState(torch.tensor([v], dtype=F64), torch.tensor([p], dtype=F64))
    return state, torch.zeros_like(state.v)


def _roll(step, currents: torch.Tensor, state: FeLIFState, s: torch.Tensor, cfg: StepConfig = TINY, **kw):
    """Run `step` over currents [T, batch, n]: spikes [T, ...], V [T, ...], P [T, ...]."""
    spikes, vs, ps = [], [], []
    for i_t in currents:
        s, state = step(i_t, state, s, PARAMS, cfg, **kw)
        spikes.append(s)
        vs.append(state.v)
        ps.append(state.p)
    return torch.stack(spikes), torch.stack(vs), torch.stack(ps)


def _smooth_loss(step, currents: torch.Tensor, **kw) -> torch.Tensor:
    """A loss of the V and P trajectories from rest (no spike in this regime), smooth in the currents."""
    state, s = _start([0.0, 0.0], [-PARAMS.p_s, -PARAMS.p_s])
    spikes, v, p = _roll(step, currents, state, s, StepConfig(dt=100e-6, h=1e-6), **kw)
    assert spikes.sum() == 0 and v.max() < PARAMS.v_thr, "the finite-difference problem must stay below threshold"
    assert v.max() > 1.0, "the problem must reach the field where the polarisation switches"
    return (v * torch.tensor([1.0, -0.5], dtype=F64)).sum() + 20.0 * p.sum()


CURRENTS = torch.tensor([[[6e-9, 18e-9]], [[9e-9, 15e-9]], [[12e-9, 21e-9]], [[7e-9, 13e-9]]], dtype=F64)


def test_bptt_gradient_matches_finite_differences():
    currents = CURRENTS.clone().requires_grad_()
    (grad,) = torch.autograd.grad(_smooth_loss(bptt_step, currents, backend="eager"), currents)
    fd = torch.empty_like(grad)
    with torch.no_grad():
        for idx in range(currents.numel()):
            eps = 1e-6 * abs(CURRENTS.view(-1)[idx].item())
            plus, minus = CURRENTS.clone(), CURRENTS.clone()
            plus.view(-1)[idx] += eps
            minus.view(-1)[idx] -= eps
            fd.view(-1)[idx] = (_smooth_loss(bptt_step, plus, backend="eager")
                                - _smooth_loss(bptt_step, minus, backend="eager")) / (2 * eps)
    assert grad.abs().min() > 0
    torch.testing.assert_close(grad, fd, rtol=1e-5, atol=0.0)


def _spiking_run(step, **kw):
    """Values and input gradient of a run with spikes, latches and resets; the loss uses the surrogate."""
    currents = torch.tensor([[[30e-9, 60e-9]]], dtype=F64) * torch.linspace(0.5, 1.5, 40, dtype=F64)[:, None, None]
    currents.requires_grad_()
    state, s = _start([2.0, 1.0], [0.2, -0.22])
    spikes, v, p = _roll(step, currents, state, s, TINY, **kw)
    (spikes.sum() + v.sum() + 10.0 * p.sum()).backward()  # not autograd.grad: reentrant checkpointing
    return spikes.detach(), v.detach(), p.detach(), currents.grad


def test_compiled_and_checkpointed_bptt_equal_plain_bptt():
    spikes, v, p, grad = _spiking_run(bptt_step, backend="eager")
    assert spikes[:-1].sum(0).min() >= 1, "every neuron must spike and be reset"
    s2, v2, p2, g2 = _spiking_run(bptt_ckpt_step, backend="eager")  # the very same ops, recomputed
    assert torch.equal(s2, spikes) and torch.equal(v2, v) and torch.equal(p2, p)
    torch.testing.assert_close(g2, grad, rtol=1e-12, atol=0.0)  # summed in another order
    compiled = _spiking_run(bptt_step, backend="compiled")
    assert torch.equal(_spiking_run(bptt_ckpt_step, backend="compiled")[3], compiled[3])
    # inductor's fused exp/pow round differently in the last bits; 40 steps of latches and resets amplify that
    assert torch.equal(compiled[0], spikes)
    for a, b in zip(compiled[1:], (v, p, grad)):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)


def test_bptt_forward_equals_bruno_forward(monkeypatch):
    monkeypatch.setenv("COSIM_FINE_BACKEND", "torch")  # BRUNO's float64 reference loop: the very same ops
    spikes, v, p, _ = _spiking_run(bptt_step, backend="eager")
    s2, v2, p2, _ = _spiking_run(bruno_step)
    assert torch.equal(spikes, s2) and torch.equal(v, v2) and torch.equal(p, p2)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_bptt_gradient_stays_finite_where_switching_is_stiff(dtype, monkeypatch):
    """Membranes at -5 V (the clip), -3 V and past threshold with a saturated FeCap, r h from 25 to 6e4: the
    unguarded Euler Jacobian dP'/dP = 1 - r h overflows within a coarse step of 100 sub-steps (float64 too);
    the guarded sub-step of BPTT keeps the very same values and a finite, non-zero gradient."""
    cfg = StepConfig(dt=100e-6, h=1e-6)
    start = FeLIFState(torch.tensor([[-4.9, -3.0, 2.4, 0.5]], dtype=dtype),
                       torch.tensor([[-0.22, -0.22, 0.22, -0.22]], dtype=dtype))
    currents = torch.tensor([[[-60e-9, -1e-9, 1e-3, 0.0]], [[-30e-9, -0.5e-9, 0.5e-3, 0.0]]], dtype=dtype)

    def run():
        i_in = currents.clone().requires_grad_()
        state, s = start, torch.zeros_like(start.v)
        vs = []
        for i_t in i_in:
            s, state = bptt_step(i_t, state, s, PARAMS, cfg, backend="eager")
            vs.append(state.v)
        (grad,) = torch.autograd.grad(torch.stack(vs).sum() + state.p.sum(), i_in)
        return torch.stack(vs).detach(), grad

    values, grad = run()
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    monkeypatch.setitem(integrators.FINE_STEPS, "euler", physics.euler_step)  # the unguarded Euler sub-step
    plain_values, plain_grad = run()
    assert torch.equal(values, plain_values)
    assert not torch.isfinite(plain_grad).all(), "the stiff regime must overflow the unguarded Euler gradient"


def test_reset_after_spike_overwrites_the_step_and_stops_its_gradient():
    state, _ = _start([2.6, 0.0], [0.2, 0.0])  # neuron 0 spiked in the previous step
    i_in = torch.tensor([[20e-9, 20e-9]], dtype=F64, requires_grad=True)
    s_prev = torch.tensor([[1.0, 0.0]], dtype=F64)
    for step in (bptt_step, bptt_ckpt_step, coarse_only_step):
        i_in.grad = None
        spikes, new = step(i_in, state, s_prev, PARAMS, TINY)
        assert new.v[0, 0] == PARAMS.v_reset and new.p[0, 0] == -PARAMS.p_s and spikes[0, 0] == 0
        (new.v.sum() + new.p.sum()).backward()
        assert i_in.grad[0, 0] == 0 and i_in.grad[0, 1] != 0, step.__name__


def test_coarse_ablation_is_one_euler_step_with_brunos_gradient(monkeypatch):
    monkeypatch.setenv("COSIM_FINE_BACKEND", "torch")
    # neuron 0: small input, r dt < 1 (plain Euler); neuron 1: r dt >> 1, where BRUNO's guard caps the rate
    v0 = torch.tensor([[0.1, 2.4]], dtype=F64, requires_grad=True)
    p0 = torch.tensor([[-0.21, 0.2]], dtype=F64, requires_grad=True)
    i_in = torch.tensor([[0.2e-9, 0.2e-9]], dtype=F64, requires_grad=True)
    state, s = FeLIFState(v0, p0), torch.zeros_like(v0)
    for cfg in (StepConfig(), StepConfig(rate_grad="stop")):
        _, coarse = coarse_only_step(i_in, state, s, PARAMS, cfg)
        expected = physics.euler_step(state, i_in, PARAMS, cfg.dt)
        assert torch.equal(coarse.v, expected.v) and torch.equal(coarse.p, expected.p)
        _, bruno = bruno_step(i_in, state, s, PARAMS, cfg)
        assert not torch.allclose(bruno.v, coarse.v)  # BRUNO's value comes from the fine loop
        for a, b in ((bruno.v, coarse.v), (bruno.p, coarse.p)):
            ga = torch.autograd.grad(a.sum(), (i_in, v0, p0), retain_graph=True, allow_unused=True)
            gb = torch.autograd.grad(b.sum(), (i_in, v0, p0), retain_graph=True, allow_unused=True)
            for x, y in zip(ga, gb):
                torch.testing.assert_close(x if x is not None else torch.zeros_like(v0),
                                           y if y is not None else torch.zeros_like(v0), rtol=1e-12, atol=0.0)
        # neuron 1: the plain Euler value overshoots to the clip, the gradient is still BRUNO's guarded one
        (dv_dv0,) = torch.autograd.grad(coarse.v.sum(), v0)
        assert coarse.v[0, 1] == PARAMS.v_min and bool((dv_dv0 != 0).all())


def test_coarse_ablation_saturates_where_bruno_does_not():
    """5 nA from rest: the 1 ms Euler step jumps past threshold and fires at every non-refractory step; the fine
    forward spikes at steps 2, 6, 10 (REFERENCE.md)."""
    layer = FeLIFLayer(1, method="coarse", current_scale=5e-9, dtype=F64)
    spikes = layer(torch.ones(12, 1, 1, dtype=F64))[:, 0, 0]
    assert spikes.nonzero().flatten().tolist() == list(range(0, 12, 2))


def test_methods_are_registered_and_run_in_the_layer(monkeypatch):
    monkeypatch.setenv("COSIM_BPTT_BACKEND", "eager")
    monkeypatch.setenv("COSIM_FINE_BACKEND", "torch")
    x = torch.tensor([[[1.0, 4.0, 12.0]]], dtype=F64).repeat(5, 2, 1)
    cfg = StepConfig(dt=200e-6, h=1e-6)
    reference = FeLIFLayer(3, cfg=cfg, current_scale=5e-9, dtype=F64)(x)
    assert reference.sum() > 0
    for name, fn in (("bptt", bptt_step), ("bptt_ckpt", bptt_ckpt_step), ("coarse", coarse_only_step)):
        assert step_method(name) is fn
        out = FeLIFLayer(3, cfg=cfg, method=name, current_scale=5e-9, dtype=F64)(x)
        if name != "coarse":
            assert torch.equal(out, reference), name


def test_unknown_backend_and_chunking():
    state, s = _start([0.0], [-0.22])
    with pytest.raises(ValueError, match="BPTT backend"):
        bptt_step(torch.zeros(1, 1, dtype=F64), state, s, PARAMS, TINY, backend="jit")
    assert [chunk_length(n) for n in (1000, 20, 7, 13)] == [10, 10, 7, 1]
