"""Piano-roll data sets for the music predictor (REFERENCE.md section 4).

Index convention: an 88-key roll has column 0 = MIDI 21 (A0) up to column 87 = MIDI 108 (C8). The network sees
keys 22..75 of the 88 (MIDI 43..96, `KEY_RANGE`): 54 inputs. One chorale step is one quarter note, and the task
is next-step prediction: inputs x[0..T-2], targets x[1..T-1].

Two sources share `PianoRollDataset`:

* `load_jsb(path)`: the JSB chorales of Boulanger-Lewandowski et al. (2012) with their standard split, from a
  `jsb-chorales-quarter.json` file (keys train/valid/test; each chorale a list of steps; each step a list of MIDI
  pitches).
* `load_music21_chorales()`: the default data set, the four-part Bach chorales that ship with the music21
  package, with a deterministic split (`split_of`); parsed once and cached (`default_cache_dir`).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Literal, NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from cosim.data.errors import DataFormatError
from cosim.spice.progress import progress_bar

PIANO_KEYS = 88
"""Columns of a full piano roll."""
LOWEST_MIDI = 21
"""MIDI note of column 0 of an 88-key roll (A0)."""
KEY_RANGE = range(22, 76)
"""Columns of the 88-key roll the network sees (MIDI 43..96): 54 keys."""

Split = Literal["train", "valid", "test"]
SPLITS: tuple[Split, ...] = ("train", "valid", "test")

CACHE_FORMAT = 1
"""Bumped whenever the cached rolls would change for the same music21 version (grid, part rule, ...)."""


class NextStep(NamedTuple):
    """One chorale as a next-step prediction pair."""

    inputs: torch.Tensor
    """Keys sounding at steps 0..T-2, float32 0/1, shape [T-1, keys]."""
    targets: torch.Tensor
    """Keys sounding at steps 1..T-1, float32 0/1, shape [T-1, keys]."""


class PaddedBatch(NamedTuple):
    """Chorales of different length, zero-padded at the end to the longest (batch first)."""

    inputs: torch.Tensor
    """float32 0/1, shape [batch, steps, keys]."""
    targets: torch.Tensor
    """float32 0/1, shape [batch, steps, keys]."""
    mask: torch.Tensor
    """bool, shape [batch, steps]: True on real steps, False on padding (exclude it from the loss)."""


def piano_roll(steps: Sequence[Iterable[int]], *, where: str) -> np.ndarray:
    """The 88-key roll, float32 0/1 of shape [T, 88], of a chorale given as MIDI pitches per step.

    `where` names the chorale in error messages (file and index); a pitch that is not an integer MIDI note on
    the piano (21..108) raises DataFormatError naming the step.
    """
    roll = np.zeros((len(steps), PIANO_KEYS), dtype=np.float32)
    for t, pitches in enumerate(steps):
        if not isinstance(pitches, (list, tuple)):
            raise DataFormatError(f"{where}, step {t}: expected a list of MIDI pitches, got {pitches!r}")
        for pitch in pitches:
            if isinstance(pitch, bool) or not isinstance(pitch, (int, np.integer)):
                raise DataFormatError(f"{where}, step {t}: pitch {pitch!r} is not an integer MIDI note")
            key = int(pitch) - LOWEST_MIDI
            if not 0 <= key < PIANO_KEYS:
                raise DataFormatError(
                    f"{where}, step {t}: MIDI pitch {pitch} is outside the 88-key piano "
                    f"(MIDI {LOWEST_MIDI}..{LOWEST_MIDI + PIANO_KEYS - 1})")
            roll[t, key] = 1.0
    return roll


class PianoRollDataset(Dataset):
    """Chorales as piano rolls cut to a key range; item i is chorale i as a `NextStep` pair."""

    def __init__(self, rolls: Sequence[np.ndarray], *, ids: Sequence[str], keys: range = KEY_RANGE):
        """`rolls`: 88-key rolls [T, 88] (0/1); `ids`: one name per roll for messages and reports."""
        if len(ids) != len(rolls):
            raise ValueError(f"{len(rolls)} rolls but {len(ids)} ids")
        if keys.step != 1 or keys.start < 0 or keys.stop > PIANO_KEYS or len(keys) == 0:
            raise ValueError(f"keys must be a contiguous non-empty range within 0..{PIANO_KEYS - 1}, got {keys}")
        self.ids: list[str] = list(ids)
        """Name of each chorale (file and index, or music21 corpus path)."""
        self.keys: range = keys
        """Columns of the 88-key roll kept; `len(keys)` inputs."""
        self.rolls: list[np.ndarray] = []
        """float32 0/1 rolls [T, len(keys)]."""
        self.notes_outside_keys = 0
        """Sounding (step, key) cells dropped because the key lies outside `keys`."""
        for name, roll in zip(self.ids, rolls):
            roll = np.asarray(roll, dtype=np.float32)
            if roll.ndim != 2 or roll.shape[1] != PIANO_KEYS:
                raise ValueError(f"{name}: expected an 88-key roll [T, {PIANO_KEYS}], got shape {roll.shape}")
            if roll.shape[0] < 2:
                raise DataFormatError(f"{name}: {roll.shape[0]} step(s); next-step prediction needs at least 2")
            kept = roll[:, keys.start:keys.stop]
            self.notes_outside_keys += int(roll.sum() - kept.sum())
            self.rolls.append(np.ascontiguousarray(kept))

    def __len__(self) -> int:
        return len(self.rolls)

    def __getitem__(self, i: int) -> NextStep:
        roll = torch.from_numpy(self.rolls[i])
        return NextStep(roll[:-1], roll[1:])

    @property
    def n_keys(self) -> int:
        """Inputs (and outputs) per step."""
        return len(self.keys)

    @property
    def n_steps(self) -> int:
        """Prediction steps over all chorales (sum of T-1)."""
        return sum(len(r) - 1 for r in self.rolls)

    def batches(self, batch_size: int = 1, *, shuffle: bool = False,
                generator: torch.Generator | None = None) -> Iterator[PaddedBatch]:
        """Padded batches of `batch_size` chorales (the last may be smaller), in order or shuffled."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        order = torch.randperm(len(self), generator=generator).tolist() if shuffle else list(range(len(self)))
        for start in range(0, len(order), batch_size):
            yield pad_next_step([self[i] for i in order[start:start + batch_size]])


