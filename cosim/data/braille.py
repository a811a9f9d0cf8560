"""Braille letter reading (REFERENCE.md section 4; Mueller-Cleve et al. 2022, Front. Neurosci. 16:951164).

A record is a dict with "taxel_data", an array (T, 12) of raw taxel readings 0..255 of a tactile fingertip that
slid over one Braille cell (40 Hz frames), and optionally "letter". A data set is a list of records in
class-major order: record i*R + r is repetition r of class i, classes `LETTERS` (Space, A..Z), R repetitions
(200 in the published file, 5400 records).

* `load_braille_raw(path)`: the published raw pickle, read with an unpickler that builds only plain data.
* `synthetic_braille(...)`: SYNTHETIC records of the same format from a simulated fingertip (the real file is
  not available here); every result derived from them says so (`BrailleData.synthetic`, `source`).
* `preprocess_braille(records)`: the paper's preprocessing, to `BrailleData` with torch tensors.
* `load_braille_events(path)`: the benchmark's published EVENT-CODED file (`data_braille_letters_th<N>`: each
  taxel's 40 Hz signal turned into ON/OFF events by a sigma-delta encoder of threshold N counts), read with an
  unpickler that accepts no global at all; `braille_events_data(records, encoding=...)` turns it into
  `BrailleData`, either as the events themselves on `EVENT_CHANNELS` input channels ("events") or as a 40 Hz
  signal rebuilt from them and then preprocessed like a raw file ("rebuilt", an approximation of the raw file).

Taxel index convention: taxel k is column k (zero-based) of "taxel_data" and entry k of "events"; the paper
keeps `KEPT_TAXELS`.

Split convention (all sources): the records are put in class-major `LETTERS` order, permuted with numpy's
default_rng(seed), and the first 80 % of the permutation is the training split. The split is not stratified
(the paper's "fixed permutation"): with 200 repetitions per class a class has 40 +- 6 test samples.
"""
from __future__ import annotations

import gzip
import io
import math
import os
import pickle
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

import numpy as np
import scipy.signal
import torch
from torch.utils.data import Dataset

from cosim.data.errors import DataFormatError

LETTERS: tuple[str, ...] = ("Space",) + tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
"""Class names in class order (label i is LETTERS[i])."""
N_TAXELS = 12
"""Columns of "taxel_data"."""
KEPT_TAXELS: tuple[int, ...] = (1, 2, 6, 10)
"""Zero-based taxel columns the paper keeps (the ones that carry signal on the real fingertip)."""
FRAME_RATE = 40.0
"""Frame rate of the fingertip's taxel readings, Hz."""
POLARITIES: tuple[str, ...] = ("ON", "OFF")
"""Event polarities in the order of an event-coded taxel's [on_times, off_times]: ON, the reading rose by one
threshold; OFF, it fell by one."""
EVENT_CHANNELS = N_TAXELS * len(POLARITIES)
"""Input channels of the "events" encoding: channel 2k + p is taxel k, polarity p (as the benchmark's notebooks
lay them out)."""
WHERE_TO_GET = ("the raw data of Mueller-Cleve et al. 2022 (Front. Neurosci. 16:951164), published on Zenodo "
                "(doi:10.5281/zenodo.7050094, reading_braille_data.zip): a pickle of 5400 records (27 classes "
                "x 200 repetitions, class-major), each a dict with 'taxel_data' of shape (T, 12), values 0..255")

WHERE_TO_GET_EVENTS = ("the event-coded data of Mueller-Cleve et al. 2022 (Front. Neurosci. 16:951164; Zenodo "
                       "record 6556273, also github.com/miskarous/tactile_braille_reading, notebooks/data/"
                       "data_braille_letters_th10): a pickle of 5400 records {'letter': str, 'events': 12 taxels, "
                       "each [on_times, off_times] in s}")

PANDAS_HINT = ("a pandas DataFrame (or dict of columns) must first be converted to a list of dicts with "
               "df.to_dict('records') and pickled again, in an environment where you trust the file")

