"""Data sets: Bach chorale piano rolls (`music`) and Braille letter reading (`braille`).

Tensors are batch first: a batch of sequences is [batch, steps, features].
"""
from cosim.data.braille import (
    BRAILLE_DOTS,
    EVENT_CHANNELS,
    KEPT_TAXELS,
    LETTERS,
    POLARITIES,
    BrailleData,
    BrailleSplit,
    FingertipModel,
    braille_events_data,
    event_spikes,
    load_braille_events,
    load_braille_raw,
    preprocess_braille,
    rebuild_raw_records,
    split_samples,
    synthetic_braille,
    synthetic_braille_data,
)
from cosim.data.errors import DataFormatError
from cosim.data.music import (
    KEY_RANGE,
    LOWEST_MIDI,
    PIANO_KEYS,
    ChoraleSplits,
    NextStep,
    PaddedBatch,
    PianoRollDataset,
    load_jsb,
    load_music21_chorales,
    pad_next_step,
    piano_roll,
    split_of,
)

__all__ = [
    "BRAILLE_DOTS", "EVENT_CHANNELS", "KEPT_TAXELS", "LETTERS", "POLARITIES", "BrailleData", "BrailleSplit",
    "FingertipModel", "braille_events_data", "event_spikes", "load_braille_events", "load_braille_raw",
    "preprocess_braille", "rebuild_raw_records", "split_samples", "synthetic_braille", "synthetic_braille_data",
    "DataFormatError", "KEY_RANGE", "LOWEST_MIDI", "PIANO_KEYS", "ChoraleSplits", "NextStep", "PaddedBatch",
    "PianoRollDataset", "load_jsb", "load_music21_chorales", "pad_next_step", "piano_roll", "split_of",
]
