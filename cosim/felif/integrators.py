"""Fine integrators of the FeLIF equations and the torch reference of the fine forward pass.

Two one-step integrators of size h, both built only from `cosim.felif.physics`:

- ``"euler"`` (default, the reference scheme of REFERENCE.md): `physics.euler_step`.
- ``"exponential"``: `exponential_step`, stable at larger sub-steps (see its docstring).

`fine_forward_reference` runs cfg.substeps of one of them with the within-step latch of REFERENCE.md section 2
as a vectorised torch loop (one Python iteration per sub-step). It is the float64 reference the fused kernel
(`cosim.felif.kernel`) is tested against, and the slow fallback where the kernel is not available.
"""
from __future__ import annotations

from typing import Callable

import torch

from cosim.felif import physics
from cosim.felif.physics import FeLIFParameters, FeLIFState
from cosim.felif.step import StepConfig

FineStep = Callable[[FeLIFState, torch.Tensor, FeLIFParameters, float], FeLIFState]


NEWTON_ITERATIONS = {torch.float32: 8, torch.float64: 10}
"""Most Newton iterations of `exponential_step` per dtype: enough to converge from any state (tested)."""

NEWTON_TOLERANCE = {torch.float32: 1e-6, torch.float64: 1e-12}
"""The fused kernel stops iterating once every correction of t = log|dP| in a block of neurons is below this
(relative change of dP). This torch version always runs all iterations (no data-dependent branch: it stays
traceable by torch.compile for the BPTT baselines)."""

SWITCHING_CUTOFF = 40.0
"""Below a field where r h < exp(-SWITCHING_CUTOFF) the sub-step's switching is negligible and taken explicitly."""

TINY = 1e-30
"""Floor of |dP| and of the switched fraction in `exponential_step`: keeps logarithms finite where nothing switches."""


def exponential_step(state: FeLIFState, i_in: torch.Tensor, params: FeLIFParameters, h: float) -> FeLIFState:
    """One sub-step of h (s) that stays stable at sub-steps far above the switching time constants.

    P relaxes exponentially towards P_t = sign(E0) P_s, E0 the field after the sub-step's input charge
    q = (I_in - I_leak(V)) h with P held, at the rate of the end of the sub-step (implicit in the rate):

        |dP| = |P_t - P| (1 - exp(-r(|E0| - k |dP|) h)),    k = c_div A / C_tot + d_div,

    where k |dP| is the field drop that switching causes through the charge balance
    C_tot dV + A dP = q, which also gives V' (clipped to [v_min, v_max]). The leakage current is explicit.
    Explicit Euler or a rate frozen at the start of the step let switching overshoot by orders of magnitude
    once r h > 1 (h >~ 10 us near threshold); here the field settles where switching balances the input.

    |dP| is found by Newton's method on t = log|dP|, G(t) = t - log|P_t - P| - log(1 - exp(-r h)), which is
    convex and increasing; starting right of the root (at the frozen-rate value, an upper bound) the iterates
    decrease monotonically to it. Where even the frozen-rate switching is below exp(-SWITCHING_CUTOFF) of
    the way, that explicit value is used.
    """
    v, p = state
    q = (i_in - physics.leakage_current(v, params)) * h
    e0 = physics.field(v + q / params.c_tot, p, params)
    sign = torch.sign(e0)
    span = (sign * params.p_s - p).abs()
    a0 = e0.abs()
    k = params.c_div * params.area / params.c_tot + params.d_div
    u_explicit = -span * torch.expm1(-h * physics.switching_rate(e0, params))
    x_cut = torch.log(torch.as_tensor(h / params.tau0, dtype=v.dtype)) + SWITCHING_CUTOFF
    a_cut = params.e_a * x_cut ** (-1.0 / params.alpha)
    u_room = torch.minimum(span, torch.clamp(a0 - a_cut, min=0.0) / k)
    t_start = torch.log(torch.clamp(torch.minimum(u_room, u_explicit), min=TINY))
    log_span = torch.log(torch.clamp(span, min=TINY))
    newton = u_room > 0
    t = t_start
    for _ in range(NEWTON_ITERATIONS[v.dtype]):
        u = torch.exp(t)
        a = a0 - k * u
        w = h * physics.switching_rate(a, params)
        switched = torch.clamp(-torch.expm1(-w), min=TINY)
        g = t - log_span - torch.log(switched)
        slope = 1.0 + h * k * u * physics.switching_rate_derivative(a, params) * torch.exp(-w) / switched
        t = torch.minimum(t - g / slope, t_start)
    dp = sign * torch.where(newton, torch.exp(t), u_explicit)
    p_s = torch.as_tensor(params.p_s, dtype=p.dtype, device=p.device)
    p_next = torch.minimum(torch.maximum(p + dp, -p_s), p_s)
    v_next = physics.clip_voltage(v + (q - params.area * dp) / params.c_tot, params)
    return FeLIFState(v_next, p_next)


