"""Filamentary RRAM synapse device: compact-model parameters, variability, read characteristic, multi-level
write-verify programming and the conductance mapping of the 3-bit differential-pair weights.

Model
-----
A gap model of a metal-oxide filament (Stanford/PKU model; equations in ``models/rram.va``, implemented
identically as the ngspice subcircuit ``rram`` in ``netlists/rram.lib``): read current
``I = i0 exp(-g/g0) sinh(V/v0)``, gap velocity ``dg/dt = -vel0 exp(-Ea/kT) sinh(gamma a0/tox qV/kT)`` with the
local field enhancement ``gamma = gamma0 - beta (g/g1)^3``, Joule heating ``T = t0 + |VI| rth``, a smooth field
threshold and smooth gap bounds. Published parameter set: Z. Jiang et al., IEEE Trans. Electron Devices 63(5),
1884 (2016) / Stanford RRAM Model v1.0.0 (doi:10.4231/D37H1DN48). Conductances in this module are chord
conductances at the read voltage, ``G = I(v_read)/v_read``: what a crossbar read at v_read sees, the read
nonlinearity included.

Variability
-----------
Device-to-device: each listed parameter of every device is multiplied once by ``1 + sigma N(0, 1)`` (as the
neuron variability of REFERENCE.md section 3). Cycle-to-cycle (programming): every programming pulse draws a
fresh log-normal multiplier ``exp(sigma_c2c N(0, 1))`` of the gap velocity vel0, i.e. an activation-energy
fluctuation of ``kT sigma_c2c`` per pulse. Both are sampled in Python from a seed and passed to the simulator as
instance parameters (OpenVAF has no random numbers). The default spreads are project assumptions (a few % in
the read parameters, ~10 % in the switching kinetics), not fits to a particular wafer.

Levels and weights
------------------
A device is programmed to one of 8 target conductances (3 bits), equally spaced in ``[10, 80] uS`` at
``v_read = 0.1 V`` (gaps ~1.0 .. 1.5 nm, inside the model's 0.2 .. 1.7 nm window, where the read current at
0.1 V is 1.03x linear and a 0.1 V read, 13x below the field threshold, leaves the gap untouched). A signed
weight level q of the training quantiser (``-w..w``, w = 3 for 3 bits) is the differential pair

    q >= 0: (G+, G-) = (G[s q], G[0]);   q < 0: (G+, G-) = (G[0], G[s |q|]),   s = (8 - 1) // w

so ``G+ - G- = q s dG`` (dG = 10 uS, the device level spacing): for 3-bit weights s = 2 and the pairs use device
levels 0, 2, 4, 6 (weight step 20 uS, level 7 spare); 4-bit weights (w = 7) use every level with s = 1.
`LevelMapping` is this description; `ProgrammedLevels` holds the Monte Carlo outcome (per-level means and
spreads) that the surrogate fitting and the verification export consume.

Write-verify
------------
Incremental step pulse programming with verify (`cosim.devices.write_verify`, the policy shared with the other
resistive devices; `program_levels`, `RRAM_CELL`). Default cell (`WriteVerifyConfig()`): the select transistor
is a 1 kohm series resistance. Starting from the fully reset state, a cell gets 10 ns pulses, each followed by a
read at v_read; below the target band it gets a set pulse (positive), above it a reset pulse (negative); the
amplitude starts at 1.2 V and grows by 40 mV per pulse in the same direction, restarting after each change of
direction; a cell whose read falls in ``target +- tolerance`` is done. The series resistance matters: set in
this model is abrupt (the field enhancement and the Joule heating grow as the gap closes), and without it one
set pulse past threshold runs the device to its low-resistance bound (~2 mS at ~70 mA); with it the set is
self-limiting and gradual. The verify read converts the measured cell current at the device voltage to the
device's chord conductance at v_read (`verified_conductance`).

1T1R option: ``WriteVerifyConfig(r_series=0.0, gate_set=1.0, gate_step=0.02)`` programs a cell with a select
transistor (`cosim.devices.select_transistor`) instead: a set pulse with the gate at 1.0 V, 20 mV more per further
set pulse, whose saturation current (140 uA at 1.0 V) stops the set; reset pulses on the source line with the gate
fully on (3 V). It programs the 8 levels as well (tests/devices/test_rram.py: 3 devices per level, all
converged, ~25 .. 50 pulses each since every set restarts at 1.0 V; a per-level gate table, ``gate_set=(...)``,
starts each level nearer its target).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from cosim.devices.card import CardError, DeviceCard, load_card
from cosim.devices.plugins import register_synapse
from cosim.devices.select_transistor import SelectTransistor
from cosim.devices.write_verify import (
    LevelMapping,
    ProgrammableCell,
    ProgrammedLevels,
    WriteVerifyConfig,
    check_spreads,
    plot_iv_loops,
    plot_programming,
    program_population,
    relative_spread,
)
from cosim.spice import Circuit, SimJob, Tran, run_many
from cosim.spice.elements import Pwl, Resistor, SubcircuitInstance, VerilogAInstance, VoltageSource, number

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_VA = REPO_ROOT / "models" / "rram.va"
"""Verilog-A source of the model (module `rram`)."""
NETLIST_LIB = REPO_ROOT / "netlists" / "rram.lib"
"""ngspice subcircuits `rram` (full model) and `rram_read` (fixed-state read model)."""
READ_VA = REPO_ROOT / "models" / "rram_read.va"
"""Verilog-A source of the fixed-state read model (module `rram_read`, the VACASK side of `rram_read`)."""

Simulator = Literal["ngspice", "vacask"]


@dataclass(frozen=True)
class RRAMParameters:
    """Compact-model parameters (SI units; names as in models/rram.va and netlists/rram.lib)."""

    i0: float = 1e-3
    """Read current prefactor, A."""
    g0: float = 0.25e-9
    """Gap decay length of the read current, m."""
    v0: float = 0.25
    """Read nonlinearity voltage (current ~ sinh(V/v0)), V."""
    vel0: float = 10.0
    """Gap velocity prefactor, m/s."""
    ea: float = 0.6
    """Activation energy of oxygen-vacancy migration, eV."""
    a0: float = 0.25e-9
    """Hopping distance (atom spacing), m."""
    tox: float = 12e-9
    """Oxide thickness, m."""
    gamma0: float = 16.0
    """Local field enhancement at zero gap (dimensionless)."""
    beta: float = 0.8
    """Decrease of the field enhancement with the gap, gamma = gamma0 - beta (g/g1)^3 (dimensionless)."""
    g1: float = 1e-9
    """Gap normalisation of the field enhancement, m."""
    f_min: float = 1.4e9
    """Field threshold below which the gap does not move, V/m."""
    f_width: float = 0.05e9
    """Width of the smooth (logistic) field threshold, V/m."""
    gap_min: float = 0.2e-9
    """Smallest gap (low-resistance bound), m."""
    gap_max: float = 1.7e-9
    """Largest gap (high-resistance bound), m."""
    gap_width: float = 0.01e-9
    """Width of the smooth gap bounds, m."""
    gap_ini: float = 1.7e-9
    """Gap at t = 0 and in DC analyses, m."""
    rth: float = 2.1e3
    """Thermal resistance of the filament region, K/W."""
    t0: float = 298.15
    """Ambient temperature, K."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not np.isfinite(value):
                raise ValueError(f"RRAM parameter {f.name} must be a finite number, got {value!r}")
            if f.name in ("beta", "f_min", "rth"):
                if value < 0:
                    raise ValueError(f"RRAM parameter {f.name} must be >= 0, got {value!r}")
            elif value <= 0:
                raise ValueError(f"RRAM parameter {f.name} must be > 0, got {value!r}")
        if not self.gap_min < self.gap_max:
            raise ValueError(f"RRAM parameters: need gap_min < gap_max, got {self.gap_min} m >= {self.gap_max} m")
        if not self.gap_min <= self.gap_ini <= self.gap_max:
            raise ValueError(f"RRAM parameter gap_ini = {self.gap_ini} m is outside "
                             f"[gap_min, gap_max] = [{self.gap_min}, {self.gap_max}] m")
        if self.gamma0 - self.beta * (self.gap_max / self.g1) ** 3 <= 0:
            raise ValueError(f"RRAM parameters: field enhancement gamma0 - beta (gap_max/g1)^3 must stay > 0, got "
                             f"{self.gamma0} - {self.beta} ({self.gap_max}/{self.g1})^3")

    def replace(self, **changes: float) -> "RRAMParameters":
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def spice_params(self) -> tuple[tuple[str, float], ...]:
        """(name, value) pairs for the instance or model card."""
        return tuple((f.name, float(getattr(self, f.name))) for f in dataclasses.fields(self))


