"""Checkpoints carry their SHA-256: damaged, cut off, empty or folder-shaped ones are refused with the file named
and the previous checkpoint suggested; old ones without a digest load with a warning."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from cosim.train.checkpoint import CheckpointError, checkpoint_path, digest_path, load_checkpoint, save_checkpoint


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run folder with the checkpoints of epochs 1 and 2, each a 64 x 64 weight matrix."""
    gen = torch.Generator().manual_seed(0)
    for epoch in (1, 2):
        save_checkpoint(checkpoint_path(tmp_path, epoch),
                        {"epoch": epoch, "model": {"w": torch.randn(64, 64, generator=gen)}})
    return tmp_path


def test_a_saved_checkpoint_loads_with_its_digest_beside_it(run_dir: Path):
    path = checkpoint_path(run_dir, 2)
    assert digest_path(path).read_text().endswith(f"  {path.name}\n")
    state = load_checkpoint(path)
    assert state["epoch"] == 2 and state["model"]["w"].shape == (64, 64)


@pytest.mark.parametrize("offset", [0, 1000, 8000, 16376])
def test_bytes_changed_in_the_tensor_data_are_refused(run_dir: Path, offset: int):
    path = checkpoint_path(run_dir, 2)
    data = bytearray(path.read_bytes())
    start = data.find(load_checkpoint(path)["model"]["w"].numpy().tobytes())
    assert start > 0
    data[start + offset:start + offset + 8] = bytes(b ^ 0x5A for b in data[start + offset:start + offset + 8])
    path.write_bytes(bytes(data))
    assert torch.load(path, weights_only=True)["epoch"] == 2  # torch alone loads the other weights silently
    with pytest.raises(CheckpointError, match="does not match the SHA-256") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value) and str(checkpoint_path(run_dir, 1)) in str(err.value)


@pytest.mark.parametrize("damage", ["truncated", "empty", "folder"])
def test_cut_off_empty_and_folder_shaped_checkpoints_are_refused(run_dir: Path, damage: str):
    path = checkpoint_path(run_dir, 2)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:5000])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.unlink()
        path.mkdir()
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert str(path) in message and f"previous checkpoint is {checkpoint_path(run_dir, 1)}" in message
    assert "\n" not in message


def test_the_first_checkpoint_says_there_is_none_before_it(run_dir: Path):
    path = checkpoint_path(run_dir, 1)
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="no earlier checkpoint"):
        load_checkpoint(path)


def test_a_checkpoint_without_a_digest_loads_with_a_warning(run_dir: Path, tmp_path: Path):
    old = tmp_path / "old" / "epoch-0002.pt"
    old.parent.mkdir()
    shutil.copy(checkpoint_path(run_dir, 2), old)
    with pytest.warns(UserWarning, match="no .sha256 file"):
        assert load_checkpoint(old)["epoch"] == 2
    old.write_bytes(old.read_bytes()[:5000])  # cut off, and no digest to tell: torch's error, in one line
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match=r"epoch-0002.pt cannot be read \(") as err:
        load_checkpoint(old)
    assert "\n" not in str(err.value)
    digest_path(old).write_text("not a digest\n")
    with pytest.raises(CheckpointError, match="unreadable digest file"):
        load_checkpoint(old)
