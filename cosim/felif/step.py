"""What every FeLIF coarse-step method shares: its configuration and the surrogate spike function.

A method (BRUNO, fine-step BPTT, checkpointed BPTT, coarse-only) is a function

    step(i_in, state, s_prev, params, cfg) -> (spikes, new_state)

with i_in the input current in A held constant over one coarse step (shape [batch, neurons]), state a
`FeLIFState`, s_prev the previous step's spikes (0/1, same shape), params `FeLIFParameters` and cfg a
`StepConfig`. The layer (`cosim.felif.layer`) selects the method by name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Literal

import torch

if TYPE_CHECKING:
    from cosim.felif.physics import FeLIFParameters, FeLIFState

StepFn = Callable[
    [torch.Tensor, "FeLIFState", torch.Tensor, "FeLIFParameters", "StepConfig"], tuple[torch.Tensor, "FeLIFState"]
]
"""A coarse-step method: step(i_in, state, s_prev, params, cfg) -> (spikes, state)."""


@dataclass(frozen=True)
class StepConfig:
    """Time grid and gradient options of one coarse step."""

    dt: float = 1e-3
    """Coarse step (autograd grid), s."""
    h: float = 1e-6
    """Fine physical step of the forward pass, s; dt/h sub-steps per coarse step."""
    surrogate: Literal["superspike", "tanh"] = "superspike"
    """Surrogate derivative of the spike: SuperSpike 1/(1 + beta|V - V_thr|) or 1 - tanh^2(V - V_thr)."""
    beta: float = 10.0
    """SuperSpike steepness, 1/V."""
    rate_grad: Literal["exact", "stop"] = "exact"
    """Gradient through the switching rate r(E) in the coarse step: exact dr/dE, or stopped (paper-era code)."""
    integrator: Literal["euler", "exponential"] = "euler"
    """Fine integrator: explicit Euler (reference) or the larger-step-stable exponential update."""

    @property
    def substeps(self) -> int:
        """Number of fine steps per coarse step."""
        n = round(self.dt / self.h)
        if n < 1 or abs(n * self.h - self.dt) > 1e-9 * self.dt:
            raise ValueError(f"dt={self.dt} s must be a whole multiple of h={self.h} s")
        return n


class SpikeFunction(torch.autograd.Function):
    """Heaviside(V - V_thr) forward; surrogate derivative backward."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, v_thr: torch.Tensor, surrogate: str, beta: float) -> torch.Tensor:
        # V itself is saved, not V - V_thr: the state keeps V alive anyway, so the node adds no tensor of its own
        ctx.save_for_backward(v, v_thr)
        ctx.surrogate, ctx.beta = surrogate, beta
        return (v > v_thr).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        v, v_thr = ctx.saved_tensors
        return grad * surrogate_derivative(v, v_thr, ctx.surrogate, ctx.beta), None, None, None


def surrogate_derivative(v: torch.Tensor, v_thr: torch.Tensor, surrogate: str, beta: float) -> torch.Tensor:
    """The surrogate d spike / d V at membrane v (V): SuperSpike 1/(1 + beta |V - V_thr|) or 1 - tanh^2(V - V_thr)."""
    x = v - v_thr
    if surrogate == "superspike":
        return 1.0 / (1.0 + beta * x.abs())
    if surrogate == "tanh":
        return 1.0 - torch.tanh(x) ** 2
    raise ValueError(f"unknown surrogate {surrogate!r}; use 'superspike' or 'tanh'")


def spike(v: torch.Tensor, v_thr: float | torch.Tensor, cfg: StepConfig) -> torch.Tensor:
    """Spikes (0/1, dtype of v) where V > V_thr, with the surrogate gradient chosen in cfg."""
    return SpikeFunction.apply(v, torch.as_tensor(v_thr, dtype=v.dtype, device=v.device), cfg.surrogate, cfg.beta)
