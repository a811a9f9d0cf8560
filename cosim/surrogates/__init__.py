"""Surrogates fitted to SPICE and validated against it: the bridge from circuits to training.

Each surrogate kind ("felif", "rram", "crossbar") is one artifact file, ``surrogates/<kind>.json``
(`cosim.surrogates.artifact`: one schema, one loader, shared provenance), written by a fitter registered in
`FITTERS` and run by ``cosim fit <kind>``.
"""
from __future__ import annotations

import difflib
import importlib
from pathlib import Path
from typing import Any, Callable, Protocol

from cosim.surrogates.artifact import (
    SurrogateArtifact,
    SurrogateFileError,
    SurrogateProvenanceWarning,
    default_path,
    load,
    save,
)
from cosim.surrogates.felif import FeLIFSurrogate, load_felif
from cosim.surrogates.rram_fit import RRAMSurrogate, load_rram  # registers the "rram" kind with the loader
from cosim.surrogates.crossbar_fit import CrossbarSurrogate, load_crossbar  # and the "crossbar" kind
from cosim.surrogates.guard import Support, ValidityGuard


class Fitter(Protocol):
    """What `cosim fit <kind>` calls: fit from scratch (simulations included), write the artifact (and its
    report next to it) at `out` (None: the shipped ``surrogates/<kind>.json``), return its path. A fitter that
    fits to calibrated devices also takes ``device_card`` (the card's path; `cosim fit --device-card`), as the
    FeLIF fitter does."""

    def __call__(self, out: Path | None = None, *, seed: int = 0, quick: bool = False,
                 n_jobs: int | None = None) -> Path: ...


FITTERS: dict[str, str | Fitter] = {
    "felif": "cosim.surrogates.felif_fit:fit_surrogate",
    "rram": "cosim.surrogates.rram_fit:fit_surrogate",
    "crossbar": "cosim.surrogates.crossbar_fit:fit_surrogate",
}
"""Surrogate kind -> its `Fitter`, or the "module:function" where it is (imported only when used)."""

LOADERS: dict[str, Callable[[Path], Any]] = {"felif": load_felif, "rram": load_rram, "crossbar": load_crossbar}
"""Surrogate kind -> the loader returning its typed surrogate (`SurrogateArtifact` for kinds not listed)."""


def register_fitter(kind: str, fit: Fitter, loader: Callable[[Path], Any] | None = None) -> None:
    """Make `cosim fit <kind>` run `fit` (a device plug-in's surrogate), and `load_fitted(kind, ...)` use `loader`."""
    FITTERS[kind] = fit
    if loader is not None:
        LOADERS[kind] = loader


def load_fitted(kind: str, path: Path) -> Any:
    """The surrogate of `kind` stored at `path`, typed by its loader (e.g. `FeLIFSurrogate`)."""
    return LOADERS.get(kind, load)(path)


def surrogate_path(name: str, kind: str = "felif") -> Path:
    """Where a surrogate named in a config lives: "default" is the shipped ``surrogates/<kind>.json``, anything
    else a path (relative to the working directory)."""
    return default_path(kind) if name == "default" else Path(name)


def fitter(kind: str) -> Fitter:
    """The fitter of `kind`; ValueError if the kind is unknown or its fitter is not available."""
    if kind not in FITTERS:
        near = difflib.get_close_matches(kind, list(FITTERS), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"unknown surrogate kind {kind!r}{hint} Known: {', '.join(sorted(FITTERS))} (a device "
                         "plug-in adds its own with cosim.surrogates.register_fitter)")
    if callable(FITTERS[kind]):
        return FITTERS[kind]
    module_name, function = FITTERS[kind].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:  # the module exists but something it imports does not: show that
            raise
        raise ValueError(f"no fitter for the {kind} surrogate yet ({module_name} is not in this cosim)") from None
    return getattr(module, function)


__all__ = [
    "FITTERS", "LOADERS", "FeLIFSurrogate", "Fitter", "load_fitted", "register_fitter", "Support", "SurrogateArtifact", "SurrogateFileError",
    "SurrogateProvenanceWarning", "ValidityGuard", "default_path", "fitter", "load", "load_felif", "save",
    "surrogate_path", "RRAMSurrogate", "load_rram", "CrossbarSurrogate", "load_crossbar",
]
