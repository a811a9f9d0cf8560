"""Braille in the benchmark's published event-coded form: loader, its errors, both encodings, the real file."""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from cosim.data import (
    EVENT_CHANNELS,
    KEPT_TAXELS,
    LETTERS,
    DataFormatError,
    braille_events_data,
    event_spikes,
    load_braille_events,
    load_braille_raw,
    preprocess_braille,
    rebuild_raw_records,
)
from cosim.train.config import ConfigError, load_config
from cosim.train.tasks import make_task

REAL_FILE = Path(os.path.normpath(Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "braille"
                                   / "data_braille_letters_th10"))
PUBLISHED_ORDER = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + ("Space",)
"""Class order of the published events file (Space last, unlike LETTERS)."""


def marker_time(letter: str) -> float:
    """Time of the ON event on taxel 0 that only records of `letter` have, s (on a 10 ms grid)."""
    return 0.01 * (LETTERS.index(letter) + 1)


def events_records(repetitions: int = 2, seed: int = 0) -> list[dict]:
    """Records in the published format (built-in types only, published class order): each taxel has a few ON
    and OFF times in 0.004..1.3 s, unsorted; taxel 0 has one ON event at `marker_time(letter)` and nothing else."""
    rng = np.random.default_rng(seed)
    records = []
    for letter in PUBLISHED_ORDER:
        for _ in range(repetitions):
            taxels = [[[marker_time(letter)], []]]
            for _ in range(11):
                taxels.append([[float(t) for t in rng.uniform(0.004, 1.3, rng.integers(1, 6))],
                               [float(t) for t in rng.uniform(0.004, 1.3, rng.integers(1, 6))]])
            records.append({"letter": letter, "events": taxels})
    return records


def last_event(records: list[dict]) -> float:
    """The latest event time of published-format records, s."""
    return max(t for r in records for pair in r["events"] for times in pair for t in times)


def write(path: Path, obj) -> Path:
    """`obj` pickled as the published file is (protocol 3)."""
    path.write_bytes(pickle.dumps(obj, protocol=3))
    return path


def test_loader_keeps_the_published_order_and_sorts_the_times(tmp_path: Path):
    records = events_records()
    records[3]["letter"] = "b"  # matched leniently, like the raw loader
    records[-1]["letter"] = "space"
    loaded = load_braille_events(write(tmp_path / "events_th10", records))
    assert [r["letter"] for r in loaded] == [letter for letter in PUBLISHED_ORDER for _ in range(2)]
    assert len(loaded[0]["events"]) == 12
    for got, want in zip(loaded[5]["events"], records[5]["events"]):
        for times, published in zip(got, want):
            assert times.dtype == np.float64 and np.array_equal(times, np.sort(published))


def test_events_encoding_maps_labels_by_letter_name(tmp_path: Path):
    published = events_records(repetitions=4)
    records = load_braille_events(write(tmp_path / "events_th10", published))
    data = braille_events_data(records, encoding="events", seed=3)
    steps = round(last_event(published) / 1e-3) + 1
    assert data.channels == EVENT_CHANNELS and data.steps == steps and data.raw_steps == steps
    assert (len(data.train), len(data.test)) == (round(0.8 * 27 * 4), 27 * 4 - round(0.8 * 27 * 4))
    assert not data.synthetic and "events" in data.source
    inputs = torch.cat([data.train.inputs, data.test.inputs])
    labels = torch.cat([data.train.labels, data.test.labels])
    assert torch.equal(torch.bincount(labels), torch.full((27,), 4))
    for x, label in zip(inputs, labels):  # channel 0 (taxel 0, ON) spikes only at the label's marker
        assert torch.nonzero(x[:, 0]).flatten().tolist() == [round(marker_time(LETTERS[label]) / 1e-3)]
        assert float(x[:, 1].sum()) == 0  # taxel 0 has no OFF event
    assert set(inputs.unique().tolist()) <= {0.0, 1.0}


def test_event_spikes_bins_and_duration():
    record = {"letter": "A", "events": [(np.array([0.0104, 0.0106]), np.array([0.5]))]
              + [(np.array([]), np.array([]))] * 11}
    spikes = event_spikes([record], bin_s=1e-3)
    assert spikes.shape == (1, 501, EVENT_CHANNELS)
    assert spikes[0, :, 0].nonzero()[0].tolist() == [10, 11] and spikes[0, :, 1].nonzero()[0].tolist() == [500]
    short = event_spikes([record], bin_s=5e-3, duration_s=0.1)  # the OFF event at 0.5 s is past the end
    assert short.shape == (1, 21, EVENT_CHANNELS) and short.sum() == 1 and short[0, 2, 0] == 1


