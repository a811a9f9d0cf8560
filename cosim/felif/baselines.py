"""The baselines of BRUNO, in its method API ``step(i_in, state, s_prev, params, cfg) -> (spikes, state)``.

- "bptt" (`bptt_step`): backpropagation through time at the fine step: autograd records every one of the
  cfg.substeps sub-steps of cfg.h (`integrators.latched_substeps`, the same scheme and within-step latch as
  BRUNO's fine forward), so the graph holds dt/h nodes per coarse step.
- "bptt_ckpt" (`bptt_ckpt_step`): the same, with each coarse step checkpointed (`torch.utils.checkpoint`,
  reentrant): only the step's inputs are kept, and its sub-steps are recomputed during the backward pass.
  Values and gradients equal plain BPTT.
- "coarse" (`coarse_only_step`): the ablation without the fine loop: one explicit Euler step of cfg.dt in the
  forward pass, BRUNO's coarse-step gradient in the backward pass.

All three share BRUNO's semantics: reset from the previous step's spike (gradient stopped) overwriting this
step's result, spike = Heaviside(V - V_thr) with the surrogate of cfg. cfg.rate_grad applies to the coarse step
("coarse"); BPTT differentiates the fine scheme itself, with one guard (`integrators.euler_substep`): where a
sub-step's switching is stiff (r h > 1: a saturated FeCap under a membrane beyond about -2.7 V, or a neuron
driven far past threshold) the rate is capped at 1/h in the gradient, as BRUNO caps it at 1/dt. The values are
the plain Euler sub-steps, identical to BRUNO's forward. Without the guard, the Euler Jacobian dP'/dP = 1 - r h
(-1e4 at the v_min = -5.0 V clip) overflowed the gradient to inf and NaN on both benchmark shapes, in float64 too.

BPTT speed: a Python loop of eager torch ops pays interpreter and autograd overhead on ~30 tiny tensor ops per
sub-step. The default backend "compiled" fuses `BPTT_CHUNK` sub-steps, forward and backward, into one
`torch.compile` (inductor) graph; on 2 CPU cores it ran the benchmark shapes 20-40x faster than eager and, since
inductor recomputes a chunk's intermediates instead of saving them, with ~60x less memory (benchmarks/RESULTS.md).
The first call per shape, dtype and parameter set compiles for 10-30 s (cached on disk by inductor). "eager"
(``COSIM_BPTT_BACKEND=eager`` or ``backend="eager"``) skips the compiler: for short runs, debugging, or where no
C++ compiler is installed.
"""
from __future__ import annotations

import os

import torch
from torch._dynamo.exc import BackendCompilerFailed
from torch.utils.checkpoint import checkpoint

from cosim.felif import physics
from cosim.felif.bruno import coarse_step
from cosim.felif.integrators import latched_substeps
from cosim.felif.layer import METHODS
from cosim.felif.physics import FeLIFParameters, FeLIFState
from cosim.felif.step import StepConfig, spike

BPTT_BACKENDS = ("compiled", "eager")

BPTT_CHUNK = 10
"""Most sub-steps per compiled graph. 10 was the fastest measured (1 is slower than eager: the compiled call's
own overhead dominates; 20 runs no faster and takes twice as long to compile; 50 compiles for minutes)."""


class BPTTCompileError(RuntimeError):
    """The compiled BPTT backend could not be built (no C++ compiler, inductor failure)."""


_compiled_substeps = torch.compile(latched_substeps, dynamic=False, fullgraph=True)


def _substep_runner(backend: str | None):
    backend = backend or os.environ.get("COSIM_BPTT_BACKEND", "compiled")
    if backend not in BPTT_BACKENDS:
        raise ValueError(f"unknown BPTT backend {backend!r} (from COSIM_BPTT_BACKEND?); choose one of {BPTT_BACKENDS}")
    return _compiled_substeps if backend == "compiled" else latched_substeps


def chunk_length(substeps: int) -> int:
    """Sub-steps per compiled call: the largest divisor of `substeps` not above BPTT_CHUNK (one compiled graph)."""
    return max(k for k in range(1, min(substeps, BPTT_CHUNK) + 1) if substeps % k == 0)