def read_current(v: np.ndarray | float, gap: np.ndarray | float, params: RRAMParameters) -> np.ndarray:
    """Read current from te to be, A, at voltage `v` (V) and gap `gap` (m): i0 exp(-g/g0) sinh(v/v0)."""
    return params.i0 * np.exp(-np.asarray(gap) / params.g0) * np.sinh(np.asarray(v) / params.v0)


def chord_conductance(gap: np.ndarray | float, v_read: float, params: RRAMParameters) -> np.ndarray:
    """Chord conductance I(v_read)/v_read, S, of a device with gap `gap` (m)."""
    return read_current(v_read, gap, params) / v_read


def gap_for_conductance(conductance: np.ndarray | float, v_read: float, params: RRAMParameters) -> np.ndarray:
    """The gap, m, whose chord conductance at `v_read` is `conductance` (S); inverse of `chord_conductance`."""
    return params.g0 * np.log(read_current(v_read, 0.0, params) / (np.asarray(conductance) * v_read))


def conductance_window(v_read: float, params: RRAMParameters) -> tuple[float, float]:
    """(lowest, highest) chord conductance at `v_read`, S: the device at gap_max and at gap_min."""
    return (float(chord_conductance(params.gap_max, v_read, params)),
            float(chord_conductance(params.gap_min, v_read, params)))


