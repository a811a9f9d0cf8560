"""The FeLIF neuron circuit: membrane node with a FeCap, reset path, threshold detector and spike output.

Subcircuit `felif_nd{N}` (N FeCap domains; `netlists/felif_nd{N}.lib` for ngspice, `netlists/felif_nd{N}_vacask.lib`
for VACASK with the Verilog-A models `models/fecap_nd{N}.va` and `models/felif_ctrl.va`), ports:

    in   the membrane node: inject the synaptic current here (A, into the node); its voltage is V
    spk  spike output (V, to ground): v_spk while the neuron is reset, 0 otherwise; a spike is a rising edge

Comparator, latch and reset driver are behavioural (ideal references); the rails v_dd and v_ss of the input
protection are ideal sources inside the subcircuit. Inside:

- the FeCap (`fecap_nd{N}`, cosim.devices.fecap) from `in` to ground, the parasitic capacitance c_par and the
  discharge current i_dsc tanh(V/v_sgn) (REFERENCE.md's I_dsc sign(V), smoothed over v_sgn for convergence);
- the input protection: clamp diodes from `in` to v_dd (3.3 V) and from v_ss (-4.5 V) to `in` (below);
- a threshold detector (comparator of width v_cmp around v_thr) setting a latch q (time constant tau_q);
- while latched, a switch of on-resistance r_on drives `in` first to v_erase for t_erase (a field strong enough to
  switch every domain back to negative saturation, P -> -P_s) and then to v_reset;
- the latch is released at the second edge of the coarse-step clock (period t_clk, edges at k t_clk) after the
  threshold crossing. This is REFERENCE.md's coarse-step semantics: a crossing in step k latches the neuron for
  the rest of step k, step k + 1 is refractory and overwritten by the reset, and the neuron integrates again from
  (V_reset, -P_s) at the start of step k + 2. Hence at most one spike per two steps (the f-I curve saturates at
  1/(2 t_clk)), and the spike steps are those of the reference: 1 nA -> 12, 27; 10 nA -> 1, 4, 7, ...

Ideal limit (`FeLIFCircuitParameters.reference()` with the single-domain FeCap): v_cmp = 1 mV, tau_q = 10 ns,
r_on = 1 kOhm (r_on (C_fe + c_par) < 1 ns) and t_erase = 10 us are instantaneous against the 1 us-1 ms time scales
of the neuron, so the circuit reproduces REFERENCE.md (first crossing 12.56 ms at 1 nA). Transients need
`method="gear"` (the FeCap's domain states ring under trapezoidal integration) and a maximum step of a few us so
that the threshold crossing is resolved (NEURON_MAX_STEP).

Input protection. The column currents of signed weights are negative as often as positive, and a membrane fed
-6 nA for a few coarse steps would fall to -20 V and below (the bare node has nothing but the FeCap and 10 pA of
discharge), far outside what the FeCap or any driver survives. A pair of clamp diodes, as on any CMOS input pin,
holds it: one from `in` to the rail v_dd, one from the rail v_ss to `in`, each

    I_D = i_sd (exp(V_D / (n_d V_T)) - 1),    V_T = kT/q at 27 C (THERMAL_VOLTAGE),

in series with r_sd. The series resistance is taken as the diode's high-current asymptote: the exponential up to
the knee current n_d V_T / r_sd (259 uA at the defaults) and, above it, its tangent continued with slope 1/r_sd
(C1 at the knee, 26 mV from the exact series connection there, exact on either side). Training currents stay
below 1 uA, three decades under the knee, and the current cannot overflow in a Newton iteration far out.
The design values:

- i_sd = 1 fA, n_d = 1: a 10 um^2 junction diode at the BSIM4 default saturation current density JSS = 1e-4 A/m^2
  and emission coefficient NJS = 1 (BSIM4 manual, source/drain junction diode parameters); its junction
  capacitance (some fF) is part of c_par. r_sd = 100 Ohm, an on-chip diffusion and contact resistance.
- v_dd = 3.3 V, the I/O supply of a CMOS process, 0.8 V (31 n_d V_T) above the highest threshold used (2.5 V).
- v_ss = -4.5 V, the negative supply of the erase driver, which must lie below the -4 V it drives the node to;
  0.5 V (19 n_d V_T) of headroom.

Between v_erase and v_thr both diodes are reverse- or zero-biased and draw at most i_sd (1 fA, 1e-4 of the
discharge current): the protection does not load the node in operation. Under a negative input I the node
settles where the lower diode carries it, V = v_ss - n_d V_T ln(|I|/i_sd + 1): -4.90 V at -6 nA, -5.00 V at
-300 nA (`FeLIFCircuitParameters.membrane_limits`), and likewise above v_dd for a positive input the reset does
not stop. The training model clips V to the limits at 300 nA (`FeLIFParameters.v_min`, `v_max`), the order of
the largest column currents training produces (the main job's 3-bit music network, all 54 keys on: 146 nA).
A positive input after a negative phase finds the circuit, within ~C V_T / I, where the diode carries less than
it (-4.89 V at 4 nA): up to 0.11 V above the model's v_min, which makes the circuit's next crossing up to 16 us
(at 4 nA) earlier. The protection is a behavioural current written once in the equation strings below, not the
simulators' diode models: ngspice's adds gmin (1e-12 S) across the junction, 0.5-7 pA at these reverse biases,
comparable to the 10 pA discharge.

The controller equations (latch, timer, edge counter, switch, discharge, protection, spike output) are written
once below and rendered into the ngspice B-sources and the Verilog-A module `felif_ctrl`; the files are
generated (`python -m cosim.devices.felif`) and a test checks they are current.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from cosim.devices.card import CardError, DeviceCard
from cosim.devices.fecap import (
    MODELS_DIR, NETLISTS_DIR, SHIPPED_DOMAIN_COUNTS, FeCapParameters, Simulator, default_parameters as fecap_defaults,
    domain_vectors, fecap_from_card, model_name as fecap_model_name, sample_devices,
    shipped_files as fecap_shipped_files,
)
from cosim.devices.plugins import NeuronBank, NeuronResponse, register_neuron
from cosim.felif.layer import FeLIFLayer
from cosim.felif.physics import FeLIFParameters
from cosim.felif.record import record
from cosim.felif.step import StepConfig
from cosim.felif.variability import VARIED_FIELDS, device_to_device
from cosim.spice import Circuit, SimJob, SimResult, Tran
from cosim.spice.elements import CurrentSource, Pwl, SubcircuitInstance

NEURON_FIELDS = ("c_par", "i_dsc", "v_thr", "v_reset")
"""`FeLIFParameters` fields that are neuron-circuit parameters (same names in the netlists)."""
MODEL_LIMIT_FIELDS = ("v_min", "v_max")
"""`FeLIFParameters` fields that are no circuit parameters: the training model's V limits, which must be where the
circuit's input protection holds the membrane (`FeLIFCircuitParameters.membrane_limits`)."""
LIMIT_TOLERANCE = 1e-3
"""Largest difference between the model's V limits and the circuit's `membrane_limits`, V."""

