"""The FeCap compact model: REFERENCE.md section 1 as a circuit element, for ngspice and for VACASK.

A metal/ferroelectric/interlayer/metal capacitor between terminals t (top) and b (bottom). Its terminal current
is the displacement current of the ferroelectric's dielectric part, the polarisation current and the leakage:

    I(t, b) = C_fe dV/dt + A dP/dt + I0 A (exp(V/V_t) - 1) sign(V),       C_fe = eps0 eps_fe A / t_fe
    E       = c_div V - d_div P                                            (series stack, REFERENCE.md)
    P       = P_s (p_1 + ... + p_N) / N
    dp_i/dt = (sign(E) - p_i) exp(-(k_i E_a / (|E| + E_guard))^alpha) / tau0

Each of the N domains (grains) keeps its normalised polarisation p_i = P_i/P_s in [-1, 1] on an internal node
(a capacitor of the domain's switchable charge A P_s/N: its current is the domain's polarisation current in
amperes, so the simulators' current tolerances apply to it) and switches with its own activation field k_i E_a;
all domains see the same field (in ngspice held on a node u = E/E_a, which keeps each source's derivative small).
With N = 1 and k_1 = 1 this is exactly the reference model. In an operating point (DC, and the one a transient
starts from) each p_i is held at the parameter p0 (default -1: negative saturation), since the polarisation is a
state, not a function of the bias.

Multi-domain default (the device the rest of the pipeline uses): N = 8 domains whose activation fields are
log-normally spread around E_a with log-width sigma_Ea = DEFAULT_SIGMA_EA = 0.19, placed at the N quantile
midpoints (k_i = exp(sigma_Ea z_i), z_i = Phi^-1((i - 1/2)/N)), so the median stays E_a. Source of the width:
the grain-to-grain distribution of Merz/NLS activation fields extracted from polarisation-reversal data of
10 nm Hf0.5Zr0.5O2 capacitors with the Monte-Carlo nucleation-limited-switching model of C. Alessandri,
P. Pandey, A. Abusleme, A. Seabaugh, "Monte Carlo simulation of switching dynamics in polycrystalline
ferroelectric capacitors", IEEE Trans. Electron Devices 66(8), 3527-3534 (2019), doi:10.1109/TED.2019.2922268:
a generalised beta-prime distribution GB2(a = 6.76, b = 1.67 MV/cm, p = 2.10, q = 1.36) (values of the
literature-data fit in the open implementation of S. Deng et al., VLSI Technology 2020,
github.com/boltma/Scalable-FeFET, matlab/MFM/MFM_constant_field.m), whose standard deviation of ln(E_a) is
sqrt(psi1(p) + psi1(q))/a = 0.19. The same code's fit to the authors' own HZO capacitors is wider (0.37); the
narrower published value is the default, not tuned to anything downstream. Only the relative width is carried
over: that fit uses its own Merz exponent (4.2) and median field, our E_a and alpha stay REFERENCE.md's.

Files: `models/fecap_nd{N}.va` (Verilog-A, module `fecap_nd{N}`) and `netlists/fecap_nd{N}.lib` (ngspice
subcircuit `fecap_nd{N}`, behavioural B-sources) are generated, for N in SHIPPED_DOMAIN_COUNTS, from the one
set of equation strings below (`python -m cosim.devices.fecap` rewrites them; a test checks they are current).
Both take the same parameters, named as the `FeLIFParameters` fields, plus ea_k1..ea_kN and p0.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Literal, Sequence

import numpy as np
import torch

from cosim.devices.card import CardError, DeviceCard, load_card
from cosim.felif.physics import EPS0, FeLIFParameters
from cosim.felif.variability import VARIED_FIELDS, VariabilityConfig
from cosim.spice import Circuit, SimJob, SimResult, Tran
from cosim.spice.elements import Pwl, SubcircuitInstance, VerilogAInstance, VoltageSource

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "models"
"""Verilog-A models."""
NETLISTS_DIR = REPO_ROOT / "netlists"
"""ngspice (and VACASK) subcircuits."""

Simulator = Literal["ngspice", "vacask"]

DEFAULT_N_DOMAINS = 8
"""Domains of the default device."""
SHIPPED_DOMAIN_COUNTS = (1, 8)
"""Domain counts whose model files are in the repository (OpenVAF has no arrays: one file per count)."""
DEFAULT_SIGMA_EA = 0.19
"""Log-normal width (standard deviation of ln E_a) of the domains' activation fields (source: module docstring)."""

