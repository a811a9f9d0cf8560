"""Ordinary SPICE decks (ngspice dialect) as cosim jobs: ``cosim simulate DECK``, `deck_job`, `Circuit.from_deck`.

A deck is split into cards the way ngspice splits it (`cosim.spice.safety.ngspice_cards`): the first line is the
title, ``+`` lines continue a card, ``.end`` ends the deck. `read_deck` sorts the cards:

- ``.op``, ``.dc SRC START STOP STEP``, ``.ac dec N FSTART FSTOP`` and ``.tran TSTEP TSTOP [TSTART [TMAX]] [uic]``
  become the job's analysis (one per deck);
- ``.include FILE`` and ``.lib FILE`` (without a section) go to `Circuit.includes`, resolved relative to the deck's
  folder and refused outside it unless `allow_outside`;
- ``.title`` sets the title; ``.print``, ``.plot``, ``.width`` and ``.four`` (terminal output; every vector is
  kept) are dropped and listed in `SpiceDeck.dropped`;
- every other card is the circuit, checked by the back end like any netlist (``.control`` is refused unless
  `SimJob.allow_shell`).

The circuit's netlist keeps the deck's line numbers (consumed lines become comments), so ``netlist line 7`` in an
error is line 7 of the deck. For ``simulator="vacask"``, `vacask_circuit` translates the cards that
`cosim.spice.elements` renders (R, C, L; V and I with DC, AC, PULSE, SIN, PWL; D with ``.model NAME d(...)``) and
refuses any other card by name.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cosim.spice.elements import (
    Capacitor,
    CurrentSource,
    Diode,
    Inductor,
    Model,
    Pulse,
    Pwl,
    Resistor,
    Sine,
    VoltageSource,
)
from cosim.spice.job import Ac, Analysis, Circuit, DcSweep, NetlistError, Op, SimJob, SimResult, Tran
from cosim.spice.safety import Card, ngspice_cards

ANALYSIS_CARDS = (".op", ".dc", ".ac", ".tran")
"""Cards that become `SimJob.analysis`."""
OUTPUT_CARDS = (".print", ".plot", ".width", ".four")
"""Cards that only format ngspice's terminal output: dropped."""
INCLUDE_CARDS = (".include", ".inc", ".lib")
"""Cards naming a file to read, which goes to `Circuit.includes`."""

_SCALE = {"t": 12, "g": 9, "k": 3, "m": -3, "u": -6, "n": -9, "p": -12, "f": -15}
"""Powers of ten of SPICE's scale letters (besides meg and mil)."""
_NUMBER = re.compile(r"([+-]?)(?=\.?\d)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?([A-Za-z]*)")
_INLINE_COMMENT = re.compile(r";|//|(?<=[\s,])\$")
_FILE_NAME = re.compile(r"\s*(?:\"([^\"]*)\"|'([^']*)'|(\S+))\s*(.*)")


def spice_number(text: str) -> float:
    """A SPICE number as ngspice reads it: "1.5k" -> 1500.0, "10ns" -> 1e-8, "2meg" -> 2e6, "3M" -> 3e-3 (scale
    letters are case-insensitive, unit letters after them are ignored). Raises ValueError for anything else, e.g.
    a {parameter} expression."""
    found = _NUMBER.fullmatch(text)
    if found is None:
        raise ValueError(f"{text!r} is not a SPICE number")
    sign, whole, fraction, exponent, suffix = found.groups()
    suffix = suffix.lower()
    scale = 6 if suffix.startswith("meg") else -6 if suffix.startswith("mil") else _SCALE.get(suffix[:1], 0)
    mantissa = float(whole + (fraction or "")) * (25.4 if suffix.startswith("mil") else 1.0)
    # ngspice's arithmetic: the digits as one number times a power of ten, so that "10u" is the same double
    return (-1.0 if sign == "-" else 1.0) * mantissa * 10.0 ** (int(exponent or 0) + scale - len(fraction or ""))


