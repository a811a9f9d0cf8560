"""Outcomes: the headline figures of a run, each with its definition, its value, baselines computed on the same
data in the same run, the paper's value where it has one (with what differs) and a goal, met or short.

`training_outcomes` reads them from a training run folder (the main job's folder is one): the task's metrics on
the test split after the last epoch against the baselines training recorded in ``run.json``, and, where the
folder holds a SPICE verification (``verify.json``), `verification_outcomes`.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from cosim.train.checkpoint import read_metrics
from cosim.train.config import TrainConfig, read_config
from cosim.train.loop import RUN_RECORD
from cosim.train.tasks import MusicTask, TactileTask


@dataclass(frozen=True)
class Reference:
    """The paper's value of a figure."""

    value: float
    """In the figure's unit."""
    source: str
    """Where it comes from."""
    differs: str
    """What differs between the paper's run and this one (data, epochs, device, ...)."""


@dataclass(frozen=True)
class Outcome:
    """One headline figure of a run."""

    name: str
    """What is measured, in a few words, with its unit."""
    definition: str
    """One sentence: how it is computed."""
    value: float | None
    """This run's value (None: not measured)."""
    baseline: tuple[tuple[str, float], ...] = ()
    """(name, value) of simple predictors evaluated on the same data in the same run."""
    reference: Reference | None = None
    """The paper's value, if it has one."""
    goal: str = ""
    """What counts as success, in words ("" : a record without a goal)."""
    met: bool | None = None
    """Whether the goal is met (None: no goal or no value)."""

    def to_dict(self) -> dict[str, Any]:
        """As stored in summary.json: {"name", "definition", "value", "baseline": [{"name", "value"}],
        "reference": {"value", "source", "differs"} or null, "goal", "met"}."""
        return {"name": self.name, "definition": self.definition, "value": self.value,
                "baseline": [{"name": name, "value": value} for name, value in self.baseline],
                "reference": None if self.reference is None else vars(self.reference).copy(),
                "goal": self.goal, "met": self.met}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        """The inverse of `to_dict`."""
        reference = data.get("reference")
        return cls(data["name"], data["definition"], data["value"],
                   tuple((b["name"], b["value"]) for b in data.get("baseline", ())),
                   Reference(**reference) if reference else None, data.get("goal", ""), data.get("met"))


def against_baselines(name: str, definition: str, value: float | None, baseline: Sequence[tuple[str, float]],
                      higher_is_better: bool, reference: Reference | None = None) -> Outcome:
    """An outcome whose goal is to beat the best of its baselines."""
    if not baseline:
        return Outcome(name, definition, value, (), reference, "beat a baseline (none recorded)", None)
    best = (max if higher_is_better else min)(v for _, v in baseline)
    goal = f"{'above' if higher_is_better else 'below'} the {'best ' if len(baseline) > 1 else ''}baseline"
    met = None if value is None else (value > best if higher_is_better else value < best)
    return Outcome(name, definition, value, tuple(baseline), reference, goal, met)


def within(name: str, definition: str, value: float | None, target: float, relation: str,
           baseline: Sequence[tuple[str, float]] = (), reference: Reference | None = None) -> Outcome:
    """An outcome whose goal is a fixed bound: relation ">=" or "<=" `target`."""
    met = None if value is None or not math.isfinite(value) else (
        value >= target if relation == ">=" else value <= target)
    return Outcome(name, definition, value, tuple(baseline), reference, f"{relation} {target:g}", met)


PAPER_MUSIC_BCE = 0.178
"""The paper's test BCE of the music predictor on JSB, reached within 19 epochs (REFERENCE.md section 4)."""
PAPER_TACTILE_ACCURACY = {
    ("felif", None): 0.9134, ("felif", 8): 0.9069, ("felif", 4): 0.8449, ("felif", 3): 0.7473,
    ("lif", None): 0.9144, ("lif", 8): 0.9181, ("lif", 4): 0.7810, ("lif", 3): 0.405,
}
"""The paper's final test accuracy of the tactile classifier, mean of 50 seeds, by (output neuron, synapse bits;
None: float) (REFERENCE.md section 4)."""


def read_run_record(run_dir: Path) -> dict[str, Any]:
    """The training run's ``run.json`` ({} if it has none: a folder from before it was written)."""
    path = run_dir / RUN_RECORD
    return json.loads(path.read_text()) if path.is_file() else {}


def task_class(cfg: TrainConfig) -> type[MusicTask] | type[TactileTask]:
    """The task of a config's network."""
    return MusicTask if cfg.model.network == "music" else TactileTask


