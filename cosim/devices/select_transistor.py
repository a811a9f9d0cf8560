"""The select transistor of a 1T1R cell, for any resistive-switching device: an NMOS whose gate voltage sets the
compliance current of a SET.

Cell: bit line ``bl`` -- device (te -> be) -- node ``cell`` -- NMOS (drain ``cell``, source ``sl``, gate ``wl``,
bulk at ground) -- source line ``sl``. SET: the bit line is driven positive with the source line at 0 V; the
transistor saturates at I_sat = kp/2 (w/l) (V_wl - vto)^2 (1 + lambda V_ds), which stops the SET current from
growing: a higher gate voltage, a higher compliance, a lower resistance after the SET. RESET: the source line is
driven positive with the bit line at 0 V and the gate high (the transistor's source is then the cell node, so
its gate overdrive is reduced by the cell node's voltage). The bulk stays at ground, below every node, so its
junctions are never forward biased.

Model: the SPICE level-1 (Shichman-Hodges) MOSFET: ngspice's built-in ``level=1``, and on VACASK its drain
current in Verilog-A (``models/nmos_level1.va``; VACASK's own port of the SPICE3 device, ``spice/mos1.osdi``,
stalls Newton in a RESET, when the transistor conducts backwards, see the module's header); a test checks that
their I-V curves agree to 1e-9 and follow the square law. Only vto, kp, lambda, w and l are set: no body effect
(gamma = 0), no capacitances; ngspice's default junction diodes are reverse biased here (1e-14 A), the
Verilog-A module has none. The default is a generic thin-oxide NMOS of a
~180 nm process (mu_n Cox ~ 200 uA/V^2, minimum length), sized so that gate voltages of 0.8 .. 1.5 V give
compliance currents of ~50 .. 560 uA, the SET currents of filamentary oxide RRAM: a representative device, not
a foundry model.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cosim.spice import Circuit, SimJob, Tran
from cosim.spice.elements import Pwl, VoltageSource, number

NMOS_VA = Path(__file__).resolve().parents[2] / "models" / "nmos_level1.va"
"""Verilog-A level-1 NMOS (module `nmos_level1`), the transistor on VACASK."""

BIT_LINE = "bl"
"""Node of the bit line (the device's te)."""
CELL_NODE = "cell"
"""Node between the device (be) and the transistor's drain."""
WORD_LINE = "wl"
"""Node of the gate."""
SOURCE_LINE = "sl"
"""Node of the transistor's source."""


@dataclass(frozen=True)
class SelectTransistor:
    """A level-1 NMOS (SPICE parameter names; SI units)."""

    vto: float = 0.5
    """Threshold voltage, V."""
    kp: float = 200e-6
    """Transconductance parameter mu_n Cox, A/V^2."""
    w: float = 1e-6
    """Channel width, m."""
    l: float = 0.18e-6  # noqa: E741 - the SPICE name
    """Channel length, m."""
    lam: float = 0.05
    """Channel-length modulation (SPICE LAMBDA), 1/V."""

    def validate(self) -> "SelectTransistor":
        """Raise ValueError naming the parameter if the transistor is meaningless; return self."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"SelectTransistor.{f.name} must be a finite number, got {value!r}")
        for name in ("kp", "w", "l"):
            if getattr(self, name) <= 0:
                raise ValueError(f"SelectTransistor.{name} must be > 0, got {getattr(self, name)!r}")
        if self.vto <= 0:
            raise ValueError(f"SelectTransistor.vto must be > 0 V (an enhancement NMOS that is off at 0 V gate), "
                             f"got {self.vto!r}")
        if self.lam < 0:
            raise ValueError(f"SelectTransistor.lam must be >= 0 1/V, got {self.lam!r}")
        return self

    @property
    def beta(self) -> float:
        """kp w/l, A/V^2."""
        return self.kp * self.w / self.l

    def saturation_current(self, v_gs: float) -> float:
        """Drain current in saturation at gate-source voltage `v_gs` (V), without channel-length modulation, A:
        the compliance of a SET."""
        return 0.5 * self.beta * max(v_gs - self.vto, 0.0) ** 2

    def gate_voltage(self, compliance: float) -> float:
        """Gate voltage (V) whose saturation current is `compliance` (A); inverse of `saturation_current`."""
        if compliance <= 0:
            raise ValueError(f"compliance current must be > 0 A, got {compliance!r}")
        return self.vto + math.sqrt(2 * compliance / self.beta)


@dataclass(frozen=True)
class Nmos:
    """A level-1 NMOS element (drain, gate, source, bulk) on both simulators, with a model card of its own."""

    name: str
    """Instance name ("M" is prepended where missing)."""
    drain: str
    """Drain node."""
    gate: str
    """Gate node."""
    source: str
    """Source node."""
    bulk: str = "0"
    """Bulk node."""
    params: SelectTransistor = SelectTransistor()
    """Device parameters."""

    @property
    def ref(self) -> str:
        """Instance name on both simulators."""
        return self.name if self.name[:1].lower() == "m" else "M" + self.name

    def _nodes(self) -> str:
        return f"{self.drain} {self.gate} {self.source} {self.bulk}"

    def _card(self) -> str:
        p = self.params.validate()
        return f"vto={number(p.vto)} kp={number(p.kp)} lambda={number(p.lam)}"

    def _size(self) -> str:
        return f"w={number(self.params.w)} l={number(self.params.l)}"

    def ngspice(self) -> str:
        return (f".model {self.ref}_model nmos(level=1 {self._card()})\n"
                f"{self.ref} {self._nodes()} {self.ref}_model {self._size()}")

    def vacask(self) -> str:
        """Needs `NMOS_VA` in the circuit's verilog_a (`transistor_files`)."""
        return (f"model {self.ref}_model nmos_level1 {self._card()} {self._size()}\n"
                f"{self.ref} ({self._nodes()}) {self.ref}_model")

    def vacask_preamble(self) -> tuple[str, ...]:
        return ()


def transistor_files(simulator: str) -> dict[str, tuple[str, ...]]:
    """Circuit fields the transistor needs on `simulator`: the Verilog-A module on VACASK, nothing on ngspice."""
    if simulator == "vacask":
        return {"verilog_a": (str(NMOS_VA),)}
    if simulator == "ngspice":
        return {}
    raise ValueError(f"unknown simulator {simulator!r}; use 'ngspice' or 'vacask'")


def with_transistor(files: dict[str, tuple[str, ...]], simulator: str) -> dict[str, tuple[str, ...]]:
    """`files` (Circuit fields of a device's model) plus those of the transistor on `simulator`."""
    merged = dict(files)
    for key, paths in transistor_files(simulator).items():
        merged[key] = tuple(merged.get(key, ())) + tuple(p for p in paths if p not in merged.get(key, ()))
    return merged


CellFactory = Callable[[str, str, str], object]
"""Builds the resistive device as an element: (instance name, te node, be node) -> element."""


def one_t_one_r(cell: CellFactory, files: dict[str, tuple[str, ...]], simulator: str, gate: float | Pwl,
                bit_line: float | Pwl, source_line: float | Pwl = 0.0,
                transistor: SelectTransistor = SelectTransistor(), title: str = "1T1R cell") -> Circuit:
    """A 1T1R cell on `simulator` driven by three sources: ``Vbl`` (bit line), ``Vwl`` (gate), ``Vsl`` (source
    line), each a constant (V) or a waveform. `cell` builds the device, `files` are the Circuit fields its model
    needs ({"includes": ...} or {"verilog_a": ...}). The device is instance ``dut``; its current from te to be is
    minus ``i(vbl)``."""
    transistor.validate()

    def source(name: str, node: str, value: float | Pwl) -> VoltageSource:
        if isinstance(value, Pwl):
            return VoltageSource(name, node, "0", waveform=value)
        return VoltageSource(name, node, "0", dc=float(value))

    elements = (source("Vbl", BIT_LINE, bit_line), source("Vwl", WORD_LINE, gate),
                source("Vsl", SOURCE_LINE, source_line), cell("dut", BIT_LINE, CELL_NODE),
                Nmos("sel", CELL_NODE, WORD_LINE, SOURCE_LINE, "0", transistor))
    return Circuit(netlist="", title=title, elements=elements, **with_transistor(files, simulator))


def set_pulse(v_set: float, rise: float, width: float, v_read: float, read: float) -> Pwl:
    """Bit-line waveform of a SET and a read: 0 -> v_set in `rise`, held `width`, back to 0 in `rise`, then
    `v_read` for `read` (V, s)."""
    if not v_set > 0 or not v_read > 0 or min(rise, width, read) <= 0:
        raise ValueError(f"set_pulse: need v_set > 0, v_read > 0 and positive times, got v_set={v_set} V, "
                         f"v_read={v_read} V, rise={rise} s, width={width} s, read={read} s")
    t_read = 3 * rise + width
    return Pwl(((0.0, 0.0), (rise, v_set), (rise + width, v_set), (2 * rise + width, 0.0), (t_read, v_read),
                (t_read + read, v_read)))


def set_and_read_job(cell: CellFactory, files: dict[str, tuple[str, ...]], simulator: str, v_gate: float,
                     v_set: float = 2.0, rise: float = 1e-6, width: float = 5e-6, v_read: float = 0.2,
                     read: float = 1e-6, v_gate_read: float = 3.0, transistor: SelectTransistor = SelectTransistor(),
                     points: int = 1000, outputs: tuple[str, ...] = ()) -> SimJob:
    """A SET through the select transistor at gate voltage `v_gate` (the compliance), then a read at `v_read`
    with the gate at `v_gate_read` (fully on). Vectors: ``i(vbl)`` (minus the cell current), ``v(bl)``,
    ``v(cell)`` and `outputs`. The read is the last `read` seconds."""
    wave = set_pulse(v_set, rise, width, v_read, read)
    stop = wave.points[-1][0]
    gate = Pwl(((0.0, v_gate), (3 * rise + width - rise / 2, v_gate), (3 * rise + width, v_gate_read)))
    circuit = one_t_one_r(cell, files, simulator, gate, wave, 0.0, transistor,
                          title=f"1T1R SET at V_wl = {v_gate:g} V")
    step = stop / points
    return SimJob(circuit, Tran(step=step, stop=stop, max_step=step, method="gear"),
                  outputs=("i(vbl)", f"v({BIT_LINE})", f"v({CELL_NODE})") + tuple(outputs), simulator=simulator,
                  name=f"1t1r-set-{simulator}-{v_gate:g}V")