def bptt_step(
    i_in: torch.Tensor,
    state: FeLIFState,
    s_prev: torch.Tensor,
    params: FeLIFParameters,
    cfg: StepConfig,
    backend: str | None = None,
) -> tuple[torch.Tensor, FeLIFState]:
    """One coarse step with autograd through all cfg.substeps fine sub-steps: (spikes, new state).

    i_in: input current, A, held over cfg.dt. backend: "compiled" (default, $COSIM_BPTT_BACKEND) or "eager".
    """
    run = _substep_runner(backend)
    reset = s_prev.detach().to(torch.bool)
    v, p, i_in = torch.broadcast_tensors(state.v, state.p, i_in.to(state.v.dtype))
    live = ~(v > params.v_thr) & ~reset
    fine = FeLIFState(v, p)
    chunk = chunk_length(cfg.substeps)
    try:
        for _ in range(cfg.substeps // chunk):
            fine, live = run(fine, live, i_in, params, cfg.h, chunk, cfg.integrator)
    except BackendCompilerFailed as err:
        reason = str(err).strip().splitlines()[0]
        raise BPTTCompileError(
            f"torch.compile of the BPTT sub-steps failed ({reason}); install a working C++ compiler (g++) or run "
            "BPTT uncompiled: COSIM_BPTT_BACKEND=eager or bptt_step(..., backend='eager')"
        ) from err
    new_state = physics.reset_state(fine, reset, params)
    return spike(new_state.v, params.v_thr, cfg), new_state


def _bptt_tensors(
    i_in: torch.Tensor, v: torch.Tensor, p: torch.Tensor, s_prev: torch.Tensor, params: FeLIFParameters,
    cfg: StepConfig, backend: str | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    spikes, state = bptt_step(i_in, FeLIFState(v, p), s_prev, params, cfg, backend)
    return spikes, state.v, state.p


def bptt_ckpt_step(
    i_in: torch.Tensor,
    state: FeLIFState,
    s_prev: torch.Tensor,
    params: FeLIFParameters,
    cfg: StepConfig,
    backend: str | None = None,
) -> tuple[torch.Tensor, FeLIFState]:
    """`bptt_step` checkpointed over the coarse step: its sub-steps are recomputed in the backward pass.

    Reentrant checkpointing: the forward runs without autograd and the step's graph exists only while its
    backward runs, so memory stays at one coarse step's graph. (Non-reentrant checkpointing still builds the
    whole graph in the forward and drops only the saved tensors; for tensors of a few hundred floats the graph's
    own nodes weigh as much, and it saved only 10-50 % of BPTT's memory here: benchmarks/RESULTS.md.) As with
    any reentrant checkpoint, differentiate with ``loss.backward()``, not ``torch.autograd.grad``.
    """
    tensors = (i_in, state.v, state.p)
    if not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors)):
        return bptt_step(i_in, state, s_prev, params, cfg, backend)
    spikes, v, p = checkpoint(_bptt_tensors, *tensors, s_prev, params, cfg, backend, use_reentrant=True)
    return spikes, FeLIFState(v, p)


def coarse_only_step(
    i_in: torch.Tensor, state: FeLIFState, s_prev: torch.Tensor, params: FeLIFParameters, cfg: StepConfig
) -> tuple[torch.Tensor, FeLIFState]:
    """The ablation: BRUNO with its fine forward replaced by one plain explicit Euler step of cfg.dt.

    Value: that Euler step (no rate cap: where r dt > 1 it overshoots and is clipped, the failure the ablation
    shows). Gradient: BRUNO's, the guarded coarse step (`bruno.coarse_step`, cfg.rate_grad honoured), so the
    ablation differs from BRUNO only in the forward pass. Then BRUNO's reset and spike.
    """
    reset = s_prev.detach().to(torch.bool)
    with torch.no_grad():
        value = coarse_step(state, i_in, params, cfg)
    grad_path = coarse_step(state, i_in, params, cfg, guard=True)
    merged = FeLIFState(*(x + (g - g.detach()) for x, g in zip(value, grad_path)))
    new_state = physics.reset_state(merged, reset, params)
    return spike(new_state.v, params.v_thr, cfg), new_state


METHODS.update(bptt=bptt_step, bptt_ckpt=bptt_ckpt_step, coarse=coarse_only_step)
