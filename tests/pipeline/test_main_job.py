import json

import pytest

from cosim.cli import main


@pytest.mark.slow
def test_main_job_end_to_end(tmp_path, capsys):
    """`cosim run` on a tiny training set: every stage runs, the outcome table is printed and leads the report."""
    out = tmp_path / "run"
    assert main(["run", "--out", str(out), "--set", "run.epochs=2", "--set", "data.train_subset=4",
                 "--set", "data.valid_subset=2", "--set", "data.test_subset=2", "--set", "verify.max_steps=8"]) == 0

    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["stages"]) >= {"characterize felif", "train", "verify"}
    assert summary["stages"]["train"]["final"]["epoch"] == 2
    assert 0.0 <= summary["stages"]["verify"]["figures"]["prediction_agreement"] <= 1.0
    names = [o["name"] for o in summary["outcomes"]]
    assert names[:3] == ["test BCE per key and frame (nats)", "test frame accuracy", "test NLL per frame (nats)"]
    assert all(o["baseline"] for o in summary["outcomes"])
    assert all(name in printed.split("cosim run: outcomes")[1] for name in names)
    page = (out / "report.html").read_text()
    assert page.index('id="outcome-table"') < page.index("<details>")
    for section in ("Training, epoch by epoch", "SPICE verification", "Device characterisation",
                    "Surrogates fitted to SPICE", "Raw tables"):
        assert f"<summary>{section}</summary>" in page
