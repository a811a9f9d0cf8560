"""The training loop: epochs with a progress bar, metrics, a checkpoint every epoch, exact resume, NaN guard.

Run folder (`RunConfig.out`):

* ``config.toml``: the resolved configuration;
* ``metrics.jsonl`` and ``metrics.csv``: one row per epoch (see `Trainer.epoch_metrics`);
* ``checkpoints/epoch-NNNN.pt``: model, optimiser, scheduler, metrics so far, and every RNG state (torch, numpy,
  Python, the data-order generator) after epoch NNNN;
* ``run.json``: the data (source, samples per split), the task's baselines computed on it (`Task.baselines`), the
  fitted surrogate file used (path, SHA-256, when it was fitted), the device cards the neuron and synapse devices
  were built from (``device_cards``: path, SHA-256, which parameters came from the card and which stayed default;
  None for a default device) and one entry per session (start, command line, cosim version and commit, machine);
* ``curves.png``: training curves with the baselines, drawn when the run ends (also when it stops on a NaN);
* ``verify_history.jsonl``, ``verify/``: SPICE verification every verify.every epochs (`cosim.verify`);
* ``visits/<layer>.json``: what each FeLIF layer's validity guard saw in the last epoch (histograms and quantiles
  of input current, V and P, recent input sequences: `cosim.surrogates.guard.Visits`);
* ``refits.jsonl``, ``surrogates/felif-v<N>.json``: with verify.refit, the surrogate versions refitted during the
  run (`cosim.train.refit`); each checkpoint records the version it was trained with, and resuming uses it.

Resuming loads the newest checkpoint and continues from the next epoch with the same RNG states, so an
interrupted and resumed run gives the same metrics as an uninterrupted one with the same seed (given the same
number of torch threads).
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
import random
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from cosim.devices.plugins import neuron_device, synapse_device
from cosim.spice.backend import file_sha256
from cosim.spice.progress import progress_bar
from cosim.surrogates import surrogate_path
from cosim.surrogates.artifact import cosim_version
from cosim.surrogates.artifact import load as load_artifact
from cosim.surrogates.refit import RefitConfig
from cosim.train.checkpoint import (
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_atomic,
    write_metrics,
)
from cosim.train.config import ConfigError, TrainConfig, differences, read_config, to_toml
from cosim.train.models import build_model, device_level_table
from cosim.train.plots import plot_curves
from cosim.train.refit import felif_layers, refit_run, save_visits, surrogate_record, surrogate_to_resume, triggers
from cosim.train.tasks import Baseline, Sums, Task, layer_names, make_task, spike_counts

RESUMABLE_CHANGES = ("run.epochs", "run.threads", "verify.every", "verify.samples", "verify.cpu_budget_s",
                     "verify.tolerance", "verify.max_steps", "verify.refit", "verify.refit_outside")
"""Config fields that may differ between a run and its resumption."""
RUN_RECORD = "run.json"
"""What a run folder's training was run on and against (see the module docstring)."""


class TrainingDiverged(RuntimeError):
    """The loss or a gradient became NaN or infinite; the run stopped and kept its last good checkpoint."""


class SilentLayerWarning(UserWarning):
    """A spiking layer did not spike once in a training epoch."""


EpochHook = Callable[[nn.Module, Task, TrainConfig, Path, int, bool], Any]
"""Called after an epoch with (model, task, config, run folder, epoch, progress): the periodic verification."""


