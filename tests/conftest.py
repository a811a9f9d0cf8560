"""Fixtures shared by several test packages."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

# Test modules import torch before cosim (import order): choose the OpenMP wait policy here, before torch is
# loaded, as cosim's own import would (cosim/__init__.py), so that the tests run as `cosim train` does.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

JSBWriter = Callable[..., Path]


@pytest.fixture(scope="session")
def write_jsb(tmp_path_factory) -> JSBWriter:
    """A writer of small files in the jsb-chorales-quarter.json format: four voices doing random walks of +-2
    semitones within the 54 keys (MIDI 43..96), started uniformly in [low, high).

    write_jsb(seed, train=(steps, ...), valid=(...), test=(...), low=50, high=88) -> path of the file.
    """

    def write(seed: int, train: tuple[int, ...], valid: tuple[int, ...], test: tuple[int, ...],
              low: int = 50, high: int = 88) -> Path:
        rng = np.random.default_rng(seed)

        def chorale(steps: int) -> list[list[int]]:
            voices = rng.integers(low, high, size=4)
            out = []
            for _ in range(steps):
                voices = np.clip(voices + rng.integers(-2, 3, size=4), 43, 96)
                out.append(sorted(set(int(v) for v in voices)))
            return out

        data = {name: [chorale(n) for n in lengths] for name, lengths in
                (("train", train), ("valid", valid), ("test", test))}
        path = tmp_path_factory.mktemp("jsb") / "jsb-chorales-quarter.json"
        path.write_text(json.dumps(data))
        return path

    return write
