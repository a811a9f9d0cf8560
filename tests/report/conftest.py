"""A short main job shared by the report tests: the real pipeline on a tiny chorale set (about 30 s)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cosim.pipeline import run_main


@pytest.fixture(scope="session")
def short_main_run(write_jsb, tmp_path_factory) -> Path:
    """The run folder of `cosim.pipeline.run_main` with 2 epochs of a 16-neuron network on 4 chorales, one verified
    test sample of 8 steps, and the FeCap and RRAM characterisations only."""
    jsb = write_jsb(3, train=(20, 24, 18, 22), valid=(16,), test=(14, 12))
    out = tmp_path_factory.mktemp("report") / "main"
    run_main(out, ("data.dataset=jsb", f"data.path={json.dumps(str(jsb))}", "model.hidden=16", "run.epochs=2",
                   "verify.samples=1", "verify.max_steps=8", "run.threads=1"), devices=("fecap", "rram"))
    return out
