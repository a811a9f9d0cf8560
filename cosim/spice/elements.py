"""Simulator-neutral circuit elements that render themselves for ngspice and for VACASK.

Each element is a frozen dataclass with `.ngspice()` and `.vacask()` (one netlist line, or a few) and
`.vacask_preamble()`, the `load`/`model` statements its VACASK line needs (VACASK instantiates every device,
even a resistor, from a model; the back end collects and de-duplicates these). A `Circuit` made of elements
alone runs on either back end:

    Circuit(netlist="", elements=(
        VoltageSource("V1", "in", "0", waveform=Pulse(0.0, 1.0, rise=1e-6)),
        Resistor("R1", "in", "out", 1e3),
        Capacitor("C1", "out", "0", 1e-6),
    ))

Names: an element is rendered under the same reference name on both simulators, its name with the SPICE
type letter prepended when missing (`Resistor("load", ...)` is `Rload`), so vectors such as ``i(v1)`` name
the same thing in both results. Node "0" is ground. Values are SI numbers (V, A, ohm, F, H, s, Hz).

Waveform sources: ngspice uses `dc` for operating points and DC sweeps and the waveform in transients;
VACASK evaluates the waveform at t = 0 in every analysis, so its back end switches waveform sources to
``type="dc"`` before op, dc and ac analyses to give both simulators the same meaning.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import ClassVar, Protocol, Union

Number = Union[float, int]
Params = tuple[tuple[str, Number], ...]

VACASK_SPICE_MODELS = {"d": ("spice/diode.osdi", "sp_diode")}
"""SPICE model types that VACASK provides: type -> (OSDI file in VACASK's module library, module name)."""
CCCS_MODEL = "cosim_cccs"
"""Model name under which netlists written for VACASK declare its built-in current-controlled current source
(``model cosim_cccs cccs``; instances ``F1 (p n) cosim_cccs ctlinst="V1" gain=2`` drive gain * I(V1) from p
through the source to n, as ngspice's ``F1 p n V1 2``)."""


class Element(Protocol):
    """What a back end needs from an element."""

    def ngspice(self) -> str:
        """ngspice netlist line(s)."""

    def vacask(self) -> str:
        """VACASK netlist line(s)."""

    def vacask_preamble(self) -> tuple[str, ...]:
        """VACASK `load`/`model` statements the line(s) need; identical statements are emitted once."""


def number(value: Number) -> str:
    """A number (Python or numpy) as both simulators read it, without loss (shortest round-trip form)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"expected a number, got {value!r}")
    return str(int(value)) if isinstance(value, numbers.Integral) else repr(float(value))


def _check_names(element: object, *names: str) -> None:
    for name in names:
        if not name or any(ch.isspace() for ch in name) or any(ch in name for ch in "()=\"'"):
            raise ValueError(f"{type(element).__name__}: invalid name {name!r} (no spaces, quotes, '(', ')', '=')")


def _assignments(params: Params) -> str:
    return " ".join(f"{key}={number(value)}" for key, value in params)


# ----------------------------------------------------------------------------------------------- waveforms


@dataclass(frozen=True)
class Pulse:
    """Trapezoidal pulse from `initial` to `pulsed` and back, optionally periodic (SPICE PULSE)."""

    initial: float
    """Value before the pulse, V or A."""
    pulsed: float
    """Value on the pulse top, V or A."""
    delay: float = 0.0
    """Start of the rising edge, s."""
    rise: float = 1e-9
    """Rise time, s (> 0)."""
    fall: float = 1e-9
    """Fall time, s (> 0)."""
    width: float | None = None
    """Time on top, s; None: stays at `pulsed` (a step)."""
    period: float | None = None
    """Repetition period, s; None: a single pulse."""

    def __post_init__(self) -> None:
        if self.rise <= 0 or self.fall <= 0:
            raise ValueError(f"Pulse: rise and fall must be > 0 s, got rise={self.rise}, fall={self.fall}")
        if self.period is not None:
            if self.width is None:
                raise ValueError("Pulse: a periodic pulse needs a width")
            if self.period <= self.rise + self.width + self.fall:
                raise ValueError(f"Pulse: period {self.period} s must exceed rise + width + fall")

    def ngspice(self) -> str:
        # Omitted trailing PW and PER default to the transient's stop time: no second edge within the run.
        values = [self.initial, self.pulsed, self.delay, self.rise, self.fall]
        values += [v for v in (self.width, self.period) if v is not None]
        return f"PULSE({' '.join(number(v) for v in values)})"

    def vacask(self) -> str:
        step = self.width is None  # VACASK stays on top when fall <= 0
        return (f'type="pulse" val0={number(self.initial)} val1={number(self.pulsed)} delay={number(self.delay)}'
                f" rise={number(self.rise)} fall={number(0.0 if step else self.fall)}"
                f" width={number(0.0 if step else self.width)} period={number(self.period or 0.0)}")


@dataclass(frozen=True)
class Sine:
    """Damped sine: offset + amplitude sin(2 pi f (t - delay) + phase) exp(-damping (t - delay)) (SPICE SIN)."""

    offset: float
    """DC offset, V or A."""
    amplitude: float
    """Amplitude, V or A."""
    frequency: float
    """Frequency, Hz (> 0)."""
    delay: float = 0.0
    """Start time, s; before it the value is offset + amplitude sin(phase)."""
    damping: float = 0.0
    """Damping factor, 1/s."""
    phase: float = 0.0
    """Phase, degrees."""

    def __post_init__(self) -> None:
        if self.frequency <= 0:
            raise ValueError(f"Sine: frequency must be > 0 Hz, got {self.frequency}")

    def ngspice(self) -> str:
        values = (self.offset, self.amplitude, self.frequency, self.delay, self.damping, self.phase)
        return f"SIN({' '.join(number(v) for v in values)})"

    def vacask(self) -> str:
        return (f'type="sine" sinedc={number(self.offset)} ampl={number(self.amplitude)}'
                f" freq={number(self.frequency)} delay={number(self.delay)} theta={number(self.damping)}"
                f" tdphase={number(self.phase)}")


@dataclass(frozen=True)
class Pwl:
    """Piecewise-linear waveform through (time, value) points; constant before the first and after the last."""

    points: tuple[tuple[float, float], ...]
    """(time in s, value in V or A) pairs with increasing times."""

    def __post_init__(self) -> None:
        times = [t for t, _ in self.points]
        if not times or any(b <= a for a, b in zip(times, times[1:])):
            raise ValueError(f"Pwl: need at least one point with strictly increasing times, got {self.points}")

    def ngspice(self) -> str:
        return f"PWL({' '.join(f'{number(t)} {number(v)}' for t, v in self.points)})"

    def vacask(self) -> str:
        return f"type=\"pwl\" wave=[{', '.join(f'{number(t)}, {number(v)}' for t, v in self.points)}]"


Waveform = Union[Pulse, Sine, Pwl]


# ------------------------------------------------------------------------------------------------ elements


class _Instance:
    """What every instance has: a name, rendered with its SPICE type letter, and (by default) no preamble."""

    letter: ClassVar[str]

    @property
    def ref(self) -> str:
        """Instance name on both simulators: `name`, with the SPICE type letter prepended if missing."""
        name = self.name  # type: ignore[attr-defined]
        return name if name[:1].lower() == self.letter.lower() else self.letter + name

    def vacask_preamble(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True)
class _TwoTerminal(_Instance):
    name: str
    """Instance name (the type letter is prepended where missing)."""
    a: str
    """First node."""
    b: str
    """Second node."""
    value: float
    """Element value in the unit of the subclass."""

    vacask_model: ClassVar[str]
    vacask_parameter: ClassVar[str]
    osdi: ClassVar[str]

    def __post_init__(self) -> None:
        _check_names(self, self.name, self.a, self.b)


    def ngspice(self) -> str:
        return f"{self.ref} {self.a} {self.b} {number(self.value)}"

    def vacask(self) -> str:
        return f"{self.ref} ({self.a} {self.b}) {self.vacask_model} {self.vacask_parameter}={number(self.value)}"

    def vacask_preamble(self) -> tuple[str, ...]:
        return (f'load "{self.osdi}"', f"model {self.vacask_model} {self.osdi.removesuffix('.osdi')}")


@dataclass(frozen=True)
class Resistor(_TwoTerminal):
    """Linear resistor between `a` and `b`; `value` in ohm."""

    letter = "R"
    vacask_model = "cosim_resistor"
    vacask_parameter = "r"
    osdi = "resistor.osdi"


@dataclass(frozen=True)
class Capacitor(_TwoTerminal):
    """Linear capacitor between `a` and `b`; `value` in F."""

    letter = "C"
    vacask_model = "cosim_capacitor"
    vacask_parameter = "c"
    osdi = "capacitor.osdi"


@dataclass(frozen=True)
class Inductor(_TwoTerminal):
    """Linear inductor between `a` and `b`; `value` in H. Its current is the vector ``i(<ref>)``."""

    letter = "L"
    vacask_model = "cosim_inductor"
    vacask_parameter = "l"
    osdi = "inductor.osdi"


@dataclass(frozen=True)
class _IndependentSource(_Instance):
    name: str
    """Instance name (the type letter is prepended where missing)."""
    p: str
    """Positive node."""
    n: str
    """Negative node."""
    dc: float = 0.0
    """Value for operating points and DC sweeps, V or A."""
    ac: float = 0.0
    """Small-signal magnitude for AC analyses, V or A (phase 0)."""
    waveform: Waveform | None = None
    """Transient waveform; None: constant `dc`."""

    vacask_model: ClassVar[str]

    def __post_init__(self) -> None:
        _check_names(self, self.name, self.p, self.n)


    def ngspice(self) -> str:
        line = f"{self.ref} {self.p} {self.n} DC {number(self.dc)}"
        if self.ac:
            line += f" AC {number(self.ac)}"
        if self.waveform is not None:
            line += f" {self.waveform.ngspice()}"
        return line

    def vacask(self) -> str:
        line = f"{self.ref} ({self.p} {self.n}) {self.vacask_model} dc={number(self.dc)}"
        if self.ac:
            line += f" mag={number(self.ac)}"
        if self.waveform is not None:
            line += f" {self.waveform.vacask()}"
        return line

    def vacask_preamble(self) -> tuple[str, ...]:
        return (f"model {self.vacask_model} {self.vacask_model.removeprefix('cosim_')}",)


@dataclass(frozen=True)
class VoltageSource(_IndependentSource):
    """Independent voltage source, V(p) - V(n) = value. Its current ``i(<ref>)`` flows from `p` through the
    source to `n` (negative when the source delivers power, as in SPICE)."""

    letter = "V"
    vacask_model = "cosim_vsource"


@dataclass(frozen=True)
class CurrentSource(_IndependentSource):
    """Independent current source driving `value` A from `p` through the source to `n` (out of `n`)."""

    letter = "I"
    vacask_model = "cosim_isource"


@dataclass(frozen=True)
class Model:
    """A model card: a SPICE model type (`kind` "d") or a Verilog-A module (`kind` = module name).

    Verilog-A modules come from the circuit's `verilog_a` sources, which the back end compiles and loads.
    """

    name: str
    """Model name that instances refer to."""
    kind: str
    """SPICE model type ("d") or Verilog-A module name."""
    params: Params = ()
    """(parameter, value) pairs."""

    def __post_init__(self) -> None:
        _check_names(self, self.name, self.kind)

    def ngspice(self) -> str:
        card = f".model {self.name} {self.kind}"
        return f"{card}({_assignments(self.params)})" if self.params else card

    def vacask(self) -> str:
        module = VACASK_SPICE_MODELS.get(self.kind.lower(), (None, self.kind))[1]
        return f"model {self.name} {module} {_assignments(self.params)}".rstrip()

    def vacask_preamble(self) -> tuple[str, ...]:
        library = VACASK_SPICE_MODELS.get(self.kind.lower())
        return (f'load "{library[0]}"',) if library else ()


@dataclass(frozen=True)
class Diode(_Instance):
    """Junction diode from `anode` to `cathode` using a `Model(name, "d", ...)` card (SPICE parameters)."""

    name: str
    """Instance name (the type letter is prepended where missing)."""
    anode: str
    """Anode node."""
    cathode: str
    """Cathode node."""
    model: str
    """Name of a diode `Model` in the same circuit."""
    area: float | None = None
    """Area factor (dimensionless); None: the model's default."""

    letter = "D"

    def __post_init__(self) -> None:
        _check_names(self, self.name, self.anode, self.cathode, self.model)


    def ngspice(self) -> str:
        return f"{self.ref} {self.anode} {self.cathode} {self.model}" + (
            "" if self.area is None else f" area={number(self.area)}")

    def vacask(self) -> str:
        return f"{self.ref} ({self.anode} {self.cathode}) {self.model}" + (
            "" if self.area is None else f" area={number(self.area)}")


@dataclass(frozen=True)
class VerilogAInstance(_Instance):
    """An instance of a Verilog-A module; its parameters go on a model card of its own (`<ref>_model`).

    The module's source must be listed in the circuit's `verilog_a`. On ngspice this needs an OSDI-capable
    build (`cosim.spice.veriloga.ngspice_supports_osdi`).
    """

    name: str
    """Instance name ("N" is prepended where missing, as ngspice requires for OSDI devices)."""
    nodes: tuple[str, ...]
    """Terminal nodes in the module's port order."""
    module: str
    """Verilog-A module name."""
    params: Params = ()
    """(parameter, value) pairs, rendered on the model card."""

    letter = "N"

    def __post_init__(self) -> None:
        _check_names(self, self.name, self.module, *self.nodes)


    @property
    def model(self) -> Model:
        """The model card carrying the parameters."""
        return Model(f"{self.ref}_model", self.module, self.params)

    def ngspice(self) -> str:
        return f"{self.model.ngspice()}\n{self.ref} {' '.join(self.nodes)} {self.model.name}"

    def vacask(self) -> str:
        return f"{self.model.vacask()}\n{self.ref} ({' '.join(self.nodes)}) {self.model.name}"


@dataclass(frozen=True)
class SubcircuitInstance(_Instance):
    """An instance of a subcircuit defined in the circuit's netlist text or includes (in each dialect)."""

    name: str
    """Instance name ("X" is prepended where missing)."""
    nodes: tuple[str, ...]
    """Nodes in the subcircuit's port order."""
    subcircuit: str
    """Subcircuit name."""
    params: Params = ()
    """(parameter, value) overrides."""

    letter = "X"

    def __post_init__(self) -> None:
        _check_names(self, self.name, self.subcircuit, *self.nodes)


    def ngspice(self) -> str:
        return f"{self.ref} {' '.join(self.nodes)} {self.subcircuit} {_assignments(self.params)}".rstrip()

    def vacask(self) -> str:
        return f"{self.ref} ({' '.join(self.nodes)}) {self.subcircuit} {_assignments(self.params)}".rstrip()
