"""ngspice back end: PySpice 1.5 in shared mode on Debian's libngspice0, one simulator per worker process.

A job is rendered into a self-contained deck (`render_deck`): ``.title``, ``.options``, ``.param``s, the
contents of `Circuit.includes` inlined, each of `Circuit.elements` via ``.ngspice()``, the netlist body, a
``.save`` of the requested outputs, the analysis card and ``.end``. The deck is handed to ngspice as a string
(``ngSpice_Circ``) and vectors are read back from the result plot; PySpice's Circuit object model is not used.

Convergence policy (`CONVERGENCE_POLICY`): a job that loads but does not converge (``run simulation(s)
aborted``: no DC solution, time step too small) is retried in the same worker with

1. the deck as given;
2. ``.options gminsteps=12 srcsteps=50 itl1=500 itl2=200 itl4=50 rshunt=1e12``: instead of ngspice's
   default dynamic gmin and source stepping, the spice3 algorithms (gmin from 1 S down over 12 decades, sources
   ramped in 50 steps), more Newton iterations (DC, sweep, per time point), and a 1 TOhm shunt from every node
   to ground (removes floating nodes; its 1 pA/V is far below what our circuits conduct);
3. the same plus ``method=gear`` and, for a transient, a 10x smaller maximum time step;

and then fails with a `SimulationError` listing the attempts and the last log tail. The attempt that succeeded
is recorded in ``provenance["convergence_attempt"]`` (1 = as given). Netlist errors are never retried.

Known traps of ngspice 39 (REFERENCE.md): ``V1 n 0 dc 0 external`` segfaults (write ``V1 n 0 external``); the
library keeps global state and cannot recover from some netlist errors ("awaits to be detached"), so the
worker retires after any failed job; PySpice leaks memory across transients, so workers are recycled.
"""
from __future__ import annotations

import ctypes.util
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySpice.Spice.NgSpice.Shared import NgSpiceShared

from cosim.spice.job import (
    Ac,
    DcSweep,
    NetlistError,
    Op,
    SimJob,
    SimResult,
    SimulationError,
    SimulatorNotFoundError,
    Tran,
)
from cosim.spice.safety import check_netlist

LIBRARY_FALLBACKS = (
    "/lib/x86_64-linux-gnu/libngspice.so.0",
    "/usr/lib/x86_64-linux-gnu/libngspice.so.0",
    "/usr/lib/aarch64-linux-gnu/libngspice.so.0",
    "/usr/local/lib/libngspice.so",
    "/usr/lib/libngspice.so",
)
"""Where libngspice is looked for when neither $NGSPICE_LIBRARY_PATH nor the dynamic linker's cache names it."""

LOG_TAIL_LINES = 40
"""Lines of ngspice output kept in error messages."""


def find_library() -> str | None:
    """Path or soname of libngspice: $NGSPICE_LIBRARY_PATH if set, else the linker's cache, else known paths.

    Debian's libngspice0 ships only ``libngspice.so.0`` (no unversioned ``.so``, which PySpice looks for);
    passing the real name avoids needing a symlink.
    """
    configured = os.environ.get("NGSPICE_LIBRARY_PATH")
    if configured:
        return configured if Path(configured).is_file() else None
    found = ctypes.util.find_library("ngspice")
    if found:
        return found
    return next((path for path in LIBRARY_FALLBACKS if Path(path).is_file()), None)


