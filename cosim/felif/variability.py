"""Device variability of the FeLIF neurons (REFERENCE.md section 3): never trained, off by default.

Each varied parameter (A, E_a, P_s, I0, t_fe, t_int by default) of each neuron is multiplied by
(1 + sigma N(0, 1)):

- device-to-device (`device_to_device`): drawn once for a network instance (per neuron, from a seed or a
  generator) and kept; drawing again with another seed gives another instance.
- cycle-to-cycle (`cycle_to_cycle`, or `with_cycle_to_cycle` around a step method): a fresh draw on every call,
  per neuron and per sample of the batch.

Both return `FeLIFParameters` whose varied fields are tensors (the physics broadcasts them against the state).
sigma is meant for small spreads (0.01 and 0.1 in the paper): at sigma >= 0.2 a multiplier <= 0 becomes likely
over many draws, and `FeLIFParameters.validate` rejects such parameters.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from cosim.felif.physics import FeLIFParameters, FeLIFState
from cosim.felif.step import StepConfig, StepFn

VARIED_FIELDS = ("area", "e_a", "p_s", "i0", "t_fe", "t_int")
"""The parameters that vary between devices (FeLIFParameters field names)."""


@dataclass(frozen=True)
class VariabilityConfig:
    """How much the devices vary; all zero (off) by default."""

    d2d_sigma: float = 0.0
    """Device-to-device relative standard deviation of each varied parameter (0.01 and 0.1 in the paper)."""
    seed: int = 0
    """Seed of the device-to-device draw: one network instance per seed."""
    fields: tuple[str, ...] = VARIED_FIELDS
    """Which FeLIFParameters fields vary."""

    def __post_init__(self) -> None:
        if not self.d2d_sigma >= 0:
            raise ValueError(f"VariabilityConfig.d2d_sigma must be >= 0 (relative spread), got {self.d2d_sigma!r}")
        known = set(FeLIFParameters.__dataclass_fields__)
        unknown = [f for f in self.fields if f not in known]
        if unknown:
            raise ValueError(f"VariabilityConfig.fields {unknown} are not FeLIFParameters fields: {sorted(known)}")

    def device_parameters(self, params: FeLIFParameters, n: int) -> FeLIFParameters:
        """The parameters of this instance's n neurons (device-to-device draw from `seed`)."""
        generator = torch.Generator().manual_seed(self.seed)
        return device_to_device(params, n, self.d2d_sigma, self.fields, generator)


def multipliers(
    shape: tuple[int, ...], sigma: float, fields: tuple[str, ...] = VARIED_FIELDS,
    generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """1 + sigma N(0, 1) of the given shape for each field, from `generator` (torch's global RNG if None)."""
    return {name: 1.0 + sigma * torch.randn(shape, generator=generator, dtype=dtype).to(device)
            for name in fields}


def vary(params: FeLIFParameters, factors: dict[str, torch.Tensor]) -> FeLIFParameters:
    """params with each named field multiplied by its factor tensor (broadcast against the state)."""
    changes = {}
    for name, factor in factors.items():
        value = getattr(params, name)
        base = value.to(factor) if isinstance(value, torch.Tensor) else value
        changes[name] = base * factor
    return params.replace(**changes)


def device_to_device(
    params: FeLIFParameters, n: int, sigma: float, fields: tuple[str, ...] = VARIED_FIELDS,
    generator: torch.Generator | None = None,
) -> FeLIFParameters:
    """Per-neuron parameters [n] of one network instance: each field times (1 + sigma N(0, 1)).

    Draws from `generator` (torch's global RNG if None: seed it for a reproducible instance); float64 tensors.
    sigma = 0 returns params unchanged.
    """
    if n < 1:
        raise ValueError(f"device_to_device needs n >= 1 neurons, got {n}")
    if sigma == 0:
        return params
    return vary(params, multipliers((n,), sigma, fields, generator))


def cycle_to_cycle(
    params: FeLIFParameters, shape: tuple[int, ...], sigma: float, fields: tuple[str, ...] = VARIED_FIELDS,
    generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> FeLIFParameters:
    """A fresh draw on every call: fields times (1 + sigma N(0, 1)) of `shape` (e.g. the state's [batch, n]).

    sigma = 0 returns params unchanged."""
    if sigma == 0:
        return params
    return vary(params, multipliers(shape, sigma, fields, generator, dtype, device))


def with_cycle_to_cycle(
    step: StepFn, sigma: float, fields: tuple[str, ...] = VARIED_FIELDS, generator: torch.Generator | None = None
) -> StepFn:
    """A coarse-step method that runs `step` with parameters drawn afresh (cycle-to-cycle) on every call."""

    def varied_step(
        i_in: torch.Tensor, state: FeLIFState, s_prev: torch.Tensor, params: FeLIFParameters, cfg: StepConfig
    ) -> tuple[torch.Tensor, FeLIFState]:
        drawn = cycle_to_cycle(params, tuple(state.v.shape), sigma, fields, generator, state.v.dtype, state.v.device)
        return step(i_in, state, s_prev, drawn, cfg)

    return varied_step