# ------------------------------------------------------------------------------------------------- variability


@dataclass(frozen=True)
class RRAMVariability:
    """Spreads of the device population and of programming."""

    d2d: tuple[tuple[str, float], ...] = (("i0", 0.05), ("g0", 0.02), ("vel0", 0.1), ("ea", 0.02), ("gamma0", 0.02))
    """(parameter, relative sigma): each device's parameter is multiplied once by 1 + sigma N(0, 1)."""
    c2c_vel0: float = 0.3
    """Log-normal sigma of the per-pulse multiplier of vel0 (cycle-to-cycle programming spread)."""

    def __post_init__(self) -> None:
        check_spreads(self.d2d, RRAMParameters, "RRAMVariability.d2d", "RRAM")
        if self.c2c_vel0 < 0:
            raise ValueError(f"RRAMVariability.c2c_vel0 must be >= 0, got {self.c2c_vel0}")


def sample_devices(n: int, params: RRAMParameters, variability: RRAMVariability,
                   rng: np.random.Generator) -> list[RRAMParameters]:
    """`n` devices with device-to-device spread drawn from `rng` (one multiplier per listed parameter)."""
    return relative_spread(n, params, variability.d2d, rng)


# ------------------------------------------------------------------------------------------------ simulation


def rram_element(name: str, te: str, be: str, params: RRAMParameters, simulator: Simulator):
    """The full model as an element of `simulator`'s circuit: subcircuit `rram` of netlists/rram.lib on
    ngspice, module `rram` of models/rram.va on VACASK. Its gap (nm) is the vector ``gap_vector(element)``."""
    if simulator == "ngspice":
        return SubcircuitInstance(name, (te, be), "rram", params.spice_params())
    if simulator == "vacask":
        return VerilogAInstance(name, (te, be), "rram", params.spice_params())
    raise ValueError(f"unknown simulator {simulator!r}; use 'ngspice' or 'vacask'")


def gap_vector(element) -> str:
    """Result vector of the gap node (nm) of an `rram_element`, e.g. "v(xd.gap)"."""
    return f"v({element.ref.lower()}.gap)"


def model_files(simulator: Simulator) -> dict[str, tuple[str, ...]]:
    """Circuit fields the model needs on `simulator`: {"includes": ...} (ngspice) or {"verilog_a": ...}."""
    if simulator == "ngspice":
        return {"includes": (str(NETLIST_LIB),)}
    if simulator == "vacask":
        return {"verilog_a": (str(MODEL_VA),)}
    raise ValueError(f"unknown simulator {simulator!r}; use 'ngspice' or 'vacask'")


