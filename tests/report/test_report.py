"""Reports of every kind of run folder the package writes, built from real runs (the short main job of conftest,
the shipped surrogate artifacts)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cosim.cli import main
from cosim.report import ReportError, build_report, format_outcomes, page_of
from cosim.report.outcomes import Outcome, Reference
from cosim.train.checkpoint import read_metrics

REPO = Path(__file__).resolve().parents[2]


def copy(source: Path, dest: Path, *names: str) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        (shutil.copytree if (source / name).is_dir() else shutil.copy2)(source / name, dest / name)
    return dest


def test_the_main_job_summary_holds_its_outcomes_each_with_a_baseline(short_main_run: Path):
    summary = json.loads((short_main_run / "summary.json").read_text())
    outcomes = {o["name"]: o for o in summary["outcomes"]}
    for outcome in outcomes.values():
        assert set(outcome) == {"name", "definition", "value", "baseline", "reference", "goal", "met"}
        assert outcome["definition"] and outcome["goal"] and outcome["baseline"], outcome
        assert isinstance(outcome["met"], bool)
    last = read_metrics(short_main_run)[-1]
    record = json.loads((short_main_run / "run.json").read_text())
    (baseline,) = record["baselines"]
    bce = outcomes["test BCE per key and frame (nats)"]
    assert bce["value"] == last["test_loss"]
    assert bce["baseline"] == [{"name": "key frequency", "value": baseline["metrics"]["test"]["loss"]}]
    assert bce["met"] == (last["test_loss"] < baseline["metrics"]["test"]["loss"])
    assert bce["reference"]["value"] == 0.178 and "here: 4 jsb chorales, 2 epochs" in bce["reference"]["differs"]
    assert outcomes["test NLL per frame (nats)"]["value"] == pytest.approx(54 * last["test_loss"])
    assert outcomes["test frame accuracy"]["value"] == last["test_frame_accuracy"]
    verify = json.loads((short_main_run / "verify.json").read_text())
    agreement = outcomes["SPICE vs model: prediction agreement"]
    assert agreement["value"] == verify["prediction_agreement"]
    assert agreement["baseline"][0]["value"] == pytest.approx(1 - verify["surrogate_on_fraction"])
    assert summary["command"].startswith("cosim run --out") and summary["cosim"] and summary["machine"]


def test_each_kind_of_run_folder_gets_its_own_outcome_table(short_main_run: Path, tmp_path: Path):
    training = copy(short_main_run, tmp_path / "training", "config.toml", "run.json", "metrics.jsonl", "curves.png",
                    "verify.json", "verify")
    verification = copy(short_main_run, tmp_path / "verification", "config.toml", "verify.json", "verify")
    characterisation = copy(short_main_run / "characterization", tmp_path / "characterisation", "fecap", "rram")
    fit = copy(REPO / "surrogates", tmp_path / "fit", *(p.name for p in (REPO / "surrogates").iterdir()))
    expected = {
        short_main_run: ("main job", "test BCE per key and frame (nats)"),
        training: ("training run", "test frame accuracy"),
        verification: ("SPICE verification", "SPICE vs model: spike-time error (s)"),
        characterisation: ("characterisation", "RRAM: write-verify converged"),
        characterisation / "fecap": ("characterisation", "FeCap: VACASK vs ngspice, P-V loop NRMSE"),
        fit: ("surrogate fit", "felif: held-out spike-count agreement"),
    }
    for folder, (kind, outcome) in expected.items():
        page = page_of(folder)
        assert page.kind == kind, folder
        assert outcome in [o.name for o in page.outcomes], (kind, [o.name for o in page.outcomes])
        assert page.figures and page.sections[-1].title == "Raw tables", kind
        html = build_report(folder).read_text()
        assert html.index('id="run-card"') < html.index('id="outcome-table"') < html.index("<details>"), kind
    fitted = {o.name: o for o in page_of(fit).outcomes}
    crossbar = fitted["crossbar: held-out relative error of the column currents (median)"]
    assert crossbar.baseline[0][0] == "ideal dot product" and crossbar.met
    assert fitted["felif: held-out membrane-voltage NRMSE"].baseline[0][0] == "unfitted start (default parameters)"


def test_a_folder_of_no_known_kind_is_a_one_line_error(tmp_path: Path, capsys):
    (tmp_path / "notes.txt").write_text("not a run")
    with pytest.raises(ReportError, match="not a cosim run folder"):
        build_report(tmp_path)
    assert main(["report", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a cosim run folder" in err and "Traceback" not in err

    (tmp_path / "summary.json").write_text("{not json")
    assert main(["report", str(tmp_path)]) == 1
    assert "summary.json: not valid JSON" in capsys.readouterr().err


def test_report_of_missing_folder_is_a_clear_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_report(tmp_path / "nope")


def test_the_printed_outcome_table_lines_up_every_figure():
    outcomes = [Outcome("test BCE", "mean BCE", 0.25, (("key frequency", 0.2),), Reference(0.178, "paper", "-"),
                        "below the best baseline (0.2)", False),
                Outcome("agreement", "cells alike", 0.99, (("all off", 0.9), ("chance", 0.5)), None, ">= 0.95", True)]
    lines = format_outcomes(outcomes).splitlines()
    assert lines[0].split() == ["figure", "value", "baseline", "paper", "goal", "met"]
    assert lines[2].startswith("test BCE") and "key frequency 0.2" in lines[2] and lines[2].endswith("short")
    assert "all off 0.9; chance 0.5" in lines[3] and lines[3].endswith("met")
    assert lines[2].index("0.25") == lines[0].index("value") == lines[3].index("0.99")