class Trainer:
    """One training run of `cfg`: `fit()` trains up to cfg.run.epochs, resuming if asked to.

    Args:
        cfg: the configuration.
        resume: continue the run in cfg.run.out from its newest checkpoint; without it the run folder must not
            hold a run already.
        progress: show a progress bar per epoch (`cosim.spice.progress`) and print each epoch's metrics.
        verify: called after every cfg.verify.every epochs (SPICE verification).
        task: the task with its data already loaded (e.g. shared by several runs, or with other splits); default
            `make_task(cfg.data)`.
    """

    def __init__(self, cfg: TrainConfig, resume: bool = False, progress: bool = True,
                 verify: EpochHook | None = None, task: Task | None = None):
        self.cfg = cfg
        self.run_dir = Path(cfg.run.out)
        self.progress = progress
        self.verify = verify
        self.refit_config: RefitConfig | None = None
        """How refits are made (verify.refit; None: `RefitConfig`'s defaults with this trainer's progress)."""
        if cfg.verify.every and verify is None:
            warnings.warn("verify.every is set but no verification hook was given: training runs without SPICE "
                          "verification (`cosim train` and the main job pass cosim.verify.runner.verify_epoch)",
                          stacklevel=2)
        checkpoint = self._checkpoint_to_resume(resume)
        if cfg.run.threads:
            torch.set_num_threads(cfg.run.threads)
        self.task = make_task(cfg.data) if task is None else task
        state = load_checkpoint(checkpoint) if checkpoint is not None else None
        self.surrogate_file = surrogate_to_resume(cfg, state)
        """The fitted surrogate the model runs with: the config's, or the version a refit made."""
        torch.manual_seed(cfg.run.seed)
        np.random.seed(cfg.run.seed)
        random.seed(cfg.run.seed)
        table = device_level_table(cfg.model, self.run_dir, cfg.run.seed, progress)
        self.model = build_model(self.effective_config().model, self.task.n_inputs, self.task.n_outputs, table)
        o = cfg.optimiser
        self.optimiser = torch.optim.Adamax(self.model.parameters(), lr=o.lr, betas=o.betas)
        self.scheduler = (torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimiser, factor=o.plateau_factor, patience=o.plateau_patience, min_lr=o.min_lr)
            if o.scheduler == "plateau" else None)
        self.order = torch.Generator().manual_seed(cfg.run.seed)
        """Draws the order of the training samples, one permutation per epoch."""
        self.history: list[dict[str, Any]] = []
        """Metrics of the epochs done, one dict per epoch."""
        self.epoch = 0
        """Epochs done."""
        if state is not None:
            self._restore(state)

    def _checkpoint_to_resume(self, resume: bool) -> Path | None:
        config_file = self.run_dir / "config.toml"
        latest = latest_checkpoint(self.run_dir)
        if not resume:
            if latest is not None or (self.run_dir / "metrics.jsonl").exists():
                raise FileExistsError(f"run folder {self.run_dir} already holds a run: resume it (--resume) or "
                                      "choose another run.out (--out)")
            return None
        if not config_file.is_file():
            raise FileNotFoundError(f"cannot resume: no config.toml in {self.run_dir}")
        saved = read_config(config_file)
        changed = [key for key in differences(saved, self.cfg) if key not in RESUMABLE_CHANGES]
        if changed:
            raise ConfigError(f"cannot resume {self.run_dir} with a different configuration: {', '.join(changed)} "
                             f"differ from its config.toml (only {', '.join(RESUMABLE_CHANGES)} may change)")
        return latest

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimiser.load_state_dict(state["optimiser"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.order.set_state(state["order"])
        set_rng_state(state["rng"])
        self.history = list(state["history"])
        self.epoch = state["epoch"]

    def _state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "model": self.model.state_dict(), "optimiser": self.optimiser.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "order": self.order.get_state(), "rng": rng_state(), "history": self.history,
                "surrogate": surrogate_record(self.surrogate_file) if self.surrogate_file is not None else None}

    def effective_config(self) -> TrainConfig:
        """The configuration with model.surrogate_file set to the surrogate in use (a refitted version)."""
        if self.surrogate_file is None:
            return self.cfg
        return dataclasses.replace(self.cfg, model=dataclasses.replace(self.cfg.model,
                                                                       surrogate_file=str(self.surrogate_file)))

    def fit(self) -> list[dict[str, Any]]:
        """Train the remaining epochs; the metrics of all epochs. TrainingDiverged on NaN/inf."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.run_dir / "config.toml", to_toml(self.cfg))
        baselines = self.task.baselines()
        self._write_run_record(baselines)
        try:
            while self.epoch < self.cfg.run.epochs:
                row = self.epoch_metrics(self.epoch + 1)
                self.epoch += 1
                self.history.append(row)
                if self.progress:
                    tqdm.write(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                         for k, v in row.items()))
                save_checkpoint(checkpoint_path(self.run_dir, self.epoch), self._state())
                write_metrics(self.run_dir, self.history)
                verified = None
                if self.verify is not None and self.cfg.verify.every and self.epoch % self.cfg.verify.every == 0:
                    verified = self.verify(self.model, self.task, self.effective_config(), self.run_dir, self.epoch,
                                           self.progress)
                if self.cfg.verify.refit and (reasons := triggers(self.cfg, row, verified)):
                    record = refit_run(self, "; ".join(reasons), (verified or {}).get("prediction_agreement"),
                                       self.refit_config)
                    if self.progress:
                        tqdm.write(f"refit after epoch {self.epoch}: {record['reason']}")
        finally:
            if self.history:
                plot_curves(self.history, self.run_dir / "curves.png", self.task.metric_info,
                            title=f"{self.cfg.model.network} ({self.cfg.model.neuron}, "
                                  f"{self.cfg.model.bits or 'float'} bits): {self.task.source}", baselines=baselines)
        return self.history

    def _write_run_record(self, baselines: list[Baseline]) -> None:
        """run.json, with this session added to those of the run so far (a record that cannot be read is
        started afresh: it holds nothing training needs)."""
        path = self.run_dir / RUN_RECORD
        try:
            sessions = list(json.loads(path.read_text())["sessions"]) if self.epoch else []
        except (OSError, ValueError, KeyError, TypeError):
            sessions = []
        sessions.append({"started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                         "from_epoch": self.epoch, "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
                         "cosim": cosim_version(), "machine": f"{platform.node()}, {os.cpu_count()} CPUs"})
        surrogate = None
        if self.cfg.model.surrogate_file:
            file = surrogate_path(self.cfg.model.surrogate_file, self.cfg.model.neuron)
            provenance = load_artifact(file, check_provenance=False).provenance
            surrogate = {"path": str(file), "sha256": file_sha256(file), "fitted": provenance.created,
                         "fitted_with": provenance.cosim_version}
        m = self.cfg.model
        cards = {"neuron": neuron_device(m.neuron, m.device_card).card.to_dict() if m.device_card else None,
                 "synapse": synapse_device(m.synapse, m.synapse_card).card.to_dict() if m.synapse_card else None}
        record = {"data": {"source": self.task.source, "sizes": self.task.sizes},
                  "baselines": [baseline._asdict() for baseline in baselines], "surrogate": surrogate,
                  "device_cards": cards, "sessions": sessions}
        write_atomic(path, json.dumps(record, indent=1))

    def epoch_metrics(self, epoch: int) -> dict[str, Any]:
        """Train one epoch and evaluate: the epoch's metrics row.

        Keys: epoch; lr (during the epoch); train_loss (and train_accuracy) averaged over the epoch's updates;
        <split>_loss, <split>_accuracy for each evaluated split; rate_<layer>_hz, the mean spike rate per neuron
        of each spiking layer over the training epoch, Hz (spikes per coarse step / dt); silent_layers, the
        spiking layers without a single spike in the training epoch, comma-separated ("" if none; each also
        raises a `SilentLayerWarning`); outside_support_<module>,
        with a fitted surrogate, the fraction of its neuron-steps in this epoch's training and evaluation outside
        the fit's support (`cosim.surrogates.guard`; per epoch, so that a resumed run reports what an
        uninterrupted one does); epoch_seconds (training and evaluation wall time).
        """
        start = time.perf_counter()
        guards = {name: module.guard for name, module in self.model.named_modules()
                  if getattr(module, "guard", None) is not None}
        layers = felif_layers(self.model)
        for guard in guards.values():
            guard.reset()
        lr = self.optimiser.param_groups[0]["lr"]
        train, spikes = self._train_epoch(epoch)
        row: dict[str, Any] = {"epoch": epoch, "lr": lr}
        row.update({f"train_{key}": value for key, value in self.task.metrics(train).items()})
        for split in self.task.eval_splits:
            row.update({f"{split}_{key}": value for key, value in self.task.metrics(self.evaluate(split)).items()})
        for layer in layer_names(spikes):
            row[f"rate_{layer}_hz"] = spikes[layer] / max(1, spikes[f"{layer}_slots"]) / self.cfg.model.dt
        silent = [layer for layer in layer_names(spikes) if spikes[layer] == 0]
        row["silent_layers"] = ",".join(silent)
        if silent:
            warnings.warn(f"epoch {epoch}: layer(s) {', '.join(silent)} did not spike once in the training epoch: "
                          "nothing downstream of them can learn (raise model.current_scale or lower model.v_thr)",
                          SilentLayerWarning, stacklevel=2)
        reports = {name: guard.log_report() for name, guard in guards.items()}
        for name, report in reports.items():
            row[f"outside_support_{name}"] = report["fraction_outside"]
        save_visits(self.run_dir, epoch, layers, reports)
        row["epoch_seconds"] = time.perf_counter() - start
        bad = [key for key, value in row.items() if isinstance(value, float) and not math.isfinite(value)]
        if bad:
            raise TrainingDiverged(self._stopped(epoch, f"after training, {', '.join(bad)} not finite ({row})"))
        if self.scheduler is not None:
            self.scheduler.step(row[self.cfg.optimiser.plateau_metric])
        return row

    def _train_epoch(self, epoch: int) -> tuple[Sums, Sums]:
        self.model.train()
        sums, spikes = Sums(), Sums()
        size = self.cfg.data.batch_size
        bar = progress_bar(self.task.batches("train", size, self.order), total=self.task.n_batches("train", size),
                           desc=f"epoch {epoch}/{self.cfg.run.epochs}", unit="batch", enabled=self.progress,
                           leave=False)
        for index, batch in enumerate(bar, start=1):
            self.optimiser.zero_grad(set_to_none=True)
            output = self.model(batch.inputs)
            loss = self.task.loss(output, batch)
            if not torch.isfinite(loss):
                raise TrainingDiverged(self._stopped(epoch, f"batch {index}: the loss is {loss.item()}"))
            loss.backward()
            for name, param in self.model.named_parameters():
                if param.grad is not None and not torch.isfinite(param.grad).all():
                    bad = int((~torch.isfinite(param.grad)).sum())
                    raise TrainingDiverged(self._stopped(
                        epoch, f"batch {index}: the gradient of {name} has {bad} non-finite value(s)"))
            self.optimiser.step()
            sums += self.task.sums(output, batch)
            spikes += spike_counts(output, batch.mask)
            bar.set_postfix(loss=f"{sums['loss_sum'] / max(1, sums['count']):.4f}")
        return sums, spikes

    @torch.no_grad()
    def evaluate(self, split: str) -> Sums:
        """Loss and accuracy sums of the current model on `split`."""
        self.model.eval()
        sums = Sums()
        for batch in self.task.batches(split, self.cfg.data.eval_batch_size):
            sums += self.task.sums(self.model(batch.inputs), batch)
        return sums

    def _stopped(self, epoch: int, what: str) -> str:
        last = latest_checkpoint(self.run_dir)
        kept = f"the last good checkpoint is {last}" if last else "no checkpoint was written (first epoch)"
        return f"training stopped in epoch {epoch}, {what}; {kept}. Lower optimiser.lr or check the data."


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True,
          verify: EpochHook | None = None) -> list[dict[str, Any]]:
    """Train cfg (resuming its run folder if asked): the metrics of every epoch. `verify` is called after every
    cfg.verify.every epochs (SPICE verification: `cosim.verify.runner.verify_epoch`; training imports none of it)."""
    return Trainer(cfg, resume=resume, progress=progress, verify=verify).fit()