def device_circuit(elements: tuple, simulator: Simulator, netlist: str = "", title: str = "rram"):
    """A `cosim.spice.Circuit` of `elements` with the RRAM model attached for `simulator`."""
    return Circuit(netlist=netlist, title=title, elements=elements, **model_files(simulator))


def iv_loop_job(params: RRAMParameters = RRAMParameters(), simulator: Simulator = "ngspice", v_set: float = 2.0,
                v_reset: float = -2.5, period: float = 100e-6, r_series: float = 2e3, points: int = 2000):
    """A triangular I-V loop 0 -> v_set -> 0 -> v_reset -> 0 in `period` s through a series resistor.

    `r_series` (ohm) limits the set current, as the select transistor of a 1T1R cell does. Vectors: ``v(in)``
    (source), ``v(te)`` (device), ``i(vin)`` (minus the device current).
    """
    if not v_reset < 0 < v_set:
        raise ValueError(f"iv_loop_job: need v_reset < 0 < v_set, got {v_reset} V, {v_set} V")
    if r_series <= 0 or period <= 0:
        raise ValueError(f"iv_loop_job: r_series and period must be > 0, got {r_series} ohm, {period} s")
    q = period / 4
    wave = Pwl(((0.0, 0.0), (q, v_set), (2 * q, 0.0), (3 * q, v_reset), (4 * q, 0.0)))
    elements = (VoltageSource("Vin", "in", "0", waveform=wave), Resistor("Rs", "in", "te", r_series),
                rram_element("dut", "te", "0", params, simulator))
    step = period / points
    return SimJob(circuit=device_circuit(elements, simulator, title="rram I-V loop"),
                  analysis=Tran(step=step, stop=period, max_step=step),
                  outputs=("v(in)", "v(te)", "i(vin)"), simulator=simulator, name=f"rram-iv-{simulator}")


# --------------------------------------------------------------------------------------------- write-verify


def verified_conductance(i_cell: np.ndarray, v_device: np.ndarray, v_read: float, v0: np.ndarray) -> np.ndarray:
    """Device chord conductance at `v_read`, S, from a verify read of cell current `i_cell` (A) at device
    voltage `v_device` (V, below v_read by the series drop): the read law I ~ sinh(V/v0) carries it to v_read."""
    return i_cell / np.sinh(v_device / v0) * np.sinh(v_read / v0) / v_read


def _start(params: RRAMParameters, gap_nm: float) -> RRAMParameters:
    # The smooth bounds let the gap overshoot them by a hair; the state carried over stays inside.
    return params.replace(gap_ini=float(np.clip(gap_nm * 1e-9, params.gap_min, params.gap_max)))


def _verified(i_cell: np.ndarray, v_device: np.ndarray, v_read: float, devices) -> np.ndarray:
    return verified_conductance(i_cell, v_device, v_read, np.array([d.v0 for d in devices]))


RRAM_CELL = ProgrammableCell(name="rram", element=rram_element, files=model_files, state_vector=gap_vector,
                             start=_start, verified_conductance=_verified, c2c_parameter="vel0")
"""This model in write-verify (`cosim.devices.write_verify`): state = the gap node (nm), cycle-to-cycle spread
on vel0."""


def program_levels(n_devices: int, seed: int, mapping: LevelMapping = LevelMapping(),
                   params: RRAMParameters = RRAMParameters(), variability: RRAMVariability = RRAMVariability(),
                   config: WriteVerifyConfig = WriteVerifyConfig(), simulator: Simulator = "vacask",
                   n_jobs: int | None = None, progress: bool = True) -> ProgrammedLevels:
    """Monte Carlo of write-verify programming (`cosim.devices.write_verify.program_population`): `n_devices`
    fresh devices per target level.

    Each device starts fully reset (gap_ini = gap_max). Returns the verified conductances, pulse counts and
    trajectories. Parameters are checked before anything is simulated. VACASK (the compiled Verilog-A model) is
    the default simulator: ~7x faster here than the ngspice subcircuit, which it matches (tests/devices).
    """
    if n_devices < 2:
        raise ValueError(f"program_levels: need n_devices >= 2 for a spread, got {n_devices}")
    mapping.check_window(conductance_window(mapping.v_read, params))
    rng = np.random.default_rng(seed)
    # A sampled device whose window misses its band is not an error: it ends unconverged, as on a wafer.
    devices = sample_devices(mapping.n_levels * n_devices, params.replace(gap_ini=params.gap_max), variability, rng)
    return program_population(RRAM_CELL, devices, mapping, config, variability.c2c_vel0, rng, simulator, n_jobs,
                              progress, seed)


