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
Incremental step pulse programming with verify (`WriteVerifyConfig`) of a 1T1R cell: the select transistor is
a 1 kohm series resistance. Starting from the fully reset state, a cell gets 10 ns pulses, each followed by a
read at v_read; below the target band it gets a set pulse (positive), above it a reset pulse (negative); the
amplitude starts at 1.2 V and grows by 40 mV per pulse in the same direction, restarting after each change of
direction; a cell whose read falls in ``target +- tolerance`` is done. The series resistance matters: set in
this model is abrupt (the field enhancement and the Joule heating grow as the gap closes), and without it one
set pulse past threshold runs the device to its low-resistance bound (~2 mS at ~70 mA); with it the set is
self-limiting and gradual. The verify read converts the measured cell current at the device voltage to the
device's chord conductance at v_read (`verified_conductance`). The pulses and reads are simulated (full model),
the decisions are taken in Python, as the digital controller of a programming circuit would; each round
simulates one pulse + read for every cell still programming, in chunks through `cosim.spice.run_many`.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from cosim.devices.plugins import register_synapse
from cosim.spice import Circuit, SimJob, Tran, run_many
from cosim.spice.elements import Pwl, Resistor, SubcircuitInstance, VerilogAInstance, VoltageSource, number
from cosim.spice.progress import progress_bar

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_VA = REPO_ROOT / "models" / "rram.va"
"""Verilog-A source of the model (module `rram`)."""
NETLIST_LIB = REPO_ROOT / "netlists" / "rram.lib"
"""ngspice subcircuits `rram` (full model) and `rram_read` (fixed-state read model)."""

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
        names = {f.name for f in dataclasses.fields(RRAMParameters)}
        for name, sigma in self.d2d:
            if name not in names:
                raise ValueError(f"RRAMVariability.d2d: unknown RRAM parameter {name!r}; known: {sorted(names)}")
            if not 0 <= sigma < 0.3:
                raise ValueError(f"RRAMVariability.d2d: sigma of {name} must be in [0, 0.3), got {sigma}")
        if self.c2c_vel0 < 0:
            raise ValueError(f"RRAMVariability.c2c_vel0 must be >= 0, got {self.c2c_vel0}")


def sample_devices(n: int, params: RRAMParameters, variability: RRAMVariability,
                   rng: np.random.Generator) -> list[RRAMParameters]:
    """`n` devices with device-to-device spread drawn from `rng` (one multiplier per listed parameter)."""
    draws = {name: 1.0 + sigma * rng.standard_normal(n) for name, sigma in variability.d2d}
    devices = []
    for k in range(n):
        devices.append(params.replace(**{name: getattr(params, name) * m[k] for name, m in draws.items()}))
    return devices


# ------------------------------------------------------------------------------------------------------ levels