BRAILLE_DOTS: dict[str, tuple[int, ...]] = {
    "Space": (), "A": (1,), "B": (1, 2), "C": (1, 4), "D": (1, 4, 5), "E": (1, 5), "F": (1, 2, 4),
    "G": (1, 2, 4, 5), "H": (1, 2, 5), "I": (2, 4), "J": (2, 4, 5), "K": (1, 3), "L": (1, 2, 3), "M": (1, 3, 4),
    "N": (1, 3, 4, 5), "O": (1, 3, 5), "P": (1, 2, 3, 4), "Q": (1, 2, 3, 4, 5), "R": (1, 2, 3, 5), "S": (2, 3, 4),
    "T": (2, 3, 4, 5), "U": (1, 3, 6), "V": (1, 2, 3, 6), "W": (2, 4, 5, 6), "X": (1, 3, 4, 6),
    "Y": (1, 3, 4, 5, 6), "Z": (1, 3, 5, 6),
}
"""Raised dots of each letter in standard (English, grade 1) Braille: dots 1-2-3 down the left column of the
cell, 4-5-6 down the right."""


# ---------------------------------------------------------------------------------------------- raw file


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The only callables the raw pickle may name: numpy array/dtype/scalar rebuilders and bytes decoding.

    numpy's rebuild functions are taken from numpy's own reductions so that files written under numpy 1.x
    (numpy.core...) and 2.x (numpy._core...) both resolve to this numpy's functions.
    """
    import _codecs
    import builtins

    reconstruct = np.zeros(1).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): _codecs.encode}
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = frombuffer
    for name in ("set", "frozenset", "complex", "bytearray"):
        allowed[("builtins", name)] = getattr(builtins, name)
    return allowed


class _RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a callable outside the plain-data allow list."""


class _PlainDataUnpickler(pickle.Unpickler):
    """Builds dicts, lists, numbers, strings and numpy arrays; refuses every other global (so no code runs)."""

    _allowed = _allowed_globals()
    _allowed_words = "plain data and numpy arrays are"
    _hints = {"pandas": PANDAS_HINT}
    """What to tell the user when a global of this top-level package is refused."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            hint = self._hints.get(module.partition(".")[0])
            raise _RefusedGlobal(f"refused global {module}.{name}: only {self._allowed_words} allowed (a file "
                                 f"that names other code may have been tampered with)"
                                 + (f"; {hint}" if hint else "")) from None


class _BuiltinsOnlyUnpickler(_PlainDataUnpickler):
    """Builds only what a pickle makes without naming any global (dicts, lists, tuples, numbers, strings); refuses
    every global, numpy's included."""

    _allowed: dict[tuple[str, str], Any] = {}
    _allowed_words = "built-in types (no global at all) are"
    _hints = {"pandas": PANDAS_HINT,
              "numpy": "the event-coded file holds no numpy arrays; a raw Braille file (numpy 'taxel_data' arrays) "
                       "is read with load_braille_raw (in a training config: data.dataset = \"braille\")"}