T_EDGE = 1e-9
"""Width of the internal clock-edge pulses, s (each integrates to one count)."""
C_CTRL = 1e-12
"""Capacitance of the controller's state nodes (latch, timer, edge counter), F: their currents stay A-sized."""
NEURON_MAX_STEP = 5e-6
"""Largest time step of neuron transients, s: locates the threshold crossing to well within 1 %."""
VACASK_MAX_STEP = 20e-6
"""Largest time step of neuron transients on VACASK, s: against ngspice at NEURON_MAX_STEP, a 256 x 4 crossbar into
4 neurons over 100 ms keeps every spike and its time within 4.3 us (1 % of a 1 ms step is 10 us) in half the time
points (benchmarks/RESULTS.md, "SPICE at scale")."""
CONTROLLER_VA = MODELS_DIR / "felif_ctrl.va"
"""Verilog-A of the neuron's periphery (membrane parasitics, protection, latch, reset switch, spike output)."""
THERMAL_VOLTAGE = 1.380649e-23 * 300.15 / 1.602176634e-19
"""kT/q at 27 C (the simulators' nominal temperature), V: the thermal voltage of the clamp diodes."""
PROTECTION_DESIGN_CURRENT = 300e-9
"""Largest input current the protection is designed to hold, A (a few hundred nA: the largest column currents
training produces): the training model's V limits are where the clamp diodes settle under it
(`FeLIFCircuitParameters.membrane_limits`)."""


@dataclass(frozen=True)
class FeLIFCircuitParameters:
    """One FeLIF neuron circuit: its FeCap, the neuron physics (c_par, i_dsc, v_thr, v_reset) and the periphery."""

    fecap: FeCapParameters = field(default_factory=FeCapParameters)
    """The membrane FeCap; `fecap.physics` also holds the neuron fields c_par, i_dsc, v_thr and v_reset."""
    v_erase: float = -4.0
    """Reset drive during the erase phase, V: switches every domain to negative saturation."""
    t_erase: float = 10e-6
    """Duration of the erase phase at the start of the reset, s (then the node is held at v_reset)."""
    r_on: float = 1e3
    """On-resistance of the reset switch, Ohm."""
    t_clk: float = 1e-3
    """Coarse-step clock period, s: the reset is released at the second clock edge after the crossing."""
    v_spk: float = 1.0
    """Spike output level, V."""
    v_sgn: float = 1e-3
    """Voltage over which the discharge current's sign(V) is smoothed (tanh), V."""
    v_cmp: float = 1e-3
    """Width of the threshold comparator (tanh), V."""
    tau_q: float = 10e-9
    """Time constant of the latch (and of clearing the timer and counter), s."""
    v_dd: float = 3.3
    """Upper rail of the input protection, V: the clamp diode from the membrane conducts above it."""
    v_ss: float = -4.5
    """Lower rail of the input protection, V: the clamp diode to the membrane conducts below it."""
    i_sd: float = 1e-15
    """Saturation current of each clamp diode, A."""
    n_d: float = 1.0
    """Emission coefficient of the clamp diodes."""
    r_sd: float = 100.0
    """Series resistance of each clamp diode, Ohm."""

    @classmethod
    def reference(cls, physics: FeLIFParameters | None = None) -> "FeLIFCircuitParameters":
        """The ideal-limit neuron with the single-domain reference FeCap (REFERENCE.md's model)."""
        return cls(fecap=FeCapParameters.reference(physics))

    @property
    def physics(self) -> FeLIFParameters:
        """The FeLIF physics parameters."""
        return self.fecap.physics

    def replace(self, **changes) -> "FeLIFCircuitParameters":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def validate(self) -> "FeLIFCircuitParameters":
        """Raise ValueError naming the parameter if the circuit is meaningless; return self."""
        self.fecap.validate()
        p = self.physics
        for name in ("r_on", "t_clk", "t_erase", "v_spk", "v_sgn", "v_cmp", "tau_q", "i_sd", "n_d", "r_sd"):
            if not getattr(self, name) > 0:
                raise ValueError(f"FeLIF circuit parameter {name} must be > 0, got {getattr(self, name)!r}")
        if not self.v_ss < self.v_erase < p.v_thr < self.v_dd:
            raise ValueError(f"FeLIF circuit needs v_ss < v_erase and v_thr < v_dd, got v_ss = {self.v_ss!r}, "
                             f"v_erase = {self.v_erase!r}, v_thr = {p.v_thr!r}, v_dd = {self.v_dd!r} V: the input "
                             "protection must not conduct between the erase drive and the threshold")
        if not self.v_erase < p.v_reset < p.v_thr:
            raise ValueError(f"FeLIF circuit needs v_erase < v_reset < v_thr, got {self.v_erase!r}, "
                             f"{p.v_reset!r}, {p.v_thr!r} V")
        if not self.t_erase < self.t_clk:
            raise ValueError(f"FeLIF circuit t_erase ({self.t_erase!r} s) must be shorter than t_clk "
                             f"({self.t_clk!r} s)")
        if not 100 * self.tau_q <= self.t_erase:
            raise ValueError(f"FeLIF circuit tau_q ({self.tau_q!r} s) must be at most t_erase/100 "
                             f"({self.t_erase / 100!r} s): the latch must be fast against the reset phases")
        limits = self.membrane_limits()
        if max(abs(float(p.v_min) - limits[0]), abs(float(p.v_max) - limits[1])) > LIMIT_TOLERANCE:
            raise ValueError(f"FeLIF circuit: the training model's V limits v_min = {float(p.v_min)!r}, v_max = "
                             f"{float(p.v_max)!r} V are not where this circuit's input protection holds the membrane "
                             f"at {PROTECTION_DESIGN_CURRENT:g} A ({limits[0]:.4f}, {limits[1]:.4f} V): set "
                             "FeLIFParameters v_min/v_max to those, or the protection parameters back")
        return self

    def membrane_limits(self, current: float = PROTECTION_DESIGN_CURRENT) -> tuple[float, float]:
        """(lowest, highest) membrane voltage, V: where the clamp diodes carry an input of -current and +current
        (A), the inverse of the protection's I(V); the discharge and FeCap leakage (pA) are left out."""
        if not current > 0:
            raise ValueError(f"membrane_limits needs a current > 0 A, got {current!r}")
        scale = self.n_d * THERMAL_VOLTAGE
        knee = math.log(scale / (self.r_sd * self.i_sd))
        x = math.log(current / self.i_sd + 1.0)
        if x > knee:  # ohmic above the knee: i_sd e^knee (1 + x - knee) = current + i_sd
            x = knee + (current / self.i_sd + 1.0) * math.exp(-knee) - 1.0
        return self.v_ss - scale * x, self.v_dd + scale * x

    @property
    def subcircuit(self) -> str:
        """Subcircuit name, "felif_nd{N}"."""
        return subcircuit_name(self.fecap.n_domains)

    def subcircuit_parameters(self) -> tuple[tuple[str, float], ...]:
        """(name, value) of every subcircuit parameter, SI units."""
        neuron = tuple((name, float(getattr(self.physics, name))) for name in NEURON_FIELDS)
        circuit = tuple((name, float(getattr(self, name))) for name in CIRCUIT_FIELDS)
        return self.fecap.model_parameters() + neuron + circuit