# ------------------------------------------------------------------------------------------- characterisation


def characterize_rram(out: str | Path, quick: bool = False, device: "RRAMDevice | None" = None) -> dict:
    """I-V loops (ngspice and VACASK, three sweep periods), write-verify Monte Carlo of the 8 levels,
    programming trajectories and level histograms of `device` (default: the default RRAM synapse): data files,
    PNG plots and ``summary.json`` in `out`.

    Summary: per-level ``mean_s`` and ``std_s`` (S), ``adjacent_overlap`` (fraction of devices past the midpoint
    threshold, per adjacent pair) and its Gaussian estimate, the level mapping, the Verilog-A vs ngspice I-V
    NRMSE. ``levels.npz``/``levels.json`` hold the programmed population (`ProgrammedLevels.load`).
    """
    device = device or RRAMDevice()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    periods = (20e-6, 100e-6, 500e-6)
    jobs = [iv_loop_job(device.params, simulator=sim, period=p) for p in periods for sim in ("ngspice", "vacask")]
    results = run_many(jobs, progress=False, raise_errors=True)
    nrmse = plot_iv_loops({f"{period * 1e6:g} us sweep": (results[2 * k], results[2 * k + 1])
                           for k, period in enumerate(periods)}, out, "RRAM I-V loops (2 kohm series)")

    levels = device.program(device.mapping(), 32 if quick else 256, seed=0, progress=True)
    levels.save(out / "levels")
    plot_programming(levels, out, "RRAM")
    summary = {**levels.summary(), "iv_nrmse_vacask_vs_ngspice": nrmse,
               "parameters": dict(device.params.spice_params()),
               "variability": {"d2d": dict(device.variability.d2d), "c2c_vel0": device.variability.c2c_vel0},
               "write_verify": dataclasses.asdict(device.write_verify),
               "device_card": device.card.to_dict() if device.card is not None else None}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


# ------------------------------------------------------------------------------------------------- the plug-in


CARD_PARAMETERS = {
    **{f"rram.{name}": unit for name, unit in (
        ("i0", "A"), ("g0", "m"), ("v0", "V"), ("vel0", "m/s"), ("ea", "eV"), ("a0", "m"), ("tox", "m"),
        ("gamma0", ""), ("beta", ""), ("g1", "m"), ("f_min", "V/m"), ("f_width", "V/m"), ("gap_min", "m"),
        ("gap_max", "m"), ("gap_width", "m"), ("gap_ini", "m"), ("rth", "K/W"), ("t0", "K"))},
    **{f"transistor.{name}": unit for name, unit in (("vto", "V"), ("kp", "A/V^2"), ("w", "m"), ("l", "m"),
                                                     ("lam", "1/V"))},
}
"""Parameters an RRAM device card (`cosim calibrate rram`) may hold, with their units: ``rram.<field>`` of
`RRAMParameters` and ``transistor.<field>`` of the 1T1R cell's `SelectTransistor`."""
CARD_WRITE_VERIFY = WriteVerifyConfig(r_series=0.0, gate_set=1.0, gate_step=0.05, max_pulses=200)
"""Programming of a synapse built from an RRAM card that holds a select transistor: the 1T1R option of the module
docstring with the card's transistor, the gate stepped by 50 mV per further SET (up to 200 pulses). The calibrated
40 nm cell's transistor (kp 12.9 uA/V^2, vto 0.09 V: ~30 uA of compliance at 1 V) programs the 8 levels with it
(4 devices per level, all converged, seed 0), where with 20 mV steps only 56 % converged in 100 pulses, the upper
levels stopping short of their targets."""


