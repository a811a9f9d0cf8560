"""Braille: raw pickle loader and its restricted unpickler, preprocessing, and the synthetic generator."""
from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from cosim.data import (
    BRAILLE_DOTS,
    KEPT_TAXELS,
    LETTERS,
    DataFormatError,
    load_braille_raw,
    preprocess_braille,
    synthetic_braille,
    synthetic_braille_data,
)


def fixture_records(repetitions: int = 3, seed: int = 0) -> list[dict]:
    """Records in the published format: class-major, taxel_data (T, 12) of 0..255 ints, T from 51 up."""
    rng = np.random.default_rng(seed)
    records = []
    for letter in LETTERS:
        for _ in range(repetitions):
            steps = 51 + int(rng.integers(0, 6))
            records.append({"letter": letter, "timestamp": np.arange(steps) / 40.0,
                            "taxel_data": rng.integers(150, 256, size=(steps, 12)).astype(np.uint8)})
    return records


def write_pickle(path: Path, obj, protocol: int = pickle.DEFAULT_PROTOCOL) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_raw_pickle_round_trip(tmp_path: Path, protocol: int):
    records = fixture_records()
    loaded = load_braille_raw(write_pickle(tmp_path / "braille.pkl", records, protocol))
    assert len(loaded) == 27 * 3
    for got, want in zip(loaded, records):
        assert got["letter"] == want["letter"]
        assert np.array_equal(got["taxel_data"], want["taxel_data"])
        assert got["taxel_data"].dtype == np.uint8


def test_raw_gzip_pickle(tmp_path: Path):
    records = fixture_records(1)
    path = tmp_path / "braille.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(records)))
    assert np.array_equal(load_braille_raw(path)[5]["taxel_data"], records[5]["taxel_data"])