CIRCUIT_FIELDS = ("v_erase", "t_erase", "r_on", "t_clk", "v_spk", "v_sgn", "v_cmp", "tau_q", "v_dd", "v_ss", "i_sd",
                  "n_d", "r_sd")
"""FeLIFCircuitParameters fields that are subcircuit parameters."""


def sample_neurons(params: FeLIFCircuitParameters, n: int, sigma: float, seed: int) -> list[FeLIFCircuitParameters]:
    """n neurons whose FeCaps carry device-to-device variability (`cosim.devices.fecap.sample_devices`, seeded)."""
    return [params.replace(fecap=device) for device in sample_devices(params.fecap, n, sigma, seed)]


def subcircuit_name(n_domains: int) -> str:
    """Name of the neuron subcircuit with an N-domain FeCap."""
    return f"felif_nd{n_domains}"


# ---------------------------------------------------------------------------------------------------------------
# The controller's equations, written once (ngspice B-source and Verilog-A share this syntax). q: latch (0/1),
# tmr: time since the crossing in units of t_erase, ne: clock edges counted while latched, clk: edge pulses.

ON = "(0.5 + 0.5*tanh((V(q) - 0.8)/0.02))"
"""Latch firmly set: switch closed, timer and counter running, spike output high."""
CLEAR = "(0.5 - 0.5*tanh((V(q) - 0.2)/0.02))"
"""Latch firmly clear: timer and counter reset (the gap between 0.2 and 0.8 lets the latch settle either way)."""
SET = "(0.5 + 0.5*tanh((V(in) - v_thr)/v_cmp))"
HOLD = "(0.5 + 0.5*tanh((V(q) - 0.5)/0.02))"
RELEASE = "(0.5 + 0.5*tanh((V(ne) - 1.5)/0.1))"
Q_RATE = f"((1 - (1 - {SET})*(1 - {HOLD}))*(1 - {RELEASE}) - V(q))/tau_q"
TMR_RATE = f"{ON}/t_erase - {CLEAR}*V(tmr)/tau_q"
NE_RATE = f"{ON}*V(clk) - {CLEAR}*V(ne)/tau_q"
TARGET = "(v_reset + (v_erase - v_reset)*(0.5 - 0.5*tanh((V(tmr) - 1)/0.01)))"
SWITCH = f"{ON}*(V(in) - {TARGET})/r_on"
DISCHARGE = "i_dsc*tanh(V(in)/v_sgn)"
KNEE = f"ln(n_d*{THERMAL_VOLTAGE!r}/(r_sd*i_sd))"
"""ln(knee current / i_sd) of the clamp diodes: above n_d V_T / r_sd their series resistance takes over."""


