"""The second fine integrator ("exponential"): its Newton solve, its kernel transcription, and how it compares with
explicit Euler at 1 us (close) and at 100 us (stable where Euler is not)."""
from __future__ import annotations

import pytest
import torch

from cosim.felif import kernel, physics
from cosim.felif.integrators import NEWTON_ITERATIONS, exponential_step, fine_forward_reference
from cosim.felif.physics import FeLIFParameters, FeLIFState, initial_state
from cosim.felif.step import StepConfig

PARAMS = FeLIFParameters()
SANITY_CURRENTS = torch.tensor([0.0, 0.5e-9, 1e-9, 2e-9, 5e-9, 10e-9, 50e-9], dtype=torch.float64)


def trajectory(currents: torch.Tensor, cfg: StepConfig, dtype: torch.dtype = torch.float64):
    """V and P after each coarse step (kernel fine forward, reset after a spike), float64 [T, n]."""
    state = initial_state(currents.shape[1:], PARAMS, dtype)
    spiked = torch.zeros(currents.shape[1:], dtype=torch.bool)
    vs, ps = [], []
    for i_k in currents:
        fine = kernel.fine_forward(state, i_k.to(dtype), PARAMS, cfg, frozen=spiked)
        state = physics.reset_state(fine, spiked, PARAMS)
        spiked = state.v > PARAMS.v_thr
        vs.append(state.v)
        ps.append(state.p)
    return torch.stack(vs).double(), torch.stack(ps).double()


def random_states(n: int, dtype: torch.dtype, seed: int) -> tuple[FeLIFState, torch.Tensor]:
    """States over the whole clip box and input currents of either sign from 1 pA to 1 uA."""
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(n, generator=g, dtype=dtype) * 10 - 5
    p = (torch.rand(n, generator=g, dtype=dtype) * 2 - 1) * PARAMS.p_s
    magnitude = 10 ** (torch.rand(n, generator=g, dtype=dtype) * 6 - 12)
    sign = torch.where(torch.rand(n, generator=g, dtype=dtype) < 0.5, -1.0, 1.0).to(dtype)
    return FeLIFState(v, p), sign * magnitude


@pytest.mark.parametrize("h", [1e-6, 1e-4, 1e-3])
def test_newton_solves_the_implicit_switching_equation(h):
    """|dP| = |P_t - P| (1 - exp(-r(|E0| - k|dP|) h)) to 1e-9 relative, from any state, in NEWTON_ITERATIONS."""
    state, current = random_states(20_000, torch.float64, seed=int(h * 1e6))
    nxt = exponential_step(state, current, PARAMS, h)
    q = (current - physics.leakage_current(state.v, PARAMS)) * h
    e0 = physics.field(state.v + q / PARAMS.c_tot, state.p, PARAMS)
    span = (torch.sign(e0) * PARAMS.p_s - state.p).abs()
    k = PARAMS.c_div * PARAMS.area / PARAMS.c_tot + PARAMS.d_div
    u = (nxt.p - state.p).abs()
    end_field = e0.abs() - k * u
    switched = span * -torch.expm1(-h * physics.switching_rate(end_field, PARAMS))
    solved = u > span * 1e-15  # where something switches at all
    assert int(solved.sum()) > 5_000
    assert ((u - switched).abs() <= 1e-9 * span + 1e-18)[solved].all()
    assert (end_field[solved] >= 0).all(), "switching never drives the field past zero"
    charge = PARAMS.c_tot * (nxt.v - state.v) + PARAMS.area * (nxt.p - state.p)
    unclipped = (nxt.v > PARAMS.v_min) & (nxt.v < PARAMS.v_max)
    torch.testing.assert_close(charge[unclipped], q[unclipped], rtol=1e-9, atol=1e-22)
    assert NEWTON_ITERATIONS[torch.float64] >= 1


@pytest.mark.parametrize("h", [1e-6, 1e-4])
def test_kernel_transcribes_the_exponential_step(h):
    cfg = StepConfig(h=h, integrator="exponential")
    state, current = random_states(300, torch.float64, seed=7)
    current = current.abs().clamp(max=2e-8)
    out = kernel.fine_forward(state, current, PARAMS, cfg)
    ref = fine_forward_reference(state, current, PARAMS, cfg)
    torch.testing.assert_close(out.v, ref.v, rtol=0, atol=1e-9)
    torch.testing.assert_close(out.p, ref.p, rtol=0, atol=1e-11)
    out32 = kernel.fine_forward(FeLIFState(state.v.float(), state.p.float()), current.float(), PARAMS, cfg)
    assert (out32.v.double() - ref.v).abs().max() < 1e-3
    assert (out32.p.double() - ref.p).abs().max() < 1e-4


def test_exponential_matches_euler_at_1us():
    currents = SANITY_CURRENTS.expand(40, -1)
    g = torch.Generator().manual_seed(3)
    random_currents = torch.rand(40, 24, generator=g, dtype=torch.float64) * 12e-9
    for inputs in (currents, random_currents):
        v_euler, p_euler = trajectory(inputs, StepConfig())
        v_exp, p_exp = trajectory(inputs, StepConfig(integrator="exponential"))
        assert torch.equal(v_exp > PARAMS.v_thr, v_euler > PARAMS.v_thr), "same spiking steps"
        below = (v_euler < PARAMS.v_thr) & (v_exp < PARAMS.v_thr)
        assert (v_exp - v_euler).abs()[below].max() < 2e-3
        assert (p_exp - p_euler).abs()[below].max() < 5e-5


def test_exponential_is_stable_at_100us_where_euler_is_not():
    currents = SANITY_CURRENTS.expand(40, -1)
    v_ref, p_ref = trajectory(currents, StepConfig())  # Euler at 1 us
    spikes_ref = v_ref > PARAMS.v_thr
    v_exp, p_exp = trajectory(currents, StepConfig(h=1e-4, integrator="exponential"))
    assert torch.equal(v_exp > PARAMS.v_thr, spikes_ref), "the REFERENCE.md spiking steps at 100 us sub-steps"
    below = (v_ref < PARAMS.v_thr) & (v_exp < PARAMS.v_thr)
    assert (v_exp - v_ref).abs()[below].max() < 0.05
    assert (p_exp - p_ref).abs()[below].max() < 2e-3
    v_euler, _ = trajectory(currents, StepConfig(h=1e-4))
    assert not torch.equal(v_euler > PARAMS.v_thr, spikes_ref), "Euler at 100 us spikes at the wrong steps"
    assert (v_euler - v_ref).abs()[below].max() > 1.0
    assert v_euler.max() == PARAMS.v_max, "Euler's switching overshoots into the voltage clip"
