"""Ordinary SPICE decks (`cosim.spice.deck`, `cosim simulate`) against `ngspice -b` on the same, unmodified deck.

Debian ships no example decks with ngspice (no /usr/share/doc/ngspice*/examples), so the decks below are written in
the style of the ngspice distribution's test decks: a title line, numeric nodes, lower-case cards, output cards
(.plot/.print), .options, and .end.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cosim.cli import main
from cosim.spice import Circuit, NetlistError, Op, SimJob, Tran, run
from cosim.spice.deck import deck_job, read_deck, spice_number
from cosim.spice.elements import Resistor, VoltageSource
from cosim.spice.vacask import read_rawfile

DECKS = {
    "rc_step.cir": """RC low-pass step response
r1 1 2 1k
c1 2 0 1u
vin 1 0 pulse(0 1 0.1m 1u 1u 2m 4m) ac 1
.options noacct
.tran 10u 5m
.plot tran v(2) i(vin)
.end
""",
    "diode_dc.cir": """diode forward characteristic
* the model card goes on over a continuation line
vin 1 0 dc 0
rs 1 2 100
d1 2 0 dmod
.model dmod d(is=1e-14 n=1.5
+ rs=10 cjo=2p)
.dc vin 0 2 0.02
.print dc v(2) i(vin)
.end
""",
    "lowpass_ac.cir": """second-order rc low-pass
V1 1 0 DC 0 AC 1
R1 1 2 10k
C1 2 0 1n
R2 2 3 10k
C2 3 0 1n
.AC DEC 10 1 1MEG
.PRINT AC V(3)
.END
""",
    "divider_op.cir": """resistive divider operating point
v1 1 0 5
r1 1 2 3k
r2 2 0 2k
r3 2 3 1k ; a dead end
.op
.end
""",
    "late_window.cir": """rc charging, kept from 1 ms on with a 2 us maximum step