def pad_next_step(items: Sequence[NextStep]) -> PaddedBatch:
    """Stack next-step pairs of different length into one zero-padded batch with its mask."""
    if not items:
        raise ValueError("cannot build a batch from no chorales")
    steps = max(len(item.inputs) for item in items)
    keys = items[0].inputs.shape[1]
    inputs = torch.zeros(len(items), steps, keys)
    targets = torch.zeros(len(items), steps, keys)
    mask = torch.zeros(len(items), steps, dtype=torch.bool)
    for b, item in enumerate(items):
        n = len(item.inputs)
        inputs[b, :n], targets[b, :n], mask[b, :n] = item.inputs, item.targets, True
    return PaddedBatch(inputs, targets, mask)


class ChoraleSplits(NamedTuple):
    """A music data set in its three splits."""

    train: PianoRollDataset
    valid: PianoRollDataset
    test: PianoRollDataset
    source: str
    """Where the chorales came from, in words (file or corpus, counts of what was left out)."""


def load_jsb(path: str | os.PathLike, *, keys: range = KEY_RANGE) -> ChoraleSplits:
    """The JSB chorales from a `jsb-chorales-quarter.json` file, in its standard split (229/76/77)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"JSB chorales file not found: {path}. Pass the path of jsb-chorales-quarter.json (the quarter-note "
            f"JSB chorales of Boulanger-Lewandowski et al. 2012 with keys train/valid/test)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataFormatError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict) or set(data) != set(SPLITS):
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise DataFormatError(f"{path}: expected an object with keys {list(SPLITS)}, found {found}")
    splits = {}
    for split in SPLITS:
        chorales = data[split]
        if not isinstance(chorales, list):
            raise DataFormatError(f"{path}: '{split}' must be a list of chorales, got {type(chorales).__name__}")
        ids = [f"{path.name}:{split}[{i}]" for i in range(len(chorales))]
        for name, chorale in zip(ids, chorales):
            if not isinstance(chorale, list):
                raise DataFormatError(f"{name}: a chorale must be a list of steps, got {type(chorale).__name__}")
        rolls = [piano_roll(chorale, where=name) for name, chorale in zip(ids, chorales)]
        splits[split] = PianoRollDataset(rolls, ids=ids, keys=keys)
    return ChoraleSplits(**splits, source=f"JSB chorales file {path}")


def default_cache_dir() -> Path:
    """`$COSIM_CACHE` if set, else ~/.cache/cosim."""
    return Path(os.environ.get("COSIM_CACHE") or Path.home() / ".cache" / "cosim")


def split_of(corpus_path: str) -> Split:
    """The split of a music21 corpus file: the first 8 bytes of SHA-256 of its corpus path (for example
    'bach/bwv1.6.mxl') read as a fraction u in [0, 1): train if u < 0.6, valid if u < 0.8, else test.

    Stable across machines and music21 versions, and a file's split does not depend on which others exist.
    """
    u = int.from_bytes(hashlib.sha256(corpus_path.encode()).digest()[:8], "big") / 2.0 ** 64
    return "train" if u < 0.6 else "valid" if u < 0.8 else "test"


def music21_bach_paths() -> list[str]:
    """Corpus paths ('bach/...') of the Bach scores in the music21 corpus (MusicXML and Humdrum), sorted.

    Roman-numeral analyses (.rntxt) are left out; which scores are four-part chorales is known only after
    parsing (`score_piano_roll`).
    """
    from music21 import common, corpus  # music21 takes about a second to import; only this loader needs it

    root = Path(common.getCorpusFilePath())
    paths = [Path(p) for p in corpus.getComposer("bach")]
    return sorted(p.relative_to(root).as_posix() for p in paths if p.suffix in (".mxl", ".xml", ".krn"))


def score_piano_roll(score, *, where: str) -> np.ndarray:
    """88-key roll [T, 88] (float32 0/1) of a music21 score at quarter-note resolution.

    Step k samples the pitches sounding at the k-th beat of the quarter grid: a note of offset o and length d
    (quarter lengths) is on at grid time g if o <= g < o + d, so a note shorter than a quarter that starts
    between grid points is not seen (as in the JSB data). The grid is aligned to the beats: a pickup bar of
    2.5 quarters moves it by half a quarter. Repeats are not expanded; grace notes (length 0) are never
    sampled. `where` names the score in error messages.
    """
    measures = score.parts[0].getElementsByClass("Measure")
    phase = (-float(measures[0].paddingLeft)) % 1.0 if measures else 0.0
    eps = 1e-6  # offsets of tuplets are not exact in floating point
    n_steps = max(0, math.ceil(float(score.highestTime) - phase - eps))
    roll = np.zeros((n_steps, PIANO_KEYS), dtype=np.float32)
    for part in score.parts:
        for note in part.flatten().notes:
            start = float(note.offset)
            first = math.ceil(start - phase - eps)
            last = math.ceil(start + float(note.quarterLength) - phase - eps)
            for pitch in note.pitches:
                key = pitch.midi - LOWEST_MIDI
                if not 0 <= key < PIANO_KEYS:
                    raise DataFormatError(f"{where}: {pitch} at offset {start} is outside the 88-key piano")
                roll[max(first, 0):last, key] = 1.0
    return roll


def load_music21_chorales(*, keys: range = KEY_RANGE, transpose: int = 0, paths: Sequence[str] | None = None,
                          cache_dir: str | os.PathLike | None = None, progress: bool = True) -> ChoraleSplits:
    """The four-part Bach chorales of the music21 corpus as piano rolls, split by `split_of`.

    A chorale is a score of `music21_bach_paths()` (or of `paths`, corpus paths, to load a subset) with exactly
    four parts (the vocal SATB texture; settings with instrumental parts are left out). A chorale whose roll is
    identical to one earlier in path order (the same setting filed twice) is left out, so no chorale is in two
    splits. Parsing the whole corpus takes about half a minute; the rolls are cached in `cache_dir`
    (default `default_cache_dir()`) per music21 version and set of paths.

    Pitches are music21's written MIDI pitches (MIDI 36..81 over the corpus), shifted by `transpose`
    semitones. With the default `keys` (MIDI 43..96, chosen for the JSB file, whose chorales are transposed
    and lie higher) bass notes below G2 fall outside the window (`notes_outside_keys`, about 1 % of notes);
    `transpose=12` puts every note of the corpus inside it.
    """
    import music21

    paths = sorted(paths) if paths is not None else music21_bach_paths()
    digest = hashlib.sha256("\n".join(paths).encode()).hexdigest()[:16]
    cache = Path(cache_dir or default_cache_dir()) / (
        f"music21-bach-quarter-v{CACHE_FORMAT}-{music21.__version__}-{digest}.npz")
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as stored:
            kept, lengths = stored["paths"].tolist(), stored["lengths"]
            rolls = np.split(stored["rolls"].astype(np.float32), np.cumsum(lengths)[:-1])
            not_four_part, duplicates = stored["not_four_part"].tolist(), stored["duplicates"].tolist()
    else:
        kept, rolls, not_four_part, duplicates = _parse_chorales(paths, progress)
        _save_atomic(cache, paths=np.array(kept, dtype=str), lengths=np.array([len(r) for r in rolls]),
                     rolls=np.concatenate(rolls).astype(np.uint8), not_four_part=np.array(not_four_part, dtype=str),
                     duplicates=np.array(duplicates, dtype=str))
    by_split: dict[str, tuple[list, list]] = {split: ([], []) for split in SPLITS}
    for name, roll in zip(kept, rolls):
        ids, split_rolls = by_split[split_of(name)]
        ids.append(name)
        split_rolls.append(_transposed(roll, transpose, where=f"music21 corpus file {name}"))
    source = (f"music21 {music21.__version__} corpus: {len(kept)} four-part Bach chorales "
              f"({len(not_four_part)} scores not four-part and {len(duplicates)} duplicates left out)"
              + (f", transposed by {transpose:+d} semitones" if transpose else ""))
    return ChoraleSplits(**{s: PianoRollDataset(r, ids=i, keys=keys) for s, (i, r) in by_split.items()},
                         source=source)


def _transposed(roll: np.ndarray, semitones: int, *, where: str) -> np.ndarray:
    """An 88-key roll moved up by `semitones` (down if negative); a note pushed off the piano is an error."""
    if semitones == 0:
        return roll
    leaving = roll[:, PIANO_KEYS - semitones:] if semitones > 0 else roll[:, :-semitones]
    if abs(semitones) >= PIANO_KEYS or leaving.any():
        raise ValueError(f"{where}: transposing by {semitones:+d} semitones moves notes off the 88-key piano")
    return np.roll(roll, semitones, axis=1)  # the columns that wrap around are empty (checked above)


def _parse_chorales(paths: Sequence[str], progress: bool) -> tuple[list[str], list[np.ndarray], list[str], list[str]]:
    """Parse each corpus path: (kept paths, their rolls, paths not four-part, paths duplicating a kept roll)."""
    from music21 import corpus

    kept, rolls, not_four_part, duplicates = [], [], [], []
    seen: set[bytes] = set()
    for name in progress_bar(paths, desc="parsing music21 chorales", unit="score", enabled=progress):
        try:
            score = corpus.parse(name)
        except Exception as err:  # music21 raises many types; say which file
            raise DataFormatError(f"music21 corpus file {name} could not be parsed: {err}") from err
        if len(score.parts) != 4:
            not_four_part.append(name)
            continue
        roll = score_piano_roll(score, where=f"music21 corpus file {name}")
        fingerprint = hashlib.sha256(roll.tobytes()).digest()
        if fingerprint in seen:
            duplicates.append(name)
            continue
        seen.add(fingerprint)
        kept.append(name)
        rolls.append(roll)
    if not kept:
        raise DataFormatError(f"none of the {len(paths)} music21 scores is a four-part chorale")
    return kept, rolls, not_four_part, duplicates


def _save_atomic(path: Path, **arrays: np.ndarray) -> None:
    """Write an .npz so that a reader in another process never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as tmp:
        np.savez_compressed(tmp, **arrays)
    os.replace(tmp.name, path)
