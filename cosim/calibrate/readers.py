"""Readers of device measurements: what `cosim calibrate` fits, in SI units, checked row by row.

Formats read
------------
FeCap polarisation traces (P-V loops and arbitrary waveforms), `PolarisationTrace`:
- aixACCT TF Analyzer loop export (``read_aixacct_loop``): tab-separated, one header row of ``name unit`` pairs
  (``Time s``, ``Vplus V``, ``P1 uC_per_cm2``, ...). The loop is one period of a triangular drive; P1 is the first
  loop of the dynamic hysteresis sequence (after the negative pre-pulse; it closes to 0.3 % of its range in the
  shared data), P2 and P3 start from the state the loop before left and close to only 3-17 %. The frequency is one
  over the time span; a temperature in the file name (``127C``) is kept.
- documented loop/waveform CSV (``read_trace_csv``): comma-separated with a header; lines starting with ``#`` are
  comments, ``# area_m2 = 6.579e-8`` and ``# temperature_c = 31`` give the area and temperature. Columns:
  ``time_s,voltage_v,polarization_uc_per_cm2`` or ``time_s,voltage_v,charge_c`` (the charge needs the area). The
  waveform files of S. Deng et al. (``t,V,Q``, Q in C/cm^2) are read by the same function.
FeCap switching kinetics, `KineticsData` (``read_kinetics_csv``): ``width_s,amplitude_v,polarization_uc_per_cm2``,
  one row per pulse applied to a capacitor poled to negative saturation; the Deng file's ``pw,amp,Pr`` (same units)
  is accepted.
RRAM single pulses, `PulseData`:
- NI test set-up sweeps (``read_ni_pulses``): tab-separated numbers, no header; the column order depends on the
  sweep, told by the file name as in the set-up's analysis scripts: ``sweep_vbl_set*`` addr, VBL, VWL, VSL, PW;
  ``sweep_vwl_set*`` addr, VWL, VBL, VSL, PW; ``sweep_vsl_reset*`` and ``sweep_vwl_reset*`` addr, VWL, VSL, VBL, PW;
  then R_before, R_after (ohm); PW in us. Each cell gets a staircase of pulses (R_before of a pulse is the read
  after the previous one).
- documented pulse CSV (``read_pulse_csv``): ``cell,operation,v_bl_v,v_wl_v,v_sl_v,width_s,r_before_ohm,
  r_after_ohm`` with operation ``set`` or ``reset``.
RRAM program-and-verify outcomes, `ProgramVerifyData` (``read_program_verify``): the NI ``target_*`` files
  (tab-separated, no header: addr, reads, sets, resets, success, R in ohm; several passes over the array one after
  the other) or a CSV with the header ``cell,reads,sets,resets,success,r_ohm``.

Every reader raises `MeasurementError` naming the file and, where it applies, the line: an empty file, missing or
misnamed columns (with the names found), values out of any physical range for the declared unit (e.g. a width
of 30 "s" that was meant in ns), non-numbers and NaN, time not increasing, a loop that does not close.
"""
from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

UC_PER_CM2 = 1e-2
"""One uC/cm^2 in C/m^2."""

LOOP_CLOSURE = 0.05
"""Largest |P(end) - P(start)| of a P-V loop, as a fraction of its polarisation range."""

# Physical ranges per declared unit: a value outside is a unit mistake or a broken file.
MAX_POLARISATION = 150 * UC_PER_CM2
"""Largest |P| of any ferroelectric film, C/m^2 (BiFeO3 ~100 uC/cm^2; HfO2 films < 60)."""
MAX_VOLTAGE = 100.0
"""Largest |V| on a thin-film device, V."""
MAX_TIME = 1e4
"""Longest trace or pulse, s."""
MIN_TIME_STEP = 1e-12
"""Shortest sampling step or pulse width, s."""
RESISTANCE_RANGE = (1.0, 1e13)
"""Plausible cell resistances, ohm."""
MAX_AREA = 1e-2
"""Largest capacitor area, m^2 (1 cm x 1 cm)."""


