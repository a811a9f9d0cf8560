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


def exponential_step(state: FeLIFState, i_in: torch.Tensor, params: FeLIFParameters, h: float) -> FeLIFState:
    """One sub-step of h (s) that stays stable where explicit Euler overshoots.

    P relaxes exactly, with the switching rate r(E) frozen at the start of the sub-step, towards sign(E) P_s:
    P' = P_t + (P - P_t) exp(-r h), P_t = sign(E) P_s, so P never leaves [-P_s, P_s]. V follows from the charge
    balance of the node over the sub-step, C_tot (V' - V) + A (P' - P) = (I_in - I_leak(V)) h, with V clipped to
    [-5, 5] V. For r h << 1 this is the Euler step; for r h >> 1 P settles instead of overshooting.
    """
    v, p = state
    e = physics.field(v, p, params)
    target = torch.sign(e) * params.p_s
    p_next = target + (p - target) * torch.exp(-h * physics.switching_rate(e, params))
    charge = (i_in - physics.leakage_current(v, params)) * h - params.area * (p_next - p)
    v_next = torch.clamp(v + charge / params.c_tot, -physics.V_CLIP, physics.V_CLIP)
    return FeLIFState(v_next, p_next)


FINE_STEPS: dict[str, FineStep] = {"euler": physics.euler_step, "exponential": exponential_step}
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