MODEL_FIELDS = ("area", "t_fe", "t_int", "eps_fe", "eps_int", "e_a", "p_s", "tau0", "alpha", "i0", "v_t", "e_guard")
"""`FeLIFParameters` fields that are FeCap model parameters (same names, same SI units, in the netlists)."""

HOLD_RATE = 1e9
"""Relaxation rate, 1/s, that holds each domain node at p0 in operating points (an offset of ~1e-9 of the
switching rate there); switched off in transients."""


@dataclass(frozen=True)
class FeCapParameters:
    """One FeCap device: the physics (REFERENCE.md section 1) plus the multi-domain description."""

    physics: FeLIFParameters = field(default_factory=FeLIFParameters)
    """The equations' parameters; the FeCap uses the MODEL_FIELDS (area, thicknesses, permittivities, E_a, P_s,
    tau0, alpha, I0, V_t, E_guard), the neuron fields (c_par, i_dsc, v_thr, v_reset) belong to the FeLIF circuit."""
    n_domains: int = DEFAULT_N_DOMAINS
    """Number of domains N (a model variant per count: see SHIPPED_DOMAIN_COUNTS)."""
    sigma_ea: float = DEFAULT_SIGMA_EA
    """Log-normal width of the domains' activation fields (std of ln(k_i)); 0 makes all domains equal."""
    ea_factors: tuple[float, ...] | None = None
    """Explicit per-domain activation-field multipliers k_i (dimensionless, N of them); None: the log-normal
    quantile midpoints of width sigma_ea."""
    p0: float = -1.0
    """Normalised polarisation P/P_s of every domain in operating points and at the start of a transient."""

    @classmethod
    def reference(cls, physics: FeLIFParameters | None = None) -> "FeCapParameters":
        """The single-domain reference model of REFERENCE.md (N = 1, k_1 = 1)."""
        return cls(physics=physics or FeLIFParameters(), n_domains=1, sigma_ea=0.0)

    def replace(self, **changes) -> "FeCapParameters":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def validate(self) -> "FeCapParameters":
        """Raise ValueError naming the parameter if the device is meaningless or not a netlist value; return self."""
        for name in MODEL_FIELDS:
            value = getattr(self.physics, name)
            if isinstance(value, torch.Tensor) and value.numel() != 1:
                raise ValueError(f"FeCap parameter {name} must be one number per device, got a tensor of shape "
                                 f"{tuple(value.shape)}; split per-neuron parameters with `sample_devices`")
        try:
            self.physics.validate()
        except ValueError as error:
            raise ValueError(f"FeCap: {error}") from None
        if self.physics.e_guard <= 0:
            raise ValueError(f"FeCap parameter e_guard must be > 0 (it avoids 0/0), got {self.physics.e_guard!r}")
        if not isinstance(self.n_domains, int) or self.n_domains < 1:
            raise ValueError(f"FeCap n_domains must be an integer >= 1, got {self.n_domains!r}")
        if not self.sigma_ea >= 0:
            raise ValueError(f"FeCap sigma_ea (log-normal width) must be >= 0, got {self.sigma_ea!r}")
        if not -1.0 <= self.p0 <= 1.0:
            raise ValueError(f"FeCap p0 (normalised polarisation) must lie in [-1, 1], got {self.p0!r}")
        if self.ea_factors is not None:
            if len(self.ea_factors) != self.n_domains:
                raise ValueError(f"FeCap ea_factors has {len(self.ea_factors)} entries for {self.n_domains} domains")
            if not all(k > 0 for k in self.ea_factors):
                raise ValueError(f"FeCap ea_factors must all be > 0, got {self.ea_factors}")
        return self

    def domain_factors(self) -> tuple[float, ...]:
        """Activation-field multipliers k_1..k_N of the domains (dimensionless)."""
        if self.ea_factors is not None:
            return tuple(float(k) for k in self.ea_factors)
        return lognormal_quantiles(self.n_domains, self.sigma_ea)

    @property
    def model_name(self) -> str:
        """Verilog-A module and ngspice subcircuit name, "fecap_nd{N}"."""
        return model_name(self.n_domains)

    def model_parameters(self) -> tuple[tuple[str, float], ...]:
        """(name, value) of every model parameter, SI units, as the netlists take them."""
        physics = tuple((name, float(getattr(self.physics, name))) for name in MODEL_FIELDS)
        domains = tuple((f"ea_k{i}", k) for i, k in enumerate(self.domain_factors(), 1))
        return physics + domains + (("p0", float(self.p0)),)


