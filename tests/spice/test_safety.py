"""Foreign netlists must not run code or read files (`cosim.spice.safety`), checked against the real simulators.

Every refused variant below is also run on the real simulator with a harmless payload (a command touching a
file in a temporary folder, an include or a library in it) to prove it is what the simulator takes for the
dangerous card: the tests would fail if a variant were refused for the wrong reason or not at all.
"""
from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import pytest

from cosim.spice import Circuit, NetlistError, Op, SimError, SimJob, Tran, run
from cosim.spice.elements import Resistor, VoltageSource
from cosim.spice.safety import check_netlist, check_vacask
from cosim.spice.veriloga import locate_tool

ROOT = Path(__file__).parents[2]
VACASK_MODULES = Path(locate_tool("vacask")).parent.parent / "lib" / "vacask" / "mod"


# ------------------------------------------------------------------------------------------------- ngspice

def run_allowed(job: SimJob) -> None:
    """Run a job that may fail once its dangerous card has run (a deck turned into commands has no circuit)."""
    try:
        run(job)
    except SimError:
        pass


def ngspice_job(body: str, allow_shell: bool, **circuit) -> SimJob:
    """An operating point of a 1 V source on 1 kOhm around `body`."""
    return SimJob(Circuit(f"V1 in 0 1\nR1 in 0 1k\n{body}", **circuit), Op(), allow_shell=allow_shell)


@pytest.mark.parametrize("card", [".control;", ".controlx"])
def test_glued_control_card_does_not_run_its_shell_command(tmp_path: Path, card: str):
    marker = tmp_path / "marker"
    body = f"{card}\nshell touch {marker}\n.endc"
    with pytest.raises(NetlistError, match=r"'shell' at netlist line 4"):
        run(ngspice_job(body, allow_shell=False))
    assert not marker.exists()
    run(ngspice_job(body, allow_shell=True))
    assert marker.exists()  # what the refusal prevented


CONTROL_NAMES = [a + b for a, b in itertools.product(
    [".control", ".CONTROL", ".Control"], ["", "x", "1", ";", "$c", "//c", ";c", " $ c"])]
LEADING_BLANKS = ["", "  ", "\t", " \t "]
TITLES = ["*ng_script", "*NG_SCRIPT x", "*ng_scriptfoo"]


def ngspice_shell_variants(marker: Path) -> list[tuple[str, dict]]:
    """(body, extra Circuit fields) that make ngspice run `touch marker`, written every way it reads them (each
    card name once, behind a different run of leading blanks in turn)."""
    command = f"shell touch {marker}"
    blanks = itertools.cycle(LEADING_BLANKS)
    variants = [(f"{next(blanks)}{name}\n{command}\n.endc", {}) for name in CONTROL_NAMES]
    variants += [(f"{blank}*#{space}{command}", {}) for blank in LEADING_BLANKS for space in ("", " ")]
    variants += [(command, {"title": title}) for title in TITLES]
    variants += [(f"{card} {title}\n{command}", {}) for card, title in zip((".title", ".TITLE", "  .Title"), TITLES)]
    return variants


@pytest.mark.parametrize("blank", LEADING_BLANKS, ids=repr)
def test_every_ngspice_control_card_name_is_refused_behind_any_blanks(blank: str):
    for name in CONTROL_NAMES:
        with pytest.raises(NetlistError, match=r"refused \.control section at netlist line 3"):
            check_netlist([("V1 in 0 1", "netlist line 1"), ("* comment", "netlist line 2"),
                           (blank + name, "netlist line 3"), ("set x = 1", "netlist line 4")], allow_shell=False)


def test_every_ngspice_control_variant_is_refused_and_really_runs_commands(tmp_path: Path):
    for number, (body, fields) in enumerate(ngspice_shell_variants(tmp_path / "marker")):
        marker = tmp_path / f"marker{number}"
        body = body.replace(str(tmp_path / "marker"), str(marker))
        with pytest.raises(NetlistError, match="allow_shell"):
            run(ngspice_job(body, allow_shell=False, **fields))
        assert not marker.exists(), body
        run_allowed(ngspice_job(body, allow_shell=True, **fields))
        assert marker.exists(), f"ngspice did not run the command of {body!r}: not a dangerous variant"


PROBE_VOLTS = 4.25
"""The value of the probe source a variant's file defines: seeing it in the result proves the file was read."""


