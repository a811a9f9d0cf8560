"""Validity guard: how often a layer is driven outside the support of its fitted surrogate.

A fitted surrogate is only checked against the circuit on its design of experiments: input currents in a
range, states (V, P) in ranges. `Support` records those ranges (from the artifact); `ValidityGuard` counts, for
each neuron and coarse step the layer runs, whether the input current or the state after the step lies outside
them. The counts stay on the guard (read them after training with `report()`); the first excursion is logged
as a warning, `log_report()` logs the totals.

The guard also records what it sees (`Visits`): histograms of the input current, V and P of every neuron-step
on fixed bins (`VISIT_BINS`, with under- and overflow), from which `distribution()` gives quantiles, and the
last `SEQUENCES_KEPT` input-current sequences of single neurons (one neuron per observed batch, at a rotating
index, no random draw), which a refit turns into stimuli (`cosim.surrogates.refit`). Recording costs three
histograms per observed step.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

import torch

from cosim.felif.physics import FeLIFState

logger = logging.getLogger(__name__)

CHECKS = ("i_in_below", "i_in_above", "v_outside", "p_outside")
"""What the guard counts, per neuron and coarse step."""


@dataclass(frozen=True)
class Support:
    """Ranges in which a FeLIF surrogate was fitted and validated."""

    i_in: tuple[float, float]
    """Input current (held over a coarse step), A."""
    v: tuple[float, float]
    """Membrane voltage after a coarse step, V."""
    p: tuple[float, float]
    """Polarisation after a coarse step, C/m^2."""

    def __post_init__(self) -> None:
        for name in ("i_in", "v", "p"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ValueError(f"Support.{name}: lower end {lo} above upper end {hi}")

    def to_dict(self) -> dict[str, list[float]]:
        return {"i_in": list(self.i_in), "v": list(self.v), "p": list(self.p),
                "units": {"i_in": "A", "v": "V", "p": "C/m^2"}}

    @classmethod
    def from_dict(cls, data: dict) -> "Support":
        """Inverse of `to_dict`; KeyError/ValueError naming what is missing or malformed."""
        try:
            return cls(**{name: (float(data[name][0]), float(data[name][1])) for name in ("i_in", "v", "p")})
        except KeyError as err:
            raise KeyError(f"support has no range {err.args[0]!r}") from None
        except (TypeError, IndexError):
            raise ValueError(f"support ranges must be [lower, upper] pairs, got {data}") from None


VISIT_BINS: dict[str, tuple[float, float, int]] = {"i_in": (-500e-9, 500e-9, 1000), "v": (-6.0, 4.0, 500),
                                                   "p": (-0.3, 0.3, 300)}
"""(lower edge, upper edge, bins) of each recorded histogram: input current A (1 nA bins), V in V (20 mV), P in
C/m^2 (2 mC/m^2); values below or above count in the under- and overflow."""
QUANTILES = (0.0001, 0.001, 0.01, 0.05, 0.5, 0.95, 0.99, 0.999, 0.9999)
"""Quantiles `distribution()` reports."""
SEQUENCES_KEPT = 64
"""Input-current sequences of single neurons the guard keeps (the latest)."""
SEQUENCE_STEPS = 200
"""Coarse steps kept of each sequence (its first)."""


class Visits:
    """Histograms of the (I, V, P) values of observed neuron-steps and the latest single-neuron input sequences."""

    def __init__(self) -> None:
        self.counts = {name: torch.zeros(bins + 2, dtype=torch.int64) for name, (_, _, bins) in VISIT_BINS.items()}
        """Per quantity: [underflow, bins..., overflow]."""
        self.sequences: deque[list[float]] = deque(maxlen=SEQUENCES_KEPT)
        """Input currents (A) of single neurons over consecutive coarse steps."""
        self._next = 0

    @torch.no_grad()
    def add(self, name: str, values: torch.Tensor) -> None:
        lo, hi, bins = VISIT_BINS[name]
        values = values.detach().reshape(-1).to(torch.float64)
        index = torch.clamp(torch.floor((values - lo) / (hi - lo) * bins).to(torch.int64) + 1, 0, bins + 1)
        self.counts[name] += torch.bincount(index.cpu(), minlength=bins + 2)

    def add_sequence(self, i_in: torch.Tensor) -> None:
        """Keep one neuron's currents of i_in [T, batch, n] (A): sample 0, neuron at the rotating index."""
        n = i_in.shape[-1]
        self.sequences.append([float(i) for i in i_in[:SEQUENCE_STEPS, 0, self._next % n].cpu()])
        self._next += 7  # co-prime with most layer sizes: visits every neuron in turn

    def quantiles(self, name: str) -> dict[str, float]:
        """Quantiles (`QUANTILES`) from the histogram, linear within a bin (unit of the quantity); the under- and
        overflow bins give the range's edges."""
        lo, hi, bins = VISIT_BINS[name]
        counts = self.counts[name].to(torch.float64)
        total = float(counts.sum())
        if total == 0:
            return {}
        edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
        cumulative = torch.cumsum(counts, 0) / total
        out = {}
        for q in QUANTILES:
            k = int(torch.searchsorted(cumulative, torch.tensor(q, dtype=torch.float64)))
            if k == 0:
                out[f"q{q:g}"] = lo
            elif k > bins:
                out[f"q{q:g}"] = hi
            else:
                below = float(cumulative[k - 1])
                share = (q - below) / max(float(cumulative[k]) - below, 1e-300)
                out[f"q{q:g}"] = float(edges[k - 1] + share * (edges[k] - edges[k - 1]))
        return out

    def to_dict(self) -> dict:
        """Plain data: bins, counts, quantiles and sequences (units: A, V, C/m^2)."""
        return {"bins": {name: list(spec) for name, spec in VISIT_BINS.items()},
                "counts": {name: [int(c) for c in counts] for name, counts in self.counts.items()},
                "quantiles": {name: self.quantiles(name) for name in VISIT_BINS},
                "sequences": list(self.sequences), "units": {"i_in": "A", "v": "V", "p": "C/m^2"}}

    @classmethod
    def from_dict(cls, data: dict) -> "Visits":
        """Inverse of `to_dict`; ValueError if the bins differ from `VISIT_BINS`."""
        visits = cls()
        for name, spec in VISIT_BINS.items():
            if tuple(data["bins"][name]) != spec or len(data["counts"][name]) != spec[2] + 2:
                raise ValueError(f"recorded visits: the bins of {name} are {data['bins'][name]}, this cosim uses "
                                 f"{list(spec)}")
            visits.counts[name] = torch.tensor(data["counts"][name], dtype=torch.int64)
        visits.sequences.extend(data.get("sequences", []))
        return visits