def euler_substep(state: FeLIFState, i_in: torch.Tensor, params: FeLIFParameters, h: float) -> FeLIFState:
    """One explicit Euler sub-step of h (s), `physics.euler_step`, with its gradient guarded for fine-step BPTT.

    The value is the plain Euler step. The gradient is that of the Euler step with the switching rate capped at
    1/h, BRUNO's coarse-step guard applied at the fine step. Where r h > 1 (fields beyond ~1.6e8 V/m: a saturated
    FeCap under a membrane beyond about -2.7 V, or a neuron driven far past threshold) the uncapped Euler Jacobian
    dP'/dP = 1 - r h reaches -1e4 and, chained over sub-steps, overflows the gradient (in float64 too) although
    the values stay bounded (P is clipped). Capped, dP'/dP is 0 there, as for the exact flow (exp(-r h) ~ 0).
    Where r h <= 1 the gradient is the exact Euler gradient.
    """
    return physics.euler_step(state, i_in, params, h, grad_max_rate=1.0 / h)


FINE_STEPS: dict[str, FineStep] = {"euler": euler_substep, "exponential": exponential_step}
"""The fine integrators by the name used in StepConfig.integrator."""


def fine_step_function(integrator: str) -> FineStep:
    """The one-step function of a fine integrator name; ValueError listing the choices if unknown."""
    try:
        return FINE_STEPS[integrator]
    except KeyError:
        raise ValueError(f"unknown fine integrator {integrator!r}; choose one of {sorted(FINE_STEPS)}") from None


@torch.no_grad()
def fine_forward_reference(
    state: FeLIFState,
    i_in: torch.Tensor,
    params: FeLIFParameters,
    cfg: StepConfig,
    frozen: torch.Tensor | None = None,
) -> FeLIFState:
    """cfg.substeps fine steps of cfg.h (s) with input current i_in (A) held, without autograd.

    Within-step latch: a neuron whose V exceeds V_thr (at the start or after any sub-step) keeps its V and P for
    the rest of the window. Neurons where `frozen` is true are not integrated at all (BRUNO overwrites them with
    the reset state anyway).
    """
    v, p = state
    v, p, i_in = torch.broadcast_tensors(v, p, i_in)
    live = ~(v > params.v_thr)
    if frozen is not None:
        live = live & ~frozen.to(torch.bool)
    state, _ = latched_substeps(FeLIFState(v, p), live, i_in, params, cfg.h, cfg.substeps, cfg.integrator)
    return state


def latched_substeps(
    state: FeLIFState, live: torch.Tensor, i_in: torch.Tensor, params: FeLIFParameters, h: float, n: int,
    integrator: str = "euler",
) -> tuple[FeLIFState, torch.Tensor]:
    """n fine steps of h (s) where `live` (bool), each neuron latching once V > V_thr; (state, live) after them.

    Differentiable where autograd is on: the fine-step BPTT baselines (`cosim.felif.baselines`) run it with
    gradients, `fine_forward_reference` without.
    """
    step = fine_step_function(integrator)
    v, p = state
    for _ in range(n):
        nxt = step(FeLIFState(v, p), i_in, params, h)
        v = torch.where(live, nxt.v, v)
        p = torch.where(live, nxt.p, p)
        live = live & ~(v > params.v_thr)
    return FeLIFState(v, p), live
