"""BRUNO: backpropagation running undersampled (REFERENCE.md section 2).

The forward value of a coarse step comes from the fine integration (cfg.substeps sub-steps of cfg.h, no autograd,
fused kernel); the gradient is that of one differentiable explicit Euler step of cfg.dt (`physics.euler_step`).
Two forms with the same values and gradients:

- `bruno_step`, one coarse step: two small autograd nodes per step (merge and spike) instead of a graph per
  sub-step; `cosim.felif.layer` runs it step by step as method "bruno_step" (and for cycle-to-cycle variability).
- `bruno_sequence`, a whole sequence in one autograd node (method "bruno", the layer's default): the forward loop
  over coarse steps writes spikes and states into preallocated [T, batch, n] tensors, and the backward pass runs
  the reverse-time recursion of `bruno_step`'s graph (merge: the guarded coarse step's Jacobian, zero where
  reset; spike: the surrogate derivative; reset: no gradient). No per-step Python in autograd, and no per-step
  tensors beyond V and P.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from cosim.felif import physics
from cosim.felif.kernel import fine_forward
from cosim.felif.physics import FeLIFParameters, FeLIFState
from cosim.felif.step import StepConfig, spike, surrogate_derivative

RATE_GRADS = ("exact", "stop")
JACOBIAN_CHUNKS = 32
"""`bruno_sequence`'s backward pass forms the coarse-step Jacobians of ceil(T / JACOBIAN_CHUNKS) steps at once:
few, large tensor operations (4 steps of 128 x 27 neurons in the tactile training), while the chunk's autograd
graph (~36 tensors of a chunk each) stays about the size of one [T, batch, n] tensor, whatever the batch."""


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


class BrunoSequence(NamedTuple):
    """What `bruno_sequence` returns, each [T, batch, n]."""

    spikes: torch.Tensor
    """0/1, dtype of the input."""
    v: torch.Tensor
    """Membrane voltage after each coarse step's reset, V (dtype of the state)."""
    p: torch.Tensor
    """Polarisation after each coarse step's reset, C/m^2."""


def bruno_sequence(
    x: torch.Tensor, current_scale: float, state: FeLIFState, s_prev: torch.Tensor, params: FeLIFParameters,
    cfg: StepConfig,
) -> BrunoSequence:
    """`bruno_step` over a whole sequence in one autograd node: spikes, V and P for inputs x [T, batch, n].

    The input current of step t is x[t] (weight units, any float dtype) times current_scale (A per unit), in the
    dtype of `state` (the start state, [batch, n], with s_prev the spikes of the step before). Values equal
    `bruno_step`'s bit for bit; gradients (to x, through the spikes, V and P) equal them to rounding (the
    Jacobians are formed before they are chained). The start state gets no gradient. Parameters must be the
    same on every step (cycle-to-cycle variability runs `bruno_step` instead).
    """
    _check_rate_grad(cfg)
    if x.dim() != 3 or tuple(x.shape[1:]) != tuple(state.v.shape):
        raise ValueError(f"bruno_sequence: input [T, batch, n] must match the state {tuple(state.v.shape)}, got "
                         f"{tuple(x.shape)}")
    return BrunoSequence(*_Sequence.apply(x, state.v.detach(), state.p.detach(), s_prev.detach(), current_scale,
                                          params, cfg))


class _Sequence(torch.autograd.Function):
    """The autograd node of `bruno_sequence`; saves x, the start state, the spikes, V and P."""

    @staticmethod
    def forward(ctx, x, v0, p0, s0, scale, params, cfg):
        dtype = v0.dtype
        v_all = torch.empty((x.shape[0], *v0.shape), dtype=dtype, device=v0.device)
        p_all = torch.empty_like(v_all)
        spikes = torch.empty(v_all.shape, dtype=x.dtype, device=x.device)
        v_thr = torch.as_tensor(params.v_thr, dtype=dtype, device=v0.device)
        state, s = FeLIFState(v0, p0), s0
        for t in range(x.shape[0]):  # the forward of bruno_step, without autograd
            reset = s.to(torch.bool)
            fine = fine_forward(state, x[t].to(dtype) * scale, params, cfg, frozen=reset)
            state = physics.reset_state(fine, reset.expand(fine.v.shape), params)
            s = (state.v > v_thr).to(dtype)
            v_all[t], p_all[t], spikes[t] = state.v, state.p, s
        ctx.save_for_backward(x, v0, p0, s0, spikes, v_all, p_all)
        ctx.scale, ctx.params, ctx.cfg = scale, params, cfg
        ctx.set_materialize_grads(False)
        return spikes, v_all, p_all

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes, grad_v, grad_p):
        if not ctx.needs_input_grad[0]:
            return (None,) * 7
        grad_x = sequence_vjp(*ctx.saved_tensors, grad_spikes, grad_v, grad_p, ctx.scale, ctx.params, ctx.cfg)
        return grad_x, None, None, None, None, None, None


