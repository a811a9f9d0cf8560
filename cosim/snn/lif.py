"""Leaky integrate-and-fire layers (REFERENCE.md section 4): the LIF and recurrent-LIF baselines.

Discrete time, one step per data bin, dimensionless membrane units (threshold 1). Per step t, with input x_t
(weight units) and the previous step's spikes s_{t-1}:

    syn_t = a * syn_{t-1} + x_t
    mem_t = b * mem_{t-1} + syn_t - threshold * s_{t-1}      (reset by subtraction, one step after the spike)
    s_t   = Heaviside(mem_t - threshold), surrogate gradient (SuperSpike 1/(1 + steepness |mem - threshold|))

The decays a (synaptic current) and b (membrane) are used clamped to [0.5, 1] (so a decay a learning rule pushes
outside that range has no gradient there); the reset term carries no gradient. The recurrent layer adds the
previous spikes through a weight matrix: x_t + W_rec s_{t-1}.

Pure step functions (`lif_step`, `recurrent_lif_step`) on `LIFState` with `LIFParameters`; `LIF` and
`RecurrentLIF` are thin nn.Module shells holding the (optionally learnable) per-neuron decays.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal, NamedTuple, Union

import torch
from torch import nn

from cosim.felif.step import SpikeFunction
from cosim.snn.synapses import LevelTable, QuantizedLinear

Decay = Union[float, torch.Tensor]


@dataclass(frozen=True)
class LIFParameters:
    """Parameters of a LIF layer; the decays may be per-neuron tensors (learnable in the module shells)."""

    mem_decay: Decay = math.exp(-1.0 / 10.0)
    """Membrane decay per step b (dimensionless; exp(-dt/tau_mem), tau_mem = 10 steps)."""
    syn_decay: Decay = math.exp(-1.0 / 5.0)
    """Synaptic-current decay per step a (dimensionless; exp(-dt/tau_syn), tau_syn = 5 steps)."""
    threshold: float = 1.0
    """Spike threshold, membrane units; also the amount subtracted at the reset."""
    decay_min: float = 0.5
    """Lower clamp of both decays."""
    decay_max: float = 1.0
    """Upper clamp of both decays."""
    surrogate: Literal["superspike", "tanh"] = "superspike"
    """Surrogate derivative of the spike."""
    steepness: float = 10.0
    """SuperSpike steepness, 1/(membrane unit)."""


class LIFState(NamedTuple):
    """State of a LIF layer between steps, each [batch, n]."""

    mem: torch.Tensor
    """Membrane potential, membrane units."""
    syn: torch.Tensor
    """Synaptic current, membrane units per step."""
    spikes: torch.Tensor
    """Spikes of the previous step (0/1): subtracted from mem at this step."""


def initial_lif_state(shape: tuple[int, ...], dtype: torch.dtype = torch.float32,
                      device: torch.device | str | None = None) -> LIFState:
    """All zero: at rest, no current, no pending reset."""
    zero = torch.zeros(shape, dtype=dtype, device=device)
    return LIFState(zero, zero, zero)


def clamp_decay(decay: Decay, params: LIFParameters) -> torch.Tensor:
    """The decay as used: clamped to [decay_min, decay_max]."""
    return torch.clamp(torch.as_tensor(decay), params.decay_min, params.decay_max)


class _StepConstants(NamedTuple):
    """What every step of a sequence uses: the clamped decays (in the input's dtype) and the threshold tensor."""

    syn_decay: torch.Tensor
    mem_decay: torch.Tensor
    threshold: torch.Tensor


def _constants(params: LIFParameters, x: torch.Tensor) -> _StepConstants:
    return _StepConstants(clamp_decay(params.syn_decay, params).to(x), clamp_decay(params.mem_decay, params).to(x),
                          torch.as_tensor(params.threshold, dtype=x.dtype, device=x.device))


def _update(x: torch.Tensor, state: LIFState, c: _StepConstants,
            params: LIFParameters) -> tuple[torch.Tensor, LIFState]:
    syn = c.syn_decay * state.syn + x
    mem = c.mem_decay * state.mem + syn - params.threshold * state.spikes.detach()
    spikes = SpikeFunction.apply(mem, c.threshold, params.surrogate, params.steepness)
    return spikes, LIFState(mem, syn, spikes)


def lif_step(x: torch.Tensor, state: LIFState, params: LIFParameters) -> tuple[torch.Tensor, LIFState]:
    """One LIF step for input x [batch, n] (weight units): (spikes, new state)."""
    return _update(x, state, _constants(params, x), params)


def recurrent_lif_step(
    x: torch.Tensor, state: LIFState, w_rec: torch.Tensor, params: LIFParameters
) -> tuple[torch.Tensor, LIFState]:
    """One recurrent LIF step: `lif_step` with input x + W_rec s_{t-1} (w_rec [n, n], weight units)."""
    return lif_step(x + state.spikes @ w_rec.T, state, params)


def lif_sequence(x: torch.Tensor, params: LIFParameters, w_rec: torch.Tensor | None = None) -> torch.Tensor:
    """Spikes [T, batch, n] for inputs x [T, batch, n] from rest; recurrent through w_rec [n, n] if given.

    The steps of `lif_step` / `recurrent_lif_step`, with the clamped decays and the threshold made once per
    sequence instead of once per step (the same values; the decays' gradient is summed over the steps before
    the clamp instead of after it)."""
    state = initial_lif_state(x.shape[1:], x.dtype, x.device)
    constants = _constants(params, x)
    spikes = []
    for x_t in x:
        if w_rec is not None:
            x_t = x_t + state.spikes @ w_rec.T
        s, state = _update(x_t, state, constants, params)
        spikes.append(s)
    return torch.stack(spikes)


class LIF(nn.Module):
    """n LIF neurons; forward maps inputs [T, batch, n] (weight units) to spikes [T, batch, n].

    Args:
        n: number of neurons.
        params: threshold, clamps, surrogate, and the initial decays.
        learn_decay: if True the per-neuron decays are trained (nn.Parameter), else fixed buffers.
    """

    def __init__(self, n: int, params: LIFParameters = LIFParameters(), learn_decay: bool = False):
        super().__init__()
        if n < 1:
            raise ValueError(f"LIF needs n >= 1 neurons, got {n}")
        self.n = n
        self.base = params
        decays = {name: torch.full((n,), float(getattr(params, name))) for name in ("mem_decay", "syn_decay")}
        for name, value in decays.items():
            if learn_decay:
                self.register_parameter(name, nn.Parameter(value))
            else:
                self.register_buffer(name, value)

    @property
    def params(self) -> LIFParameters:
        """The parameters with this layer's per-neuron decays."""
        return dataclasses.replace(self.base, mem_decay=self.mem_decay, syn_decay=self.syn_decay)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[-1] != self.n:
            raise ValueError(f"{type(self).__name__} expects input [T, batch, {self.n}], got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return lif_sequence(x, self.params)

    def extra_repr(self) -> str:
        learn = isinstance(self.mem_decay, nn.Parameter)
        return f"n={self.n}, threshold={self.base.threshold}, learn_decay={learn}"


class RecurrentLIF(LIF):
    """LIF with recurrent synapses W_rec [n, n] (a `QuantizedLinear`, float if bits is None).

    The recurrent weights are drawn once per forward call (one draw for the whole sequence).
    """

    def __init__(self, n: int, params: LIFParameters = LIFParameters(), learn_decay: bool = False,
                 bits: int | None = None, level_table: LevelTable | None = None):
        super().__init__(n, params, learn_decay)
        self.recurrent = QuantizedLinear(n, n, bits=bits, bias=False, level_table=level_table)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return lif_sequence(x, self.params, self.recurrent.sample_weight())
