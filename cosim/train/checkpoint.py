"""Run-folder files written atomically: per-epoch checkpoints with every RNG state, metrics as JSONL and CSV.

A checkpoint is a dict of tensors and plain Python data read back with ``torch.load(weights_only=True)``, so a
tampered checkpoint cannot run code. A file is first written next to its destination and then renamed over it,
so an interrupt leaves either the previous file or the new one, never half of one.

Each checkpoint ``epoch-NNNN.pt`` has its SHA-256 beside it in ``epoch-NNNN.pt.sha256`` (the format of
``sha256sum``, so ``sha256sum -c`` checks it too), written after the checkpoint. `load_checkpoint` checks it:
``torch.load`` itself checks nothing of the tensor data, and a few changed bytes there load as other weights. A
checkpoint without the file (written before digests existed, or cut off between the two writes) is loaded with
a warning.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

CHECKPOINTS = "checkpoints"
"""Folder of the per-epoch checkpoints inside a run folder."""
_NAME = re.compile(r"epoch-(\d+)\.pt")
DIGEST_SUFFIX = ".sha256"
"""Suffix added to a checkpoint's name for the file holding its SHA-256."""


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unreadable, empty, cut off, not a file, or not matching its SHA-256."""


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


def _checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(epoch, path) of every checkpoint in `folder`, by epoch."""
    return sorted((int(m.group(1)), p) for p in folder.glob("epoch-*.pt") if (m := _NAME.fullmatch(p.name)))


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint of the highest epoch in `run_dir`, or None if there is none."""
    found = _checkpoints(run_dir / CHECKPOINTS)
    return found[-1][1] if found else None


def digest_path(path: Path) -> Path:
    """The file beside checkpoint `path` that holds its SHA-256."""
    return path.with_name(path.name + DIGEST_SUFFIX)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save `state` to `path` atomically, then its SHA-256 beside it (`digest_path`)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    write_atomic(path, data)
    write_atomic(digest_path(path), f"{hashlib.sha256(data).hexdigest()}  {path.name}\n")


def _damaged(path: Path, what: str) -> CheckpointError:
    """The error for checkpoint `path` that `what`, naming the checkpoint to fall back on."""
    match = _NAME.fullmatch(path.name)
    before = [p for epoch, p in _checkpoints(path.parent) if match and epoch < int(match.group(1))]
    fallback = (f"the previous checkpoint is {before[-1]} (move this one and its {DIGEST_SUFFIX} file away to "
                "resume from it)" if before else "there is no earlier checkpoint in its folder")
    return CheckpointError(f"checkpoint {path} {what}: {fallback}")


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by `save_checkpoint` (tensors and plain data only), checked against its SHA-256.

    Raises CheckpointError naming the file and the previous checkpoint if it cannot be used."""
    if path.is_dir():
        raise _damaged(path, "is a folder, not a checkpoint file")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise _damaged(path, f"cannot be read ({err.strerror})") from None
    if not data:
        raise _damaged(path, "is empty")
    expected = _recorded_digest(path)
    if expected is None:
        warnings.warn(f"checkpoint {path} has no {DIGEST_SUFFIX} file beside it (written before checkpoints had "
                      "digests, or cut off while saving): loaded without checking its content", stacklevel=2)
    elif hashlib.sha256(data).hexdigest() != expected:
        raise _damaged(path, f"does not match the SHA-256 in {digest_path(path).name}: it was changed or damaged "
                             "after it was written")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for unreadable or refused files
        raise _damaged(path, f"cannot be read ({str(err).splitlines()[0] if str(err) else type(err).__name__})") \
            from None


def _recorded_digest(path: Path) -> str | None:
    """The SHA-256 (hex) recorded for checkpoint `path`, or None if it has none."""
    digest_file = digest_path(path)
    if not digest_file.exists():
        return None
    try:
        digest = digest_file.read_text(errors="replace").split()[0].lower()
    except (OSError, IndexError):
        digest = ""
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise _damaged(path, f"has an unreadable digest file {digest_file.name} (a SHA-256 in hex expected)")
    return digest


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
