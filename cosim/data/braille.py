"""Braille letter reading (REFERENCE.md section 4; Mueller-Cleve et al. 2022, Front. Neurosci. 16:951164).

A record is a dict with "taxel_data", an array (T, 12) of raw taxel readings 0..255 of a tactile fingertip that
slid over one Braille cell (40 Hz frames), and optionally "letter". A data set is a list of records in
class-major order: record i*R + r is repetition r of class i, classes `LETTERS` (Space, A..Z), R repetitions
(200 in the published file, 5400 records).

* `load_braille_raw(path)`: the published raw pickle, read with an unpickler that builds only plain data.
* `synthetic_braille(...)`: SYNTHETIC records of the same format from a simulated fingertip (the real file is
  not available here); every result derived from them says so (`BrailleData.synthetic`, `source`).
* `preprocess_braille(records)`: the paper's preprocessing, to `BrailleData` with torch tensors.

Taxel index convention: taxel k is column k (zero-based) of "taxel_data"; the paper keeps `KEPT_TAXELS`.
"""
from __future__ import annotations

import gzip
import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

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
WHERE_TO_GET = ("the raw data of Mueller-Cleve et al. 2022 (Front. Neurosci. 16:951164), published on Zenodo "
                "(doi:10.5281/zenodo.7050094, reading_braille_data.zip): a pickle of 5400 records (27 classes "
                "x 200 repetitions, class-major), each a dict with 'taxel_data' of shape (T, 12), values 0..255")

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

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise _RefusedGlobal(f"refused global {module}.{name}: only plain data and numpy arrays are "
                                 f"allowed (a file that names other code may have been tampered with)") from None


def load_braille_raw(path: str | os.PathLike) -> list[dict]:
    """The records of a raw Braille pickle (optionally gzip-compressed), checked for the record format.

    Missing file: FileNotFoundError saying where to get the data. A file that is not such a pickle, names any
    global other than numpy's array rebuilders (a tampered file that would run code), or holds records of
    another format: DataFormatError naming the file and the record.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Braille raw data not found: {path}. Download {WHERE_TO_GET}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataFormatError(f"{path}: broken gzip file ({err}); expected {WHERE_TO_GET}") from err
    try:
        records = _PlainDataUnpickler(io.BytesIO(raw)).load()
    except _RefusedGlobal as err:
        hint = f"; {PANDAS_HINT}" if "pandas" in str(err) else ""
        raise DataFormatError(f"{path}: {err}{hint}; expected {WHERE_TO_GET}") from err
    except Exception as err:  # truncated or not a pickle at all: many exception types
        raise DataFormatError(f"{path}: not a readable pickle ({type(err).__name__}: {err}); "
                              f"expected {WHERE_TO_GET}") from err
    if not isinstance(records, (list, tuple)):
        hint = f"; {PANDAS_HINT}" if isinstance(records, dict) else ""
        raise DataFormatError(f"{path}: expected a list of records, found {type(records).__name__}{hint}")
    _check_records(records, where=str(path))
    return list(records)


def _letter_name(value: Any) -> str | None:
    """`value` as one of LETTERS if it names one ('space', ' ', 'a', ...), else None."""
    if not isinstance(value, str):
        return None
    text = value.strip().upper()
    text = "SPACE" if text in ("", "SPACE", "_") else text
    return next((letter for letter in LETTERS if letter.upper() == text), None)


def _check_records(records: Sequence[Any], *, where: str) -> int:
    """Raise DataFormatError naming the record if `records` is not a class-major record list; return R."""
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
        """float32 [N, steps, channels], z-scored taxel signals."""
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
    """The first `train_fraction` of the permuted samples (4320 of the published 5400)."""
    test: BrailleSplit
    """The rest (1080)."""
    synthetic: bool
    """True if the records came from `synthetic_braille` (simulated, not measured)."""
    source: str
    """Where the records came from, in words (says SYNTHETIC for generated data)."""
    raw_steps: int
    """Frames every record was cropped to (the shortest record; 51 in the published data)."""

    @property
    def steps(self) -> int:
        """Time steps per sample after resampling (102 for the published data), 1 ms each in the paper."""
        return self.train.inputs.shape[1]

    @property
    def channels(self) -> int:
        """Input channels (len(KEPT_TAXELS))."""
        return self.train.inputs.shape[2]

    @property
    def n_classes(self) -> int:
        """Number of classes (27)."""
        return len(LETTERS)


def preprocess_braille(records: Sequence[dict], *, seed: int = 0, train_fraction: float = 0.8,
                       upsample: int = 2, source: str = "Braille raw records") -> BrailleData:
    """REFERENCE.md section 4 preprocessing of class-major records.

    x = 1 - taxel/255; crop every record to the shortest length; keep `KEPT_TAXELS`; z-score each channel over
    all samples and steps; Fourier-resample (scipy.signal.resample) to `upsample` times the steps; permute
    the samples with numpy's default_rng(seed); the first `train_fraction` is the training split.
    Records from `synthetic_braille` (marked "synthetic") make a BrailleData marked synthetic.
    """
    repetitions = _check_records(records, where=source)
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
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
    order = np.random.default_rng(seed).permutation(len(x))
    n_train = round(train_fraction * len(x))
    inputs = torch.from_numpy(x[order].astype(np.float32))
    targets = torch.from_numpy(labels[order])
    return BrailleData(train=BrailleSplit(inputs[:n_train], targets[:n_train]),
                       test=BrailleSplit(inputs[n_train:], targets[n_train:]),
                       synthetic=synthetic, source=source, raw_steps=raw_steps)


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
    frame_rate: float = 40.0
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