vin 1 0 pwl(0 0 0.2m 1 1m 1 1.2m 0)
r1 1 2 1k
c1 2 0 0.5u
.tran 10u 2m 1m 2u
.end
""",
}


@pytest.fixture
def decks(tmp_path: Path) -> Path:
    for name, text in DECKS.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def ngspice_batch(deck: Path) -> dict[str, np.ndarray]:
    """Vectors of `ngspice -b -r` on `deck`, by lower-case name."""
    raw = deck.with_suffix(".raw")
    subprocess.run(["ngspice", "-b", "-r", str(raw), str(deck)], capture_output=True, timeout=120, check=True)
    plot, = read_rawfile(raw)
    return {name.lower(): plot.data[:, k] for k, name in enumerate(plot.names)}


@pytest.mark.parametrize("name", sorted(DECKS))
def test_cosim_simulate_agrees_with_ngspice_batch_on_the_same_deck(decks: Path, name: str):
    deck, out = decks / name, decks / f"{name}.out"
    assert main(["simulate", str(deck), "--out", str(out)]) == 0
    results = dict(np.load(out / "results.npz"))
    provenance = json.loads((out / "provenance.json").read_text())
    batch = ngspice_batch(deck)
    axis = provenance["axis"]
    first = next(iter(batch))  # ngspice's raw file names the sweep 'v-sweep', cosim the swept source
    expected = {(axis if axis and raw_name == first else raw_name): values for raw_name, values in batch.items()}
    assert set(results) == set(expected), f"{sorted(results)} vs {sorted(expected)}"
    for vector, values in expected.items():
        if vector == "frequency":  # ngspice -b writes the frequency as complex, its imaginary part uninitialised
            values = values.real
        np.testing.assert_allclose(results[vector].reshape(values.shape), values, rtol=1e-9, atol=1e-15,
                                   err_msg=vector)
    assert provenance["simulator"] == "ngspice" and provenance["deck"] == str(deck.resolve())


def test_deck_reads_like_spice(decks: Path):
    deck = read_deck(decks / "late_window.cir")
    assert deck.circuit.title == "rc charging, kept from 1 ms on with a 2 us maximum step"
    tran = deck.analysis
    assert (tran.step, tran.stop, tran.start, tran.max_step) == pytest.approx((10e-6, 2e-3, 1e-3, 2e-6))
    assert read_deck(decks / "rc_step.cir").dropped == (".plot tran v(2) i(vin)",)
    assert read_deck(decks / "lowpass_ac.cir").analysis.points_per_decade == 10
    assert [spice_number(text) for text in ("1.5k", "10ns", "2MEG", "3M", "1e-3", "25mil")] == pytest.approx(
        [1500.0, 1e-8, 2e6, 3e-3, 1e-3, 635e-6])


def test_errors_name_the_deck_line(tmp_path: Path):
    deck = tmp_path / "typo.cir"
    deck.write_text("typo\n* comment\nv1 1 0 1\nr1 1 0 1k\nq1 1 2\n.op\n.end\n")
    with pytest.raises(NetlistError, match="netlist line 5"):
        run(deck_job(deck))
    two = tmp_path / "two.cir"
    two.write_text("two analyses\nv1 1 0 1\nr1 1 0 1k\n.op\n.tran 1u 1m\n.end\n")
    with pytest.raises(NetlistError, match=f"2 analysis cards \\({two}:4, {two}:5\\)"):
        deck_job(two)


def test_include_resolves_in_the_deck_folder_and_refuses_outside(tmp_path: Path):
    folder = tmp_path / "deck"
    folder.mkdir()
    (folder / "models.lib").write_text("* diode model\n.model dmod d(is=1e-14)\n")
    (tmp_path / "outside.lib").write_text(".model dmod d(is=1e-14)\n")
    inside = folder / "inside.cir"
    inside.write_text("inside\n.include models.lib\nv1 1 0 0.6\nd1 1 0 dmod\n.op\n.end\n")
    circuit = Circuit.from_deck(inside)
    assert circuit.includes == (str((folder / "models.lib").resolve()),)
    assert run(deck_job(inside))["i(v1)"] < -1e-6  # the diode conducts: the model was read

    outside = folder / "outside.cir"
    outside.write_text("outside\n.include ../outside.lib\nv1 1 0 0.6\nd1 1 0 dmod\n.op\n.end\n")
    with pytest.raises(NetlistError, match=f"{outside}:2: .include ../outside.lib is {tmp_path / 'outside.lib'}, "
                                           "outside the deck's folder"):
        Circuit.from_deck(outside)
    assert Circuit.from_deck(outside, allow_outside=True).includes == (str(tmp_path / "outside.lib"),)
    assert main(["simulate", str(outside), "--out", str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out").exists()


def test_control_sections_of_a_deck_stay_refused_unless_allowed(tmp_path: Path):
    marker = tmp_path / "marker"
    deck = tmp_path / "control.cir"
    deck.write_text(f"control\nv1 1 0 1\nr1 1 0 1k\n.op\n.control\nshell touch {marker}\n.endc\n.end\n")
    assert main(["simulate", str(deck), "--out", str(tmp_path / "refused")]) == 1
    assert not marker.exists()
    assert main(["simulate", str(deck), "--out", str(tmp_path / "allowed"), "--allow-shell"]) == 0
    assert marker.exists()


def test_vacask_runs_the_translated_deck_like_ngspice(decks: Path):
    deck = decks / "rc_vacask.cir"
    deck.write_text(DECKS["rc_step.cir"].replace(".options noacct\n", ""))
    ngspice, vacask = (run(deck_job(deck, simulator=simulator)) for simulator in ("ngspice", "vacask"))
    assert vacask.axis == "time" and vacask.x[-1] == pytest.approx(5e-3)
    np.testing.assert_allclose(np.interp(ngspice.x, vacask.x, vacask["v(2)"]), ngspice["v(2)"], atol=2e-3)
    assert main(["simulate", str(decks / "diode_dc.cir"), "--simulator", "vacask", "--out", str(decks / "d")]) == 0


def test_vacask_translation_refuses_other_cards_by_name(decks: Path):
    with pytest.raises(NetlistError, match=r"rc_step.cir:5: cannot translate \.options for VACASK"):
        deck_job(decks / "rc_step.cir", simulator="vacask")
    deck = decks / "vcvs.cir"
    deck.write_text("vcvs\nv1 1 0 1\ne1 2 0 1 0 10\nr1 2 0 1k\n.op\n.end\n")
    with pytest.raises(NetlistError, match=r"vcvs.cir:3: cannot translate E for VACASK"):
        deck_job(deck, simulator="vacask")


@pytest.mark.parametrize("simulator", ["ngspice", "vacask"])
def test_numeric_node_names_work_on_both_back_ends(simulator: str):
    circuit = Circuit(netlist="", elements=(VoltageSource("V1", "1", "0", dc=1.0), Resistor("R1", "1", "2", 1e3),
                                            Resistor("R2", "2", "0", 1e3)))
    result = run(SimJob(circuit, Op(), outputs=("v(2)",), simulator=simulator))
    assert set(result.vectors) == {"v(2)"} and result["v(2)"] == pytest.approx(0.5)


def test_analyses_take_keywords_in_spice_order_only():
    assert Tran(step=1e-5, stop=1e-3) == Tran(stop=1e-3, step=1e-5)
    with pytest.raises(TypeError):
        Tran(1e-3, 1e-5)  # the old Tran(stop, step) order: an error, not a silent swap
