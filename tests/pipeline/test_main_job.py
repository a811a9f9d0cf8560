import json

import pytest

from cosim.cli import main


@pytest.mark.slow
def test_main_job_end_to_end(tmp_path):
    """`cosim run` on a tiny training set: every stage runs and the report shows every section."""
    out = tmp_path / "run"
    assert main(["run", "--out", str(out), "--set", "run.epochs=2", "--set", "data.train_subset=4",
                 "--set", "data.valid_subset=2", "--set", "data.test_subset=2", "--set", "verify.max_steps=4"]) == 0

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["stages"]) >= {"characterize felif", "train", "verify"}
    assert summary["stages"]["train"]["final"]["epoch"] == 2
    assert 0.0 <= summary["stages"]["verify"]["figures"]["prediction_agreement"] <= 1.0
    page = (out / "report.html").read_text()
    for section in ("Device characterisation", "Surrogates vs SPICE", "Training", "SPICE verification"):
        assert f"<h2>{section}</h2>" in page
