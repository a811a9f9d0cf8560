"""Design of experiments for the FeLIF surrogate fit: input-current stimuli and their SPICE rendering.

A `Stimulus` is an input current held constant over each coarse step (zero-order hold on the grid `dt`),
which is exactly what the training layer feeds a FeLIF neuron: one current per coarse step. The families:

- `constant`: one current for the whole stimulus;
- `pulse_train`: a current switched on for `on_steps` and to a `low` current (default 0) for `off_steps`, repeated;
- `poisson_driven`: presynaptic Poisson spike trains through signed weights (the current of a coarse step is
  the sum of the weights of the inputs that spiked in it, plus a `bias`), clipped to [-cap, cap];
- `replay`: a recorded sequence of input currents (what a training run fed one neuron, `cosim.surrogates.guard`).

Each stimulus of the shipped designs belongs to a region (`Stimulus.region`, `REGIONS`) and the fit's held-out
errors are reported per region:

- "nominal": non-negative currents, 0.5 to 200 nA (the operating range of REFERENCE.md and the largest column
  currents of trained 3-bit networks);
- "signed": currents of both signs, as the columns of signed weights carry: V dips below the reset voltage and the
  FeCap partly switches back between spikes;
- "rail": phases of negative current (-1 to -100 nA) that drive V onto the lower clamp rail (about -4.9 V, the
  training model's v_min), alternating with positive phases that make the neuron fire again.

`design("fit")` and `design("holdout")` are the shipped designs: different amplitudes, duty cycles and seeds,
so the validation is on stimuli the fit has not seen. For ngspice, `Stimulus.pwl` renders the current as a
piecewise-linear source whose edges are centred on the step boundaries, so it carries the same charge per step.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from cosim.spice.elements import Pwl

Kind = Literal["constant", "pulses", "poisson", "replay"]
SPLITS = ("fit", "holdout")
REGIONS = ("nominal", "signed", "rail")
"""Regions of the design (see the module docstring)."""

FIRST_SPIKE_NA_S = 12.5e-3
"""First threshold crossing from rest times the input current, s nA (12.56 ms at 1 nA, 1.24 ms at 10 nA): sizes
stimulus durations so that every stimulus shows a few spikes."""


@dataclass(frozen=True)
class Stimulus:
    """An input current held over each coarse step."""

    name: str
    """Unique label (used for SPICE jobs, plots and the artifact)."""
    kind: Kind
    """Family: "constant", "pulses" or "poisson"."""
    current: tuple[float, ...]
    """Input current of each coarse step, A (either sign: positive charges the membrane)."""
    dt: float = 1e-3
    """Coarse step, s: `current[k]` flows during [k dt, (k+1) dt)."""
    recipe: dict = field(default_factory=dict, compare=False, hash=False)
    """How it was made (generator arguments and seed), for the record."""

    def __post_init__(self) -> None:
        if not self.current:
            raise ValueError(f"stimulus {self.name!r}: needs at least one coarse step of current")
        if not all(math.isfinite(i) for i in self.current):
            raise ValueError(f"stimulus {self.name!r}: currents must be finite, got {self.current}")
        if self.dt <= 0:
            raise ValueError(f"stimulus {self.name!r}: dt must be > 0 s, got {self.dt}")

    @property
    def region(self) -> str:
        """The design region (`REGIONS`): the recipe's "region" if given, else "nominal" for non-negative currents
        and "signed" for currents of both signs."""
        return self.recipe.get("region", "nominal" if min(self.current) >= 0 else "signed")

    @property
    def steps(self) -> int:
        """Number of coarse steps."""
        return len(self.current)

    @property
    def duration(self) -> float:
        """Length, s."""
        return self.steps * self.dt

    def pwl(self, edge: float = 100e-9) -> Pwl:
        """The current as a PWL source: 0 at t = 0 (the operating point is the neuron at rest), a ramp of `edge`
        s to the first current, then steps with linear edges of `edge` s centred on the step boundaries (the
        charge of each coarse step as in the zero-order hold, less I_0 edge / 2 in the first)."""
        if not 0 < edge < self.dt / 2:
            raise ValueError(f"stimulus {self.name!r}: PWL edge must be in (0, dt/2={self.dt / 2}) s, got {edge}")
        points = [(0.0, 0.0), (edge, self.current[0])]
        for k in range(1, self.steps):
            if self.current[k] != self.current[k - 1]:
                t = k * self.dt
                points += [(t - edge / 2, self.current[k - 1]), (t + edge / 2, self.current[k])]
        points.append((self.duration, self.current[-1]))
        return Pwl(tuple(points))

    def to_dict(self) -> dict:
        """Plain-data form for the artifact (currents in A)."""
        return asdict(self) | {"current": list(self.current)}

    @classmethod
    def from_dict(cls, data: dict) -> "Stimulus":
        """Inverse of `to_dict`."""
        return cls(**(data | {"current": tuple(float(i) for i in data["current"])}))


def _duration_steps(amplitude: float, dt: float, spikes: int, min_steps: int, max_steps: int) -> int:
    first = FIRST_SPIKE_NA_S / max(amplitude * 1e9, 1e-3)
    # each later spike costs its integration time plus one refractory step
    return int(min(max(math.ceil(spikes * (first + dt) / dt), min_steps), max_steps))


def constant(amplitude: float, *, spikes: int = 5, dt: float = 1e-3, min_steps: int = 15,
             max_steps: int = 80) -> Stimulus:
    """A constant current `amplitude` (A), long enough for about `spikes` spikes (within [min, max] steps; a
    negative current gets min_steps)."""
    steps = _duration_steps(amplitude, dt, spikes, min_steps, max_steps) if amplitude > 0 else min_steps
    return Stimulus(f"const_{amplitude * 1e9:g}nA", "constant", (float(amplitude),) * steps, dt,
                    {"amplitude": amplitude, "steps": steps})


def pulse_train(amplitude: float, on_steps: int, off_steps: int, steps: int, *, delay_steps: int = 0,
                low: float = 0.0, dt: float = 1e-3, region: str | None = None) -> Stimulus:
    """`amplitude` (A) for `on_steps`, then `low` (A) for `off_steps`, repeated over `steps` coarse steps (`low`
    also during the first `delay_steps`); region: the design region (default: from the currents)."""
    if on_steps < 1 or off_steps < 0 or steps < 1 or delay_steps < 0:
        raise ValueError(f"pulse_train: need on_steps >= 1, off_steps >= 0, steps >= 1, delay_steps >= 0; got "
                         f"{on_steps}, {off_steps}, {steps}, {delay_steps}")
    period = on_steps + off_steps
    current = tuple(float(amplitude) if k >= delay_steps and (k - delay_steps) % period < on_steps else float(low)
                    for k in range(steps))
    name = f"pulses_{amplitude * 1e9:g}nA_{on_steps}on{off_steps}off" + (f"_low{low * 1e9:g}nA" if low else "")
    return Stimulus(name, "pulses", current, dt,
                    {"amplitude": amplitude, "on_steps": on_steps, "off_steps": off_steps, "steps": steps,
                     "delay_steps": delay_steps, "low": low} | ({"region": region} if region else {}))


def poisson_driven(rate: float, weights: tuple[float, ...], steps: int, seed: int, *, cap: float = 100e-9,
                   bias: float = 0.0, dt: float = 1e-3, region: str | None = None) -> Stimulus:
    """Presynaptic Poisson spike trains of `rate` (Hz) each, one per weight (A per spike and coarse step, either
    sign, none zero).

    A coarse step's current is `bias` (A) plus the sum of the weights times the number of spikes of each input in
    that step, clipped to [-cap, cap] A; `seed` makes it reproducible. region: the design region (default: from
    the currents).
    """
    if rate <= 0 or not weights or any(w == 0 for w in weights) or steps < 1 or cap <= 0:
        raise ValueError(f"poisson_driven: need rate > 0 Hz, non-zero weights, steps >= 1 and cap > 0 A; got "
                         f"rate={rate}, weights={weights}, steps={steps}, cap={cap}")
    counts = np.random.default_rng(seed).poisson(rate * dt, size=(steps, len(weights)))
    current = np.clip(bias + counts @ np.asarray(weights, dtype=float), -cap, cap)
    signed = "" if min(weights) > 0 and bias >= 0 else "signed_"
    return Stimulus(f"poisson_{signed}{rate:g}Hz_{len(weights)}in_s{seed}", "poisson",
                    tuple(float(i) for i in current), dt,
                    {"rate": rate, "weights": list(weights), "steps": steps, "seed": seed, "cap": cap, "bias": bias}
                    | ({"region": region} if region else {}))


def replay(name: str, current: tuple[float, ...], dt: float = 1e-3, region: str | None = None) -> Stimulus:
    """A recorded input-current sequence (A per coarse step) as a stimulus, e.g. one neuron of a training run."""
    return Stimulus(f"replay_{name}", "replay", tuple(float(i) for i in current), dt,
                    {"recorded": True} | ({"region": region} if region else {}))


def design(split: Literal["fit", "holdout"] = "fit", seed: int = 0, dt: float = 1e-3) -> tuple[Stimulus, ...]:
    """The shipped design of experiments (regions in the module docstring): constant currents, pulse trains and
    Poisson-driven currents across 0.5 to 200 nA ("nominal"), Poisson currents through signed weights
    ("signed"), and negative phases onto the clamp rail between positive ones ("rail"). "fit" and "holdout" use
    different amplitudes, duty cycles and Poisson seeds (`seed` offsets the Poisson seeds of both)."""
    na = 1e-9
    if split == "fit":
        amplitudes = (0.5, 1, 2, 5, 10, 20, 50, 100, 200)
        pulses = ((3, 2, 1, 40), (20, 3, 2, 40), (60, 1, 3, 40))  # (nA, on, off, steps)
        poisson = ((200, 8, 2.0), (500, 8, 4.0), (100, 16, 6.0), (1000, 4, 5.0))  # (Hz, inputs, nA per spike)
        # (Hz, positive inputs, negative inputs, nA per spike, bias nA)
        signed = ((300, 6, 4, 4.0, 1.0), (800, 4, 4, 8.0, 2.0), (700, 6, 8, 30.0, 0.0))
        rail = ((5, 4, 3, -2), (40, 2, 4, -20), (2, 10, 5, -100))  # (nA on, on steps, low steps, low nA)
    elif split == "holdout":
        amplitudes = (0.7, 1.5, 3, 7, 15, 30, 70, 150)
        pulses = ((4, 4, 1, 40), (30, 2, 2, 40), (80, 1, 2, 40))
        poisson = ((300, 8, 3.0), (700, 6, 4.0), (150, 12, 8.0), (800, 5, 6.0))
        signed = ((400, 5, 3, 5.0, 1.5), (600, 6, 5, 10.0, 0.5), (900, 3, 3, 20.0, 0.0))
        rail = ((8, 3, 2, -5), (25, 2, 6, -50), (3, 6, 4, -1))
    else:
        raise ValueError(f"unknown design split {split!r}; choose one of {SPLITS}")
    seed_base = seed * 1000 + (0 if split == "fit" else 500)
    stimuli = [constant(a * na, dt=dt) for a in amplitudes]
    stimuli += [pulse_train(a * na, on, off, steps, delay_steps=1, dt=dt) for a, on, off, steps in pulses]
    stimuli += [poisson_driven(rate, (w * na,) * n, 50, seed_base + j, dt=dt)
                for j, (rate, n, w) in enumerate(poisson)]
    stimuli += [poisson_driven(rate, (w * na,) * n_pos + (-w * na,) * n_neg, 60, seed_base + 100 + j,
                               cap=200 * na, bias=bias * na, dt=dt, region="signed")
                for j, (rate, n_pos, n_neg, w, bias) in enumerate(signed)]
    stimuli += [pulse_train(a * na, on, off, 50, delay_steps=2, low=low * na, dt=dt, region="rail")
                for a, on, off, low in rail]
    return tuple(stimuli)