@dataclass(frozen=True)
class LevelMapping:
    """Target conductances of the device levels and their use as differential-pair weights."""

    levels_s: tuple[float, ...] = tuple(10e-6 * (k + 1) for k in range(8))
    """Target chord conductance of each device level at v_read, S, equally spaced, increasing."""
    v_read: float = 0.1
    """Read voltage (verify reads and crossbar input pulses), V."""
    tolerance_s: float = 2e-6
    """Half-width of the verify band around each target, S."""
    weight_max: int = 3
    """Largest weight level of the quantiser: 2^(bits-1) - 1 (3 for 3 bits: levels -3..3)."""

    def __post_init__(self) -> None:
        levels = np.asarray(self.levels_s, dtype=float)
        if levels.size < 2:
            raise ValueError(f"LevelMapping: need at least 2 levels, got {self.levels_s}")
        if np.any(levels <= 0) or np.any(np.diff(levels) <= 0):
            raise ValueError(f"LevelMapping: levels must be positive and increasing, got {self.levels_s} S")
        spacing = np.diff(levels)
        if np.ptp(spacing) > 1e-6 * spacing.mean():
            raise ValueError(f"LevelMapping: levels must be equally spaced (G+ - G- must be linear in the weight), "
                             f"got spacings {spacing} S")
        if not 0 < self.tolerance_s < spacing[0] / 2:
            raise ValueError(f"LevelMapping: tolerance_s must be in (0, spacing/2 = {spacing[0] / 2} S), "
                             f"got {self.tolerance_s} S")
        if self.v_read <= 0:
            raise ValueError(f"LevelMapping: v_read must be > 0 V, got {self.v_read}")
        if not 1 <= self.weight_max <= levels.size - 1:
            raise ValueError(f"LevelMapping: weight_max must be in [1, {levels.size - 1}] for {levels.size} device "
                             f"levels, got {self.weight_max}")

    @property
    def n_levels(self) -> int:
        """Number of device levels."""
        return len(self.levels_s)

    @property
    def spacing_s(self) -> float:
        """Conductance step between adjacent device levels, S."""
        return (self.levels_s[-1] - self.levels_s[0]) / (self.n_levels - 1)

    @property
    def stride(self) -> int:
        """Device levels per weight level: (n_levels - 1) // weight_max."""
        return (self.n_levels - 1) // self.weight_max

    @property
    def weight_step_s(self) -> float:
        """G+ - G- per weight level, S."""
        return self.stride * self.spacing_s

    def check_window(self, params: RRAMParameters) -> None:
        """Raise ValueError unless every target band lies inside the device's conductance window at v_read."""
        low, high = conductance_window(self.v_read, params)
        lo_band, hi_band = self.levels_s[0] - self.tolerance_s, self.levels_s[-1] + self.tolerance_s
        if lo_band <= low or hi_band >= high:
            raise ValueError(
                f"LevelMapping: target bands [{lo_band:.3g}, {hi_band:.3g}] S leave the device window "
                f"({low:.3g}, {high:.3g}) S at v_read = {self.v_read} V (gap_max .. gap_min); move the levels inside")

    def pair_levels(self, q: int) -> tuple[int, int]:
        """Device levels (k+, k-) of weight level `q` in -weight_max..weight_max."""
        k_plus, k_minus = self.pair_indices(np.array(q))
        return int(k_plus), int(k_minus)

    def pair_indices(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Device levels (k+, k-) of an array of integer weight levels, each the shape of `weights`."""
        weights = np.asarray(weights)
        if not np.issubdtype(weights.dtype, np.integer):
            raise ValueError(f"weights must be integer levels, got dtype {weights.dtype}")
        if np.abs(weights).max(initial=0) > self.weight_max:
            raise ValueError(f"weight levels outside -{self.weight_max}..{self.weight_max}")
        return np.where(weights > 0, self.stride * weights, 0), np.where(weights < 0, -self.stride * weights, 0)

    def pair_table(self) -> dict[int, tuple[int, int]]:
        """Weight level -> (k+, k-) for every weight level."""
        return {q: self.pair_levels(q) for q in range(-self.weight_max, self.weight_max + 1)}

    def current_per_level(self, mirror_gain: float) -> float:
        """Neuron input current per weight level and active input, A: mirror_gain v_read (G+ - G-)/q."""
        return mirror_gain * self.v_read * self.weight_step_s

    def to_dict(self) -> dict:
        """JSON-ready description, the pair table included."""
        return {"levels_s": list(self.levels_s), "v_read": self.v_read, "tolerance_s": self.tolerance_s,
                "weight_max": self.weight_max, "stride": self.stride, "weight_step_s": self.weight_step_s,
                "pairs": {str(q): list(p) for q, p in self.pair_table().items()}}


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


def device_circuit(elements: tuple, simulator: Simulator, netlist: str = "", title: str = "rram"):
    """A `cosim.spice.Circuit` of `elements` with the RRAM model attached for `simulator`."""
    if simulator == "ngspice":
        return Circuit(netlist=netlist, title=title, includes=(str(NETLIST_LIB),), elements=elements)
    if simulator == "vacask":
        return Circuit(netlist=netlist, title=title, verilog_a=(str(MODEL_VA),), elements=elements)
    raise ValueError(f"unknown simulator {simulator!r}; use 'ngspice' or 'vacask'")


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


@dataclass(frozen=True)
class WriteVerifyConfig:
    """Incremental step pulse programming with verify reads."""

    pulse_width: float = 10e-9
    """Time on top of each programming pulse, s."""
    edge: float = 1e-9
    """Rise and fall time of pulses and reads, s."""
    read_time: float = 10e-9
    """Duration of the verify read after each pulse (sampled at its end), s."""
    v_start: float = 1.2
    """Amplitude of the first pulse after a change of direction, V (set: +, reset: -)."""
    v_step: float = 0.04
    """Amplitude increment per further pulse in the same direction, V."""
    v_max: float = 3.0
    """Largest pulse amplitude, V."""
    max_pulses: int = 100
    """A device not in its band after this many pulses is reported as not converged."""
    devices_per_job: int = 256
    """Devices simulated side by side in one netlist."""
    r_series: float = 1e3
    """On-resistance of the cell's select transistor (1T1R), in series with the device, ohm; 0: a 1R cell."""

    def __post_init__(self) -> None:
        for name in ("pulse_width", "edge", "read_time", "v_start", "v_step", "v_max"):
            if getattr(self, name) <= 0:
                raise ValueError(f"WriteVerifyConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.v_max < self.v_start:
            raise ValueError(f"WriteVerifyConfig: v_max {self.v_max} V < v_start {self.v_start} V")
        if self.r_series < 0:
            raise ValueError(f"WriteVerifyConfig.r_series must be >= 0 ohm, got {self.r_series}")
        if self.max_pulses < 1 or self.devices_per_job < 1:
            raise ValueError("WriteVerifyConfig: max_pulses and devices_per_job must be >= 1")

    @property
    def duration(self) -> float:
        """Length of one pulse + verify read, s."""
        return 4 * self.edge + self.pulse_width + self.read_time

    def waveform(self, amplitude: float, v_read: float) -> tuple[tuple[float, float], ...]:
        """PWL points of one pulse of `amplitude` V (0: no pulse) followed by a read at `v_read`."""
        e, w = self.edge, self.pulse_width
        t_read = 3 * e + w
        return ((0.0, 0.0), (e, amplitude), (e + w, amplitude), (2 * e + w, 0.0), (t_read, v_read),
                (t_read + self.read_time + e, v_read))


def _round_job(devices: list[RRAMParameters], amplitudes: np.ndarray, v_read: float, config: WriteVerifyConfig,
               simulator: Simulator, label: str):
    """One simulation: each cell gets its pulse then a read. Outputs per cell k, in this order: the gap (nm),
    the source current ``i(vp<k>)`` and the device voltage ``v(te<k>)``."""
    elements = []
    outputs = []
    for k, (device, amplitude) in enumerate(zip(devices, amplitudes)):
        drive = f"n{k}" if config.r_series > 0 else f"te{k}"
        elements.append(VoltageSource(f"Vp{k}", drive, "0", waveform=Pwl(config.waveform(float(amplitude), v_read))))
        if config.r_series > 0:
            elements.append(Resistor(f"Rs{k}", drive, f"te{k}", config.r_series))
        elements.append(rram_element(f"d{k}", f"te{k}", "0", device, simulator))
        outputs += [gap_vector(elements[-1]), f"i(vp{k})", f"v(te{k})"]
    return SimJob(circuit=device_circuit(tuple(elements), simulator, title="rram write-verify round"),
                  analysis=Tran(step=config.edge, stop=config.duration, max_step=config.edge),
                  outputs=tuple(outputs), simulator=simulator, name=label)


def verified_conductance(i_cell: np.ndarray, v_device: np.ndarray, v_read: float, v0: np.ndarray) -> np.ndarray:
    """Device chord conductance at `v_read`, S, from a verify read of cell current `i_cell` (A) at device
    voltage `v_device` (V, below v_read by the series drop): the read law I ~ sinh(V/v0) carries it to v_read."""
    return i_cell / np.sinh(v_device / v0) * np.sinh(v_read / v0) / v_read


@dataclass
class ProgrammedLevels:
    """Outcome of the write-verify Monte Carlo: one row per target level, one column per device."""

    mapping: LevelMapping
    """The targets and the weight mapping."""
    conductance_s: np.ndarray
    """Final verified chord conductance at v_read, S, shape [levels, devices]."""
    pulses: np.ndarray
    """Programming pulses used, shape [levels, devices]."""
    converged: np.ndarray
    """Whether the device ended inside its target band, shape [levels, devices]."""
    trajectories: np.ndarray
    """Conductance after each pulse (index 0: before the first), S, NaN after the end, [levels, devices, pulses+1]."""
    seed: int | None = None
    """Seed of the Monte Carlo draw."""

    @property
    def mean_s(self) -> np.ndarray:
        """Mean programmed conductance per level, S."""
        return self.conductance_s.mean(axis=1)

    @property
    def std_s(self) -> np.ndarray:
        """Standard deviation of the programmed conductance per level, S."""
        return self.conductance_s.std(axis=1, ddof=1)

    @property
    def thresholds_s(self) -> np.ndarray:
        """Decision thresholds between adjacent levels (midpoints of the targets), S."""
        levels = np.asarray(self.mapping.levels_s)
        return (levels[1:] + levels[:-1]) / 2

    @property
    def adjacent_overlap(self) -> np.ndarray:
        """Per adjacent pair (k, k+1): fraction of the two levels' devices on the wrong side of their threshold."""
        g = self.conductance_s
        wrong = (g[:-1] >= self.thresholds_s[:, None]).sum(axis=1) + (g[1:] < self.thresholds_s[:, None]).sum(axis=1)
        return wrong / (2 * g.shape[1])

    @property
    def adjacent_overlap_gaussian(self) -> np.ndarray:
        """The same misclassification fraction for normal distributions with each level's mean and std: an
        estimate that resolves tails the finite sample cannot."""
        from scipy.stats import norm

        mean, std, thr = self.mean_s, self.std_s, self.thresholds_s
        return (norm.sf((thr - mean[:-1]) / std[:-1]) + norm.cdf((thr - mean[1:]) / std[1:])) / 2

    def weight_level_table(self) -> dict[str, list[float]]:
        """Per weight level q = -w..w: mean and spread (std) of G+ and of G-, S; the fields of
        `cosim.snn.synapses.ConductanceLevels`."""
        pairs = [self.mapping.pair_levels(q) for q in range(-self.mapping.weight_max, self.mapping.weight_max + 1)]
        mean, std = self.mean_s, self.std_s
        return {"g_plus": [float(mean[p]) for p, _ in pairs], "g_minus": [float(mean[m]) for _, m in pairs],
                "g_plus_spread": [float(std[p]) for p, _ in pairs], "g_minus_spread": [float(std[m]) for _, m in pairs]}

    def summary(self) -> dict:
        """JSON-ready key figures."""
        return {
            "mapping": self.mapping.to_dict(),
            "devices_per_level": int(self.conductance_s.shape[1]),
            "seed": self.seed,
            "mean_s": self.mean_s.tolist(),
            "std_s": self.std_s.tolist(),
            "adjacent_overlap": self.adjacent_overlap.tolist(),
            "adjacent_overlap_gaussian": self.adjacent_overlap_gaussian.tolist(),
            "converged_fraction": float(self.converged.mean()),
            "pulses_mean": self.pulses.mean(axis=1).tolist(),
            "pulses_max": self.pulses.max(axis=1).tolist(),
            "weight_levels": self.weight_level_table(),
        }

    def sample_pairs(self, weights: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Programmed (G+, G-) in S for integer weight levels `weights`: each device drawn from the Monte Carlo
        population of its level (with replacement)."""
        k_plus, k_minus = self.mapping.pair_indices(weights)
        n = self.conductance_s.shape[1]
        pick = lambda k: self.conductance_s[k, rng.integers(0, n, size=k.shape)]  # noqa: E731
        return pick(k_plus), pick(k_minus)

    def save(self, path: str | Path) -> None:
        """Write arrays (npz) and the summary (json next to it)."""
        path = Path(path)
        np.savez_compressed(path.with_suffix(".npz"), conductance_s=self.conductance_s, pulses=self.pulses,
                            converged=self.converged, trajectories=self.trajectories)
        path.with_suffix(".json").write_text(json.dumps(self.summary(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> "ProgrammedLevels":
        """Read what `save` wrote."""
        path = Path(path)
        summary = json.loads(path.with_suffix(".json").read_text())
        m = summary["mapping"]
        mapping = LevelMapping(tuple(m["levels_s"]), m["v_read"], m["tolerance_s"], m["weight_max"])
        with np.load(path.with_suffix(".npz")) as data:
            return cls(mapping, data["conductance_s"], data["pulses"], data["converged"], data["trajectories"],
                       summary["seed"])


def program_levels(n_devices: int, seed: int, mapping: LevelMapping = LevelMapping(),
                   params: RRAMParameters = RRAMParameters(), variability: RRAMVariability = RRAMVariability(),
                   config: WriteVerifyConfig = WriteVerifyConfig(), simulator: Simulator = "vacask",
                   n_jobs: int | None = None, progress: bool = True) -> ProgrammedLevels:
    """Monte Carlo of write-verify programming: `n_devices` fresh devices per target level.

    Each device starts fully reset (gap_ini = gap_max). Returns the verified conductances, pulse counts and
    trajectories. Parameters are checked before anything is simulated. VACASK (the compiled Verilog-A model) is
    the default simulator: ~7x faster here than the ngspice subcircuit, which it matches (tests/devices).
    """
    if n_devices < 2:
        raise ValueError(f"program_levels: need n_devices >= 2 for a spread, got {n_devices}")
    mapping.check_window(params)
    rng = np.random.default_rng(seed)
    n_levels = mapping.n_levels
    # A sampled device whose window misses its band is not an error: it ends unconverged, as on a wafer.
    devices = sample_devices(n_levels * n_devices, params.replace(gap_ini=params.gap_max), variability, rng)
    target = np.repeat(np.asarray(mapping.levels_s), n_devices)
    gap = np.array([d.gap_ini for d in devices])
    conductance = np.full(target.size, np.nan)
    direction = np.zeros(target.size)
    amplitude = np.zeros(target.size)
    pulses = np.zeros(target.size, dtype=int)
    done = np.zeros(target.size, dtype=bool)
    trajectories = np.full((target.size, config.max_pulses + 1), np.nan)

    bar = progress_bar(total=target.size, desc="rram write-verify", unit="device", enabled=progress)
    for round_ in range(config.max_pulses + 1):
        active = np.flatnonzero(~done)
        if active.size == 0:
            break
        # Round 0 is the initial verify read (amplitude 0); later rounds pulse the devices outside their band.
        pulse_v = np.zeros(active.size) if round_ == 0 else direction[active] * amplitude[active]
        velocity = np.exp(variability.c2c_vel0 * rng.standard_normal(active.size))
        chunks = [active[i:i + config.devices_per_job] for i in range(0, active.size, config.devices_per_job)]
        jobs = []
        for c, chunk in enumerate(chunks):
            offset = c * config.devices_per_job
            # The smooth bounds let the gap overshoot them by a hair; the state carried over stays inside.
            round_devices = [
                devices[k].replace(gap_ini=float(np.clip(gap[k], devices[k].gap_min, devices[k].gap_max)),
                                   vel0=devices[k].vel0 * velocity[offset + j])
                for j, k in enumerate(chunk)]
            jobs.append(_round_job(round_devices, pulse_v[offset:offset + chunk.size], mapping.v_read, config,
                                   simulator, f"rram-wv-r{round_}-c{c}"))
        results = run_many(jobs, n_jobs=n_jobs, progress=False, raise_errors=True)
        for chunk, job, result in zip(chunks, jobs, results):
            final = np.array([result[name][-1] for name in job.outputs]).reshape(chunk.size, 3)
            gap[chunk] = final[:, 0] * 1e-9
            conductance[chunk] = verified_conductance(-final[:, 1], final[:, 2], mapping.v_read,
                                                      np.array([devices[k].v0 for k in chunk]))
        pulses[active] = round_
        trajectories[active, round_] = conductance[active]
        error = conductance[active] - target[active]
        inside = np.abs(error) <= mapping.tolerance_s
        done[active[inside]] = True
        bar.update(int(inside.sum()))
        # ISPP: restart at v_start on a change of direction, else step up to v_max.
        new_direction = np.where(error < 0, 1.0, -1.0)
        same = new_direction == direction[active]
        amplitude[active] = np.where(same, np.minimum(amplitude[active] + config.v_step, config.v_max),
                                     config.v_start)
        direction[active] = new_direction
    bar.close()
    shape = (n_levels, n_devices)
    return ProgrammedLevels(mapping, conductance.reshape(shape), pulses.reshape(shape), done.reshape(shape),
                            trajectories.reshape(n_levels, n_devices, -1), seed)


# ------------------------------------------------------------------------------------------- characterisation


def characterize_rram(out: str | Path, quick: bool = False) -> dict:
    """I-V loops (ngspice and VACASK, three sweep periods), write-verify Monte Carlo of the 8 levels,
    programming trajectories and level histograms: data files, PNG plots and ``summary.json`` in `out`.

    Summary: per-level ``mean_s`` and ``std_s`` (S), ``adjacent_overlap`` (fraction of devices past the midpoint
    threshold, per adjacent pair) and its Gaussian estimate, the level mapping, the Verilog-A vs ngspice I-V
    NRMSE. ``levels.npz``/``levels.json`` hold the programmed population (`ProgrammedLevels.load`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    periods = (20e-6, 100e-6, 500e-6)
    jobs = [iv_loop_job(simulator=sim, period=p) for p in periods for sim in ("ngspice", "vacask")]
    results = run_many(jobs, progress=False, raise_errors=True)
    fig, (ax_lin, ax_log) = plt.subplots(1, 2, figsize=(11, 4.2))
    iv_data, nrmse = {}, {}
    for k, period in enumerate(periods):
        ng, va = results[2 * k], results[2 * k + 1]
        current = -ng["i(vin)"]
        nrmse[f"{period:g}"] = float(np.sqrt(np.mean((current + np.interp(ng.x, va.x, va["i(vin)"])) ** 2))
                                     / np.ptp(current))
        iv_data[f"period_{period:g}_time"], iv_data[f"period_{period:g}_v_te"] = ng.x, ng["v(te)"]
        iv_data[f"period_{period:g}_current"] = current
        label = f"{period * 1e6:g} us sweep"
        line, = ax_lin.plot(ng["v(te)"], current * 1e6, label=f"{label} (ngspice)")
        ax_lin.plot(va["v(te)"], -va["i(vin)"] * 1e6, "--", color=line.get_color(), label=f"{label} (VACASK)")
        ax_log.semilogy(ng["v(te)"], np.abs(current), color=line.get_color())
    np.savez_compressed(out / "iv_loops.npz", **iv_data)
    ax_lin.set(xlabel="device voltage (V)", ylabel="current (uA)", title="RRAM I-V loops (2 kohm series)")
    ax_lin.legend(fontsize=7)
    ax_log.set(xlabel="device voltage (V)", ylabel="|current| (A)", title="log scale")
    fig.tight_layout()
    fig.savefig(out / "iv_loops.png", dpi=120)
    plt.close(fig)

    levels = program_levels(32 if quick else 256, seed=0, progress=True)
    levels.save(out / "levels")
    mapping = levels.mapping

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for k in range(mapping.n_levels):
        for d in range(min(4, levels.trajectories.shape[1])):
            trace = levels.trajectories[k, d]
            ax.plot(np.arange(trace.size), trace * 1e6, color=f"C{k}", lw=0.8)
        ax.axhspan((mapping.levels_s[k] - mapping.tolerance_s) * 1e6, (mapping.levels_s[k] + mapping.tolerance_s) * 1e6,
                   color=f"C{k}", alpha=0.15)
    ax.set(xlabel="programming pulse", ylabel="verified conductance at v_read (uS)",
           title="write-verify trajectories (4 devices per level; bands: targets +- tolerance)",
           xlim=(0, int(levels.pulses.max()) + 1))
    fig.tight_layout()
    fig.savefig(out / "programming_trajectories.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.2))
    bins = np.linspace(mapping.levels_s[0] - mapping.spacing_s / 2, mapping.levels_s[-1] + mapping.spacing_s / 2,
                       8 * mapping.n_levels + 1) * 1e6
    for k in range(mapping.n_levels):
        ax.hist(levels.conductance_s[k] * 1e6, bins=bins, color=f"C{k}", alpha=0.8,
                label=f"L{k}: {levels.mean_s[k] * 1e6:.1f} +- {levels.std_s[k] * 1e6:.2f} uS")
    for threshold in levels.thresholds_s:
        ax.axvline(threshold * 1e6, color="k", lw=0.6, ls=":")
    ax.set(xlabel=f"conductance at {mapping.v_read} V (uS)", ylabel="devices",
           title=f"8 programmed levels, {levels.conductance_s.shape[1]} devices each (dotted: decision thresholds)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "level_histograms.png", dpi=120)
    plt.close(fig)

    summary = {**levels.summary(), "iv_nrmse_vacask_vs_ngspice": nrmse,
               "parameters": dict(RRAMParameters().spice_params()),
               "variability": {"d2d": dict(RRAMVariability().d2d), "c2c_vel0": RRAMVariability().c2c_vel0},
               "write_verify": dataclasses.asdict(WriteVerifyConfig())}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


# ------------------------------------------------------------------------------------------------- the plug-in


class RRAMDevice:
    """This RRAM as a `cosim.devices.plugins.SynapseDevice`: write-verify programming of a 1T1R cell
    (`program_levels`), the sinh read law at the programmed gap for crossbar reads (`rram_read`)."""

    name = "rram"
    read_libraries = (str(NETLIST_LIB),)

    def __init__(self, params: RRAMParameters = RRAMParameters(), variability: RRAMVariability = RRAMVariability(),
                 write_verify: WriteVerifyConfig = WriteVerifyConfig()):
        self.params, self.variability, self.write_verify = params, variability, write_verify

    def parameters(self) -> RRAMParameters:
        return self.params

    def sample(self, params: RRAMParameters, n: int, sigma: float, seed: int) -> list[RRAMParameters]:
        """n devices, each of the default variability's parameters with relative spread `sigma` instead."""
        spread = RRAMVariability(d2d=tuple((name, sigma) for name, _ in self.variability.d2d), c2c_vel0=0.0)
        return sample_devices(n, params, spread, np.random.default_rng(seed))

    def characterize(self, out: Path, quick: bool) -> dict:
        return characterize_rram(out, quick)

    def mapping(self) -> LevelMapping:
        return LevelMapping()

    def program(self, mapping: LevelMapping, n_devices: int, seed: int, progress: bool) -> ProgrammedLevels:
        return program_levels(n_devices, seed, mapping, self.params, self.variability, self.write_verify,
                              progress=progress)

    def read_card(self, ref: str, a: str, b: str, conductance: float, v_read: float) -> str:
        p = self.params
        gap = float(gap_for_conductance(conductance, v_read, p))
        return f"X{ref} {a} {b} rram_read gap={gap:.9e} i0={number(p.i0)} g0={number(p.g0)} v0={number(p.v0)}"


register_synapse(RRAMDevice())
