"""Calibration of the RRAM gap model (`cosim.devices.rram`) in a 1T1R cell (`cosim.devices.select_transistor`) to
single-pulse SET/RESET measurements, and write-verify programming of the calibrated cell.

The measurement simulated: a cell in the state its read before the pulse shows (`r_before`) gets one pulse: the
bit line (SET) or the source line (RESET) at its voltage, the word line (the select transistor's gate) at its
voltage for the pulse width; then it is read (bit line at READ_BL_V, gate at READ_WL_V, source line at 0 V) and
the read resistance V/I compared with `r_after`. The read resistance is the device's and the transistor's
together, as the set-up measures it.

Fast path: during a pulse the biases are constant and the gap g is the only state, so dg/dt = f(g) and the time
to move from g_a to g_b is the integral of dg/|f(g)|. The cell node voltage V_c parameterises the path: for a
given V_c the transistor's current I(V_c) is the device's current, so the gap is explicit,
g = g0 ln(i0 sinh(|V_d|/v0) / I), and the gap speed follows from the model's equations. A pulse is one cumulative
integral over a grid of V_c from the starting state towards the gap bound, interpolated at the pulse width: no
time stepping, exact up to the grid. The equations are those of models/rram.va and the level-1 NMOS of
`SelectTransistor` (symmetric in drain and source, no body effect). SPICE (the `rram` subcircuit and the level-1
MOSFET on ngspice, or VACASK) confirms a sample of the pulses.

What is fitted (scipy least_squares on log10(R_after), in log space where a parameter spans decades; the model
runs each fitted cell's pulses in the file's order from that cell's first read, carrying its state from pulse to
pulse as a program-and-verify ramp does, `predict_chained`): the gap
velocity vel0, the field threshold f_min and the field enhancement gamma0 of the device, its thermal resistance
rth, and the transistor's threshold vto and transconductance kp (its w/l held). Held: the read law (i0, g0, v0:
with the gap hidden only their combination with the gap is seen), the activation energy and hopping distance,
the gap window (gap_max widened to GAP_MAX so that the measured high-resistance states fit in it).

Hold-out: every HOLDOUT_EVERY-th cell (in measurement order) is not fitted; errors: median |log10(R_after model /
R_after measured)| over held-out pulses, over those that switched (|log10(R_after / R_before)| > SWITCHED), and
the same for "nothing changes" (R_after = R_before) as the baseline a model has to beat.

Cell-to-cell spread: after the population fit, each fitted cell gets its own vel0 multiplier (the best of a
log-spaced grid); the log-normal spread of these is the card's d2d spread of vel0.

Program-and-verify: the measured file (chip 4 of the same set-up, programmed on 2021-02-05) was written with the
operating conditions the set-up's authors list for that week (source repository, presentations/Updates 2-4-21.pptx,
slide "Operation conditions"; the chip's LabVIEW front panel keeps the bands [0, 11] and [70, 90] kohm): the cells
were FORMed first (gate stepped 0.9 .. 1.5 V in 0.05 V, bit line 2 .. 4 V in 0.5 V inside, 2 ms pulses, until the
read is below 50 kohm), then each attempt reads the cell and, above the band, runs a dynamic SET (bit line 2.0 V,
gate 0.9 .. 1.5 V in 0.1 V, 10 us, a read after each pulse, until the read is below the band's top), below it a
dynamic RESET (source line 3.0 V, gate 0.9 .. 1.5 V in 0.1 V, 10 us, until the read is above the band's bottom),
until the read lies in the band (`ProgramVerifyProtocol`). Simulated on the fast path for a population of
calibrated cells with the fitted spread, from the pristine state through the FORM; compared with the measured SET +
RESET pulses of the first pass per band. `protocol_check` asks the single-pulse data whether their cells respond
to the protocol's pulses at all (the sweeps are of another chip, chip 9).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
from scipy.optimize import least_squares

from cosim.calibrate.card import FitOutcome, fit_outcome, provenance, report_head, report_tail
from cosim.calibrate.readers import Operation, ProgramVerifyData, PulseData
from cosim.devices.rram import RRAMParameters, gap_vector, model_files, rram_element
from cosim.devices.select_transistor import SelectTransistor, one_t_one_r
from cosim.spice import SimJob, Tran, run_many
from cosim.spice.elements import Pwl

Simulator = Literal["ngspice", "vacask"]

Q_E = 1.602176634e-19
"""Elementary charge, C."""
K_B = 1.380649e-23
"""Boltzmann constant, J/K."""

READ_BL_V = 0.2
"""Bit-line voltage of a read, V (the set-up's default)."""
READ_WL_V = 2.5
"""Gate voltage of a read, V (the set-up's Python controller's default, settings/default.json)."""
GAP_MAX = 2.5e-9
"""Largest gap of the calibrated device, m: the read resistance there (~5 Mohm) spans the measured HRS."""
HOLDOUT_EVERY = 4
"""Every 4th cell (in measurement order) is held out."""
SWITCHED = 0.3
"""A pulse switched the cell when |log10(R_after / R_before)| exceeds this (a factor 2)."""
GRID = 96
"""Points of the V_c grid of one pulse."""
FIT_ROWS = 4000
"""Pulses per file the optimiser evaluates: the fitted cells' pulses, or a seeded sample of whole cells with
about this many pulses; all are evaluated at the end."""
EDGE = 100e-9
"""Rise and fall of the gate pulse in the SPICE confirmation, s."""

BOUNDS = {
    # name: (owner, unit, low, high, log scale, what)
    "vel0": ("rram", "m/s", 1e-3, 1e6, True, "gap velocity prefactor"),
    "f_min": ("rram", "V/m", 0.2e9, 3e9, False, "field threshold of gap motion"),
    "gamma0": ("rram", "", 4.5, 40.0, False, "field enhancement at zero gap (above beta (GAP_MAX/g1)^3)"),
    "g0": ("rram", "m", 0.1e-9, 0.6e-9, True, "gap decay length of the read current"),
    "rth": ("rram", "K/W", 1e2, 1e6, True, "thermal resistance of the filament"),
    "vto": ("transistor", "V", 0.05, 1.5, False, "select transistor threshold voltage"),
    "kp": ("transistor", "A/V^2", 1e-6, 1e-2, True, "select transistor transconductance parameter"),
}
"""Parameters the calibration fits, with their search bounds."""


@dataclass(frozen=True)
class Cell:
    """A 1T1R cell: the device and its select transistor."""

    device: RRAMParameters = RRAMParameters(gap_max=GAP_MAX, gap_ini=GAP_MAX, beta=0.8 * (1.7e-9 / GAP_MAX) ** 3)
    """The RRAM device: the published set with the gap window widened to GAP_MAX and the field enhancement's
    decay beta scaled by (1.7 nm / GAP_MAX)^3, so that the enhancement at the window's top stays the published
    one (12.1) instead of collapsing (the published beta would leave 3.5 at 2.5 nm: no SET from deep HRS)."""
    transistor: SelectTransistor = SelectTransistor()
    """The select transistor."""

    def replace(self, **values: float) -> "Cell":
        """A copy with parameters (device or transistor, by name) changed."""
        device = {k: v for k, v in values.items() if BOUNDS.get(k, ("rram",))[0] == "rram"}
        transistor = {k: v for k, v in values.items() if k not in device}
        return Cell(self.device.replace(**device), dataclasses.replace(self.transistor, **transistor))

    def value(self, name: str) -> float:
        """A parameter by name (device or transistor)."""
        owner = self.device if BOUNDS.get(name, ("rram",))[0] == "rram" else self.transistor
        return float(getattr(owner, name))


# ----------------------------------------------------------------------------------------------- fast path


def nmos_current(t: SelectTransistor, v_gs: np.ndarray, v_ds: np.ndarray) -> np.ndarray:
    """Level-1 drain current for v_ds >= 0, A (models/nmos_level1.va)."""
    vov = np.maximum(v_gs - t.vto, 0.0)
    linear = t.beta * v_ds * (vov - v_ds / 2)
    saturated = t.beta / 2 * vov ** 2
    return np.where(v_ds < vov, linear, saturated) * (1 + t.lam * v_ds)


def _branch(cell: Cell, operation: Operation, v_line: np.ndarray, v_wl: np.ndarray, v_c: np.ndarray):
    """(|device voltage|, current) of a pulse (or read: a SET geometry) at cell-node voltage v_c."""
    if operation == "set":  # bit line -> device -> cell -> transistor -> source line at 0
        return v_line - v_c, nmos_current(cell.transistor, v_wl, v_c)
    # source line -> transistor (the cell node its source) -> cell -> device -> bit line at 0
    return v_c, nmos_current(cell.transistor, v_wl - v_c, v_line - v_c)


def _gap(cell: Cell, u: np.ndarray, current: np.ndarray) -> np.ndarray:
    """The gap (m) at which the device carries `current` (A) at |voltage| u (V)."""
    d = cell.device
    with np.errstate(divide="ignore", invalid="ignore"):
        return d.g0 * np.log(d.i0 * np.sinh(u / d.v0) / current)


def _solve_vc(cell: Cell, operation: Operation, v_line, v_wl, gap, iterations: int = 50) -> np.ndarray:
    """The cell-node voltage at which the device of gap `gap` and the transistor carry the same current
    (bisection on (0, v_line): the gap falls with V_c in a SET geometry and rises in a RESET)."""
    low, high = np.zeros_like(v_line), np.array(v_line, dtype=float)
    rising = operation == "reset"
    for _ in range(iterations):
        mid = 0.5 * (low + high)
        g = _gap(cell, *_branch(cell, operation, v_line, v_wl, mid))
        above = (g < gap) if rising else (g > gap)  # mid is below the solution
        low, high = np.where(above, mid, low), np.where(above, high, mid)
    return 0.5 * (low + high)


def read_resistance(cell: Cell, gap: np.ndarray) -> np.ndarray:
    """Read resistance (device + transistor) of devices of gap `gap` (m), ohm."""
    v = np.full_like(np.asarray(gap, dtype=float), READ_BL_V)
    v_c = _solve_vc(cell, "set", v, np.full_like(v, READ_WL_V), gap)
    return READ_BL_V / nmos_current(cell.transistor, np.full_like(v, READ_WL_V), v_c)


def gap_from_resistance(cell: Cell, resistance: np.ndarray) -> np.ndarray:
    """The gap (m) whose read resistance is `resistance` (ohm), kept inside the device's window."""
    current = READ_BL_V / np.asarray(resistance, dtype=float)
    low, high = np.zeros_like(current), np.full_like(current, READ_BL_V)
    for _ in range(50):  # transistor current rises with the cell node voltage
        mid = 0.5 * (low + high)
        below = nmos_current(cell.transistor, np.full_like(mid, READ_WL_V), mid) < current
        low, high = np.where(below, mid, low), np.where(below, high, mid)
    gap = _gap(cell, READ_BL_V - 0.5 * (low + high), current)
    return np.clip(np.nan_to_num(gap, nan=cell.device.gap_min), cell.device.gap_min, cell.device.gap_max)


def gap_speed(cell: Cell, u: np.ndarray, current: np.ndarray, gap: np.ndarray, operation: Operation) -> np.ndarray:
    """|dg/dt| (m/s) of the gap model at |device voltage| u, current and gap, in the pulse's direction."""
    d = cell.device
    temp = d.t0 + np.abs(u * current) * d.rth
    gamma = d.gamma0 - d.beta * (gap / d.g1) ** 3
    with np.errstate(over="ignore"):
        gate = 1 / (1 + np.exp(-(gamma * u / d.tox - d.f_min) / d.f_width))
        speed = d.vel0 * np.exp(-d.ea * Q_E / (K_B * temp)) * np.sinh(gamma * d.a0 * Q_E * u / (d.tox * K_B * temp))
    room = gap - d.gap_min if operation == "set" else d.gap_max - gap
    with np.errstate(invalid="ignore"):  # an overflowing speed at the bound, where the window is 0: not moving
        return np.nan_to_num(speed * gate * np.maximum(np.tanh(room / d.gap_width), 0.0), nan=0.0)


def pulse_gap(cell: Cell, operation: Operation, v_line: np.ndarray, v_wl: np.ndarray, width: np.ndarray,
              gap: np.ndarray) -> np.ndarray:
    """The gap (m) after rectangular pulses (line voltage v_line on the bit line for a SET, on the source line
    for a RESET; gate v_wl; width in s) from `gap`; the module docstring has the method."""
    v_line, v_wl, width, gap = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (v_line, v_wl, width, gap)))
    d = cell.device
    bound = d.gap_min if operation == "set" else d.gap_max
    on = (v_line > 0) & (v_wl - cell.transistor.vto > 0)
    start = _solve_vc(cell, operation, v_line, v_wl, gap)
    end = _solve_vc(cell, operation, v_line, v_wl, np.full_like(gap, bound))
    fraction = np.linspace(0.0, 1.0, GRID)
    v_c = start[:, None] + (end - start)[:, None] * fraction[None, :]
    u, current = _branch(cell, operation, v_line[:, None], v_wl[:, None], v_c)
    g = _gap(cell, u, current)
    g[:, 0] = gap
    g = np.minimum.accumulate(g, axis=1) if operation == "set" else np.maximum.accumulate(g, axis=1)
    speed = gap_speed(cell, u, current, g, operation)
    with np.errstate(divide="ignore", invalid="ignore"):
        slowness = np.where(speed > 0, 1 / speed, np.inf)
        dt = np.abs(np.diff(g, axis=1)) * 0.5 * (slowness[:, 1:] + slowness[:, :-1])
    dt = np.nan_to_num(dt, nan=0.0)
    elapsed = np.concatenate([np.zeros((g.shape[0], 1)), np.cumsum(dt, axis=1)], axis=1)
    rows = np.arange(g.shape[0])
    k = np.clip(np.sum(elapsed <= width[:, None], axis=1) - 1, 0, GRID - 2)
    t0, t1 = elapsed[rows, k], elapsed[rows, k + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.clip(np.nan_to_num((width - t0) / (t1 - t0), nan=0.0, posinf=0.0), 0.0, 1.0)
    reached = g[rows, k] + fraction * (g[rows, k + 1] - g[rows, k])
    return np.where(on, reached, gap)


def predict(cell: Cell, pulses: PulseData) -> np.ndarray:
    """Model read resistance after each pulse of `pulses`, from its measured resistance before, ohm."""
    before = gap_from_resistance(cell, pulses.r_before)
    after = pulse_gap(cell, pulses.operation, pulses.v_pulse, pulses.v_wl, pulses.width, before)
    return read_resistance(cell, after)


# -------------------------------------------------------------------------------------------------- SPICE


READ_TIME = 1e-6
"""Duration of the read after a pulse in SPICE (sampled at its end), s."""


def pulse_job(cell: Cell, operation: Operation, v_line: float, v_wl: float, width: float, gap: float,
              simulator: Simulator, name: str) -> SimJob:
    """One pulse and read of a 1T1R cell whose device starts at `gap` (m), as `predict` computes it: the line
    (bit line for a SET, source line for a RESET) rises to v_line, the gate pulses to v_wl for `width` s (EDGE
    ramps), the line returns to 0, then the read (bit line READ_BL_V, gate READ_WL_V). Vectors ``i(vbl)``,
    ``v(bl)`` and the gap (nm)."""
    e = EDGE
    t_gate, t_off = 2 * e, 3 * e + width
    t_read = t_off + 3 * e
    end = t_read + e + READ_TIME
    gate = Pwl(((0.0, 0.0), (t_gate, 0.0), (t_gate + e, v_wl), (t_off, v_wl), (t_off + e, 0.0), (t_read, 0.0),
                (t_read + e, READ_WL_V), (end, READ_WL_V)))
    pulse = ((0.0, 0.0), (e, v_line), (t_off + e, v_line), (t_off + 2 * e, 0.0))
    read = ((t_read, 0.0), (t_read + e, READ_BL_V), (end, READ_BL_V))
    if operation == "set":
        bit_line, source_line = Pwl(pulse + read), 0.0
    else:
        bit_line, source_line = Pwl(((0.0, 0.0),) + read), Pwl(pulse + ((end, 0.0),))
    device = cell.device.replace(gap_ini=float(np.clip(gap, cell.device.gap_min, cell.device.gap_max)))
    element = rram_element("dut", "bl", "cell", device, simulator)
    circuit = one_t_one_r(lambda n, te, be: rram_element(n, te, be, device, simulator), model_files(simulator),
                          simulator=simulator, gate=gate, bit_line=bit_line, source_line=source_line,
                          transistor=cell.transistor, title=name)
    step = min(width / 50, e)
    return SimJob(circuit, Tran(step=step, stop=end, max_step=max(step, e), method="gear"),
                  outputs=("i(vbl)", "v(bl)", gap_vector(element)), simulator=simulator, name=name)


# ---------------------------------------------------------------------------------------------------- fitting


def held_out(pulses: PulseData) -> np.ndarray:
    """Rows of the held-out cells: every HOLDOUT_EVERY-th cell in the order the file measures them (in the NI
    sweeps the address's low bits select the gate voltage, so every 4th address would hold out one of them)."""
    cells, first = np.unique(pulses.cell, return_index=True)
    in_order = cells[np.argsort(first)]
    return np.isin(pulses.cell, in_order[HOLDOUT_EVERY - 1::HOLDOUT_EVERY])


def switched(pulses: PulseData) -> np.ndarray:
    """Rows whose measured resistance changed by more than SWITCHED decades."""
    return np.abs(np.log10(pulses.r_after / pulses.r_before)) > SWITCHED


def _weights(pulses: PulseData) -> np.ndarray:
    """Each file's switched and unchanged pulses weigh as much as each other (the unchanged ones, ~90 %, would
    otherwise make "nothing switches" the best fit)."""
    moved = switched(pulses)
    return np.where(moved, 1 / np.sqrt(max(moved.sum(), 1)), 1 / np.sqrt(max((~moved).sum(), 1)))


def _whole_cells(pulses: PulseData, rows: int, rng: np.random.Generator) -> PulseData:
    """All pulses of a seeded sample of the cells, about `rows` pulses in all (every cell where they fit)."""
    cells = np.unique(pulses.cell)
    keep = rng.permutation(cells)[:max(1, rows * cells.size // max(len(pulses), 1))]
    return pulses.subset(np.isin(pulses.cell, keep))


@dataclass(frozen=True)
class _Free:
    """Free parameters <-> a cell: x holds each parameter, its natural log where BOUNDS says so."""

    base: Cell
    names: tuple[str, ...]

    def x(self, cell: Cell) -> np.ndarray:
        return np.array([np.log(cell.value(n)) if BOUNDS[n][4] else cell.value(n) for n in self.names])

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return tuple(np.array([np.log(BOUNDS[n][k]) if BOUNDS[n][4] else BOUNDS[n][k] for n in self.names])
                     for k in (2, 3))

    def cell(self, x: np.ndarray) -> Cell:
        return self.base.replace(**{n: float(np.exp(v)) if BOUNDS[n][4] else float(v) for n, v in zip(self.names, x)})


def predict_chained(cell: Cell, pulses: PulseData) -> np.ndarray:
    """Model read resistance after each pulse of `pulses`, ohm, each cell's pulses run in the file's order from
    that cell's first measured read (the model's state carried from pulse to pulse, as in a staircase sweep or a
    program-and-verify ramp; `predict` restarts every pulse from the measured read before it)."""
    order = np.argsort(pulses.cell, kind="stable")
    cells, first, counts = np.unique(pulses.cell[order], return_index=True, return_counts=True)
    gap = gap_from_resistance(cell, pulses.r_before[order[first]])
    after = np.empty(len(pulses))
    for k in range(int(counts.max(initial=0))):
        live = np.flatnonzero(counts > k)
        rows = order[first[live] + k]
        gap[live] = pulse_gap(cell, pulses.operation, pulses.v_pulse[rows], pulses.v_wl[rows], pulses.width[rows],
                              gap[live])
        after[rows] = read_resistance(cell, gap[live])
    return after


def log_errors(cell: Cell, pulses: PulseData) -> np.ndarray:
    """|log10(R_after model / R_after measured)| per pulse."""
    return np.abs(np.log10(predict(cell, pulses) / pulses.r_after))


def error_summary(cell: Cell, pulses: Sequence[PulseData]) -> dict:
    """Median |log10 error| over all pulses and over the switched ones, with "nothing changes" as baseline, and
    the same for the model run through each cell's pulses from its first read (`predict_chained`)."""
    model = np.concatenate([log_errors(cell, p) for p in pulses]) if pulses else np.zeros(0)
    moved = np.concatenate([switched(p) for p in pulses]) if pulses else np.zeros(0, bool)
    persist = np.concatenate([np.abs(np.log10(p.r_before / p.r_after)) for p in pulses]) if pulses else model
    chained = (np.concatenate([np.abs(np.log10(predict_chained(cell, p) / p.r_after)) for p in pulses]) if pulses
               else model)

    def median(x: np.ndarray) -> float:
        return float(np.median(x)) if x.size else float("nan")

    return {"pulses": int(model.size), "switched": int(moved.sum()), "median": median(model),
            "median_switched": median(model[moved]), "median_unchanged": median(model[~moved]),
            "baseline_median": median(persist), "baseline_median_switched": median(persist[moved]),
            "median_chained": median(chained), "median_chained_switched": median(chained[moved])}


@dataclass(frozen=True)
class RRAMCalibration:
    """Settings of an RRAM calibration."""

    start: Cell = Cell(transistor=SelectTransistor(vto=0.3, kp=3e-5), device=Cell().device.replace(f_min=1.0e9))
    """Where the optimisation starts (and the held values): a ~20 kohm LRS at 1 V gate, SET near 1 V."""
    fit_rows: int = FIT_ROWS
    """Pulses per file the optimiser evaluates (FIT_ROWS)."""
    max_evaluations: int = 100
    """Largest number of least-squares iterations; a fit that needs more has not converged."""
    seed: int = 0
    """Seed of the row sample and of the write-verify population."""
    simulator: Simulator = "vacask"
    """SPICE back end of the confirmation (VACASK: the ngspice subcircuit fails some high-current SETs)."""
    spice_pulses: int = 60
    """Held-out pulses confirmed in SPICE (half switched, half not, where there are enough)."""


@dataclass(frozen=True)
class ProgramVerifyProtocol:
    """The set-up's FORM and program-and-verify (module docstring). Defaults: its documented operating conditions of
    the week chip 4 was programmed. Voltage ramps are (start, stop, step), V, stop included."""

    lrs_band: tuple[float, float] = (9e3, 11e3)
    """Read resistance band of the low-resistance target, ohm."""
    hrs_band: tuple[float, float] = (70e3, 90e3)
    """Read resistance band of the high-resistance target, ohm."""
    set_v_bl: float = 2.0
    """Bit-line voltage of the SET pulses, V."""
    set_gate: tuple[float, float, float] = (0.9, 1.5, 0.1)
    """Gate voltages of a dynamic SET, V."""
    reset_v_sl: float = 3.0
    """Source-line voltage of the RESET pulses, V."""
    reset_gate: tuple[float, float, float] = (0.9, 1.5, 0.1)
    """Gate voltages of a dynamic RESET, V."""
    width: float = 10e-6
    """Pulse width of SET and RESET, s."""
    max_attempts: int = 25
    """Attempts (read + dynamic SET/RESET) before a cell counts as failed (not documented: the measured first
    pass needed at most 17, every cell succeeded)."""
    form_gate: tuple[float, float, float] = (0.9, 1.5, 0.05)
    """Gate voltages of the FORM (outer loop), V."""
    form_v_bl: tuple[float, float, float] = (2.0, 4.0, 0.5)
    """Bit-line voltages of the FORM (inner loop), V."""
    form_width: float = 2e-3
    """Pulse width of the FORM, s."""
    form_stop: float = 50e3
    """The FORM stops at the first read below this, ohm."""

    @staticmethod
    def ramp(values: tuple[float, float, float]) -> np.ndarray:
        """The voltages of a (start, stop, step) ramp, V, stop included."""
        start, stop, step = values
        return np.arange(start, stop + step / 2, step)

    def gates(self, operation: Operation) -> np.ndarray:
        """Gate voltages of a dynamic SET or RESET, V."""
        return self.ramp(self.set_gate if operation == "set" else self.reset_gate)


def form(cell: Cell, gap: np.ndarray, vel0_factor: np.ndarray,
         protocol: ProgramVerifyProtocol = ProgramVerifyProtocol()) -> np.ndarray:
    """The protocol's FORM on devices of gap `gap` (m), each with its vel0 multiplier: SET pulses with the gate
    stepped (outer) and the bit line stepped (inner), a read after each, until the read is below form_stop.
    Returns the gaps after it, m (a device that never gets there keeps its last state)."""
    gap = np.array(gap, dtype=float)
    active = np.arange(gap.size)
    for v_wl in protocol.ramp(protocol.form_gate):
        for v_bl in protocol.ramp(protocol.form_v_bl):
            if active.size == 0:
                return gap
            gap[active] = pulse_gap(cell, "set", np.full(active.size, v_bl), np.full(active.size, v_wl),
                                    protocol.form_width * vel0_factor[active], gap[active])
            active = active[read_resistance(cell, gap[active]) >= protocol.form_stop]
    return gap


def protocol_check(cell: Cell, pulses: Sequence[PulseData],
                   protocol: ProgramVerifyProtocol = ProgramVerifyProtocol()) -> dict:
    """Whether the single-pulse data speak to the protocol: their pulses at its SET conditions (bit line within
    50 mV of set_v_bl, gate inside the SET ramp) from above the LRS band's top, and at its RESET conditions from
    below the HRS band's bottom; per operation the number of such pulses and the fraction that crossed that edge,
    measured and in the model."""
    out = {}
    for operation, edge, line in (("set", protocol.lrs_band[1], protocol.set_v_bl),
                                  ("reset", protocol.hrs_band[0], protocol.reset_v_sl)):
        gates = protocol.gates(operation)
        sign = 1 if operation == "set" else -1  # a SET crosses the edge downwards, a RESET upwards
        rows = [p.subset((np.abs(p.v_pulse - line) <= 0.05 + 1e-9) & (p.v_wl >= gates[0] - 0.05)
                         & (p.v_wl <= gates[-1] + 0.05) & (sign * (p.r_before - edge) > 0))
                for p in pulses if p.operation == operation]
        rows = [p for p in rows if len(p)]
        measured = np.concatenate([p.r_after for p in rows]) if rows else np.zeros(0)
        model = np.concatenate([predict(cell, p) for p in rows]) if rows else np.zeros(0)
        out[operation] = {"pulses": int(measured.size), "edge_ohm": edge,
                          "measured_crossed": float(np.mean(sign * (measured - edge) < 0)) if rows else float("nan"),
                          "model_crossed": float(np.mean(sign * (model - edge) < 0)) if rows else float("nan")}
    return out


def program_verify(cell: Cell, band: tuple[float, float], gap: np.ndarray, vel0_factor: np.ndarray,
                   protocol: ProgramVerifyProtocol = ProgramVerifyProtocol()) -> dict[str, np.ndarray]:
    """The protocol on a population (one device per entry of `gap`, m, with its vel0 multiplier) towards the
    read-resistance band (ohm): per attempt, a read and, above the band, one dynamic SET, below it one dynamic
    RESET (each to its edge of the band or the end of its gate ramp). {"sets", "resets", "success",
    "resistance"} per device."""
    low, high = band
    gap = np.array(gap, dtype=float)
    sets, resets = np.zeros(gap.size, int), np.zeros(gap.size, int)
    success = np.zeros(gap.size, bool)
    resistance = read_resistance(cell, gap)

    def pulse(rows: np.ndarray, operation: Operation, v_wl: float) -> None:
        # the gap speed is proportional to vel0: a device with vel0 x f moves in w as the nominal one in w f
        v_line = protocol.set_v_bl if operation == "set" else protocol.reset_v_sl
        gap[rows] = pulse_gap(cell, operation, np.full(rows.size, v_line), np.full(rows.size, v_wl),
                              protocol.width * vel0_factor[rows], gap[rows])
        resistance[rows] = read_resistance(cell, gap[rows])

    for _ in range(protocol.max_attempts):
        pending = np.flatnonzero(~success)
        if pending.size == 0:
            break
        read = resistance[pending].copy()  # the attempt's read picks one dynamic SET or RESET
        for operation, outside, counter in (("set", lambda r: r > high, sets), ("reset", lambda r: r < low, resets)):
            active = pending[outside(read)]
            for v_wl in protocol.gates(operation):
                if active.size == 0:
                    break
                pulse(active, operation, v_wl)
                counter[active] += 1
                active = active[outside(resistance[active])]
        success[pending] = (resistance[pending] >= low) & (resistance[pending] <= high)
    return {"sets": sets, "resets": resets, "success": success, "resistance": resistance}


SPREAD_GRID = np.geomspace(1e-2, 1e2, 17)
"""Candidate per-cell vel0 multipliers of the cell-to-cell spread estimate (4 decades: beyond, single cells' noisy
staircases pick the ends of any grid)."""
SPREAD_MIN_SWITCHED = 2
"""Switched pulses a cell needs to enter the spread estimate."""


def cell_spread(cell: Cell, pulses: Sequence[PulseData]) -> dict:
    """Each cell's best vel0 multiplier (of SPREAD_GRID; by the squared log10 error of its pulses) among the cells
    with SPREAD_MIN_SWITCHED switched pulses, and their log-normal spread: {"sigma_ln", "cells", "multipliers"}."""
    best = {}
    for p in pulses:
        errors = np.stack([(np.log10(read_resistance(cell, pulse_gap(
            cell, p.operation, p.v_pulse, p.v_wl, p.width * m, gap_from_resistance(cell, p.r_before))))
            - np.log10(p.r_after)) ** 2 for m in SPREAD_GRID])
        moved = switched(p)
        addresses, counts = np.unique(p.cell[moved], return_counts=True)
        for address in addresses[counts >= SPREAD_MIN_SWITCHED]:
            rows = p.cell == address
            cost = errors[:, rows].sum(axis=1) + best.get((p.operation, address), (0, np.zeros(len(SPREAD_GRID))))[1]
            best[p.operation, address] = (SPREAD_GRID[np.argmin(cost)], cost)
    multipliers = np.array([m for m, _ in best.values()])
    return {"sigma_ln": float(np.std(np.log(multipliers), ddof=1)) if multipliers.size > 1 else float("nan"),
            "cells": int(multipliers.size), "multipliers": multipliers}


@dataclass
class RRAMFit:
    """What an RRAM calibration found."""

    cell: Cell
    """The calibrated cell."""
    outcome: FitOutcome
    """How the fit ended, residuals, parameter uncertainty."""
    free: tuple[str, ...]
    """Fitted parameters."""
    errors: dict
    """{"fit"/"heldout": error_summary}, and per file."""
    spread: dict
    """The cell-to-cell spread of vel0 (`cell_spread`)."""
    pulses: tuple[PulseData, ...]
    """The data, for the report."""
    program_verify: dict = field(default_factory=dict)
    """Measured and simulated pulse counts per target band."""
    spice: dict = field(default_factory=dict)
    """SPICE confirmation of held-out pulses."""
    seconds: dict = field(default_factory=dict)
    """Wall time of the steps, s."""


FREE = ("vel0", "f_min", "gamma0", "rth", "g0", "vto", "kp")
"""The fitted parameters (BOUNDS)."""


def calibrate_rram(pulses: Sequence[PulseData], verify: ProgramVerifyData | None = None,
                   config: RRAMCalibration = RRAMCalibration(), progress: bool = True) -> RRAMFit:
    """Fit the 1T1R cell to single pulses (module docstring), estimate its spread, program it and confirm."""
    if not pulses:
        raise ValueError("nothing to calibrate: give single-pulse files")
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    fitted = [p.subset(~held_out(p)) for p in pulses]
    heldout = [p.subset(held_out(p)) for p in pulses]
    sample = [_whole_cells(p, config.fit_rows, rng) for p in fitted]
    weights = [_weights(p) for p in sample]
    free = _Free(config.start, FREE)

    def residuals(x: np.ndarray) -> np.ndarray:
        cell = free.cell(x)
        return np.concatenate([(np.log10(predict_chained(cell, p)) - np.log10(p.r_after)) * w
                               for p, w in zip(sample, weights)])

    result = least_squares(residuals, free.x(config.start), bounds=free.bounds(), x_scale="jac",
                           max_nfev=config.max_evaluations, ftol=1e-6, xtol=1e-6)
    cell = free.cell(result.x)
    outcome = fit_outcome(result, FREE, [BOUNDS[n][4] for n in FREE], [cell.value(n) for n in FREE])
    errors = {"fit": error_summary(cell, fitted), "heldout": error_summary(cell, heldout),
              "files": {p.source.name: error_summary(cell, [h]) for p, h in zip(pulses, heldout)}}
    fit = RRAMFit(cell, outcome, FREE, errors, cell_spread(cell, fitted), tuple(pulses),
                  seconds={"fit": time.perf_counter() - started})
    if verify is not None:
        started = time.perf_counter()
        fit.program_verify = compare_program_verify(cell, fit.spread["sigma_ln"], verify, pulses, rng)
        fit.seconds["program_verify"] = time.perf_counter() - started
    if config.spice_pulses:
        started = time.perf_counter()
        fit.spice = confirm_with_spice(cell, heldout, config, rng, progress)
        fit.seconds["spice"] = time.perf_counter() - started
    return fit


def compare_program_verify(cell: Cell, sigma_ln: float, verify: ProgramVerifyData, pulses: Sequence[PulseData],
                           rng: np.random.Generator, protocol: ProgramVerifyProtocol = ProgramVerifyProtocol(),
                           devices: int = 256) -> dict:
    """Measured pulse counts of the first pass per target band against the protocol on `devices` calibrated
    cells per band, each with a vel0 multiplier exp(sigma_ln N(0, 1)), pristine (the largest gap) and FORMed as the
    protocol FORMs; with `protocol_check` of the single-pulse data `pulses`."""
    first = verify.passes == 0
    out = {"protocol": dataclasses.asdict(protocol), "devices_per_band": devices, "sigma_ln_vel0": sigma_ln,
           "calibration_data_check": protocol_check(cell, pulses, protocol)}
    formed = []
    for name, band in (("lrs", protocol.lrs_band), ("hrs", protocol.hrs_band)):
        measured = first & (verify.resistance >= band[0]) & (verify.resistance <= band[1])
        factor = np.exp((sigma_ln if np.isfinite(sigma_ln) else 0.0) * rng.standard_normal(devices))
        gap = form(cell, np.full(devices, cell.device.gap_max), factor, protocol)
        formed.append(read_resistance(cell, gap))
        model = program_verify(cell, band, gap, factor, protocol)
        pulses_model = model["sets"] + model["resets"]
        out[name] = {"band_ohm": list(band), "measured_cells": int(measured.sum()),
                     "measured_mean_pulses": float(verify.pulses[measured].mean()) if measured.any() else float("nan"),
                     "measured_mean_sets": float(verify.sets[measured].mean()) if measured.any() else float("nan"),
                     "measured_mean_resets": float(verify.resets[measured].mean()) if measured.any() else float("nan"),
                     "model_mean_pulses": float(pulses_model.mean()), "model_mean_sets": float(model["sets"].mean()),
                     "model_mean_resets": float(model["resets"].mean()),
                     "model_success": float(model["success"].mean()),
                     "measured_pulses": verify.pulses[measured], "model_pulses": pulses_model}
        m = out[name]
        m["pulse_count_rel_error"] = abs(m["model_mean_pulses"] / m["measured_mean_pulses"] - 1)
    formed = np.concatenate(formed)
    out["formed_resistance_median_ohm"] = float(np.median(formed))
    out["formed_fraction"] = float(np.mean(formed < protocol.form_stop))
    return out


def confirm_with_spice(cell: Cell, heldout: Sequence[PulseData], config: RRAMCalibration,
                       rng: np.random.Generator, progress: bool) -> dict:
    """`config.spice_pulses` held-out pulses (half switched where possible) in SPICE: R after from SPICE, from the
    fast path and measured; medians of |log10| of their ratios, and failed simulations."""
    picks = []
    per_class = config.spice_pulses // (2 * len(heldout))
    for p in heldout:
        moved = switched(p)
        for mask in (moved, ~moved):
            rows = np.flatnonzero(mask)
            picks += [(p, int(k)) for k in rng.choice(rows, min(per_class, rows.size), replace=False)]
    jobs = []
    for p, k in picks:
        gap = float(gap_from_resistance(cell, p.r_before[k:k + 1])[0])
        jobs.append(pulse_job(cell, p.operation, float(p.v_pulse[k]), float(p.v_wl[k]), float(p.width[k]), gap,
                              config.simulator, f"{p.operation} cell {p.cell[k]} row {k}"))
    results = run_many(jobs, progress=progress)
    spice, fast, measured, moved, failed = [], [], [], [], []
    for (p, k), job, result in zip(picks, jobs, results):
        if isinstance(result, Exception):
            failed.append(f"{job.name}: {str(result).splitlines()[0]}")
            continue
        spice.append(READ_BL_V / -result["i(vbl)"][-1])
        fast.append(float(predict(cell, p.subset(np.arange(len(p)) == k))[0]))
        measured.append(p.r_after[k])
        moved.append(bool(switched(p)[k]))
    spice, fast, measured, moved = map(np.array, (spice, fast, measured, moved))
    return {"simulator": config.simulator, "pulses": len(jobs), "failed": failed,
            "median_log10_spice_vs_fast": float(np.median(np.abs(np.log10(spice / fast)))) if spice.size else None,
            "max_log10_spice_vs_fast": float(np.max(np.abs(np.log10(spice / fast)))) if spice.size else None,
            "median_log10_spice_vs_measured": float(np.median(np.abs(np.log10(spice / measured))))
            if spice.size else None,
            "median_log10_spice_vs_measured_switched": float(np.median(np.abs(np.log10(spice / measured))[moved]))
            if moved.any() else None}


# ------------------------------------------------------------------------------------------ card and report


def rram_card(fit: RRAMFit, files: Sequence[tuple[str | Path, str, str]], config: RRAMCalibration) -> dict:
    """The device card of an RRAM calibration (`cosim.calibrate.card`); `files` are (path, kind, role)."""
    parameters = {}
    for owner, values in (("rram", dataclasses.asdict(fit.cell.device)),
                          ("transistor", dataclasses.asdict(fit.cell.transistor))):
        for name, value in values.items():
            entry = {"value": value, "part": owner, "fitted": name in fit.free}
            if name in fit.free:
                _, unit, low, high, _, text = BOUNDS[name]
                entry.update(unit=unit, description=text, bounds=[low, high],
                             std_error=fit.outcome.std_errors[name],
                             relative_std_error=fit.outcome.relative_std_errors[name])
            parameters[f"{owner}.{name}"] = entry
    data, citations = provenance(files)
    pv = {band: {k: v for k, v in entry.items() if not isinstance(v, np.ndarray)} if isinstance(entry, dict) else entry
          for band, entry in fit.program_verify.items()}
    return {
        "device": "rram", "model": "rram (gap model) + level-1 NMOS, 1T1R", "converged": fit.outcome.converged,
        "parameters": parameters,
        "variability": {"d2d": {"vel0": fit.spread["sigma_ln"]}, "cells": fit.spread["cells"],
                        "kind": "log-normal sigma of a per-cell vel0 multiplier"},
        "read": {"bit_line_v": READ_BL_V, "gate_v": READ_WL_V},
        "fit": fit.outcome.to_dict() | {"residual_unit": "log10(R), each cell's pulses chained from its first "
                                                         "read (switched and unchanged pulses balanced)"},
        "errors": fit.errors, "program_verify": pv, "spice": fit.spice,
        "settings": {"fit_rows": config.fit_rows, "max_evaluations": config.max_evaluations, "seed": config.seed,
                     "holdout": f"every {HOLDOUT_EVERY}th cell", "switched_decades": SWITCHED},
        "seconds": fit.seconds, "data": data, "citation": citations,
        "notes": ["errors: |log10(R_after model / R_after measured)|; baseline: R_after = R_before",
                  "program_verify: first pass of the measured file per band; the protocol: the set-up's documented "
                  "operating conditions of that chip (module cosim.calibrate.rram)"],
    }


def write_rram_report(fit: RRAMFit, card: dict, out: str | Path) -> Path:
    """Overlays (R after vs pulse voltage per gate voltage, model vs measured, pulse-count histograms) and
    report.md in `out`; returns the report's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    fig, axes = plt.subplots(1, len(fit.pulses), figsize=(4.5 * len(fit.pulses), 3.8), squeeze=False)
    for ax, pulses in zip(axes[0], fit.pulses):
        held = pulses.subset(held_out(pulses))
        model = predict(fit.cell, held)
        swept = getattr(held, pulses.swept) if pulses.swept else held.v_pulse
        fixed_name = "v_wl" if pulses.swept != "v_wl" else ("v_bl" if pulses.operation == "set" else "v_sl")
        fixed = getattr(held, fixed_name)
        for k, value in enumerate(np.unique(fixed)):
            rows = fixed == value
            xs = np.unique(np.round(swept[rows], 3))
            med = [np.median(held.r_after[rows][np.isclose(swept[rows], x)]) for x in xs]
            med_model = [np.median(model[rows][np.isclose(swept[rows], x)]) for x in xs]
            ax.semilogy(xs, med, "o", ms=3, color=f"C{k}", label=f"{fixed_name} {value:g} V measured")
            ax.semilogy(xs, med_model, "-", color=f"C{k}", label="model")
        ax.set(title=f"{pulses.source.stem} (held-out cells, median)", xlabel=f"{pulses.swept or 'pulse'} (V)",
               ylabel="R after the pulse (ohm)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "r_after.png", dpi=100)
    plt.close(fig)
    figures.append("r_after.png")
    if fit.program_verify:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for ax, band in zip(axes, ("lrs", "hrs")):
            entry = fit.program_verify[band]
            top = int(max(entry["measured_pulses"].max(initial=0), entry["model_pulses"].max(initial=0))) + 1
            bins = np.arange(0, top + 1) - 0.5
            ax.hist(entry["measured_pulses"], bins=bins, density=True, alpha=0.6, label="measured (first pass)")
            ax.hist(entry["model_pulses"], bins=bins, density=True, alpha=0.6, label="model")
            ax.set(title=f"{band.upper()} {entry['band_ohm'][0] / 1e3:g}-{entry['band_ohm'][1] / 1e3:g} kohm: mean "
                         f"{entry['measured_mean_pulses']:.2f} vs {entry['model_mean_pulses']:.2f}",
                   xlabel="programming pulses (SET + RESET)", ylabel="fraction of cells")
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "pulse_counts.png", dpi=100)
        plt.close(fig)
        figures.append("pulse_counts.png")
    e = card["errors"]
    lines = report_head(f"RRAM calibration ({card['model']})", card, "", units=False)
    lines += ["", f"Cell-to-cell spread: vel0 log-normal sigma {card['variability']['d2d']['vel0']:.3g} "
                  f"({card['variability']['cells']} cells).", "",
              "## Errors: median |log10(R_after model / measured)|", "",
              "| set | pulses | all | switched | unchanged | baseline all | baseline switched | chained all | "
              "chained switched |", "|---" * 9 + "|"]
    for name, s in [("fit", e["fit"]), ("held out", e["heldout"])] + [(f, s) for f, s in e["files"].items()]:
        lines.append(f"| {name} | {s['pulses']} ({s['switched']} switched) | {s['median']:.3f} | "
                     f"{s['median_switched']:.3f} | {s['median_unchanged']:.3f} | {s['baseline_median']:.3f} | "
                     f"{s['baseline_median_switched']:.3f} | {s['median_chained']:.3f} | "
                     f"{s['median_chained_switched']:.3f} |")
    if card["spice"]:
        lines += ["", f"SPICE ({card['spice']['simulator']}, {card['spice']['pulses']} held-out pulses, "
                      f"{len(card['spice']['failed'])} failed): median |log10| SPICE vs fast path "
                      f"{card['spice']['median_log10_spice_vs_fast']:.2g}, SPICE vs measured "
                      f"{card['spice']['median_log10_spice_vs_measured']:.3f}."]
    if card["program_verify"]:
        lines += ["", "## Program-and-verify (first pass)", "", "| band | measured cells | measured mean pulses "
                  "(SET / RESET) | model mean pulses (SET / RESET) | relative error | model success |",
                  "|---|---|---|---|---|---|"]
        for band in ("lrs", "hrs"):
            m = card["program_verify"][band]
            lines.append(f"| {band} {m['band_ohm']} | {m['measured_cells']} | {m['measured_mean_pulses']:.2f} "
                         f"({m['measured_mean_sets']:.2f} / {m['measured_mean_resets']:.2f}) | "
                         f"{m['model_mean_pulses']:.2f} ({m['model_mean_sets']:.2f} / {m['model_mean_resets']:.2f}) | "
                         f"{m['pulse_count_rel_error']:.2f} | {m['model_success']:.2f} |")
        pv, check = card["program_verify"], card["program_verify"]["calibration_data_check"]
        lines += ["", f"Model cells after the FORM: median {pv['formed_resistance_median_ohm'] / 1e3:.1f} kohm "
                      f"({pv['formed_fraction']:.0%} below {pv['protocol']['form_stop'] / 1e3:g} kohm).",
                  "", "Single-pulse data at the protocol's conditions (do the calibration cells respond to them?):", "",
                  "| pulses | count | crossed the band edge: measured | model |", "|---|---|---|---|"]
        for operation, c in check.items():
            lines.append(f"| {operation.upper()} towards {'<' if operation == 'set' else '>'} {c['edge_ohm'] / 1e3:g} "
                         f"kohm | {c['pulses']} | {c['measured_crossed']:.3f} | {c['model_crossed']:.3f} |")
    lines += report_tail(card, figures)
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
