"""Quantised RRAM synapses (REFERENCE.md section 3): a linear layer with b-bit stochastic weights.

Quantisation of the float "shadow" weights w on every forward call (also in eval mode):

1. per-tensor abs-max scale: x = w * max_val / max|w| with max_val = 2^(b-1) - 0.5 (3.5 for 3 bits);
2. stochastic rounding: floor(x) + 1 with probability frac(x), else floor(x) (E[round(x)] = x);
3. clip to the integer levels q in -L..L, L = 2^(b-1) - 1 (-3..3 for 3 bits: 7 levels);
4. realised weight: the level table's mean of level q, plus its programming spread times N(0, 1) drawn per
   synapse on each call if the table has spread, times the step max|w| / max_val;
5. straight-through estimator: the output uses the realised weights, the gradient goes to w unchanged.

E[q] = x holds for |x| <= L; the largest weights (|x| in (L, L + 0.5]) are rounded down to +-L more often.

Level tables map an integer level to (mean, spread) in level units (one unit = one uniform step, max|w| / max_val
in weight units): `UniformLevels` (ideal, optional uniform spread) now; `ConductanceLevels` from the means and
spreads of the two conductances of a differential pair G+ - G- (siemens), e.g. from the RRAM surrogate, later.
Both round-trip through `to_dict` / `level_table_from_dict` (JSON-safe).

Read through an array: with `QuantizedLinear.array` set (an `ArrayReader`, e.g.
`cosim.surrogates.crossbar_fit.ArrayRead`, the tiled crossbar with wire resistance), the layer's output is the
array's read of the realised levels instead of the ideal product x @ w.T (IR-drop-aware training).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

import torch
from torch import nn
from torch.nn import functional as F


def max_level(bits: int) -> int:
    """The largest integer level L = 2^(b-1) - 1 of a b-bit symmetric quantiser (levels -L..L)."""
    if bits < 2:
        raise ValueError(f"a symmetric quantiser needs bits >= 2, got {bits}")
    return 2 ** (bits - 1) - 1


@runtime_checkable
class LevelTable(Protocol):
    """Integer level -> (mean, spread) of the realised weight, in level units."""

    @property
    def max_level(self) -> int:
        """L: the table covers the integer levels -L..L."""

    def mean_spread(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(means, spreads) of levels -L..L (float64, length 2L + 1), level units."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description; `level_table_from_dict` rebuilds the table."""


@dataclass(frozen=True)
class UniformLevels:
    """Ideal levels: level q has mean q, with an optional programming spread the same for every level."""

    bits: int = 3
    """Bits of the quantiser (levels -(2^(b-1) - 1)..2^(b-1) - 1)."""
    spread: float = 0.0
    """Standard deviation of the realised weight around each level, level units."""

    def __post_init__(self) -> None:
        max_level(self.bits)
        if not self.spread >= 0:
            raise ValueError(f"UniformLevels spread must be >= 0 level units, got {self.spread!r}")

    @property
    def max_level(self) -> int:
        return max_level(self.bits)

    def mean_spread(self) -> tuple[torch.Tensor, torch.Tensor]:
        means = torch.arange(-self.max_level, self.max_level + 1, dtype=torch.float64)
        return means, torch.full_like(means, self.spread)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "uniform", "bits": self.bits, "spread": self.spread}


