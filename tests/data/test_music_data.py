"""Piano-roll loaders: JSB json (fixtures and the real shared file) and the music21 Bach chorales."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from cosim.data import (
    KEY_RANGE,
    DataFormatError,
    PianoRollDataset,
    load_jsb,
    load_music21_chorales,
    piano_roll,
    split_of,
)
from cosim.data.music import music21_bach_paths

SHARED_JSB = Path(__file__).resolve().parents[2] / "../shared/data/jsb/jsb-chorales-quarter.json"


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def tiny_jsb(tmp_path: Path) -> Path:
    return write_json(tmp_path / "jsb-chorales-quarter.json", {
        "train": [[[43, 60], [96], [], [21, 108, 60]], [[60, 64, 67], [62, 65], [60]]],
        "valid": [[[55], [57]]],
        "test": [[[72, 76], [74], [72], [71], [72]]],
    })


def test_tiny_jsb_keys_and_next_step_targets(tiny_jsb: Path):
    splits = load_jsb(tiny_jsb)
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (2, 1, 1)
    assert splits.train.n_keys == len(KEY_RANGE) == 54
    roll = splits.train.rolls[0]
    # 88-key column 0 is MIDI 21; the kept columns 22..75 are MIDI 43..96
    assert roll.shape == (4, 54) and roll.dtype == np.float32
    assert np.flatnonzero(roll[0]).tolist() == [0, 60 - 43]
    assert np.flatnonzero(roll[1]).tolist() == [53]
    assert roll[2].sum() == 0
    assert np.flatnonzero(roll[3]).tolist() == [60 - 43]  # MIDI 21 and 108 are outside the kept keys
    assert splits.train.notes_outside_keys == 2
    item = splits.train[0]
    assert torch.equal(item.inputs, torch.from_numpy(roll[:-1]))
    assert torch.equal(item.targets, torch.from_numpy(roll[1:]))
    assert splits.train.n_steps == 3 + 2
    assert splits.train.ids[1].endswith("train[1]")


def test_full_88_key_range_keeps_everything(tiny_jsb: Path):
    splits = load_jsb(tiny_jsb, keys=range(88))
    assert splits.train.notes_outside_keys == 0
    assert np.flatnonzero(splits.train.rolls[0][3]).tolist() == [0, 60 - 21, 87]


def test_padded_batches_mask_and_shuffle(tiny_jsb: Path):
    train = load_jsb(tiny_jsb).train
    (batch,) = list(train.batches(batch_size=2))
    assert batch.inputs.shape == (2, 3, 54) and batch.targets.shape == (2, 3, 54)
    assert batch.mask.tolist() == [[True, True, True], [True, True, False]]
    assert batch.inputs[1, 2].sum() == 0 and batch.targets[1, 2].sum() == 0
    assert torch.equal(batch.targets[1, :2], train[1].targets)
    orders = []
    for _ in range(2):
        generator = torch.Generator().manual_seed(3)
        orders.append([b.inputs.shape[1] for b in train.batches(1, shuffle=True, generator=generator)])
    assert orders[0] == orders[1] and sorted(orders[0]) == [2, 3]


@pytest.mark.parametrize("data, where", [
    ({"train": [], "valid": [], "test": [[[60], [61, 200]]]}, "test[0], step 1: MIDI pitch 200"),
    ({"train": [[[60], [61]], [[60], [61], [62], "x"]], "valid": [], "test": []}, "train[1], step 3"),
    ({"train": [], "valid": [[[60], [61.5]]], "test": []}, "valid[0], step 1: pitch 61.5"),
    ({"train": [], "valid": [[[60]]], "test": []}, "valid[0]: 1 step(s)"),
    ({"train": [], "valid": [7], "test": []}, "valid[0]: a chorale must be a list of steps"),
    ({"train": [], "valid": []}, "keys ['train', 'valid', 'test']"),
    ({"train": {}, "valid": [], "test": []}, "'train' must be a list"),
])
def test_malformed_jsb_says_where(tmp_path: Path, data, where: str):
    with pytest.raises(DataFormatError) as err:
        load_jsb(write_json(tmp_path / "bad.json", data))
    assert where in str(err.value) and "bad.json" in str(err.value)


def test_jsb_not_json_and_missing(tmp_path: Path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"train": [[[60]')
    with pytest.raises(DataFormatError, match="broken.json: not valid JSON"):
        load_jsb(bad)
    with pytest.raises(FileNotFoundError, match="jsb-chorales-quarter.json"):
        load_jsb(tmp_path / "nowhere.json")


def test_piano_roll_rejects_bad_steps():
    with pytest.raises(DataFormatError, match="chorale X, step 0: pitch True"):
        piano_roll([[True]], where="chorale X")
    with pytest.raises(ValueError, match="88-key roll"):
        PianoRollDataset([np.zeros((3, 54))], ids=["r"])


@pytest.mark.skipif(not SHARED_JSB.is_file(), reason=f"shared JSB file not present at {SHARED_JSB}")
def test_shared_jsb_standard_split():
    splits = load_jsb(SHARED_JSB)
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (229, 76, 77)
    for split in (splits.train, splits.valid, splits.test):
        assert split.notes_outside_keys == 0  # the data use MIDI 43..96, exactly the kept keys
        assert all(r.shape[1] == 54 and set(np.unique(r)) <= {0.0, 1.0} for r in split.rolls)
        assert max(r.sum(axis=1).max() for r in split.rolls) <= 4  # four voices (unisons merge)
    raw = json.loads(SHARED_JSB.read_text())
    chorale = raw["test"][5]
    roll = splits.test.rolls[5]
    for t, pitches in enumerate(chorale):
        assert sorted(43 + np.flatnonzero(roll[t])) == sorted(set(pitches))


def test_split_of_is_stable_and_about_60_20_20():
    paths = music21_bach_paths()
    assert paths == sorted(paths) and all(p.startswith("bach/") for p in paths) and len(paths) > 300
    splits = [split_of(p) for p in paths]
    assert splits == [split_of(p) for p in paths]
    for name, share in (("train", 0.6), ("valid", 0.2), ("test", 0.2)):
        assert abs(splits.count(name) / len(paths) - share) < 0.06


def chordify_pitches_at_quarters(score) -> list[set[int]]:
    """Independent check: sounding MIDI pitches on the beat-aligned quarter grid via music21's chordify."""
    measures = score.parts[0].getElementsByClass("Measure")
    phase = (-float(measures[0].paddingLeft)) % 1.0
    chords = score.chordify().flatten().notes
    grid = []
    for k in range(math.ceil(float(score.highestTime) - phase - 1e-6)):
        g = phase + k
        sounding = [c for c in chords if float(c.offset) <= g + 1e-9 < float(c.offset + c.quarterLength)]
        grid.append({p.midi for c in sounding for p in c.pitches})
    return grid


