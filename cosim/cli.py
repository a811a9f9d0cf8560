"""The `cosim` command line (also `python -m cosim`)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence


def _characterize(args: argparse.Namespace) -> int:
    from cosim.devices.characterize import CHARACTERIZERS, characterize

    names = list(CHARACTERIZERS) if "all" in args.devices else args.devices
    for name in names:
        out = Path(args.out) / name if len(names) > 1 else Path(args.out)
        summary = characterize(name, out, quick=args.quick)
        print(f"{name}: wrote {out}/summary.json")
        print(json.dumps(summary, indent=1, default=str)[:2000])
    return 0


def _run(args: argparse.Namespace) -> int:
    """The main job on embedded defaults: what exists of the pipeline, end to end."""
    from cosim.devices.characterize import CHARACTERIZERS, characterize

    run_dir = Path(args.out)
    for name in CHARACTERIZERS:
        characterize(name, run_dir / "characterization" / name, quick=True)
    print(f"cosim run: results in {run_dir.resolve()}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from cosim.report import build_report

    print(f"cosim report: wrote {build_report(args.run_dir)}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from cosim.data import DataFormatError
    from cosim.train.config import ConfigError, load_config
    from cosim.train.loop import TrainingDiverged, train

    if args.resume and args.config is None:
        if args.out is None:
            print("cosim train --resume needs --out RUN_DIR (or --config)", file=sys.stderr)
            return 2
        args.config = str(Path(args.out) / "config.toml")
    overrides = list(args.set) + ([f"run.out={json.dumps(args.out)}"] if args.out else [])
    try:
        cfg = load_config(args.config or "music", overrides)
        history = train(cfg, resume=args.resume)
    except (ConfigError, DataFormatError, TrainingDiverged, FileNotFoundError, FileExistsError) as err:
        print(f"cosim train: {err}", file=sys.stderr)
        return 1
    print(json.dumps(history[-1], indent=1))
    print(f"cosim train: metrics, checkpoints and curves.png in {Path(cfg.run.out).resolve()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cosim",
        description="Circuit simulation in the loop of hardware-aware training for FeCap/RRAM spiking networks.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the main job on the embedded defaults")
    run.add_argument("--out", default="runs/main", help="run folder (default: runs/main)")
    run.set_defaults(func=_run)

    char = sub.add_parser("characterize", help="run device/circuit testbenches and write data, plots, summary.json")
    char.add_argument("devices", nargs="+", choices=["fecap", "felif", "rram", "crossbar", "all"],
                      help="what to characterise")
    char.add_argument("--out", default="runs/characterization", help="output folder")
    char.add_argument("--quick", action="store_true", help="fewer points: a fast overview")
    char.set_defaults(func=_characterize)

    train = sub.add_parser("train", help="train the music predictor or the tactile classifier")
    train.add_argument("--config", help="TOML file or shipped config: music (default), tactile, tactile-lif")
    train.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a config field, e.g. --set model.bits=3 (repeatable)")
    train.add_argument("--out", help="run folder (overrides run.out)")
    train.add_argument("--resume", action="store_true", help="continue the run in the run folder")
    train.set_defaults(func=_train)

    report = sub.add_parser("report", help="build one HTML page with the plots and figures of a run folder")
    report.add_argument("run_dir", help="the run folder (e.g. runs/main)")
    report.set_defaults(func=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