class MeasurementError(ValueError):
    """A measurement file that cannot be used; the message names the file and the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        where = f"{path}" if line is None else f"{path}, line {line}"
        super().__init__(f"{where}: {message}")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------------- table parsing


@dataclass(frozen=True)
class _Table:
    """Numbers of a delimited file: one column per name, the file line of each row."""

    path: Path
    columns: dict[str, np.ndarray]
    lines: np.ndarray
    comments: dict[str, str]
    texts: dict[str, np.ndarray]

    def column(self, name: str) -> np.ndarray:
        return self.columns[name]

    def check_range(self, name: str, low: float, high: float, unit: str, hint: str = "",
                    scale: float = 1.0) -> None:
        """Raise at the first row whose `name` (times `scale`) lies outside [low, high] (in `unit`)."""
        values = self.columns[name] * scale
        bad = np.flatnonzero((values < low) | (values > high))
        if bad.size:
            row = bad[0]
            raise MeasurementError(self.path, f"column {name!r} = {self.columns[name][row]:g} is outside "
                                              f"[{low:g}, {high:g}] {unit}{hint}", int(self.lines[row]))


def _read_table(path: Path, delimiter: str, names: Sequence[str] | None, text: Sequence[str] = ()) -> _Table:
    """Parse a delimited numeric file. `names`: the column names of a file without a header; None: the first
    non-comment line is the header. Columns named in `text` (case-insensitive) are kept as lower-case strings.
    Comments (#) of the form ``# key = value`` are kept."""
    if not path.is_file():
        raise MeasurementError(path, "no such file")
    try:
        content = path.read_text()
    except UnicodeDecodeError:
        raise MeasurementError(path, "not a text file") from None
    comments, rows, header, header_line = {}, [], None, None
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            key, sep, value = line.lstrip("# \t").partition("=")
            if sep:
                comments[key.strip().lower()] = value.strip()
            continue
        cells = [c.strip() for c in (line.split(delimiter) if delimiter else line.split())]
        if names is None and header is None:
            header, header_line = cells, number
            continue
        rows.append((number, cells))
    columns = list(names) if names is not None else header
    if columns is None or not rows:
        raise MeasurementError(path, "empty file: no data rows" + (f" after the header (line {header_line})"
                                                                    if header is not None else ""))
    textual = [j for j, name in enumerate(columns) if name.lower() in {t.lower() for t in text}]
    values = np.zeros((len(rows), len(columns)))
    strings = {j: [] for j in textual}
    for k, (number, cells) in enumerate(rows):
        if len(cells) != len(columns):
            raise MeasurementError(path, f"{len(cells)} values, expected {len(columns)} ({', '.join(columns)})",
                                   number)
        for j, cell in enumerate(cells):
            if j in strings:
                strings[j].append(cell.lower())
                continue
            try:
                values[k, j] = float(cell)
            except ValueError:
                raise MeasurementError(path, f"column {columns[j]!r}: {cell!r} is not a number", number) from None
            if not np.isfinite(values[k, j]):
                raise MeasurementError(path, f"column {columns[j]!r} is {cell!r}: rows must be complete numbers",
                                       number)
    return _Table(path, {name: values[:, j] for j, name in enumerate(columns) if j not in strings},
                  np.array([number for number, _ in rows]), comments,
                  {columns[j]: np.array(strings[j]) for j in textual})


def _pick(table: _Table, wanted: Sequence[Sequence[str]], what: str) -> list[str]:
    """For each group of accepted names (case-insensitive), the column of the table that has one of them; raise
    naming the missing ones, the columns found and the nearest match."""
    found = {name.lower(): name for name in table.columns}
    chosen, missing = [], []
    for names in wanted:
        hit = next((found[n.lower()] for n in names if n.lower() in found), None)
        if hit is None:
            missing.append(names)
        chosen.append(hit)
    if missing:
        parts = []
        for names in missing:
            near = difflib.get_close_matches(names[0].lower(), list(found), n=1, cutoff=0.5)
            parts.append(" or ".join(repr(n) for n in names) + (f" (did you mean {found[near[0]]!r}?)" if near else ""))
        raise MeasurementError(table.path, f"missing column {'; '.join(parts)} for {what}; the header has "
                                           f"{', '.join(repr(c) for c in table.columns)}")
    return chosen


def _check_increasing(table: _Table, name: str) -> None:
    bad = np.flatnonzero(np.diff(table.columns[name]) <= 0)
    if bad.size:
        row = bad[0] + 1
        raise MeasurementError(table.path, f"time does not increase: {name} = {table.columns[name][row]:g} s after "
                                           f"{table.columns[name][row - 1]:g} s", int(table.lines[row]))


# -------------------------------------------------------------------------------------------- FeCap traces


@dataclass(frozen=True)
class PolarisationTrace:
    """A measured drive and the polarisation it produced: a P-V loop (one period of a triangle) or a waveform."""

    source: Path
    """File it was read from."""
    time: np.ndarray
    """Sample times, s, increasing, from 0."""
    voltage: np.ndarray
    """Applied voltage, V."""
    polarisation: np.ndarray
    """Polarisation (charge per area: switching, dielectric and leakage parts; arbitrary offset), C/m^2."""
    temperature_c: float | None = None
    """Device temperature, degrees C (None: not stated, room temperature)."""
    area: float | None = None
    """Capacitor area, m^2, where the file states it."""

    @property
    def frequency(self) -> float:
        """1/duration, Hz: the drive frequency of a loop (one period)."""
        return 1.0 / float(self.time[-1] - self.time[0])

    @property
    def amplitude(self) -> float:
        """Mean of the largest and minus the smallest voltage, V."""
        return 0.5 * float(self.voltage.max() - self.voltage.min())

    @property
    def label(self) -> str:
        """Short description: file stem."""
        return self.source.stem


def _check_trace(table: _Table, t: str, v: str, p_values: np.ndarray, p_name: str) -> None:
    _check_increasing(table, t)
    table.check_range(v, -MAX_VOLTAGE, MAX_VOLTAGE, "V")
    duration = table.columns[t][-1] - table.columns[t][0]
    if not MIN_TIME_STEP < duration < MAX_TIME:
        raise MeasurementError(table.path, f"the trace lasts {duration:g} s: outside ({MIN_TIME_STEP:g}, "
                                           f"{MAX_TIME:g}) s; is the time column in seconds?")
    bad = np.flatnonzero(np.abs(p_values) > MAX_POLARISATION)
    if bad.size:
        row = bad[0]
        raise MeasurementError(table.path, f"column {p_name!r}: |P| = {abs(p_values[row]) / UC_PER_CM2:g} uC/cm^2 "
                                           f"exceeds any ferroelectric's ({MAX_POLARISATION / UC_PER_CM2:g}); "
                                           "check the unit", int(table.lines[row]))


def _check_loop(trace: PolarisationTrace) -> PolarisationTrace:
    p = trace.polarisation
    gap = abs(p[-1] - p[0]) / np.ptp(p)
    if not gap <= LOOP_CLOSURE:
        raise MeasurementError(trace.source, f"the loop does not close: P ends {abs(p[-1] - p[0]) / UC_PER_CM2:.3g} "
                                             f"uC/cm^2 ({100 * gap:.1f} % of its range) from where it starts (at "
                                             f"most {100 * LOOP_CLOSURE:g} %); a P-V loop must be one full period")
    return trace


_AIX_UNITS = {"time": "s", "vplus": "V", "p": "uC_per_cm2"}


def read_aixacct_loop(path: str | Path, loop: int = 1) -> PolarisationTrace:
    """One P-V loop of an aixACCT TF Analyzer export (module docstring): time, Vplus and P<loop>."""
    path = Path(path)
    table = _read_table(path, "\t", None)
    header = {}
    for column in table.columns:
        name, _, unit = column.partition(" ")
        header[name.lower()] = (column, unit.strip())
    p_name = f"p{loop}"
    for name in ("time", "vplus", p_name):
        if name not in header:
            near = difflib.get_close_matches(name, list(header), n=1, cutoff=0.5)
            raise MeasurementError(path, f"missing column {name.capitalize()!r}" + (
                f" (did you mean {header[near[0]][0]!r}?)" if near else "") +
                f"; an aixACCT loop export has 'Time s', 'Vplus V', 'P1 uC_per_cm2', ...; found "
                f"{', '.join(repr(c) for c in table.columns)}")
        expected = _AIX_UNITS["p" if name == p_name else name]
        if header[name][1] != expected:
            raise MeasurementError(path, f"column {header[name][0]!r}: unit {header[name][1]!r} where this reader "
                                         f"takes {expected!r}")
    t, v, p_col = header["time"][0], header["vplus"][0], header[p_name][0]
    polarisation = table.column(p_col) * UC_PER_CM2
    _check_trace(table, t, v, polarisation, p_col)
    temperature = re.search(r"(?<![\w.])(-?\d+(?:\.\d+)?)C(?![\w])", path.stem)
    time = table.column(t) - table.column(t)[0]
    trace = PolarisationTrace(path, time, table.column(v), polarisation,
                              float(temperature.group(1)) if temperature else None)
    named = re.search(r"(?<![\w.])(\d+(?:\.\d+)?)Hz", path.stem)
    if named and abs(float(named.group(1)) / trace.frequency - 1) > 0.05:
        raise MeasurementError(path, f"the file name says {named.group(1)} Hz but the loop lasts "
                                     f"{time[-1]:g} s ({trace.frequency:g} Hz): is it one full period in seconds?")
    return _check_loop(trace)


def read_trace_csv(path: str | Path, loop: bool, area: float | None = None) -> PolarisationTrace:
    """A loop (`loop`: one period, checked to close) or a waveform in the documented CSV (module docstring).
    `area` (m^2) converts a charge column in C; a ``# area_m2 = ...`` comment in the file gives it too."""
    path = Path(path)
    table = _read_table(path, ",", None)
    t, v = _pick(table, [("time_s", "t"), ("voltage_v", "V")], "a polarisation trace")
    p_name, = _pick(table, [("polarization_uc_per_cm2", "polarisation_uc_per_cm2", "charge_c", "Q")],
                    "a polarisation trace")
    if p_name.lower() == "q":  # Deng et al.: charge per area in C/cm^2
        polarisation = table.column(p_name) * 1e4
    elif p_name.lower() == "charge_c":
        if "area_m2" in table.comments:
            try:
                area = float(table.comments["area_m2"])
            except ValueError:
                raise MeasurementError(path, f"'# area_m2 = {table.comments['area_m2']}' is not a number") from None
        if area is None:
            raise MeasurementError(path, "column 'charge_c' needs the capacitor area: add a line '# area_m2 = "
                                         "<area in m^2>' or pass the area")
        if not 0 < area < MAX_AREA:
            raise MeasurementError(path, f"area {area:g} m^2 is outside (0, {MAX_AREA:g}) m^2; is it in m^2?")
        polarisation = table.column(p_name) / area
    else:
        polarisation = table.column(p_name) * UC_PER_CM2
    _check_trace(table, t, v, polarisation, p_name)
    temperature = table.comments.get("temperature_c")
    time = table.column(t) - table.column(t)[0]
    trace = PolarisationTrace(path, time, table.column(v), polarisation,
                              None if temperature is None else float(temperature), area)
    return _check_loop(trace) if loop else trace


def read_loop(path: str | Path, loop: int = 1) -> PolarisationTrace:
    """A P-V loop from an aixACCT export (``.tsv``/``.txt``: P<loop>) or a documented CSV (``.csv``)."""
    path = Path(path)
    return read_trace_csv(path, loop=True) if path.suffix.lower() == ".csv" else read_aixacct_loop(path, loop)


# ------------------------------------------------------------------------------------------ FeCap kinetics


@dataclass(frozen=True)
class KineticsData:
    """Polarisation after one pulse applied to a capacitor poled to negative saturation."""

    source: Path
    """File it was read from."""
    width: np.ndarray
    """Pulse width, s."""
    amplitude: np.ndarray
    """Pulse amplitude, V."""
    polarisation: np.ndarray
    """Polarisation after the pulse, C/m^2."""

    @property
    def amplitudes(self) -> tuple[float, ...]:
        """The distinct amplitudes, V, increasing."""
        return tuple(float(a) for a in np.unique(self.amplitude))


def read_kinetics_csv(path: str | Path) -> KineticsData:
    """Switching kinetics (module docstring): width_s, amplitude_v, polarization_uc_per_cm2 (or pw, amp, Pr)."""
    path = Path(path)
    table = _read_table(path, ",", None)
    w, a, p = _pick(table, [("width_s", "pw"), ("amplitude_v", "amp"), ("polarization_uc_per_cm2", "Pr")],
                    "switching kinetics")
    table.check_range(w, MIN_TIME_STEP, 10.0, "s", "; is the width in seconds?")
    table.check_range(a, -MAX_VOLTAGE, MAX_VOLTAGE, "V")
    table.check_range(p, -MAX_POLARISATION / UC_PER_CM2, MAX_POLARISATION / UC_PER_CM2, "uC/cm^2",
                      "; is the polarisation in uC/cm^2?")
    return KineticsData(path, table.column(w), table.column(a), table.column(p) * UC_PER_CM2)


# ---------------------------------------------------------------------------------------------- RRAM pulses


Operation = Literal["set", "reset"]


@dataclass(frozen=True)
class PulseData:
    """Single programming pulses on 1T1R cells and the read resistance before and after each."""

    source: Path
    """File it was read from."""
    operation: Operation
    """SET (bit line positive) or RESET (source line positive)."""
    cell: np.ndarray
    """Cell address (integer)."""
    v_bl: np.ndarray
    """Bit-line voltage, V."""
    v_wl: np.ndarray
    """Word-line (gate) voltage, V: sets the compliance of a SET."""
    v_sl: np.ndarray
    """Source-line voltage, V."""
    width: np.ndarray
    """Pulse width, s."""
    r_before: np.ndarray
    """Read resistance before the pulse, ohm."""
    r_after: np.ndarray
    """Read resistance after the pulse, ohm."""
    swept: str = ""
    """The voltage a staircase file sweeps ("v_bl", "v_wl", "v_sl"), "" if none."""

    def __len__(self) -> int:
        return int(self.cell.size)

    @property
    def v_pulse(self) -> np.ndarray:
        """The programming line's voltage, V: v_bl for a SET, v_sl for a RESET."""
        return self.v_bl if self.operation == "set" else self.v_sl

    def subset(self, mask: np.ndarray) -> "PulseData":
        """The rows where `mask` is true."""
        fields = {name: getattr(self, name)[mask] for name in
                  ("cell", "v_bl", "v_wl", "v_sl", "width", "r_before", "r_after")}
        return PulseData(self.source, self.operation, swept=self.swept, **fields)


_NI_SWEEPS = {
    # file-name stem prefix: (operation, swept voltage, column order after addr)
    "sweep_vbl_set": ("set", "v_bl", ("v_bl", "v_wl", "v_sl")),
    "sweep_vwl_set": ("set", "v_wl", ("v_wl", "v_bl", "v_sl")),
    "sweep_vsl_reset": ("reset", "v_sl", ("v_wl", "v_sl", "v_bl")),
    "sweep_vwl_reset": ("reset", "v_wl", ("v_wl", "v_sl", "v_bl")),
}


def _check_pulses(table: _Table, names: dict[str, str]) -> None:
    for key in ("v_bl", "v_wl", "v_sl"):
        table.check_range(names[key], -MAX_VOLTAGE, MAX_VOLTAGE, "V")
    for key in ("r_before", "r_after"):
        table.check_range(names[key], *RESISTANCE_RANGE, "ohm", "; is the resistance in ohm?")


def read_ni_pulses(path: str | Path) -> PulseData:
    """A single-pulse sweep of the NI test set-up (module docstring); the file name tells its column order."""
    path = Path(path)
    layout = next((value for prefix, value in _NI_SWEEPS.items() if path.name.lower().startswith(prefix)), None)
    if layout is None:
        raise MeasurementError(path, f"cannot tell the column order of an NI sweep from its name: name it "
                                     f"{', '.join(p + '_*' for p in _NI_SWEEPS)} or write the documented pulse CSV "
                                     "(cell,operation,v_bl_v,v_wl_v,v_sl_v,width_s,r_before_ohm,r_after_ohm)")
    operation, swept, order = layout
    names = ("addr",) + order + ("pw_us", "r_before", "r_after")
    table = _read_table(path, "", names)
    _check_pulses(table, {k: k for k in names})
    table.check_range("pw_us", 1e-6, 1e9, "us", "; the NI files give the width in us")
    c = table.columns
    return PulseData(path, operation, c["addr"].astype(int), c["v_bl"], c["v_wl"], c["v_sl"], c["pw_us"] / 1e6,
                     c["r_before"], c["r_after"], swept)


def read_pulse_csv(path: str | Path) -> list[PulseData]:
    """The documented pulse CSV (module docstring): one `PulseData` per operation present."""
    path = Path(path)
    table = _read_table(path, ",", None, text=("operation",))
    if not table.texts:
        raise MeasurementError(path, f"missing column 'operation' (set or reset); the header has "
                                     f"{', '.join(repr(c) for c in table.columns)}")
    wanted = [("cell",), ("v_bl_v",), ("v_wl_v",), ("v_sl_v",), ("width_s",), ("r_before_ohm",), ("r_after_ohm",)]
    cell, v_bl, v_wl, v_sl, w, rb, ra = _pick(table, wanted, "single pulses")
    _check_pulses(table, {"v_bl": v_bl, "v_wl": v_wl, "v_sl": v_sl, "r_before": rb, "r_after": ra})
    table.check_range(w, MIN_TIME_STEP, 10.0, "s", "; is the width in seconds?")
    ops = next(iter(table.texts.values()))
    bad = np.flatnonzero(~np.isin(ops, ("set", "reset")))
    if bad.size:
        raise MeasurementError(path, f"operation {str(ops[bad[0]])!r}: use 'set' or 'reset'", int(table.lines[bad[0]]))
    c = table.columns
    return [PulseData(path, op, c[cell][ops == op].astype(int), c[v_bl][ops == op], c[v_wl][ops == op],
                      c[v_sl][ops == op], c[w][ops == op], c[rb][ops == op], c[ra][ops == op])
            for op in ("set", "reset") if np.any(ops == op)]


def read_pulses(path: str | Path) -> list[PulseData]:
    """Single pulses from an NI sweep (``sweep_*`` names) or the documented CSV (a header naming 'operation')."""
    path = Path(path)
    return [read_ni_pulses(path)] if path.name.lower().startswith("sweep_") else read_pulse_csv(path)


# --------------------------------------------------------------------------------------- program-and-verify


@dataclass(frozen=True)
class ProgramVerifyData:
    """Outcome of program-and-verify, one row per cell and pass."""

    source: Path
    """File it was read from."""
    cell: np.ndarray
    """Cell address."""
    passes: np.ndarray
    """Pass over the array (0, 1, ...): a new pass starts where the address falls back."""
    reads: np.ndarray
    """Verify reads."""
    sets: np.ndarray
    """SET pulses."""
    resets: np.ndarray
    """RESET pulses."""
    success: np.ndarray
    """Whether the cell ended in its target band (bool)."""
    resistance: np.ndarray
    """Final read resistance, ohm."""

    @property
    def pulses(self) -> np.ndarray:
        """Programming pulses per cell and pass: sets + resets."""
        return self.sets + self.resets


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_program_verify(path: str | Path) -> ProgramVerifyData:
    """Program-and-verify outcomes (module docstring): NI ``target_*`` file or the documented CSV."""
    path = Path(path)
    first = next((line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")),
                 "") if path.is_file() else ""
    has_header = not all(_is_number(cell) for cell in re.split(r"[,\s]+", first.strip()))
    if has_header:
        table = _read_table(path, ",", None)
        names = _pick(table, [("cell",), ("reads",), ("sets",), ("resets",), ("success",), ("r_ohm",)],
                      "program-and-verify outcomes")
    else:
        names = ["addr", "reads", "sets", "resets", "success", "r_ohm"]
        table = _read_table(path, "", names)
    cell, reads, sets, resets, success, r = names
    for name in (reads, sets, resets):
        table.check_range(name, 0, 1e6, "pulses", "; counts must be whole numbers >= 0")
        frac = np.flatnonzero(table.column(name) != np.round(table.column(name)))
        if frac.size:
            raise MeasurementError(path, f"column {name!r} = {table.column(name)[frac[0]]:g} is not a whole count",
                                   int(table.lines[frac[0]]))
    table.check_range(success, 0, 1, "(0 or 1)")
    table.check_range(r, *RESISTANCE_RANGE, "ohm", "; is the resistance in ohm?")
    address = table.column(cell).astype(int)
    passes = np.concatenate([[0], np.cumsum(np.diff(address) < 0)])
    return ProgramVerifyData(path, address, passes, table.column(reads).astype(int), table.column(sets).astype(int),
                             table.column(resets).astype(int), table.column(success) > 0.5, table.column(r))
