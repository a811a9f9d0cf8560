"""A typed, simulator-neutral description of one simulation and of its result.

A `SimJob` is plain data (picklable, hashable content) so that it can be sent to a worker process or a Dask
worker, hashed for resumable sweeps, and rendered by any back end that supports its elements.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Union

import numpy as np


class SimError(Exception):
    """Base class of every engine error."""


class NetlistError(SimError):
    """The netlist cannot be used as given (syntax, unknown model, refused control command).

    `line` holds the offending netlist line where it is known.
    """

    def __init__(self, message: str, line: str | None = None):
        super().__init__(message if line is None else f"{message}\n  offending line: {line}")
        self.line = line


class SimulationError(SimError):
    """The simulator ran but did not produce a result (no convergence, time limit, crash).

    `log_tail` holds the last lines of the simulator's output.
    """

    def __init__(self, message: str, log_tail: str = ""):
        super().__init__(message if not log_tail else f"{message}\n--- simulator log (tail) ---\n{log_tail}")
        self.log_tail = log_tail


class SimulatorNotFoundError(SimError):
    """A simulator, compiler or shared library the job needs is not installed."""


# Analyses take keyword arguments only, named and ordered as in SPICE's cards (.tran tstep tstop ...), so that a
# call in another order fails instead of swapping two values.


@dataclass(frozen=True, kw_only=True)
class Op:
    """DC operating point (``.op``)."""

    kind: Literal["op"] = "op"


@dataclass(frozen=True, kw_only=True)
class DcSweep:
    """DC sweep of one independent source (``.dc source start stop step``)."""

    source: str
    """Name of the swept source (e.g. "V1")."""
    start: float
    """First value, V or A."""
    stop: float
    """Last value, V or A."""
    step: float
    """Increment, V or A."""
    kind: Literal["dc"] = "dc"


@dataclass(frozen=True, kw_only=True)
class Ac:
    """Small-signal AC analysis, logarithmic in frequency (``.ac dec points_per_decade start stop``)."""

    points_per_decade: int = 20
    """Points per decade."""
    start: float
    """First frequency, Hz."""
    stop: float
    """Last frequency, Hz."""
    kind: Literal["ac"] = "ac"


@dataclass(frozen=True, kw_only=True)
class Tran:
    """Transient analysis (``.tran step stop [start [max_step]] [uic]``)."""

    step: float
    """Output (and suggested) time step, s."""
    stop: float
    """End time, s."""
    start: float = 0.0
    """Time from which results are kept, s (the simulation always starts at 0)."""
    max_step: float | None = None
    """Largest internal time step, s (None: simulator default)."""
    uic: bool = False
    """Start from initial conditions instead of an operating point."""
    method: Literal["trap", "gear"] | None = None
    """Integration method (None: the simulator's default, trapezoidal). "gear" (2nd-order BDF, VACASK's "gear2")
    damps the ringing trapezoidal integration shows on stiff state variables."""
    kind: Literal["tran"] = "tran"


Analysis = Union[Op, DcSweep, Ac, Tran]


@dataclass(frozen=True)
class Circuit:
    """A circuit: SPICE netlist text (without analysis or .end), plus what it includes.

    `netlist` is the body in the back end's dialect (ngspice syntax for the ngspice back end, VACASK syntax for
    VACASK). `includes` are netlist files (e.g. from ``netlists/``) read and inlined by the back end, and
    `verilog_a` lists Verilog-A sources (e.g. from ``models/``) compiled to OSDI before the run.
    """

    netlist: str
    """Netlist body text."""
    title: str = "cosim circuit"
    """Title line."""
    includes: tuple[str, ...] = ()
    """Paths of netlist files to include."""
    verilog_a: tuple[str, ...] = ()
    """Paths of Verilog-A sources the circuit instantiates."""
    parameters: tuple[tuple[str, float], ...] = ()
    """Circuit parameters (name, value), rendered as .param lines / VACASK parameters."""
    elements: tuple = ()
    """Simulator-neutral elements (`cosim.spice.elements`), each rendering itself with `.ngspice()` and
    `.vacask()`; rendered before `netlist`, so a circuit can be made of elements alone and run on either."""

    @classmethod
    def from_deck(cls, path: str | Path, *, allow_outside: bool = False) -> Circuit:
        """The circuit of an ngspice deck file: its first line as title, its cards, and the files its ``.include``
        and ``.lib`` cards name (only inside the deck's folder unless `allow_outside`); its analysis is left out
        (see `cosim.spice.deck`, whose `deck_job` gives the whole job)."""
        from cosim.spice.deck import read_deck  # the deck reader builds on this module

        return read_deck(path, allow_outside=allow_outside).circuit

    def content_hash(self) -> str:
        """SHA-256 over the netlist, the parameters and the contents of every included file."""
        h = hashlib.sha256()
        h.update(self.title.encode())
        h.update(self.netlist.encode())
        h.update(repr(self.parameters).encode())
        h.update(repr(self.elements).encode())
        for path in self.includes + self.verilog_a:
            h.update(path.encode())
            p = Path(path)
            if p.exists():
                h.update(p.read_bytes())
        return h.hexdigest()


@dataclass(frozen=True)
class SimJob:
    """One simulation: a circuit, one analysis, the vectors to keep, and how to run it."""

    circuit: Circuit
    """What to simulate."""
    analysis: Analysis
    """Which analysis to run."""
    outputs: tuple[str, ...] = ()
    """Vector names to keep (e.g. "v(out)", "i(v1)"); empty keeps every vector."""
    simulator: Literal["ngspice", "vacask"] = "ngspice"
    """Back end that runs it."""
    seed: int | None = None
    """Seed passed to the simulator (and used by the caller for any sampling that produced the circuit)."""
    timeout: float = 120.0
    """Wall-clock limit for the whole job, s."""
    name: str = ""
    """Label for progress bars and error messages."""
    allow_shell: bool = False
    """Permit control commands that run programs or touch files (refused by default)."""
    options: tuple[tuple[str, float], ...] = ()
    """Simulator options (name, value), e.g. (("reltol", 1e-4),): ``.options`` for ngspice, ``options`` for
    VACASK. Both read reltol, abstol (A) and vntol (V) with SPICE's meaning; names are passed through, so an
    option one simulator lacks is its error."""

    @property
    def label(self) -> str:
        """How messages name the job: its name, else its key."""
        return self.name or self.key()

    def key(self) -> str:
        """Stable content key used to resume sweeps: equal jobs have equal keys."""
        payload = json.dumps(
            {"circuit": self.circuit.content_hash(), "analysis": dict(vars(self.analysis)), "outputs": self.outputs,
             "simulator": self.simulator, "seed": self.seed,
             **({"options": self.options} if self.options else {})},  # keys of jobs without options unchanged
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:24]


@dataclass
class SimResult:
    """Vectors of one finished simulation, as numpy arrays keyed by lower-case vector name."""

    vectors: dict[str, np.ndarray]
    """Every kept vector; the sweep axis is also stored under its own name (e.g. "time", "frequency")."""
    axis: str | None
    """Name of the independent axis ("time", "frequency", the swept source, or None for op)."""
    provenance: dict = field(default_factory=dict)
    """simulator, simulator_version, netlist_sha256, model hashes, parameters, seed, job key, wall_s."""
    log: str = ""
    """Simulator messages (warnings) worth keeping."""

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.vectors[name.lower()]
        except KeyError:
            raise KeyError(f"no vector {name!r} in result; have {sorted(self.vectors)}") from None

    @property
    def x(self) -> np.ndarray | None:
        """The independent axis (time in s, frequency in Hz, swept value), or None for an operating point."""
        return None if self.axis is None else self.vectors[self.axis]
