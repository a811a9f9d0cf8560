"""`cosim calibrate fecap|rram`: the command line of the calibrations (registered by `cosim.cli`)."""
from __future__ import annotations

import argparse
import json
import sys


def add_calibrate_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``calibrate`` with its ``fecap`` and ``rram`` commands to the `cosim` sub-parsers."""
    calibrate = sub.add_parser("calibrate", help="fit a compact model to measured devices: a device card "
                                                  "(device_card.json) and a report with overlays")
    kinds = calibrate.add_subparsers(dest="kind", required=True, metavar="DEVICE")
    fecap = kinds.add_parser("fecap", help="the multi-domain FeCap model to P-V loops, switching kinetics and "
                                           "waveforms of ONE capacitor (any of them)")
    fecap.add_argument("--pv", nargs="+", default=[], metavar="FILE",
                       help="P-V loops: aixACCT exports (.tsv) or loop CSVs (time_s,voltage_v,"
                            "polarization_uc_per_cm2); loops with a temperature in the name form a temperature series")
    fecap.add_argument("--kinetics", metavar="FILE", help="switching kinetics CSV (width_s,amplitude_v,"
                                                          "polarization_uc_per_cm2 or pw,amp,Pr)")
    fecap.add_argument("--waveforms", nargs="+", default=[], metavar="FILE",
                       help="periodic drive waveforms (time_s,voltage_v,polarization_uc_per_cm2 or t,V,Q in "
                            "C/cm^2); the first is fitted, the rest held out")
    fecap.add_argument("--t-fe", type=float, default=10e-9, metavar="METRES",
                       help="ferroelectric thickness of the sample, m (default 10e-9)")
    fecap.add_argument("--loop", type=int, default=1, choices=(1, 2, 3),
                       help="which loop of an aixACCT export (P1, P2, P3; default 1)")
    fecap.add_argument("--fit-max-frequency", type=float, default=700.0, metavar="HZ",
                       help="loops up to this frequency are fitted, faster ones held out (default 700)")
    fecap.add_argument("--heldout-amplitudes", type=float, nargs="*", default=[1.5, 2.5], metavar="V",
                       help="kinetics amplitudes held out of the fit (default 1.5 2.5)")
    fecap.add_argument("--simulator", choices=("ngspice", "vacask"), default="ngspice",
                       help="SPICE back end of the confirmation (default ngspice)")
    fecap.add_argument("--no-spice", action="store_true", help="skip the SPICE confirmation")
    fecap.add_argument("--max-iterations", type=int, default=150, metavar="N",
                       help="least-squares iterations before the fit counts as not converged (default 150)")
    fecap.add_argument("--out", required=True, help="output folder: device_card.json, report.md, figures")
    fecap.set_defaults(func=calibrate_fecap_command)

    rram = kinds.add_parser("rram", help="the RRAM gap model in a 1T1R cell to single SET/RESET pulses, then "
                                         "write-verify compared with measured program-and-verify")
    rram.add_argument("--pulses", nargs="+", required=True, metavar="FILE",
                      help="single-pulse files: NI sweeps (sweep_vbl_set_*, sweep_vwl_set_*, sweep_vsl_reset_*, "
                           "sweep_vwl_reset_*) or pulse CSVs (cell,operation,v_bl_v,v_wl_v,v_sl_v,width_s,"
                           "r_before_ohm,r_after_ohm)")
    rram.add_argument("--program-verify", metavar="FILE",
                      help="program-and-verify outcomes (NI target_* file or cell,reads,sets,resets,success,r_ohm)")
    rram.add_argument("--simulator", choices=("ngspice", "vacask"), default="vacask",
                      help="SPICE back end of the confirmation (default vacask)")
    rram.add_argument("--spice-pulses", type=int, default=60, metavar="N",
                      help="held-out pulses confirmed in SPICE (0: none; default 60)")
    rram.add_argument("--max-iterations", type=int, default=100, metavar="N",
                      help="least-squares iterations before the fit counts as not converged (default 100)")
    rram.add_argument("--out", required=True, help="output folder: device_card.json, report.md, figures")
    rram.set_defaults(func=calibrate_rram_command)


def calibrate_fecap_command(args: argparse.Namespace) -> int:
    from cosim.calibrate.fecap import (
        CalibrationError,
        FeCapCalibration,
        calibrate_fecap,
        fecap_card,
        write_fecap_report,
    )
    from cosim.calibrate.readers import MeasurementError, read_kinetics_csv, read_loop, read_trace_csv

    if not (args.pv or args.kinetics or args.waveforms):
        print("cosim calibrate fecap: give at least one of --pv, --kinetics, --waveforms", file=sys.stderr)
        return 2
    try:
        loops = [read_loop(p, args.loop) for p in args.pv]
        kinetics = read_kinetics_csv(args.kinetics) if args.kinetics else None
        waveforms = [read_trace_csv(p, loop=False) for p in args.waveforms]
        config = FeCapCalibration(t_fe=args.t_fe, fit_max_frequency=args.fit_max_frequency,
                                  heldout_amplitudes=tuple(args.heldout_amplitudes), simulator=args.simulator,
                                  spice=not args.no_spice, max_evaluations=args.max_iterations)
        fit = calibrate_fecap(loops, kinetics, waveforms, config)
    except (MeasurementError, CalibrationError) as err:
        print(f"cosim calibrate fecap: {err}", file=sys.stderr)
        return 1
    files = [(t.source, "pv_loop", role) for role in ("fit", "heldout") for t, _ in fit.curves["loops"][role]]
    files += [(t.source, "pv_loop", f"temperature {c:g} C") for c, entry in fit.temperatures.items()
              for t, _ in entry["curves"]]
    files += [(kinetics.source, "kinetics", "fit and held out")] if kinetics else []
    files += [(t.source, "waveform", role) for role in ("fit", "heldout") for t, _ in fit.curves["waveforms"][role]]
    card = fecap_card(fit, files, config)
    summary = {**card["errors"]["summary"], **{f"spice_{k}": v for k, v in card["errors"].get("spice_summary",
                                                                                            {}).items()}}
    return _finish("fecap", card, write_fecap_report, fit, args.out, summary)


def _finish(kind: str, card: dict, write_report, fit, out: str, summary: dict) -> int:
    """Write the card (or the not-converged record) and the report, print the summary; the exit status."""
    from cosim.calibrate.card import write_card

    path = write_card(out, card)
    report = write_report(fit, card, out)
    print(json.dumps({"converged": card["converged"], **summary, "seconds": card["seconds"]}, indent=1))
    if not card["converged"]:
        print(f"cosim calibrate {kind}: the fit did not converge ({card['fit']['message']}; weighted residual RMS "
              f"{card['fit']['residual_rms']:.3g} after {card['fit']['evaluations']} iterations): no device "
              f"card; the record is {path}, the report {report}", file=sys.stderr)
        return 1
    print(f"cosim calibrate {kind}: wrote {path} and {report}")
    return 0


def calibrate_rram_command(args: argparse.Namespace) -> int:
    from cosim.calibrate.readers import MeasurementError, read_program_verify, read_pulses
    from cosim.calibrate.rram import HOLDOUT_EVERY, RRAMCalibration, calibrate_rram, rram_card, write_rram_report

    try:
        pulses = [p for path in args.pulses for p in read_pulses(path)]
        verify = read_program_verify(args.program_verify) if args.program_verify else None
    except MeasurementError as err:
        print(f"cosim calibrate rram: {err}", file=sys.stderr)
        return 1
    config = RRAMCalibration(simulator=args.simulator, spice_pulses=args.spice_pulses,
                             max_evaluations=args.max_iterations)
    fit = calibrate_rram(pulses, verify, config)
    files = [(p.source, "single pulses", f"fit and held out (every {HOLDOUT_EVERY}th cell)") for p in pulses]
    files += [(verify.source, "program and verify", "comparison")] if verify else []
    card = rram_card(fit, files, config)
    summary = {"heldout_" + k: v for k, v in card["errors"]["heldout"].items()}
    summary |= {f"{band}_pulse_count_rel_error": card["program_verify"][band]["pulse_count_rel_error"]
                for band in ("lrs", "hrs") if band in card["program_verify"]}
    return _finish("rram", card, write_rram_report, fit, args.out, summary)
