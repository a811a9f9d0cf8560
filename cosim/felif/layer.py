"""FeLIFLayer: a thin nn.Module shell around a FeLIF coarse-step method (BRUNO by default).

Methods share the signature of `cosim.felif.step`: ``step(i_in, state, s_prev, params, cfg) -> (spikes, state)``
and are looked up by name in `METHODS`. "bruno" and "bruno_step" are registered here; `cosim.felif.baselines`
adds its own ("bptt", "bptt_ckpt", "coarse") by inserting into `METHODS` when it is imported, which
`step_method` does on the first unknown name. A method may also have a whole-sequence form in `SEQUENCES` (same
values, one autograd node per sequence), which the layer runs instead of the step loop: "bruno" does
(`bruno_sequence`), "bruno_step" is the same method run step by step. Cycle-to-cycle variability always runs the
step loop: its parameters are drawn afresh on every step, and a sequence node would have to keep every draw for
its backward pass.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Callable, NamedTuple

import torch
from torch import nn

from cosim.felif.bruno import BrunoSequence, bruno_sequence, bruno_step
from cosim.felif.physics import FeLIFParameters, FeLIFState, initial_state
from cosim.felif.step import StepConfig, StepFn
from cosim.felif.variability import with_cycle_to_cycle

if TYPE_CHECKING:
    from cosim.surrogates.guard import ValidityGuard

METHODS: dict[str, StepFn] = {"bruno": bruno_step, "bruno_step": bruno_step}
"""Coarse-step methods by name; other modules register theirs by inserting into this dict."""

SequenceFn = Callable[[torch.Tensor, float, FeLIFState, torch.Tensor, FeLIFParameters, StepConfig], BrunoSequence]
"""A whole-sequence method: run(x, current_scale, state, s_prev, params, cfg) -> (spikes, V, P), each [T, batch, n]."""

SEQUENCES: dict[str, SequenceFn] = {"bruno": bruno_sequence}
"""Whole-sequence forms of methods in `METHODS`, by the same name."""

_METHOD_PROVIDERS = ("cosim.felif.baselines",)


def step_method(name: str) -> StepFn:
    """The registered step function called `name`; ValueError listing the known methods if there is none."""
    for provider in _METHOD_PROVIDERS:
        if name in METHODS:
            break
        try:
            importlib.import_module(provider)
        except ModuleNotFoundError as err:
            if err.name != provider:  # the provider exists but is broken: show that error
                raise
    if name not in METHODS:
        raise ValueError(f"unknown FeLIF method {name!r}; registered: {sorted(METHODS)}")
    return METHODS[name]


def _broadcasts_to(shape: torch.Size, target: tuple[int, ...]) -> bool:
    try:
        return torch.broadcast_shapes(shape, target) == target
    except RuntimeError:
        return False


class FeLIFRecord(NamedTuple):
    """State traces of one forward call (after each coarse step's reset)."""

    v: torch.Tensor
    """Membrane voltage, V, [T, batch, n]."""
    p: torch.Tensor
    """Polarisation, C/m^2, [T, batch, n]."""


class FeLIFLayer(nn.Module):
    """n FeLIF neurons driven by an input in weight units, one coarse step per time bin.

    Args:
        n: number of neurons.
        params: device parameters; a field may be a tensor broadcastable to (n,) (per-neuron variability).
        cfg: time grid, surrogate and gradient options of the coarse step.
        method: name of the coarse-step method in `METHODS` ("bruno" default: BRUNO as one autograd node per
            sequence; "bruno_step": the same, step by step).
        current_scale: synaptic current gain, A per weight unit: the input current is x * current_scale.
            The default 1 nA per unit puts O(1) inputs in the 1-50 nA range of REFERENCE.md's sanity numbers.
        dtype: dtype of the state and the computation (float32 default, float64 for reference runs).
        stateful: if False every forward starts at rest (V = 0, P = -P_s); if True it continues from where the
            previous call stopped (state detached between calls) until `reset_state`.
        guard: validity guard of a fitted surrogate (`cosim.surrogates`): counts the neuron-steps whose input
            current or state lies outside the fit's support; read `layer.guard.report()` after training.
        c2c_sigma: cycle-to-cycle variability, the relative standard deviation of the device parameters drawn
            afresh for every neuron on every coarse step (0: off; on, the method runs step by step, also "bruno").
            Device-to-device variability is fixed per instance: pass per-neuron parameter tensors
            (`cosim.felif.variability.device_to_device`).
    """

    def __init__(
        self,
        n: int,
        params: FeLIFParameters = FeLIFParameters(),
        cfg: StepConfig = StepConfig(),
        method: str = "bruno",
        current_scale: float = 1e-9,
        dtype: torch.dtype = torch.float32,
        stateful: bool = False,
        guard: ValidityGuard | None = None,
        c2c_sigma: float = 0.0,
    ):
        super().__init__()
        if n < 1:
            raise ValueError(f"FeLIFLayer needs n >= 1 neurons, got {n}")
        if not current_scale > 0:
            raise ValueError(f"current_scale (A per weight unit) must be > 0, got {current_scale!r}")
        self.n = n
        self.cfg = cfg
        self.method = method
        self.current_scale = float(current_scale)
        self.dtype = dtype
        self.stateful = stateful
        self.guard = guard
        if not c2c_sigma >= 0:
            raise ValueError(f"c2c_sigma (relative spread) must be >= 0, got {c2c_sigma!r}")
        self.c2c_sigma = float(c2c_sigma)
        self._step = step_method(method)
        if c2c_sigma > 0:
            self._step = with_cycle_to_cycle(self._step, c2c_sigma)
        self._scalars: dict[str, float] = {}
        self.params = params
        self._state: tuple[FeLIFState, torch.Tensor] | None = None

    @property
    def params(self) -> FeLIFParameters:
        """The device parameters, per-neuron fields as tensors on the layer's device."""
        tensors = {name[len("param_"):]: t for name, t in self.named_buffers() if name.startswith("param_")}
        return FeLIFParameters(**self._scalars, **tensors)

    @params.setter
    def params(self, params: FeLIFParameters) -> None:
        params.validate()
        self._scalars = {}
        for field in dataclasses.fields(params):
            value = getattr(params, field.name)
            if isinstance(value, torch.Tensor):
                if not _broadcasts_to(value.shape, (self.n,)):
                    raise ValueError(
                        f"FeLIF parameter {field.name} of shape {tuple(value.shape)} does not broadcast to the "
                        f"layer's {self.n} neurons"
                    )
                self.register_buffer(f"param_{field.name}", value.detach().to(self.dtype), persistent=True)
            else:
                self._buffers.pop(f"param_{field.name}", None)
                self._scalars[field.name] = value

    @property
    def dt(self) -> float:
        """Coarse step, s."""
        return self.cfg.dt

    def reset_state(self, batch: int, device: torch.device | str | None = None) -> None:
        """Put a stateful layer at rest for `batch` parallel sequences (on `device`, default: the layer's)."""
        if device is None:
            device = next(iter(self.buffers()), torch.empty(0)).device
        self._state = self._rest(batch, device)

    def _rest(self, batch: int, device: torch.device | str) -> tuple[FeLIFState, torch.Tensor]:
        state = initial_state((batch, self.n), self.params, self.dtype, device)
        return state, torch.zeros_like(state.v)

    def forward(
        self, x: torch.Tensor, record: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, FeLIFRecord]:
        """Spikes [T, batch, n] (0/1, dtype of x) for input x [T, batch, n] in weight units.

        With record=True also returns the V and P traces (`FeLIFRecord`).
        """
        if x.dim() != 3 or x.shape[-1] != self.n:
            raise ValueError(f"FeLIFLayer expects input [T, batch, {self.n}], got {tuple(x.shape)}")
        batch = x.shape[1]
        if self.stateful and self._state is not None:
            state, s = self._state
            if state.v.shape[0] != batch:
                raise ValueError(
                    f"stateful FeLIFLayer holds a batch of {state.v.shape[0]}, got {batch}; call reset_state({batch})"
                )
        else:
            state, s = self._rest(batch, x.device)
        params = self.params
        if self.method in SEQUENCES and self.c2c_sigma == 0:
            out, v, p = SEQUENCES[self.method](x, self.current_scale, state, s, params, self.cfg)
            if self.guard is not None:
                with torch.no_grad():
                    self.guard.observe(x.to(self.dtype) * self.current_scale, FeLIFState(v, p))
            if self.stateful:  # copies: a view would keep the whole sequence alive
                self._state = (FeLIFState(v[-1].detach().clone(), p[-1].detach().clone()),
                               out[-1].detach().to(self.dtype))
            return (out, FeLIFRecord(v, p)) if record else out
        current = x.to(self.dtype) * self.current_scale
        spikes, vs, ps = [], [], []
        for i_t in current:
            s, state = self._step(i_t, state, s, params, self.cfg)
            if self.guard is not None:
                self.guard.observe(i_t, state)
            spikes.append(s)
            if record:
                vs.append(state.v)
                ps.append(state.p)
        if self.stateful:
            self._state = (FeLIFState(state.v.detach(), state.p.detach()), s.detach())
        out = torch.stack(spikes).to(x.dtype)
        if record:
            return out, FeLIFRecord(torch.stack(vs), torch.stack(ps))
        return out

    def extra_repr(self) -> str:
        return (
            f"n={self.n}, method={self.method!r}, current_scale={self.current_scale:g} A/unit, "
            f"dt={self.cfg.dt:g} s, h={self.cfg.h:g} s, integrator={self.cfg.integrator!r}, dtype={self.dtype}"
        )
