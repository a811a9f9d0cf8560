"""The contract between the worker pool and a simulator back end.

A back end turns one `SimJob` into one `SimResult` inside a worker process (`cosim.spice.worker`); the pool
(`cosim.spice.pool`) picks it by `job.simulator`. Every back end follows the same conventions, so that results
of different simulators compare directly:

- vectors are keyed in lower case: node voltages ``"v(node)"``, branch currents ``"i(source)"`` (positive
  into the source's + terminal, SPICE's sign), anything else by the simulator's own lower-case name
  (e.g. ``"@r1[i]"``); subcircuit nodes as ``"v(x1.node)"``;
- the independent axis is stored under its own name and named in `SimResult.axis`: ``"time"`` (s) for a
  transient, ``"frequency"`` (Hz, real float64) for AC, the swept source's lower-case name (e.g. ``"v1"``, V or
  A) for a DC sweep, and None for an operating point, where every vector is a 0-d array;
- AC vectors are complex128, all others float64;
- failures are raised as `NetlistError` (the input is wrong: name the line), `SimulationError` (the simulator
  ran and failed: include the log tail) or `SimulatorNotFoundError` (say what to install);
- the worker adds the provenance every result carries (`common_provenance`); a back end adds only what it
  alone knows (e.g. which convergence attempt succeeded, compiled model hashes).

Only the requested `SimJob.outputs` (plus the axis) are kept; the worker applies `keep_outputs` after the
back end returns, so a back end may return more.
"""
from __future__ import annotations

import hashlib
import importlib
import socket
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from cosim.spice.job import NetlistError, SimJob, SimResult, SimulatorNotFoundError


@runtime_checkable
class Backend(Protocol):
    """A simulator back end, instantiated once per worker process."""

    name: str
    """Value of `SimJob.simulator` this back end serves."""

    def available(self) -> bool:
        """True when the simulator (program or shared library) is installed; cheap, loads nothing."""

    def version(self) -> str:
        """Simulator version string, recorded in provenance."""

    def run(self, job: SimJob, workdir: Path) -> SimResult:
        """Run `job`; `workdir` is an empty scratch folder, emptied again after the job."""


BACKENDS: dict[str, str] = {
    "ngspice": "cosim.spice.ngspice:NgspiceBackend",
    "vacask": "cosim.spice.vacask:VacaskBackend",
}
"""Back end class of each simulator name, as "module:class" (imported on first use, inside the worker)."""

_instances: dict[str, Backend] = {}


def get_backend(simulator: str) -> Backend:
    """The back end of `simulator` (one instance per process)."""
    if simulator not in _instances:
        if simulator not in BACKENDS:
            raise SimulatorNotFoundError(f"unknown simulator {simulator!r}; known: {sorted(BACKENDS)}")
        module_name, class_name = BACKENDS[simulator].split(":")
        try:
            backend_class = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as error:
            raise SimulatorNotFoundError(
                f"the {simulator} back end ({BACKENDS[simulator]}) cannot be imported: {error}") from error
        _instances[simulator] = backend_class()
    return _instances[simulator]


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def common_provenance(job: SimJob, backend: Backend, wall_s: float) -> dict:
    """Provenance fields every result carries, whatever its simulator.

    `wall_s` is the simulation's wall-clock time in s (inside the worker, without queueing or transfer).
    """
    return {
        "simulator": backend.name,
        "simulator_version": backend.version(),
        "netlist_sha256": job.circuit.content_hash(),
        "verilog_a": {path: file_sha256(path) for path in job.circuit.verilog_a if Path(path).is_file()},
        "parameters": dict(job.circuit.parameters),
        "analysis": dict(vars(job.analysis)),  # scalar fields: dataclasses.asdict's deep copy is 20x slower
        "seed": job.seed,
        "job_key": job.key(),
        "job_name": job.name,
        "host": socket.gethostname(),
        "wall_s": wall_s,
    }


def keep_outputs(result: SimResult, outputs: tuple[str, ...], job_label: str) -> SimResult:
    """`result` restricted to `outputs` (all vectors when empty) plus the axis; a missing output is an error."""
    if not outputs:
        return result
    wanted = [name.lower() for name in outputs]
    missing = [name for name in wanted if name not in result.vectors]
    if missing:
        raise NetlistError(
            f"job {job_label}: requested output(s) {missing} not produced by the simulation; "
            f"available: {sorted(result.vectors)}")
    keep = wanted + ([result.axis] if result.axis is not None else [])
    result.vectors = {name: np.asarray(result.vectors[name]) for name in keep}
    return result