def rram_from_card(path: str | Path) -> tuple[RRAMParameters, SelectTransistor | None, DeviceCard]:
    """The RRAM of an RRAM device card, its select transistor (None if the card holds none of its parameters) and
    the card as read. What the card holds replaces the default (`RRAMParameters()`, `SelectTransistor()`); what it
    does not hold stays default and is listed in `DeviceCard.defaults`. The card's cell-to-cell spread (a
    log-normal vel0 multiplier) is not this device's variability model (relative normal spreads,
    `RRAMVariability`) and is not used. CardError names the file and the field of a card that cannot be used."""
    card = load_card(path, "rram", CARD_PARAMETERS)
    parts: dict[str, dict[str, float]] = {"rram": {}, "transistor": {}}
    for key, value in card.values.items():
        part, name = key.split(".")
        parts[part][name] = value
    try:
        params = RRAMParameters(**parts["rram"])
        transistor = SelectTransistor(**parts["transistor"]).validate() if parts["transistor"] else None
    except ValueError as err:
        raise CardError(f"device card {card.path}: {err}") from None
    return params, transistor, card


class RRAMDevice:
    """This RRAM as a `cosim.devices.plugins.SynapseDevice`: write-verify programming (`program_levels`; default:
    a 1R cell behind 1 kohm), the sinh read law at the programmed gap for crossbar reads (`rram_read`).

    `with_card` gives the synapse of a calibrated RRAM (an RRAM device card, `rram_from_card`): the card's model
    parameters, and if it holds a select transistor, programming in that 1T1R cell (`CARD_WRITE_VERIFY`); the
    variability and the level mapping stay the defaults."""

    name = "rram"
    read_libraries = (str(NETLIST_LIB),)
    card_kind = "rram"
    """Kind of device card `with_card` takes."""

    def __init__(self, params: RRAMParameters = RRAMParameters(), variability: RRAMVariability = RRAMVariability(),
                 write_verify: WriteVerifyConfig = WriteVerifyConfig(), card: DeviceCard | None = None):
        self.params, self.variability, self.write_verify = params, variability, write_verify
        self.card = card
        """The device card the parameters came from (None: the defaults)."""

    def with_card(self, path: str | Path) -> "RRAMDevice":
        """This synapse with the RRAM (and select transistor) of the RRAM device card at `path`."""
        params, transistor, card = rram_from_card(path)
        write_verify = self.write_verify
        if transistor is not None:
            try:
                write_verify = dataclasses.replace(CARD_WRITE_VERIFY, transistor=transistor)
            except ValueError as err:
                raise CardError(f"device card {path}: its select transistor cannot program: {err}") from None
        return RRAMDevice(params, self.variability, write_verify, card)

    def parameters(self) -> RRAMParameters:
        return self.params

    def sample(self, params: RRAMParameters, n: int, sigma: float, seed: int) -> list[RRAMParameters]:
        """n devices, each of the default variability's parameters with relative spread `sigma` instead."""
        spread = RRAMVariability(d2d=tuple((name, sigma) for name, _ in self.variability.d2d), c2c_vel0=0.0)
        return sample_devices(n, params, spread, np.random.default_rng(seed))

    def characterize(self, out: Path, quick: bool) -> dict:
        return characterize_rram(out, quick, self)

    def mapping(self) -> LevelMapping:
        return LevelMapping()

    def program(self, mapping: LevelMapping, n_devices: int, seed: int, progress: bool) -> ProgrammedLevels:
        return program_levels(n_devices, seed, mapping, self.params, self.variability, self.write_verify,
                              progress=progress)

    read_verilog_a = (str(READ_VA),)
    read_vacask_preamble = ("model rram_read rram_read",)

    def read_card(self, ref: str, a: str, b: str, conductance: float, v_read: float) -> str:
        return f"X{ref} {a} {b} rram_read {self._read_params(conductance, v_read)}"

    def read_card_vacask(self, ref: str, a: str, b: str, conductance: float, v_read: float) -> str:
        return f"X{ref} ({a} {b}) rram_read {self._read_params(conductance, v_read)}"

    def _read_params(self, conductance: float, v_read: float) -> str:
        p = self.params
        gap = float(gap_for_conductance(conductance, v_read, p))
        return f"gap={gap:.9e} i0={number(p.i0)} g0={number(p.g0)} v0={number(p.v0)}"


register_synapse(RRAMDevice())
