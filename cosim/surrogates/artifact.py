"""Surrogate artifacts: one JSON file per fitted surrogate (``surrogates/<kind>.json``), every kind one schema.

An artifact says what was fitted to what, and how well:

- ``kind`` ("felif", "rram", "crossbar", ...) and ``schema_version``;
- ``parameters``: name -> {"value", "unit", "default", "fitted", "description"};
- ``support``: where the fit holds (ranges of inputs and states), for the validity guard;
- ``doe``: the design of experiments (stimuli), ``fit``: residuals and optimiser record, ``validation``: errors
  on held-out stimuli;
- ``data``: kind-specific payload (e.g. a level table), checked by the kind's registered validator;
- ``provenance``: SHA-256 of every netlist/model file used, simulator versions, seeds, cosim version and
  commit, date, command line, wall time;
- ``notes``: what the surrogate does not capture.

`load` checks the file and raises `SurrogateFileError` naming the file and the problem (missing, not JSON, wrong
kind, other schema version, missing or ill-typed section); then it re-hashes the recorded netlists/models and
warns with `SurrogateProvenanceWarning` naming each file that changed or disappeared since the fit.
"""
from __future__ import annotations

import datetime
import importlib
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from cosim.spice.backend import file_sha256

SCHEMA_VERSION = 1
"""Version of the artifact layout; files of another version are refused (refit them with `cosim fit`)."""

REPO_ROOT = Path(__file__).resolve().parents[2]
"""Paths in provenance are relative to this folder (the repository root) when they lie inside it."""

SURROGATE_DIR = REPO_ROOT / "surrogates"
"""Where the shipped default artifacts live."""


class SurrogateFileError(ValueError):
    """A surrogate file cannot be used: missing, corrupted, of another kind or schema version."""

    def __init__(self, path: str | Path, problem: str):
        super().__init__(f"surrogate file {path}: {problem}")
        self.path = Path(path)
        self.problem = problem


class SurrogateProvenanceWarning(UserWarning):
    """The netlists or models a surrogate was fitted to have changed since: refit it (`cosim fit <kind>`)."""


@dataclass(frozen=True)
class Provenance:
    """Where a surrogate came from."""

    files: dict[str, str]
    """SHA-256 of each netlist/model file the fit simulated, by path (relative to the repository root)."""
    simulators: dict[str, str]
    """Simulator name -> version string, as the engine reported them."""
    seeds: dict[str, int]
    """Seeds of everything random in the fit (DoE, optimiser start), by purpose."""
    cosim_version: str
    """cosim's version, with the git commit where known."""
    created: str
    """Date and time of the fit (UTC, ISO 8601)."""
    command: str = ""
    """Command line that made it."""
    host: str = ""
    """Machine name and CPU count."""
    wall_s: float | None = None
    """Wall time of the whole fit including simulations, s."""
    parent: dict[str, Any] | None = None
    """The surrogate this one was refitted from (`cosim.surrogates.refit`): {"path", "sha256" (of the parent
    file), "version"}; None for a fit from scratch."""


@dataclass(frozen=True)
class SurrogateArtifact:
    """The content of one surrogate file (see the module docstring for the sections)."""

    kind: str
    """Which surrogate ("felif", "rram", "crossbar", ...)."""
    parameters: dict[str, dict[str, Any]]
    """name -> {"value", "unit", "default", "fitted", "description"}."""
    support: dict[str, Any]
    """Validity ranges of the fit, e.g. {"i_in": [lo, hi], "v": [lo, hi]} (units in `units`)."""
    provenance: Provenance
    """Where it came from."""
    doe: dict[str, Any] = field(default_factory=dict)
    """Design of experiments."""
    fit: dict[str, Any] = field(default_factory=dict)
    """Fit residuals and optimiser record."""
    validation: dict[str, Any] = field(default_factory=dict)
    """Errors on held-out data."""
    data: dict[str, Any] = field(default_factory=dict)
    """Kind-specific payload."""
    notes: str = ""
    """What the surrogate does not capture (model-form differences)."""
    schema_version: int = SCHEMA_VERSION
    """Layout version."""

    def value(self, name: str) -> Any:
        """The value of parameter `name`; KeyError listing the parameters if there is none."""
        try:
            return self.parameters[name]["value"]
        except KeyError:
            raise KeyError(f"{self.kind} surrogate has no parameter {name!r}; has {sorted(self.parameters)}") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