class RunsCode:
    """What a tampered file could hold: unpickling it calls os.system."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_tampered_pickle_is_refused_without_running_code(tmp_path: Path):
    marker = tmp_path / "pwned"
    records = fixture_records(1)
    records[3]["taxel_data"] = RunsCode(marker)
    path = write_pickle(tmp_path / "tampered.pkl", records)
    with pytest.raises(DataFormatError, match=r"tampered.pkl: refused global (posix|os)\.system"):
        load_braille_raw(path)
    assert not marker.exists()
    with pytest.raises(DataFormatError, match="refused global builtins.eval"):
        load_braille_raw(_pickle_calling(tmp_path / "eval.pkl", "builtins", "eval"))
    with pytest.raises(DataFormatError, match=r"refused global pandas.core.frame.DataFrame.*to_dict\('records'\)"):
        load_braille_raw(_pickle_calling(tmp_path / "frame.pkl", "pandas.core.frame", "DataFrame"))


def _pickle_calling(path: Path, module: str, name: str) -> Path:
    """A hand-made protocol-2 pickle that calls module.name('1')."""
    path.write_bytes(b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"X\x01\x00\x00\x001\x85R.")
    return path


def test_missing_and_malformed_files_say_where_to_get_the_data(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="zenodo"):
        load_braille_raw(tmp_path / "absent.pkl")
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"this is not a pickle")
    with pytest.raises(DataFormatError, match="garbage.pkl: not a readable pickle.*zenodo"):
        load_braille_raw(garbage)
    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes(pickle.dumps(fixture_records(1))[:500])
    with pytest.raises(DataFormatError, match="truncated.pkl: not a readable pickle"):
        load_braille_raw(truncated)
    with pytest.raises(DataFormatError, match=r"found dict; a pandas DataFrame .*to_dict\('records'\)"):
        load_braille_raw(write_pickle(tmp_path / "columns.pkl", {"taxel_data": [], "letter": []}))


@pytest.mark.parametrize("change, message", [
    (lambda r: r.pop(), "80 records is not a positive multiple of the 27 classes"),
    (lambda r: r[7].update(taxel_data=np.zeros((51, 11), np.uint8)), r"record 7: 'taxel_data' must have shape"),
    (lambda r: r[8].update(taxel_data=np.full((51, 12), 300)), "record 8: taxel readings must be finite and within"),
    (lambda r: r[9].update(taxel_data=[["a"] * 12] * 51), "record 9: 'taxel_data' is not a numeric array"),
    (lambda r: r.__setitem__(10, [1, 2]), "record 10: expected a dict with 'taxel_data', got list"),
    (lambda r: r[4].update(letter="Q"), r"record 4: letter 'Q', but class-major order .* puts 'A' there"),
])
def test_malformed_records_name_the_record(tmp_path: Path, change, message: str):
    records = fixture_records()
    change(records)
    with pytest.raises(DataFormatError, match=message):
        load_braille_raw(write_pickle(tmp_path / "bad.pkl", records))


def test_letter_names_are_matched_leniently():
    records = fixture_records(1)
    records[0]["letter"], records[1]["letter"] = "space", "a"
    records[2]["letter"] = "letter-b"  # unknown naming: not checked
    assert len(preprocess_braille(records).train) + len(preprocess_braille(records).test) == 27


def test_preprocessing_follows_the_reference_steps():
    records = fixture_records(repetitions=4)
    data = preprocess_braille(records, seed=1)
    assert data.raw_steps == 51 and data.steps == 102 and data.channels == len(KEPT_TAXELS) == 4
    assert (len(data.train), len(data.test)) == (round(0.8 * 108), 108 - round(0.8 * 108))
    assert not data.synthetic and "SYNTHETIC" not in data.source
    inputs = torch.cat([data.train.inputs, data.test.inputs]).double().numpy()
    labels = torch.cat([data.train.labels, data.test.labels]).numpy()
    order = np.random.default_rng(1).permutation(108)
    assert np.array_equal(labels, np.repeat(np.arange(27), 4)[order])
    # independently: x = 1 - taxel/255, cropped to 51 steps, kept taxels, z-scored per channel
    x = np.stack([1 - r["taxel_data"][:51, list(KEPT_TAXELS)] / 255.0 for r in records])
    z = (x - x.mean(axis=(0, 1))) / x.std(axis=(0, 1))
    # Fourier resampling by 2 of an odd-length signal passes through the original samples
    np.testing.assert_allclose(inputs[:, ::2], z[order], atol=2e-5)
    np.testing.assert_allclose(inputs.mean(axis=(0, 1)), 0, atol=1e-5)
    assert np.all(np.abs(inputs.std(axis=(0, 1)) - 1) < 0.1)
    assert not np.array_equal(preprocess_braille(records, seed=2).train.labels.numpy(), data.train.labels.numpy())


def test_preprocessing_rejects_constant_channel():
    records = fixture_records(1)
    for record in records:
        record["taxel_data"] = record["taxel_data"].copy()
        record["taxel_data"][:, 6] = 200
    with pytest.raises(DataFormatError, match=r"taxel\(s\) \[6\] never change"):
        preprocess_braille(records)


def test_batches_cover_the_split_once():
    data = preprocess_braille(fixture_records(5))
    batches = list(data.train.batches(32, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert [len(y) for _, y in batches] == [32, 32, 32, 12]
    assert batches[0][0].shape == (32, 102, 4) and batches[0][0].dtype == torch.float32
    assert sorted(torch.cat([y for _, y in batches]).tolist()) == sorted(data.train.labels.tolist())
    x, y = data.test[3]
    assert x.shape == (102, 4) and int(y) == int(data.test.labels[3])


def test_braille_dots_are_standard():
    assert len(BRAILLE_DOTS) == 27 and set(BRAILLE_DOTS) == set(LETTERS)
    assert len({BRAILLE_DOTS[letter] for letter in LETTERS}) == 27
    assert BRAILLE_DOTS["A"] == (1,) and BRAILLE_DOTS["W"] == (2, 4, 5, 6) and BRAILLE_DOTS["Space"] == ()


def test_synthetic_records_are_deterministic_and_in_published_format(tmp_path: Path):
    first, again, other = synthetic_braille(3, seed=5), synthetic_braille(3, seed=5), synthetic_braille(3, seed=6)
    assert len(first) == 81
    assert all(np.array_equal(a["taxel_data"], b["taxel_data"]) for a, b in zip(first, again))
    assert not all(np.array_equal(a["taxel_data"], b["taxel_data"]) for a, b in zip(first, other))
    assert [r["letter"] for r in first[::3]] == list(LETTERS)
    assert all(r["synthetic"] and r["taxel_data"].dtype == np.uint8 and r["taxel_data"].shape[1] == 12
               and 51 <= len(r["taxel_data"]) <= 59 for r in first)
    # the real loader reads them back from a pickle of that format
    loaded = load_braille_raw(write_pickle(tmp_path / "synthetic.pkl", first))
    assert np.array_equal(loaded[40]["taxel_data"], first[40]["taxel_data"])


def test_synthetic_dots_press_the_taxels():
    records = synthetic_braille(2, seed=0)
    space, full = records[0]["taxel_data"].astype(float), records[2 * LETTERS.index("Y")]["taxel_data"].astype(float)
    # readings fall under a raised dot: the cell with five dots dips far below the empty cell
    assert full.min(axis=0)[list(KEPT_TAXELS)].max() < space.min(axis=0)[list(KEPT_TAXELS)].min() - 20


def test_synthetic_task_is_marked_and_separable():
    data = synthetic_braille_data(n_per_class=40, seed=0)
    assert data.synthetic and data.source.startswith("SYNTHETIC")
    assert (data.raw_steps, data.steps, data.channels, len(data.train), len(data.test)) == (51, 102, 4, 864, 216)
    train, test = data.train, data.test
    centroids = torch.stack([train.inputs[train.labels == c].mean(0) for c in range(27)])
    distance = ((test.inputs[:, None] - centroids[None]) ** 2).sum(dim=(2, 3))
    accuracy = (distance.argmin(dim=1) == test.labels).double().mean().item()
    assert accuracy > 0.5  # chance is 1/27
