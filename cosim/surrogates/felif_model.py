"""The FeLIF training model run on DoE stimuli: `cosim.felif.record` (the BRUNO forward pass recording V, P and
crossing times within each coarse step) on each stimulus's currents, returned as `Traces` for the fit.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from cosim.felif.physics import FeLIFParameters
from cosim.felif.record import record, windows_per_step
from cosim.felif.step import StepConfig
from cosim.surrogates.doe import Stimulus
from cosim.surrogates.traces import Traces


def current_matrix(stimuli: Sequence[Stimulus], dt: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Currents [steps, len(stimuli)] (A), zero after a stimulus ends; ValueError if a stimulus has another dt."""
    for stimulus in stimuli:
        if abs(stimulus.dt - dt) > 1e-12 * dt:
            raise ValueError(f"stimulus {stimulus.name!r} has dt={stimulus.dt} s but the model steps dt={dt} s")
    current = torch.zeros(max(s.steps for s in stimuli), len(stimuli), dtype=dtype)
    for j, stimulus in enumerate(stimuli):
        current[: stimulus.steps, j] = torch.tensor(stimulus.current, dtype=dtype)
    return current



def simulate(
    stimuli: Sequence[Stimulus],
    params: FeLIFParameters,
    cfg: StepConfig = StepConfig(),
    sample_every: float = 100e-6,
    dtype: torch.dtype = torch.float64,
    threads: int | None = 1,
    from_reset: Sequence[bool] | None = None,
) -> list[Traces]:
    """Traces of the training model (BRUNO forward pass, `cosim.felif.record.record`) for each stimulus, all run
    as one batch of neurons; `params` fields may be tensors of shape (len(stimuli),). Arguments as `record`."""
    if not stimuli:
        return []
    rec = record(current_matrix(stimuli, cfg.dt, dtype), params, cfg, sample_every, threads, from_reset)
    n_windows = windows_per_step(cfg, sample_every)
    traces = []
    for j, stimulus in enumerate(stimuli):
        n = stimulus.steps * n_windows
        spikes = rec.crossings[j]
        traces.append(Traces(rec.t[:n], rec.v[:n, j].copy(), rec.p[:n, j].copy(),
                             spikes[spikes < stimulus.duration], cfg.dt))
    return traces
