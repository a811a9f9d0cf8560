"""The refit loop of training (verify.refit): a new surrogate version when the network leaves the old one's support.

After an epoch, `triggers` checks the two conditions of `cosim.train.config.VerifyConfig`: the epoch's SPICE
verification (if it ran) agreed less than verify.tolerance, or a FeLIF layer's outside-support fraction exceeded
verify.refit_outside. `refit_run` then

1. measures the outside-support fraction of the first evaluation split with the current surrogate;
2. refits the surrogate at the states the layer visited (`cosim.surrogates.refit.refit`: the guards' recorded
   input sequences and extremes, plus the current surrogate's own design), warm-started from it, as
   ``surrogates/felif-v<N>.json`` in the run folder with its parent (path, SHA-256, version) in the provenance;
   the SPICE results are kept in ``surrogates/spice/`` (an interrupted refit reuses them);
3. puts the new version into the FeLIF layers (parameters and guard), measures the outside-support fraction of
   the same split again, re-saves the epoch's checkpoint with the new version recorded (so that resuming
   continues with it) and, if verification is on, verifies again (the agreement after);
4. appends the record to ``refits.jsonl`` and its numbers to the epoch's row of the metrics
   (refit_version, refit_agreement_before/after, refit_outside_before/after, refit_seconds).

A refit whose SPICE runs fail keeps the current surrogate: the record has ok false and the reason.
`surrogate_to_resume` gives the version a checkpoint was trained with and refuses one whose file changed since
or whose provenance does not match its parent. `cosim refit RUN_DIR` runs `refit_run` on a run's last checkpoint.
"""
from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cosim.felif.layer import FeLIFLayer
from cosim.spice.backend import file_sha256
from cosim.surrogates import artifact, load_fitted, surrogate_path
from cosim.surrogates.artifact import SurrogateFileError
from cosim.surrogates.guard import Visits
from cosim.surrogates.refit import RefitConfig, check_lineage, refit, version_of
from cosim.train.checkpoint import checkpoint_path, save_checkpoint, write_atomic, write_metrics
from cosim.train.config import TrainConfig

if TYPE_CHECKING:
    from cosim.train.loop import Trainer

REFITS = "refits.jsonl"
"""The refit log of a run folder, one JSON object per refit."""
SURROGATES = "surrogates"
"""Folder of a run's refitted surrogate versions."""
VISITS = "visits"
"""Folder of the guards' recorded distributions (one JSON per FeLIF layer, rewritten every epoch)."""


def surrogate_record(path: Path) -> dict[str, Any]:
    """What a checkpoint records of the surrogate it was trained with: path, SHA-256 and version."""
    version = version_of(artifact.load(path, check_provenance=False))
    return {"path": str(path), "sha256": file_sha256(path), "version": version}


def surrogate_to_resume(cfg: TrainConfig, state: dict[str, Any] | None) -> Path | None:
    """The surrogate file a run continues with: the version its checkpoint records, else the config's (None
    without one). A refitted version (one that names a parent) that is missing, changed since the checkpoint or
    does not match its parent is refused (SurrogateFileError); the config's own file changed since (e.g. the
    shipped surrogate refitted) is used with a warning, as before versions were recorded."""
    if not cfg.model.surrogate_file:
        return None
    configured = surrogate_path(cfg.model.surrogate_file, cfg.model.neuron)
    record = (state or {}).get("surrogate")
    if record is None:
        return configured
    path = Path(record["path"])
    if not path.is_file():
        raise SurrogateFileError(path, "the checkpoint was trained with this surrogate version, which is missing")
    if artifact.load(path, check_provenance=False).provenance.parent is None:
        if file_sha256(path) != record["sha256"]:
            warnings.warn(f"surrogate file {path} changed since the checkpoint was trained with it (SHA-256 "
                          f"{record['sha256'][:16]}...): training continues with the file as it is now", stacklevel=3)
        return path
    if file_sha256(path) != record["sha256"]:
        raise SurrogateFileError(path, f"differs from the version the checkpoint was trained with (SHA-256 "
                                       f"{record['sha256'][:16]}...): changed after the refit; refused")
    check_lineage(path)
    return path


def felif_layers(model) -> dict[str, FeLIFLayer]:
    """The model's FeLIF layers with a validity guard (those a fitted surrogate drives), by module name."""
    return {name: module for name, module in model.named_modules()
            if isinstance(module, FeLIFLayer) and module.guard is not None}


def merged_visits(visits: list[Visits]) -> Visits:
    """One `Visits` with the counts of all and their sequences."""
    merged = Visits()
    for one in visits:
        for name in merged.counts:
            merged.counts[name] += one.counts[name]
        merged.sequences.extend(one.sequences)
    return merged


def save_visits(run_dir: Path, epoch: int, layers: dict[str, FeLIFLayer], reports: dict[str, dict]) -> None:
    """Write each layer's recorded distribution to ``visits/<layer>.json`` (with the epoch, the support and the
    guard's counts)."""
    for name, layer in layers.items():
        record = {"epoch": epoch, "layer": name, "support": layer.guard.support.to_dict(),
                  "report": reports[name]} | layer.guard.visits.to_dict()
        write_atomic(run_dir / VISITS / f"{name}.json", json.dumps(record))


def read_visits(run_dir: Path) -> Visits:
    """The recorded distributions of a run folder's FeLIF layers, merged; FileNotFoundError if none."""
    files = sorted((run_dir / VISITS).glob("*.json"))
    if not files:
        raise FileNotFoundError(f"{run_dir / VISITS}: no recorded visits (train at least one epoch with a fitted "
                                "FeLIF surrogate)")
    return merged_visits([Visits.from_dict(json.loads(f.read_text())) for f in files])


