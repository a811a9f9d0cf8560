"""`cosim fit felif` end to end: ngspice transients of the 8-domain circuit, fit, validation, artifact, report."""
from __future__ import annotations

import json

import pytest

from cosim.cli import main
from cosim.surrogates import load_felif


@pytest.mark.slow
def test_quick_default_fit_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "felif.json"
    assert main(["fit", "felif", "--quick", "--out", str(out), "--seed", "1", "--jobs", "2"]) == 0
    assert "wrote" in capsys.readouterr().out
    surrogate = load_felif(out)
    artifact = surrogate.artifact
    assert artifact.data["circuit"]["n_domains"] == 8
    assert artifact.provenance.seeds == {"doe": 1, "fit_starts": 1}
    assert any(path.endswith("felif_nd8.lib") for path in artifact.provenance.files)
    assert artifact.validation["holdout"]["spike_count_agreement"] > 0.9
    assert artifact.validation["holdout"]["v_nrmse"] < artifact.validation["holdout_start"]["v_nrmse"]
    assert "8 domains" in artifact.notes
    assert (tmp_path / "felif_report.md").is_file() and (tmp_path / "felif_overlays.png").is_file()
    assert json.loads(out.read_text())["kind"] == "felif"
