"""SPICE vs surrogate: spikes, predictions and task metrics of verified samples.

Spikes are compared neuron by neuron with the metrics of `cosim.surrogates.traces` (SPICE is the reference):
spike-count agreement 1 - sum |n_surrogate - n_spice| / sum n_spice, spike-time error of spikes paired within
one coarse step, V NRMSE where both neurons integrate. Predictions and task metrics come from the spike trains
of each side run through the same software readout:

* music: a key of a step is predicted on where its readout logit is > 0; the prediction agreement is the
  fraction of (step, key) cells after the warm-up where SPICE and surrogate predict the same. Because most keys
  are off, `frame_agreement` (steps whose whole predicted chord agrees) is reported next to it. Metric: BCE.
* tactile: the predicted class is the output neuron with the most spikes (ties: lowest index); the agreement
  is the fraction of samples with the same class. Metric: accuracy.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from cosim.devices.felif import spike_times
from cosim.devices.plugins import NeuronBank
from cosim.spice import SimResult
from cosim.surrogates.traces import Comparison, Traces
from cosim.train.tasks import MusicTask, Task

SPICE_METRIC = {"music": "loss", "tactile": "accuracy"}
"""The task metric compared in SPICE vs surrogate: BCE for music, accuracy for tactile."""


def spice_traces(result: SimResult, neurons: NeuronBank, n: int, grid: np.ndarray, dt: float) -> list[Traces]:
    """One `Traces` per neuron 0..n-1 of a transient of `cosim.verify.export.sample_jobs` with the bank `neurons`:
    V on `grid` (s), spike times (s) where its spike output rises through the bank's spike level; P is not
    recorded (NaN)."""
    traces = []
    for k in range(n):
        v = np.interp(grid, result.x, result[f"v({neurons.node('in', k)})"])
        spikes = spike_times(result.x, result[f"v({neurons.node(neurons.spike_port, k)})"], 2 * neurons.spike_level)
        traces.append(Traces(grid, v, np.full(grid.shape, np.nan), spikes, dt))
    return traces


def raster(traces: Sequence[Traces], steps: int, dt: float) -> np.ndarray:
    """Spikes [steps, neurons] (0/1): a neuron spikes in coarse step k if it crosses threshold in [k dt, (k+1) dt)."""
    out = np.zeros((steps, len(traces)), dtype=np.float32)
    for j, trace in enumerate(traces):
        k = np.floor(trace.spikes / dt + 1e-9).astype(int)
        out[k[(k >= 0) & (k < steps)], j] = 1.0
    return out


def prediction_agreement(task: Task, spice_logits: torch.Tensor, surrogate_logits: torch.Tensor,
                         mask: torch.Tensor) -> dict[str, int]:
    """Counts of agreeing predictions of one batch: {"agree", "total"} (music adds "frames_agree", "frames")."""
    if isinstance(task, MusicTask):
        cells = mask.clone()
        cells[:, :task.cfg.warmup_steps] = False
        same = (spice_logits > 0) == (surrogate_logits > 0)
        keys = spice_logits.shape[-1]
        return {"agree": int((same & cells.unsqueeze(-1)).sum()), "total": int(cells.sum()) * keys,
                "frames_agree": int((same.all(-1) & cells).sum()), "frames": int(cells.sum())}
    same = spice_logits.argmax(-1) == surrogate_logits.argmax(-1)
    return {"agree": int(same.sum()), "total": int(same.numel())}


def spike_summary(comparison: Comparison) -> dict[str, float | int]:
    """The spike figures of verify.json from a pooled comparison (SPICE the reference)."""
    errors = np.abs(comparison.time_errors)
    return {"spike_count_agreement": comparison.spike_count_agreement,
            "spike_time_error_s": float(np.median(errors)) if len(errors) else float("nan"),
            "spike_time_error_mean_s": float(np.mean(errors)) if len(errors) else float("nan"),
            "spike_time_error_rel": comparison.spike_time_error_rel,
            "v_nrmse": comparison.v_nrmse,
            "spikes_spice": comparison.n_reference, "spikes_surrogate": comparison.n_model,
            "paired_spikes": len(errors)}
