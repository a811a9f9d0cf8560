"""The two learning tasks: their data, batches, loss, metrics and the baselines the metrics are judged against.

A task turns a `DataConfig` into batches (`Batch`, batch first) and a model's `ModelOutput` into a loss and
into sums (`Sums`) from which split metrics are computed exactly, whatever the batch boundaries. Each task lists
its metrics with their definitions (`metric_info`) and computes simple baselines on the same data (`baselines`).

* music (JSB or music21 chorales), on the frames (time steps) after `warmup_steps`, keys predicted on at
  probability > 0.5: ``loss``, the binary cross-entropy per key and frame (the training loss, the paper's
  "test BCE"); ``nll``, the negative log-likelihood per frame (the BCE summed over the keys, averaged over the
  frames); ``frame_accuracy``, the frame-level accuracy of Bay et al. (2009), sum TP / sum (TP + FP + FN) over
  all frames; ``on_fraction``, the fraction of (frame, key) cells predicted on. Baseline: every key predicted
  with its frequency in the training split.
* tactile (Braille: raw, event-coded or SYNTHETIC): ``loss``, the softmax cross-entropy of the output spike counts;
  ``accuracy``, the fraction of samples whose largest count is the label (ties go to the lowest class index).
  Baselines: chance, and a logistic regression on the time-binned inputs.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Iterator, NamedTuple, Sequence

import torch
import torch.nn.functional as F

from cosim.data import (
    LETTERS,
    BrailleSplit,
    PianoRollDataset,
    braille_events_data,
    load_braille_events,
    load_braille_raw,
    load_jsb,
    load_music21_chorales,
    pad_next_step,
    preprocess_braille,
    synthetic_braille_data,
)
from cosim.train.config import DataConfig
from cosim.train.models import ModelOutput


class Batch(NamedTuple):
    """One batch, batch first."""

    inputs: torch.Tensor
    """[batch, steps, channels] float32."""
    targets: torch.Tensor
    """Music: next-step keys [batch, steps, keys] 0/1; tactile: class labels [batch] int64."""
    mask: torch.Tensor
    """[batch, steps] bool: real steps (False on the zero padding of shorter chorales)."""


Sums = Counter
"""Additive per-split statistics (loss_sum, count, and the task's accuracy counts)."""


class Metric(NamedTuple):
    """What a metric of `Task.metrics` means."""

    label: str
    """Short name with its unit, for tables and axes."""
    definition: str
    """One sentence: how it is computed."""
    higher_is_better: bool | None
    """Whether a larger value is a better model (None: neither, a diagnostic)."""


class Baseline(NamedTuple):
    """A simple predictor evaluated on the same data as the model."""

    name: str
    """Short name."""
    definition: str
    """One sentence: what it predicts."""
    metrics: dict[str, dict[str, float]]
    """split -> metric -> value, the keys of `Task.metrics`."""


def _first(n: int, available: int) -> int:
    return available if n == 0 else min(n, available)


class MusicTask:
    """Next-step prediction of chorale piano rolls."""

    eval_splits = ("valid", "test")
    """Splits evaluated after every epoch."""
    metric_info = {
        "loss": Metric("BCE per key and frame (nats)", "binary cross-entropy of each key's predicted probability, "
                       "mean over the keys and the frames after the warm-up (the training loss)", False),
        "frame_accuracy": Metric("frame accuracy", "Bay et al. (2009): sum TP / sum (TP + FP + FN) over all frames "
                                 "after the warm-up; a key is predicted on at probability > 0.5", True),
        "nll": Metric("NLL per frame (nats)", "negative log-likelihood of a frame: the binary cross-entropy summed "
                      "over the keys, mean over the frames after the warm-up (= keys x BCE)", False),
        "on_fraction": Metric("keys predicted on", "fraction of (frame, key) cells after the warm-up predicted on "
                              "(probability > 0.5)", None),
    }
    """The metrics of `metrics`, the loss first and the accuracy second."""

    def __init__(self, cfg: DataConfig):
        splits = load_jsb(cfg.path) if cfg.dataset == "jsb" else load_music21_chorales()
        self.cfg = cfg
        self.splits: dict[str, PianoRollDataset] = {"train": splits.train, "valid": splits.valid, "test": splits.test}
        self.sizes = {"train": _first(cfg.train_subset, len(splits.train)),
                      "valid": _first(cfg.valid_subset, len(splits.valid)),
                      "test": _first(cfg.test_subset, len(splits.test))}
        self.source: str = splits.source
        """Where the data came from, in words."""
        self.n_inputs = self.n_outputs = splits.train.n_keys
        for name, size in self.sizes.items():
            if size == 0:
                raise ValueError(f"{self.source}: the {name} split is empty")

    def batches(self, split: str, batch_size: int, generator: torch.Generator | None = None) -> Iterator[Batch]:
        """Padded batches of `split` (its first `sizes[split]` chorales): shuffled with `generator` if given,
        else longest first (chorales of similar length together: less padding)."""
        data = self.splits[split]
        n = self.sizes[split]
        if generator is not None:
            order = torch.randperm(n, generator=generator).tolist()
        else:
            order = sorted(range(n), key=lambda i: -len(data.rolls[i]))
        for start in range(0, n, batch_size):
            padded = pad_next_step([data[i] for i in order[start:start + batch_size]])
            yield Batch(padded.inputs, padded.targets, padded.mask)

    def n_batches(self, split: str, batch_size: int) -> int:
        return -(-self.sizes[split] // batch_size)

    def _loss_mask(self, batch: Batch) -> torch.Tensor:
        mask = batch.mask.clone()
        mask[:, :self.cfg.warmup_steps] = False
        return mask

    def loss(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        """Mean BCE over keys and the steps after the warm-up (0 if the batch has none)."""
        mask = self._loss_mask(batch)
        bce = F.binary_cross_entropy_with_logits(output.logits, batch.targets, reduction="none")
        return (bce * mask.unsqueeze(-1)).sum() / max(1, int(mask.sum()) * batch.targets.shape[-1])

    def sums(self, output: ModelOutput, batch: Batch) -> Sums:
        """BCE sum, frame and cell counts, true/false positives and false negatives after the warm-up."""
        mask = self._loss_mask(batch).unsqueeze(-1)
        logits = output.logits.detach()
        bce = F.binary_cross_entropy_with_logits(logits, batch.targets, reduction="none")
        predicted, actual = logits > 0, batch.targets > 0.5
        frames = int(mask.sum())
        return Sums(loss_sum=float((bce * mask).sum()), frames=frames, count=frames * batch.targets.shape[-1],
                    tp=int((predicted & actual & mask).sum()), fp=int((predicted & ~actual & mask).sum()),
                    fn=int((~predicted & actual & mask).sum()))

    @staticmethod
    def metrics(sums: Sums) -> dict[str, float]:
        """The metrics of `metric_info` from a split's sums."""
        hits = sums["tp"] + sums["fp"] + sums["fn"]
        return {"loss": sums["loss_sum"] / max(1, sums["count"]), "frame_accuracy": sums["tp"] / hits if hits else 0.0,
                "nll": sums["loss_sum"] / max(1, sums["frames"]),
                "on_fraction": (sums["tp"] + sums["fp"]) / max(1, sums["count"])}

    def baselines(self) -> list[Baseline]:
        """Each key predicted, at every frame, with its frequency in the training split (after the warm-up; with
        add-one smoothing, so that a key never heard in training has a finite loss), on the evaluated splits."""
        on, frames = torch.zeros(self.n_outputs), 0
        for batch in self.batches("train", 64):
            mask = self._loss_mask(batch)
            on += (batch.targets * mask.unsqueeze(-1)).sum((0, 1))
            frames += int(mask.sum())
        frequency = (on + 1) / (frames + 2)
        logits = torch.log(frequency / (1 - frequency))
        metrics = {}
        for split in self.eval_splits:
            sums = Sums()
            for batch in self.batches(split, 64):
                sums += self.sums(ModelOutput(logits.expand_as(batch.targets), {}), batch)
            metrics[split] = self.metrics(sums)
        return [Baseline("key frequency", "each key predicted at every frame with its frequency in the "
                         f"{self.sizes['train']} training chorales", metrics)]


class TactileTask:
    """Braille letter classification from taxel signals."""

    eval_splits = ("test",)
    """Splits evaluated after every epoch (the Braille task has no validation split)."""
    metric_info = {
        "loss": Metric("cross-entropy per sample (nats)", "softmax cross-entropy of the output spike counts, "
                       "averaged over the samples", False),
        "accuracy": Metric("accuracy", "fraction of samples whose output neuron with the most spikes is the label "
                           "(ties: the lowest class index)", True),
    }
    """The metrics of `metrics`, the loss first and the accuracy second."""
    baseline_bins = 8
    """Time bins of the logistic-regression baseline's features (each channel's mean in each bin)."""

    def __init__(self, cfg: DataConfig):
        if cfg.dataset == "braille":
            data = preprocess_braille(load_braille_raw(cfg.path), seed=cfg.split_seed, source=cfg.path)
        elif cfg.dataset == "braille_events":
            data = braille_events_data(load_braille_events(cfg.path), encoding=cfg.encoding, seed=cfg.split_seed,
                                       threshold=cfg.event_threshold, bin_s=cfg.event_bin,
                                       duration_s=cfg.event_duration or None, source=cfg.path)
        else:
            data = synthetic_braille_data(cfg.synthetic_per_class, seed=cfg.synthetic_seed, split_seed=cfg.split_seed)
        self.cfg = cfg
        self.splits: dict[str, BrailleSplit] = {
            name: BrailleSplit(split.inputs[:n], split.labels[:n])
            for name, split, n in (("train", data.train, _first(cfg.train_subset, len(data.train))),
                                   ("test", data.test, _first(cfg.test_subset, len(data.test))))}
        self.sizes = {name: len(split) for name, split in self.splits.items()}
        self.source: str = data.source
        """Where the data came from, in words (says SYNTHETIC for generated data)."""
        self.n_inputs, self.n_outputs = data.channels, len(LETTERS)
        for name, size in self.sizes.items():
            if size == 0:
                raise ValueError(f"{self.source}: the {name} split is empty")

    def batches(self, split: str, batch_size: int, generator: torch.Generator | None = None) -> Iterator[Batch]:
        """Batches of `split` (its first `sizes[split]` samples), shuffled with `generator` if given."""
        batches = self.splits[split].batches(batch_size, shuffle=generator is not None, generator=generator)
        for inputs, labels in batches:
            yield Batch(inputs, labels, torch.ones(inputs.shape[:2], dtype=torch.bool))

    def n_batches(self, split: str, batch_size: int) -> int:
        return -(-self.sizes[split] // batch_size)

    def loss(self, output: ModelOutput, batch: Batch) -> torch.Tensor:
        """Mean softmax cross-entropy of the spike counts."""
        return F.cross_entropy(output.logits, batch.targets)

    def sums(self, output: ModelOutput, batch: Batch) -> Sums:
        """Cross-entropy sum, sample count and correct predictions."""
        logits = output.logits.detach()
        return Sums(loss_sum=float(F.cross_entropy(logits, batch.targets, reduction="sum")),
                    count=len(batch.targets), correct=int((logits.argmax(1) == batch.targets).sum()))

    @staticmethod
    def metrics(sums: Sums) -> dict[str, float]:
        """loss (mean cross-entropy) and accuracy (fraction correct)."""
        n = max(1, sums["count"])
        return {"loss": sums["loss_sum"] / n, "accuracy": sums["correct"] / n}

    def baselines(self) -> list[Baseline]:
        """Chance (every class equally likely) and a multinomial logistic regression, not spiking, on the same
        inputs averaged in `baseline_bins` time bins, fitted to the training split (full-batch L-BFGS, L2 1e-3)."""
        classes = self.n_outputs
        chance = {split: {"loss": math.log(classes), "accuracy": 1 / classes} for split in self.eval_splits}

        def features(split: str) -> torch.Tensor:
            inputs = self.splits[split].inputs
            bins = torch.tensor_split(inputs, min(self.baseline_bins, inputs.shape[1]), dim=1)
            return torch.cat([b.mean(1) for b in bins], dim=1)

        x, labels = features("train"), self.splits["train"].labels
        scale = x.std(0).clamp_min(1e-6)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            linear = torch.nn.Linear(x.shape[1], classes)
        optimiser = torch.optim.LBFGS(linear.parameters(), max_iter=200, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimiser.zero_grad()
            loss = F.cross_entropy(linear(x / scale), labels) + 1e-3 * linear.weight.square().sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            optimiser.step(closure)
        fitted = {}
        with torch.no_grad():
            for split in self.eval_splits:
                logits = linear(features(split) / scale)
                fitted[split] = self.metrics(self.sums(ModelOutput(logits, {}), Batch(
                    self.splits[split].inputs, self.splits[split].labels, torch.ones(1, dtype=torch.bool))))
        return [Baseline("chance", f"every one of the {classes} classes equally likely", chance),
                Baseline("logistic regression", "multinomial logistic regression (not spiking) on the inputs "
                         f"averaged in {self.baseline_bins} time bins, fitted to the {self.sizes['train']} "
                         "training samples", fitted)]


Task = MusicTask | TactileTask


def make_task(cfg: DataConfig) -> Task:
    """The task of cfg.dataset, its data loaded."""
    return MusicTask(cfg) if cfg.dataset in ("music21", "jsb") else TactileTask(cfg)


def spike_counts(output: ModelOutput, mask: torch.Tensor) -> Sums:
    """Spikes of each layer on the real steps (key "<layer>") and neuron-steps (key "<layer>_slots")."""
    real = mask.transpose(0, 1).unsqueeze(-1).to(torch.float32)  # [steps, batch, 1]
    sums = Sums()
    for name, spikes in output.spikes.items():
        sums[name] = float((spikes.detach() * real).sum())
        sums[f"{name}_slots"] = int(real.sum()) * spikes.shape[-1]
    return sums


def layer_names(sums: Sums) -> Sequence[str]:
    """The layers counted in `spike_counts` sums."""
    return [key[:-len("_slots")] for key in sums if key.endswith("_slots")]
