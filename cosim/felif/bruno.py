"""BRUNO: backpropagation running undersampled (REFERENCE.md section 2).

The forward value of a coarse step comes from the fine integration (cfg.substeps sub-steps of cfg.h, no autograd,
fused kernel); the gradient is that of one differentiable explicit Euler step of cfg.dt (`physics.euler_step`).
Autograd therefore keeps two small nodes per coarse step (merge and spike) instead of a graph per sub-step.
"""
from __future__ import annotations

import torch

from cosim.felif import physics
from cosim.felif.kernel import fine_forward
from cosim.felif.physics import FeLIFParameters, FeLIFState
from cosim.felif.step import StepConfig, spike

RATE_GRADS = ("exact", "stop")


def _check_rate_grad(cfg: StepConfig) -> None:
    if cfg.rate_grad not in RATE_GRADS:
        raise ValueError(f"StepConfig.rate_grad must be one of {RATE_GRADS}, got {cfg.rate_grad!r}")


def coarse_step(
    state: FeLIFState, i_in: torch.Tensor, params: FeLIFParameters, cfg: StepConfig, guard: bool = False
) -> FeLIFState:
    """One differentiable Euler step of cfg.dt (s); cfg.rate_grad "stop" detaches the switching rate r(E).

    guard caps r at 1/dt. Where r dt > 1 the Euler step overshoots the target polarisation sign(E) P_s (and is
    clipped back to it); its Jacobian there, dP'/dP = 1 - r dt, reaches -1e10 and chained over a few steps
    overflows float32. Capped, the step switches exactly to the target, with no gradient through P or r; where
    r dt <= 1 it is the plain Euler step.
    """
    _check_rate_grad(cfg)
    return physics.euler_step(
        state, i_in, params, cfg.dt, detach_rate=cfg.rate_grad == "stop", max_rate=1.0 / cfg.dt if guard else None
    )


class _Merge(torch.autograd.Function):
    """Straight-through merge and reset in one autograd node.

    Forward: the fine state, overwritten by (V_reset, -P_s) where the previous step spiked. Backward: the
    vector-Jacobian product of the guarded coarse Euler step (`coarse_step`), recomputed from the saved inputs
    (V, P, I_in), zero where reset. The node keeps only references to those inputs instead of the ~30
    intermediate tensors an autograd graph of the coarse step would hold, so a coarse step costs little more
    memory than its own state.
    """

    @staticmethod
    def forward(ctx, v, p, i_in, fine_v, fine_p, reset, params, cfg):
        ctx.save_for_backward(v, p, i_in, reset)
        ctx.params, ctx.cfg = params, cfg
        ctx.set_materialize_grads(False)  # an unused output (V or P) adds no term, and no zero gradients
        return tuple(physics.reset_state(FeLIFState(fine_v, fine_p), reset, params))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_v, grad_p):
        v, p, i_in, reset = ctx.saved_tensors
        with torch.enable_grad():
            inputs = tuple(t.detach().requires_grad_() for t in (v, p, i_in))
            coarse = coarse_step(FeLIFState(inputs[0], inputs[1]), inputs[2], ctx.params, ctx.cfg, guard=True)
            outs, grads_out = zip(*((out, g.masked_fill(reset, 0.0)) for out, g in zip(coarse, (grad_v, grad_p))
                                    if g is not None))
            grads = torch.autograd.grad(outs, inputs, grads_out, allow_unused=True)
        return (*grads, None, None, None, None, None)


def bruno_step(
    i_in: torch.Tensor, state: FeLIFState, s_prev: torch.Tensor, params: FeLIFParameters, cfg: StepConfig
) -> tuple[torch.Tensor, FeLIFState]:
    """One BRUNO coarse step: (spikes, new state) for input current i_in (A) held over cfg.dt.

    1. fine forward without autograd (latch at V_thr); 2. one differentiable coarse Euler step, guarded
    (`coarse_step`: r capped at 1/dt); 3. straight-through merge (fine value, coarse Jacobian); 4. where s_prev,
    reset to (V_reset, -P_s) with the gradient stopped; 5. spike = Heaviside(V - V_thr) with the surrogate
    derivative of cfg. Steps 2-4 are one autograd node that recomputes the coarse step in the backward pass.
    Parameters get no gradient (they are device constants, never trained).
    """
    _check_rate_grad(cfg)
    reset = s_prev.detach().to(torch.bool)
    fine = fine_forward(FeLIFState(state.v.detach(), state.p.detach()), i_in.detach(), params, cfg, frozen=reset)
    reset = reset.expand(fine.v.shape)
    new_state = FeLIFState(*_Merge.apply(state.v, state.p, i_in, fine.v, fine.p, reset, params, cfg))
    return spike(new_state.v, params.v_thr, cfg), new_state
