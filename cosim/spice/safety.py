"""Netlists from elsewhere are data, not programs.

ngspice's control language can run shell commands (``shell``, ``!``), load and source other files, change
directory and write files anywhere (``write``, ``wrdata``, ``print > file``...); all of it lives in
``.control ... .endc`` sections. Netlist cards can also read arbitrary files (``.include``, ``.lib``, XSPICE
models with a ``file=`` parameter). Unless the job sets ``allow_shell``, `check_netlist` refuses all of these
with a `NetlistError` naming the line and where it came from. Files a circuit legitimately needs are listed in
`Circuit.includes`, which the back end reads and inlines itself.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from cosim.spice.job import NetlistError

RISKY_CONTROL_COMMANDS = (
    "shell", "system", "exec", "load", "source", "cd", "setcs", "write", "wrdata", "wrs2p", "print", "hardcopy",
    "codemodel", "pre_osdi", "osdi", "use", "edit", "listing", "rusage", "quit", "exit",
)
"""Control commands named in the refusal message when found in a refused ``.control`` section: they run
programs, read or write files, or end the simulator process."""

_FILE_CARD = re.compile(r"^\.(inc\w*|lib)\b", re.IGNORECASE)
_FILE_PARAMETER = re.compile(r"\b\w*file\w*\s*=", re.IGNORECASE)


def join_continuations(lines: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """SPICE cards: `(text, origin)` lines with ``+`` continuation lines appended to the card they continue."""
    cards: list[tuple[str, str]] = []
    for text, origin in lines:
        if text.lstrip().startswith("+") and cards:
            card, card_origin = cards[-1]
            cards[-1] = (card + " " + text.lstrip()[1:], card_origin)
        else:
            cards.append((text, origin))
    return cards


def _first_word(card: str) -> str:
    words = card.strip().lower().split()
    return words[0] if words else ""


def check_netlist(lines: Iterable[tuple[str, str]], *, allow_shell: bool) -> None:
    """Refuse netlist lines that would run programs or touch files, unless `allow_shell`.

    `lines` are `(text, origin)` pairs; `origin` says where the text came from (e.g. ``"netlist line 4"``,
    ``"netlists/felif.cir:12"``) and is quoted in the error.
    """
    if allow_shell:
        return
    cards = join_continuations(lines)
    for index, (card, origin) in enumerate(cards):
        word = _first_word(card)
        if word == ".control":
            _refuse_control(cards[index:], origin, card)
        if word.startswith("!"):
            raise NetlistError(f"refused shell escape at {origin} (set SimJob.allow_shell to run it)", card)
        if _FILE_CARD.match(word):
            raise NetlistError(
                f"refused {word} at {origin}: a netlist may not read files it names itself; list the file in "
                "Circuit.includes instead (or set SimJob.allow_shell)", card)
        if word == ".model" and _FILE_PARAMETER.search(card):
            raise NetlistError(
                f"refused model reading a file at {origin}: pass the data as parameters or set "
                "SimJob.allow_shell", card)


def _refuse_control(cards: list[tuple[str, str]], control_origin: str, control_card: str) -> None:
    """Raise for a ``.control`` section, naming its riskiest command when there is one."""
    for card, origin in cards[1:]:
        word = _first_word(card)
        if word == ".endc":
            break
        if word.startswith("!") or word in RISKY_CONTROL_COMMANDS:
            raise NetlistError(
                f"refused control command {word!r} at {origin}: it can run programs or read/write files "
                "(set SimJob.allow_shell to run it)", card)
    raise NetlistError(
        f"refused .control section at {control_origin}: control sections can run programs and write files; "
        "the job's analysis comes from SimJob.analysis (set SimJob.allow_shell to run it anyway)", control_card)
