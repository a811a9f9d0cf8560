"""Validity guard: how often a layer is driven outside the support of its fitted surrogate.

A fitted surrogate is only checked against the circuit on its design of experiments: input currents in a
range, states (V, P) in ranges. `Support` records those ranges (from the artifact); `ValidityGuard` counts, for
each neuron and coarse step the layer runs, whether the input current or the state after the step lies outside
them. The counts stay on the guard (read them after training with `report()`); the first excursion is logged
as a warning, `log_report()` logs the totals.
"""
from __future__ import annotations

import logging
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
        self._warned = False

    def _bounds(self, name: str) -> tuple[float, float]:
        lo, hi = getattr(self.support, name)
        slack = self.tolerance * (hi - lo)
        return lo - slack, hi + slack

    @torch.no_grad()
    def observe(self, i_in: torch.Tensor, state: FeLIFState) -> None:
        """Count the neurons of one coarse step whose input current i_in (A) or state after the step is outside."""
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