def _clamp_diode(bias: str) -> str:
    """Current of one clamp diode at forward bias `bias` (V): exponential to the knee, then slope 1/r_sd."""
    x = f"({bias})/(n_d*{THERMAL_VOLTAGE!r})"
    return f"i_sd*(exp(min({x}, {KNEE}))*(1 + max({x} - {KNEE}, 0)) - 1)"


PROTECTION = f"{_clamp_diode('V(in) - v_dd')} - {_clamp_diode('v_ss - V(in)')}"
"""Current of the input protection out of the membrane node, A: the diode to v_dd minus the diode from v_ss."""
SPIKE = f"v_spk*{ON}"

_PARAMETER_DOCS = {
    "c_par": ("F", "parasitic capacitance of the membrane node"),
    "i_dsc": ("A", "discharge current (against the sign of V)"),
    "v_thr": ("V", "spike threshold"),
    "v_reset": ("V", "membrane voltage after a spike"),
    "v_erase": ("V", "reset drive during the erase phase (switches the FeCap to -P_s)"),
    "t_erase": ("s", "duration of the erase phase"),
    "r_on": ("Ohm", "on-resistance of the reset switch"),
    "t_clk": ("s", "coarse-step clock period; the reset ends at the second edge after the crossing"),
    "v_spk": ("V", "spike output level"),
    "v_sgn": ("V", "smoothing of sign(V) in the discharge current"),
    "v_cmp": ("V", "comparator width"),
    "tau_q": ("s", "latch time constant"),
    "v_dd": ("V", "upper rail of the input protection (clamp diode in -> v_dd)"),
    "v_ss": ("V", "lower rail of the input protection (clamp diode v_ss -> in)"),
    "i_sd": ("A", "saturation current of each clamp diode"),
    "n_d": ("1", "emission coefficient of the clamp diodes"),
    "r_sd": ("Ohm", "series resistance of each clamp diode"),
}


def _header(n: int, comment: str, dialect: str) -> str:
    lines = [
        f"{subcircuit_name(n)}: FeLIF neuron, FeCap with {n} domain{'s' if n > 1 else ''} ({dialect}).",
        "GENERATED by cosim.devices.felif (python -m cosim.devices.felif); edit the generator, not this file.",
        "Ports: in (membrane node: inject the input current here), spk (spike output: v_spk while reset, else 0).",
        "A threshold crossing of V(in) latches the neuron: in is driven through r_on to v_erase for t_erase, then",
        "to v_reset, until the second clock edge (edges at k t_clk) after the crossing. Input protection:",
        "clamp diodes in -> v_dd and v_ss -> in (rails as ideal sources, see cosim.devices.felif).",
        f"Needs the FeCap model {fecap_model_name(n)} ("
        + ("netlists/" if dialect == "ngspice" else "models/") + f"{fecap_model_name(n)}"
        + (".lib" if dialect == "ngspice" else ".va") + ")"
        + ("" if dialect == "ngspice" else " and models/felif_ctrl.va") + ".",
        f"Parameters (SI units): the FeCap's ({', '.join(name for name, _ in fecap_defaults(n))}) and",
    ]
    lines += [f"  {name} [{unit}]: {text}" for name, (unit, text) in _PARAMETER_DOCS.items()]
    return "\n".join(f"{comment} {line}".rstrip() for line in lines)


def _defaults(n: int) -> list[tuple[str, float]]:
    base = FeLIFCircuitParameters()
    return (fecap_defaults(n) + [(name, float(getattr(base.physics, name))) for name in NEURON_FIELDS]
            + [(name, float(getattr(base, name))) for name in CIRCUIT_FIELDS])


def _fecap_connection(n: int) -> str:
    names = [name for name, _ in fecap_defaults(n)]
    return " ".join(f"{name}={name}" for name in names)


def _edge_pulse(value_of) -> dict[str, str]:
    """Clock-edge pulse train: unit area (1/T_EDGE high for T_EDGE) centred on k t_clk, k >= 1."""
    return {"high": value_of(f"1/{T_EDGE!r}"), "delay": value_of(f"t_clk - {T_EDGE / 2!r}"),
            "edge": value_of(f"{T_EDGE / 10!r}"), "width": value_of(f"{0.9 * T_EDGE!r}"), "period": value_of("t_clk")}


def render_ngspice(n: int) -> str:
    """The ngspice subcircuit `felif_nd{n}` (needs netlists/fecap_nd{n}.lib)."""
    params = " ".join(f"{name}={value!r}" for name, value in _defaults(n))
    fecap_params = " ".join(f"{name}={{{name}}}" for name, _ in fecap_defaults(n))
    pulse = _edge_pulse(lambda expr: f"{{{expr}}}")
    lines = [
        _header(n, "*", "ngspice"), f".subckt {subcircuit_name(n)} in spk params: {params}",
        f"Xfe in 0 {fecap_model_name(n)} {fecap_params}",
        "Cpar in 0 {c_par}",
        f"Bdsc in 0 I={DISCHARGE}",
        f"Bprot in 0 I={PROTECTION}",
        f"Vclk clk 0 PULSE(0 {pulse['high']} {pulse['delay']} {pulse['edge']} {pulse['edge']} {pulse['width']} "
        f"{pulse['period']})",
    ]
    for node, rate in (("q", Q_RATE), ("tmr", TMR_RATE), ("ne", NE_RATE)):
        lines += [f"C{node} {node} 0 {C_CTRL!r}", f"B{node} 0 {node} I={C_CTRL!r}*({rate})"]
    lines += [f"Bsw in 0 I={SWITCH}", f"Bspk spk 0 V={SPIKE}", f".ends {subcircuit_name(n)}"]
    return "\n".join(lines) + "\n"