@dataclass(frozen=True)
class ConductanceLevels:
    """Levels realised by a differential pair of RRAM devices: weight ~ G+ - G-.

    Index i of each sequence is integer level i - L. The conductance step of one level, g_unit, is the mean
    difference between levels +L and -L over 2L; a level's mean is (G+ - G-) / g_unit and its spread the two
    devices' independent spreads combined, sqrt(s+^2 + s-^2) / g_unit.
    """

    g_plus: tuple[float, ...]
    """Mean conductance of the positive device per level, S."""
    g_minus: tuple[float, ...]
    """Mean conductance of the negative device per level, S."""
    g_plus_spread: tuple[float, ...]
    """Programming spread (standard deviation) of the positive device per level, S."""
    g_minus_spread: tuple[float, ...]
    """Programming spread of the negative device per level, S."""

    def __post_init__(self) -> None:
        n = len(self.g_plus)
        if n < 3 or n % 2 == 0:
            raise ValueError(f"ConductanceLevels needs an odd number >= 3 of levels (-L..L), got {n}")
        for name in ("g_minus", "g_plus_spread", "g_minus_spread"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"ConductanceLevels.{name} has {len(getattr(self, name))} entries, g_plus has {n}")
        for name in ("g_plus", "g_minus", "g_plus_spread", "g_minus_spread"):
            if any(not g >= 0 for g in getattr(self, name)):
                raise ValueError(f"ConductanceLevels.{name} must be >= 0 siemens, got {getattr(self, name)}")
        if not self.g_unit > 0:
            raise ValueError("ConductanceLevels: G+ - G- must grow from level -L to level +L")

    @classmethod
    def from_device_states(cls, g: Sequence[float], spread: Sequence[float]) -> "ConductanceLevels":
        """Pair levels from the states of one device type (g[0] lowest, S): level +k is (g[k], g[0]), level -k
        is (g[0], g[k]), level 0 is (g[0], g[0]). Four states give 7 levels (3 bits)."""
        if len(g) != len(spread) or len(g) < 2:
            raise ValueError(f"need as many spreads as >= 2 device states, got {len(g)} states, {len(spread)} spreads")
        up, down = list(range(1, len(g))), list(range(len(g) - 1, 0, -1))
        plus = [0] * len(down) + [0] + up
        minus = down + [0] + [0] * len(up)
        return cls(tuple(float(g[i]) for i in plus), tuple(float(g[i]) for i in minus),
                   tuple(float(spread[i]) for i in plus), tuple(float(spread[i]) for i in minus))

    @property
    def max_level(self) -> int:
        return len(self.g_plus) // 2

    @property
    def g_unit(self) -> float:
        """Conductance difference of one level step, S."""
        diff = [a - b for a, b in zip(self.g_plus, self.g_minus)]
        return (diff[-1] - diff[0]) / (2 * self.max_level)

    def mean_spread(self) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.tensor([self.g_plus, self.g_minus, self.g_plus_spread, self.g_minus_spread], dtype=torch.float64)
        return (g[0] - g[1]) / self.g_unit, torch.hypot(g[2], g[3]) / self.g_unit

    def conductances(self, levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (G+, G-) in S of integer levels (any shape), for mapping exported weights onto devices."""
        index = levels.to(torch.long) + self.max_level
        return (torch.tensor(self.g_plus, dtype=torch.float64)[index],
                torch.tensor(self.g_minus, dtype=torch.float64)[index])

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "conductance", "g_plus": list(self.g_plus), "g_minus": list(self.g_minus),
                "g_plus_spread": list(self.g_plus_spread), "g_minus_spread": list(self.g_minus_spread)}


def level_table_from_dict(data: dict[str, Any]) -> LevelTable:
    """Rebuild a level table from its `to_dict()`; ValueError naming the kinds if the kind is unknown."""
    fields = {k: v for k, v in data.items() if k != "kind"}
    if data.get("kind") == "uniform":
        return UniformLevels(**fields)
    if data.get("kind") == "conductance":
        return ConductanceLevels(**{k: tuple(v) for k, v in fields.items()})
    raise ValueError(f"unknown level table kind {data.get('kind')!r}; known: 'uniform', 'conductance'")


def stochastic_round(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """floor(x) + 1 with probability frac(x), else floor(x): unbiased, E[result] = x."""
    low = torch.floor(x)
    return low + (torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) < x - low).to(x.dtype)


def quantize(w: torch.Tensor, table: LevelTable, generator: torch.Generator | None = None) -> torch.Tensor:
    """One stochastic draw of the realised weights of w (same shape and units), straight-through to w."""
    levels, scale = integer_levels(w, table.max_level, stochastic=True, generator=generator)
    means, spreads = (t.to(w.dtype).to(w.device) for t in table.mean_spread())
    index = levels.to(torch.long) + table.max_level
    realised = means[index]
    if bool((spreads > 0).any()):
        noise = torch.randn(w.shape, generator=generator, dtype=w.dtype, device=w.device)
        realised = realised + spreads[index] * noise
    return w + (realised * scale - w).detach()


def integer_levels(
    w: torch.Tensor, level: int, stochastic: bool = False, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(integer levels in -level..level as int8 or int16, step in weight units) of w under abs-max scaling.

    stochastic=False rounds to the nearest level (deterministic export); True draws as the forward pass does.
    """
    max_val = level + 0.5
    w = w.detach()
    scale = w.abs().max().clamp_min(torch.finfo(w.dtype).tiny) / max_val
    x = w / scale
    q = stochastic_round(x, generator) if stochastic else torch.round(x)
    dtype = torch.int8 if level <= 127 else torch.int16
    return torch.clamp(q, -level, level).to(dtype), scale


@runtime_checkable
class ArrayReader(Protocol):
    """The circuit a quantised layer's weights are read through in training."""

    def read(self, x: torch.Tensor, levels: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """Layer output [..., out], weight units times inputs, for inputs `x` [..., in] through realised weight
        levels `levels` [out, in] (level units, differentiable) of `step` weight units each."""


class QuantizedLinear(nn.Linear):
    """nn.Linear whose weights are drawn from b-bit levels on every call (see the module docstring).

    Args:
        in_features, out_features: as nn.Linear.
        bits: 3 default; None for plain float weights (then level_table must be None).
        bias: a float (never quantised) bias; off by default.
        level_table: mapping of the integer levels to realised weights; default `UniformLevels(bits)`.
        array: the circuit the realised levels are read through (`ArrayReader`); None: the ideal product.
    """

    def __init__(self, in_features: int, out_features: int, bits: int | None = 3, bias: bool = False,
                 level_table: LevelTable | None = None, array: ArrayReader | None = None, device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        if bits is None:
            if level_table is not None:
                raise ValueError("QuantizedLinear: a level_table needs bits (got bits=None: float weights)")
        elif level_table is None:
            level_table = UniformLevels(bits)
        elif level_table.max_level != max_level(bits):
            raise ValueError(f"QuantizedLinear: {bits} bits have levels +-{max_level(bits)}, the level table "
                             f"has +-{level_table.max_level}")
        if array is not None and bits is None:
            raise ValueError("QuantizedLinear: an array reads weight levels; float weights (bits=None) have none")
        self.bits = bits
        self.level_table = level_table
        self.array = array

    def sample_weight(self) -> torch.Tensor:
        """The weights of one call: a fresh stochastic draw (straight-through to `weight`), or `weight` if float."""
        if self.level_table is None:
            return self.weight
        return quantize(self.weight, self.level_table)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.array is None:
            return F.linear(x, self.sample_weight(), self.bias)
        _, step = self.integer_levels()
        out = self.array.read(x, self.sample_weight() / step, step)
        return out if self.bias is None else out + self.bias

    def integer_levels(self, stochastic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(integer levels [out, in], weight step) of the current weights; nearest rounding unless stochastic."""
        if self.level_table is None:
            raise ValueError("QuantizedLinear with bits=None has float weights and no integer levels")
        return integer_levels(self.weight, self.level_table.max_level, stochastic)

    def export(self) -> dict[str, Any]:
        """JSON-safe weights for verification: bits, levels [out][in] (nearest), step, level table, float bias."""
        levels, step = self.integer_levels()
        return {"bits": self.bits, "levels": levels.tolist(), "step": float(step),
                "level_table": self.level_table.to_dict(),
                "bias": None if self.bias is None else self.bias.detach().tolist()}

    def extra_repr(self) -> str:
        return super().extra_repr() + f", bits={self.bits}, level_table={self.level_table}, array={self.array}"
