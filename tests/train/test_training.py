"""Training runs end to end on tiny configs: run folder, exact resume, NaN guard, clear errors on bad inputs."""
from __future__ import annotations

import dataclasses
import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from cosim.cli import main
from cosim.data import DataFormatError
from cosim.train.checkpoint import checkpoint_path, load_checkpoint, read_metrics
from cosim.train.config import ConfigError, load_config
from cosim.train.loop import SilentLayerWarning, Trainer, TrainingDiverged, train

TINY_FELIF = ["model.h=1e-5"]  # 100 fine sub-steps per coarse step instead of 1000: same code, faster


@pytest.fixture(scope="module")
def jsb_file(write_jsb) -> Path:
    return write_jsb(1, train=(18, 24, 14, 20), valid=(16, 12), test=(15, 22), low=50, high=88)


def music_config(jsb_file: Path, out: Path, *extra: str):
    return load_config("music", ["data.dataset=jsb", f"data.path={json.dumps(str(jsb_file))}", "model.hidden=24",
                                 "run.epochs=2", f"run.out={json.dumps(str(out))}", "run.threads=1", *TINY_FELIF,
                                 *extra])


def tactile_config(out: Path, *extra: str):
    return load_config("tactile", ["data.synthetic_per_class=3", "data.batch_size=16", "model.hidden=32",
                                   "model.encoding_repeat=4", "run.epochs=2", f"run.out={json.dumps(str(out))}",
                                   "run.threads=1", *TINY_FELIF, *extra])


def without_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in history]


def test_music_cli_run_writes_the_run_folder(jsb_file: Path, tmp_path: Path, capsys):
    out = tmp_path / "music"
    args = ["train", "--config", "music", "--out", str(out), "--set", "data.dataset=jsb",
            "--set", f"data.path={json.dumps(str(jsb_file))}", "--set", "model.hidden=24", "--set", "run.epochs=2",
            "--set", "run.threads=1", "--set", "model.bits=3"] + [a for o in TINY_FELIF for a in ("--set", o)]
    assert main(args) == 0
    assert "curves.png" in capsys.readouterr().out
    for name in ("config.toml", "run.json", "metrics.jsonl", "metrics.csv", "curves.png", "checkpoints/epoch-0001.pt",
                 "checkpoints/epoch-0002.pt"):
        assert (out / name).is_file(), name
    history = read_metrics(out)
    assert [row["epoch"] for row in history] == [1, 2]
    for row in history:
        for key in ("train_loss", "valid_loss", "test_loss", "test_nll", "valid_frame_accuracy",
                    "test_frame_accuracy", "test_on_fraction", "rate_hidden_hz"):
            assert np.isfinite(row[key]), key
        assert 0 < row["train_loss"] < 1 and 0 <= row["test_frame_accuracy"] <= 1
        assert 0 < row["rate_hidden_hz"] <= 1000 * (1 / 2 + 1 / 24)  # <= one spike per 2 steps (+1 in odd T)
    assert history[1]["train_loss"] < history[0]["train_loss"]
    csv_lines = (out / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,lr,train_loss") and len(csv_lines) == 3
    assert load_config(out / "config.toml").model.bits == 3


def test_tactile_run_on_synthetic_braille(tmp_path: Path):
    history = train(tactile_config(tmp_path / "tactile"), progress=False)
    assert len(history) == 2
    last = history[-1]
    assert set(last) >= {"train_loss", "train_accuracy", "test_loss", "test_accuracy", "rate_encoding_hz",
                         "rate_hidden_hz", "rate_output_hz"}
    assert all(np.isfinite(v) for k, v in last.items() if k != "silent_layers")
    assert last["rate_output_hz"] > 0, "the FeLIF output layer never spiked: current gain too low"


# fitted surrogate: 1 uA per weight unit drives some neurons above the fit's 100 nA, so the validity guard counts
@pytest.mark.parametrize("model", [(), ('model.surrogate_file="default"', "model.h=1e-6", "model.current_scale=1e-6")],
                         ids=["analytic", "fitted-surrogate"])
def test_resume_after_an_interrupt_is_exact(jsb_file: Path, tmp_path: Path, model: tuple[str, ...]):
    reference = train(music_config(jsb_file, tmp_path / "whole", "run.epochs=3", "model.bits=3", *model),
                      progress=False)
    if model:  # the validity guard's figure is per epoch, so it survives an interrupt too
        assert all("outside_support_neurons" in row for row in reference)
        assert all(row["outside_support_neurons"] > 0.5 for row in reference)

    cfg = music_config(jsb_file, tmp_path / "cut", "run.epochs=3", "model.bits=3", *model)
    trainer = Trainer(cfg, progress=False)
    calls = []

    def interrupt(module, inputs, output):
        calls.append(1)
        if len(calls) == 8:  # epoch 2 (4 training + 2 evaluation batches per epoch), second batch
            raise KeyboardInterrupt

    trainer.model.readout.register_forward_hook(interrupt)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert [row["epoch"] for row in read_metrics(Path(cfg.run.out))] == [1]
    resumed = train(cfg, resume=True, progress=False)
    assert without_times(resumed) == without_times(reference)
    final = load_checkpoint(checkpoint_path(tmp_path / "cut", 3))["model"]
    expected = load_checkpoint(checkpoint_path(tmp_path / "whole", 3))["model"]
    assert all(torch.equal(final[k], expected[k]) for k in expected)

    # a finished run can be extended by more epochs
    longer = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, epochs=4))
    assert [row["epoch"] for row in train(longer, resume=True, progress=False)] == [1, 2, 3, 4]