VALIDATORS: dict[str, Callable[[SurrogateArtifact], None]] = {}
"""Kind -> function raising ValueError (with the problem) if an artifact's parameters or data are unusable.
Each surrogate module registers its kind with `register_kind`; `load` imports the module of a kind's fitter
(`cosim.surrogates.FITTERS`) when the kind is not registered yet."""


def register_kind(kind: str, validator: Callable[[SurrogateArtifact], None]) -> None:
    """Make `kind` known to `load`; `validator` checks the kind-specific content."""
    VALIDATORS[kind] = validator


def default_path(kind: str) -> Path:
    """The shipped artifact of `kind`: ``surrogates/<kind>.json`` in the repository."""
    return SURROGATE_DIR / f"{kind}.json"


def relative_path(path: str | Path) -> str:
    """`path` relative to the repository root if inside it, else absolute (how provenance names files)."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(REPO_ROOT))
    except ValueError:
        return str(resolved)


def absolute_path(recorded: str) -> Path:
    """A path as provenance records it (`relative_path`), made absolute."""
    path = Path(recorded)
    return path if path.is_absolute() else REPO_ROOT / path


def hash_files(paths: list[str | Path] | tuple[str | Path, ...]) -> dict[str, str]:
    """SHA-256 of each file by `relative_path`; FileNotFoundError naming a missing one."""
    return {relative_path(p): file_sha256(p) for p in paths}


def cosim_version() -> str:
    """cosim's version plus the git commit (and "+dirty" with local changes), where git can tell."""
    version = importlib.metadata.version("cosim")
    try:
        commit = subprocess.run(["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty=+dirty"],
                                capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version} ({commit})"


