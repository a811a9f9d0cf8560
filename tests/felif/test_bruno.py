"""BRUNO's step: the value is the fine forward, the gradient the Jacobian of one coarse Euler step."""
from __future__ import annotations

import pytest
import torch
from torch.autograd.functional import jacobian

from cosim.felif import physics
from cosim.felif.bruno import bruno_step, coarse_step
from cosim.felif.kernel import fine_forward
from cosim.felif.layer import FeLIFLayer
from cosim.felif.physics import FeLIFParameters, FeLIFState
from cosim.felif.step import StepConfig

PARAMS = FeLIFParameters()
CFG = StepConfig()


def sample_states(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """float64 (V, P, I_in) where the coarse Euler step neither clips nor overshoots (r dt < 1), with fields
    from where nothing switches to where the rate term dominates the Jacobian."""
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(50 * n, generator=g, dtype=torch.float64) * 2.0 - 1.0
    p = (torch.rand(50 * n, generator=g, dtype=torch.float64) * 2 - 1) * PARAMS.p_s
    i_in = torch.rand(50 * n, generator=g, dtype=torch.float64) * 10e-9
    out = physics.euler_step(FeLIFState(v, p), i_in, PARAMS, CFG.dt)
    rate = physics.switching_rate(physics.field(v, p, PARAMS), PARAMS)
    ok = (out.v > PARAMS.v_min) & (out.v < PARAMS.v_max) & (out.p.abs() < PARAMS.p_s) & (rate * CFG.dt < 1)
    assert int(ok.sum()) >= n
    return v[ok][:n], p[ok][:n], i_in[ok][:n]


def bruno_map(cfg: StepConfig):
    def run(v, p, i_in):
        _, state = bruno_step(i_in, FeLIFState(v, p), torch.zeros_like(v), PARAMS, cfg)
        return state.v, state.p
    return run


def euler_map(cfg: StepConfig):
    def run(v, p, i_in):
        state = physics.euler_step(FeLIFState(v, p), i_in, PARAMS, cfg.dt, detach_rate=cfg.rate_grad == "stop")
        return state.v, state.p
    return run


@pytest.mark.parametrize("rate_grad", ["exact", "stop"])
def test_gradient_is_the_coarse_euler_jacobian(rate_grad):
    cfg = StepConfig(rate_grad=rate_grad)
    v, p, i_in = sample_states(12, seed=1)
    got = jacobian(bruno_map(cfg), (v, p, i_in))
    want = jacobian(euler_map(cfg), (v, p, i_in))
    for got_row, want_row in zip(got, want):
        for g, w in zip(got_row, want_row):
            torch.testing.assert_close(g, w, rtol=1e-12, atol=0)
    if rate_grad == "exact":
        stopped = jacobian(euler_map(StepConfig(rate_grad="stop")), (v, p, i_in))
        assert (got[1][1] - stopped[1][1]).abs().max() > 1e-3, "the rate term must matter at these states"


def test_value_is_the_fine_forward():
    v, p, i_in = sample_states(12, seed=2)
    _, state = bruno_step(i_in, FeLIFState(v, p), torch.zeros_like(v), PARAMS, CFG)
    fine = fine_forward(FeLIFState(v, p), i_in, PARAMS, CFG)
    assert torch.equal(state.v, fine.v) and torch.equal(state.p, fine.p)


@pytest.mark.parametrize("rate_grad", ["exact", "stop"])
def test_gradient_matches_the_hand_derived_jacobian(rate_grad):
    """REFERENCE.md section 2's formulas (t_E = dr/dE, zero for the stopped rate gradient)."""
    cfg = StepConfig(rate_grad=rate_grad)
    v, p, i_in = sample_states(12, seed=3)
    (dvv, dvp, dvi), (dpv, dpp, dpi) = (tuple(torch.diagonal(d) for d in row)
                                        for row in jacobian(bruno_map(cfg), (v, p, i_in)))
    dt, a, c_tot, c_div, d_div = cfg.dt, PARAMS.area, PARAMS.c_tot, PARAMS.c_div, PARAMS.d_div
    e = physics.field(v, p, PARAMS)
    r = physics.switching_rate(e, PARAMS)
    t_e = physics.switching_rate_derivative(e, PARAMS) if rate_grad == "exact" else torch.zeros_like(e)
    i_pa = a * (torch.sign(e) * PARAMS.p_s - p)
    di_p_dp = -a * r - i_pa * t_e * d_div
    di_p_dv = i_pa * t_e * c_div
    di_leak_dv = PARAMS.i0 * a * torch.exp(v / PARAMS.v_t) * torch.sign(v) / PARAMS.v_t
    torch.testing.assert_close(dvv, 1 + dt / c_tot * (-di_leak_dv - di_p_dv), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(dvp, -dt / c_tot * di_p_dp, rtol=1e-10, atol=1e-6)
    torch.testing.assert_close(dpv, dt / a * c_div * t_e * i_pa, rtol=1e-10, atol=1e-18)
    torch.testing.assert_close(dpp, 1 + dt * di_p_dp / a, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(dvi, torch.full_like(v, dt / c_tot), rtol=1e-12, atol=0)
    assert torch.all(dpi == 0)


def test_guard_where_euler_overshoots():
    """With r dt > 1 the guarded coarse step switches exactly to sign(E) P_s: no gradient through P."""
    v = torch.tensor([2.0, 1.2], dtype=torch.float64, requires_grad=True)
    p = torch.tensor([0.1, -0.2], dtype=torch.float64, requires_grad=True)
    rate = physics.switching_rate(physics.field(v, p, PARAMS), PARAMS)
    assert torch.all(rate * CFG.dt > 1)
    guarded = coarse_step(FeLIFState(v, p), torch.zeros_like(v), PARAMS, CFG, guard=True)
    assert torch.allclose(guarded.p, torch.full_like(p, PARAMS.p_s))
    (grad_v, grad_p) = torch.autograd.grad(guarded.p.sum(), (v, p))
    assert torch.all(grad_v == 0) and torch.all(grad_p == 0)
    plain = coarse_step(FeLIFState(v, p), torch.zeros_like(v), PARAMS, CFG)
    assert plain.v.min() == PARAMS.v_min, "unguarded, the overshoot drives V into the clip"


@pytest.mark.parametrize("surrogate", ["superspike", "tanh"])
def test_spike_surrogate_gradient(surrogate):
    cfg = StepConfig(surrogate=surrogate)
    v, p, i_in = sample_states(8, seed=4)
    i_in = i_in.clone().requires_grad_()
    spikes, state = bruno_step(i_in, FeLIFState(v, p), torch.zeros_like(v), PARAMS, cfg)
    (grad,) = torch.autograd.grad(spikes.sum(), i_in)
    x = state.v.detach() - PARAMS.v_thr
    slope = 1 / (1 + cfg.beta * x.abs()) if surrogate == "superspike" else 1 - torch.tanh(x) ** 2
    torch.testing.assert_close(grad, slope * CFG.dt / PARAMS.c_tot, rtol=1e-12, atol=0)


def test_reset_after_a_spike_stops_the_gradient():
    v = torch.tensor([0.3, 0.3], dtype=torch.float64, requires_grad=True)
    p = torch.tensor([-0.1, -0.1], dtype=torch.float64, requires_grad=True)
    i_in = torch.tensor([3e-10, 3e-10], dtype=torch.float64, requires_grad=True)
    s_prev = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    spikes, state = bruno_step(i_in, FeLIFState(v, p), s_prev, PARAMS, CFG)
    assert state.v[0] == PARAMS.v_reset and state.p[0] == -PARAMS.p_s and spikes[0] == 0
    grads = torch.autograd.grad(state.v.sum() + state.p.sum(), (v, p, i_in, s_prev), allow_unused=True)
    assert all(g[0] == 0 for g in grads[:3]) and all(g[1] != 0 for g in grads[:3])
    assert grads[3] is None or torch.all(grads[3] == 0), "no gradient into the previous spike"


def test_refractory_one_spike_per_two_steps_at_huge_input():
    layer = FeLIFLayer(3, dtype=torch.float64)
    x = torch.tensor([1e6, 50.0, 5.0], dtype=torch.float64).expand(12, 1, 3)  # 1 mA, 50 nA, 5 nA
    spikes = layer(x)[:, 0]
    assert spikes[:, 0].tolist() == [1, 0] * 6, "maximal rate: every other step"
    assert spikes[:, 1].tolist() == [1, 0] * 6
    assert spikes[:, 2].nonzero().flatten().tolist() == [2, 6, 10]
    assert torch.all(spikes[1:] * spikes[:-1] == 0), "the step after a spike never spikes"


@pytest.mark.parametrize("rate_grad", ["exact", "stop"])
def test_finite_on_10000_random_states_float32(rate_grad):
    """One step from 10,000 random states incl. V at the clips, P saturated, no/huge/negative-huge input."""
    n = 10_000
    g = torch.Generator().manual_seed(5)
    v = torch.rand(n, generator=g) * 10 - 5
    v[:500], v[500:1000], v[1000:1500] = PARAMS.v_max, PARAMS.v_min, 0.0
    p = (torch.rand(n, generator=g) * 2 - 1) * PARAMS.p_s
    p[1500:2000], p[2000:2500] = PARAMS.p_s, -PARAMS.p_s
    i_in = (torch.rand(n, generator=g) * 2 - 1) * 10 ** (torch.rand(n, generator=g) * 8 - 12)
    i_in[2500:3500], i_in[3500:4500], i_in[4500:5500] = 0.0, 1e-3, -1e-3
    s_prev = (torch.rand(n, generator=g) < 0.2).float()
    v, p, i_in = (t.clone().requires_grad_() for t in (v, p, i_in))
    spikes, state = bruno_step(i_in, FeLIFState(v, p), s_prev, PARAMS, StepConfig(rate_grad=rate_grad))
    assert torch.isfinite(state.v).all() and torch.isfinite(state.p).all()
    grads = torch.autograd.grad(spikes.sum() + state.v.sum() + state.p.sum(), (v, p, i_in))
    assert all(torch.isfinite(gr).all() for gr in grads)


def test_finite_over_10000_step_sequence_float32():
    """10,000 coarse steps of random, zero, +-1 mA and intermittent 1 mA inputs; gradients through all of them."""
    layer = FeLIFLayer(8)
    g = torch.Generator().manual_seed(6)
    x = torch.rand(10_000, 2, 8, generator=g) * 20 - 5  # -5..15 nA
    x[:, :, 0], x[:, :, 1], x[:, :, 2] = 0.0, 1e6, -1e6
    x[::7, :, 3] = 1e6
    x.requires_grad_()
    spikes, record = layer(x, record=True)
    assert torch.isfinite(record.v).all() and torch.isfinite(record.p).all()
    assert record.v.max() <= PARAMS.v_max and record.v.min() >= PARAMS.v_min
    (spikes.sum() + record.v.sum() + record.p.sum()).backward()
    assert torch.isfinite(x.grad).all()
    assert spikes[:, :, 1].mean() == 0.5, "1 mA: one spike every other step"
