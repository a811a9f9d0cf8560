"""The `cosim` command line (also `python -m cosim`)."""
from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import math
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence


def _count(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text}")
    return value


def _characterize(args: argparse.Namespace) -> int:
    from cosim.devices.characterize import (
        card_characterizer,
        card_of,
        characterization_names,
        characterize,
        characterizer,
    )
    from cosim.devices.plugins import PluginError

    names = characterization_names() if "all" in args.devices else args.devices
    cards = {}
    try:
        for name in names:
            characterizer(name)
            cards[name] = card_of(name, args.device_card or "", args.synapse_card or "")
            if cards[name]:
                card_characterizer(name, cards[name])  # a card that cannot be used fails before anything runs
    except PluginError as err:
        print(f"cosim characterize: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # CardError
        print(f"cosim characterize: {err}", file=sys.stderr)
        return 1
    for name in names:
        out = Path(args.out) / name if len(names) > 1 else Path(args.out)
        summary = characterize(name, out, quick=args.quick, card=cards[name])
        print(f"{name}: wrote {out}/summary.json")
        print(json.dumps(summary, indent=1, default=str)[:2000])
    return 0


def _run(args: argparse.Namespace) -> int:
    from cosim.pipeline import run_main
    from cosim.train.checkpoint import CheckpointError
    from cosim.train.config import ConfigError

    try:
        report = run_main(args.out, tuple(args.set), device_card=args.device_card or "",
                          synapse_card=args.synapse_card or "")
    except (ConfigError, CheckpointError) as err:
        print(f"cosim run: {err}", file=sys.stderr)
        return 1
    print(f"cosim run: done; open {report.resolve()}")
    return 0


def _check_va(args: argparse.Namespace) -> int:
    from cosim.spice.va_check import VerilogASyntaxError, check_va

    status, checked, errors, warnings = 0, 0, 0, 0
    for name in args.files:
        try:
            findings = check_va(name)
        except (OSError, VerilogASyntaxError) as err:
            print(f"cosim check-va: cannot check {name}: {err}", file=sys.stderr)
            status = 2
            continue
        for finding in findings:
            print(finding)
        checked += 1
        errors += sum(f.severity == "error" for f in findings)
        warnings += sum(f.severity == "warning" for f in findings)
    print(f"cosim check-va: {errors} error(s), {warnings} warning(s) in {checked} file(s) checked")
    return status or int(errors > 0)


def _simulate(args: argparse.Namespace) -> int:
    from cosim.spice import SimError
    from cosim.spice.deck import simulate_deck

    out = Path(args.out or Path("runs/simulate") / Path(args.deck).stem)
    try:
        result = simulate_deck(args.deck, out, simulator=args.simulator, allow_outside=args.allow_outside,
                               allow_shell=args.allow_shell)
    except (SimError, OSError) as err:
        print(f"cosim simulate: {err}", file=sys.stderr)
        return 1
    print(f"cosim simulate: {len(result.vectors)} vectors ({', '.join(sorted(result.vectors))}): wrote "
          f"{out / 'results.npz'} and {out / 'provenance.json'}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from cosim.report import build_report

    try:
        print(f"cosim report: wrote {build_report(args.run_dir)}")
    except (OSError, ValueError) as err:  # a missing or unknown folder, an unreadable file (ReportError, ConfigError)
        print(f"cosim report: {err}", file=sys.stderr)
        return 1
    return 0


def _train(args: argparse.Namespace) -> int:
    from cosim.data import DataFormatError
    from cosim.train.checkpoint import CheckpointError
    from cosim.train.config import ConfigError, load_config
    from cosim.train.loop import TrainingDiverged, train
    from cosim.verify.runner import verify_epoch

    if args.resume and args.config is None:
        if args.out is None:
            print("cosim train --resume needs --out RUN_DIR (or --config)", file=sys.stderr)
            return 2
        args.config = str(Path(args.out) / "config.toml")
    overrides = list(args.set) + ([f"run.out={json.dumps(args.out)}"] if args.out else [])
    try:
        cfg = load_config(args.config or "music", overrides)
        history = train(cfg, resume=args.resume, verify=verify_epoch)
    except (ConfigError, DataFormatError, TrainingDiverged, CheckpointError, FileNotFoundError,
            FileExistsError) as err:
        print(f"cosim train: {err}", file=sys.stderr)
        return 1
    print(json.dumps(history[-1], indent=1))
    print(f"cosim train: metrics, checkpoints and curves.png in {Path(cfg.run.out).resolve()}")
    return 0


def _refit(args: argparse.Namespace) -> int:
    from cosim.spice import SimError
    from cosim.surrogates.refit import RefitConfig
    from cosim.train.checkpoint import CheckpointError
    from cosim.train.config import ConfigError
    from cosim.train.refit import refit_folder
    from cosim.verify.runner import verify_epoch

    config = RefitConfig(sequences=args.sequences, keep_design=not args.quick, n_jobs=args.jobs)
    try:
        record = refit_folder(args.run_dir, config, verify=verify_epoch)
    except (ConfigError, CheckpointError, OSError, ValueError, SimError) as err:
        print(f"cosim refit: {err}", file=sys.stderr)
        return 1
    print(json.dumps(record, indent=1))
    if not record["ok"]:
        print(f"cosim refit: {record['reason']}", file=sys.stderr)
        return 1
    print(f"cosim refit: wrote {record['path']}; continue with cosim train --resume --out {args.run_dir}")
    return 0


def _fit(args: argparse.Namespace) -> int:
    from cosim.devices.plugins import load_plugins
    from cosim.surrogates import fitter

    try:
        load_plugins()  # a device plug-in may bring its surrogate's fitter
        fit = fitter(args.kind)
    except ValueError as err:  # an unknown name is a usage error, as in `cosim characterize`
        print(f"cosim fit: {err}", file=sys.stderr)
        return 2
    card = {"device_card": args.device_card} if args.device_card else {}
    if card and "device_card" not in inspect.signature(fit).parameters:
        print(f"cosim fit {args.kind}: this surrogate is not fitted to device cards (its fitter takes no "
              "device_card)", file=sys.stderr)
        return 2
    try:
        path = fit(Path(args.out) if args.out else None, seed=args.seed, quick=args.quick, n_jobs=args.jobs, **card)
    except ValueError as err:  # CardError, or --device-card without --out
        print(f"cosim fit {args.kind}: {err}", file=sys.stderr)
        return 1
    print(f"cosim fit {args.kind}: wrote {path} (validation report next to it)")
    return 0


@contextlib.contextmanager
def _scheduler(address: str | None) -> Iterator[Any]:
    """A client of the Dask scheduler at `address` for the block, closed after it; None: simulate on this machine.

    Connecting comes first, so an unreachable scheduler fails before anything is computed."""
    if not address:
        yield None
        return
    from cosim.spice.sweep import connect

    client = connect(address)
    try:
        yield client
    finally:
        client.close()


def _verify(args: argparse.Namespace) -> int:
    from cosim.spice import SimError
    from cosim.train.config import ConfigError
    from cosim.verify.export import HardwareConfig
    from cosim.verify.runner import verify_run

    if args.levels_file and Path(args.levels_file).suffix != ".json":
        print(f"cosim verify: --levels-file {args.levels_file}: give the levels.json that `cosim characterize rram` "
              "writes (its arrays are in the .npz beside it)", file=sys.stderr)
        return 2
    try:
        with _scheduler(args.scheduler) as scheduler:
            hw = HardwareConfig(programming=args.programming, levels_file=args.levels_file or "", seed=args.seed,
                                neuron_options={} if args.domains is None else {"n_domains": args.domains},
                                simulator=args.simulator, read_model=args.read_model,
                                **({} if args.columns_per_job is None else {"columns_per_job": args.columns_per_job}))
            summary = verify_run(args.run_dir, args.checkpoint, args.samples, args.budget, hw, args.jobs, scheduler,
                                 max_steps=args.max_steps)
    except (ConfigError, OSError, ValueError, TypeError, RuntimeError, SimError) as err:
        print(f"cosim verify: {err}", file=sys.stderr)
        return 1
    keys = ("prediction_agreement", "spike_count_agreement", "spike_time_error_s", "spice_metric",
            "surrogate_metric", "metric", "samples", "seconds")
    print(json.dumps({key: summary[key] for key in keys}, indent=1))
    print(f"cosim verify: wrote {Path(args.run_dir) / 'verify.json'} and {Path(args.run_dir) / 'verify'}/raster.png")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from cosim.spice import SimError
    from cosim.train.config import ConfigError
    from cosim.verify.export import HardwareConfig
    from cosim.verify.in_the_loop import FINETUNE, RESULT, FinetuneConfig, finetune_run

    try:
        with _scheduler(args.scheduler) as scheduler:
            ft = FinetuneConfig(epochs=args.epochs, samples=args.samples, eval_samples=args.eval_samples,
                                max_steps=args.max_steps, lr=args.lr, batch_size=args.batch_size)
            hw = HardwareConfig(programming=args.programming, seed=args.seed,
                                neuron_options={} if args.domains is None else {"n_domains": args.domains})
            record = finetune_run(args.run_dir, ft, hw, args.checkpoint, args.jobs, scheduler)
    except (ConfigError, OSError, ValueError, TypeError, RuntimeError, SimError) as err:
        print(f"cosim finetune: {err}", file=sys.stderr)
        return 1
    keys = ("spice_metric_before", "spice_metric_after", "model_metric", "metric", "gap_closed", "epochs", "seconds")
    print(json.dumps({key: record[key] for key in keys}, indent=1))
    print(f"cosim finetune: wrote {Path(args.run_dir) / FINETUNE / RESULT} and the fine-tuned checkpoints in "
          f"{Path(args.run_dir) / FINETUNE / 'checkpoints'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cosim",
        description="Circuit simulation in the loop of hardware-aware training for FeCap/RRAM spiking networks.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the main job on the embedded defaults")
    run.add_argument("--out", default="runs/main", help="run folder (default: runs/main)")
    run.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                     help="override a training config field (see `cosim train --help`)")
    run.add_argument("--device-card", metavar="CARD",
                     help="run on a calibrated neuron device: a FeCap device card (`cosim calibrate fecap`); the "
                          "FeLIF surrogate is fitted to it in the run")
    run.add_argument("--synapse-card", metavar="CARD",
                     help="run on a calibrated synapse device: an RRAM device card (`cosim calibrate rram`)")
    run.set_defaults(func=_run)

    char = sub.add_parser("characterize", help="run device/circuit testbenches and write data, plots, summary.json")
    char.add_argument("devices", nargs="+", metavar="NAME",
                      help="what to characterise: fecap, felif, rram, crossbar, a registered device plug-in "
                           "(COSIM_PLUGINS), or all")
    char.add_argument("--out", default="runs/characterization", help="output folder")
    char.add_argument("--quick", action="store_true", help="fewer points: a fast overview")
    char.add_argument("--device-card", metavar="CARD",
                      help="characterise the FeCap and the neuron device of this device card (FeCap card)")
    char.add_argument("--synapse-card", metavar="CARD",
                      help="characterise the synapse device of this device card (RRAM card)")
    char.set_defaults(func=_characterize)

    train = sub.add_parser("train", help="train the music predictor or the tactile classifier")
    train.add_argument("--config", help="TOML file or shipped config: music (default), tactile, tactile-lif")
    train.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a config field, e.g. --set model.bits=3 (repeatable)")
    train.add_argument("--out", help="run folder (overrides run.out)")
    train.add_argument("--resume", action="store_true", help="continue the run in the run folder")
    train.set_defaults(func=_train)

    fit = sub.add_parser("fit", help="fit a surrogate to circuit simulations and validate it (surrogates/<kind>.json)")
    fit.add_argument("kind", help="which surrogate: felif, rram, crossbar or a device plug-in's (COSIM_PLUGINS)")
    fit.add_argument("--out", help="artifact path (default: the shipped surrogates/<kind>.json)")
    fit.add_argument("--seed", type=int, default=0, help="seed of the design of experiments (default 0)")
    fit.add_argument("--quick", action="store_true", help="a smaller design of experiments: a fast check")
    fit.add_argument("--jobs", type=_count, help="simulations at once (default: the machine's cores)")
    fit.add_argument("--device-card", metavar="CARD",
                     help="fit to the circuit of a calibrated device (felif: a FeCap device card); needs --out")
    fit.set_defaults(func=_fit)

    refit = sub.add_parser("refit", help="refit a run's FeLIF surrogate at the states its network visited (a new "
                                         "version in RUN_DIR/surrogates/; train --resume continues with it)")
    refit.add_argument("run_dir", help="training run folder")
    refit.add_argument("--sequences", type=_count, default=16,
                       help="recorded input sequences replayed in SPICE (default 16)")
    refit.add_argument("--quick", action="store_true",
                       help="only the recorded states, without the current surrogate's own design of experiments")
    refit.add_argument("--jobs", type=_count, help="simulations at once (default: the machine's cores)")
    refit.set_defaults(func=_refit)

    verify = sub.add_parser("verify", help="simulate a trained network's device layer in SPICE (synapse crossbar + "
                                           "neuron circuits of its devices) and compare with the training model: "
                                           "verify.json")
    verify.add_argument("run_dir", help="the training run folder")
    verify.add_argument("--checkpoint", help="checkpoint file, or its name in RUN_DIR/checkpoints (default: newest)")
    verify.add_argument("--samples", type=_count, help="test samples to simulate (default: the run's verify.samples)")
    verify.add_argument("--budget", type=_seconds, metavar="SECONDS",
                        help="simulation CPU-time budget (default: the run's verify.cpu_budget_s)")
    verify.add_argument("--max-steps", type=_count, metavar="N",
                        help="simulate only the first N coarse steps of each sample (default: the run's "
                             "verify.max_steps)")
    verify.add_argument("--scheduler", help="Dask scheduler address, tcp://HOST:PORT (default: local worker "
                                            "processes)")
    verify.add_argument("--jobs", type=_count, help="simulations at once (default: the machine's cores)")
    verify.add_argument("--programming", choices=["monte_carlo", "ideal"], default="monte_carlo",
                        help="RRAM devices drawn from the write-verify Monte Carlo (default) or exactly on target")
    verify.add_argument("--levels-file", help="programmed levels (levels.json of `cosim characterize rram`) instead "
                                              "of a fresh Monte Carlo")
    verify.add_argument("--domains", type=int, help="FeLIF neurons: FeCap domains of the circuits (1 or 8)")
    verify.add_argument("--seed", type=int, default=0, help="seed of the programming draw (default 0)")
    verify.add_argument("--simulator", choices=["auto", "vacask", "ngspice"], default="auto",
                        help="simulator of the circuits (default auto: VACASK where the devices have a VACASK "
                             "circuit, else ngspice)")
    verify.add_argument("--read-model", choices=["linear", "sinh"], default="linear",
                        help="crossbar read model: chord conductance (default) or the device's sinh read law")
    verify.add_argument("--columns-per-job", type=int, metavar="N",
                        help="crossbar columns (neurons) per SPICE job, 0: the whole layer in one netlist "
                             "(default: HardwareConfig's)")
    verify.set_defaults(func=_verify)

    report = sub.add_parser("report", help="one HTML page of a run folder: what ran, how it came out (outcomes "
                                           "against baselines and goals), key figures, the rest folded")
    report.add_argument("run_dir", help="a folder of cosim run, train, verify, characterize --out or fit --out "
                                        "(e.g. runs/main)")
    report.set_defaults(func=_report)

    check_va = sub.add_parser("check-va", help="report what OpenVAF/OSDI silently gets wrong or refuses in Verilog-A "
                                               "sources (exit 1 on an error, 2 if a file cannot be read)")
    check_va.add_argument("files", nargs="+", metavar="FILE.va", help="Verilog-A sources")
    check_va.set_defaults(func=_check_va)

    simulate = sub.add_parser("simulate", help="run an ngspice deck (title line, cards, .op/.dc/.ac/.tran, .end): "
                                               "OUT/results.npz and OUT/provenance.json")
    simulate.add_argument("deck", help="the deck file")
    simulate.add_argument("--simulator", choices=["ngspice", "vacask"], default="ngspice",
                          help="back end (vacask: plain R, C, L, V, I, D cards translated; default ngspice)")
    simulate.add_argument("--out", help="output folder (default: runs/simulate/<deck name>)")
    simulate.add_argument("--allow-outside", action="store_true",
                          help="let .include/.lib read files outside the deck's folder")
    simulate.add_argument("--allow-shell", action="store_true",
                          help="let .control sections run (they can run programs and write files)")
    simulate.set_defaults(func=_simulate)

    finetune = sub.add_parser("finetune", help="SPICE-in-the-loop fine-tuning of a trained run: the device layer's "
                                               "forward pass in SPICE, the gradient through the surrogate at the "
                                               "SPICE states (RUN_DIR/finetune; resumes when run again)")
    finetune.add_argument("run_dir", help="training run folder (3- or 4-bit synapses, FeLIF neurons)")
    finetune.add_argument("--epochs", type=_count, default=2, help="fine-tuning epochs (default 2)")
    finetune.add_argument("--samples", type=_count, default=16, help="training samples per epoch (default 16)")
    finetune.add_argument("--eval-samples", type=_count, default=8,
                          help="held-out test samples measured in SPICE before and after (default 8)")
    finetune.add_argument("--max-steps", type=int, default=32, help="steps of each sample (0: all; default 32)")
    finetune.add_argument("--lr", type=float, default=0.0, help="learning rate (default: the run's)")
    finetune.add_argument("--batch-size", type=int, default=0, help="samples per update (default: the run's)")
    finetune.add_argument("--checkpoint", help="checkpoint to start from (default: the newest)")
    finetune.add_argument("--programming", choices=["monte_carlo", "ideal"], default="monte_carlo",
                          help="devices drawn from the write-verify Monte Carlo (default) or exactly on target")
    finetune.add_argument("--domains", type=int, help="FeLIF neurons: FeCap domains of the circuits (1 or 8)")
    finetune.add_argument("--seed", type=int, default=0, help="seed of the programming draw (default 0)")
    finetune.add_argument("--jobs", type=_count, help="simulations at once (default: the machine's cores)")
    finetune.add_argument("--scheduler", help="Dask scheduler address (tcp://HOST:8786) to simulate on")
    finetune.set_defaults(func=_finetune)

    from cosim.calibrate.commands import add_calibrate_parser  # argparse only: cheap

    add_calibrate_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