def _read_records(path: Path, unpickler: type[pickle.Unpickler], what: str, where_to_get: str) -> list:
    """The list a pickle (optionally gzip-compressed) at `path` holds, read with `unpickler`.

    Missing file: FileNotFoundError naming `what` and where to get it. Not a pickle, a refused global, or not a
    list: DataFormatError naming the file.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}. Download {where_to_get}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataFormatError(f"{path}: broken gzip file ({err}); expected {where_to_get}") from err
    try:
        records = unpickler(io.BytesIO(raw)).load()
    except _RefusedGlobal as err:
        raise DataFormatError(f"{path}: {err}; expected {where_to_get}") from err
    except Exception as err:  # truncated or not a pickle at all: many exception types
        raise DataFormatError(f"{path}: not a readable pickle ({type(err).__name__}: {err}); "
                              f"expected {where_to_get}") from err
    if not isinstance(records, (list, tuple)):
        hint = f"; {PANDAS_HINT}" if isinstance(records, dict) else ""
        raise DataFormatError(f"{path}: expected a list of records, found {type(records).__name__}{hint}")
    return list(records)


def load_braille_raw(path: str | os.PathLike) -> list[dict]:
    """The records of a raw Braille pickle (optionally gzip-compressed), checked for the record format.

    Missing file: FileNotFoundError saying where to get the data. A file that is not such a pickle, names any
    global other than numpy's array rebuilders (a tampered file that would run code), or holds records of
    another format (an event-coded file included): DataFormatError naming the file and the record.
    """
    records = _read_records(Path(path), _PlainDataUnpickler, "Braille raw data", WHERE_TO_GET)
    _check_records(records, where=str(path))
    return records


def _letter_name(value: Any) -> str | None:
    """`value` as one of LETTERS if it names one ('space', ' ', 'a', ...), else None."""
    if not isinstance(value, str):
        return None
    text = value.strip().upper()
    text = "SPACE" if text in ("", "SPACE", "_") else text
    return next((letter for letter in LETTERS if letter.upper() == text), None)


def _check_records(records: Sequence[Any], *, where: str) -> int:
    """Raise DataFormatError naming the record if `records` is not a class-major record list; return R."""
    if records and isinstance(records[0], dict) and "events" in records[0] and "taxel_data" not in records[0]:
        raise DataFormatError(f"{where}, record 0: an event-coded record ('letter', 'events'), not a raw one "
                              "('taxel_data'): read this file with load_braille_events (in a training config: "
                              "data.dataset = \"braille_events\")")
    if len(records) == 0 or len(records) % len(LETTERS):
        raise DataFormatError(f"{where}: {len(records)} records is not a positive multiple of the "
                              f"{len(LETTERS)} classes")
    repetitions = len(records) // len(LETTERS)
    for i, record in enumerate(records):
        if not isinstance(record, dict) or "taxel_data" not in record:
            raise DataFormatError(f"{where}, record {i}: expected a dict with 'taxel_data', got "
                                  f"{type(record).__name__}" + (f" with keys {sorted(record)}"
                                                                if isinstance(record, dict) else ""))
        try:
            taxels = np.asarray(record["taxel_data"], dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise DataFormatError(f"{where}, record {i}: 'taxel_data' is not a numeric array ({err})") from err
        if taxels.ndim != 2 or taxels.shape[1] != N_TAXELS or taxels.shape[0] < 2:
            raise DataFormatError(f"{where}, record {i}: 'taxel_data' must have shape (T >= 2, {N_TAXELS}), "
                                  f"got {taxels.shape}")
        if not np.all(np.isfinite(taxels)) or taxels.min() < 0 or taxels.max() > 255:
            raise DataFormatError(f"{where}, record {i}: taxel readings must be finite and within 0..255, "
                                  f"got {taxels.min()}..{taxels.max()}")
        expected = LETTERS[i // repetitions]
        named = _letter_name(record.get("letter"))
        if named is not None and named != expected:
            raise DataFormatError(f"{where}, record {i}: letter {record['letter']!r}, but class-major order "
                                  f"({repetitions} repetitions per class) puts {expected!r} there")
    return repetitions


# -------------------------------------------------------------------------------------- preprocessing


class BrailleSplit(Dataset):
    """Preprocessed samples of one split; item i is (inputs [steps, channels], label)."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor):
        if inputs.ndim != 3 or labels.shape != inputs.shape[:1]:
            raise ValueError(f"inputs must be [N, steps, channels] with N labels, got {tuple(inputs.shape)} "
                             f"and {tuple(labels.shape)}")
        self.inputs = inputs
        """float32 [N, steps, channels]: z-scored taxel signals (raw, rebuilt or synthetic records), or 0/1 events
        per time bin (the "events" encoding)."""
        self.labels = labels
        """int64 [N], class index into LETTERS."""

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[i], self.labels[i]

    def batches(self, batch_size: int = 128, *, shuffle: bool = False,
                generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(inputs [B, steps, channels], labels [B]) batches (the last may be smaller), in order or shuffled."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            yield self.inputs[index], self.labels[index]


@dataclass(frozen=True)
class BrailleData:
    """The Braille task after preprocessing."""

    train: BrailleSplit
    """The first `train_fraction` of the permuted class-major samples (4320 of the published 5400)."""
    test: BrailleSplit
    """The rest (1080)."""
    synthetic: bool
    """True if the records came from `synthetic_braille` (simulated, not measured)."""
    source: str
    """Where the records came from, in words (says SYNTHETIC for generated data)."""
    raw_steps: int
    """Frames every record was cropped to (the shortest record; 51 in the published data); for the "events"
    encoding, the time bins (= `steps`)."""

    @property
    def steps(self) -> int:
        """Time steps per sample after resampling (102 for the published data), 1 ms each in the paper; for the
        "events" encoding, the time bins."""
        return self.train.inputs.shape[1]

    @property
    def channels(self) -> int:
        """Input channels: len(KEPT_TAXELS) after the paper's preprocessing, EVENT_CHANNELS for "events"."""
        return self.train.inputs.shape[2]

    @property
    def n_classes(self) -> int:
        """Number of classes (27)."""
        return len(LETTERS)


def preprocess_braille(records: Sequence[dict], *, seed: int = 0, train_fraction: float = 0.8,
                       upsample: int = 2, source: str = "Braille raw records") -> BrailleData:
    """REFERENCE.md section 4 preprocessing of class-major records.

    x = 1 - taxel/255; crop every record to the shortest length; keep `KEPT_TAXELS`; z-score each channel over
    all samples and steps; Fourier-resample (scipy.signal.resample) to `upsample` times the steps; split with
    `split_samples` (permutation of numpy's default_rng(seed), the first `train_fraction` for training).
    Records from `synthetic_braille` (marked "synthetic") make a BrailleData marked synthetic.
    """
    repetitions = _check_records(records, where=source)
    _check_fraction(train_fraction)
    if upsample < 1:
        raise ValueError(f"upsample must be >= 1, got {upsample}")
    synthetic = any(bool(record.get("synthetic", False)) for record in records)
    if synthetic:
        source = f"SYNTHETIC (simulated fingertip, not measured): {source}"
    signals = [1.0 - np.asarray(record["taxel_data"], dtype=np.float64) / 255.0 for record in records]
    raw_steps = min(len(s) for s in signals)
    x = np.stack([s[:raw_steps, list(KEPT_TAXELS)] for s in signals])
    std = x.std(axis=(0, 1))
    if np.any(std == 0):
        flat = [KEPT_TAXELS[c] for c in np.flatnonzero(std == 0)]
        raise DataFormatError(f"{source}: taxel(s) {flat} never change; they cannot be z-scored")
    x = (x - x.mean(axis=(0, 1))) / std
    x = scipy.signal.resample(x, upsample * raw_steps, axis=1)
    labels = np.repeat(np.arange(len(LETTERS)), repetitions)
    train, test = split_samples(x, labels, seed=seed, train_fraction=train_fraction)
    return BrailleData(train=train, test=test, synthetic=synthetic, source=source, raw_steps=raw_steps)


def _check_fraction(train_fraction: float) -> None:
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")


def split_samples(inputs: np.ndarray, labels: np.ndarray, *, seed: int = 0,
                  train_fraction: float = 0.8) -> tuple[BrailleSplit, BrailleSplit]:
    """The Braille train/test split of class-major samples inputs [N, steps, channels] with labels [N]:
    permuted with numpy's default_rng(seed), the first round(train_fraction * N) for training, the rest for
    testing (the paper's fixed permutation; not stratified). Inputs become float32 tensors."""
    _check_fraction(train_fraction)
    order = np.random.default_rng(seed).permutation(len(inputs))
    n_train = round(train_fraction * len(inputs))
    x = torch.from_numpy(inputs[order].astype(np.float32, copy=False))
    y = torch.from_numpy(labels[order])
    return BrailleSplit(x[:n_train], y[:n_train]), BrailleSplit(x[n_train:], y[n_train:])


# ------------------------------------------------------------------------------------- event-coded file

Encoding = Literal["events", "rebuilt"]
"""How `braille_events_data` presents the events: "events", the events themselves on `EVENT_CHANNELS` channels;
"rebuilt", a 40 Hz signal rebuilt from them and preprocessed like a raw file (`preprocess_braille`)."""


def load_braille_events(path: str | os.PathLike) -> list[dict]:
    """The records of an event-coded Braille pickle (optionally gzip-compressed), in the file's order.

    The published file (`data_braille_letters_th10`, pickle protocol 3) holds only built-in types, so it is read
    with an unpickler that refuses every global. Each record becomes {"letter": its `LETTERS` name (" ", "space"
    -> "Space"), "events": 12 pairs (on_times, off_times) of sorted float64 arrays, s}. The published order is
    200 records of "A", then B .. Z, then 200 of "Space" (unlike `LETTERS`, which puts Space first): labels are
    taken from the letter names, never from the position.

    Missing file: FileNotFoundError saying where to get the data. DataFormatError naming the file (and the
    record and taxel where there is one) for: a file that is not a pickle or names a global; a raw-format file
    (records with "taxel_data": use `load_braille_raw`); a record that is not {"letter", "events"}; an unknown
    letter; not 12 taxels of [on_times, off_times]; event times that are not finite numbers >= 0 s; classes
    other than the 27 of `LETTERS`, or unequal counts per class.
    """
    records = _read_records(Path(path), _BuiltinsOnlyUnpickler, "Braille event-coded data", WHERE_TO_GET_EVENTS)
    return _check_event_records(records, where=str(path))


def _check_event_records(records: Sequence[Any], *, where: str) -> list[dict]:
    """The normalised records (see `load_braille_events`), or DataFormatError naming the record."""
    if not records:
        raise DataFormatError(f"{where}: no records; expected {WHERE_TO_GET_EVENTS}")
    checked = []
    for i, record in enumerate(records):
        if isinstance(record, dict) and "taxel_data" in record and "events" not in record:
            raise DataFormatError(f"{where}, record {i}: a raw record ('taxel_data'), not an event-coded one: read "
                                  "this file with load_braille_raw (in a training config: data.dataset = "
                                  "\"braille\")")
        if not isinstance(record, dict) or "events" not in record or "letter" not in record:
            keys = f" with keys {sorted(map(str, record))}" if isinstance(record, dict) else ""
            raise DataFormatError(f"{where}, record {i}: expected a dict with 'letter' and 'events', got "
                                  f"{type(record).__name__}{keys}")
        letter = _letter_name(record["letter"])
        if letter is None:
            raise DataFormatError(f"{where}, record {i}: unknown letter {record['letter']!r} (known: "
                                  f"{', '.join(LETTERS)})")
        taxels = record["events"]
        if not isinstance(taxels, (list, tuple)) or len(taxels) != N_TAXELS:
            got = f"{len(taxels)} entries" if isinstance(taxels, (list, tuple)) else type(taxels).__name__
            raise DataFormatError(f"{where}, record {i}: 'events' must list {N_TAXELS} taxels, got {got}")
        checked.append({"letter": letter, "events": [_event_times(pair, f"{where}, record {i}, taxel {k}")
                                                     for k, pair in enumerate(taxels)]})
    counts = Counter(record["letter"] for record in checked)
    missing = [letter for letter in LETTERS if letter not in counts]
    if missing:
        raise DataFormatError(f"{where}: {len(counts)} classes, expected the {len(LETTERS)} of the benchmark; no "
                              f"record of {', '.join(missing)}")
    if len(set(counts.values())) > 1:
        usual = Counter(counts.values()).most_common(1)[0][0]
        odd = ", ".join(f"{letter} {counts[letter]}" for letter in LETTERS if counts[letter] != usual)
        raise DataFormatError(f"{where}: unequal class counts: {usual} records of most classes, but {odd}")
    return checked


def _event_times(pair: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(on_times, off_times) of one taxel as sorted float64 arrays, or DataFormatError naming `where`."""
    if not isinstance(pair, (list, tuple)) or len(pair) != len(POLARITIES):
        raise DataFormatError(f"{where}: expected [on_times, off_times], got {type(pair).__name__}"
                              + (f" of {len(pair)} entries" if isinstance(pair, (list, tuple)) else ""))
    times = []
    for polarity, values in zip(POLARITIES, pair):
        t = np.asarray(values) if isinstance(values, (list, tuple)) else np.asarray(None)
        if t.ndim != 1 or (t.size and t.dtype.kind not in "iuf"):
            raise DataFormatError(f"{where}: {polarity} times must be a list of numbers (s), got {values!r:.80}")
        t = t.astype(np.float64)
        if not np.all(np.isfinite(t)) or (t.size and t.min() < 0):
            raise DataFormatError(f"{where}: {polarity} times must be finite and >= 0 s, got {t.min()}..{t.max()}")
        times.append(np.sort(t))
    return times[0], times[1]


def _class_major(records: Sequence[dict]) -> list[dict]:
    """`records` in `LETTERS` order, keeping the file's order within a class (the published file has Space
    last)."""
    rank = {letter: i for i, letter in enumerate(LETTERS)}
    return sorted(records, key=lambda record: rank[record["letter"]])


def _last_event(records: Sequence[dict]) -> float:
    """The latest event time of all records, s (0 without events)."""
    return max((float(t[-1]) for record in records for pair in record["events"] for t in pair if t.size),
               default=0.0)


def event_spikes(records: Sequence[dict], *, bin_s: float = 1e-3, duration_s: float | None = None) -> np.ndarray:
    """The events of `records` (as `load_braille_events` gives them) as 0/1 spikes [N, steps, EVENT_CHANNELS]
    float32, in the records' order, as the benchmark's own spiking networks read them.

    Channel 2k + p is taxel k, polarity p (`POLARITIES`); an event at time t lands in bin round(t / bin_s), which
    holds 1 however many events of that channel fall in it (the published file never has two in one 1 ms bin).
    steps = round(duration_s / bin_s) + 1, duration_s (s) by default the latest event of `records` (1.3 s in the
    published file: 1301 bins of 1 ms); events after it are dropped.
    """
    if not (math.isfinite(bin_s) and bin_s > 0):
        raise ValueError(f"bin_s must be a finite number of seconds > 0, got {bin_s}")
    duration_s = _last_event(records) if duration_s is None else duration_s
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s must be a finite number of seconds > 0, got {duration_s}")
    steps = round(duration_s / bin_s) + 1
    spikes = np.zeros((len(records), steps, EVENT_CHANNELS), dtype=np.float32)
    for i, record in enumerate(records):
        for k, pair in enumerate(record["events"]):
            for p, t in enumerate(pair):
                index = np.rint(t / bin_s).astype(np.int64)
                spikes[i, index[index < steps], len(POLARITIES) * k + p] = 1.0
    return spikes


def rebuild_raw_records(records: Sequence[dict], *, threshold: float = 10.0, duration_s: float | None = None,
                        frame_rate: float = FRAME_RATE) -> list[dict]:
    """Raw-format records (class-major `LETTERS` order, "letter" and "taxel_data" [T, 12]) with each taxel's
    reading rebuilt from its events: an APPROXIMATION of the raw file.

    Frame j (time j / frame_rate, s) reads start + threshold x (ON events - OFF events up to that time), so an
    event interpolated between two frames shows in the later one. The start value of each recording is unknown
    (the encoder only saw changes); every recording gets the same start per taxel, the one that puts the
    taxel's lowest rebuilt reading over all records at 0 counts. The paper's preprocessing z-scores each taxel
    over all samples, so this common start cancels; a real recording's own offset and the sub-threshold detail
    the encoder dropped are lost. T = floor(duration_s x frame_rate) + 1 frames for every record, duration_s
    (s) by default the latest event (1.3 s: 53 frames; 1.25 s gives the paper's 51). `threshold` is the
    encoder's threshold in counts (10 for data_braille_letters_th10); a rebuilt taxel that spans more than the
    sensor's 0..255 counts raises DataFormatError (the threshold does not fit the file).
    """
    if not (math.isfinite(threshold) and threshold > 0):
        raise ValueError(f"threshold must be a finite number of counts > 0, got {threshold}")
    if not (math.isfinite(frame_rate) and frame_rate > 0):
        raise ValueError(f"frame_rate must be a finite number of Hz > 0, got {frame_rate}")
    duration_s = _last_event(records) if duration_s is None else duration_s
    if not (math.isfinite(duration_s) and duration_s >= 1 / frame_rate):
        raise ValueError(f"duration_s must be at least one frame ({1 / frame_rate} s), got {duration_s}")
    ordered = _class_major(records)
    frame_times = np.arange(math.floor(duration_s * frame_rate + 1e-9) + 1) / frame_rate
    levels = np.stack([np.stack([np.searchsorted(on, frame_times, side="right")
                                 - np.searchsorted(off, frame_times, side="right")
                                 for on, off in record["events"]], axis=1) for record in ordered])
    readings = threshold * (levels - levels.min(axis=(0, 1)))
    span = readings.max(axis=(0, 1))
    if np.any(span > 255):
        k = int(np.argmax(span))
        raise DataFormatError(f"rebuilding with threshold {threshold:g} counts: taxel {k} spans {span[k]:g} counts, "
                              "more than the sensor's 0..255; is the threshold the file's (th10 -> 10)?")
    return [{"letter": record["letter"], "taxel_data": reading} for record, reading in zip(ordered, readings)]


def braille_events_data(records: Sequence[dict], *, encoding: Encoding = "events", seed: int = 0,
                        train_fraction: float = 0.8, threshold: float = 10.0, bin_s: float = 1e-3,
                        duration_s: float | None = None, source: str = "Braille event records") -> BrailleData:
    """The Braille task from event-coded records (`load_braille_events`), split like every Braille source
    (`split_samples` of the class-major samples: the same seed puts the same recordings in the test split in
    both encodings).

    encoding "events": `event_spikes(records, bin_s=bin_s, duration_s=duration_s)`, 24 channels of 0/1 per
    bin_s bin (not z-scored); each bin becomes one coarse step of the network. encoding "rebuilt":
    `preprocess_braille(rebuild_raw_records(records, threshold=threshold, duration_s=duration_s))`, the
    paper's preprocessing of a signal rebuilt from the events (an approximation of the raw file; 4 channels,
    2 x frames steps). `source` names the data in `BrailleData.source`, which also says the encoding.
    """
    if encoding == "rebuilt":
        rebuilt = rebuild_raw_records(records, threshold=threshold, duration_s=duration_s)
        return preprocess_braille(rebuilt, seed=seed, train_fraction=train_fraction,
                                  source=f"{source} (events, threshold {threshold:g}; REBUILT 40 Hz signal, an "
                                         "approximation of the raw file)")
    if encoding != "events":
        raise ValueError(f"encoding must be 'events' or 'rebuilt', got {encoding!r}")
    ordered = _class_major(records)
    spikes = event_spikes(ordered, bin_s=bin_s, duration_s=duration_s)
    labels = np.array([LETTERS.index(record["letter"]) for record in ordered])
    train, test = split_samples(spikes, labels, seed=seed, train_fraction=train_fraction)
    return BrailleData(train=train, test=test, synthetic=False, raw_steps=spikes.shape[1],
                       source=f"{source} (events as 0/1 spikes on {EVENT_CHANNELS} channels, {bin_s * 1e3:g} ms "
                              "bins)")



# ---------------------------------------------------------------------------------- synthetic records


@dataclass(frozen=True)
class FingertipModel:
    """The SYNTHETIC fingertip of `synthetic_braille`: 12 taxels in 3 rows x 4 columns (taxel k at row k // 4,
    column k % 4; rows along the cell's dot rows, columns along the sliding direction), sliding over one cell.
    """

    taxel_pitch: float = 2.5e-3
    """Distance between neighbouring taxel centres, m (rows line up with the 2.5 mm dot rows)."""
    dot_pitch: float = 2.5e-3
    """Distance between dot centres within a Braille cell, m."""
    footprint: float = 0.8e-3
    """Standard deviation of the gaussian pressure footprint of one dot on the skin, m."""
    travel: float = 15.5e-3
    """Sliding distance over the cell, m (centred on the cell)."""
    speed: float = 12e-3
    """Nominal sliding speed, m/s (15.5 mm in about 51 frames)."""
    speed_spread: float = 0.1
    """Relative standard deviation of the speed from one repetition to the next."""
    start_jitter: float = 0.5e-3
    """Standard deviation of the start position along the sliding direction, m."""
    row_jitter: float = 0.3e-3
    """Standard deviation of the finger's offset across the sliding direction, m."""
    frame_rate: float = FRAME_RATE
    """Sensor frame rate, Hz."""
    frames: int = 51
    """Frames of the shortest recording."""
    extra_frames: int = 8
    """A recording lasts `frames` plus 0..extra_frames frames (the robot stops at slightly different times)."""
    dot_counts: float = 60.0
    """Reading drop when a dot is centred on a taxel, counts (mean over repetitions)."""
    force_spread: float = 0.15
    """Relative standard deviation of the pressing force (dot_counts and contact) per repetition."""
    contact_counts: float = 10.0
    """Reading drop from the finger resting on the flat plate, counts."""
    rest_counts: float = 245.0
    """Mean reading of an untouched taxel, counts (readings fall with pressure; 1 - reading/255 rises)."""
    rest_spread: float = 5.0
    """Standard deviation of the untouched reading across taxels, counts."""
    gain_spread: float = 0.1
    """Relative standard deviation of the taxel sensitivities (fixed for the sensor)."""
    noise_counts: float = 1.5
    """Standard deviation of the frame-to-frame sensor noise, counts."""


def synthetic_braille(n_per_class: int = 200, *, seed: int = 0,
                      model: FingertipModel = FingertipModel()) -> list[dict]:
    """SYNTHETIC Braille records (NOT measured data) in the published record format, class-major.

    A simulated fingertip (`FingertipModel`) slides over each of the 27 cells (`BRAILLE_DOTS`) `n_per_class`
    times; each raised dot presses a gaussian footprint into the taxels under it. Per repetition: speed, start
    position, row offset, force and recording length vary; per frame: sensor noise. Readings are integers
    0..255 that fall with pressure, as on the real sensor. Each record is
    {"taxel_data": uint8 (T, 12), "letter": str, "timestamp": float64 (T,) s, "synthetic": True}.
    The same seed gives the same records.
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    rng = np.random.default_rng(seed)
    rows, cols = np.divmod(np.arange(N_TAXELS), 4)
    taxel_x = (cols - 1.5) * model.taxel_pitch
    taxel_y = (1 - rows) * model.taxel_pitch
    rest = model.rest_counts + model.rest_spread * rng.standard_normal(N_TAXELS)
    gain = 1 + model.gain_spread * rng.standard_normal(N_TAXELS)
    records = []
    for letter in LETTERS:
        dots = BRAILLE_DOTS[letter]
        dot_x = np.array([(-0.5 if d <= 3 else 0.5) * model.dot_pitch for d in dots])
        dot_y = np.array([(1 - (d - 1) % 3) * model.dot_pitch for d in dots])
        for _ in range(n_per_class):
            n_frames = model.frames + int(rng.integers(0, model.extra_frames + 1))
            t = np.arange(n_frames) / model.frame_rate
            speed = model.speed * max(0.5, 1 + model.speed_spread * rng.standard_normal())
            finger_x = -model.travel / 2 + model.start_jitter * rng.standard_normal() + speed * t
            finger_y = model.row_jitter * rng.standard_normal()
            force = max(0.2, 1 + model.force_spread * rng.standard_normal())
            # distance of every dot from every taxel at every frame: [frames, taxels, dots]
            dx = dot_x[None, None, :] - (finger_x[:, None, None] + taxel_x[None, :, None])
            dy = dot_y[None, None, :] - (finger_y + taxel_y[None, :, None])
            pressure = np.exp(-(dx ** 2 + dy ** 2) / (2 * model.footprint ** 2)).sum(axis=2)
            drop = force * (model.contact_counts + model.dot_counts * pressure) * gain
            reading = rest - drop + model.noise_counts * rng.standard_normal((n_frames, N_TAXELS))
            records.append({"taxel_data": np.clip(np.rint(reading), 0, 255).astype(np.uint8), "letter": letter,
                            "timestamp": t, "synthetic": True})
    return records


def synthetic_braille_data(n_per_class: int = 200, *, seed: int = 0, split_seed: int = 0) -> BrailleData:
    """`preprocess_braille` of `synthetic_braille(n_per_class, seed=seed)`: the SYNTHETIC tactile task."""
    records = synthetic_braille(n_per_class, seed=seed)
    return preprocess_braille(records, seed=split_seed,
                              source=f"synthetic_braille(n_per_class={n_per_class}, seed={seed})")