def make_provenance(files: list[str | Path] | tuple[str | Path, ...], simulators: dict[str, str],
                    seeds: dict[str, int], wall_s: float | None = None, parent: dict[str, Any] | None = None,
                    command: str | None = None) -> Provenance:
    """Provenance for a fit made now, by this process (or by `command`), from `files`; parent: see
    `Provenance.parent`."""
    return Provenance(
        files=hash_files(files), simulators=dict(simulators), seeds=dict(seeds), cosim_version=cosim_version(),
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        command=command if command is not None else " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        host=f"{platform.node()}, {os.cpu_count()} CPUs", wall_s=wall_s, parent=parent)


def save(artifact: SurrogateArtifact, path: str | Path) -> Path:
    """Write `artifact` as JSON (atomically: a reader never sees half a file); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = _compact_lists(json.dumps(artifact.to_dict(), indent=1, allow_nan=True))
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text + "\n")
    os.replace(partial, path)
    return path


def _compact_lists(text: str) -> str:
    """Put lists of numbers on one line (the stimuli and residuals would otherwise take a line per number)."""
    number = r"-?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|NaN|Infinity|-Infinity)"
    pattern = re.compile(r"\[\s*(" + number + r"(?:,\s*" + number + r")*)\s*\]")
    return pattern.sub(lambda m: "[" + ", ".join(s.strip() for s in m.group(1).split(",")) + "]", text)


_SECTIONS: dict[str, type | tuple[type, ...]] = {
    "kind": str, "schema_version": int, "parameters": dict, "support": dict, "provenance": dict, "doe": dict,
    "fit": dict, "validation": dict, "data": dict, "notes": str}
_PROVENANCE_FIELDS = {"files": dict, "simulators": dict, "seeds": dict, "cosim_version": str, "created": str}


def load(path: str | Path | None = None, kind: str | None = None, check_provenance: bool = True) -> SurrogateArtifact:
    """Read and check a surrogate file (default: the shipped ``surrogates/<kind>.json``).

    Raises SurrogateFileError naming the file and the problem; warns (SurrogateProvenanceWarning) for each
    recorded netlist/model file that changed or is missing, unless check_provenance is False.
    """
    if path is None:
        if kind is None:
            raise ValueError("load: give a path or a kind")
        path = default_path(kind)
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise SurrogateFileError(path, "no such file (fit one with `cosim fit <kind>`)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SurrogateFileError(path, f"cannot be read: {err}") from None
    except json.JSONDecodeError as err:
        raise SurrogateFileError(path, f"not valid JSON (corrupted?): {err.msg} at line {err.lineno} "
                                       f"column {err.colno}") from None
    artifact = _parse(path, raw, kind)
    if check_provenance:
        warn_if_changed(artifact, path)
    return artifact


def _parse(path: Path, raw: Any, kind: str | None) -> SurrogateArtifact:
    if not isinstance(raw, dict):
        raise SurrogateFileError(path, f"expected a JSON object at the top, got {type(raw).__name__}")
    missing = [name for name in ("kind", "schema_version", "parameters", "support", "provenance") if name not in raw]
    if missing:
        raise SurrogateFileError(path, f"missing section(s) {missing}; not a cosim surrogate file?")
    if kind is not None and raw["kind"] != kind:
        raise SurrogateFileError(path, f"is a {raw['kind']!r} surrogate, expected {kind!r}")
    if raw["schema_version"] != SCHEMA_VERSION:
        raise SurrogateFileError(path, f"schema version {raw['schema_version']!r}, this cosim reads version "
                                       f"{SCHEMA_VERSION}: refit it with `cosim fit {raw['kind']}`")
    unknown = sorted(set(raw) - set(_SECTIONS))
    if unknown:
        raise SurrogateFileError(path, f"unknown section(s) {unknown}")
    for name, value in raw.items():
        if not isinstance(value, _SECTIONS[name]) or isinstance(value, bool):
            raise SurrogateFileError(path, f"section {name!r} must be a {_SECTIONS[name].__name__}, "
                                           f"got {type(value).__name__}")
    for name, expected in _PROVENANCE_FIELDS.items():
        if not isinstance(raw["provenance"].get(name), expected):
            raise SurrogateFileError(path, f"provenance.{name} missing or not a {expected.__name__}")
    for name, entry in raw["parameters"].items():
        if not isinstance(entry, dict) or "value" not in entry or "unit" not in entry:
            raise SurrogateFileError(path, f"parameter {name!r} must be an object with 'value' and 'unit'")
    try:
        artifact = SurrogateArtifact(**(raw | {"provenance": Provenance(**raw["provenance"])}))
    except TypeError as err:
        raise SurrogateFileError(path, f"provenance: {err}") from None
    validator = VALIDATORS.get(artifact.kind) or _import_kind(artifact.kind)
    if validator is None:
        raise SurrogateFileError(path, f"unknown surrogate kind {artifact.kind!r}; known: {sorted(VALIDATORS)}")
    try:
        validator(artifact)
    except (ValueError, KeyError, TypeError) as err:
        raise SurrogateFileError(path, f"invalid {artifact.kind} content: {err}") from None
    return artifact


def _import_kind(kind: str) -> Callable[[SurrogateArtifact], None] | None:
    """The validator of `kind` after importing the module of its fitter (`cosim.surrogates.FITTERS`), which
    registers it; None if there is no such module."""
    from cosim.surrogates import FITTERS

    fitter = FITTERS.get(kind, ":")
    if callable(fitter):  # a plug-in's fitter, registered with its validator (or without one)
        return VALIDATORS.get(kind)
    module_name = fitter.split(":")[0]
    try:
        importlib.import_module(module_name)
    except (ModuleNotFoundError, ValueError) as err:
        if isinstance(err, ModuleNotFoundError) and err.name != module_name:
            raise
        return None
    return VALIDATORS.get(kind)


def changed_files(artifact: SurrogateArtifact) -> dict[str, str]:
    """Recorded files whose content differs now: path -> "changed" or "missing"."""
    changes = {}
    for recorded, digest in artifact.provenance.files.items():
        path = absolute_path(recorded)
        if not path.is_file():
            changes[recorded] = "missing"
        elif file_sha256(path) != digest:
            changes[recorded] = "changed"
    return changes


def warn_if_changed(artifact: SurrogateArtifact, path: str | Path) -> None:
    """Warn (SurrogateProvenanceWarning) naming each netlist/model file changed or missing since the fit."""
    changes = changed_files(artifact)
    if changes:
        listed = ", ".join(f"{name} ({how})" for name, how in sorted(changes.items()))
        warnings.warn(
            f"surrogate file {path} was fitted to other netlists/models than the current ones: {listed} since "
            f"the fit of {artifact.provenance.created}; its parameters may not match the circuit any more: "
            f"refit with `cosim fit {artifact.kind}`", SurrogateProvenanceWarning, stacklevel=3)