def test_music21_handful_matches_chordify_and_caches(tmp_path: Path):
    from music21 import corpus

    paths = ["bach/bwv1.6.mxl", "bach/bwv10.7.mxl", "bach/bwv101.7.mxl", "bach/bwv102.7.mxl",
             "bach/bwv103.6.mxl", "bach/bwv104.6.mxl"]
    splits = load_music21_chorales(paths=paths, cache_dir=tmp_path, progress=False)
    assert "1 scores not four-part" in splits.source  # bwv1.6 has a horn part
    loaded = {i: r for s in (splits.train, splits.valid, splits.test) for i, r in zip(s.ids, s.rolls)}
    assert sorted(loaded) == paths[1:]
    for name in ("train", "valid", "test"):
        assert all(split_of(i) == name for i in getattr(splits, name).ids)
    for name in paths[1:3]:
        expected = chordify_pitches_at_quarters(corpus.parse(name))
        roll = loaded[name]
        assert len(roll) == len(expected)
        for t, pitches in enumerate(expected):
            assert set((43 + np.flatnonzero(roll[t])).tolist()) == {p for p in pitches if 43 <= p <= 96}
    cached = list(tmp_path.glob("music21-bach-quarter-*.npz"))
    assert len(cached) == 1
    again = load_music21_chorales(paths=paths, cache_dir=tmp_path, progress=False)
    assert again.source == splits.source
    assert all(np.array_equal(a, b) for a, b in zip(again.train.rolls, splits.train.rolls))
    assert again.train.ids == splits.train.ids


def test_music21_rejects_no_chorale(tmp_path: Path):
    with pytest.raises(DataFormatError, match="none of the 1 music21 scores is a four-part chorale"):
        load_music21_chorales(paths=["bach/bwv1.6.mxl"], cache_dir=tmp_path, progress=False)


@pytest.mark.slow
def test_music21_full_corpus(tmp_path: Path):
    splits = load_music21_chorales(cache_dir=tmp_path, progress=False)
    sizes = [len(splits.train), len(splits.valid), len(splits.test)]
    assert sum(sizes) > 300 and min(sizes) > 50
    steps = np.concatenate([r.sum(axis=1) for r in splits.train.rolls])
    assert steps.max() <= 4 and np.mean(steps >= 3) > 0.9


def test_music21_transpose_moves_every_note(tmp_path: Path):
    paths = ["bach/bwv10.7.mxl", "bach/bwv101.7.mxl"]
    plain = load_music21_chorales(paths=paths, keys=range(88), cache_dir=tmp_path, progress=False)
    up = load_music21_chorales(paths=paths, keys=range(88), transpose=12, cache_dir=tmp_path, progress=False)
    for a, b in zip(plain.train.rolls + plain.valid.rolls + plain.test.rolls,
                    up.train.rolls + up.valid.rolls + up.test.rolls):
        assert a.sum() == b.sum() and np.array_equal(a[:, :-12], b[:, 12:])
    assert "transposed by +12 semitones" in up.source
    with pytest.raises(ValueError, match="bwv10.7.mxl: transposing by -40 semitones moves notes off"):
        load_music21_chorales(paths=paths, transpose=-40, cache_dir=tmp_path, progress=False)
