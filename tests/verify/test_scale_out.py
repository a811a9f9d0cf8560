"""Verification at scale: a Dask cluster on loopback runs a verification of a tiny network on a wired, tiled
array and matches the local run; results are written as they come, so a verification run again resumes."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cosim.train.config import load_config
from cosim.train.loop import train
from cosim.verify.export import HardwareConfig
from cosim.verify.runner import verify_run

KEYS = ("prediction_agreement", "spike_count_agreement", "spikes_spice", "spikes_surrogate", "spice_metric",
        "samples", "ir_drop_error_rel", "ir_drop_tile_error_rel", "wired_array")


@pytest.fixture(scope="module")
def wired_run(write_jsb, tmp_path_factory) -> Path:
    """A 3-bit music predictor of 4 FeLIF neurons built for 54 inputs x 4 pairs at 1 ohm per segment (2 row tiles
    of 32 x 16), one epoch."""
    data = write_jsb(5, train=(14, 12), valid=(12,), test=(14, 12), low=55, high=80)
    out = tmp_path_factory.mktemp("runs") / "wired"
    train(load_config("music", ["data.dataset=jsb", f"data.path={json.dumps(str(data))}", "model.hidden=4",
                                "model.bits=3", "model.current_scale=1e-8", "model.r_wire=1.0", "run.epochs=1",
                                "run.threads=1", f"run.out={json.dumps(str(out))}", "verify.samples=2",
                                "verify.max_steps=12"]), progress=False)
    return out


def test_dask_cluster_verifies_like_the_local_run_and_an_interrupted_run_resumes(wired_run: Path):
    distributed = pytest.importorskip("distributed")
    hw = HardwareConfig(programming="ideal")
    store = wired_run / "verify" / "jobs"
    local = verify_run(wired_run, hw=hw, n_jobs=1, progress=False)
    # the run's own array: 1 ohm, 2 row tiles; simulated in two stages (tile reads, then the neurons)
    assert local["hardware"]["r_wire"] == 1.0 and len(local["ir_drop_tile_error_rel"]) == 2
    assert local["wired_array"] == "staged" and 0 < local["ir_drop_error_rel"] < 0.05
    assert local["wired_read"]["jobs"] == 2  # one transient per tile (linear read: its unit patterns)
    assert local["spikes_spice"] > 10, "the tiny network must spike for the comparison to mean anything"
    stored = sorted(store.glob("*.json"))
    assert len(stored) == 2 + 8  # 2 tile reads, 2 samples x 4 single-column jobs, each written as it came
    shutil.rmtree(store)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        remote = verify_run(wired_run, hw=hw, scheduler=cluster.scheduler_address, progress=False)
    for key in KEYS:
        assert remote[key] == local[key], key
    assert remote["spike_time_error_s"] == pytest.approx(local["spike_time_error_s"], rel=1e-6)
    # interrupted after some jobs: those stay as they are, the rest is simulated, the outcome the same
    lost = sorted(store.glob("*.json"))[::2]
    for meta in lost:
        meta.unlink()
        meta.with_suffix(".npz").unlink()
    kept = {path: path.stat().st_mtime_ns for path in store.iterdir()}
    resumed = verify_run(wired_run, hw=hw, n_jobs=1, progress=False)
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in kept.items())
    assert len(list(store.glob("*.json"))) == 2 + 8
    for key in KEYS:
        assert resumed[key] == local[key], key