def render_vacask(n: int) -> str:
    """The VACASK subcircuit `felif_nd{n}` (needs models/fecap_nd{n}.va and models/felif_ctrl.va compiled)."""
    params = " ".join(f"{name}={value!r}" for name, value in _defaults(n))
    controller = " ".join(f"{name}={name}" for name in NEURON_FIELDS + CIRCUIT_FIELDS if name != "t_clk")
    pulse = _edge_pulse(lambda expr: f"({expr})")
    lines = [
        _header(n, "//", "VACASK"), f"subckt {subcircuit_name(n)}(in spk)", f"  parameters {params}",
        f"  model fecap_m {fecap_model_name(n)} {_fecap_connection(n)}",
        f"  model ctrl_m felif_ctrl {controller}",
        "  model clk_m vsource",
        "  xfe (in 0) fecap_m",
        f'  vclk (clk 0) clk_m dc=0 type="pulse" val0=0 val1={pulse["high"]} delay={pulse["delay"]} '
        f'rise={pulse["edge"]} fall={pulse["edge"]} width={pulse["width"]} period={pulse["period"]}',
        "  xctrl (in spk clk) ctrl_m",
        "ends",
    ]
    return "\n".join(lines) + "\n"


def render_controller_va() -> str:
    """The Verilog-A module `felif_ctrl(in, spk, clk)`: c_par, discharge, input protection, latch, reset switch,
    spike output."""
    header = [
        "felif_ctrl: periphery of the FeLIF neuron (VACASK side of netlists/felif_nd{N}_vacask.lib).",
        "GENERATED by cosim.devices.felif (python -m cosim.devices.felif); edit the generator, not this file.",
        "Ports: in (membrane node), spk (spike output), clk (clock-edge pulses of unit area at k t_clk).",
        "Internal nodes: q (latch), tmr (time since the crossing / t_erase), ne (clock edges while latched).",
    ]
    params = [name for name in NEURON_FIELDS + CIRCUIT_FIELDS if name != "t_clk"]
    values = dict(_defaults(1))
    lines = [*(f"// {line}" for line in header), '`include "constants.vams"', '`include "disciplines.vams"', "",
             "module felif_ctrl(in, spk, clk);", "    inout in, spk, clk;", "    electrical in, spk, clk;",
             "    electrical q, tmr, ne;"]
    for name in params:
        unit, text = _PARAMETER_DOCS[name]
        bounds = "" if name in ("v_thr", "v_reset", "v_erase", "v_dd", "v_ss") else (
            " from [0:inf)" if name in ("i_dsc", "c_par") else " from (0:inf)")
        lines.append(f'    (* desc="{text}", units="{unit}" *) parameter real {name} = {values[name]!r}{bounds};')
    lines += ["", "    analog begin"]
    for node, rate in (("q", Q_RATE), ("tmr", TMR_RATE), ("ne", NE_RATE)):
        lines.append(f"        I({node}) <+ {C_CTRL!r}*(ddt(V({node})) - ({rate}));")
    lines += ["        I(in) <+ ddt(c_par*V(in)) + " + DISCHARGE + " + " + PROTECTION + " + " + SWITCH + ";",
              f"        V(spk) <+ {SPIKE};", "    end", "endmodule"]
    return "\n".join(lines) + "\n"


def neuron_files(n: int) -> dict[str, Path]:
    """Paths of the neuron with an N-domain FeCap: {"ngspice": ..., "vacask": ...}."""
    return {"ngspice": NETLISTS_DIR / f"{subcircuit_name(n)}.lib",
            "vacask": NETLISTS_DIR / f"{subcircuit_name(n)}_vacask.lib"}


def write_neuron_files(counts: Sequence[int] = SHIPPED_DOMAIN_COUNTS) -> list[Path]:
    """(Re)write the controller's Verilog-A and the neuron subcircuits of each domain count; returns the paths."""
    CONTROLLER_VA.write_text(render_controller_va())
    written = [CONTROLLER_VA]
    for n in counts:
        paths = neuron_files(n)
        paths["ngspice"].write_text(render_ngspice(n))
        paths["vacask"].write_text(render_vacask(n))
        written += paths.values()
    return written


def circuit_files(params: FeLIFCircuitParameters, simulator: Simulator) -> dict[str, tuple[str, ...]]:
    """Circuit fields a neuron needs on `simulator`: includes (and Verilog-A sources for VACASK)."""
    n = params.fecap.n_domains
    fecap = fecap_shipped_files(n)
    neuron = neuron_files(n)
    if simulator == "ngspice":
        return {"includes": (str(fecap["ngspice"]), str(neuron["ngspice"]))}
    if simulator == "vacask":
        return {"includes": (str(neuron["vacask"]),), "verilog_a": (str(fecap["verilog_a"]), str(CONTROLLER_VA))}
    raise ValueError(f"unknown simulator {simulator!r}; use 'ngspice' or 'vacask'")


def neuron_element(name: str, in_node: str, spk_node: str, params: FeLIFCircuitParameters) -> SubcircuitInstance:
    """An instance of the neuron subcircuit (the same element renders for ngspice and VACASK)."""
    params.validate()
    return SubcircuitInstance(name, (in_node, spk_node), params.subcircuit, params.subcircuit_parameters())


def neuron_bank(circuits: Sequence[FeLIFCircuitParameters], max_step: float = NEURON_MAX_STEP,
                vacask_max_step: float = VACASK_MAX_STEP) -> NeuronBank:
    """Neurons of one domain count as a `NeuronBank` (one parameter set each, or one shared), for ngspice and
    VACASK: ports ``in`` (membrane) and ``spk`` (spike output, v_spk while resetting), gear integration,
    largest time step `max_step` (s; `vacask_max_step` on VACASK)."""
    first = circuits[0]
    vacask = circuit_files(first, "vacask")
    return NeuronBank(first.subcircuit, circuit_files(first, "ngspice")["includes"], ("in", "spk"),
                      tuple(c.subcircuit_parameters() for c in circuits), max_step=max_step, method="gear",
                      spike_port="spk", spike_level=0.5 * first.v_spk, vacask_libraries=vacask["includes"],
                      verilog_a=vacask["verilog_a"], vacask_max_step=vacask_max_step)


