"""JART VCM v1b: a filamentary valence-change (VCM) RRAM compact model written elsewhere, ported to cosim.

Source and licence
------------------
The equations are those of the JART VCM v1b model (Juelich Aachen Resistive switching Tools) of

  [1] C. Bengel, A. Siemon, F. Cueppers, S. Hoffmann-Eifert, A. Hardtdegen, M. von Witzleben, L. Hellmich,
      R. Waser, S. Menzel, "Variability-aware modeling of filamentary oxide-based bipolar resistive switching
      cells using SPICE level compact models", IEEE Trans. Circuits Syst. I 67(12), 4618-4630 (2020),
      doi:10.1109/TCSI.2020.3018502 (equations 1-19; its nomenclature);
  [2] F. Cueppers, S. Menzel, C. Bengel et al., "Exploiting the switching dynamics of HfO2-based ReRAM devices
      for reliable analog memristive behavior", APL Materials 7, 091105 (2019), doi:10.1063/1.5108654,

as released by the JART group in Verilog-A (``JART_VCM_1b_det`` / ``JART_VCM_1b_VAR``, "last updated
15.02.2021"; jart@iwe.rwth-aachen.de), whose default parameter set (a Pt/HfO2/TiOx/Ti cell) is the default here.
That release carries no licence, only the request to cite [1] ("The simulations were performed using the JART VCM
v1 model [1]"): it grants no right to redistribute its text, so nothing of it is copied here. This module is our
own implementation of the published equations, generated from the equation strings below; cite [1] when you use
it. The released code was read to check equation numbers, signs and parameter values.

Model
-----
A Schottky contact at the active electrode (AE) in series with the filament: a "disc" of length l_disc next to
the AE whose oxygen-vacancy concentration N is the state, a "plug" of fixed concentration n_plug, the TiOx series
resistance and the electrode lines. With V the cell voltage, V_s the Schottky voltage and I the current:

  disc, plug      R_disc = l_disc/(z e mu_n N A),  R_plug = (l_cell - l_disc)/(z e mu_n n_plug A),  A = pi r_fil^2
  series (Eq. 12) R_series = r_tiox + r0 (1 + r0 alpha_line I^2 rth_line)   (line heating; solved for I in closed
                  form: the chain's V = (R_disc + R_plug + r_tiox + r0) I + r0^2 alpha_line rth_line I^3 is a cubic)
  temperature     T = t0 + rth |P|, P = (V_s + I (R_disc + R_plug)) I,  rth = rth0 (r_det/r_fil)^2, times
                  rth_reset_scale in RESET (Eqs. 5, 6)
  Schottky        barrier phi_bn = phi_bn0 - (e^3 z N psi/(8 pi^2 eps_phib^3))^(1/4), psi = phi_bn0 - phi_n + V_s
                  (image-force lowering, Eq. 19); thermionic-field emission in SET (Eqs. 14, 16-18), thermionic
                  emission in RESET (Eq. 15)
  ion motion      dN/dt = c_vo a_hop nu0 / l_disc (exp(-dW_min/kT) - exp(-dW_max/kT)) F_lim,
                  c_vo = (n_plug + N)/2 (Eqs. 1-3); dW_min/max = dwa (sqrt(1 - g^2) -/+ g pi/2 + g asin g),
                  g = z a_hop E/(pi dwa) (Eqs. 7-9); E = I R_disc/l_disc in SET, (V_s + I (R_disc + R_plug))/l_cell
                  in RESET (Eqs. 10, 11); F_lim = 1 - (N/n_disc_max)^10 in SET, 1 - (n_disc_min/N)^10 in RESET (Eq. 4)

Polarity: ``te`` is the ohmic electrode (OE, Ti/TiOx side), ``be`` the active electrode (AE, the Pt Schottky
contact). The release sets at V(AE, OE) < 0, so here SET is at V(te, be) > 0 and RESET at V(te, be) < 0, as for
cosim's gap model (`cosim.devices.rram`); every sign above is in this convention.

What differs from the release, and why
--------------------------------------
- State on an internal node: ``x = ln(N / 1e26 m^-3)``, integrated with ``idt`` (Verilog-A) or a capacitor
  (ngspice). The release integrates N in a variable and keeps the disc bounds with ``if`` clamps and a flag that
  stops the integration; OpenVAF keeps no variable between evaluations (issue 12). The logarithm keeps N > 0 in
  every Newton iterate (R_disc, W00 and the barrier lowering need N > 0) and spans the 3.4 decades of N evenly.
- Bounds of N: only through F_lim, which is 0 at n_disc_max (SET) or n_disc_min (RESET) and negative beyond, so
  the state returns smoothly to the bound; the release's hard clamp, which stalls Newton, is left out.
- A thermal time constant tau_th (100 ps): T relaxes to t0 + rth |P| as dT/dt = (t0 + rth |P| - T)/tau_th on
  the internal node ``tk``, where the release takes that steady state at once. SET and RESET are thermal
  runaways; with T algebraic, an implicit time step through one has a second, spurious solution (the cell
  already switched), which ngspice's Newton finds or from which it does not recover (it restarts a rejected step
  from the last iterate). With T on a node its truncation error stops such steps. 100 ps is a choice, not a
  fit: far below the nanosecond pulses and microsecond sweeps of cosim, it moves the state after a 1T1R SET by
  < 1e-3 in ln N against 1 ps on VACASK (tests/devices/test_jart_vcm.py). Much shorter constants bring the
  problem back on ngspice (1 ps: a 1T1R SET ends in the wrong state).
- Newton safety, not physics (identical in operation): psi >= 0 and phi_bn >= 0 are smooth clips of width
  v_smooth (1 mV) instead of the release's ``if`` branches; the Schottky exponentials continue linearly above
  exp(20) (limexp; their arguments stay below 1 in the I-V loop and the 1T1R SETs); g is limited softly below 1
  (g/(1 + (g/0.999)^8)^(1/8): < 1e-5 change for |g| < 0.3, 0.05 % at 0.5, where the release's sqrt(1 - g^2) and
  asin(g) fail for iterates beyond 1); N in the equations is clipped smoothly two e-folds beyond its bounds.
- Left out: the variability extension of [1] (Eqs. 20-24: r_fil and l_disc drifting between cycles, kept in
  variables), and ``$bound_step``. Device-to-device variability enters as instance parameters (r_fil, l_disc,
  n_disc_min, n_disc_max, ...), sampled in Python, as for cosim's other devices.
- Constants: CODATA 2018 values instead of the release's 4-digit ones; t0 (ambient, 293 K) is a parameter.

Files
-----
`models/jart_vcm.va` (module ``jart_vcm``, VACASK) and `netlists/jart_vcm.lib` (ngspice subcircuits ``jart_vcm``
and the fixed-state read model ``jart_vcm_read``) are generated from the equation strings of this module
(``python -m cosim.devices.jart_vcm`` rewrites them; a test checks that they are current), and the numpy read law
(`read_current`) evaluates the same strings, so the three cannot drift apart. The full model holds its state at
n_ini in every DC analysis, .dc sweeps included (ngspice: a source that is 0 V in DC analyses and 1 V from 1 ps
into a transient switches the state equation; ngspice's `time` is the swept value in a .dc sweep).

Synapse device
--------------
`JARTDevice`, registered as "jart_vcm" (`cosim.devices.plugins`): 8 target levels 30 .. 240 uS at v_read = 0.2 V
(`LEVELS`), programmed by write-verify of a 1T1R cell (`cosim.devices.write_verify`, `write_verify_config`):
20 ns SET pulses on the bit line with the select transistor's gate from a per-level table and 5 mV higher per
further SET pulse, RESET pulses on the source line from 0.95 V, 20 mV higher per further pulse. A SET of this
model ends where the transistor's saturation current stops it (1.2 .. 2 V on the bit line give the same state
within a few %): the gate voltage, not the pulse, selects the level. The gate table is the controller's
calibration (`gate_curve`: the nominal device SET once at each gate voltage; each level starts at the gate that
SETs it to its band's lower edge). Device-to-device spread (`JartVcmVariability`): r_fil and l_disc 3 %,
n_disc_min 10 %, rth0 5 %, dwa 1 %; cycle-to-cycle: a log-normal factor (sigma 1) on nu0 for each pulse. A verify
read's current at the device's voltage becomes the chord conductance at v_read through the device's own read law
(`verified_conductance`); crossbar reads use `jart_vcm_read` at the state of the programmed conductance
(`JARTDevice.read_card`; ~100x the cost of a linear read in ngspice, so the linear read model is the default).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Literal, Sequence

import numpy as np

from cosim.devices.plugins import register_synapse
from cosim.devices.write_verify import (
    LevelMapping,
    ProgrammableCell,
    ProgrammedLevels,
    WriteVerifyConfig,
    check_spreads,
    plot_iv_loops,
    plot_programming,
    program_population,
    pyplot,
    relative_spread,
    round_job,
)
from cosim.spice import Circuit, SimJob, SimResult, Tran, run_many
from cosim.spice.elements import Pwl, Resistor, SubcircuitInstance, VerilogAInstance, VoltageSource

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_VA = REPO_ROOT / "models" / "jart_vcm.va"
"""Verilog-A source of the model (module `jart_vcm`), generated."""
NETLIST_LIB = REPO_ROOT / "netlists" / "jart_vcm.lib"
"""ngspice subcircuits `jart_vcm` (full model) and `jart_vcm_read` (fixed state), generated."""
MODEL_NAME = "jart_vcm"
"""Verilog-A module and ngspice subcircuit name."""
READ_MODEL_NAME = "jart_vcm_read"
"""ngspice subcircuit of the read law at a fixed state (parameter ``n``, m^-3)."""

Simulator = Literal["ngspice", "vacask"]

# Physical constants (CODATA 2018) and the release's material constants.
Q_E = 1.602176634e-19
"""Elementary charge, C."""
K_B = 1.380649e-23
"""Boltzmann constant, J/K."""
H_PLANCK = 6.62607015e-34
"""Planck constant, J s."""
EPS0 = 8.8541878128e-12
"""Vacuum permittivity, F/m."""
M_E = 9.1093837015e-31
"""Electron rest mass, kg (the release's effective mass in the oxide)."""
A_RICHARDSON = 6.01e5
"""Richardson constant of the release, A/(m^2 K^2)."""
Z_VO = 2
"""Charge number of an oxygen vacancy."""
N_UNIT = 1e26
"""Concentration unit of the state node: x = ln(N / N_UNIT), m^-3."""
LNN_MARGIN = 2.0
"""How far beyond the disc bounds (in ln N) the equations clip the state node's Newton iterates."""
LIMEXP_ARG = 20.0
"""Argument above which the Schottky currents' exponentials continue linearly. In operation the arguments stay
below 1 (the I-V loop and the 1T1R SETs); a Newton iterate far off (a volt too much on the contact) would
otherwise give currents of 1e99 A, from which ngspice does not recover."""
G_MAX = 0.999
"""Bound of the soft limit on the hopping parameter g (the release has none)."""


@dataclass(frozen=True)
class JartVcmParameters:
    """Compact-model parameters (SI units, energies in eV; names as in models/jart_vcm.va and
    netlists/jart_vcm.lib). Defaults: the JART VCM v1b release (Pt/HfO2/TiOx/Ti cell, [1] of the module)."""

    t0: float = 293.0
    """Ambient temperature, K."""
    eps_r: float = 17.0
    """Static relative permittivity of the HfO2."""
    eps_phib: float = 5.5
    """Relative permittivity of the HfO2 for the image-force barrier lowering."""
    phi_bn0: float = 0.18
    """Nominal Schottky barrier height, eV."""
    phi_n: float = 0.1
    """Energy between the Fermi level and the conduction band edge in the oxide, eV."""
    mu_n: float = 4e-6
    """Electron mobility in the disc and the plug, m^2/(V s)."""
    n_disc_min: float = 0.008e26
    """Smallest oxygen-vacancy concentration of the disc (high-resistance bound), m^-3."""
    n_disc_max: float = 20e26
    """Largest oxygen-vacancy concentration of the disc (low-resistance bound), m^-3."""
    n_ini: float = 0.008e26
    """Disc concentration at t = 0 and in DC analyses, m^-3."""
    n_plug: float = 20e26
    """Oxygen-vacancy concentration of the plug, m^-3."""
    a_hop: float = 0.25e-9
    """Ion hopping distance, m."""
    nu0: float = 2e13
    """Attempt frequency of ion hopping, Hz."""
    dwa: float = 1.35
    """Activation energy of ion hopping, eV."""
    rth0: float = 15.72e6
    """Thermal resistance of the filament at radius r_det, K/W."""
    r_det: float = 45e-9
    """Filament radius at which rth0 holds, m."""
    r_fil: float = 45e-9
    """Filament radius, m."""
    l_cell: float = 3e-9
    """Length of disc plus plug, m."""
    l_disc: float = 0.4e-9
    """Length of the disc, m."""
    rth_reset_scale: float = 0.27
    """Factor on the thermal resistance in RESET."""
    r_tiox: float = 650.0
    """Series resistance of the TiOx layer, ohm."""
    r0: float = 719.2437
    """Line (electrode) resistance at t0, ohm."""
    rth_line: float = 90471.47
    """Thermal resistance of the lines, K/W."""
    alpha_line: float = 3.92e-3
    """Temperature coefficient of the line resistance, 1/K."""
    tau_th: float = 1e-10
    """Thermal time constant of the filament (not in the release, which has 0), s."""
    v_smooth: float = 1e-3
    """Width of the smooth clips psi >= 0 and phi_bn >= 0 (not in the release), V."""

    def validate(self) -> "JartVcmParameters":
        """Raise ValueError naming the parameter if the device is meaningless; return self."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"JART VCM parameter {f.name} must be a finite number > 0, got {value!r}")
        if not self.n_disc_min < self.n_disc_max:
            raise ValueError(f"JART VCM parameters: need n_disc_min < n_disc_max, got {self.n_disc_min:g} m^-3 >= "
                             f"{self.n_disc_max:g} m^-3")
        if not self.n_disc_min <= self.n_ini <= self.n_disc_max:
            raise ValueError(f"JART VCM parameter n_ini = {self.n_ini:g} m^-3 is outside [n_disc_min, n_disc_max] = "
                             f"[{self.n_disc_min:g}, {self.n_disc_max:g}] m^-3")
        if not self.l_disc < self.l_cell:
            raise ValueError(f"JART VCM parameters: the disc (l_disc = {self.l_disc:g} m) must be shorter than the "
                             f"cell (l_cell = {self.l_cell:g} m)")
        if not self.phi_n < self.phi_bn0:
            raise ValueError(f"JART VCM parameters: need phi_n < phi_bn0, got {self.phi_n} eV >= {self.phi_bn0} eV")
        return self

    def replace(self, **changes: float) -> "JartVcmParameters":
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes).validate()

    def spice_params(self) -> tuple[tuple[str, float], ...]:
        """(name, value) pairs for the instance, SI units."""
        return tuple((f.name, float(getattr(self, f.name))) for f in dataclasses.fields(self))


PARAMETER_UNITS = {
    "t0": "K", "eps_r": "", "eps_phib": "", "phi_bn0": "eV", "phi_n": "eV", "mu_n": "m^2/Vs", "n_disc_min": "m^-3",
    "n_disc_max": "m^-3", "n_ini": "m^-3", "n_plug": "m^-3", "a_hop": "m", "nu0": "Hz", "dwa": "eV", "rth0": "K/W",
    "r_det": "m", "r_fil": "m", "l_cell": "m", "l_disc": "m", "rth_reset_scale": "", "r_tiox": "ohm", "r0": "ohm",
    "rth_line": "K/W", "alpha_line": "1/K", "tau_th": "s", "v_smooth": "V",
}
"""Unit of each parameter, written into the generated model files."""

READ_FIELDS = tuple(name for name in PARAMETER_UNITS if name not in ("n_ini", "tau_th"))
"""Parameters of the fixed-state read model, besides its state ``n`` (m^-3)."""

# ---------------------------------------------------------------------------------------------------------------
# The equations, written once. Each is (name, expression); an expression uses the parameters, the names defined
# before it, the voltages v = V(te,be), vs = V(s,be) (Schottky), vr = V(te,s) (disc, plug and series) and the
# state: lnn = V(x), n26 = N / 1e26 m^-3; and only functions that Verilog-A, ngspice B-sources and numpy
# (`_NUMPY`) all have. Energies are in eV and kT in volts (vt), so every quantity that depends on the unknowns
# is of moderate size: ngspice adds gmin*1e-20 to every divisor of a B-source, and a divisor such as kT in joules
# (4e-21, squared 2e-41 in a derivative) would make its Jacobian vanish.

_PI = repr(math.pi)


def _select(numpy: bool) -> Callable[[str, str, str], str]:
    """`cond ? a : b` in SPICE and Verilog-A, `where(cond, a, b)` in numpy."""
    if numpy:
        return lambda cond, a, b: f"where({cond}, {a}, {b})"
    return lambda cond, a, b: f"({cond} ? {a} : {b})"


def _smooth_positive(y: str, width: str = "v_smooth") -> str:
    """max(y, 0) with a rounded corner of `width` (error width^2/(4|y|) away from 0)."""
    return f"0.5*(({y}) + sqrt(({y})*({y}) + {width}*{width}))"


def _limexp(arg: str, sel: Callable[[str, str, str], str]) -> str:
    """exp(arg), continued linearly above LIMEXP_ARG (as SPICE's limexp)."""
    return sel(f"{arg} < {LIMEXP_ARG!r}", f"exp({arg})", f"{math.exp(LIMEXP_ARG)!r}*(1 + {arg} - {LIMEXP_ARG!r})")


def _constants() -> list[tuple[str, str]]:
    """Quantities of the parameters only (ngspice .param; Verilog-A and numpy: variables)."""
    conduction = f"{Z_VO * Q_E!r}*mu_n*{_PI}*r_fil*r_fil"  # z e mu_n A, S m^2 per (m^-3 m)
    return [
        ("rdisc_k", f"l_disc/({conduction}*{N_UNIT!r})"),  # R_disc at N = 1e26 m^-3, ohm
        ("rplug", f"(l_cell - l_disc)/({conduction}*n_plug)"),
        ("kline", "r0*r0*alpha_line*rth_line"),
        ("rth_set", "rth0*(r_det/r_fil)*(r_det/r_fil)"),
        # image-force lowering (e^3 z N psi/(8 pi^2 eps^3))^(1/4) = (lower_k n26 psi)^(1/4), V
        ("lower_k", f"{Q_E ** 3 * Z_VO * N_UNIT / (8 * math.pi ** 2 * EPS0 ** 3)!r}/(eps_phib*eps_phib*eps_phib)"),
        # W00/e = (h/(4 pi)) sqrt(z N/(m eps)) = w00_k sqrt(n26), V
        ("w00_k", f"{H_PLANCK / (4 * math.pi) * math.sqrt(Z_VO * N_UNIT / (M_E * EPS0))!r}/sqrt(eps_r)"),
        ("is_k", f"{math.pi * A_RICHARDSON!r}*r_fil*r_fil"),  # A A*, A/K^2
        ("g_set", f"{Z_VO}*a_hop/({_PI}*dwa*l_disc)"),  # g = g_set * (voltage over the disc), 1/V
        ("g_reset", f"{Z_VO}*a_hop/({_PI}*dwa*l_cell)"),  # g = g_reset * (voltage over the oxide), 1/V
        ("rate_k", "a_hop*nu0/(2*l_disc)"),  # 1/s
        ("nplug26", f"n_plug/{N_UNIT!r}"),
        ("lnn_min", f"ln(n_disc_min/{N_UNIT!r})"),
        ("lnn_max", f"ln(n_disc_max/{N_UNIT!r})"),
    ]


def _read_law(sel: Callable[[str, str, str], str], thermal_node: bool) -> list[tuple[str, str]]:
    """Current through the cell at disc concentration n26: `isch` (Schottky, s -> be) and `ir` (disc, plug and
    series, te -> s); equal where the internal node s is solved. The temperature is its steady state `temp_ss`,
    or with `thermal_node` the node tk that relaxes to it."""
    temp_ss = "t0 + rth*abs((vs + ir*(rdisc + rplug))*ir)"
    temperature = [("temp_ss", temp_ss), ("temp", "V(tk)")] if thermal_node else [("temp", temp_ss)]
    return [
        ("rdisc", "rdisc_k/n26"),
        ("ra", "rdisc + rplug + r_tiox + r0"),
        # V = ra I + kline I^3 solved for I (the real root, in a form without cancellation)
        ("ir", "2*sqrt(ra/(3*kline))*sinh(asinh(1.5*vr*sqrt(3*kline/ra)/ra)/3)"),
        ("rth", sel("v > 0", "rth_set", "rth_set*rth_reset_scale")),
        *temperature,
        ("vt", f"{K_B / Q_E!r}*max(temp, t0)"),  # max: a no-op at the solution, a guard for Newton iterates of tk
        ("psi", _smooth_positive("phi_bn0 - phi_n + vs")),
        # + 1e-30 V^4: keeps the derivative of the fourth root finite where a Newton iterate drives psi to 0
        ("phibn", _smooth_positive("phi_bn0 - pow(lower_k*n26*psi + 1e-30, 0.25)")),
        ("w00", "w00_k*sqrt(n26)"),
        ("th", "tanh(w00/vt)"),
        ("isch", sel(
            "vs > 0",
            # thermionic-field emission through the reverse-biased contact (SET): exp(e V/eps'),
            # eps' = W00/(W00/kT - th)
            f"is_k*{Q_E / K_B!r}*temp*sqrt({_PI}*w00*(abs(vs) + phibn*(1 - th*th)))*exp(-phibn*th/w00)"
            f"*({_limexp('vs*(w00/vt - th)/w00', sel)} - 1)",
            # thermionic emission over the forward-biased contact (RESET)
            f"-is_k*temp*temp*exp(-phibn/vt)*({_limexp('-vs/vt', sel)} - 1)")),
    ]


def _switching(sel: Callable[[str, str, str], str]) -> list[tuple[str, str]]:
    """d(lnn)/dt, 1/s: the ion hopping current into the disc, per disc concentration."""
    return [
        ("graw", sel("v > 0", "g_set*ir*rdisc", "g_reset*(vs + ir*(rdisc + rplug))")),
        # |g| < 1 softly (exact to 1e-5 below 0.3): sqrt(1 - g^2) and asin(g) stay defined in every Newton iterate
        ("gsq", f"graw*graw/{G_MAX ** 2!r}"),
        ("gam", "graw/pow(1 + pow(gsq, 4), 0.125)"),
        ("wbar", "sqrt(1 - gam*gam) + gam*asin(gam)"),
        # exp(-dW_min/kT) - exp(-dW_max/kT), dW_min/max = dwa (wbar -/+ g pi/2)
        ("hop", f"2*exp(-dwa*wbar/vt)*sinh(dwa*gam*{math.pi / 2!r}/vt)"),
        ("flim", sel("v > 0", "1 - exp(10*(lnn - lnn_max))", "1 - exp(10*(lnn_min - lnn))")),
        ("dlnn_dt", "rate_k*(nplug26 + n26)*hop*flim/n26"),
    ]


_PROBES = [("v", "V(te,be)"), ("vs", "V(s,be)"), ("vr", "V(te,s)")]
# The state as the equations see it: V(x), clipped smoothly LNN_MARGIN beyond the disc bounds (which F_lim keeps),
# so that no Newton iterate of V(x) makes N, R_disc or g overflow; identity within 1e-5 between the bounds.
_STATE = [("lnn_lo", f"lnn_min - {LNN_MARGIN!r}"), ("lnn_hi", f"lnn_max + {LNN_MARGIN!r}"),
          ("lnn", f"lnn_lo + {_smooth_positive('V(x) - lnn_lo', '0.01')}"
                  f" - {_smooth_positive('V(x) - lnn_hi', '0.01')}"),
          ("n26", "exp(lnn)")]


def full_model_equations() -> list[tuple[str, str]]:
    """Every equation of the full model (module `jart_vcm`) in evaluation order."""
    sel = _select(False)
    return _constants() + _PROBES + _STATE + _read_law(sel, thermal_node=True) + _switching(sel)


def read_model_equations() -> list[tuple[str, str]]:
    """Every equation of the fixed-state read model (`jart_vcm_read`, parameter n in m^-3) in evaluation order."""
    return (_constants() + _PROBES + [("n26", f"n/{N_UNIT!r}")]
            + _read_law(_select(False), thermal_node=False))


# ---------------------------------------------------------------------------------------------------------------
# Rendering

NGSPICE_NODES = ("graw",)
"""Equations that the ngspice subcircuit puts on an internal node (a B voltage source) instead of inlining them:
g enters the switching rate a dozen times through the soft limit; ngspice differentiates an inlined expression
copy by copy (2 s instead of 10 s for an I-V loop)."""

NGSPICE_READ_NODES = ("temp",)
"""The same for the read model, whose temperature is algebraic and would enter the Schottky current eight times."""

STATE_CAPACITANCE = 1e-12
"""Capacitance on the state node x, F: its current C d(lnn)/dt is of the size of the cell currents (~1 mA at the
fastest SET, 1e9 1/s), so Newton's matrix is balanced (with 1 F, ngspice found it singular during a SET)."""
THERMAL_CAPACITANCE = 1e-15
"""Capacitance on the temperature node tk, F (a numerical scale, not the heat capacity: tau_th sets the time
constant): its current is of the size of the cell currents, its charge above ngspice's charge tolerance."""

MODE_RAMP = 1e-12
"""Time into a transient at which the ngspice subcircuit's state is released (its `mode` node rises to 1), s."""

_TOKEN = re.compile(r"V\([^)]*\)|(?<![\w.])[A-Za-z_]\w*")


def _inline(expression: str, definitions: dict[str, str]) -> str:
    """`expression` with every defined name replaced by its (already inlined) definition in parentheses."""
    return _TOKEN.sub(lambda m: f"({definitions[m[0]]})" if m[0] in definitions else m[0], expression)


def _header(comment: str) -> str:
    lines = [
        "JART VCM v1b filamentary VCM RRAM (Bengel et al., IEEE TCAS-I 67, 4618 (2020),",
        "doi:10.1109/TCSI.2020.3018502), our implementation of the published equations.",
        "GENERATED by cosim.devices.jart_vcm (python -m cosim.devices.jart_vcm): edit the generator, not this file;",
        "the equations, the source, the licence note and what differs from the JART release are in its docstring.",
        "Ports: te (ohmic electrode, Ti/TiOx), be (active electrode, Pt Schottky). SET at V(te,be) > 0.",
        "Internal nodes: s (between the Schottky contact and the disc); x = ln(N / 1e26 m^-3), N the disc's",
        "oxygen-vacancy concentration (held at n_ini in DC analyses); tk, the filament temperature (K).",
        "Parameters (SI units, energies in eV): see cosim.devices.jart_vcm.JartVcmParameters.",
    ]
    return "\n".join(f"{comment} {line}" for line in lines)


def render_verilog_a() -> str:
    """The Verilog-A module `jart_vcm`."""
    equations = full_model_equations()
    lines = [_header("//"), '`include "constants.vams"', '`include "disciplines.vams"', "",
             f"module {MODEL_NAME}(te, be);", "    inout te, be;", "    electrical te, be;", "    electrical s, x, tk;"]
    for name, value in JartVcmParameters().spice_params():
        unit = PARAMETER_UNITS[name]
        lines.append(f'    (* units="{unit}" *) parameter real {name} = {value!r} from (0:inf);')
    lines.append(f"    real {', '.join(name for name, _ in equations)};")
    lines += ["", "    analog begin"]
    lines += [f"        {name} = {expression};" for name, expression in equations]
    lines += ["        I(te, s) <+ ir;", "        I(s, be) <+ isch;",
              f"        I(tk) <+ ddt({THERMAL_CAPACITANCE!r}*V(tk))"
              f" + {THERMAL_CAPACITANCE!r}*(V(tk) - temp_ss)/tau_th;",
              f"        V(x) <+ idt(dlnn_dt, ln(n_ini/{N_UNIT!r}));", "    end", "endmodule"]
    return "\n".join(lines) + "\n"


def _ngspice_body(equations: list[tuple[str, str]], nodes: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    """.param lines of the quantities of the parameters alone (in the read model, those of its fixed state too),
    B sources of those in `nodes` (each on a node of its name), and the inlined expression of every other name.
    What a .param holds ngspice evaluates once, not in every Newton iteration of every device."""
    defined = {name for name, _ in equations}
    constants: set[str] = set()
    lines, inlined = [], {}
    for name, expression in equations:
        tokens = set(_TOKEN.findall(expression))
        if not any(t.startswith("V(") or (t in defined and t not in constants) for t in tokens):
            constants.add(name)
            lines.append(f".param {name}={{{expression}}}")
        elif name in nodes:
            lines.append(f"B{name} {name} 0 V={_inline(expression, inlined)}")
            inlined[name] = f"V({name})"
        else:
            inlined[name] = _inline(expression, inlined)
    return lines, inlined


def _subckt_params(names: tuple[str, ...], extra: str = "") -> str:
    defaults = dict(JartVcmParameters().spice_params())
    return " ".join([extra] * bool(extra) + [f"{name}={defaults[name]!r}" for name in names])


def render_ngspice() -> str:
    """The ngspice subcircuits `jart_vcm` (full model) and `jart_vcm_read` (read law at fixed `n`)."""
    lines = [_header("*"), "",
             f".subckt {MODEL_NAME} te be params: {_subckt_params(tuple(PARAMETER_UNITS))}"]
    body, inlined = _ngspice_body(full_model_equations(), NGSPICE_NODES)
    lines += body
    lines += [f"Br te s I={inlined['ir']}", f"Bs s be I={inlined['isch']}",
              "* Temperature: C dV(tk)/dt = C (temp_ss - V(tk))/tau_th.",
              f"Ctk tk 0 {THERMAL_CAPACITANCE!r}",
              f"Btk 0 tk I={THERMAL_CAPACITANCE!r}/tau_th*({inlined['temp_ss']} - V(tk))",
              "* State: C dV(x)/dt = C d(lnn)/dt. In every DC analysis (.op, each point of a .dc sweep, a",
              "* transient's operating point) the source pins V(x) to ln(n_ini/1e26) (1 S): node mode is 0 there",
              "* (its source's DC value; a transient's operating point takes the waveform at time 0) and 1 from",
              "* 1 ps into a transient. ngspice's `time` cannot tell: a .dc sweep sets it to the swept value.",
              f"Vmode mode 0 dc 0 pwl(0 0 {MODE_RAMP!r} 1)",
              f"Cx x 0 {STATE_CAPACITANCE!r}",
              f"Bx 0 x I={{V(mode) < 0.5 ? V(x) - ln(n_ini/{N_UNIT!r}) : {STATE_CAPACITANCE!r}*{inlined['dlnn_dt']}}}",
              f".ends {MODEL_NAME}", "",
              f"* {READ_MODEL_NAME}: the read law at a fixed disc concentration n (m^-3), steady-state temperature.",
              f".subckt {READ_MODEL_NAME} te be params: "
              f"{_subckt_params(READ_FIELDS, f'n={JartVcmParameters().n_ini!r}')}"]
    body, inlined = _ngspice_body(read_model_equations(), NGSPICE_READ_NODES)
    lines += body
    lines += [f"Br te s I={inlined['ir']}", f"Bs s be I={inlined['isch']}", f".ends {READ_MODEL_NAME}"]
    return "\n".join(lines) + "\n"


def write_model_files() -> list[Path]:
    """(Re)write models/jart_vcm.va and netlists/jart_vcm.lib; returns the paths."""
    MODEL_VA.write_text(render_verilog_a())
    NETLIST_LIB.write_text(render_ngspice())
    return [MODEL_VA, NETLIST_LIB]


# ---------------------------------------------------------------------------------------------------------------
# Read law in numpy: the same equation strings, evaluated on arrays

_NUMPY = {"exp": np.exp, "sqrt": np.sqrt, "sinh": np.sinh, "asinh": np.arcsinh, "cosh": np.cosh, "tanh": np.tanh,
          "asin": np.arcsin, "pow": np.power, "max": np.maximum, "abs": np.abs, "ln": np.log, "where": np.where}
_READ_CODE = [(name, compile(expression, f"<jart_vcm {name}>", "eval"))
              for name, expression in _constants() + _read_law(_select(True), thermal_node=False)]


Devices = JartVcmParameters | Sequence[JartVcmParameters]
"""One device, or several (the numpy functions then take one value per device along the last axis)."""


def _values(params: Devices) -> dict[str, float | np.ndarray]:
    """The parameters as the equations' scope: floats of one device, or one array per parameter of several."""
    if isinstance(params, JartVcmParameters):
        return dict(params.validate().spice_params())
    devices = [device.validate() for device in params]
    return {f.name: np.array([getattr(device, f.name) for device in devices])
            for f in dataclasses.fields(JartVcmParameters)}


def _branch_currents(v: np.ndarray, vs: np.ndarray, n: np.ndarray, values: dict[str, float | np.ndarray]):
    """(Schottky current, chain current) in A at cell voltage v, Schottky voltage vs (V), concentration n."""
    scope = {"__builtins__": {}, **_NUMPY, **values, "v": v, "vs": vs, "vr": v - vs, "n26": n / N_UNIT}
    with np.errstate(over="ignore", invalid="ignore"):  # `where` evaluates the branch it does not take too
        for name, code in _READ_CODE:
            scope[name] = eval(code, scope)  # noqa: S307 - our own equation strings, compiled above
    return scope["isch"], scope["ir"]


def _current(v: np.ndarray | float, n: np.ndarray | float, values: dict[str, float | np.ndarray]) -> np.ndarray:
    v, n = np.broadcast_arrays(np.asarray(v, dtype=float), np.asarray(n, dtype=float))
    low, high = np.minimum(v, 0.0), np.maximum(v, 0.0)
    for _ in range(64):  # the bracket shrinks to the double's resolution of the voltage
        mid = 0.5 * (low + high)
        schottky, chain = _branch_currents(v, mid, n, values)
        too_high = schottky > chain
        high, low = np.where(too_high, mid, high), np.where(too_high, low, mid)
    return _branch_currents(v, 0.5 * (low + high), n, values)[1]


def read_current(v: np.ndarray | float, n: np.ndarray | float, params: Devices) -> np.ndarray:
    """Current from te to be, A, at cell voltage `v` (V) and disc concentration `n` (m^-3), Joule heating included:
    the Schottky voltage is found by bisection where the Schottky and the chain carry the same current."""
    return _current(v, n, _values(params))


def chord_conductance(n: np.ndarray | float, v_read: float, params: Devices) -> np.ndarray:
    """Chord conductance I(v_read)/v_read, S, at disc concentration `n` (m^-3)."""
    return read_current(v_read, n, params) / v_read


def conductance_window(v_read: float, params: JartVcmParameters) -> tuple[float, float]:
    """(lowest, highest) chord conductance at `v_read`, S: the disc at n_disc_min and at n_disc_max."""
    low, high = chord_conductance(np.array([params.n_disc_min, params.n_disc_max]), v_read, params)
    return float(low), float(high)


def _concentration(current: np.ndarray, v: np.ndarray | float, values: dict[str, float | np.ndarray]) -> np.ndarray:
    """The disc concentration, m^-3, that carries `current` (A) at cell voltage `v` (V) > 0, by bisection in ln N
    between the disc bounds (a current beyond the window's gives the bound)."""
    low = np.log(np.broadcast_to(values["n_disc_min"], current.shape)).astype(float)
    high = np.log(np.broadcast_to(values["n_disc_max"], current.shape)).astype(float)
    for _ in range(50):  # 8 decades of N to 1e-13 in ln N
        mid = 0.5 * (low + high)
        above = _current(v, np.exp(mid), values) > current
        high, low = np.where(above, mid, high), np.where(above, low, mid)
    return np.exp(0.5 * (low + high))


def concentration_for_conductance(conductance: np.ndarray | float, v_read: float,
                                  params: JartVcmParameters) -> np.ndarray:
    """The disc concentration, m^-3, whose chord conductance at `v_read` is `conductance` (S); inverse of
    `chord_conductance` (bisection in ln N). ValueError for a conductance outside `conductance_window`."""
    target = np.asarray(conductance, dtype=float)
    low_g, high_g = conductance_window(v_read, params)
    if np.any(target < low_g) or np.any(target > high_g):
        raise ValueError(f"conductance {target} S outside the device window [{low_g:.4g}, {high_g:.4g}] S at "
                         f"v_read = {v_read} V")
    return _concentration(target * v_read, v_read, _values(params))


def verified_conductance(i_cell: np.ndarray, v_device: np.ndarray, v_read: float, devices: Devices) -> np.ndarray:
    """Chord conductance at `v_read`, S, of devices whose verify read gave current `i_cell` (A) at device voltage
    `v_device` (V, below v_read by the series drop): the state that carries that current, by the device's own
    read law, read at v_read."""
    values = _values(devices)
    n = _concentration(np.asarray(i_cell, dtype=float), np.asarray(v_device, dtype=float), values)
    return _current(v_read, n, values) / v_read


# ---------------------------------------------------------------------------------------------------------------
# Circuit building blocks


def jart_vcm_element(name: str, te: str, be: str, params: JartVcmParameters, simulator: Simulator):
    """The full model as an element of `simulator`'s circuit (subcircuit on ngspice, Verilog-A module on VACASK);
    its state is the vector ``state_vector(element)``."""
    values = params.validate().spice_params()
    if simulator == "ngspice":
        return SubcircuitInstance(name, (te, be), MODEL_NAME, values)
    if simulator == "vacask":
        return VerilogAInstance(name, (te, be), MODEL_NAME, values)
    raise ValueError(f"unknown simulator {simulator!r}; use 'ngspice' or 'vacask'")


def read_element(name: str, te: str, be: str, n: float, params: JartVcmParameters) -> SubcircuitInstance:
    """The fixed-state read model `jart_vcm_read` at disc concentration `n` (m^-3): an ngspice element."""
    values = dict(params.validate().spice_params())
    return SubcircuitInstance(name, (te, be), READ_MODEL_NAME, (("n", float(n)),)
                              + tuple((key, values[key]) for key in READ_FIELDS))


def jart_vcm_files(simulator: Simulator) -> dict[str, tuple[str, ...]]:
    """Circuit fields the model needs on `simulator`: {"includes": ...} (ngspice) or {"verilog_a": ...}."""
    if simulator == "ngspice":
        return {"includes": (str(NETLIST_LIB),)}
    if simulator == "vacask":
        return {"verilog_a": (str(MODEL_VA),)}
    raise ValueError(f"unknown simulator {simulator!r}; use 'ngspice' or 'vacask'")


def state_vector(element) -> str:
    """Result vector of the state node x = ln(N / 1e26 m^-3) of a `jart_vcm_element`, e.g. "v(xd.x)"."""
    return f"v({element.ref.lower()}.x)"


def temperature_vector(element) -> str:
    """Result vector of the filament temperature (K) of a `jart_vcm_element`, e.g. "v(xd.tk)"."""
    return f"v({element.ref.lower()}.tk)"


def disc_concentration(result: SimResult, element) -> np.ndarray:
    """The disc's oxygen-vacancy concentration N of `element` over the result's axis, m^-3."""
    return N_UNIT * np.exp(result[state_vector(element)])


def iv_loop_job(params: JartVcmParameters = JartVcmParameters(), simulator: Simulator = "vacask",
                v_set: float = 1.5, v_reset: float = -3.0, period: float = 1e-3, r_series: float = 2e3,
                points: int = 2000) -> SimJob:
    """A triangular I-V loop 0 -> v_set -> 0 -> v_reset -> 0 in `period` s through a series resistor `r_series`
    (ohm), which limits the SET current. Vectors: ``v(in)`` (source), ``v(te)`` (cell), ``i(vin)`` (minus the cell
    current) and the state. The default loop SETs near +0.8 V and RESETs near -1.3 V on the cell (-2.9 V at the
    source): the full window, HRS -> LRS -> HRS."""
    if not v_reset < 0 < v_set:
        raise ValueError(f"iv_loop_job: need v_reset < 0 < v_set, got {v_reset} V, {v_set} V")
    if r_series <= 0 or period <= 0:
        raise ValueError(f"iv_loop_job: r_series and period must be > 0, got {r_series} ohm, {period} s")
    q = period / 4
    wave = Pwl(((0.0, 0.0), (q, v_set), (2 * q, 0.0), (3 * q, v_reset), (4 * q, 0.0)))
    cell = jart_vcm_element("dut", "te", "0", params, simulator)
    circuit = Circuit(netlist="", title="JART VCM I-V loop", **jart_vcm_files(simulator),
                      elements=(VoltageSource("Vin", "in", "0", waveform=wave), Resistor("Rs", "in", "te", r_series),
                                cell))
    step = period / points
    return SimJob(circuit, Tran(step=step, stop=period, max_step=step, method="gear"),
                  outputs=("v(in)", "v(te)", "i(vin)", state_vector(cell)), simulator=simulator,
                  name=f"jart-vcm-iv-{simulator}")


# ---------------------------------------------------------------------------------------------------------------
# Variability and write-verify programming


@dataclass(frozen=True)
class JartVcmVariability:
    """Spreads of the device population and of programming (project assumptions, not fits to a wafer)."""

    d2d: tuple[tuple[str, float], ...] = (("r_fil", 0.03), ("l_disc", 0.03), ("n_disc_min", 0.1), ("rth0", 0.05),
                                          ("dwa", 0.01))
    """(parameter, relative sigma): each device's parameter is multiplied once by 1 + sigma N(0, 1). The
    filament radius and the disc length are the geometry [1] varies; n_disc_min moves the high-resistance state."""
    c2c_nu0: float = 1.0
    """Log-normal sigma of the per-pulse multiplier of the attempt frequency nu0: a fluctuation of the hopping
    barrier by sigma kT at the filament's temperature (~0.05 eV at 600 K), i.e. the cycle-to-cycle spread."""

    def __post_init__(self) -> None:
        check_spreads(self.d2d, JartVcmParameters, "JartVcmVariability.d2d", "JART VCM")
        if self.c2c_nu0 < 0:
            raise ValueError(f"JartVcmVariability.c2c_nu0 must be >= 0, got {self.c2c_nu0}")


def sample_devices(n: int, params: JartVcmParameters, variability: JartVcmVariability,
                   rng: np.random.Generator) -> list[JartVcmParameters]:
    """`n` devices with device-to-device spread drawn from `rng` (one multiplier per listed parameter); a start
    state n_ini that a device's own bounds exclude becomes the nearest bound."""
    return [device.replace(n_ini=float(np.clip(device.n_ini, device.n_disc_min, device.n_disc_max)))
            for device in relative_spread(n, params, variability.d2d, rng)]


def _start(params: JartVcmParameters, lnn: float) -> JartVcmParameters:
    # F_lim lets the state pass its bounds by a hair; the state carried over stays inside.
    return dataclasses.replace(params, n_ini=float(np.clip(N_UNIT * np.exp(lnn), params.n_disc_min,
                                                            params.n_disc_max)))


JART_CELL = ProgrammableCell(name="jart_vcm", element=jart_vcm_element, files=jart_vcm_files,
                             state_vector=state_vector, start=_start, verified_conductance=verified_conductance,
                             c2c_parameter="nu0", method="gear")
"""This model in write-verify (`cosim.devices.write_verify`): state = ln(N / 1e26 m^-3), cycle-to-cycle spread on
nu0, gear integration (as the I-V loop)."""


def program_levels(n_devices: int, seed: int, mapping: LevelMapping, config: WriteVerifyConfig,
                   params: JartVcmParameters = JartVcmParameters(),
                   variability: JartVcmVariability = JartVcmVariability(), simulator: Simulator = "vacask",
                   n_jobs: int | None = None, progress: bool = True) -> ProgrammedLevels:
    """Write-verify Monte Carlo (`cosim.devices.write_verify.program_population`): `n_devices` fresh devices per
    level of `mapping`, each starting in the high-resistance state (n_ini = n_disc_min)."""
    if n_devices < 2:
        raise ValueError(f"program_levels: need n_devices >= 2 for a spread, got {n_devices}")
    mapping.check_window(conductance_window(mapping.v_read, params))
    rng = np.random.default_rng(seed)
    devices = [device.replace(n_ini=device.n_disc_min)
               for device in sample_devices(mapping.n_levels * n_devices, params, variability, rng)]
    return program_population(JART_CELL, devices, mapping, config, variability.c2c_nu0, rng, simulator, n_jobs,
                              progress, seed)


LEVELS = LevelMapping(levels_s=tuple(30e-6 * (k + 1) for k in range(8)), v_read=0.2, tolerance_s=6e-6)
"""The 8 target levels: chord conductances 30, 60, .. 240 uS at v_read = 0.2 V (4.2 .. 33 kohm), +- 6 uS. Inside
the window 9.5 .. 629 uS and away from both ends: the high-resistance state (9.5 uS) stays below level 0's band
with the spread of n_disc_min, and the Joule heating of a read stays small (a 240 uS device heats by ~40 K at
0.2 V, 630 uS by ~190 K). 0.2 V is 4x below the SET threshold of the slow I-V loop (~0.8 V): a 1 ms read moves
ln N by < 1e-5 (tests/devices/test_jart_vcm.py)."""

SET_AMPLITUDE = 1.5
"""Bit-line amplitude of the first SET pulse, V: the SET then ends where the select transistor's saturation
current (the gate voltage) stops it; 1.2 .. 2 V give the same state within a few %, < 1 V does not SET in 20 ns."""
RESET_AMPLITUDE = 0.95
"""Source-line amplitude of the first RESET pulse, V: a gentle step down (240 uS -> ~235 uS in 20 ns); the RESET
is steep in voltage (1.1 V: -> ~190 uS, 1.3 V: -> ~70 uS)."""
GATE_SWEEP = tuple(np.round(np.arange(0.62, 1.101, 0.01), 3))
"""Gate voltages of the controller's calibration SETs (`gate_curve`), V."""


def gate_curve(gates: Sequence[float], mapping: LevelMapping = LEVELS, params: JartVcmParameters = JartVcmParameters(),
               simulator: Simulator = "vacask", config: WriteVerifyConfig | None = None) -> np.ndarray:
    """Verified conductance at mapping.v_read, S, of the device `params` after one 1T1R SET from its
    high-resistance state at each gate voltage of `gates` (V), all side by side in one netlist: the SET pulse and
    the verify read of `config` (default: `write_verify_config`'s policy)."""
    gates = np.asarray(gates, dtype=float)
    config = config or _policy(float(gates.max()))
    devices = [params.replace(n_ini=params.n_disc_min)] * gates.size
    job = round_job(JART_CELL, devices, np.full(gates.size, config.v_start), gates, mapping.v_read, config,
                    simulator, f"jart-vcm-gate-curve-{simulator}")
    result = run_many([job], progress=False, raise_errors=True)[0]
    final = np.array([result[name][-1] for name in job.outputs]).reshape(gates.size, 4)
    return verified_conductance(-final[:, 1], final[:, 2] - final[:, 3], mapping.v_read, devices)


def _policy(gate_set: float | tuple[float, ...]) -> WriteVerifyConfig:
    return WriteVerifyConfig(pulse_width=20e-9, edge=2e-9, read_time=10e-9, v_start=SET_AMPLITUDE,
                             v_start_reset=RESET_AMPLITUDE, v_step=0.02, v_max=2.0, max_pulses=60, r_series=0.0,
                             gate_set=gate_set, gate_step=0.005, gate_max=1.5)


def write_verify_config(mapping: LevelMapping = LEVELS, params: JartVcmParameters = JartVcmParameters(),
                        simulator: Simulator = "vacask") -> WriteVerifyConfig:
    """The write-verify policy of a 1T1R JART cell (`cosim.devices.write_verify`): 20 ns pulses with 2 ns edges and
    a 10 ns verify read, no series resistor; a SET pulses the bit line (from SET_AMPLITUDE) with the gate at the
    level's entry of a gate table and 5 mV more per further SET pulse (incremental gate-voltage programming), a
    RESET pulses the source line from RESET_AMPLITUDE up, 20 mV per further pulse; at most 60 pulses.

    The gate table is the controller's calibration: the nominal device `params` SET once from its
    high-resistance state at the gate voltages of GATE_SWEEP (`gate_curve`); each level starts at the gate whose
    SET lands at its band's lower edge (target - tolerance), so the first SET falls short or inside rather than
    beyond, and the gate steps close the rest."""
    curve = np.maximum.accumulate(gate_curve(GATE_SWEEP, mapping, params, simulator))
    edges = np.asarray(mapping.levels_s) - mapping.tolerance_s
    if edges[0] <= curve[0] or edges[-1] >= curve[-1]:
        raise ValueError(f"write_verify_config: the band edges {edges[0]:.3g} .. {edges[-1]:.3g} S leave the SET "
                         f"conductances {curve[0]:.3g} .. {curve[-1]:.3g} S of gates {GATE_SWEEP[0]} .. "
                         f"{GATE_SWEEP[-1]} V")
    rising = np.concatenate(([True], np.diff(curve) > 0))  # np.interp needs increasing abscissae
    table = np.interp(edges, curve[rising], np.asarray(GATE_SWEEP)[rising])
    return _policy(tuple(float(round(g, 4)) for g in table))


# ---------------------------------------------------------------------------------------------------------------
# Characterisation and the plug-in


def characterize_jart_vcm(out: str | Path, quick: bool = False) -> dict:
    """I-V loops on ngspice and VACASK (1 ms sweep; also 100 us unless `quick`), 1T1R SETs against the gate voltage
    on both simulators (the controller's calibration curve), the write-verify Monte Carlo of the 8 levels (16
    devices per level when `quick`, else 64) with its trajectories and level histograms: data files, PNG plots
    and ``summary.json`` in `out` (``levels.json``/``.npz``: `ProgrammedLevels.load`).

    Summary: the programmed levels' key figures (`ProgrammedLevels.summary`), the I-V NRMSE of VACASK against
    ngspice per sweep, the SET curve (gate V -> conductance S) on each simulator and their largest relative
    difference, the gate table, parameters, variability and write-verify policy."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    periods = (1e-3,) if quick else (1e-4, 1e-3)
    jobs = [iv_loop_job(simulator=sim, period=period) for period in periods for sim in ("ngspice", "vacask")]
    results = run_many(jobs, progress=False, raise_errors=True)
    nrmse = plot_iv_loops({f"{period * 1e6:g} us sweep": (results[2 * k], results[2 * k + 1])
                           for k, period in enumerate(periods)}, out, "JART VCM I-V loops (2 kohm series)")

    config = write_verify_config(LEVELS)
    gates = {"vacask": np.asarray(GATE_SWEEP), "ngspice": np.asarray(GATE_SWEEP[::8 if quick else 4])}
    curves = {sim: gate_curve(gates[sim], simulator=sim) for sim in gates}
    vacask_at_ngspice = np.interp(gates["ngspice"], gates["vacask"], curves["vacask"])
    np.savez_compressed(out / "set_vs_gate.npz", **{f"{sim}_gate_v": gates[sim] for sim in gates},
                        **{f"{sim}_conductance_s": curves[sim] for sim in curves})
    _plot_set_vs_gate(gates, curves, config, out)

    levels = program_levels(16 if quick else 64, 0, LEVELS, config)
    levels.save(out / "levels")
    plot_programming(levels, out, "JART VCM (1T1R)")
    variability = JartVcmVariability()
    return {**levels.summary(), "iv_nrmse_vacask_vs_ngspice": nrmse,
            "set_vs_gate": {sim: {"gate_v": gates[sim].tolist(), "conductance_s": curves[sim].tolist()}
                            for sim in gates},
            "set_vs_gate_ngspice_vs_vacask_rel": float(np.max(np.abs(curves["ngspice"] / vacask_at_ngspice - 1))),
            "gate_table_v": list(config.gate_set), "parameters": dict(JartVcmParameters().spice_params()),
            "variability": {"d2d": dict(variability.d2d), "c2c_nu0": variability.c2c_nu0},
            "write_verify": dataclasses.asdict(config)}


def _plot_set_vs_gate(gates: dict[str, np.ndarray], curves: dict[str, np.ndarray], config: WriteVerifyConfig,
                      out: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(gates["vacask"], curves["vacask"] * 1e6, "-", label="VACASK")
    ax.plot(gates["ngspice"], curves["ngspice"] * 1e6, "o", label="ngspice")
    ax.plot(config.gate_set, np.asarray(LEVELS.levels_s) * 1e6, "k^", label="level targets at their first gate")
    compliance = ax.twinx()
    compliance.plot(gates["vacask"], [config.transistor.saturation_current(g) * 1e6 for g in gates["vacask"]],
                    ":", color="gray")
    compliance.set_ylabel("compliance: transistor saturation current (uA, dotted)")
    ax.set(xlabel="gate voltage during the SET (V)", ylabel=f"conductance after the SET at {LEVELS.v_read} V (uS)",
           title=f"1T1R SET from the high-resistance state ({config.v_start} V, {config.pulse_width * 1e9:g} ns)")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "set_vs_gate.png", dpi=120)
    plt.close(fig)


@functools.lru_cache(maxsize=4096)
def _read_state(conductance: float, v_read: float, params: JartVcmParameters) -> float:
    # a crossbar draws its devices from a population of a few hundred conductances: each state is found once
    return float(concentration_for_conductance(conductance, v_read, params))


@dataclass(frozen=True)
class JARTDevice:
    """JART VCM v1b as a `cosim.devices.plugins.SynapseDevice`: 8 levels 30 .. 240 uS at 0.2 V (`LEVELS`),
    write-verify of a 1T1R cell with a calibrated gate table (`write_verify_config`, `program_levels`), the read law
    at the programmed state for crossbar reads (`jart_vcm_read`)."""

    params: JartVcmParameters = JartVcmParameters()
    """The nominal device."""
    variability: JartVcmVariability = JartVcmVariability()
    """Spreads of the programmed population."""
    name: ClassVar[str] = "jart_vcm"
    read_libraries: ClassVar[tuple[str, ...]] = (str(NETLIST_LIB),)

    def parameters(self) -> JartVcmParameters:
        return self.params.validate()

    def sample(self, params: JartVcmParameters, n: int, sigma: float, seed: int) -> list[JartVcmParameters]:
        """n devices, each parameter of the default variability's d2d list with relative spread `sigma` instead."""
        d2d = tuple((name, sigma) for name, _ in self.variability.d2d)
        return sample_devices(n, params, dataclasses.replace(self.variability, d2d=d2d), np.random.default_rng(seed))

    def characterize(self, out: Path, quick: bool) -> dict:
        return characterize_jart_vcm(out, quick)

    def mapping(self) -> LevelMapping:
        return LEVELS

    def program(self, mapping: LevelMapping, n_devices: int, seed: int, progress: bool) -> ProgrammedLevels:
        """The write-verify Monte Carlo with the gate table calibrated for `mapping` (`write_verify_config`)."""
        return program_levels(n_devices, seed, mapping, write_verify_config(mapping, self.params), self.params,
                              self.variability, progress=progress)

    def read_card(self, ref: str, a: str, b: str, conductance: float, v_read: float) -> str:
        n = _read_state(float(conductance), float(v_read), self.params)
        # the read model's defaults are the nominal parameters: only what differs goes on the card
        nominal = dict(JartVcmParameters().spice_params())
        changed = tuple((name, value) for name, value in self.params.spice_params()
                        if name in READ_FIELDS and value != nominal[name])
        return SubcircuitInstance(f"X{ref}", (a, b), READ_MODEL_NAME, (("n", n),) + changed).ngspice()


register_synapse(JARTDevice())


if __name__ == "__main__":
    print("\n".join(str(path) for path in write_model_files()))