def _reference(cfg: TrainConfig, metric: str, record: dict[str, Any], epochs: int) -> Reference | None:
    m = cfg.model
    sizes = record.get("data", {}).get("sizes", {})
    device = f"{m.bits or 'float'}-bit synapses, {m.neuron} neurons" + (
        " on the fitted surrogate" if m.surrogate_file else "")
    if m.network == "music":
        differs = (f"paper: 229 JSB training chorales, 19 of 100 epochs; here: {sizes.get('train', '?')} "
                   f"{cfg.data.dataset} chorales, {epochs} epochs, {device}")
        if metric == "loss":
            return Reference(PAPER_MUSIC_BCE, "BRUNO paper (REFERENCE.md section 4)", differs)
        if metric == "nll":
            return Reference(PAPER_MUSIC_BCE * 54, "54 keys x the paper's BCE (REFERENCE.md section 4)", differs)
        return None
    paper = PAPER_TACTILE_ACCURACY.get((m.neuron, m.bits))
    if metric != "accuracy" or paper is None:
        return None
    return Reference(paper, "BRUNO paper, mean of 50 seeds (REFERENCE.md section 4)",
                     f"paper: recorded Braille, 150 epochs; here: {sizes.get('train', '?')} {cfg.data.dataset} "
                     f"training samples, {epochs} epochs, seed {cfg.run.seed}, {device}")


HEADLINE = {"music": ("loss", "frame_accuracy", "nll"), "tactile": ("accuracy", "loss")}
"""The metrics of each network shown as outcomes, on the test split after the last epoch."""


def training_outcomes(run_dir: Path) -> list[Outcome]:
    """The outcomes of a training run folder: test metrics after the last epoch against the recorded baselines,
    then those of its SPICE verification if it has one."""
    cfg = read_config(run_dir / "config.toml")
    history = read_metrics(run_dir)
    record = read_run_record(run_dir)
    info = task_class(cfg).metric_info
    last = history[-1] if history else {}
    outcomes = []
    for metric in HEADLINE[cfg.model.network]:
        baseline = [(b["name"], b["metrics"]["test"][metric]) for b in record.get("baselines", ())
                    if metric in b["metrics"].get("test", {})]
        outcomes.append(against_baselines(
            f"test {info[metric].label}", f"{info[metric].definition}; epoch {last.get('epoch', '-')}",
            last.get(f"test_{metric}"), baseline, bool(info[metric].higher_is_better),
            _reference(cfg, metric, record, len(history))))
    if (run_dir / "verify.json").is_file():
        outcomes += verification_outcomes(json.loads((run_dir / "verify.json").read_text()), cfg.model.dt)
    return outcomes


def verification_outcomes(verify: dict[str, Any], dt: float | None) -> list[Outcome]:
    """The outcomes of a SPICE verification (verify.json): how closely the circuits reproduce the training
    model on the verified test samples. `dt`: the coarse step, s (None: unknown, no spike-time row)."""
    n = verify["samples"]
    samples = f"{n} test sample{'s' if n != 1 else ''}, epoch {verify.get('epoch', '-')}"
    tolerance = verify["tolerance"]
    if verify["network"] == "music":
        definition = ("fraction of (frame, key) cells after the warm-up where the network read from the SPICE "
                      f"circuits and the training model predict the same ({samples})")
        trivial = ([("every key predicted off", 1 - verify["surrogate_on_fraction"])]
                   if "surrogate_on_fraction" in verify else [])
    else:
        definition = f"fraction of samples where SPICE and the training model give the same class ({samples})"
        trivial = [("chance", 1 / verify["neurons"])]
    agreement = verify["prediction_agreement"]
    best = max((v for _, v in trivial), default=-math.inf)
    goal = f">= {tolerance:g}" + (" and above the baseline" if trivial else "")
    outcomes = [Outcome("SPICE vs model: prediction agreement", definition, agreement, tuple(trivial), None, goal,
                        agreement >= tolerance and agreement > best),
                within("SPICE vs model: spike-count agreement",
                       "1 - sum |n_model - n_SPICE| / sum n_SPICE over the device neurons, spikes n counted per neuron "
                       f"({samples})", verify["spike_count_agreement"], tolerance, ">=",
                       [("a circuit that never spikes", 0.0)])]
    if dt is not None:
        error = verify["spike_time_error_s"]
        outcomes.append(Outcome(
            "SPICE vs model: spike-time error (s)", "median |t_model - t_SPICE| of the spikes paired within one "
            f"coarse step ({samples})", error, (("spike time known to its coarse step only", dt / 4),), None,
            "below the baseline", error < dt / 4 if math.isfinite(error) else None))
    return outcomes


def format_outcomes(outcomes: Sequence[Outcome]) -> str:
    """The outcomes as a plain-text table (the main job prints it when it ends)."""
    rows = [("figure", "value", "baseline", "paper", "goal", "met")]
    for o in outcomes:
        rows.append((o.name, number(o.value), "; ".join(f"{name} {number(v)}" for name, v in o.baseline) or "-",
                     number(o.reference.value) if o.reference else "-", o.goal or "-", verdict(o.met)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def number(value: float | None) -> str:
    """A figure as shown in tables: 4 significant digits, "-" for none."""
    return "-" if value is None else f"{value:.4g}"


def verdict(met: bool | None) -> str:
    """"met", "short" or "-" (no goal)."""
    return "-" if met is None else ("met" if met else "short")