# ---------------------------------------------------------------------------------------------------------------
# Testbench: a constant input current from V = 0, P = p0 P_s (default -P_s)

NEURON_REF = "Xn"
"""Instance name of the neuron in `current_step_job`."""


def current_step_job(params: FeLIFCircuitParameters, current: float, stop: float, *,
                     simulator: Simulator = "ngspice", max_step: float = NEURON_MAX_STEP, name: str = "") -> SimJob:
    """One neuron driven by a constant current (A into the membrane, negative out of it; switched on in 1 ns at
    t = 0) for `stop` seconds.

    Vectors: time, v(mem) (the membrane), v(spk), and the FeCap domain nodes v(xn.xfe.p<i>).
    """
    params.validate()
    if not math.isfinite(current) or not stop > 0:
        raise ValueError(f"current_step_job needs a finite current (A) and stop > 0 s, got {current!r}, {stop!r}")
    neuron = neuron_element(NEURON_REF, "mem", "spk", params)
    circuit = Circuit(netlist="", title=f"FeLIF neuron {current:g} A", elements=(
        CurrentSource("Iin", "0", "mem", waveform=Pwl(((0.0, 0.0), (1e-9, current)))), neuron),
        **circuit_files(params, simulator))
    outputs = ("v(mem)", "v(spk)") + domain_vectors(f"{NEURON_REF}.xfe", params.fecap.n_domains)
    return SimJob(circuit, Tran(step=max_step, stop=stop, max_step=max_step, method="gear"), outputs=outputs,
                  simulator=simulator, name=name or f"{simulator} felif {current * 1e9:g} nA")


def polarisation(result: SimResult, params: FeLIFCircuitParameters) -> np.ndarray:
    """FeCap polarisation of a `current_step_job` neuron over time, C/m^2."""
    nodes = [result[name] for name in domain_vectors(f"{NEURON_REF}.xfe", params.fecap.n_domains)]
    return float(params.physics.p_s) * np.mean(nodes, axis=0)


def spike_times(time: np.ndarray, spk: np.ndarray, v_spk: float) -> np.ndarray:
    """Times (s) at which the spike output rises through v_spk/2, linearly interpolated."""
    level = 0.5 * v_spk
    k = np.nonzero((spk[:-1] <= level) & (spk[1:] > level))[0]
    return time[k] + (level - spk[k]) * (time[k + 1] - time[k]) / (spk[k + 1] - spk[k])


def result_spikes(result: SimResult, params: FeLIFCircuitParameters) -> np.ndarray:
    """Spike times (s) of a `current_step_job` result."""
    return spike_times(result.x, result["v(spk)"], params.v_spk)



def spike_steps(times: np.ndarray, t_clk: float) -> list[int]:
    """Coarse step (0-based, of length t_clk) of each spike time."""
    return [int(k) for k in np.floor(np.asarray(times) / t_clk)]


# ---------------------------------------------------------------------------------------------------------------
# Characterisation

REFERENCE_FIRST_CROSSING_S = {"1": 12.562e-3, "2": 6.244e-3, "5": 2.484e-3, "10": 1.237e-3, "50": 0.244e-3}
"""REFERENCE.md's first threshold crossings (explicit Euler, h = 1 us), keyed by input current in nA."""
FIRST_SPIKE_CURRENTS = (1e-9, 2e-9, 5e-9, 10e-9, 50e-9)
"""Input currents of the first-spike runs, A (those REFERENCE.md lists)."""
TRACE_CURRENTS = (1e-9, 5e-9, 10e-9)
"""Input currents whose V and P traces are plotted, A."""
TRACE_STOP = 30e-3
"""Length of the first-spike runs, s."""


def _current_key(current: float) -> str:
    return f"{current * 1e9:g}"