def model_name(n_domains: int) -> str:
    """Name of the N-domain model variant."""
    return f"fecap_nd{n_domains}"


def lognormal_quantiles(n: int, sigma: float) -> tuple[float, ...]:
    """exp(sigma z_i) at the n quantile midpoints z_i = Phi^-1((i - 1/2)/n): a log-normal of median 1."""
    normal = NormalDist()
    return tuple(float(np.exp(sigma * normal.inv_cdf((i + 0.5) / n))) for i in range(n))


def sample_devices(params: FeCapParameters, n: int, sigma: float, seed: int) -> list[FeCapParameters]:
    """n devices with device-to-device variability: A, E_a, P_s, I0, t_fe, t_int each times (1 + sigma N(0, 1)).

    The draw is `cosim.felif.variability.VariabilityConfig(d2d_sigma=sigma, seed=seed)`'s. A trained network draws
    its own instance from torch's global generator after its weights (`model.variability_sigma`); verification
    carries that instance neuron by neuron from the layer's parameters (`FeLIFDevice.circuits`), not from here.
    Each device is validated.
    """
    varied = VariabilityConfig(d2d_sigma=sigma, seed=seed).device_parameters(params.physics, n)
    devices = []
    for i in range(n):
        physics = params.physics.replace(**{name: float(getattr(varied, name)[i]) for name in VARIED_FIELDS})
        device = params.replace(physics=physics)
        try:
            devices.append(device.validate())
        except ValueError as error:
            raise ValueError(f"device {i} of the draw (seed {seed}, sigma {sigma}) is not physical: {error}; "
                             "use a smaller sigma") from None
    return devices


CARD_PARAMETERS = {"area": "m^2", "t_fe": "m", "t_int": "m", "eps_fe": "", "eps_int": "", "e_a": "V/m", "p_s": "C/m^2",
                   "tau0": "s", "alpha": "", "i0": "A/m^2", "v_t": "V", "sigma_ea": ""}
"""Parameters a FeCap device card (`cosim calibrate fecap`) may hold, with their units: the MODEL_FIELDS but the
numerical e_guard, and the domains' spread sigma_ea; the card's ``n_domains`` gives N."""


def fecap_from_card(path: str | Path) -> tuple[FeCapParameters, DeviceCard]:
    """The FeCap of a FeCap device card, validated, and the card as read (what it held, what stayed default).

    What the card holds replaces the default device's value (`FeCapParameters()`); a parameter it does not hold,
    or no ``n_domains``, keeps the default and is listed in `DeviceCard.defaults`. N must be a shipped domain count
    (SHIPPED_DOMAIN_COUNTS). CardError names the file and the field of a card that cannot be used.
    """
    card = load_card(path, "fecap", CARD_PARAMETERS)
    values = dict(card.values)
    default = FeCapParameters()
    sigma = values.pop("sigma_ea", default.sigma_ea)
    n_domains = card.number("n_domains", default.n_domains)
    if n_domains not in SHIPPED_DOMAIN_COUNTS:
        raise CardError(f"device card {card.path}: field 'n_domains' is {n_domains:g}; the FeCap models are shipped "
                        f"for {' and '.join(map(str, SHIPPED_DOMAIN_COUNTS))} domains")
    if "n_domains" not in card.content:
        card = dataclasses.replace(card, defaults=card.defaults + ("n_domains",))
    try:
        device = FeCapParameters(default.physics.replace(**values), n_domains=int(n_domains), sigma_ea=sigma)
        return device.validate(), card
    except ValueError as err:
        raise CardError(f"device card {card.path}: {err}") from None


# ---------------------------------------------------------------------------------------------------------------
# The equations, written once and rendered into both dialects. ngspice B-sources and Verilog-A share the syntax
# used here (V(a,b), exp, pow, abs, c ? a : b, bare parameter names).

