"""Run-folder files written atomically: per-epoch checkpoints with every RNG state, metrics as JSONL and CSV.

A checkpoint is a dict of tensors and plain Python data read back with ``torch.load(weights_only=True)``, so a
tampered checkpoint cannot run code. A file is first written next to its destination and then renamed over it,
so an interrupt leaves either the previous file or the new one, never half of one.
"""
from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

CHECKPOINTS = "checkpoints"
"""Folder of the per-epoch checkpoints inside a run folder."""
_NAME = re.compile(r"epoch-(\d+)\.pt")


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` so that a reader (or a crash) never sees a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(raw)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, path)


def checkpoint_path(run_dir: Path, epoch: int) -> Path:
    """Where the checkpoint taken after `epoch` (1-based) lives."""
    return run_dir / CHECKPOINTS / f"epoch-{epoch:04d}.pt"


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint of the highest epoch in `run_dir`, or None if there is none."""
    found = [(int(m.group(1)), p) for p in (run_dir / CHECKPOINTS).glob("epoch-*.pt") if (m := _NAME.fullmatch(p.name))]
    return max(found)[1] if found else None


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save `state` to `path` atomically."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by `save_checkpoint` (tensors and plain data only)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for unreadable or refused files
        raise RuntimeError(f"checkpoint {path} cannot be read ({err}); delete it to resume from the one before") \
            from err


def rng_state() -> dict[str, Any]:
    """The global RNG states of torch, numpy and Python's random, as tensors and plain data."""
    numpy_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "numpy": {**numpy_state, "state": {"key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
                                           "pos": numpy_state["state"]["pos"]}},
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the global RNG states saved by `rng_state`."""
    torch.set_rng_state(state["torch"])
    numpy_state = dict(state["numpy"])
    numpy_state["state"] = {"key": state["numpy"]["state"]["key"].numpy().astype(np.uint32),
                            "pos": state["numpy"]["state"]["pos"]}
    np.random.set_state(numpy_state)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def write_metrics(run_dir: Path, history: Sequence[dict[str, Any]]) -> None:
    """metrics.jsonl (one object per epoch) and metrics.csv (one row per epoch, union of the columns)."""
    write_atomic(run_dir / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in history))
    columns: list[str] = []
    for row in history:
        columns += [key for key in row if key not in columns]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_atomic(run_dir / "metrics.csv", text.getvalue())


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of a run folder's metrics.jsonl."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no metrics.jsonl in {run_dir}: not a training run folder")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
