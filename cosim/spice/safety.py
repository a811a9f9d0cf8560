"""Netlists from elsewhere are data, not programs.

Both simulators can run programs or touch files from netlist text:

- ngspice runs control-language commands (``shell``, ``write``, ``source``...) from ``.control ... .endc``
  sections and from ``*#`` lines, and takes every line for a command when the title starts with
  ``*ng_script``; ``.include`` and ``.lib`` read files, and some XSPICE / CIDER models read or write files
  (``filesource``, ``d_source``, ``d_state``, ``table2d``, ``numd``..., or a ``file=`` parameter);
- VACASK runs Python from ``control`` blocks, writes files with ``embed``, reads any file while parsing with
  ``include`` and loads any shared library with ``load``.

Unless a job sets ``allow_shell``, netlist text is split into cards (ngspice) or statements (VACASK) the way the
simulator itself splits it, and only what cosim writes, plus the element and model cards of a plain circuit, is
accepted; anything else raises a `NetlistError` naming the card, its line and where the line came from (e.g.
``netlist line 4``, ``netlists/x.lib:12``). Files a circuit needs are listed in `Circuit.includes`, which the
back end reads and inlines itself, and Verilog-A sources in `Circuit.verilog_a`.

How each simulator splits a line (checked against ngspice 39 and VACASK 0.3 in ``tests/spice/test_safety.py``):

- ngspice strips leading blanks; ``*`` starts a comment line, except ``*#``; ``+`` continues the previous card,
  across comment lines, and so does any line after one ending in ``\\\\``; a dot card is recognised by prefix,
  so its name is taken as the letters after the dot up to the first non-letter (``.controlx``, ``.CONTROL;``,
  ``.control$c`` are all ``.control``);
- VACASK's lexer is case-sensitive; a statement keyword is an identifier at the start of a line, after blanks,
  ``\\r``, comments (``//``, ``/* */``) and escaped newlines, however it is glued to what follows
  (``control//c``, ``load"x.osdi"``); strings take ``\\`` escapes (``"\\057"`` is ``"/"``) and ``<<<MARK``
  strings run over lines; a newline inside parentheses does not end a statement.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cosim.spice.job import NetlistError

_HOW_TO_ALLOW = "set SimJob.allow_shell to run it anyway"

# --------------------------------------------------------------------------------------------------- ngspice

NGSPICE_CARDS = frozenset({
    ".title", ".subckt", ".ends", ".model", ".param", ".func", ".ic", ".nodeset", ".options", ".option", ".opt",
    ".global", ".save", ".temp", ".op", ".dc", ".ac", ".tran", ".end",
})
"""Dot cards accepted without `SimJob.allow_shell`: those cosim writes, those of the shipped netlists and those of a
plain circuit. Any line starting with a letter is an element card and is accepted too."""

PREFIX_CARDS = (".control", ".endc", ".include", ".inc", ".lib", ".title")
"""Cards ngspice recognises by prefix: ``.controlx`` is ``.control`` to it."""

FILE_MODELS = ("filesource", "d_source", "d_state", "d_process", "d_cosim", "table2d", "table3d", "numd", "nbjt",
               "numos", "ndev")
"""Model types that read or write files, run programs or open network connections (XSPICE file sources and
tables, CIDER's numerical devices, NDEV): refused in ``.model`` cards."""

RISKY_CONTROL_COMMANDS = (
    "shell", "system", "exec", "load", "source", "cd", "setcs", "write", "wrdata", "wrs2p", "print", "hardcopy",
    "codemodel", "pre_osdi", "osdi", "use", "edit", "listing", "rusage", "quit", "exit",
)
"""Control commands named in the refusal of a ``.control`` section: they run programs, read or write files, or end
the simulator process."""

# ngspice skips every character up to ' ' at the start of a line; Python's isspace() counts a few more
_BLANKS = "".join(char for char in map(chr, range(0x3001)) if char <= " " or char.isspace())
_LETTERS = re.compile(r"[A-Za-z]*")
_FILE_PARAMETER = re.compile(r"\w*file\w*\s*=", re.IGNORECASE)
_FILE_MODEL = re.compile(rf"\b({'|'.join(FILE_MODELS)})\b", re.IGNORECASE)
_COMFILE_TITLE = re.compile(r"\*\s*ng_script", re.IGNORECASE)


@dataclass(frozen=True)
class Card:
    """One ngspice card: a line and the continuation lines ngspice appends to it."""

    kind: str
    """dot (a dot card), element, command (a ``*#`` line) or unknown."""
    word: str
    """".model", ".controlx"... (the dot and the letters after it up to the first non-letter, lower case), the
    element letter ("R"), "*#", or the line's first word for an unknown line."""
    text: str
    """The line with its continuation lines, joined by spaces."""
    origin: str
    """Where the first line came from (e.g. "netlist line 4")."""
    index: int
    """Position of the first line in the checked lines."""
    lines: tuple[int, ...]
    """Positions of all its lines: the first and its continuation lines."""

    @property
    def name(self) -> str:
        """The card as ngspice takes it (".control" for ".controlx", see `PREFIX_CARDS`)."""
        return next((card for card in PREFIX_CARDS if self.word.startswith(card)), self.word)


def _ngspice_line(text: str) -> tuple[str, str]:
    """(kind, word) of one line: kind is blank, comment, continuation, command, dot, element or unknown."""
    line = text.lstrip(_BLANKS)
    if not line:
        return "blank", ""
    if line.startswith("*#"):  # ngspice runs the rest of a *# line as a control command
        return "command", "*#"
    if line[0] in "*+":
        return ("comment" if line[0] == "*" else "continuation"), ""
    if line[0] == ".":
        return "dot", "." + _LETTERS.match(line, 1)[0].lower()
    if line[0].isascii() and line[0].isalpha():
        return "element", line[0].upper()
    return "unknown", line.split()[0]


def _continues(text: str) -> bool:
    """Whether ngspice makes the next line a continuation of this one (shell style: ends with two backslashes)."""
    line = text.lstrip(_BLANKS)
    return line[:1] not in ("*", "$") and line.rstrip().endswith("\\\\")


def ngspice_cards(lines: Sequence[tuple[str, str]]) -> list[Card]:
    """The cards of `lines` ((text, origin) pairs) as ngspice reads them, without comment and blank lines.

    Every line that is not a comment, blank or ``+`` line starts a card of its own, even where ngspice would
    append it to the previous card after a line ending in two backslashes: each line is judged alone as well as
    in the card it continues.
    """
    kinds = [_ngspice_line(text) for text, _ in lines]
    cards = []
    for index, (text, origin) in enumerate(lines):
        kind, word = kinds[index]
        if kind in ("blank", "comment", "continuation"):
            continue
        members, backslash = [index], _continues(text)
        for following in range(index + 1, len(lines)):
            following_kind, following_word = kinds[following]
            skipped = following_kind == "comment" or following_word[:1] in ("#", "$")
            if following_kind == "blank" or (skipped and not backslash):
                continue  # ngspice's stitching skips these between a card and its + lines
            if following_kind != "continuation" and not backslash:
                break
            members.append(following)
            backslash = _continues(lines[following][0])
        cards.append(Card(kind, word, " ".join(lines[k][0] for k in members), origin, index, tuple(members)))
    return cards


def check_netlist(lines: Iterable[tuple[str, str]], *, allow_shell: bool) -> None:
    """Refuse ngspice cards that would run programs or touch files, unless `allow_shell` (see the module docstring).

    `lines` are (text, origin) pairs, one per deck line; `origin` says where the text came from and is quoted in
    the error.
    """
    if allow_shell:
        return
    lines = list(lines)
    for card in ngspice_cards(lines):
        _check_card(card, lines)


def _check_card(card: Card, lines: list[tuple[str, str]]) -> None:
    if card.kind == "element":
        return
    name = card.name
    if name == ".control":
        _refuse_control(card, lines)
    if card.kind == "command":
        raise NetlistError(
            f"refused control line '*#' at {card.origin}: ngspice runs the rest of the line as a command "
            f"({_HOW_TO_ALLOW})", card.text)
    if card.kind == "unknown":
        raise NetlistError(
            f"refused line at {card.origin}: {card.word!r} starts no SPICE card (a card starts with a letter, "
            f"'.', '*' or '+') ({_HOW_TO_ALLOW})", card.text)
    if name in (".include", ".inc", ".lib"):
        raise NetlistError(
            f"refused {name} at {card.origin}: a netlist may not read files it names itself; list the file "
            f"in Circuit.includes instead ({_HOW_TO_ALLOW})", card.text)
    if card.word not in NGSPICE_CARDS:
        raise NetlistError(
            f"refused {card.word} at {card.origin}: cosim accepts only the dot cards "
            f"{', '.join(sorted(NGSPICE_CARDS))} ({_HOW_TO_ALLOW})", card.text)
    if name == ".model" and (_FILE_PARAMETER.search(card.text) or _FILE_MODEL.search(card.text)):
        raise NetlistError(
            f"refused model reading a file at {card.origin}: file parameters and the models "
            f"{', '.join(FILE_MODELS)} read or write files; pass the data as parameters ({_HOW_TO_ALLOW})",
            card.text)
    if name == ".title" and _COMFILE_TITLE.search(card.text):
        raise NetlistError(
            f"refused title at {card.origin}: a title starting with *ng_script makes ngspice run every line as a "
            f"command ({_HOW_TO_ALLOW})", card.text)


def _refuse_control(control: Card, lines: list[tuple[str, str]]) -> None:
    """Raise for a ``.control`` section, naming its riskiest command when there is one."""
    for text, origin in lines[control.index + 1:]:
        if _ngspice_line(text)[1] == ".endc":
            break
        words = text.split()
        word = words[0].lower() if words else ""
        if word.startswith("!") or word in RISKY_CONTROL_COMMANDS:
            raise NetlistError(
                f"refused control command {word!r} at {origin}: it can run programs or read/write files "
                f"({_HOW_TO_ALLOW})", text)
    raise NetlistError(
        f"refused .control section at {control.origin}: control sections can run programs and write files; "
        f"the job's analysis comes from SimJob.analysis ({_HOW_TO_ALLOW})", control.text)


# ---------------------------------------------------------------------------------------------------- VACASK

VACASK_KEYWORDS = frozenset({
    "model", "global", "ground", "load", "subckt", "ends", "parameters", "embed", "control", "endc", "save",
    "sweep", "analysis", "include", "section", "endsection",
})
"""Every word VACASK's lexer reads as a statement keyword at the start of a line (its parser's token table and
its lexer's directives); any other identifier there starts an instance, ``name (nodes) master parameters``."""

VACASK_STATEMENTS = frozenset({"model", "subckt", "ends", "parameters", "load", "global", "ground"})
"""Keywords accepted without `SimJob.allow_shell`; ``load`` only of a library name inside the work folder or
VACASK's own library."""

_IDENTIFIER = re.compile(r"[A-Za-z_$][0-9A-Za-z_$]*")
_QUOTED_IDENTIFIER = re.compile(r"'[0-9A-Za-z_$:.()]+'")
_LONG_STRING = re.compile(r"<<<([A-Za-z0-9_]+)[\r\t ]*\n")
_LONG_STRING_END = re.compile(r">>>([A-Za-z0-9_]+)|>{1,3}|[^>\n]+|\n")
# Numbers (with units; a list of them with signs and commas, such as a PWL wave, is one token: a crossbar's
# row sources are 80 % of its netlist), operators, anything else.
_OTHER = re.compile(r"[0-9.][0-9A-Za-z_.]*(?:[ \t]*[-+,][ \t]*[0-9.][0-9A-Za-z_.]*)*|.", re.DOTALL)
_LIBRARY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*(/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*")


@dataclass(frozen=True)
class Token:
    """One VACASK token."""

    kind: str
    """word (identifier), quoted (identifier in single quotes), directive (@if...), string, long_string, other."""
    text: str
    """The token as written (a string without its quotes)."""
    line: int
    """0-based line of its first character."""
    may_start: bool
    """It may start a statement: first on its line, counting every newline (also those in parentheses)."""
    starts: bool
    """It starts a statement as VACASK reads it (first after a newline outside parentheses)."""


class _Unterminated(Exception):
    def __init__(self, what: str, line: int):
        self.what, self.line = what, line


def vacask_tokens(text: str) -> list[Token]:
    """The tokens of VACASK netlist text, following VACASK's lexer; raises `_Unterminated` for a comment or string
    that does not end."""
    tokens: list[Token] = []
    i, line, depth = 0, 0, 0
    may_start = starts = True
    while i < len(text):
        char = text[i]
        if char == "\n":
            line, i, may_start = line + 1, i + 1, True
            starts = starts or depth <= 0
        elif char in " \t\r":
            i += 1
        elif text.startswith("\\\n", i):  # escaped newline: no token, the statement goes on
            line, i, may_start = line + 1, i + 2, True
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise _Unterminated("comment /*", line)
            newlines = text.count("\n", i, end)
            line, i, may_start = line + newlines, end + 2, may_start or newlines > 0
        else:
            kind, end, value = _vacask_token(text, i, line)
            tokens.append(Token(kind, value, line, may_start, starts))
            if kind == "other":
                depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(value, 0)
            line += text.count("\n", i, end)
            i, may_start, starts = end, False, False
    return tokens


def _vacask_token(text: str, i: int, line: int) -> tuple[str, int, str]:
    """(kind, end, value) of the token at `i`."""
    char = text[i]
    if char == '"':
        end = i + 1
        while end < len(text) and text[end] not in '"\n':
            end += 2 if text[end] == "\\" else 1  # a backslash escapes the next character, a newline too
        if end >= len(text) or text[end] == "\n":
            raise _Unterminated('string "', line)
        return "string", end + 1, text[i + 1:end]
    if long := _LONG_STRING.match(text, i):
        end = long.end()
        while part := _LONG_STRING_END.match(text, end):
            end = part.end()
            if part[1] == long[1]:
                return "long_string", end, text[long.end():part.start()]
        raise _Unterminated(f"string <<<{long[1]}", line)
    if text.startswith("<<", i):  # one token: '<<<' after it is no string start
        return "other", i + 2, "<<"
    for kind, pattern in (("word", _IDENTIFIER), ("quoted", _QUOTED_IDENTIFIER)):
        if found := pattern.match(text, i):
            return kind, found.end(), found[0]
    if char == "@":
        directive = re.compile(r"@[A-Za-z]*").match(text, i)
        return "directive", directive.end(), directive[0]
    other = _OTHER.match(text, i)
    return "other", other.end(), other[0]


def check_vacask(lines: Sequence[tuple[str, str]], *, allow_shell: bool) -> None:
    """Refuse VACASK statements that run programs or touch files, unless `allow_shell` (see the module docstring).

    `lines` are (text, origin) pairs: consecutive netlist lines (without the title line), read as one text, the
    way VACASK reads them; `origin` is quoted in the error.
    """
    if allow_shell:
        return
    lines = [(part, origin) for text, origin in lines for part in text.split("\n")]
    text = "\n".join(line for line, _ in lines)
    try:
        tokens = vacask_tokens(text)
    except _Unterminated as error:
        raise NetlistError(f"refused netlist text at {lines[error.line][1]}: unterminated {error.what} (it would "
                           "swallow the statements after it)", lines[error.line][0]) from None
    for k, token in enumerate(tokens):
        following = tokens[k + 1] if k + 1 < len(tokens) else None
        origin, line = lines[token.line][1], lines[token.line][0]
        if token.may_start and (token.kind == "directive" or (token.kind == "word" and token.text in VACASK_KEYWORDS
                                                              and token.text not in VACASK_STATEMENTS)):
            raise NetlistError(
                f"refused VACASK statement {token.text!r} at {origin}: control blocks run programs, embed writes "
                "files, include reads them; cosim accepts only instances and the statements "
                f"{', '.join(sorted(VACASK_STATEMENTS))}; the analysis comes from SimJob.analysis, files from "
                f"Circuit.includes and Verilog-A from Circuit.verilog_a ({_HOW_TO_ALLOW})", line)
        if token.may_start and token.kind == "word" and token.text == "load":
            if following is None or following.kind != "string" or not _LIBRARY_NAME.fullmatch(following.text):
                raise NetlistError(
                    f"refused VACASK statement 'load' at {origin}: only a plain relative library name such as "
                    'load "spice/diode.osdi" (no absolute path, "..", escape or expression) is accepted; list '
                    f"Verilog-A sources in Circuit.verilog_a ({_HOW_TO_ALLOW})", line)
        starts_instance = token.kind == "quoted" or (token.kind == "word" and token.text not in VACASK_KEYWORDS)
        if token.starts and starts_instance and (following is None or following.text != "("):
            raise NetlistError(
                f"refused VACASK statement {token.text!r} at {origin}: not an instance (name (nodes) master "
                f"parameters) nor one of the statements {', '.join(sorted(VACASK_STATEMENTS))} ({_HOW_TO_ALLOW})",
                line)
