"""FeLIF physics: the ferroelectric leaky integrate-and-fire neuron of REFERENCE.md section 1.

This module is the single definition of the equations. The fine-step kernel, the differentiable coarse step,
the BPTT baselines and the surrogate fitting all call (or, for the fused kernel, transcribe and test against)
these functions. Everything is SI: volts, amperes, seconds, metres, farads, C/m^2.

Functions are pure and work on floats or tensors; parameter fields may be tensors broadcastable to the state
(per-neuron device-to-device variability).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple, Union

import torch

Scalar = Union[float, torch.Tensor]

EPS0 = 8.8541878128e-12
"""Vacuum permittivity, F/m."""

@dataclass(frozen=True)
class FeLIFParameters:
    """Device and neuron parameters (REFERENCE.md section 1 defaults)."""

    area: Scalar = 25e-12
    """FeCap area A, m^2."""
    t_fe: Scalar = 10e-9
    """Ferroelectric (HZO) thickness, m."""
    t_int: Scalar = 1.375e-9
    """Dielectric interlayer thickness, m."""
    eps_fe: Scalar = 25.2
    """Relative permittivity of the ferroelectric."""
    eps_int: Scalar = 33.0
    """Relative permittivity of the interlayer."""
    c_par: Scalar = 15e-15
    """Parasitic capacitance of the membrane node, F."""
    i_dsc: Scalar = 10e-12
    """Constant discharge current (acts against the sign of V), A."""
    e_a: Scalar = 1.27e9
    """Activation field of nucleation-limited switching, V/m."""
    p_s: Scalar = 0.22
    """Saturation polarisation, C/m^2."""
    tau0: Scalar = 1e-13
    """Switching time constant at infinite field, s."""
    alpha: Scalar = 1.3
    """Exponent of the nucleation-limited switching law (dimensionless)."""
    i0: Scalar = 1e-4
    """Leakage current density prefactor, A/m^2."""
    v_t: Scalar = 0.32
    """Leakage voltage scale, V."""
    v_thr: Scalar = 2.5
    """Spike threshold, V (2.0 V in the music runs)."""
    v_reset: Scalar = -1.5
    """Membrane voltage after a spike, V (the FeCap is reset to -P_s)."""
    v_min: Scalar = -5.0049
    """Lowest membrane voltage, V: where the neuron circuit's input protection holds the node under the largest
    negative input current (300 nA into the clamp diode to the -4.5 V rail; derived by
    `cosim.devices.felif.FeLIFCircuitParameters.membrane_limits`). V is clipped to [v_min, v_max]."""
    v_max: Scalar = 3.8049
    """Highest membrane voltage, V: where the input protection holds the node under the largest positive input
    current (300 nA into the clamp diode to the 3.3 V rail), as `v_min`."""
    e_guard: float = 1e-6
    """Added to |E| only to avoid 0/0 in the switching rate, V/m."""

    def replace(self, **changes: Scalar) -> "FeLIFParameters":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def validate(self) -> "FeLIFParameters":
        """Raise ValueError naming the field if a parameter is physically meaningless; return self."""
        positive = ("area", "t_fe", "t_int", "eps_fe", "eps_int", "e_a", "p_s", "tau0", "alpha", "v_t")
        for name in positive:
            value = torch.as_tensor(getattr(self, name))
            if not bool(torch.all(value > 0)):
                raise ValueError(f"FeLIF parameter {name} must be > 0, got {getattr(self, name)!r}")
        for name in ("c_par", "i_dsc", "i0"):
            if not bool(torch.all(torch.as_tensor(getattr(self, name)) >= 0)):
                raise ValueError(f"FeLIF parameter {name} must be >= 0, got {getattr(self, name)!r}")
        order = (("v_min", "v_reset"), ("v_reset", "v_thr"), ("v_thr", "v_max"))
        for low, high in order:
            if not bool(torch.all(torch.as_tensor(getattr(self, low)) < torch.as_tensor(getattr(self, high)))):
                raise ValueError(f"FeLIF parameters need v_min < v_reset < v_thr < v_max (V), got {low} = "
                                 f"{getattr(self, low)!r} and {high} = {getattr(self, high)!r}")
        return self

    # Derived quantities of the series stack (REFERENCE.md: c_div = 9.0498e7 1/m, d_div = 4.2587e8 V m/C,
    # C_tot = 572.81 fF at the defaults).
    @property
    def c_div(self) -> Scalar:
        """Field in the ferroelectric per volt on the stack, 1/m."""
        return self.eps_int / (self.t_fe * self.eps_int + self.t_int * self.eps_fe)

    @property
    def d_div(self) -> Scalar:
        """Depolarising field per unit polarisation, V m/C."""
        return self.t_int / (EPS0 * (self.t_fe * self.eps_int + self.t_int * self.eps_fe))

    @property
    def c_tot(self) -> Scalar:
        """Total linear capacitance of the membrane node (FeCap dielectric part + parasitic), F."""
        return EPS0 * self.eps_fe * self.area / self.t_fe + self.c_par


class FeLIFState(NamedTuple):
    """Neuron state."""

    v: torch.Tensor
    """Membrane voltage, V."""
    p: torch.Tensor
    """FeCap polarisation, C/m^2."""


def field(v: Scalar, p: Scalar, params: FeLIFParameters) -> Scalar:
    """Electric field in the ferroelectric layer, V/m."""
    return params.c_div * v - params.d_div * p


def switching_rate(e: torch.Tensor, params: FeLIFParameters) -> torch.Tensor:
    """Nucleation-limited switching rate r(E) = exp(-(E_a/(|E| + E_guard))^alpha) / tau0, 1/s."""
    x = (params.e_a / (e.abs() + params.e_guard)) ** params.alpha
    return torch.exp(-x) / params.tau0


def switching_rate_derivative(e: torch.Tensor, params: FeLIFParameters) -> torch.Tensor:
    """Exact dr/dE = alpha * x * exp(-x) * sign(E) / (tau0 * (|E| + E_guard)), 1/(s V/m)."""
    abs_e = e.abs() + params.e_guard
    x = (params.e_a / abs_e) ** params.alpha
    return params.alpha * x * torch.exp(-x) * torch.sign(e) / (params.tau0 * abs_e)


def polarisation_rate(
    v: torch.Tensor, p: torch.Tensor, params: FeLIFParameters, detach_rate: bool = False,
    max_rate: float | None = None, grad_max_rate: float | None = None,
) -> torch.Tensor:
    """dP/dt = (sign(E) P_s - P) r(E), C/(m^2 s); detach_rate stops the gradient through r (paper-era BRUNO);
    max_rate (1/s) caps r (BRUNO's coarse step: an Euler step of dt with r > 1/dt would overshoot);
    grad_max_rate (1/s) caps r in the gradient only, the value keeps the uncapped r (fine-step BPTT)."""
    e = field(v, p, params)
    r = switching_rate(e, params)
    r = r.detach() if detach_rate else r
    r = r if max_rate is None else torch.clamp(r, max=max_rate)
    span = torch.sign(e) * params.p_s - p
    if grad_max_rate is None:
        return span * r
    capped = span * torch.clamp(r, max=grad_max_rate)
    return (span * r).detach() + (capped - capped.detach())  # exactly the uncapped value: x + 0


def leakage_current(v: torch.Tensor, params: FeLIFParameters) -> torch.Tensor:
    """I_leak = (I0 A (exp(V/V_t) - 1) + I_dsc) sign(V), A."""
    return (params.i0 * params.area * (torch.exp(v / params.v_t) - 1.0) + params.i_dsc) * torch.sign(v)


def derivatives(
    v: torch.Tensor, p: torch.Tensor, i_in: torch.Tensor, params: FeLIFParameters, detach_rate: bool = False,
    max_rate: float | None = None, grad_max_rate: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(dV/dt in V/s, dP/dt in C/(m^2 s)) for input current i_in (A); the rate options of `polarisation_rate`."""
    dp = polarisation_rate(v, p, params, detach_rate, max_rate, grad_max_rate)
    dv = (i_in - leakage_current(v, params) - params.area * dp) / params.c_tot
    return dv, dp


def euler_step(
    state: FeLIFState, i_in: torch.Tensor, params: FeLIFParameters, dt: float, detach_rate: bool = False,
    max_rate: float | None = None, grad_max_rate: float | None = None,
) -> FeLIFState:
    """One explicit Euler step of size dt (s), with V clipped to [v_min, v_max] and P to [-P_s, P_s]; the rate
    options of `polarisation_rate`."""
    dv, dp = derivatives(state.v, state.p, i_in, params, detach_rate, max_rate, grad_max_rate)
    v = clip_voltage(state.v + dt * dv, params)
    p_s = _as_tensor_like(params.p_s, state.p)
    p = torch.minimum(torch.maximum(state.p + dt * dp, -p_s), p_s)
    return FeLIFState(v, p)


def clip_voltage(v: torch.Tensor, params: FeLIFParameters) -> torch.Tensor:
    """V clipped to [v_min, v_max], V: the limits the neuron circuit's input protection holds the membrane to."""
    return torch.clamp(v, min=_as_tensor_like(params.v_min, v), max=_as_tensor_like(params.v_max, v))


def reset_state(state: FeLIFState, spiked: torch.Tensor, params: FeLIFParameters) -> FeLIFState:
    """Where spiked (bool or 0/1), V <- V_reset and P <- -P_s (negative saturation)."""
    mask = spiked.to(torch.bool)
    v = torch.where(mask, _as_tensor_like(params.v_reset, state.v), state.v)
    p = torch.where(mask, _as_tensor_like(-params.p_s, state.p), state.p)
    return FeLIFState(v, p)


def initial_state(shape: tuple[int, ...], params: FeLIFParameters, dtype: torch.dtype = torch.float32,
                  device: torch.device | str | None = None) -> FeLIFState:
    """The rest state of REFERENCE.md: V = 0 V, P = -P_s."""
    v = torch.zeros(shape, dtype=dtype, device=device)
    return FeLIFState(v, torch.zeros_like(v) - torch.as_tensor(params.p_s, dtype=dtype, device=device))


def _as_tensor_like(value: Scalar, ref: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(value, dtype=ref.dtype, device=ref.device)