@pytest.mark.parametrize("where", ["loss", "gradient"])
def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(jsb_file: Path, tmp_path: Path, where: str):
    cfg = music_config(jsb_file, tmp_path / where, "run.epochs=3")
    trainer = Trainer(cfg, progress=False)
    calls = []

    def poison(module, inputs, output):
        calls.append(1)
        return output * float("nan") if len(calls) == 8 else output  # epoch 2, second training batch

    if where == "loss":
        trainer.model.readout.register_forward_hook(poison)
    else:
        trainer.model.readout.register_forward_hook(lambda m, i, o: calls.append(1))
        trainer.model.readout.weight.register_hook(lambda g: g * float("nan") if len(calls) == 8 else g)
    with pytest.raises(TrainingDiverged) as err:
        trainer.fit()
    message = str(err.value)
    assert "epoch 2, batch 2" in message and str(checkpoint_path(tmp_path / where, 1)) in message
    assert ("the loss is nan" if where == "loss" else "gradient of readout.weight has") in message
    assert sorted(p.name for p in (tmp_path / where / "checkpoints").iterdir()) == ["epoch-0001.pt",
                                                                                   "epoch-0001.pt.sha256"]
    assert [row["epoch"] for row in read_metrics(tmp_path / where)] == [1]
    assert (tmp_path / where / "curves.png").is_file()
    assert train(cfg, resume=True, progress=False)[-1]["epoch"] == 3  # the kept checkpoint resumes


def test_bad_inputs_give_clear_errors(jsb_file: Path, tmp_path: Path):
    missing = tmp_path / "nowhere" / "jsb.json"
    with pytest.raises(FileNotFoundError, match=f"JSB chorales file not found: {missing}"):
        Trainer(music_config(jsb_file, tmp_path / "a", f"data.path={json.dumps(str(missing))}"))

    bad = tmp_path / "braille.pkl"
    bad.write_bytes(pickle.dumps([{"taxel_data": np.zeros((40, 7), dtype=np.uint8)}] * 27))
    with pytest.raises(DataFormatError, match="braille.pkl"):
        Trainer(tactile_config(tmp_path / "b", "data.dataset=braille", f"data.path={json.dumps(str(bad))}"))

    trainer = Trainer(music_config(jsb_file, tmp_path / "c"), progress=False)
    with pytest.raises(ValueError, match=r"MusicPredictor expects inputs \[batch, steps, 54\], got \(1, 10, 88\)"):
        trainer.model(torch.zeros(1, 10, 88))

    cfg = music_config(jsb_file, tmp_path / "d", "run.epochs=1")
    train(cfg, progress=False)
    with pytest.raises(FileExistsError, match="already holds a run"):
        Trainer(cfg)
    with pytest.raises(ConfigError, match="model.hidden differ"):
        Trainer(music_config(jsb_file, tmp_path / "d", "model.hidden=8"), resume=True)


def test_cli_reports_config_typos(capsys):
    assert main(["train", "--set", "modle.bits=3"]) == 1
    assert "did you mean 'model'" in capsys.readouterr().err


def test_a_layer_silent_for_a_whole_epoch_is_warned_about_and_recorded(jsb_file: Path, tmp_path: Path):
    cfg = music_config(jsb_file, tmp_path / "silent", "run.epochs=1", "model.current_scale=1e-13")
    with pytest.warns(SilentLayerWarning, match="epoch 1: layer.s. hidden did not spike once"):
        row, = train(cfg, progress=False)
    assert row["rate_hidden_hz"] == 0 and row["silent_layers"] == "hidden"
    assert read_metrics(tmp_path / "silent")[0]["silent_layers"] == "hidden"
    with warnings.catch_warnings():
        warnings.simplefilter("error", SilentLayerWarning)
        row, = train(music_config(jsb_file, tmp_path / "spiking", "run.epochs=1"), progress=False)
    assert row["rate_hidden_hz"] > 0 and row["silent_layers"] == ""
