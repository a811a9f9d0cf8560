"""Calibration of the compact models to the measured devices in ../shared/data/devices (issue 13), from scratch,
through the command line a user runs:

- FeCap loops: `cosim calibrate fecap --pv` on the aixACCT HfO2 capacitor (13 nm): the 100-700 Hz loops fitted,
  800-1000 Hz held out, the 31-179 C loops refitted per temperature; ngspice confirms.
- FeCap kinetics: `cosim calibrate fecap --kinetics` on the other capacitor (10 nm): amplitudes 0.5, 1, 2, 3 V
  fitted, 1.5 and 2.5 V held out; 150 poling + pulse transients on ngspice confirm. Then the same with its two
  waveforms (the first fitted with the kinetics, the second held out), reported apart.
- RRAM: `cosim calibrate rram` on the four single-pulse sweeps of the 40 nm 1T1R chip (every 4th cell held out),
  the documented FORM and program-and-verify of the other chip (chip 4) against its measured pulse counts;
  VACASK confirms 60 held-out pulses.

Each calibration's wall time is the whole command (reading, fit, SPICE, card, report). Goals (issue 13): loops
NRMSE <= 5 % fitted / 8 % held out; kinetics RMSE <= 2 / 3.5 uC/cm^2; RRAM median |log10 R error| <= 0.15 held
out and mean pulse count per program-and-verify target within 25 %; each calibration < 10 min on 2 cores.

Writes benchmarks/results/calibration.json (the issue's keys plus the details), the cards and reports under --out
(default runs/calibration), prints a table and appends a section to benchmarks/RESULTS.md. `--only fecap|rram`
runs one device's calibrations and keeps the other entries of calibration.json.

    .venv/bin/python benchmarks/calibration.py [--out runs/calibration] [--only rram]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

from cosim.cli import main as cosim

HERE = Path(__file__).resolve().parent
DEVICES = HERE.parent.parent / "shared" / "data" / "devices"


def run(out: Path, name: str, args: list[str]) -> tuple[dict, float]:
    """Run one `cosim calibrate` command; (its card, wall seconds)."""
    started = time.perf_counter()
    status = cosim(["calibrate", *args, "--out", str(out / name)])
    seconds = time.perf_counter() - started
    card = out / name / ("device_card.json" if status == 0 else "not_converged.json")
    return json.loads(card.read_text()), seconds


def parameters(card: dict, names: list[str]) -> dict:
    return {n: card["parameters"][n]["value"] for n in names}


def goal(value: float, limit: float) -> str:
    return f"{value:.4g} ({'met' if value <= limit else 'NOT met'}, goal <= {limit:g})"


def fecap_parts(out: Path) -> tuple[dict, list[tuple[str, str, str]], str]:
    """The FeCap loop and kinetics calibrations: (their calibration.json entries, table rows, RESULTS.md text)."""
    aix, kin = DEVICES / "fecap-hfo2-aixacct", DEVICES / "fecap-kinetics"
    loops, t_loops = run(out, "fecap_loops", ["fecap", "--pv", *map(str, sorted(aix.glob("*/*.tsv"))),
                                              "--t-fe", "13e-9"])
    kinetics, t_kinetics = run(out, "fecap_kinetics", ["fecap", "--kinetics", str(kin / "P_pw_our_own.csv"),
                                                       "--t-fe", "10e-9"])
    joint, t_joint = run(out, "fecap_kinetics_waveforms",
                         ["fecap", "--kinetics", str(kin / "P_pw_our_own.csv"), "--waveforms",
                          str(kin / "MFM_scheme1.csv"), str(kin / "MFM_scheme2.csv"), "--t-fe", "10e-9"])
    ls, ks = loops["errors"]["summary"], kinetics["errors"]["summary"]
    fecap_names = ["e_a", "sigma_ea", "alpha", "tau0", "p_s", "t_int", "eps_fe"]
    entries = {
        "fecap_loops": {"nrmse_fit": ls["loops_nrmse_fit"], "nrmse_heldout": ls["loops_nrmse_heldout"],
                        "seconds": t_loops, "nrmse_fit_worst": ls["loops_nrmse_fit_worst"],
                        "nrmse_heldout_worst": ls["loops_nrmse_heldout_worst"],
                        "spice": loops["errors"]["spice_summary"], "converged": loops["converged"],
                        "parameters": parameters(loops, fecap_names),
                        "temperatures": {t: {"nrmse_base_card": v["nrmse_base_card"], "nrmse_refit": v["nrmse_refit"],
                                             "converged": v["converged"], "parameters": v["parameters"]}
                                         for t, v in loops["temperatures"].items()}},
        "fecap_kinetics": {"rmse_fit_uc_cm2": ks["kinetics_rmse_uc_cm2_fit"],
                           "rmse_heldout_uc_cm2": ks["kinetics_rmse_uc_cm2_heldout"], "seconds": t_kinetics,
                           "per_amplitude": kinetics["errors"]["fast"]["kinetics"],
                           "spice": kinetics["errors"]["spice_summary"], "converged": kinetics["converged"],
                           "parameters": parameters(kinetics, fecap_names),
                           "with_waveforms": {"summary": joint["errors"]["summary"], "seconds": t_joint,
                                              "converged": joint["converged"],
                                              "parameters": parameters(joint, fecap_names)}},
    }
    rows = [
        ("FeCap loops NRMSE fitted (100-700 Hz)", goal(ls["loops_nrmse_fit"], 0.05),
         f"{loops['errors']['spice_summary']['loops_nrmse_fit']:.4g}"),
        ("FeCap loops NRMSE held out (800-1000 Hz)", goal(ls["loops_nrmse_heldout"], 0.08),
         f"{loops['errors']['spice_summary']['loops_nrmse_heldout']:.4g}"),
        ("FeCap loops calibration, s", goal(t_loops, 600), ""),
        ("kinetics RMSE fitted (0.5, 1, 2, 3 V), uC/cm^2", goal(ks["kinetics_rmse_uc_cm2_fit"], 2.0),
         f"{kinetics['errors']['spice_summary']['kinetics_rmse_uc_cm2_fit']:.4g}"),
        ("kinetics RMSE held out (1.5, 2.5 V), uC/cm^2", goal(ks["kinetics_rmse_uc_cm2_heldout"], 3.5),
         f"{kinetics['errors']['spice_summary']['kinetics_rmse_uc_cm2_heldout']:.4g}"),
        ("kinetics calibration, s", goal(t_kinetics, 600), ""),
    ]
    lp, kp = entries["fecap_loops"]["parameters"], entries["fecap_kinetics"]["parameters"]
    fmt = ", ".join
    text = (f"FeCap loops (aixACCT, 13 nm, fecap_nd8): {fmt(f'{k} {v:.4g}' for k, v in lp.items())} "
            "(tau0 held: loops over one decade of frequency do not separate it).\n"
            f"FeCap kinetics (10 nm): {fmt(f'{k} {v:.4g}' for k, v in kp.items())} (the authors' NLS fit: "
            "tau0 3.57e-6 s, alpha 3.30, P_r 24.4 uC/cm^2).\n"
            f"Kinetics + waveforms jointly: {fmt(f'{k} {v:.3g}' for k, v in joint['errors']['summary'].items())}.\n")
    return entries, rows, text


def rram_part(out: Path) -> tuple[dict, list[tuple[str, str, str]], str]:
    """The RRAM calibration: (its calibration.json entry, table rows, RESULTS.md text)."""
    rram = DEVICES / "rram-1t1r-40nm"
    cell, t_rram = run(out, "rram", ["rram", "--pulses", *map(str, sorted(rram.glob("sweep_*.csv"))),
                                     "--program-verify", str(rram / "target_chip4.csv")])
    pv, held = cell["program_verify"], cell["errors"]["heldout"]
    entry = {"rram": {
        "log10_r_error_median_heldout": held["median"],
        "pulse_count_rel_error": max(pv["lrs"]["pulse_count_rel_error"], pv["hrs"]["pulse_count_rel_error"]),
        "seconds": t_rram, "heldout": held, "program_verify": pv, "spice": cell["spice"],
        "converged": cell["converged"], "variability": cell["variability"],
        "parameters": {n: p["value"] for n, p in cell["parameters"].items() if p["fitted"]}}}
    check = pv["calibration_data_check"]
    rows = [
        ("RRAM median |log10 R error| held out", goal(held["median"], 0.15),
         f"{cell['spice']['median_log10_spice_vs_measured']:.4g}"),
        ("  baseline R_after = R_before", f"{held['baseline_median']:.4g}", ""),
        ("  on switched pulses (baseline)", f"{held['median_switched']:.4g} ({held['baseline_median_switched']:.4g})",
         f"{cell['spice']['median_log10_spice_vs_measured_switched']:.4g}"),
        ("  chained through each cell's pulses: all (switched)",
         f"{held['median_chained']:.4g} ({held['median_chained_switched']:.4g})", ""),
    ]
    for band in ("lrs", "hrs"):
        m = pv[band]
        rows.append((f"RRAM pulse count, {band.upper()}: model vs measured mean",
                     goal(m["pulse_count_rel_error"], 0.25),
                     f"{m['model_mean_pulses']:.2f} vs {m['measured_mean_pulses']:.2f} (model success "
                     f"{m['model_success']:.2f})"))
    for operation, c in check.items():
        rows.append((f"  single pulses at the protocol's {operation.upper()} crossing {c['edge_ohm'] / 1e3:g} kohm",
                     f"measured {c['measured_crossed']:.3f}, model {c['model_crossed']:.3f}", f"{c['pulses']} pulses"))
    rows.append(("RRAM calibration, s", goal(t_rram, 600), ""))
    text = (f"RRAM fitted: {', '.join(f'{k} {v:.4g}' for k, v in entry['rram']['parameters'].items())}; "
            f"cell-to-cell vel0 sigma_ln {cell['variability']['d2d']['vel0']:.3g}; model cells after the FORM "
            f"{pv['formed_resistance_median_ohm'] / 1e3:.1f} kohm (median).\n")
    return entry, rows, text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/calibration", help="folder of the cards and reports")
    parser.add_argument("--only", choices=("fecap", "rram"),
                        help="run only the FeCap or the RRAM calibrations; calibration.json keeps the other entries")
    args = parser.parse_args()
    out = Path(args.out)
    if not DEVICES.is_dir():
        print(f"no measured devices at {DEVICES}", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    entries, rows, text = {}, [], ""
    for name, part in (("fecap", fecap_parts), ("rram", rram_part)):
        if args.only in (None, name):
            e, r, t = part(out)
            entries.update(e)
            rows += r
            text += t
    load_after = os.getloadavg()
    results = HERE / "results" / "calibration.json"
    summary = json.loads(results.read_text()) if args.only and results.is_file() else {}
    summary.update(entries)
    summary.update({
        "machine": {"node": platform.node(), "cpus": os.cpu_count(), "load_before": load_before,
                    "load_after": load_after},
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": "python benchmarks/calibration.py" + (f" --out {args.out}" if args.out != "runs/calibration" else "")
                   + (f" --only {args.only}" if args.only else ""),
    })
    results.parent.mkdir(exist_ok=True)
    results.write_text(json.dumps(summary, indent=1) + "\n")

    table = ["| quantity | fast path (goal) | SPICE / detail |", "|---|---|---|"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    print("\n".join(table))
    with open(HERE / "RESULTS.md", "a") as f:
        f.write(f"\n## calibration ({summary['date']}, {platform.node()}, {os.cpu_count()} CPUs)\n\n"
                f"Command: `{summary['command']}`. Load average before {'/'.join(f'{x:.1f}' for x in load_before)}, "
                f"after {'/'.join(f'{x:.1f}' for x in load_after)} (shared machine). JSON: "
                "`benchmarks/results/calibration.json`; cards, reports and overlays in the run folder.\n\n"
                + "\n".join(table) + "\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