class ValidityGuard:
    """Counts neuron-steps outside a `Support` (call `observe` once per coarse step)."""

    def __init__(self, support: Support, name: str = "FeLIF layer", tolerance: float = 1e-3):
        """tolerance: relative slack on each range (of its width) before a value counts as outside."""
        self.support = support
        self.name = name
        self.tolerance = tolerance
        self.reset()

    def reset(self) -> None:
        """Zero the counters."""
        self._counts = {check: torch.zeros((), dtype=torch.int64) for check in CHECKS + ("any",)}
        self._observed = 0
        self.visits = Visits()
        """What was observed since the last reset."""
        self._warned = False

    def _bounds(self, name: str) -> tuple[float, float]:
        lo, hi = getattr(self.support, name)
        slack = self.tolerance * (hi - lo)
        return lo - slack, hi + slack

    @torch.no_grad()
    def observe(self, i_in: torch.Tensor, state: FeLIFState) -> None:
        """Count the neurons of one coarse step whose input current i_in (A) or state after the step is outside
        (or of a whole sequence: i_in and the states [T, batch, n]), and record them in `visits`."""
        i_lo, i_hi = self._bounds("i_in")
        v_lo, v_hi = self._bounds("v")
        p_lo, p_hi = self._bounds("p")
        i_in = i_in.expand_as(state.v)
        flags = {"i_in_below": i_in < i_lo, "i_in_above": i_in > i_hi,
                 "v_outside": (state.v < v_lo) | (state.v > v_hi), "p_outside": (state.p < p_lo) | (state.p > p_hi)}
        flags["any"] = flags["i_in_below"] | flags["i_in_above"] | flags["v_outside"] | flags["p_outside"]
        for check, flag in flags.items():
            self._counts[check] = self._counts[check].to(flag.device) + flag.sum()
        self._observed += state.v.numel()
        for name, values in (("i_in", i_in), ("v", state.v), ("p", state.p)):
            self.visits.add(name, values)
        if i_in.dim() == 3:
            self.visits.add_sequence(i_in)
        if not self._warned and bool(flags["any"].any()):
            self._warned = True
            logger.warning("%s driven outside the support of its fitted surrogate (input current %s A, V %s V, "
                           "P %s C/m^2); counting: read .report()", self.name, self.support.i_in, self.support.v,
                           self.support.p)

    @property
    def observed(self) -> int:
        """Neuron-steps seen since the last reset."""
        return self._observed

    def report(self) -> dict[str, float | int]:
        """Counts of each check and of any, the neuron-steps observed, and the fraction outside."""
        counts = {check: int(count) for check, count in self._counts.items()}
        return counts | {"observed": self._observed, "fraction_outside": counts["any"] / max(self._observed, 1)}

    def log_report(self, level: int = logging.INFO) -> dict[str, float | int]:
        """Log `report()` and return it."""
        report = self.report()
        logger.log(level, "%s: %d of %d neuron-steps (%.3g %%) outside the fitted support: %s", self.name,
                   report["any"], report["observed"], 100 * report["fraction_outside"],
                   {check: report[check] for check in CHECKS})
        return report
