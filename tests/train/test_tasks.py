"""Task metrics and baselines, against values worked out by hand."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from cosim.train.config import DataConfig
from cosim.train.models import ModelOutput
from cosim.train.tasks import Batch, MusicTask, TactileTask

CHORD = [60, 64, 67]  # C major, MIDI numbers: keys 17, 21 and 24 of the 54 (MIDI 43..96)


def music_task(tmp_path: Path, train: list, test: list, warmup: int = 0) -> MusicTask:
    path = tmp_path / "jsb.json"
    path.write_text(json.dumps({"train": train, "valid": test, "test": test}))
    return MusicTask(DataConfig(dataset="jsb", path=str(path), warmup_steps=warmup))


def test_music_metrics_follow_bay_et_al_over_all_frames(tmp_path: Path):
    task = music_task(tmp_path, [[CHORD] * 3], [[CHORD] * 3])
    targets = torch.zeros(1, 2, 54)
    targets[0, 0, [0, 1]] = 1  # frame 1: keys 0 and 1 sound, key 0 is predicted: TP 1, FN 1
    targets[0, 1, 2] = 1  # frame 2: key 2 sounds and is predicted: TP 1
    logits = torch.full((1, 2, 54), -3.0)
    logits[0, 0, 0] = logits[0, 1, 2] = 3.0
    sums = task.sums(ModelOutput(logits, {}), Batch(torch.zeros(1, 2, 54), targets, torch.ones(1, 2, dtype=bool)))
    metrics = task.metrics(sums)

    # sum TP / sum (TP + FP + FN) = 2 / 3 (the mean of the frames' own accuracies would be 0.75)
    assert metrics["frame_accuracy"] == pytest.approx(2 / 3)
    assert metrics["on_fraction"] == pytest.approx(2 / 108)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="sum").item()
    assert metrics["loss"] == pytest.approx(bce / 108)  # per key and frame
    assert metrics["nll"] == pytest.approx(bce / 2)  # per frame: summed over the keys
    assert set(metrics) == set(MusicTask.metric_info)


def test_music_baseline_predicts_each_key_with_its_training_frequency(tmp_path: Path):
    # training: the same chord at every step; 2 chorales of 11 steps -> 10 next-step frames each, 2 in the warm-up
    task = music_task(tmp_path, [[CHORD] * 11, [CHORD] * 11], [[CHORD] * 6, [[50]] * 6], warmup=2)
    (baseline,) = task.baselines()

    frames = 2 * (10 - 2)
    on, off = (frames + 1) / (frames + 2), 1 / (frames + 2)  # add-one smoothed frequencies of sounding/silent keys
    # test chorale 1 (the chord) is predicted exactly; chorale 2 (a key never heard) not at all
    per_frame = {"chord": -(3 * math.log(on) + 51 * math.log(1 - off)),
                 "other": -(3 * math.log(1 - on) + math.log(off) + 50 * math.log(1 - off))}
    test = baseline.metrics["test"]
    assert test["nll"] == pytest.approx((per_frame["chord"] + per_frame["other"]) / 2, rel=1e-5)
    assert test["loss"] == pytest.approx(test["nll"] / 54, rel=1e-5)
    assert test["frame_accuracy"] == pytest.approx(9 / (9 + 9 + 3))  # 3 frames each: TP 3 + 0, FP 0 + 3, FN 0 + 1
    assert set(baseline.metrics) == {"valid", "test"}


def test_tactile_baselines_chance_and_logistic_regression():
    task = TactileTask(DataConfig(dataset="synthetic_braille", synthetic_per_class=10))
    chance, logistic = task.baselines()

    assert chance.metrics["test"] == {"loss": pytest.approx(math.log(27)), "accuracy": pytest.approx(1 / 27)}
    # the synthetic letters differ in when each taxel is pressed: a linear model of the binned signals
    # separates them far better than chance
    assert logistic.metrics["test"]["accuracy"] > 0.5
    assert logistic.metrics["test"]["loss"] < math.log(27)
    assert set(logistic.metrics["test"]) == set(TactileTask.metric_info)