C_DIV = "eps_int/(t_fe*eps_int + t_int*eps_fe)"
D_DIV = f"t_int/({EPS0!r}*(t_fe*eps_int + t_int*eps_fe))"
C_FE = f"{EPS0!r}*eps_fe*area/t_fe"
C_DOMAIN_TEMPLATE = "area*p_s/{n}"
V_FE = "V(t,b)"


def _sign(x: str) -> str:
    return f"({x} > 0 ? 1 : ({x} < 0 ? -1 : 0))"


def _mean_p(n: int) -> str:
    return f"({' + '.join(f'V(p{i})' for i in range(1, n + 1))})/{n}"


def _field(n: int) -> str:
    """E/E_a: the field in units of the median activation field (an O(1) node value in ngspice)."""
    return f"(c_div*{V_FE} - d_div*p_s*{_mean_p(n)})/e_a"


def _rate(i: int, u: str) -> str:
    """dp_i/dt, 1/s, with `u` the expression of E/E_a."""
    return f"({_sign(u)} - V(p{i}))*exp(-pow(ea_k{i}/(abs({u}) + e_guard/e_a), alpha))/tau0"


LEAKAGE = f"i0*area*(exp({V_FE}/v_t) - 1)*{_sign(V_FE)}"

_PARAMETER_DOCS = {
    "area": ("m^2", "capacitor area A"),
    "t_fe": ("m", "ferroelectric (HZO) thickness"),
    "t_int": ("m", "dielectric interlayer thickness"),
    "eps_fe": ("", "relative permittivity of the ferroelectric"),
    "eps_int": ("", "relative permittivity of the interlayer"),
    "e_a": ("V/m", "median activation field of nucleation-limited switching"),
    "p_s": ("C/m^2", "saturation polarisation"),
    "tau0": ("s", "switching time at infinite field"),
    "alpha": ("", "exponent of the switching law"),
    "i0": ("A/m^2", "leakage current density prefactor"),
    "v_t": ("V", "leakage voltage scale"),
    "e_guard": ("V/m", "added to |E| only to avoid 0/0"),
    "p0": ("", "normalised polarisation P/P_s of every domain in operating points (transient start)"),
}


def _header(n: int, comment: str) -> str:
    lines = [
        f"{model_name(n)}: FeCap compact model with {n} domain{'s' if n > 1 else ''} (REFERENCE.md section 1).",
        "GENERATED by cosim.devices.fecap (python -m cosim.devices.fecap); edit the generator, not this file.",
        "Ports: t (top electrode), b (bottom electrode). Current into t:",
        "  I = C_fe dV/dt + A P_s d<p>/dt + I0 A (exp(V/V_t) - 1) sign(V),  V = V(t,b), C_fe = eps0 eps_fe A/t_fe",
        "  E = c_div V - d_div P_s <p>,  dp_i/dt = (sign(E) - p_i) exp(-(ea_k_i e_a/(|E| + e_guard))^alpha)/tau0",
        "Internal nodes p1..pN: normalised polarisation P_i/P_s of each domain, <p> their mean; each has a",
        "capacitance A P_s/N, so its current is the domain's polarisation current (A).",
        "(ngspice) u: E/e_a.",
        "Parameters (SI units):",
    ]
    lines += [f"  {name} [{unit or '-'}]: {text}" for name, (unit, text) in _PARAMETER_DOCS.items()]
    lines.append("  ea_k1 [-]: activation-field multiplier (1: the reference model)" if n == 1 else
                 f"  ea_k1..ea_k{n} [-]: activation-field multipliers of the domains (default: log-normal quantile "
                 f"midpoints of width {DEFAULT_SIGMA_EA})")
    return "\n".join(f"{comment} {line}".rstrip() for line in lines)


def default_parameters(n: int) -> list[tuple[str, float]]:
    """(name, default value) of the N-domain model's parameters, as written into the model files."""
    base = FeLIFParameters()
    sigma = DEFAULT_SIGMA_EA if n > 1 else 0.0
    return ([(name, float(getattr(base, name))) for name in MODEL_FIELDS]
            + [(f"ea_k{i}", k) for i, k in enumerate(lognormal_quantiles(n, sigma), 1)] + [("p0", -1.0)])


