"""Refit a FeLIF surrogate at the states a training run visited, as a new version that names its parent.

A training run's validity guards record what the FeLIF layer saw (`cosim.surrogates.guard.Visits`: histograms of
(I, V, P) and the latest input-current sequences of single neurons). `refit` turns those into stimuli:

- every recorded sequence as a `replay` stimulus (alternately into the fit and the held-out set), the region
  from its currents ("nominal" if none is negative, "signed" otherwise);
- constant currents at the recorded input current's extreme quantiles (0.01 % and 99.99 %; a non-negative one
  as "nominal", a negative one in a `pulse_train` with positive phases as "rail"), so that the new support
  reaches them;

and, with `RefitConfig.keep_design`, the parent's own design of experiments (from its artifact) on top, so that
the new version still covers what the parent did. The circuit is simulated on all of them
(`cosim.surrogates.felif_spice.CircuitReference`, engine pool and store), the fit starts from the parent's
parameters (warm start, `RefitConfig.starts` optimiser runs, the default fit's residual weights) and the new
artifact records its parent in its provenance: path, SHA-256 of the parent file and version
(``provenance.parent``; the new version is the parent's plus one). `check_lineage` refuses a version whose
parent file is missing or differs from what it names.

A refit whose SPICE runs (or whose fit) fail writes nothing: `refit` returns a `RefitOutcome` with ok False and
the reason, and the caller keeps the current surrogate.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from cosim.spice import SimError
from cosim.spice.backend import file_sha256
from cosim.surrogates.artifact import SurrogateArtifact, SurrogateFileError, absolute_path, relative_path
from cosim.surrogates.doe import Stimulus, constant, pulse_train, replay
from cosim.surrogates.felif import FeLIFSurrogate, load_felif
from cosim.surrogates.guard import Visits

EXTREME_QUANTILES = ("q0.0001", "q0.9999")
"""Quantiles of the recorded input current that the new support must reach."""


@dataclass(frozen=True)
class RefitConfig:
    """How a refit is made."""

    sequences: int = 16
    """Recorded sequences replayed (the latest; half fit, half held out)."""
    keep_design: bool = True
    """Also simulate and fit the parent's design of experiments (its artifact's ``doe``)."""
    starts: int = 1
    """Optimiser runs (the first from the parent's parameters)."""
    max_evaluations: int = 40
    """Residual evaluations per optimiser run."""
    simulator: str = "ngspice"
    """Simulator of the circuit runs: "ngspice" or "vacask"."""
    n_jobs: int | None = None
    """Simulations at once (default: the machine's cores)."""
    store: Path | None = None
    """Folder of finished simulations (`cosim.spice.run_many`): a repeated refit reuses them."""
    progress: bool = True
    """Progress bars."""


@dataclass(frozen=True)
class RefitOutcome:
    """What a refit did."""

    ok: bool
    """A new version was written."""
    reason: str
    """Why not (ok False), or a one-line summary."""
    path: Path | None = None
    """The new version's file (ok True)."""
    version: int = 0
    """Its version number (the parent's plus one)."""
    sha256: str = ""
    """SHA-256 of the new file."""
    seconds: float = 0.0
    """Wall time, s (simulations and fit)."""
    stimuli: int = 0
    """Stimuli simulated (fit and held out)."""
    holdout: dict | None = None
    """Held-out summary of the new version (`make_surrogate`'s validation["holdout"] without the table)."""


def version_of(artifact: SurrogateArtifact) -> int:
    """1 for a surrogate artifact fitted from scratch, else its parent's version plus one (any kind of surrogate)."""
    parent = artifact.provenance.parent
    return 1 if parent is None else int(parent["version"]) + 1


def check_lineage(path: str | Path) -> FeLIFSurrogate:
    """Load the surrogate at `path` and check that its parent (if it names one) is the file it was refitted
    from: the parent file exists and has the recorded SHA-256. SurrogateFileError otherwise."""
    surrogate = load_felif(path, check_provenance=False)
    parent = surrogate.artifact.provenance.parent
    if parent is None:
        return surrogate
    found = absolute_path(parent["path"])
    if not found.is_file():
        raise SurrogateFileError(path, f"its parent {parent['path']} is missing: the version cannot be traced back "
                                       "(restore the parent file, or refit from a surrogate that exists)")
    digest = file_sha256(found)
    if digest != parent["sha256"]:
        raise SurrogateFileError(path, f"its provenance names parent {parent['path']} with SHA-256 "
                                       f"{parent['sha256'][:16]}..., but {found} has {digest[:16]}...: the parent "
                                       "or this version was changed after the refit; refused")
    return surrogate


def refit_stimuli(visits: Visits, sequences: int, dt: float) -> tuple[list[Stimulus], list[Stimulus]]:
    """(fit, held-out) stimuli from what a run visited (see the module docstring), without the parent's design."""
    fit, holdout = [], []
    recorded = [seq for seq in list(visits.sequences)[-sequences:] if seq]
    for k, seq in enumerate(recorded):
        (fit if k % 2 == 0 else holdout).append(replay(f"seq{k}", tuple(seq), dt))
    quantiles = visits.quantiles("i_in")
    for name in EXTREME_QUANTILES:
        current = quantiles.get(name)
        if current is None:
            continue
        if current >= 0:
            fit.append(constant(current, dt=dt))
        else:
            fit.append(pulse_train(2e-9, 4, 4, 40, delay_steps=2, low=current, dt=dt, region="rail"))
    return fit, holdout


def refit(parent_path: str | Path, visits: Visits, out_dir: str | Path, config: RefitConfig = RefitConfig(),
          reference=None) -> RefitOutcome:
    """Refit the surrogate at `parent_path` at the states of `visits`; write ``felif-v<N>.json`` (and its report
    folder ``felif-v<N>/``) into out_dir. reference: the circuit simulator (default: the parent's circuit in
    ngspice, `CircuitReference`). Returns the outcome; SPICE failures give ok False and write nothing."""
    from cosim.surrogates.felif_fit import DEFAULT_WEIGHTS, FitConfig, make_surrogate, model_form_notes
    from cosim.surrogates.felif_spice import CircuitReference

    began = time.perf_counter()
    parent_path = Path(parent_path)
    parent = check_lineage(parent_path)
    cfg = parent.step_config()
    fit_stimuli, holdout = refit_stimuli(visits, config.sequences, cfg.dt)
    if config.keep_design:
        fit_stimuli += [Stimulus.from_dict(s) for s in parent.artifact.doe.get("fit", [])]
        holdout += [Stimulus.from_dict(s) for s in parent.artifact.doe.get("holdout", [])]
    if not fit_stimuli or not holdout:
        return RefitOutcome(False, f"nothing to refit on: {len(fit_stimuli)} fit and {len(holdout)} held-out "
                                   "stimuli (no recorded sequences and keep_design off?)")
    if reference is None:
        reference = CircuitReference(circuit=parent.circuit(), simulator=config.simulator, n_jobs=config.n_jobs,
                                     store=config.store, progress=config.progress)
    version = version_of(parent.artifact) + 1
    out_dir = Path(out_dir)
    out = out_dir / f"felif-v{version}.json"
    parent_record = {"path": relative_path(parent_path), "sha256": file_sha256(parent_path),
                     "version": version - 1}
    sample_every = float(parent.artifact.doe.get("sample_every", 100e-6))
    try:
        artifact = make_surrogate(
            reference, out, fit_stimuli, holdout, start=parent.params,
            config=FitConfig(step=cfg, sample_every=sample_every, weights=DEFAULT_WEIGHTS, starts=config.starts,
                             max_evaluations=config.max_evaluations),
            notes=model_form_notes(reference), report_dir=out_dir / f"felif-v{version}", progress=config.progress,
            parent=parent_record, command=f"refit of {parent_path} at the states a run visited")
    except (SimError, RuntimeError, OSError, ValueError) as err:
        what = "the fit" if isinstance(err, ValueError) else "SPICE runs"
        return RefitOutcome(False, f"{what} of the refit failed, the current surrogate {parent_path} is kept: "
                                   f"{str(err).splitlines()[0] if str(err) else type(err).__name__}",
                            seconds=time.perf_counter() - began, stimuli=len(fit_stimuli) + len(holdout))
    held = {k: v for k, v in artifact.validation["holdout"].items() if k != "per_stimulus"}
    return RefitOutcome(True, f"version {version} from {parent_path.name}: held-out spike counts "
                              f"{held['spike_count_agreement']:.4g}, time error {held['spike_time_error_rel']:.3g} "
                              f"of ISI, V NRMSE {held['v_nrmse']:.3g}", out, version, file_sha256(out),
                        time.perf_counter() - began, len(fit_stimuli) + len(holdout), held)

