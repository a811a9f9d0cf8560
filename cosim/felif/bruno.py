"""BRUNO: backpropagation running undersampled (REFERENCE.md section 2).

The forward value of a coarse step comes from the fine integration (cfg.substeps sub-steps of cfg.h, no autograd,
fused kernel); the gradient is that of one differentiable explicit Euler step of cfg.dt (`physics.euler_step`).
Autograd therefore keeps one small node per coarse step instead of one per sub-step.
"""
from __future__ import annotations

import torch

from cosim.felif import physics
from cosim.felif.kernel import fine_forward
from cosim.felif.physics import FeLIFParameters, FeLIFState
from cosim.felif.step import StepConfig, spike

RATE_GRADS = ("exact", "stop")


def coarse_step(
    state: FeLIFState, i_in: torch.Tensor, params: FeLIFParameters, cfg: StepConfig, guard: bool = False
) -> FeLIFState:
    """One differentiable Euler step of cfg.dt (s); cfg.rate_grad "stop" detaches the switching rate r(E).

    guard caps r at 1/dt. Where r dt > 1 the Euler step overshoots the target polarisation sign(E) P_s (and is
    clipped back to it); its Jacobian there, dP'/dP = 1 - r dt, reaches -1e10 and chained over a few steps
    overflows float32. Capped, the step switches exactly to the target, with no gradient through P or r; where
    r dt <= 1 it is the plain Euler step.
    """
    if cfg.rate_grad not in RATE_GRADS:
        raise ValueError(f"StepConfig.rate_grad must be one of {RATE_GRADS}, got {cfg.rate_grad!r}")
    return physics.euler_step(
        state, i_in, params, cfg.dt, detach_rate=cfg.rate_grad == "stop", max_rate=1.0 / cfg.dt if guard else None
    )


def straight_through(value: torch.Tensor, grad_path: torch.Tensor) -> torch.Tensor:
    """Exactly `value` in the forward pass, with the gradient of `grad_path`."""
    return value.detach() + (grad_path - grad_path.detach())


def bruno_step(
    i_in: torch.Tensor, state: FeLIFState, s_prev: torch.Tensor, params: FeLIFParameters, cfg: StepConfig
) -> tuple[torch.Tensor, FeLIFState]:
    """One BRUNO coarse step: (spikes, new state) for input current i_in (A) held over cfg.dt.

    1. fine forward without autograd (latch at V_thr); 2. one differentiable coarse Euler step, guarded
    (`coarse_step`: r capped at 1/dt); 3. straight-through merge (fine value, coarse Jacobian); 4. where s_prev,
    reset to (V_reset, -P_s) with the gradient stopped; 5. spike = Heaviside(V - V_thr) with the surrogate
    derivative of cfg.
    """
    reset = s_prev.detach().to(torch.bool)
    fine = fine_forward(FeLIFState(state.v.detach(), state.p.detach()), i_in.detach(), params, cfg, frozen=reset)
    coarse = coarse_step(state, i_in, params, cfg, guard=True)
    merged = FeLIFState(straight_through(fine.v, coarse.v), straight_through(fine.p, coarse.p))
    new_state = physics.reset_state(merged, reset, params)
    return spike(new_state.v, params.v_thr, cfg), new_state