# --- deck rendering -----------------------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD = re.compile(r"\S+")
_BODY_FORBIDDEN = re.compile(r"^\.(end|op|dc|ac|tran|noise|pz|sens|tf|disto)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Deck:
    """An ngspice input deck, one card per line, with where each line came from (for error messages)."""

    lines: tuple[str, ...]
    """Deck lines, no empty ones (line i+1 is what ngspice calls "line i+1")."""
    origins: tuple[str, ...]
    """Origin of each line: "netlist line 3", "netlists/x.cir:12", "element R1", "generated"."""

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def describe(self, number: int) -> tuple[str, str | None]:
        """(origin, text) of 1-based deck line `number`, or ("deck line N", None) when out of range."""
        if 1 <= number <= len(self.lines):
            return self.origins[number - 1], self.lines[number - 1]
        return f"deck line {number}", None

    def find(self, text: str) -> str:
        """Origin of the first line equal to `text` (ignoring case and spacing), or "unknown line"."""
        wanted = " ".join(text.lower().split())
        for line, origin in zip(self.lines, self.origins):
            if " ".join(line.lower().split()) == wanted:
                return origin
        return "unknown line"


@dataclass(frozen=True)
class ConvergenceAttempt:
    """One step of the convergence policy."""

    name: str
    """Short description used in messages and provenance."""
    options: str
    """Extra ``.options`` (empty: none)."""
    tran_max_step_divisor: float = 1.0
    """The transient's maximum step is divided by this."""


_STEPPING = "gminsteps=12 srcsteps=50 itl1=500 itl2=200 itl4=50 rshunt=1e12"
CONVERGENCE_POLICY: tuple[ConvergenceAttempt, ...] = (
    ConvergenceAttempt("as given", ""),
    ConvergenceAttempt("gmin/source stepping, more iterations, rshunt=1e12", _STEPPING),
    ConvergenceAttempt("plus method=gear and a 10x smaller maximum time step", _STEPPING + " method=gear", 10.0),
)


def _number(value: float) -> str:
    return repr(float(value))  # the shortest text that reads back as the same double


def analysis_card(analysis: Op | DcSweep | Ac | Tran, max_step_divisor: float = 1.0) -> str:
    """The ngspice analysis card of `analysis`."""
    if isinstance(analysis, Op):
        return ".op"
    if isinstance(analysis, DcSweep):
        return f".dc {analysis.source} {_number(analysis.start)} {_number(analysis.stop)} {_number(analysis.step)}"
    if isinstance(analysis, Ac):
        return f".ac dec {int(analysis.points_per_decade)} {_number(analysis.start)} {_number(analysis.stop)}"
    if isinstance(analysis, Tran):
        card = f".tran {_number(analysis.step)} {_number(analysis.stop)}"
        max_step = analysis.max_step
        if max_step_divisor != 1.0:
            # ngspice's default maximum step is min(step, (stop - start) / 50)
            max_step = (max_step or min(analysis.step, (analysis.stop - analysis.start) / 50)) / max_step_divisor
        if analysis.start or max_step is not None:
            card += f" {_number(analysis.start)}"
        if max_step is not None:
            card += f" {_number(max_step)}"
        return card + (" uic" if analysis.uic else "")
    raise NetlistError(f"ngspice back end: unsupported analysis {analysis!r}")


def circuit_lines(job: SimJob) -> list[tuple[str, str]]:
    """(text, origin) of the circuit's own lines: inlined includes, elements, then the netlist body."""
    lines: list[tuple[str, str]] = []
    for path in job.circuit.includes:
        if not Path(path).is_file():
            raise NetlistError(f"include file {path!r} (listed in Circuit.includes) does not exist")
        lines += [(text, f"{path}:{n}") for n, text in enumerate(Path(path).read_text().splitlines(), 1)]
    for element in job.circuit.elements:
        label = f"element {getattr(element, 'name', type(element).__name__)}"
        lines += [(text, label) for text in element.ngspice().splitlines()]
    for n, text in enumerate(job.circuit.netlist.splitlines(), 1):
        if _BODY_FORBIDDEN.match(text.strip()):
            raise NetlistError(
                f"netlist line {n}: the body must not contain analysis cards or .end; the back end appends "
                "SimJob.analysis and .end", text)
        lines.append((text, f"netlist line {n}"))
    return [(text, origin) for text, origin in lines if text.strip()]


def render_deck(job: SimJob, attempt: ConvergenceAttempt = CONVERGENCE_POLICY[0]) -> Deck:
    """The ngspice deck of `job` for one convergence `attempt`; refuses unsafe netlists (see `safety`)."""
    title = " ".join(job.circuit.title.split()) or "cosim circuit"
    lines = [(f".title {title}", "generated")]
    if job.seed is not None:
        lines.append((f".options seed={int(job.seed)}", "generated"))
    if attempt.options:
        lines.append((f".options {attempt.options}", "generated"))
    if isinstance(job.analysis, Tran) and job.analysis.method is not None:
        lines.append((f".options method={job.analysis.method}", "generated"))
    for option, value in job.options:
        if not _NAME.fullmatch(option):
            raise NetlistError(f"simulator option name {option!r} is not a valid SPICE identifier")
        lines.append((f".options {option}={_number(value)}", "generated"))
    for name, value in job.circuit.parameters:
        if not _NAME.fullmatch(name):
            raise NetlistError(f"parameter name {name!r} is not a valid SPICE identifier")
        try:
            lines.append((f".param {name}={_number(value)}", "generated"))
        except (TypeError, ValueError):
            raise NetlistError(f"parameter {name} = {value!r} is not a number") from None
    lines += circuit_lines(job)
    if bad := [output for output in job.outputs if not _WORD.fullmatch(output)]:
        raise NetlistError(f"output names must be single words such as v(out) or i(v1), not {bad}")
    if job.outputs:
        lines.append((".save " + " ".join(job.outputs), "generated"))
    lines.append((analysis_card(job.analysis, attempt.tran_max_step_divisor), "generated"))
    lines.append((".end", "generated"))
    # every field, not only the netlist, is checked: a line break smuggled into one would start a new card
    lines = [(text, origin) for raw, origin in lines for text in raw.splitlines() if text.strip()]
    check_netlist(lines, allow_shell=job.allow_shell)
    return Deck(tuple(text for text, _ in lines), tuple(origin for _, origin in lines))


# --- reading ngspice's output ---------------------------------------------------------------------------------

def _tail(log: list[str]) -> str:
    return "\n".join(log[-LOG_TAIL_LINES:])


_LOG_PROBLEM = re.compile(
    r"Error on line (?P<error_line>\d+)|Netlist line no\. (?P<netlist_line>\d+)|unknown subckt: (?P<subckt>.*)"
    r"|(?P<no_data>no data saved)"
    r"|(?P<unparsed>circuit not parsed|cannot recover|check your input netlist|there aren't any circuits)")
"""What ngspice writes about a deck it rejects; one pattern, so the log of a good job is scanned once."""
_MISSING_MODEL = re.compile(r"can't find model '([^']+)'")


def netlist_error(log: list[str], deck: Deck, label: str) -> NetlistError | None:
    """The NetlistError ngspice's output reports for `deck`, or None when it reports none."""
    for i, line in enumerate(log):
        if (problem := _LOG_PROBLEM.search(line)) is None:
            continue
        following = log[i + 1:i + 4]
        if problem["error_line"]:
            origin, text = deck.describe(int(problem["error_line"]))
            model = next((found[1] for entry in log if (found := _MISSING_MODEL.search(entry))), None)
            reason = following[1] if len(following) > 1 else "syntax error"
            what = f"unknown model {model!r}" if model else reason.strip()
            return NetlistError(f"job {label}: ngspice rejects {origin}: {what}", text or following[0])
        if problem["netlist_line"]:
            origin, text = deck.describe(int(problem["netlist_line"]))
            reason = following[0] if following else "cannot evaluate"
            return NetlistError(f"job {label}: ngspice rejects {origin}: {reason.strip()}", text)
        if problem["subckt"] is not None:
            instance = problem["subckt"].strip()
            return NetlistError(
                f"job {label}: unknown subcircuit in {deck.find(instance)} (no .subckt of that name)", instance)
        if problem["no_data"]:
            save = next((text for text in deck.lines if text.lower().startswith(".save")), None)
            return NetlistError(
                f"job {label}: none of the requested outputs exists in the circuit; write node voltages as "
                "v(node), source currents as i(source), device quantities as @device[param] (in a subcircuit: "
                "@r.x1.r1[i])", save)
        return NetlistError(f"job {label}: ngspice cannot parse the deck\n--- ngspice log ---\n{_tail(log)}")
    return None


def _vector_name(name: str, is_voltage: bool) -> str:
    name = name.lower()
    if name.endswith("#branch"):
        return f"i({name[:-len('#branch')]})"
    if name.startswith(("@", "v(")) or not is_voltage:  # ngspice itself names a numeric node 2 "V(2)"
        return name
    return f"v({name})"


# --- the back end ---------------------------------------------------------------------------------------------

class _Session(NgSpiceShared):
    """The process's ngspice, with its output collected per job (``stdout ``/``stderr `` prefixes dropped)."""

    def __init__(self, **kwargs):
        self.output: list[str] = []
        super().__init__(**kwargs)

    def send_char(self, message: str, ngspice_id: int) -> int:
        self.output.append(message.partition(" ")[2])
        return 0

    def command(self, command: str) -> None:
        """Run a command; ngspice's verdict is read from `output`, not from PySpice's error guess."""
        try:
            self.exec_command(command)
        except Exception:  # PySpice raises on any "error" text; the caller inspects the output instead
            pass

    def simulate(self, deck: Deck) -> tuple[dict[str, tuple[np.ndarray, bool]] | None, list[str]]:
        """Load and run `deck`, then clear ngspice for the next job.

        Returns ({vector name: (data, is a node voltage)} or None when the run failed, ngspice's output).
        """
        self.output = []
        try:
            self.load_circuit(deck.text)
        except Exception:  # NameError / NgSpiceCircuitError: the reason is in the output
            pass
        self.command("run")
        plots = [name for name in self.plot_names if name != "const"]
        failed = not plots or any("simulation(s) aborted" in line for line in self.output)
        vectors = None if failed else {
            # the raw arrays: PySpice's to_waveform() would wrap them in unit objects
            name: (vector._data, vector._type == self.simulation_type.voltage)
            for name, vector in self.plot(None, plots[0]).items()}
        log, self.output = self.output, []
        self.command("destroy all")
        self.command("remcirc")
        self.output = []
        return vectors, log


class NgspiceBackend:
    """Runs `SimJob`s with ``simulator="ngspice"`` in this process's ngspice (see module docstring)."""

    name = "ngspice"

    def __init__(self):
        self._session: _Session | None = None

    def available(self) -> bool:
        return find_library() is not None

    def session(self) -> _Session:
        """This process's ngspice, started on first use."""
        if self._session is None:
            library = find_library()
            if library is None:
                raise SimulatorNotFoundError(
                    "ngspice's shared library (libngspice) was not found: install it with "
                    "`apt-get install libngspice0`, or set NGSPICE_LIBRARY_PATH to the library file "
                    f"(looked in the linker cache and {', '.join(LIBRARY_FALLBACKS)})")
            logging.getLogger("PySpice").setLevel(logging.CRITICAL)  # its warnings duplicate our log capture
            _Session.LIBRARY_PATH = library
            self._session = _Session.new_instance()
        return self._session

    def version(self) -> str:
        return str(self.session().ngspice_version)

    def run(self, job: SimJob, workdir: Path) -> SimResult:
        label = job.label
        session = self.session()
        if job.circuit.verilog_a:
            self._load_osdi(job, session)
        failures = []
        for number, attempt in enumerate(CONVERGENCE_POLICY, 1):
            deck = render_deck(job, attempt)
            vectors, log = session.simulate(deck)
            if error := netlist_error(log, deck, label):
                raise error
            if vectors is not None:
                result = self._result(job.analysis, vectors)
                result.provenance["convergence_attempt"] = number
                result.provenance["convergence_policy"] = attempt.name
                result.log = "\n".join(line for line in log if line.startswith("Warning"))
                return result
            failures.append(f"{number}: {attempt.name}")
        raise SimulationError(
            f"job {label}: ngspice did not converge; tried {'; '.join(failures)} (see cosim.spice.ngspice)",
            log_tail=_tail(log))

    @staticmethod
    def _result(analysis: Op | DcSweep | Ac | Tran, raw: dict[str, tuple[np.ndarray, bool]]) -> SimResult:
        """SimResult of ngspice's vectors named by the conventions of `cosim.spice.backend`."""
        axis: str | None = None
        vectors: dict[str, np.ndarray] = {}
        for name, (data, is_voltage) in raw.items():
            if data.size == 0:  # what ngspice returns for an unknown device quantity; reported as missing
                continue
            if (isinstance(analysis, Tran) and name == "time") or (isinstance(analysis, Ac) and name == "frequency"):
                axis = name
                vectors[name] = data.real.copy()
            elif isinstance(analysis, DcSweep) and name.endswith("sweep"):  # "v-sweep", "i-sweep"
                axis = analysis.source.lower()
                vectors[axis] = data
            else:
                vectors[_vector_name(name, is_voltage)] = data
        if isinstance(analysis, Op):
            vectors = {name: np.asarray(data[0]) for name, data in vectors.items()}
        return SimResult(vectors=vectors, axis=axis)

    @staticmethod
    def _load_osdi(job: SimJob, session: _Session) -> None:
        """Load the job's compiled Verilog-A models into an ngspice built with OSDI, or explain why not."""
        try:
            from cosim.spice.veriloga import compile_va
        except ImportError as error:
            raise SimulatorNotFoundError(f"Verilog-A support (cosim.spice.veriloga) unavailable: {error}") from error
        for source in job.circuit.verilog_a:
            session.output = []
            session.command(f"pre_osdi {compile_va(source)}")
            if any("no such command" in line or "rror" in line for line in session.output):
                raise SimulatorNotFoundError(
                    f"job {job.label}: this ngspice cannot load the Verilog-A model {source} "
                    f"(Debian's ngspice 39 has no OSDI support): run the job with simulator='vacask', or point "
                    f"NGSPICE_LIBRARY_PATH at an ngspice built with OSDI >= 0.4.\n{_tail(session.output)}")