def ngspice_file_variants(folder: Path) -> list[str]:
    """Bodies that make ngspice read a file in `folder` (one defining V(probe) = PROBE_VOLTS)."""
    (folder / "probe.cir").write_text(f"Vprobe probe 0 {PROBE_VOLTS}\n")
    (folder / "probe.lib").write_text(f".lib sec\nVprobe probe 0 {PROBE_VOLTS}\n.endl sec\n")
    (folder / "probe.data").write_text(f"0 {PROBE_VOLTS}\n1 {PROBE_VOLTS}\n")
    include, library, data = (folder / name for name in ("probe.cir", "probe.lib", "probe.data"))
    source = "Aprobe %v([probe]) src\nRprobe probe 0 1k\n"
    variants = [f"{blank}{card} {include}" for card in (".include", ".INC", ".inc", ".Include")
                for blank in LEADING_BLANKS]
    variants += [f"{blank}{card} {library} sec" for card in (".lib", ".LIB") for blank in LEADING_BLANKS]
    scale = "amploffset=[0] amplscale=[1]"
    variants += [
        source + f'.model src filesource ({scale} file="{data}")',
        source + f'.MODEL src FILESOURCE ({scale} FILE="{data}")',
        source + f'.model src filesource ({scale}\n* a comment between the card and its continuation\n+ file="{data}")',
        source + f'.model src filesource ({scale} \\\\\nfile="{data}")',
        source + f'.model src filesource ({scale} \\\\\n\nfile="{data}")',
        source + f'.model src \\\\\nfilesource ({scale} file="{data}")',  # each line alone looks harmless
        source + f'.model src\n* comment\n+ filesource ({scale} file="{data}")',
    ]
    return variants


def test_every_ngspice_file_variant_is_refused_and_really_reads_the_file(tmp_path: Path):
    for body in ngspice_file_variants(tmp_path):
        with pytest.raises(NetlistError, match="allow_shell"):
            run(ngspice_job(body, allow_shell=False))
        result = run(SimJob(Circuit(f"V1 in 0 1\nR1 in 0 1k\n{body}"), Tran(step=1e-4, stop=1e-3),
                            allow_shell=True))
        assert result["v(probe)"][-1] == pytest.approx(PROBE_VOLTS), f"ngspice did not read the file of {body!r}"


@pytest.mark.parametrize("body, refused", [
    ("V1 in 0 1\n.model st d_state", "model reading a file"),  # d_state reads state.txt when no file is named
    ("V1 in 0 1\n.model dn numd", "model reading a file"),
    ("V1 in 0 1\n.csparam x=1", r"refused \.csparam at netlist line 2"),
    ("V1 in 0 1\n.endc", r"refused \.endc"),
    ("V1 in 0 1\n!touch x", "starts no SPICE card"),
    ("V1 in 0 1\n@ ends the deck here", "starts no SPICE card"),
    ("V1 in 0 1\n$ shell comment", "starts no SPICE card"),
])
def test_other_cards_outside_the_allow_list_are_refused(body: str, refused: str):
    lines = [(text, f"netlist line {n}") for n, text in enumerate(body.splitlines(), 1)]
    with pytest.raises(NetlistError, match=refused):
        check_netlist(lines, allow_shell=False)


def shipped(pattern: str) -> list[Path]:
    return sorted((ROOT / "netlists").glob(pattern))


@pytest.mark.parametrize("path", [p for p in shipped("*.lib") if "vacask" not in p.name], ids=lambda p: p.name)
def test_shipped_ngspice_netlists_pass_clean(path: Path):
    check_netlist([(text, f"{path}:{n}") for n, text in enumerate(path.read_text().splitlines(), 1)],
                  allow_shell=False)


@pytest.mark.parametrize("path", shipped("tb/*.cir"), ids=lambda p: p.name)
def test_shipped_testbenches_pass_clean_up_to_their_control_section(path: Path):
    lines = [(text, f"{path}:{n}") for n, text in enumerate(path.read_text().splitlines(), 1)
             if not text.lower().startswith((".include", ".tran", ".end"))]
    with pytest.raises(NetlistError, match=r"refused control command 'meas'|refused \.control section") as caught:
        check_netlist(lines, allow_shell=False)
    assert caught.value.line.lower().startswith((".control", "meas"))


# -------------------------------------------------------------------------------------------------- VACASK