def characterize_felif(out: str | Path, quick: bool = False, device: FeLIFCircuitParameters | None = None,
                       card: DeviceCard | None = None) -> dict:
    """V and P traces, first spike times and the f-I curve of the neuron `device` (default: the default
    multi-domain neuron) on ngspice, of the single-domain ideal-limit neuron (REFERENCE.md's model) for comparison,
    and the Verilog-A neuron on VACASK. `card`: the device card `device` was built from, recorded in the summary.

    Writes ``traces.npz``, ``traces.png``, ``fi_curve.csv``, ``fi_curve.png`` and ``summary.json`` into `out`;
    returns the summary: ``first_spike_s`` ({input current in nA: s}), ``spike_steps`` (coarse steps of the
    spikes), ``fi_curve`` ({"current_na", "rate_hz"}), the same under ``reference_single_domain``, the REFERENCE.md
    crossing times and the VACASK-vs-ngspice first-spike difference. `quick`: fewer, shorter f-I runs.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cosim.spice import run_many

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    devices = {"device": (device or FeLIFCircuitParameters()).validate(),
               "reference": FeLIFCircuitParameters.reference()}
    fi_currents = (0.5e-9, 1e-9, 3e-9, 10e-9, 30e-9, 100e-9) if quick else tuple(np.geomspace(0.5e-9, 100e-9, 12))
    fi_currents = tuple(round(float(i), 15) for i in fi_currents)
    fi_stop = 60e-3 if quick else 200e-3
    cases = [(which, "ngspice", i, TRACE_STOP) for which in devices for i in FIRST_SPIKE_CURRENTS]
    cases += [("device", "vacask", i, TRACE_STOP) for i in (1e-9, 10e-9)]
    cases += [(which, "ngspice", i, fi_stop) for which in devices for i in fi_currents]
    jobs = [current_step_job(devices[which], i, stop, simulator=sim, name=f"{which} {sim} {i * 1e9:g} nA {stop:g} s")
            for which, sim, i, stop in cases]
    results = dict(zip(cases, run_many(jobs, progress=True, raise_errors=True)))

    def first_spikes(which: str, simulator: str) -> dict[str, float]:
        found = {}
        for (w, sim, i, stop), result in results.items():
            if w == which and sim == simulator and stop == TRACE_STOP:
                times = result_spikes(result, devices[which])
                found[_current_key(i)] = float(times[0]) if len(times) else float("nan")
        return found

    def steps(which: str) -> dict[str, list[int]]:
        return {_current_key(i): spike_steps(result_spikes(results[which, "ngspice", i, TRACE_STOP], devices[which]),
                                             devices[which].t_clk) for i in TRACE_CURRENTS}

    def fi_curve(which: str) -> dict[str, list[float]]:
        rates = [len(result_spikes(results[which, "ngspice", i, fi_stop], devices[which])) / fi_stop
                 for i in fi_currents]
        return {"current_na": [round(i * 1e9, 6) for i in fi_currents], "rate_hz": rates}

    first = {which: first_spikes(which, "ngspice") for which in devices}
    fi = {which: fi_curve(which) for which in devices}
    vacask_first = first_spikes("device", "vacask")
    rate_limit = 1.0 / (2.0 * devices["device"].t_clk)

    traces = {}
    fig, (ax_v, ax_p) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for k, i in enumerate(TRACE_CURRENTS):
        for which, style in (("device", "-"), ("reference", "--")):
            result = results[which, "ngspice", i, TRACE_STOP]
            p = polarisation(result, devices[which])
            key = f"{which}_{_current_key(i)}nA"
            traces.update({f"{key}_time": result.x, f"{key}_v": result["v(mem)"], f"{key}_p": p,
                           f"{key}_spk": result["v(spk)"]})
            label = f"{_current_key(i)} nA, " + (f"{devices[which].fecap.n_domains} domains" if which == "device"
                                                 else "single domain")
            ax_v.plot(result.x * 1e3, result["v(mem)"], style, color=f"C{k}", lw=1, label=label)
            ax_p.plot(result.x * 1e3, p * 100, style, color=f"C{k}", lw=1)
    np.savez_compressed(out / "traces.npz", **traces)
    ax_v.axhline(devices["device"].physics.v_thr, color="k", lw=0.6, ls=":")
    ax_v.set(ylabel="V (V)", title="FeLIF neuron, constant input from V = 0, P = -P_s (ngspice)")
    ax_v.legend(fontsize=7, ncol=3)
    ax_p.set(xlabel="time (ms)", ylabel="P (uC/cm^2)")
    for ax in (ax_v, ax_p):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "traces.png", dpi=120)
    plt.close(fig)

    rows = ["current_na,rate_hz_device,rate_hz_reference"]
    rows += [f"{c!r},{a!r},{b!r}" for c, a, b in zip(fi["device"]["current_na"], fi["device"]["rate_hz"],
                                                    fi["reference"]["rate_hz"])]
    (out / "fi_curve.csv").write_text("\n".join(rows) + "\n")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogx(fi["device"]["current_na"], fi["device"]["rate_hz"], "o-",
                label=f"{devices['device'].fecap.n_domains} domains")
    ax.semilogx(fi["reference"]["current_na"], fi["reference"]["rate_hz"], "s--", color="0.5", label="single domain")
    ax.axhline(rate_limit, color="k", lw=0.6, ls=":", label="refractory limit 1/(2 t_clk)")
    ax.set(xlabel="input current (nA)", ylabel="rate (Hz)", title=f"f-I curve ({fi_stop * 1e3:g} ms runs, ngspice)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "fi_curve.png", dpi=120)
    plt.close(fig)

    summary = {
        "first_spike_s": first["device"], "spike_steps": steps("device"), "fi_curve": fi["device"],
        "rate_limit_hz": rate_limit, "current_unit": "nA",
        "reference_single_domain": {"first_spike_s": first["reference"], "spike_steps": steps("reference"),
                                    "fi_curve": fi["reference"]},
        "reference_md_first_crossing_s": REFERENCE_FIRST_CROSSING_S,
        "vacask_first_spike_s": vacask_first,
        "vacask_vs_ngspice_rel": {key: abs(value / first["device"][key] - 1) for key, value in vacask_first.items()},
        "device": {"subcircuit": devices["device"].subcircuit,
                   "parameters": dict(devices["device"].subcircuit_parameters()),
                   "device_card": card.to_dict() if card is not None else None},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


# ---------------------------------------------------------------------------------------------------------------
# The device plug-in (cosim.devices.plugins)


def _item(value: float | torch.Tensor, j: int) -> float:
    """Neuron j's value of a parameter that is a float or a tensor of one value per neuron."""
    if isinstance(value, torch.Tensor) and value.numel() > 1:
        return float(value.reshape(-1)[j])
    return float(value)


def neuron_physics(params: FeLIFParameters, n: int) -> list[FeLIFParameters]:
    """One parameter set of plain floats per neuron of a layer whose fields may be per-neuron tensors."""
    fields = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    return [FeLIFParameters(**{name: _item(value, j) for name, value in fields.items()}) for j in range(n)]


def scaled_device(circuit: FeLIFCircuitParameters, nominal: FeLIFParameters,
                  params: FeLIFParameters) -> FeLIFCircuitParameters:
    """`circuit` with each varied physical parameter scaled by params / nominal (one neuron's variability)."""
    physics = circuit.fecap.physics
    scaled = {name: getattr(physics, name) * float(getattr(params, name)) / float(getattr(nominal, name))
              for name in VARIED_FIELDS if float(getattr(params, name)) != float(getattr(nominal, name))}
    return dataclasses.replace(circuit, fecap=circuit.fecap.replace(physics=physics.replace(**scaled)))