def render_ngspice(n: int) -> str:
    """The ngspice subcircuit `fecap_nd{n}` (behavioural sources)."""
    C_DOMAIN = C_DOMAIN_TEMPLATE.format(n=n)
    params = " ".join(f"{name}={value!r}" for name, value in default_parameters(n))
    lines = [_header(n, "*"), f".subckt {model_name(n)} t b params: {params}",
             f".param c_div={{{C_DIV}}}", f".param d_div={{{D_DIV}}}",
             f"Cfe t b {{{C_FE}}}",
             f"Bleak t b I={LEAKAGE}",
             # the field on a node: each domain source then depends on two nodes only (small derivative trees)
             f"Bu u 0 V={_field(n)}"]
    for i in range(1, n + 1):
        # the 0 V source senses the domain capacitor's current: the domain's polarisation current
        lines += [f"Cp{i} p{i} s{i} {{{C_DOMAIN}}} ic={{p0}}", f"Vs{i} s{i} 0 0",
                  f"Bp{i} 0 p{i} I={C_DOMAIN}*{_rate(i, 'V(u)')}",
                  f"Bhold{i} p{i} 0 I=(time > 0 ? 0 : {HOLD_RATE!r}*{C_DOMAIN})*(V(p{i}) - p0)"]
    sensed = " + ".join(f"i(Vs{i})" for i in range(1, n + 1))
    lines += [f"Bpol t b I={sensed}", f".ends {model_name(n)}"]
    return "\n".join(lines) + "\n"


def render_verilog_a(n: int) -> str:
    """The Verilog-A module `fecap_nd{n}` (OpenVAF: no arrays, so one module per domain count)."""
    C_DOMAIN = C_DOMAIN_TEMPLATE.format(n=n)
    nodes = ", ".join(f"p{i}" for i in range(1, n + 1))
    lines = [_header(n, "//"), '`include "constants.vams"', '`include "disciplines.vams"', "",
             f"module {model_name(n)}(t, b);", "    inout t, b;", "    electrical t, b;",
             f"    electrical {nodes};"]
    for name, value in default_parameters(n):
        unit, text = _PARAMETER_DOCS.get(name, ("", "activation-field multiplier of a domain"))
        bounds = "from [-1:1]" if name == "p0" else ("from [0:inf)" if name == "i0" else "from (0:inf)")
        lines.append(f'    (* desc="{text}", units="{unit}" *) parameter real {name} = {value!r} {bounds};')
    lines += ["    real c_div, d_div, c_dom, u;", "", "    analog begin",
              f"        c_div = {C_DIV};", f"        d_div = {D_DIV};", f"        c_dom = {C_DOMAIN};",
              f"        u = {_field(n)};"]
    for i in range(1, n + 1):
        lines.append(f"        I(p{i}) <+ c_dom*(ddt(V(p{i})) - {_rate(i, 'u')});")
    lines.append('        if (analysis("static")) begin')
    lines += [f"            I(p{i}) <+ {HOLD_RATE!r}*c_dom*(V(p{i}) - p0);" for i in range(1, n + 1)]
    lines += ["        end", f"        I(t, b) <+ ddt({C_FE}*{V_FE} + area*p_s*{_mean_p(n)}) + {LEAKAGE};",
              "    end", "endmodule"]
    return "\n".join(lines) + "\n"


def model_files(n: int) -> dict[str, Path]:
    """Paths of the N-domain model: {"verilog_a": models/fecap_nd{N}.va, "ngspice": netlists/fecap_nd{N}.lib}."""
    return {"verilog_a": MODELS_DIR / f"{model_name(n)}.va", "ngspice": NETLISTS_DIR / f"{model_name(n)}.lib"}


def write_model_files(counts: Sequence[int] = SHIPPED_DOMAIN_COUNTS) -> list[Path]:
    """(Re)write the model files of each domain count; returns the paths."""
    written = []
    for n in counts:
        paths = model_files(n)
        paths["verilog_a"].write_text(render_verilog_a(n))
        paths["ngspice"].write_text(render_ngspice(n))
        written += paths.values()
    return written


def shipped_files(n: int) -> dict[str, Path]:
    """`model_files(n)`, checked to exist (else ValueError saying how to generate them)."""
    paths = model_files(n)
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise ValueError(f"no FeCap model files for {n} domains ({', '.join(missing)}); generate them with "
                         f"cosim.devices.fecap.write_model_files([{n}])")
    return paths