def triggers(cfg: TrainConfig, row: dict[str, Any], verified: dict[str, Any] | None) -> list[str]:
    """Why a refit is due after the epoch of `row` with verification record `verified` (empty: not due)."""
    reasons = []
    outside = [value for key, value in row.items() if key.startswith("outside_support_")]
    if outside and max(outside) > cfg.verify.refit_outside:
        reasons.append(f"outside-support fraction {max(outside):.4g} > verify.refit_outside "
                       f"{cfg.verify.refit_outside:g}")
    agreement = (verified or {}).get("prediction_agreement")
    if agreement is not None and agreement < cfg.verify.tolerance:
        reasons.append(f"verification agreement {agreement:.4g} < verify.tolerance {cfg.verify.tolerance:g}")
    return reasons


def use_surrogate(model, path: Path) -> None:
    """Put the surrogate at `path` into the model's guarded FeLIF layers: its parameters and a fresh guard."""
    fitted = load_fitted("felif", path)
    for layer in felif_layers(model).values():
        layer.params = fitted.params
        layer.guard = fitted.guard()


def outside_fraction(trainer: Trainer) -> tuple[str, float]:
    """(split, largest outside-support fraction of the FeLIF layers) of one evaluation pass on the first
    evaluation split."""
    split = trainer.task.eval_splits[0]
    layers = felif_layers(trainer.model)
    for layer in layers.values():
        layer.guard.reset()
    trainer.evaluate(split)
    return split, max(layer.guard.report()["fraction_outside"] for layer in layers.values())


def refit_run(trainer: Trainer, trigger: str, agreement_before: float | None = None,
              config: RefitConfig | None = None) -> dict[str, Any]:
    """Refit the trainer's surrogate at the states its run visited and continue with the new version (see the
    module docstring); the record (also appended to refits.jsonl and the last metrics row)."""
    run_dir, epoch = trainer.run_dir, trainer.epoch
    layers = felif_layers(trainer.model)
    in_memory = [layer.guard.visits for layer in layers.values() if layer.guard.observed]
    visits = merged_visits(in_memory) if in_memory else read_visits(run_dir)
    config = config or RefitConfig(progress=trainer.progress)
    if config.store is None:
        config = dataclasses.replace(config, store=run_dir / SURROGATES / "spice")
    parent = trainer.surrogate_file
    split, outside_before = outside_fraction(trainer)
    outcome = refit(parent, visits, run_dir / SURROGATES, config)
    record: dict[str, Any] = {"epoch": epoch, "trigger": trigger, "ok": outcome.ok, "reason": outcome.reason,
                              "parent": str(parent), "split": split, "outside_before": outside_before,
                              "agreement_before": agreement_before, "seconds": outcome.seconds,
                              "stimuli": outcome.stimuli}
    if outcome.ok:
        use_surrogate(trainer.model, outcome.path)
        trainer.surrogate_file = outcome.path
        _, record["outside_after"] = outside_fraction(trainer)
        record |= {"version": outcome.version, "path": str(outcome.path), "sha256": outcome.sha256,
                   "holdout": outcome.holdout}
        if trainer.verify is not None and trainer.cfg.verify.every:
            after = trainer.verify(trainer.model, trainer.task, trainer.effective_config(), run_dir, epoch,
                                   trainer.progress)
            record["agreement_after"] = (after or {}).get("prediction_agreement")
    if trainer.history:
        trainer.history[-1] |= {f"refit_{key}": record.get(key) for key in
                                ("version", "agreement_before", "agreement_after", "outside_before",
                                 "outside_after", "seconds")} | {"refit_ok": outcome.ok}
        write_metrics(run_dir, trainer.history)
    if outcome.ok and epoch:  # resuming from this epoch continues with the new version
        save_checkpoint(checkpoint_path(run_dir, epoch), trainer._state())
    with open(run_dir / REFITS, "a") as log:
        log.write(json.dumps(record) + "\n")
    return record


def read_refits(run_dir: Path) -> list[dict[str, Any]]:
    """The records of refits.jsonl (empty if the run made none)."""
    path = Path(run_dir) / REFITS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def refit_folder(run_dir: str | Path, config: RefitConfig | None = None, verify=None,
                 progress: bool = True) -> dict[str, Any]:
    """`cosim refit RUN_DIR`: refit the surrogate of a run folder at the states its last epoch visited
    (``visits/``), record the new version in its last checkpoint so that `cosim train --resume` continues with
    it, and log the refit (refits.jsonl, metrics). verify: the verification hook (agreement after the refit, if
    the run's verify.every is set). ValueError for a run without a fitted FeLIF surrogate or without an epoch."""
    from cosim.train.config import read_config
    from cosim.train.loop import Trainer

    run_dir = Path(run_dir)
    config_file = run_dir / "config.toml"
    if not config_file.is_file():
        raise FileNotFoundError(f"{run_dir}: no config.toml, not a training run folder")
    trainer = Trainer(read_config(config_file), resume=True, progress=progress, verify=verify)
    if trainer.surrogate_file is None or not felif_layers(trainer.model):
        raise ValueError(f"{run_dir}: the run has no fitted FeLIF surrogate (model.surrogate_file) to refit")
    if trainer.epoch == 0:
        raise ValueError(f"{run_dir}: no checkpoint yet; train at least one epoch first")
    return refit_run(trainer, "cosim refit", None, config)
