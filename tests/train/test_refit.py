"""The refit loop (verify.refit, `cosim refit`): a new surrogate version at the states a tiny run visited, its
lineage, resume across it, and a refit whose SPICE runs fail. Real ngspice runs on a few short stimuli."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from cosim.cli import main
from cosim.report import build_report
from cosim.spice.backend import file_sha256
from cosim.spice.pool import default_pool
from cosim.surrogates import load_felif
from cosim.surrogates.artifact import SurrogateFileError, default_path
from cosim.surrogates.refit import RefitConfig, check_lineage
from cosim.train.checkpoint import checkpoint_path, load_checkpoint, read_metrics
from cosim.train.config import ConfigError, load_config
from cosim.train.loop import Trainer
from cosim.train.refit import VISITS, read_refits, triggers
from cosim.verify.runner import load_run

TINY = RefitConfig(sequences=2, keep_design=False, max_evaluations=2, n_jobs=2, progress=False)
"""Two recorded sequences and the extremes, no design of the parent, two optimiser evaluations."""


@pytest.fixture(scope="module")
def jsb_file(write_jsb) -> Path:
    return write_jsb(3, train=(18, 24, 14, 20), valid=(16, 12), test=(15, 22), low=50, high=88)


def narrow(folder: Path) -> Path:
    """The shipped surrogate with its support cut to input currents of 0-20 nA: a tiny run leaves it."""
    data = json.loads(default_path("felif").read_text())
    data["support"]["i_in"] = [0.0, 20e-9]
    path = folder / "felif-narrow.json"
    path.write_text(json.dumps(data))
    return path


def config(jsb_file: Path, out: Path, *extra: str):
    # 0.1 uA per weight unit: tens of nA, many neuron-steps above the narrow support, so a refit is due
    return load_config("music", ["data.dataset=jsb", f"data.path={json.dumps(str(jsb_file))}", "model.hidden=12",
                                 "model.bits=3", f"model.surrogate_file={json.dumps(str(narrow(out.parent)))}",
                                 "model.current_scale=1e-7", "run.epochs=1", f"run.out={json.dumps(str(out))}",
                                 "run.threads=1", "verify.refit=true", *extra])


def felif_params(trainer: Trainer):
    return trainer.model.neurons.params


def test_triggers_and_config_checks(jsb_file: Path, tmp_path: Path):
    cfg = config(jsb_file, tmp_path / "run", "verify.refit_outside=0.05", "verify.tolerance=0.9")
    assert triggers(cfg, {"outside_support_neurons": 0.04}, {"prediction_agreement": 0.95}) == []
    assert "outside-support" in triggers(cfg, {"outside_support_neurons": 0.06}, None)[0]
    assert "agreement 0.8" in triggers(cfg, {"outside_support_neurons": 0.0}, {"prediction_agreement": 0.8})[0]
    with pytest.raises(ConfigError, match="verify.refit needs a fitted FeLIF surrogate"):
        config(jsb_file, tmp_path / "run", 'model.surrogate_file=""')
    with pytest.raises(ConfigError, match="refit_outside"):
        config(jsb_file, tmp_path / "run", "verify.refit_outside=2")


@pytest.mark.slow
def test_refit_writes_a_version_naming_its_parent_and_resume_continues_with_it(jsb_file: Path, tmp_path: Path):
    out = tmp_path / "run"
    trainer = Trainer(config(jsb_file, out), progress=False)
    trainer.refit_config = TINY
    trainer.fit()
    (record,) = read_refits(out)
    assert record["ok"] and record["version"] == 2 and record["epoch"] == 1, record
    assert record["outside_before"] > 0.1 and record["outside_after"] < record["outside_before"]
    version = Path(record["path"])
    assert version == out / "surrogates" / "felif-v2.json"
    assert (out / "surrogates" / "felif-v2" / "felif_report.md").is_file()
    parent = load_felif(version).artifact.provenance.parent
    narrow_file = tmp_path / "felif-narrow.json"
    assert parent == {"path": str(narrow_file), "sha256": file_sha256(narrow_file), "version": 1}
    recorded = json.loads((out / VISITS / "neurons.json").read_text())["quantiles"]["i_in"]
    support = load_felif(version).support.i_in  # reaches the currents the run fed its neurons
    assert support[0] <= recorded["q0.0001"] + 1e-12 and support[1] >= recorded["q0.9999"] - 1e-12
    row = read_metrics(out)[-1]
    assert row["refit_version"] == 2 and row["refit_ok"] and row["refit_outside_after"] == record["outside_after"]
    assert json.loads((out / VISITS / "neurons.json").read_text())["epoch"] == 1
    state = load_checkpoint(checkpoint_path(out, 1))
    assert state["surrogate"]["path"] == str(version) and state["surrogate"]["version"] == 2
    assert load_run(out)[0].model.surrogate_file == str(version)  # `cosim verify` simulates against the version

    # resume: the checkpoint's version, not the config's file
    cfg = config(jsb_file, out, "run.epochs=2", "verify.refit=false")
    resumed = Trainer(cfg, resume=True, progress=False)
    assert resumed.surrogate_file == version
    assert felif_params(resumed) == load_felif(version).params
    assert resumed.model.neurons.guard.support == load_felif(version).support != load_felif(narrow_file).support
    resumed.fit()
    assert load_checkpoint(checkpoint_path(out, 2))["surrogate"]["path"] == str(version)

    # cosim refit RUN_DIR: version 3, whose parent is version 2
    assert main(["refit", str(out), "--quick", "--sequences", "2", "--jobs", "2"]) == 0
    third = check_lineage(out / "surrogates" / "felif-v3.json")
    assert third.artifact.provenance.parent["sha256"] == file_sha256(version)
    assert Trainer(cfg, resume=True, progress=False).surrogate_file == out / "surrogates" / "felif-v3.json"

    page = build_report(out).read_text()  # the report shows both refits
    assert "Surrogate refits" in page and "version 3 from felif-v2.json" in page

    # a version changed after the refit, or whose parent changed, is refused
    original = version.read_bytes()
    data = json.loads(original)
    data["parameters"]["v_thr"]["value"] += 0.1
    version.write_text(json.dumps(data))
    with pytest.raises(SurrogateFileError, match="provenance names parent"):
        check_lineage(out / "surrogates" / "felif-v3.json")
    version.write_bytes(original)
    check_lineage(out / "surrogates" / "felif-v3.json")
    shutil.copy(out / "surrogates" / "felif-v3.json", tmp_path / "v3.json")
    data = json.loads((tmp_path / "v3.json").read_text())
    data["parameters"]["v_thr"]["value"] += 0.1
    (out / "surrogates" / "felif-v3.json").write_text(json.dumps(data))
    with pytest.raises(SurrogateFileError, match="changed after the refit"):
        Trainer(cfg, resume=True, progress=False)


@pytest.fixture
def no_vacask(tmp_path: Path, monkeypatch):
    """VACASK is not where the simulation workers look for it (fresh workers, before and after)."""
    monkeypatch.setenv("COSIM_VACASK_BIN", str(tmp_path / "no-vacask"))
    default_pool().close()  # idle workers started before keep the environment they were started with
    yield
    default_pool().close()


@pytest.mark.slow
def test_a_refit_whose_spice_fails_keeps_the_current_surrogate(jsb_file: Path, tmp_path: Path, no_vacask):
    """The circuit runs fail for real (the simulator is not there): nothing is written, training goes on."""
    out = tmp_path / "run"
    trainer = Trainer(config(jsb_file, out, "run.epochs=2"), progress=False)
    trainer.refit_config = dataclasses.replace(TINY, simulator="vacask")
    history = trainer.fit()
    records = read_refits(out)
    assert [r["ok"] for r in records] == [False, False] and len(history) == 2
    assert "failed" in records[0]["reason"] and "vacask not found" in records[0]["reason"]
    assert "kept" in records[0]["reason"]
    assert trainer.surrogate_file == tmp_path / "felif-narrow.json"
    assert not list((out / "surrogates").glob("felif-v*.json"))
    assert load_checkpoint(checkpoint_path(out, 2))["surrogate"]["path"] == str(tmp_path / "felif-narrow.json")
    assert read_metrics(out)[0]["refit_ok"] is False