# ---------------------------------------------------------------------------------------------------------------
# Circuit building blocks and the P-V testbench


def fecap_element(name: str, t: str, b: str, params: FeCapParameters, simulator: Simulator):
    """The device as an element of `simulator`'s circuit: the ngspice subcircuit or the Verilog-A instance."""
    params.validate()
    values = params.model_parameters()
    if simulator == "ngspice":
        return SubcircuitInstance(name, (t, b), params.model_name, values)
    if simulator == "vacask":
        return VerilogAInstance(name, (t, b), params.model_name, values)
    raise ValueError(f"unknown simulator {simulator!r}; use 'ngspice' or 'vacask'")


def fecap_files(params: FeCapParameters, simulator: Simulator) -> dict[str, tuple[str, ...]]:
    """Circuit fields the device needs on `simulator`: {"includes": ...} or {"verilog_a": ...}."""
    paths = shipped_files(params.n_domains)
    if simulator == "ngspice":
        return {"includes": (str(paths["ngspice"]),)}
    return {"verilog_a": (str(paths["verilog_a"]),)}


def domain_vectors(instance_ref: str, n_domains: int) -> tuple[str, ...]:
    """Result vector names of the domain nodes of an instance (e.g. "v(xfe.p1)"), the same on both back ends."""
    return tuple(f"v({instance_ref.lower()}.p{i})" for i in range(1, n_domains + 1))


def polarisation(result: SimResult, instance_ref: str, params: FeCapParameters) -> np.ndarray:
    """Total polarisation P = P_s <p_i> of an instance over the result's axis, C/m^2."""
    nodes = [result[name] for name in domain_vectors(instance_ref, params.n_domains)]
    return float(params.physics.p_s) * np.mean(nodes, axis=0)


def triangle(amplitude: float, frequency: float, periods: int) -> Pwl:
    """0 -> +A -> -A -> 0 triangle, `periods` times: the usual P-V sweep (V, Hz)."""
    period = 1.0 / frequency
    points = [(0.0, 0.0)]
    for k in range(periods):
        points += [(k * period + period / 4, amplitude), (k * period + 3 * period / 4, -amplitude),
                   ((k + 1) * period, 0.0)]
    return Pwl(tuple(points))


PV_POINTS_PER_PERIOD = 2000
"""Output (and largest internal) steps per sweep period of the P-V testbench."""


def pv_loop_job(params: FeCapParameters, amplitude: float, frequency: float, *, periods: int = 2,
                simulator: Simulator = "ngspice", name: str = "") -> SimJob:
    """A triangular voltage sweep of one device from its p0 state: vectors time, v(a), the domain nodes.

    amplitude in V, frequency in Hz. The last period is the steady loop (`loop_figures`).
    """
    params.validate()
    if not amplitude > 0 or not frequency > 0 or periods < 1:
        raise ValueError(f"P-V sweep needs amplitude > 0 V, frequency > 0 Hz and periods >= 1; got "
                         f"{amplitude}, {frequency}, {periods}")
    device = fecap_element("fe", "a", "0", params, simulator)
    circuit = Circuit(netlist="", title=f"FeCap P-V {amplitude:g} V {frequency:g} Hz",
                      elements=(VoltageSource("Vsweep", "a", "0", waveform=triangle(amplitude, frequency, periods)),
                                device),
                      **fecap_files(params, simulator))
    step = 1.0 / (frequency * PV_POINTS_PER_PERIOD)
    return SimJob(circuit, Tran(step=step, stop=periods / frequency, max_step=step, method="gear"),
                  outputs=("v(a)",) + domain_vectors(device.ref, params.n_domains), simulator=simulator,
                  name=name or f"{simulator} pv {amplitude:g}V {frequency:g}Hz")


def pv_loop(job: SimJob, result: SimResult, params: FeCapParameters, frequency: float) -> dict[str, np.ndarray]:
    """The last sweep period of a `pv_loop_job`'s result: {"time" (s), "v" (V), "p" (C/m^2)}."""
    time = result.x
    last = time >= time[-1] - 1.0 / frequency * (1 - 1e-9)
    device = next(e for e in job.circuit.elements if not isinstance(e, VoltageSource))
    p = polarisation(result, device.ref, params)
    return {"time": time[last], "v": result["v(a)"][last], "p": p[last]}