def sequence_vjp(
    x: torch.Tensor, v0: torch.Tensor, p0: torch.Tensor, s0: torch.Tensor, spikes: torch.Tensor, v_all: torch.Tensor,
    p_all: torch.Tensor, grad_spikes: torch.Tensor | None, grad_v: torch.Tensor | None, grad_p: torch.Tensor | None,
    scale: float, params: FeLIFParameters, cfg: StepConfig,
) -> torch.Tensor:
    """d loss / d x of a sequence [T, batch, n] whose forward gave `spikes`, `v_all`, `p_all` (each step's state
    after its reset) from the start state (v0, p0, s0): the reverse-time recursion of `bruno_step`'s graph (merge:
    the guarded coarse step's Jacobian at each step's start state, zero where reset; spike: the surrogate
    derivative at V; reset: no gradient). `grad_*` are the loss gradients of the three outputs (None: zero).
    `bruno_sequence`'s backward pass; `cosim.verify.in_the_loop` calls it at states that came from SPICE."""
    steps = x.shape[0]
    v_thr = torch.as_tensor(params.v_thr, dtype=v_all.dtype, device=v_all.device)
    grad_x = torch.empty_like(x)
    chunk = -(-steps // JACOBIAN_CHUNKS)
    # d loss / d (V, P) after the reset of the step before the current one, through the later steps
    later_v, later_p = torch.zeros_like(v0), torch.zeros_like(p0)
    for start in range((steps - 1) // chunk * chunk, -1, -chunk):
        end = min(start + chunk, steps)
        before = slice(max(start - 1, 0), end - 1)  # the start states of steps start+1 .. end-1
        v_in, p_in, s_in = (torch.cat([first[None], rest[before]]) if start == 0 else rest[before]
                            for first, rest in ((v0, v_all), (p0, p_all), (s0.to(spikes.dtype), spikes)))
        # the merge's backward: the coarse step's Jacobian, zero where the step resets
        resets = s_in.to(torch.bool)
        jac_v, jac_p = (tuple(None if j is None else j.masked_fill(resets, 0.0) for j in jac)
                        for jac in _coarse_jacobians(v_in, p_in, x[start:end].to(v_all.dtype) * scale, params,
                                                     cfg))
        # what each step's outputs (spikes through the surrogate, V, P) receive directly
        total_v, total_p = torch.zeros_like(v_in), torch.zeros_like(p_in)
        if grad_spikes is not None:
            total_v += grad_spikes[start:end].to(v_all.dtype) * surrogate_derivative(
                v_all[start:end], v_thr, cfg.surrogate, cfg.beta)
        if grad_v is not None:
            total_v += grad_v[start:end]
        if grad_p is not None:
            total_p += grad_p[start:end]
        for k in range(end - start - 1, -1, -1):  # total d loss / d (V, P) after step start + k
            total_v[k] += later_v
            total_p[k] += later_p
            later_v = _vjp(total_v[k], total_p[k], jac_v[0][k], jac_p[0][k])
            later_p = _vjp(total_v[k], total_p[k], jac_v[1][k], jac_p[1][k])
        jac_p_i = None if jac_p[2] is None else jac_p[2]
        grad_i = total_v * jac_v[2] if jac_p_i is None else _vjp(total_v, total_p, jac_v[2], jac_p_i)
        grad_x[start:end] = (grad_i * scale).to(x.dtype)
    return grad_x


def _vjp(g_v: torch.Tensor, g_p: torch.Tensor, d_v: torch.Tensor | None, d_p: torch.Tensor | None) -> torch.Tensor:
    """g_v dV'/dx + g_p dP'/dx for the Jacobian entries d_v = dV'/dx and d_p = dP'/dx (None: zero)."""
    if d_p is None:
        return g_v * d_v
    if d_v is None:
        return g_p * d_p
    return torch.addcmul(g_v * d_v, g_p, d_p)


def _coarse_jacobians(v: torch.Tensor, p: torch.Tensor, i_in: torch.Tensor, params: FeLIFParameters,
                      cfg: StepConfig) -> tuple[tuple[torch.Tensor | None, ...], tuple[torch.Tensor | None, ...]]:
    """((dV'/dV, dV'/dP, dV'/dI), (dP'/dV, dP'/dP, dP'/dI)) of the guarded coarse step (`coarse_step`), element
    by element (each neuron's step depends on its own state and input only); None where the output does not
    depend on that input."""
    with torch.enable_grad():
        inputs = tuple(t.detach().requires_grad_() for t in (v, p, i_in))
        out = coarse_step(FeLIFState(inputs[0], inputs[1]), inputs[2], params, cfg, guard=True)
        ones = torch.ones_like(out.v)
        jac_v = torch.autograd.grad(out.v, inputs, ones, retain_graph=True, allow_unused=True)
        jac_p = torch.autograd.grad(out.p, inputs, ones, allow_unused=True)
    return jac_v, jac_p
