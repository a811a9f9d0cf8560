"""RRAM calibration: the 1T1R fast path against SPICE, the read inverted, the fit on a slice of the shared data at
the command line, the whole data set (slow)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cosim.calibrate.readers import read_pulses
from cosim.calibrate.rram import (
    READ_BL_V,
    Cell,
    ProgramVerifyProtocol,
    gap_from_resistance,
    program_verify,
    pulse_gap,
    pulse_job,
    read_resistance,
)
from cosim.cli import main
from cosim.spice import run_many

DEVICES = Path(__file__).resolve().parents[2] / "../shared/data/devices"
RRAM = DEVICES / "rram-1t1r-40nm"
shared = pytest.mark.skipif(not DEVICES.is_dir(), reason=f"shared device data not present at {DEVICES}")


def test_fast_path_matches_spice_pulses():
    """SET at low and high compliance, RESET, and a pulse below threshold: the V_c-parameterised integral and
    the transient of the rram model with the level-1 transistor end at the same read resistance."""
    cell = Cell()
    cases = [("set", 1.5, 1.0, 10e-6, 1e6), ("set", 2.5, 1.5, 10e-6, 1e6), ("set", 3.0, 3.0, 1e-6, 2e5),
             ("reset", 3.5, 3.0, 10e-6, 1e4), ("reset", 4.0, 4.0, 50e-6, 8e3), ("reset", 2.0, 2.0, 5e-6, 1e4)]
    jobs, fast = [], []
    for operation, v, v_wl, width, r in cases:
        gap = gap_from_resistance(cell, np.array([r]))
        jobs.append(pulse_job(cell, operation, v, v_wl, width, float(gap[0]), "vacask", f"{operation} {v} {v_wl}"))
        fast.append(read_resistance(cell, pulse_gap(cell, operation, np.array([v]), np.array([v_wl]),
                                                    np.array([width]), gap))[0])
    results = run_many(jobs, progress=False, raise_errors=True)
    spice = np.array([READ_BL_V / -r["i(vbl)"][-1] for r in results])
    # 1 % where the gap stops inside its window; 10 % where it runs into the bound, whose smooth window the
    # grid's last points resolve
    assert np.max(np.abs(np.log10(spice / np.array(fast)))) < 0.045
    before = np.array([c[-1] for c in cases])
    moved = np.abs(np.log10(spice / before)) > 0.3
    assert moved.tolist() == [True] * 5 + [False]  # the cases exercise switching and not


def test_read_resistance_inverts():
    cell = Cell()
    r = np.array([6e3, 1e4, 8e4, 1e6])
    assert read_resistance(cell, gap_from_resistance(cell, r)) == pytest.approx(r, rel=1e-6)
    # below the transistor's own on-resistance there is no device state: the smallest gap
    assert gap_from_resistance(cell, np.array([10.0]))[0] == cell.device.gap_min


def test_program_verify_reaches_its_band():
    cell = Cell()
    band = (9e3, 11e3)
    out = program_verify(cell, band, np.full(4, cell.device.gap_max), np.array([0.3, 1.0, 3.0, 10.0]))
    assert out["success"].all() and (out["sets"] > 0).all()
    assert ((out["resistance"] >= band[0]) & (out["resistance"] <= band[1])).all()
    assert len(ProgramVerifyProtocol().gates("set")) == 32  # 0.8 .. 3.9 V in 0.1 V steps


@shared
def test_cli_on_a_slice_of_the_shared_sweeps(tmp_path):
    """24 cells of each SET sweep as a documented pulse CSV: the card, its errors against the baseline and the
    SPICE confirmation."""
    rows = ["cell,operation,v_bl_v,v_wl_v,v_sl_v,width_s,r_before_ohm,r_after_ohm"]
    for name in ("sweep_vbl_set_chip9.csv", "sweep_vwl_set_chip9.csv"):
        p = read_pulses(RRAM / name)[0]
        cells = list(dict.fromkeys(p.cell))[:24]
        for k in np.flatnonzero(np.isin(p.cell, cells)):
            rows.append(f"{p.cell[k]},set,{p.v_bl[k]},{p.v_wl[k]},{p.v_sl[k]},{float(p.width[k])!r},{p.r_before[k]},"
                        f"{p.r_after[k]}")
    data = tmp_path / "pulses.csv"
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "card"
    assert main(["calibrate", "rram", "--pulses", str(data), "--spice-pulses", "8", "--max-iterations", "40",
                 "--out", str(out)]) == 0
    card = json.loads((out / "device_card.json").read_text())
    held = card["errors"]["heldout"]
    assert held["switched"] > 20 and held["median_switched"] < held["baseline_median_switched"]
    assert card["spice"]["failed"] == [] and card["spice"]["max_log10_spice_vs_fast"] < 0.05
    assert card["parameters"]["transistor.kp"]["fitted"] and not card["parameters"]["rram.i0"]["fitted"]
    assert (out / "r_after.png").is_file() and "program_verify" in card


@shared
@pytest.mark.slow
def test_whole_shared_data_set(tmp_path):
    out = tmp_path / "rram"
    files = sorted(map(str, RRAM.glob("sweep_*.csv")))
    assert main(["calibrate", "rram", "--pulses", *files, "--program-verify", str(RRAM / "target_chip4.csv"),
                 "--out", str(out)]) == 0
    card = json.loads((out / "device_card.json").read_text())
    assert card["errors"]["heldout"]["median"] <= 0.15
    assert card["errors"]["heldout"]["median_switched"] < card["errors"]["heldout"]["baseline_median_switched"]