def loop_figures(v: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Coercive voltages (P = 0 on the rising and falling branch, V) and remanent polarisation (|P| at V = 0,
    mean of both branches, C/m^2) of one closed loop traced 0 -> +A -> -A -> 0. NaN where P never crosses 0."""
    top, bottom = int(np.argmax(v)), int(np.argmin(v))
    falling = slice(top, bottom + 1)  # +A -> -A
    rising = np.r_[bottom:len(v), 0:top + 1]  # -A -> 0 (end of period) -> +A (start of period)
    return {
        "coercive_positive_v": _crossing(p[rising], v[rising], rising_through_zero=True),
        "coercive_negative_v": _crossing(p[falling], v[falling], rising_through_zero=False),
        "remanent": 0.5 * (_crossing(v[falling], p[falling], rising_through_zero=False)
                           - _crossing(v[rising], p[rising], rising_through_zero=True)),
    }


def _crossing(x: np.ndarray, y: np.ndarray, rising_through_zero: bool) -> float:
    """y where x first crosses 0 (upwards or downwards), linearly interpolated; NaN if it never does."""
    sign = 1.0 if rising_through_zero else -1.0
    below, above = sign * x[:-1] <= 0, sign * x[1:] > 0
    hits = np.nonzero(below & above)[0]
    if len(hits) == 0:
        return float("nan")
    k = hits[0]
    return float(y[k] + (y[k + 1] - y[k]) * (0 - x[k]) / (x[k + 1] - x[k]))


def nrmse(reference: np.ndarray, other: np.ndarray) -> float:
    """Root-mean-square difference over the reference's peak-to-peak range."""
    return float(np.sqrt(np.mean((np.asarray(other) - np.asarray(reference)) ** 2)) / np.ptp(reference))



# ---------------------------------------------------------------------------------------------------------------
# Characterisation

SWEEP_FREQUENCIES = (1e2, 1e4, 1e6)
"""Sweep frequencies of the characterisation's P-V loops, Hz."""
MAJOR_AMPLITUDE = 4.0
"""Amplitude of the major loops, V (field 3.6e8 V/m: every domain saturates)."""
MINOR_AMPLITUDES = (1.8, 2.5)
"""Amplitudes of the minor (partial-switching) loops, V."""
LOOP_PERIODS = 3
"""Sweep periods per loop; the last one is analysed."""


def _frequency_key(frequency: float) -> str:
    return f"{frequency:.0f}"


def characterize_fecap(out: str | Path, quick: bool = False, device: FeCapParameters | None = None,
                       card: DeviceCard | None = None) -> dict:
    """P-V hysteresis loops of the FeCap `device` (default: the default multi-domain FeCap) at three sweep
    frequencies, major and minor, on ngspice, with the single-domain reference and the Verilog-A model on VACASK
    for comparison. `card`: the device card `device` was built from, recorded in the summary.

    Writes ``pv_loops.npz`` (time, v, p of every analysed period), ``pv_loops.csv`` (loop figures), ``pv_loops.png``
    and ``summary.json`` into `out`; returns the summary: ``coercive_voltage_v`` ({frequency in Hz: {"positive",
    "negative"}}, V) and ``remanent_polarization`` ({frequency: C/m^2}) of the major loops, the same for the minor
    loops and the reference device, and the VACASK-vs-ngspice NRMSE of the major loops. `quick`: one minor loop.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cosim.spice import run_many

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device, reference = (device or FeCapParameters()).validate(), FeCapParameters.reference()
    minors = {f: (MINOR_AMPLITUDES[-1:] if quick and f == 1e4 else () if quick else MINOR_AMPLITUDES)
              for f in SWEEP_FREQUENCIES}
    cases = [("device", "ngspice", MAJOR_AMPLITUDE, f) for f in SWEEP_FREQUENCIES]
    cases += [("device", "vacask", MAJOR_AMPLITUDE, f) for f in SWEEP_FREQUENCIES]
    cases += [("reference", "ngspice", MAJOR_AMPLITUDE, f) for f in SWEEP_FREQUENCIES]
    cases += [("device", "ngspice", a, f) for f in SWEEP_FREQUENCIES for a in minors[f]]
    jobs = [pv_loop_job(device if which == "device" else reference, a, f, periods=LOOP_PERIODS, simulator=sim,
                        name=f"{which} {sim} {a:g} V {f:g} Hz") for which, sim, a, f in cases]
    results = run_many(jobs, progress=True, raise_errors=True)
    loops, figures, arrays = {}, [], {}
    for (which, sim, a, f), job, result in zip(cases, jobs, results):
        loop = pv_loop(job, result, device if which == "device" else reference, f)
        loops[which, sim, a, f] = loop
        key = f"{which}_{sim}_{a:g}V_{f:g}Hz"
        arrays.update({f"{key}_{name}": values for name, values in loop.items()})
        figures.append({"device": which, "simulator": sim, "amplitude_v": a, "frequency_hz": f,
                        **loop_figures(loop["v"], loop["p"])})
    np.savez_compressed(out / "pv_loops.npz", **arrays)
    columns = list(figures[0])
    (out / "pv_loops.csv").write_text("\n".join([",".join(columns)] + [",".join(str(row[c]) for c in columns)
                                                                        for row in figures]) + "\n")

    def summary_of(which: str, amplitude: float) -> tuple[dict, dict]:
        rows = [r for r in figures if r["device"] == which and r["simulator"] == "ngspice"
                and r["amplitude_v"] == amplitude]
        coercive = {_frequency_key(r['frequency_hz']): {"positive": r["coercive_positive_v"],
                                                "negative": r["coercive_negative_v"]} for r in rows}
        return coercive, {_frequency_key(r['frequency_hz']): r["remanent"] for r in rows}

    coercive, remanent = summary_of("device", MAJOR_AMPLITUDE)
    ref_coercive, ref_remanent = summary_of("reference", MAJOR_AMPLITUDE)
    minor = {f"{a:g}": dict(zip(("coercive_voltage_v", "remanent_polarization"), summary_of("device", a)))
             for a in sorted({a for amplitudes in minors.values() for a in amplitudes})}
    agreement = {}
    for f in SWEEP_FREQUENCIES:
        ng, va = loops["device", "ngspice", MAJOR_AMPLITUDE, f], loops["device", "vacask", MAJOR_AMPLITUDE, f]
        agreement[_frequency_key(f)] = nrmse(ng["p"], np.interp(ng["time"], va["time"], va["p"]))

    fig, axes = plt.subplots(1, len(SWEEP_FREQUENCIES), figsize=(4.2 * len(SWEEP_FREQUENCIES), 4), sharey=True)
    for ax, f in zip(axes, SWEEP_FREQUENCIES):
        for (which, sim, a, freq), loop in loops.items():
            if freq != f or sim == "vacask":
                continue
            style = dict(color="0.55", ls="--", label="single domain (reference), 4 V") if which == "reference" \
                else dict(label=f"{device.n_domains} domains, {a:g} V")
            ax.plot(loop["v"], loop["p"] * 100, **style)
        va = loops["device", "vacask", MAJOR_AMPLITUDE, f]
        ax.plot(va["v"], va["p"] * 100, ":", color="k", lw=1, label="Verilog-A on VACASK, 4 V")
        ax.set(title=f"{f:g} Hz: Vc = {coercive[_frequency_key(f)]['positive']:.2f} V", xlabel="V (V)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("P (uC/cm^2)")
    axes[-1].legend(fontsize=7, loc="lower right")
    fig.suptitle("FeCap P-V loops (triangular sweeps, last of 3 periods)")
    fig.tight_layout()
    fig.savefig(out / "pv_loops.png", dpi=120)
    plt.close(fig)

    summary = {
        "coercive_voltage_v": coercive, "remanent_polarization": remanent, "frequency_unit": "Hz",
        "polarization_unit": "C/m^2", "major_amplitude_v": MAJOR_AMPLITUDE, "minor_loops": minor,
        "reference_single_domain": {"coercive_voltage_v": ref_coercive, "remanent_polarization": ref_remanent},
        "vacask_vs_ngspice_nrmse": agreement,
        "device": {"n_domains": device.n_domains, "sigma_ea": device.sigma_ea,
                   "parameters": dict(device.model_parameters()),
                   "device_card": card.to_dict() if card is not None else None},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary

if __name__ == "__main__":
    print(json.dumps([str(p) for p in write_model_files()], indent=1))