def test_rebuilt_signal_steps_by_the_threshold_at_the_next_frame():
    on, off = np.array([0.1, 0.11]), np.array([0.3])
    record = {"letter": "C", "events": [(on, off)] + [(np.array([]), np.array([]))] * 11}
    (rebuilt,) = rebuild_raw_records([record], threshold=7.0, duration_s=0.5)
    assert rebuilt["letter"] == "C" and rebuilt["taxel_data"].shape == (21, 12)
    # frame j (j / 40 s) counts the events up to its time: 0.1 s is frame 4, 0.11 s shows in frame 5
    want = 7.0 * np.array([0] * 4 + [1] + [2] * 7 + [1] * 9)
    assert np.array_equal(rebuilt["taxel_data"][:, 0], want)
    assert not rebuilt["taxel_data"][:, 1:].any()


def test_rebuilt_encoding_is_the_raw_preprocessing_of_the_rebuilt_records(tmp_path: Path):
    published = events_records(repetitions=3)
    records = load_braille_events(write(tmp_path / "events_th10", published))
    data = braille_events_data(records, encoding="rebuilt", seed=5, threshold=10.0)
    same = preprocess_braille(rebuild_raw_records(records, threshold=10.0), seed=5)
    assert torch.equal(data.train.inputs, same.train.inputs) and torch.equal(data.test.labels, same.test.labels)
    frames = int(np.floor(last_event(published) * 40)) + 1
    assert data.channels == len(KEPT_TAXELS) and data.raw_steps == frames and data.steps == 2 * frames
    assert "REBUILT" in data.source and "approximation" in data.source
    # both encodings test the same recordings: the same labels in the same order
    events = braille_events_data(records, encoding="events", seed=5)
    assert torch.equal(events.test.labels, data.test.labels) and torch.equal(events.train.labels, data.train.labels)
    # z-scored per channel, so the threshold and the unknown start value cancel
    assert torch.allclose(braille_events_data(records, encoding="rebuilt", seed=5, threshold=3.0).train.inputs,
                          data.train.inputs, atol=1e-5)


def test_a_threshold_that_does_not_fit_the_file_is_refused(tmp_path: Path):
    records = load_braille_events(write(tmp_path / "events_th10", events_records()))
    with pytest.raises(DataFormatError, match=r"threshold 100 counts: taxel \d+ spans .* more than the sensor's"):
        rebuild_raw_records(records, threshold=100.0)


def test_missing_file_says_where_to_get_it(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"event-coded data not found: .*absent.*data_braille_letters_th10"):
        load_braille_events(tmp_path / "absent")


def test_raw_file_given_as_events_and_the_reverse(tmp_path: Path):
    raw = [{"letter": letter, "taxel_data": np.full((51, 12), 200, np.uint8)} for letter in LETTERS]
    raw_file = tmp_path / "raw.pkl"
    raw_file.write_bytes(pickle.dumps(raw))
    with pytest.raises(DataFormatError, match=r"raw.pkl: refused global numpy.*a raw Braille file .*load_braille_raw"
                                              r".*\"braille\""):  # numpy arrays name numpy's rebuilders
        load_braille_events(raw_file)
    raw_lists = write(tmp_path / "raw_lists.pkl", [{"letter": r["letter"], "taxel_data": r["taxel_data"].tolist()}
                                                   for r in raw])
    with pytest.raises(DataFormatError, match=r"raw_lists.pkl, record 0: a raw record .*load_braille_raw.*\"braille\""):
        load_braille_events(raw_lists)
    events_file = write(tmp_path / "events_th10", events_records())
    with pytest.raises(DataFormatError, match=r"events_th10, record 0: an event-coded record .*load_braille_events"
                                              r".*\"braille_events\""):
        load_braille_raw(events_file)