@dataclass(frozen=True)
class SpiceDeck:
    """A deck read by `read_deck`."""

    path: str
    """The deck file."""
    circuit: Circuit
    """Its circuit (ngspice dialect): title, cards and includes, without analysis and output cards."""
    analysis: Analysis | None
    """Its analysis card, or None when it has none."""
    cards: tuple[Card, ...]
    """The circuit's cards (as `safety.ngspice_cards` returns them, positions in `lines`)."""
    lines: tuple[tuple[str, str], ...]
    """(text, origin) of the deck's lines after the title, up to ``.end``."""
    dropped: tuple[str, ...]
    """Output cards left out (``.print``...), as written."""

    def job(self, simulator: str = "ngspice", allow_shell: bool = False) -> SimJob:
        """The deck's `SimJob` on `simulator` ("ngspice", or "vacask" through `vacask_circuit`), keeping every
        vector; `allow_shell` lets ``.control`` sections run."""
        if self.analysis is None:
            raise NetlistError(f"{self.path}: no analysis card (.op, .dc, .ac or .tran)")
        if simulator not in ("ngspice", "vacask"):
            raise NetlistError(f"unknown simulator {simulator!r}: decks run on 'ngspice' or 'vacask'")
        circuit = self.circuit if simulator == "ngspice" else vacask_circuit(self)
        return SimJob(circuit, self.analysis, simulator=simulator, name=Path(self.path).name, allow_shell=allow_shell)


