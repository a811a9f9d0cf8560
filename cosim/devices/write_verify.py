"""Write-verify programming of resistive synapse devices, for any device model: the level mapping, the
programming policy (incremental step pulse programming with verify reads, with a series resistor or a 1T1R select
transistor as the SET limit), the Monte Carlo over a device population and its outcome.

A device model takes part through a `ProgrammableCell`: how to build one device as an element of each simulator,
which result vector is its state, how to start a device in a state, how a verify read becomes the device's chord
conductance at v_read, and which parameter carries the cycle-to-cycle spread. cosim's RRAM
(`cosim.devices.rram.program_levels`) and the JART VCM model (`cosim.devices.jart_vcm`) program through
`program_population` here.

Policy (`WriteVerifyConfig`)
----------------------------
Every device starts in the state its parameters give (a fresh, fully reset device). Round 0 reads every device at
v_read; each later round gives every device still outside ``target +- tolerance`` one pulse and a verify read:
below its band a SET pulse (bit line positive), above it a RESET pulse. The amplitude starts at v_start (RESET:
v_start_reset, if given) and grows by v_step per pulse in the same direction, up to v_max, restarting after each
change of direction. A device in
its band is done; one still outside after max_pulses is reported as not converged. The decisions are taken in
Python, as the digital controller of a programming circuit would; every round simulates one pulse + read for every
device still programming, all of them side by side in one netlist (`devices_per_job` per netlist, through
`cosim.spice.run_many`).

The cell:
- 1R (gate_set None): bit-line driver -- r_series -- device -- ground; a RESET pulse is a negative bit-line pulse.
  The series resistance is the only limit of a SET.
- 1T1R (gate_set given): bit-line driver -- r_series (if > 0) -- device -- select transistor (NMOS, source on the
  source line, bulk at ground). A SET pulses the bit line with the gate at the SET gate voltage, whose saturation
  current is the compliance; the gate starts at gate_set (one value or one per level) and grows by gate_step per
  further SET pulse (incremental gate-voltage programming), restarting with the amplitude. A RESET pulses the
  source line with the gate at gate_on and the bit line at 0 V (driving the bit line negative would forward bias
  the transistor's drain junction). Verify reads have the gate at gate_on.

The verify read measures the bit-line current and the device's voltage (below v_read by the series drop) and the
device's own read law (`ProgrammableCell.verified_conductance`) carries them to its chord conductance at v_read.

Cycle-to-cycle spread: every pulse multiplies the cell's `c2c_parameter` of the pulsed device by a fresh
log-normal factor exp(sigma N(0, 1)) for that pulse only (sigma from the device's variability); device-to-device
spread is drawn once per device (`relative_spread`).
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cosim.devices.select_transistor import Nmos, SelectTransistor, with_transistor
from cosim.spice import Circuit, SimJob, SimResult, Tran, run_many
from cosim.spice.elements import Pwl, Resistor, VoltageSource
from cosim.spice.progress import progress_bar

Simulator = Literal["ngspice", "vacask"]


# ------------------------------------------------------------------------------------------------------ levels


@dataclass(frozen=True)
class LevelMapping:
    """Target conductances of the device levels and their use as differential-pair weights (defaults: cosim's
    RRAM, `cosim.devices.rram`)."""

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

    def check_window(self, window: tuple[float, float]) -> None:
        """Raise ValueError unless every target band lies inside the device's conductance window at v_read:
        (lowest, highest) chord conductance, S."""
        low, high = window
        lo_band, hi_band = self.levels_s[0] - self.tolerance_s, self.levels_s[-1] + self.tolerance_s
        if lo_band <= low or hi_band >= high:
            raise ValueError(
                f"LevelMapping: target bands [{lo_band:.3g}, {hi_band:.3g}] S leave the device window "
                f"({low:.3g}, {high:.3g}) S at v_read = {self.v_read} V; move the levels inside")

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


# ------------------------------------------------------------------------------------------------ write-verify


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
    v_start_reset: float | None = None
    """Amplitude of the first RESET pulse after a change of direction, V, where it differs from v_start."""
    v_step: float = 0.04
    """Amplitude increment per further pulse in the same direction, V."""
    v_max: float = 3.0
    """Largest pulse amplitude, V."""
    max_pulses: int = 100
    """A device not in its band after this many pulses is reported as not converged."""
    devices_per_job: int = 256
    """Devices simulated side by side in one netlist."""
    r_series: float = 1e3
    """Resistance between the bit-line driver and the device, ohm: without a transistor (gate_set None) it stands
    for the select transistor's on-resistance and is the only limit of a SET; 0: none."""
    gate_set: float | tuple[float, ...] | None = None
    """1T1R cell: gate voltage of the select transistor during SET pulses, V, which sets the compliance current
    (`cosim.devices.select_transistor`); one value for every level or one per level of the mapping (the
    controller's table). None: no transistor (a 1R cell behind `r_series`)."""
    gate_step: float = 0.0
    """Increase of the SET gate voltage per further SET pulse in the same direction, V (incremental gate-voltage
    programming); it restarts at gate_set with the amplitude."""
    gate_max: float = 3.0
    """Largest SET gate voltage, V."""
    gate_on: float = 3.0
    """Gate voltage during RESET pulses and verify reads (the transistor fully on), V."""
    transistor: SelectTransistor = SelectTransistor()
    """The select transistor of the 1T1R cell (used when gate_set is not None)."""

    def __post_init__(self) -> None:
        for name in ("pulse_width", "edge", "read_time", "v_start", "v_max", "gate_max", "gate_on"):
            if getattr(self, name) <= 0:
                raise ValueError(f"WriteVerifyConfig.{name} must be > 0, got {getattr(self, name)}")
        for name in ("v_step", "gate_step", "r_series"):
            if getattr(self, name) < 0:
                raise ValueError(f"WriteVerifyConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.v_max < max(self.v_start, self.reset_start):
            raise ValueError(f"WriteVerifyConfig: v_max {self.v_max} V < v_start {self.v_start} V or v_start_reset "
                             f"{self.v_start_reset} V")
        if self.reset_start <= 0:
            raise ValueError(f"WriteVerifyConfig.v_start_reset must be > 0, got {self.v_start_reset}")
        if self.max_pulses < 1 or self.devices_per_job < 1:
            raise ValueError("WriteVerifyConfig: max_pulses and devices_per_job must be >= 1")
        if self.gate_set is not None:
            gates = np.atleast_1d(np.asarray(self.gate_set, dtype=float))
            if gates.size == 0 or np.any(gates <= self.transistor.vto) or np.any(gates > self.gate_max):
                raise ValueError(f"WriteVerifyConfig.gate_set must lie in (vto = {self.transistor.vto} V, gate_max = "
                                 f"{self.gate_max} V], got {self.gate_set}")
            self.transistor.validate()

    @property
    def reset_start(self) -> float:
        """Amplitude of the first RESET pulse after a change of direction, V."""
        return self.v_start if self.v_start_reset is None else self.v_start_reset

    def set_gates(self, mapping: LevelMapping) -> np.ndarray:
        """The first SET gate voltage of each level of `mapping`, V (gate_set must not be None)."""
        gates = np.asarray(self.gate_set, dtype=float)
        if gates.ndim == 0:
            return np.full(mapping.n_levels, float(gates))
        if gates.shape != (mapping.n_levels,):
            raise ValueError(f"WriteVerifyConfig.gate_set has {gates.size} gate voltages for {mapping.n_levels} "
                             "levels: give one, or one per level")
        return gates

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

    def gate_waveform(self, gate: float) -> tuple[tuple[float, float], ...]:
        """PWL points of the gate: `gate` V through the pulse, gate_on from the end of the pulse into the read."""
        e, w = self.edge, self.pulse_width
        return ((0.0, gate), (2 * e + w, gate), (3 * e + w, self.gate_on))


# --------------------------------------------------------------------------------------------------- the device


@dataclass(frozen=True)
class ProgrammableCell:
    """What write-verify needs to know of a device model."""

    name: str
    """Label of the model in job names and the progress bar, e.g. "rram"."""
    element: Callable[[str, str, str, Any, Simulator], Any]
    """(instance name, te node, be node, parameters, simulator) -> the device as an element of that simulator's
    circuit; SET at V(te, be) > 0."""
    files: Callable[[Simulator], dict[str, tuple[str, ...]]]
    """simulator -> the Circuit fields the model needs ({"includes": ...} or {"verilog_a": ...})."""
    state_vector: Callable[[Any], str]
    """element -> the result vector of its state (e.g. "v(xd0.gap)")."""
    start: Callable[[Any, float], Any]
    """(parameters, state as the state vector reads it) -> the parameters of that device starting in that state."""
    verified_conductance: Callable[[np.ndarray, np.ndarray, float, Sequence[Any]], np.ndarray]
    """(cell currents A, device voltages V, v_read V, the devices' parameters) -> their chord conductances at
    v_read, S: a verify read carried to v_read by the device's read law."""
    c2c_parameter: str
    """Parameter multiplied by a fresh log-normal factor on every pulse (cycle-to-cycle spread)."""
    method: Literal["trap", "gear"] | None = None
    """Integration method the model's transients need (None: the simulator's default)."""


def relative_spread(n: int, params: Any, d2d: Sequence[tuple[str, float]], rng: np.random.Generator) -> list[Any]:
    """`n` copies of the parameter dataclass `params` with device-to-device spread: each parameter named in `d2d`
    (name, relative sigma) multiplied once per device by 1 + sigma N(0, 1), drawn from `rng`."""
    draws = {name: 1.0 + sigma * rng.standard_normal(n) for name, sigma in d2d}
    return [dataclasses.replace(params, **{name: getattr(params, name) * m[k] for name, m in draws.items()})
            for k in range(n)]


def check_spreads(d2d: Sequence[tuple[str, float]], params_type: type, owner: str, device: str) -> None:
    """ValueError unless every (name, sigma) of `d2d` names a field of the dataclass `params_type` and sigma is in
    [0, 0.3); `owner` names the setting, `device` the model in the message."""
    names = {f.name for f in dataclasses.fields(params_type)}
    for name, sigma in d2d:
        if name not in names:
            raise ValueError(f"{owner}: unknown {device} parameter {name!r}; known: {sorted(names)}")
        if not 0 <= sigma < 0.3:
            raise ValueError(f"{owner}: sigma of {name} must be in [0, 0.3), got {sigma}")


def round_job(cell: ProgrammableCell, devices: Sequence[Any], amplitudes: np.ndarray, gates: np.ndarray,
              v_read: float, config: WriteVerifyConfig, simulator: Simulator, label: str) -> SimJob:
    """One simulation: each device gets its pulse (amplitude V: > 0 SET, < 0 RESET, 0 none; SET gate voltage V
    in a 1T1R cell) then a read at `v_read`. Outputs per device k, in this order: its state, the bit-line current
    ``i(vp<k>)``, the voltage ``v(te<k>)`` of its te and, in a 1T1R cell, ``v(c<k>)`` of its be."""
    one_t = config.gate_set is not None
    elements, outputs = [], []
    for k, (device, amplitude, gate) in enumerate(zip(devices, amplitudes, gates)):
        amplitude = float(amplitude)
        drive = f"n{k}" if config.r_series > 0 else f"te{k}"
        # 1T1R: a RESET drives the source line, the bit line only reads
        bit_line = 0.0 if one_t and amplitude < 0 else amplitude
        elements.append(VoltageSource(f"Vp{k}", drive, "0", waveform=Pwl(config.waveform(bit_line, v_read))))
        if config.r_series > 0:
            elements.append(Resistor(f"Rs{k}", drive, f"te{k}", config.r_series))
        elements.append(cell.element(f"d{k}", f"te{k}", f"c{k}" if one_t else "0", device, simulator))
        outputs += [cell.state_vector(elements[-1]), f"i(vp{k})", f"v(te{k})"]
        if one_t:
            source_line = Pwl(config.waveform(-amplitude, 0.0)) if amplitude < 0 else None
            gate_line = Pwl(config.gate_waveform(float(gate))) if amplitude > 0 else None
            elements += [Nmos(f"M{k}", f"c{k}", f"wl{k}", f"sl{k}", "0", config.transistor),
                         VoltageSource(f"Vg{k}", f"wl{k}", "0", dc=config.gate_on, waveform=gate_line),
                         VoltageSource(f"Vs{k}", f"sl{k}", "0", waveform=source_line)]
            outputs.append(f"v(c{k})")
    files = with_transistor(cell.files(simulator), simulator) if one_t else cell.files(simulator)
    return SimJob(circuit=Circuit(netlist="", title=f"{cell.name} write-verify round", elements=tuple(elements),
                                  **files),
                  analysis=Tran(step=config.edge, stop=config.duration, max_step=config.edge, method=cell.method),
                  outputs=tuple(outputs), simulator=simulator, name=label)


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


def program_population(cell: ProgrammableCell, devices: Sequence[Any], mapping: LevelMapping,
                       config: WriteVerifyConfig, c2c_sigma: float, rng: np.random.Generator,
                       simulator: Simulator = "vacask", n_jobs: int | None = None, progress: bool = True,
                       seed: int | None = None) -> ProgrammedLevels:
    """Write-verify Monte Carlo (module docstring): `devices` (parameters, each in its start state) hold
    n_devices per level of `mapping`, level by level; `rng` draws the cycle-to-cycle factors of `c2c_sigma`;
    `seed` is recorded in the result."""
    n_levels = mapping.n_levels
    if len(devices) % n_levels or len(devices) < 2 * n_levels:
        raise ValueError(f"program_population: need n_devices >= 2 per level, the same for each of the {n_levels} "
                         f"levels, got {len(devices)} devices")
    if c2c_sigma < 0:
        raise ValueError(f"program_population: c2c_sigma must be >= 0, got {c2c_sigma}")
    n_devices = len(devices) // n_levels
    target = np.repeat(np.asarray(mapping.levels_s), n_devices)
    gate_start = (np.repeat(config.set_gates(mapping), n_devices) if config.gate_set is not None
                  else np.zeros(target.size))
    current = list(devices)
    conductance = np.full(target.size, np.nan)
    direction = np.zeros(target.size)
    amplitude = np.zeros(target.size)
    gate = np.zeros(target.size)
    pulses = np.zeros(target.size, dtype=int)
    done = np.zeros(target.size, dtype=bool)
    trajectories = np.full((target.size, config.max_pulses + 1), np.nan)
    per_device = 3 + (config.gate_set is not None)

    bar = progress_bar(total=target.size, desc=f"{cell.name} write-verify", unit="device", enabled=progress)
    for round_ in range(config.max_pulses + 1):
        active = np.flatnonzero(~done)
        if active.size == 0:
            break
        # Round 0 is the initial verify read (amplitude 0); later rounds pulse the devices outside their band.
        pulse_v = np.zeros(active.size) if round_ == 0 else direction[active] * amplitude[active]
        factor = np.exp(c2c_sigma * rng.standard_normal(active.size))
        chunks = [active[i:i + config.devices_per_job] for i in range(0, active.size, config.devices_per_job)]
        jobs, pulsed = [], []
        for c, chunk in enumerate(chunks):
            offset = c * config.devices_per_job
            round_devices = [dataclasses.replace(current[k], **{
                cell.c2c_parameter: getattr(current[k], cell.c2c_parameter) * factor[offset + j]})
                for j, k in enumerate(chunk)]
            pulsed.append(round_devices)
            jobs.append(round_job(cell, round_devices, pulse_v[offset:offset + chunk.size], gate[chunk],
                                  mapping.v_read, config, simulator, f"{cell.name}-wv-r{round_}-c{c}"))
        results = run_many(jobs, n_jobs=n_jobs, progress=False, raise_errors=True)
        for chunk, job, result, round_devices in zip(chunks, jobs, results, pulsed):
            final = np.array([result[name][-1] for name in job.outputs]).reshape(chunk.size, per_device)
            for k, state in zip(chunk, final[:, 0]):
                current[k] = cell.start(current[k], float(state))
            v_device = final[:, 2] - final[:, 3] if per_device == 4 else final[:, 2]
            conductance[chunk] = cell.verified_conductance(-final[:, 1], v_device, mapping.v_read, round_devices)
        pulses[active] = round_
        trajectories[active, round_] = conductance[active]
        error = conductance[active] - target[active]
        inside = np.abs(error) <= mapping.tolerance_s
        done[active[inside]] = True
        bar.update(int(inside.sum()))
        # ISPP: restart at v_start (and the level's first SET gate) on a change of direction, else step up.
        new_direction = np.where(error < 0, 1.0, -1.0)
        same = new_direction == direction[active]
        amplitude[active] = np.where(same, np.minimum(amplitude[active] + config.v_step, config.v_max),
                                     np.where(new_direction > 0, config.v_start, config.reset_start))
        gate[active] = np.where(same, np.minimum(gate[active] + config.gate_step, config.gate_max),
                                gate_start[active])
        direction[active] = new_direction
    bar.close()
    shape = (n_levels, n_devices)
    return ProgrammedLevels(mapping, conductance.reshape(shape), pulses.reshape(shape), done.reshape(shape),
                            trajectories.reshape(n_levels, n_devices, -1), seed)


# ------------------------------------------------------------------------------------------- characterisation


def pyplot():
    """matplotlib.pyplot on the Agg back end (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_iv_loops(loops: dict[str, tuple[SimResult, SimResult]], out: Path, title: str) -> dict[str, float]:
    """I-V loops of a device through a series resistor, each on ngspice and on VACASK (vectors ``v(te)``, the
    device voltage, and ``i(vin)``, minus the current): ``iv_loops.npz`` (per loop: time, device voltage and
    current of ngspice) and ``iv_loops.png`` (linear and log current) in `out`. Returns per loop label the
    normalised RMS difference of the two simulators' currents, compared on a uniform time grid (the simulators'
    own time points crowd where the device switches)."""
    plt = pyplot()
    fig, (ax_lin, ax_log) = plt.subplots(1, 2, figsize=(11, 4.2))
    data, nrmse = {}, {}
    for label, (ng, va) in loops.items():
        grid = np.linspace(0.0, ng.x[-1], 4001)
        current = -np.interp(grid, ng.x, ng["i(vin)"])
        nrmse[label] = float(np.sqrt(np.mean((current + np.interp(grid, va.x, va["i(vin)"])) ** 2)) / np.ptp(current))
        data[f"{label}_time"], data[f"{label}_v_te"], data[f"{label}_current"] = ng.x, ng["v(te)"], -ng["i(vin)"]
        line, = ax_lin.plot(ng["v(te)"], -ng["i(vin)"] * 1e6, label=f"{label} (ngspice)")
        ax_lin.plot(va["v(te)"], -va["i(vin)"] * 1e6, "--", color=line.get_color(), label=f"{label} (VACASK)")
        ax_log.semilogy(ng["v(te)"], np.abs(ng["i(vin)"]), color=line.get_color())
    np.savez_compressed(out / "iv_loops.npz", **data)
    ax_lin.set(xlabel="device voltage (V)", ylabel="current (uA)", title=title)
    ax_lin.legend(fontsize=7)
    ax_log.set(xlabel="device voltage (V)", ylabel="|current| (A)", title="log scale")
    fig.tight_layout()
    fig.savefig(out / "iv_loops.png", dpi=120)
    plt.close(fig)
    return nrmse


def plot_programming(levels: ProgrammedLevels, out: Path, device: str) -> None:
    """``programming_trajectories.png`` (verified conductance after each pulse, 4 devices per level, the target
    bands) and ``level_histograms.png`` (the programmed population per level, the decision thresholds) in `out`."""
    plt = pyplot()
    mapping = levels.mapping
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for k in range(mapping.n_levels):
        for d in range(min(4, levels.trajectories.shape[1])):
            trace = levels.trajectories[k, d]
            ax.plot(np.arange(trace.size), trace * 1e6, color=f"C{k}", lw=0.8, marker=".", ms=3)
        ax.axhspan((mapping.levels_s[k] - mapping.tolerance_s) * 1e6, (mapping.levels_s[k] + mapping.tolerance_s) * 1e6,
                   color=f"C{k}", alpha=0.15)
    ax.set(xlabel="programming pulse", ylabel=f"verified conductance at {mapping.v_read} V (uS)",
           title=f"{device} write-verify, 4 devices per level (bands: targets +- tolerance)",
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
           title=f"{device}: {mapping.n_levels} programmed levels, {levels.conductance_s.shape[1]} devices each "
                 "(dotted: decision thresholds)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "level_histograms.png", dpi=120)
    plt.close(fig)