def vacask(folder: Path, body: str) -> str:
    """Run the real `vacask` in `folder` on a netlist of a title line, a 1 V source and `body`; its output."""
    (folder / "probe.sim").write_text(f"probe\nmodel vs vsource\nvb (b 0) vs dc=1\n{body}\n")
    done = subprocess.run([str(locate_tool("vacask")), "--quiet-progress", "probe.sim"], cwd=folder,
                          capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


ANALYSIS = "\n  analysis op1 op\nendc"
"""Body of a control block: an operating point, whose rawfile op1.raw proves the block ran."""
VACASK_BEFORE = ["", "  ", "\t", "\r", "/* c */", "/*\n*/", "\\\n", " /* c */\t"]
"""What VACASK skips at the start of a line before a keyword: blanks, carriage returns, comments, escaped
newlines (VACASK is case-sensitive: `CONTROL` is an identifier, not a keyword)."""
VACASK_AFTER = ["", " ", "//c", "/* c */", "\t// c"]


def vacask_dangerous_variants(folder: Path) -> list[tuple[str, str]]:
    """(body, file the real VACASK creates when it takes the body for the dangerous statement)."""
    library = folder / "lib" / "resistor.osdi"
    library.parent.mkdir()
    shutil.copy(VACASK_MODULES / "resistor.osdi", library)
    (folder / "inc.sim").write_text("control" + ANALYSIS + "\n")
    use_resistor = "\nmodel rr resistor\nr1 (a 0) rr r=1k\nv1 (a 0) vs dc=1\ncontrol" + ANALYSIS
    octal = "".join(f"\\{ord(ch):03o}" if ch == "/" else ch for ch in str(library))
    variants = [(f"{before}control{after}{ANALYSIS}", "op1.raw") for before in VACASK_BEFORE
                for after in VACASK_AFTER]
    variants += [(f'{before}embed{gap}"m.txt"{gap}"hi"', "m.txt") for before in VACASK_BEFORE
                 for gap in ("", " ", "/**/", "\\\n")]
    include = folder / "inc.sim"
    variants += [(f"{before}include{gap}{path}", "op1.raw") for before in VACASK_BEFORE for gap in ("", " ")
                 for path in (f'"{include}"', f'"\\057{include.relative_to("/")}"')]
    variants += [(f"{before}load{gap}{path}{use_resistor}", "op1.raw") for before in VACASK_BEFORE
                 for gap in ("", " ", "/**/", "\\\n")
                 for path in (f'"{library}"', f'"{octal}"', f"<<<X\n{library}>>>X", '"\\056\\056/lib/resistor.osdi"')]
    return variants


def vacask_lines(body: str) -> list[tuple[str, str]]:
    return [(text, f"netlist line {n}") for n, text in enumerate(body.split("\n"), 1)]


def test_every_vacask_variant_is_refused_and_really_is_the_dangerous_statement(tmp_path: Path):
    for number, (body, created) in enumerate(vacask_dangerous_variants(tmp_path)):
        with pytest.raises(NetlistError, match="refused VACASK statement"):
            check_vacask(vacask_lines(body), allow_shell=False)
        work = tmp_path / f"work{number}"
        work.mkdir()
        log = vacask(work, body)
        assert (work / created).exists(), f"VACASK did not act on {body!r}: not a dangerous variant\n{log}"


@pytest.mark.parametrize("statement", [
    'load"/tmp/cosim-refused/lib.osdi"', 'include"/etc/hostname"', "control//c\n  abort always\nendc"])
def test_glued_vacask_statements_are_refused_before_vacask_runs(statement: str):
    job = SimJob(Circuit(netlist=statement, elements=(VoltageSource("V1", "a", "0", dc=1.0),
                                                     Resistor("R1", "a", "0", 1e3))), Op(), simulator="vacask")
    with pytest.raises(NetlistError, match=r"refused VACASK statement '(load|include|control)' at netlist line 1"):
        run(job)


def test_refused_vacask_include_would_have_read_the_file(tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the_secret_text_of_this_file\n")
    assert "the_secret_text_of_this_file" in vacask(tmp_path, f'include"{secret}"')  # VACASK quotes what it read
    with pytest.raises(NetlistError, match="refused VACASK statement 'include'"):
        check_vacask(vacask_lines(f'include"{secret}"'), allow_shell=False)


@pytest.mark.parametrize("body, refused", [
    ("r2 (a 0) r r=1k\nx 1", "'x' at netlist line 2: not an instance"),
    ("@if 1\nr2 (a 0) r r=1k\n@end", "'@if'"),
    ('r2 (a 0) r s="never ends', 'unterminated string "'),
    ("/* never ends\ncontrol", "unterminated comment"),
    ('r2 (a 0) r s=<<<X\n>>>>X /*\n>>>X\ncontrol\nendc\n// */', "'control' at netlist line 4"),
    ("r2 (a 0) r r=1 <<<<X\ncontrol\n>>>X", "'control' at netlist line 2"),
    ("r2 (a\ncontrol\n0) r r=1k", "'control' at netlist line 2"),
])
def test_vacask_tokeniser_corner_cases(body: str, refused: str):
    with pytest.raises(NetlistError, match=refused):
        check_vacask(vacask_lines(body), allow_shell=False)


@pytest.mark.parametrize("body", [
    "r2 (a\n b) r r=1k", "'odd$name' (a 0) r r=1k", 'load "spice/diode.osdi"', "r2 (a 0) r s=\"a\\\"b\" // control",
    "/* control */ r2 (a 0) r r=1k", "global a\nground 0", "CONTROL (a 0) r r=1k"])
def test_vacask_text_that_is_no_statement_passes(body: str):
    check_vacask(vacask_lines(body), allow_shell=False)


@pytest.mark.parametrize("path", shipped("*_vacask.lib"), ids=lambda p: p.name)
def test_shipped_vacask_netlists_pass_clean(path: Path):
    check_vacask([(text, f"{path}:{n}") for n, text in enumerate(path.read_text().split("\n"), 1)],
                 allow_shell=False)


def test_vacask_refusal_names_the_include_file_and_line(tmp_path: Path):
    include = tmp_path / "sneaky.lib"
    include.write_text("// harmless\nr9 (a 0) cosim_resistor r=1k\n  embed \"x\" \"y\"\n")
    job = SimJob(Circuit(netlist="", includes=(str(include),), elements=(VoltageSource("V1", "a", "0", dc=1.0),
                                                                          Resistor("R1", "a", "0", 1e3))),
                 Op(), simulator="vacask")
    with pytest.raises(NetlistError, match=f"'embed' at {include}:3"):
        run(job)
