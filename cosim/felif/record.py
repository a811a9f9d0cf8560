"""The FeLIF training model with a record of V, P and crossing times inside each coarse step.

This is the forward pass of BRUNO (`cosim.felif.bruno.bruno_step`) with the same fused fine kernel
(`cosim.felif.kernel.fine_forward`), the same latch, reset and refractory step, so what is recorded is the model
the trainer runs. The only difference is bookkeeping: each coarse step's fine integration is split into windows
of `sample_every` to record V and P inside the step, and the sub-step at which a neuron latches is found again
(one sub-step at a time from the start of its window) to time the crossing to a fraction of h. Splitting does
not change the arithmetic: the kernel runs the same sub-steps and latches a neuron that starts a window above
threshold (tests/surrogates/test_felif_model.py checks the spikes and states against `FeLIFLayer`). Surrogate
fitting (`cosim.surrogates.felif_model`) and SPICE verification (the FeLIF device's reference) both use it.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from cosim.felif import physics
from cosim.felif.kernel import fine_forward
from cosim.felif.physics import FeLIFParameters, FeLIFState
from cosim.felif.step import StepConfig


class Recording(NamedTuple):
    """What `record` returns."""

    t: np.ndarray
    """End time of each recording window, s [windows]."""
    v: np.ndarray
    """Membrane voltage at `t`, V [windows, neurons] (the reset value during the refractory step)."""
    p: np.ndarray
    """Polarisation at `t`, C/m^2 [windows, neurons]."""
    crossings: list[np.ndarray]
    """Threshold-crossing times of each neuron, s."""


def windows_per_step(cfg: StepConfig, sample_every: float) -> int:
    """Recording windows per coarse step; ValueError unless sample_every (s) divides cfg.dt into whole sub-steps."""
    n = round(cfg.dt / sample_every)
    if n < 1 or abs(n * sample_every - cfg.dt) > 1e-9 * cfg.dt:
        raise ValueError(f"sample_every={sample_every} s must divide the coarse step dt={cfg.dt} s")
    StepConfig(dt=sample_every, h=cfg.h).substeps  # noqa: B018 (raises unless a whole number of fine steps)
    return n


@torch.no_grad()
def record(
    current: torch.Tensor,
    params: FeLIFParameters,
    cfg: StepConfig = StepConfig(),
    sample_every: float = 100e-6,
    threads: int | None = 1,
    from_reset: Sequence[bool] | None = None,
) -> Recording:
    """Run the training model (BRUNO forward pass) on input currents [steps, neurons] (A, one value per coarse
    step), all neurons as one batch, computing in the dtype of `current`.

    `params` fields may be tensors of shape (neurons,). V and P are recorded at the end of every `sample_every`
    (s) window; during the refractory step the reset state is recorded. Crossing times are interpolated
    linearly within the fine sub-step where V passes V_thr.
    threads: torch (OpenMP) threads of the kernel during the call (None: leave as set). One by default: a few
    hundred neurons are far below what pays for the threads' synchronisation at every call.
    from_reset: per neuron, start from the reset state (V_reset, -P_s) instead of rest (V = 0, -P_s).
    """
    if threads is not None:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return record(current, params, cfg, sample_every, threads=None, from_reset=from_reset)
        finally:
            torch.set_num_threads(previous)
    dtype = current.dtype
    n_windows = windows_per_step(cfg, sample_every)
    window = StepConfig(dt=sample_every, h=cfg.h, integrator=cfg.integrator)
    steps, batch = current.shape
    v_thr = torch.as_tensor(params.v_thr, dtype=dtype)
    v_reset = torch.as_tensor(params.v_reset, dtype=dtype).expand(batch)
    p_reset = -torch.as_tensor(params.p_s, dtype=dtype).expand(batch)
    state = physics.initial_state((batch,), params, dtype)
    if from_reset is not None:
        state = physics.reset_state(state, torch.tensor(list(from_reset), dtype=torch.bool), params)
    spiked = torch.zeros(batch, dtype=torch.bool)
    v_rec = torch.empty(steps * n_windows, batch, dtype=dtype)
    p_rec = torch.empty_like(v_rec)
    crossings: list[list[float]] = [[] for _ in range(batch)]
    for k in range(steps):
        reset, i_k = spiked, current[k]
        # per neuron, the state at the start of the window in which it latched (for timing the crossing)
        latched = torch.zeros(batch, dtype=torch.bool)
        start_v, start_p = state.v.clone(), state.p.clone()
        start_t = torch.zeros(batch, dtype=dtype)
        for w in range(n_windows):
            before = state
            state = fine_forward(state, i_k, params, window, frozen=reset)
            now = (state.v > v_thr) & ~(before.v > v_thr) & ~reset
            start_v, start_p = torch.where(now, before.v, start_v), torch.where(now, before.p, start_p)
            start_t = torch.where(now, k * cfg.dt + w * sample_every, start_t)
            latched |= now
            row = k * n_windows + w
            v_rec[row] = torch.where(reset, v_reset, state.v)
            p_rec[row] = torch.where(reset, p_reset, state.p)
        if bool(latched.any()):
            times = _crossing_times(FeLIFState(start_v, start_p), latched, i_k, params, cfg, window.substeps, start_t)
            for j in torch.nonzero(latched).flatten().tolist():
                crossings[j].append(float(times[j]))
        spiked = (state.v > v_thr) & ~reset
        state = physics.reset_state(state, reset, params)
    t = (np.arange(steps * n_windows) + 1) * sample_every
    return Recording(t, v_rec.numpy(), p_rec.numpy(), [np.array(c) for c in crossings])


def _crossing_times(start: FeLIFState, latched: torch.Tensor, i_in: torch.Tensor, params: FeLIFParameters,
                    cfg: StepConfig, substeps: int, t0: torch.Tensor) -> torch.Tensor:
    """Crossing times (s) of the `latched` neurons, all re-run together from `start` (each one's state at t0, the
    start of the `substeps`-long window in which it latched): first in chunks of about sqrt(substeps) sub-steps
    to find the chunk in which each latches, then one sub-step at a time through that chunk."""
    chunk = min((d for d in range(1, substeps + 1) if substeps % d == 0), key=lambda d: abs(d - substeps**0.5))
    v_thr = torch.as_tensor(params.v_thr, dtype=start.v.dtype)
    # a last-ulp difference between the vectorised window and these runs can hide a marginal crossing: such a
    # neuron is timed at the end of its window
    times = t0 + substeps * cfg.h
    chunk_start, offset, pending = start, torch.zeros_like(t0), latched.clone()
    coarse = StepConfig(dt=chunk * cfg.h, h=cfg.h, integrator=cfg.integrator)
    for _ in range(substeps // chunk):
        nxt = fine_forward(chunk_start, i_in, params, coarse, frozen=~pending)
        moving = pending & ~(nxt.v > v_thr)
        chunk_start = FeLIFState(torch.where(moving, nxt.v, chunk_start.v), torch.where(moving, nxt.p, chunk_start.p))
        offset = torch.where(moving, offset + chunk * cfg.h, offset)
        pending = moving
        if not bool(pending.any()):
            break
    pending = latched & ~pending  # found their chunk
    fine = StepConfig(dt=cfg.h, h=cfg.h, integrator=cfg.integrator)
    state = chunk_start
    for n in range(chunk):
        nxt = fine_forward(state, i_in, params, fine, frozen=~pending)
        crossed = pending & (nxt.v > v_thr)
        fraction = (v_thr - state.v) / (nxt.v - state.v)
        times = torch.where(crossed, t0 + offset + cfg.h * (n + fraction), times)
        pending &= ~crossed
        if not bool(pending.any()):
            break
        state = nxt
    return times