def card_words(card: Card, lines: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> list[str]:
    """The words of `card`: its lines joined without the ``+`` of continuation lines and without inline comments
    (``;``, ``//``, `` $``)."""
    parts = []
    for k in card.lines:
        text = lines[k][0].strip()
        if k != card.index and text.startswith("+"):
            text = text[1:]
        parts.append(_INLINE_COMMENT.split(text, maxsplit=1)[0])
    return " ".join(parts).split()


def read_deck(path: str | Path, *, allow_outside: bool = False) -> SpiceDeck:
    """Read an ngspice deck file (see the module docstring).

    `allow_outside` lets ``.include``/``.lib`` read files outside the deck's folder. Raises NetlistError naming
    the deck line for an include outside the folder or missing, a ``.lib`` section, an analysis that cosim cannot
    express, or several analyses.
    """
    path = Path(path)
    raw = path.read_text().splitlines()
    title = raw[0].strip() if raw else ""
    lines = [(text, f"{path}:{n}") for n, text in enumerate(raw[1:], 2)]
    end = next((card.index for card in ngspice_cards(lines) if card.word == ".end"), len(lines))
    lines = lines[:end]
    cards, analyses, includes, dropped, consumed = [], [], [], [], set()
    for card in ngspice_cards(lines):
        words = card_words(card, lines)
        if card.word in ANALYSIS_CARDS:
            analyses.append((card, _analysis(card, words)))
        elif card.name in INCLUDE_CARDS:
            includes.append(_include(card, path.parent, allow_outside))
        elif card.name == ".title":
            title = card.text.strip()[len(words[0]):].strip()
        elif card.word in OUTPUT_CARDS:
            dropped.append(" ".join(words))
        else:
            cards.append(card)
            continue
        consumed.update(card.lines)
    if len(analyses) > 1:
        raise NetlistError(f"{path}: {len(analyses)} analysis cards ({', '.join(c.origin for c, _ in analyses)}); "
                           "a cosim job runs one: keep one of them")
    # consumed lines become comments, so that "netlist line N" in errors is line N of the deck
    body = [f"* {raw[0]}" if raw else "*"] + [f"* {text}" if k in consumed else text
                                             for k, (text, _) in enumerate(lines)]
    circuit = Circuit(netlist="\n".join(body), title=title or path.name, includes=tuple(includes))
    return SpiceDeck(str(path), circuit, analyses[0][1] if analyses else None, tuple(cards), tuple(lines),
                     tuple(dropped))


def _numbers(card: Card, words: list[str]) -> list[float]:
    try:
        return [spice_number(word) for word in words]
    except ValueError as error:
        raise NetlistError(f"{card.origin}: {error} ({card.word} takes plain numbers here)", card.text) from None


def _analysis(card: Card, words: list[str]) -> Analysis:
    """The analysis of an ``.op``/``.dc``/``.ac``/``.tran`` card."""
    args = words[1:]
    if card.word == ".op" and not args:
        return Op()
    if card.word == ".dc" and len(args) == 4:
        return DcSweep(source=args[0], **dict(zip(("start", "stop", "step"), _numbers(card, args[1:]))))
    if card.word == ".ac" and len(args) == 4 and args[0].lower() == "dec":
        points, start, stop = _numbers(card, args[1:])
        return Ac(points_per_decade=int(points), start=start, stop=stop)
    uic = bool(args) and args[-1].lower() == "uic"
    if card.word == ".tran" and 2 <= len(args) - uic <= 4:
        values = _numbers(card, args[:-1] if uic else args)
        return Tran(step=values[0], stop=values[1], start=values[2] if len(values) > 2 else 0.0,
                    max_step=values[3] if len(values) > 3 else None, uic=uic)
    raise NetlistError(
        f"{card.origin}: cosim runs '.op', '.dc SOURCE START STOP STEP' (one source), '.ac dec N FSTART FSTOP' "
        f"and '.tran TSTEP TSTOP [TSTART [TMAX]] [uic]', not this card", card.text)


def _include(card: Card, folder: Path, allow_outside: bool) -> str:
    """The file an ``.include``/``.lib`` card names, resolved in `folder`; refused outside it unless allowed."""
    found = _FILE_NAME.fullmatch(card.text.strip()[len(card.text.split()[0]):])
    name = next((group for group in found.groups()[:3] if group), "") if found else ""
    if not name:
        raise NetlistError(f"{card.origin}: {card.name} names no file", card.text)
    if card.name == ".lib" and found[4].strip():
        raise NetlistError(f"{card.origin}: .lib sections are not supported (cosim includes whole files): "
                           f".include the file, or a file holding only that section", card.text)
    resolved = (folder / name).resolve()
    if not allow_outside and not resolved.is_relative_to(folder.resolve()):
        raise NetlistError(
            f"{card.origin}: {card.name} {name} is {resolved}, outside the deck's folder {folder.resolve()}; "
            "a deck reads only files in its folder unless the caller allows more (allow_outside=True, "
            "cosim simulate --allow-outside)", card.text)
    if not resolved.is_file():
        raise NetlistError(f"{card.origin}: {card.name} {name}: no such file ({resolved})", card.text)
    return str(resolved)


def deck_job(path: str | Path, *, simulator: str = "ngspice", allow_outside: bool = False,
             allow_shell: bool = False) -> SimJob:
    """The `SimJob` of a deck file (`read_deck`, then `SpiceDeck.job`)."""
    return read_deck(path, allow_outside=allow_outside).job(simulator, allow_shell)


def simulate_deck(path: str | Path, out: str | Path, *, simulator: str = "ngspice", allow_outside: bool = False,
                  allow_shell: bool = False) -> SimResult:
    """Run a deck (`deck_job`) and write ``out/results.npz`` (one array per vector, under the names of
    `cosim.spice.backend`: ``v(2)``, ``i(v1)``, and the sweep axis, e.g. ``time``) and ``out/provenance.json``."""
    from cosim.spice.pool import run  # the pool starts worker processes: imported only when a deck runs

    deck = read_deck(path, allow_outside=allow_outside)
    result = run(deck.job(simulator, allow_shell))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "results.npz", **result.vectors)
    provenance = {**result.provenance, "deck": str(Path(path).resolve()),
                  "deck_sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(), "axis": result.axis,
                  "dropped_cards": list(deck.dropped)}
    (out / "provenance.json").write_text(json.dumps(provenance, indent=1, default=str) + "\n")
    return result


# --------------------------------------------------------------------------------------------- VACASK translation

def vacask_circuit(deck: SpiceDeck) -> Circuit:
    """The deck's circuit as `cosim.spice.elements`, which render for VACASK: R, C, L; V and I with DC, AC
    (magnitude), PULSE, SIN, PWL; D with ``.model NAME d(...)``. Any other card is refused by name."""
    if deck.circuit.includes:
        raise NetlistError(f"{deck.path}: the VACASK translation reads no .include files (ngspice netlists); "
                           "run the deck on ngspice")
    elements = []
    for card in deck.cards:
        words = re.sub(r"[(),]", " ", " ".join(card_words(card, deck.lines))).split()
        try:
            elements.append(_element(card, words, deck.analysis))
        except (ValueError, IndexError) as error:
            raise NetlistError(f"{card.origin}: cannot translate {card.word} for VACASK: {error}", card.text) from None
    return Circuit(netlist="", title=deck.circuit.title, elements=tuple(elements))