class RunsCode:
    """What a tampered file could hold: unpickling it calls os.system."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_any_class_reference_is_refused_without_running_code(tmp_path: Path):
    marker = tmp_path / "pwned"
    records = events_records(1)
    records[4]["events"][2][0] = RunsCode(marker)
    with pytest.raises(DataFormatError, match=r"tampered: refused global (posix|os)\.system: only built-in types"):
        load_braille_events(write(tmp_path / "tampered", records))
    assert not marker.exists()
    records = events_records(1)
    records[4]["events"][2][0] = {1.0, 2.0}  # a set: protocol 3 names builtins.set
    with pytest.raises(DataFormatError, match=r"refused global builtins.set: only built-in types \(no global"):
        load_braille_events(write(tmp_path / "with_set", records))
    records = events_records(1)
    records[4]["events"][2][0] = np.array([0.1, 0.2])
    with pytest.raises(DataFormatError, match=r"refused global numpy"):
        load_braille_events(write(tmp_path / "with_numpy", records))


def _drop_class(records: list[dict], letter: str) -> None:
    records[:] = [r for r in records if r["letter"] != letter]


@pytest.mark.parametrize("change, message", [
    (lambda r: _drop_class(r, "Q"), r"26 classes, expected the 27 of the benchmark; no record of Q"),
    (lambda r: r.pop(3), r"unequal class counts: 2 records of most classes, but B 1"),
    (lambda r: r[5].update(letter="AE"), r"record 5: unknown letter 'AE'"),
    (lambda r: r[6].update(events=r[6]["events"][:11]), r"record 6: 'events' must list 12 taxels, got 11 entries"),
    (lambda r: r[7]["events"][3].append([]), r"record 7, taxel 3: expected \[on_times, off_times\], got list of 3"),
    (lambda r: r[8]["events"][4][1].append(-0.5), r"record 8, taxel 4: OFF times must be finite and >= 0 s"),
    (lambda r: r[9]["events"][5][0].append(float("nan")), r"record 9, taxel 5: ON times must be finite"),
    (lambda r: r[10]["events"][6].__setitem__(0, ["0.1"]), r"record 10, taxel 6: ON times must be a list of numbers"),
    (lambda r: r[11]["events"][7].__setitem__(0, [[0.1]]), r"record 11, taxel 7: ON times must be a list of numbers"),
    (lambda r: r.__setitem__(12, [1, 2]), r"record 12: expected a dict with 'letter' and 'events', got list"),
    (lambda r: r.clear(), r"no records"),
])
def test_malformed_event_files_name_the_record(tmp_path: Path, change, message: str):
    records = events_records()
    change(records)
    with pytest.raises(DataFormatError, match=rf"bad_th10\b.*{message}"):
        load_braille_events(write(tmp_path / "bad_th10", records))


def test_config_reads_the_events_file_in_either_encoding(tmp_path: Path):
    path = json.dumps(str(write(tmp_path / "events_th10", events_records())))
    base = ["data.dataset=braille_events", f"data.path={path}"]
    events = make_task(load_config("tactile", base).data)
    assert events.n_inputs == EVENT_CHANNELS and events.n_outputs == 27 and events.sizes == {"train": 43, "test": 11}
    rebuilt = make_task(load_config("tactile", base + ["data.encoding=rebuilt", "data.event_duration=1.25"]).data)
    assert rebuilt.n_inputs == len(KEPT_TAXELS) and rebuilt.splits["train"].inputs.shape[1] == 102
    assert torch.equal(rebuilt.splits["test"].labels, events.splits["test"].labels)
    with pytest.raises(ConfigError, match=r"data.path is needed for data.dataset = 'braille_events' .*th10"):
        load_config("tactile", ["data.dataset=braille_events"])
    with pytest.raises(ConfigError, match=r"model.encoding_repeat must be in \[1, 416\]"):  # 24 channels
        load_config("tactile", base + ["model.encoding_repeat=500"])
    load_config("tactile", base + ["data.encoding=rebuilt", "model.encoding_repeat=500"])  # 4 channels: fits
    with pytest.raises(ConfigError, match=r"data.encoding = 'spikes': must be one of 'events', 'rebuilt'"):
        load_config("tactile", base + ["data.encoding=spikes"])
    with pytest.raises(ConfigError, match=r"data.event_bin = 1e-05 s is outside"):
        load_config("tactile", base + ["data.event_bin=1e-5"])


# ------------------------------------------------------------------------------------------ the real file

needs_real_file = pytest.mark.skipif(not REAL_FILE.is_file(), reason=f"the published event-coded Braille file "
                                     f"is not at {REAL_FILE} (../shared next to the repository)")


@needs_real_file
def test_real_file_content():
    records = load_braille_events(REAL_FILE)
    assert len(records) == 5400
    assert [records[200 * i]["letter"] for i in range(27)] == list(PUBLISHED_ORDER)
    assert sum(t.size for r in records for pair in r["events"] for t in pair) == 221_107
    data = braille_events_data(records, encoding="events")
    assert (len(data.train), len(data.test), data.steps, data.channels) == (4320, 1080, 1301, 24)
    # at 1 ms no channel has two events in one bin: every event is one spike
    assert float(data.train.inputs.sum() + data.test.inputs.sum()) == 221_107
    labels = torch.cat([data.train.labels, data.test.labels])
    assert torch.equal(torch.bincount(labels), torch.full((27,), 200))


@needs_real_file
def test_one_epoch_on_a_subset_of_the_real_file(tmp_path: Path):
    from cosim.cli import main
    from cosim.train.checkpoint import read_metrics

    out = tmp_path / "real"
    settings = ["data.dataset=braille_events", f"data.path={json.dumps(str(REAL_FILE))}", "data.event_bin=1e-2",
                "data.train_subset=64", "data.test_subset=64", "data.batch_size=32", "model.hidden=32",
                "model.encoding_repeat=2", "run.epochs=1", "run.threads=1", "model.h=1e-5"]
    assert main(["train", "--config", "tactile", "--out", str(out)] + [a for s in settings for a in ("--set", s)]) == 0
    (row,) = read_metrics(out)
    assert np.isfinite(row["train_loss"]) and np.isfinite(row["test_loss"]) and 0 <= row["test_accuracy"] <= 1
    assert row["rate_output_hz"] > 0  # the 24-channel input reached the output layer
