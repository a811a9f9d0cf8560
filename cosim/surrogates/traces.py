"""Neuron responses on a common time grid and how two of them are compared (SPICE vs surrogate).

A `Traces` holds, for one stimulus, V and P sampled at the ends of equal windows and the spike (threshold
crossing) times. Both the ngspice harness and the surrogate produce them, so comparison, fitting residuals,
validation metrics and plots work on either.

Masking. Both the FeLIF circuit and the training model hold a neuron in reset from its threshold crossing until
the end of the coarse step after the spike (one refractory step), but they do it differently: the circuit pulls
V to an erase voltage and then to V_reset at once, the training model latches V at threshold for the rest of
the step and shows the reset state only afterwards. Waveform errors are therefore measured only where both
neurons integrate (`integrating`); spike counts and times carry the rest.

Metrics (all on one or several stimuli, pooled):

- spike-count agreement: 1 - sum |n_surrogate - n_spice| / sum n_spice;
- spike-time error relative to the ISI: |t_surrogate - t_spice| / (t_spice - previous SPICE spike or stimulus
  start), over spikes paired one-to-one (`pair_spikes`: within a quarter ISI or one coarse step);
- V NRMSE: RMS(V_surrogate - V_spice) / (max - min of V_spice), over samples where both integrate.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class Traces:
    """One neuron's response to one stimulus."""

    t: np.ndarray
    """Sample times, s (ends of equal windows, the first at one window)."""
    v: np.ndarray
    """Membrane voltage at `t`, V."""
    p: np.ndarray
    """FeCap polarisation at `t`, C/m^2 (for a multi-domain device the area average)."""
    spikes: np.ndarray
    """Threshold crossing times, s, increasing."""
    dt: float = 1e-3
    """Coarse step, s: sets the refractory window (reset until the end of the step after the spike's)."""

    def integrating(self) -> np.ndarray:
        """Bool mask over `t`: True where the neuron integrates (not between a crossing and its release)."""
        mask = np.ones(self.t.shape, dtype=bool)
        for crossing in self.spikes:
            release = (np.floor(crossing / self.dt + 1e-9) + 2) * self.dt
            mask &= ~((self.t > crossing) & (self.t <= release + 1e-12))
        return mask


PAIRING_ISI_FRACTION = 0.25
"""Two spikes can be paired if they are at most this fraction of the reference's preceding ISI apart (and at
least one coarse step)."""


def pair_spikes(reference: np.ndarray, other: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (into reference, into other) of spikes paired one-to-one, minimising the total |time
    difference|; partners are at most max(dt, PAIRING_ISI_FRACTION x the reference's preceding ISI) apart."""
    if len(reference) == 0 or len(other) == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    window = np.maximum(dt, PAIRING_ISI_FRACTION * preceding_intervals(reference))[:, None]
    distance = np.abs(reference[:, None] - other[None, :])
    cost = np.where(distance <= window, distance, 1e6 * window.max() + distance)
    rows, cols = linear_sum_assignment(cost)
    keep = distance[rows, cols] <= window[rows, 0]
    return rows[keep], cols[keep]


def preceding_intervals(spikes: np.ndarray) -> np.ndarray:
    """For each spike, the time since the previous one (or since t = 0 for the first), s."""
    return np.diff(spikes, prepend=0.0)


@dataclass(frozen=True)
class Comparison:
    """How a model's traces differ from the reference's on one or several stimuli (pooled)."""

    n_reference: int
    """Reference (SPICE) spikes."""
    n_model: int
    """Model (surrogate) spikes."""
    count_mismatch: int
    """Sum over stimuli of |n_model - n_reference|."""
    time_errors_rel: np.ndarray
    """|t_model - t_reference| / preceding reference ISI of each paired spike."""
    time_errors: np.ndarray
    """t_model - t_reference of each paired spike, s."""
    v_errors: np.ndarray
    """V_model - V_reference where both integrate, V."""
    v_span: float
    """max - min of the reference V where both integrate, V."""
    p_errors: np.ndarray
    """P_model - P_reference where both integrate, C/m^2."""

    @property
    def spike_count_agreement(self) -> float:
        """1 - sum |n_model - n_reference| / sum n_reference (1.0 when neither spikes)."""
        return 1.0 - self.count_mismatch / max(self.n_reference, 1) if self.n_reference or self.n_model else 1.0

    @property
    def spike_time_error_rel(self) -> float:
        """Median |spike time error| relative to the preceding ISI (nan without paired spikes)."""
        return float(np.median(self.time_errors_rel)) if len(self.time_errors_rel) else float("nan")

    @property
    def v_nrmse(self) -> float:
        """RMS V error over the reference's V span where both integrate."""
        return float(np.sqrt(np.mean(self.v_errors**2)) / self.v_span) if len(self.v_errors) else float("nan")

    def summary(self) -> dict:
        """The headline numbers as plain floats."""
        return {"spike_count_agreement": self.spike_count_agreement, "spike_time_error_rel": self.spike_time_error_rel,
                "v_nrmse": self.v_nrmse, "n_spikes_reference": self.n_reference, "n_spikes_model": self.n_model,
                "paired_spikes": len(self.time_errors), "v_samples": len(self.v_errors)}


def compare(reference: list[Traces], model: list[Traces]) -> Comparison:
    """Pool the differences of `model` from `reference`, stimulus by stimulus (same order, same sample grid)."""
    if len(reference) != len(model):
        raise ValueError(f"compare: {len(reference)} reference traces but {len(model)} model traces")
    mismatch, rel, dts, dv, dp, v_ref = 0, [], [], [], [], []
    for ref, mod in zip(reference, model):
        if ref.t.shape != mod.t.shape or not np.allclose(ref.t, mod.t, rtol=0, atol=1e-12):
            raise ValueError("compare: reference and model traces must share their sample times")
        mismatch += abs(len(mod.spikes) - len(ref.spikes))
        i, j = pair_spikes(ref.spikes, mod.spikes, ref.dt)
        dts.append(mod.spikes[j] - ref.spikes[i])
        rel.append(np.abs(dts[-1]) / preceding_intervals(ref.spikes)[i])
        both = ref.integrating() & mod.integrating()
        dv.append(mod.v[both] - ref.v[both])
        dp.append(mod.p[both] - ref.p[both])
        v_ref.append(ref.v[both])
    v_ref_all = np.concatenate(v_ref)
    return Comparison(
        n_reference=sum(len(r.spikes) for r in reference), n_model=sum(len(m.spikes) for m in model),
        count_mismatch=mismatch, time_errors_rel=np.concatenate(rel), time_errors=np.concatenate(dts),
        v_errors=np.concatenate(dv), v_span=float(np.ptp(v_ref_all)) if len(v_ref_all) else 1.0,
        p_errors=np.concatenate(dp))