def _node(name: str) -> str:
    """ngspice's node names are case-insensitive, VACASK's are not; "gnd" is ngspice's name for ground too."""
    name = name.lower()
    return "0" if name == "gnd" else name


def _element(card: Card, words: list[str], analysis: Analysis | None):
    """The element of one card (`words` without parentheses and commas)."""
    kinds = {"R": Resistor, "C": Capacitor, "L": Inductor, "V": VoltageSource, "I": CurrentSource, "D": Diode}
    if card.word == ".model" and words[2].lower() == "d":
        parameters = re.findall(r"(\w+)\s*=\s*([^\s=]+)", " ".join(words[3:]))
        if len(parameters) != " ".join(words[3:]).count("="):
            raise ValueError("parameters must be name=value")
        return Model(words[1].lower(), "d", tuple((key.lower(), spice_number(value)) for key, value in parameters))
    if card.kind != "element" or card.word not in kinds:
        raise ValueError("VACASK translation knows R, C, L, V, I, D and .model NAME d(...) cards only")
    name, nodes, rest = words[0], [_node(node) for node in words[1:3]], words[3:]
    if card.word in "RCL":
        if len(rest) != 1:
            raise ValueError(f"expected '{card.word}NAME N1 N2 VALUE', got {len(rest)} values")
        return kinds[card.word](name, *nodes, spice_number(rest[0]))
    if card.word == "D":
        if not 1 <= len(rest) <= 2:
            raise ValueError("expected 'DNAME ANODE CATHODE MODEL [AREA]'")
        area = rest[1].lower().removeprefix("area=") if len(rest) == 2 else None
        return Diode(name, *nodes, rest[0].lower(), None if area is None else spice_number(area))
    return kinds[card.word](name, *nodes, **_source(rest, analysis))


def _source(words: list[str], analysis: Analysis | None) -> dict:
    """dc, ac and waveform of an independent source's values ("DC 0 AC 1 PULSE 0 1 ...", parentheses removed)."""
    fields: dict = {}
    k = 0
    while k < len(words):
        word = words[k].lower()
        if k == 0 and _NUMBER.fullmatch(word):
            fields["dc"], k = spice_number(word), 1
        elif word in ("dc", "ac"):
            fields[word], k = spice_number(words[k + 1]), k + 2
            if word == "ac" and k < len(words) and _NUMBER.fullmatch(words[k]):
                if spice_number(words[k]) != 0:
                    raise ValueError("an AC phase other than 0 is not supported")
                k += 1
        elif word in ("pulse", "sin", "pwl"):
            values = []
            k += 1
            while k < len(words) and _NUMBER.fullmatch(words[k]):
                values.append(spice_number(words[k]))
                k += 1
            fields["waveform"] = _waveform(word, values, analysis)
        else:
            raise ValueError(f"source value {words[k]!r} is not supported (DC, AC, PULSE, SIN, PWL)")
    return fields


def _waveform(kind: str, values: list[float], analysis: Analysis | None):
    """A waveform with SPICE's defaults, which depend on the transient's step and stop time."""
    step, stop = (analysis.step, analysis.stop) if isinstance(analysis, Tran) else (1.0, 1.0)
    if kind == "pwl":
        if len(values) % 2:
            raise ValueError("PWL needs (time, value) pairs")
        return Pwl(tuple(zip(values[::2], values[1::2])))
    if kind == "sin":
        offset, amplitude, *more = values
        frequency, delay, damping, phase = (more + [1 / stop, 0.0, 0.0, 0.0][len(more):])[:4]
        return Sine(offset, amplitude, frequency or 1 / stop, delay, damping, phase)
    if len(values) > 7:
        raise ValueError("PULSE takes at most 7 values (no pulse count)")
    initial, pulsed, *more = values
    delay, rise, fall, width, period = (more + [0.0, 0.0, 0.0, None, None][len(more):])[:5]
    # ngspice: a rise or fall time of 0 is the transient's step; a missing width or period, its stop time
    return Pulse(initial, pulsed, delay, rise or step, fall or step, width, period)