class FeLIFDevice:
    """The FeLIF neuron as a `cosim.devices.plugins.NeuronDevice`.

    Training model: `FeLIFLayer` (BRUNO or another coarse-step method) with the analytic physics, or the fitted
    surrogate's parameters and validity guard. Circuit options (`circuits`): ``n_domains`` (1: the single-domain
    FeCap the analytic layer computes, or 8), ``max_step`` (s). The circuits are the netlists as they are, input
    protection included (the training model's V limits are where it holds the membrane); verification adds
    nothing to them. A network trained with a fitted surrogate runs on the circuit that surrogate was fitted to,
    each neuron scaled by its device-to-device variability.

    The registered device is the default neuron; `with_card` gives the neuron whose FeCap is a calibrated one (a
    FeCap device card, `cosim.devices.fecap.fecap_from_card`): its analytic training model takes the card's FeCap
    physics (area, thicknesses, permittivities, E_a, P_s, tau0, alpha, leakage) and its circuits the card's
    domains (N, sigma_Ea) as well; neuron fields (c_par, i_dsc, v_reset; v_thr from the config) and the periphery
    stay the circuit's defaults.
    """

    name = "felif"
    card_kind = "fecap"
    """Kind of device card `with_card` takes."""

    def __init__(self, circuit: FeLIFCircuitParameters | None = None, card: DeviceCard | None = None):
        self.circuit = (circuit or FeLIFCircuitParameters()).validate()
        """The neuron circuit (default: the default multi-domain neuron)."""
        self.card = card
        """The device card the circuit's FeCap came from (None: the default FeCap)."""

    def with_card(self, path: str | Path) -> "FeLIFDevice":
        """This neuron with the FeCap of the FeCap device card at `path` (CardError naming file and field)."""
        fecap, card = fecap_from_card(path)
        fecap = fecap.replace(physics=fecap.physics.replace(
            **{name: getattr(self.circuit.physics, name) for name in NEURON_FIELDS + MODEL_LIMIT_FIELDS}))
        try:
            return FeLIFDevice(self.circuit.replace(fecap=fecap), card)
        except ValueError as err:
            raise CardError(f"device card {path}: the neuron built from it is not valid: {err}") from None

    def parameters(self) -> FeLIFCircuitParameters:
        return self.circuit

    def sample(self, params: FeLIFCircuitParameters, n: int, sigma: float, seed: int) -> list[FeLIFCircuitParameters]:
        return sample_neurons(params, n, sigma, seed)

    def characterize(self, out: Path, quick: bool) -> dict:
        return characterize_felif(out, quick, self.circuit, self.card)

    def layer(self, n: int, model: Any, fitted: Any | None) -> FeLIFLayer:
        params = fitted.params if fitted is not None else self.circuit.physics.replace(v_thr=model.v_thr)
        if model.variability_sigma > 0:
            params = device_to_device(params, n, model.variability_sigma)
        step = StepConfig(dt=model.dt, h=model.h, surrogate=model.surrogate, beta=model.beta,
                          rate_grad=model.rate_grad, integrator=model.integrator)
        guard = fitted.guard() if fitted is not None else None
        return FeLIFLayer(n, params, step, method=model.method, current_scale=model.current_scale, guard=guard,
                          c2c_sigma=model.cycle_to_cycle_sigma)

    def circuits(self, layer: FeLIFLayer, dt: float, options: Mapping[str, Any], fitted: Any | None) -> NeuronBank:
        unknown = set(options) - {"n_domains", "max_step"}
        if unknown:
            raise ValueError(f"FeLIF circuit options: unknown {sorted(unknown)}; known: n_domains, max_step")
        n_domains = options.get("n_domains", 1)
        if n_domains not in SHIPPED_DOMAIN_COUNTS:
            raise ValueError(f"FeLIF circuit option n_domains must be one of the shipped FeCap models "
                             f"{SHIPPED_DOMAIN_COUNTS}, got {n_domains}")
        circuits = []
        for params in neuron_physics(layer.params, layer.n):
            if fitted is not None:
                circuit = scaled_device(fitted.circuit().replace(t_clk=dt), fitted.params, params)
            elif n_domains == 1:
                circuit = self.circuit.replace(fecap=FeCapParameters.reference(params), t_clk=dt)
            else:
                own = self.circuit.fecap
                fecap = (own.replace(physics=params) if n_domains == own.n_domains
                         else FeCapParameters(params, n_domains, sigma_ea=own.sigma_ea))
                circuit = self.circuit.replace(fecap=fecap, t_clk=dt)
            circuits.append(circuit.validate())
        if "max_step" in options:  # the step asked for, on either simulator
            return neuron_bank(circuits, options["max_step"], options["max_step"])
        return neuron_bank(circuits)

    def reference(self, layer: FeLIFLayer, currents: np.ndarray, dt: float,
                  sample_every: float) -> list[NeuronResponse]:
        if abs(layer.cfg.dt - dt) > 1e-12 * dt:
            raise ValueError(f"FeLIF reference: the layer steps dt = {layer.cfg.dt} s, asked for {dt} s")
        rec = record(torch.as_tensor(currents, dtype=layer.dtype), layer.params, layer.cfg, sample_every)
        return [NeuronResponse(rec.t, rec.v[:, j].copy(), rec.crossings[j]) for j in range(currents.shape[1])]


register_neuron(FeLIFDevice())


if __name__ == "__main__":
    print(json.dumps([str(p) for p in write_neuron_files()], indent=1))
