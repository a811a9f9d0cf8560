"""A foreign RRAM model through the whole loop (issue 12 item 2): the JART VCM v1b port (`cosim.devices.jart_vcm`,
synapse device "jart_vcm") from characterisation to a SPICE-verified network trained on its programmed levels.

Stages, each written into --out when it finishes and skipped when the script runs again:

1. characterise: `cosim characterize jart_vcm --quick` (I-V loops and 1T1R SETs on ngspice and VACASK, a
   16-devices-per-level write-verify) -> OUT/characterize/ (summary.json, PNG plots, data);
2. program: the level population, --devices per level (default 64) of the 8 levels, 1T1R write-verify on VACASK,
   seed 0 -> OUT/levels.json + .npz;
3. train: the music predictor (REFERENCE.md section 4) on the JSB chorales of ../shared/data/jsb (the first
   --train/--valid/--test chorales of each split), --hidden FeLIF neurons, 3-bit input synapses with
   model.synapse = "jart_vcm" and model.synapse_levels = "programmed": the level table is stage 2's population
   (copied into the run folder, where training reads it), --epochs epochs -> OUT/train/. The input current per
   weight unit is --current-scale (2e-8 A: the shipped 5e-8 A is for 150 neurons, whose initial weights are
   uniform in [0, sqrt(1/hidden)]; with 24 neurons it drives them to their 500 Hz ceiling, 2e-8 A keeps the
   input per neuron of the shipped network);
4. verify: `cosim.verify.runner.verify_run` on the last checkpoint, --samples test chorales, every synapse a device
   drawn from stage 2's population, read with its chord conductance at 0.2 V -> OUT/train/verify.json.

Then it prints a table, appends a section to benchmarks/RESULTS.md (date, machine, command, load average) and
writes benchmarks/results/foreign_device.json: device, levels, converged_fraction, adjacent_overlap (worst adjacent
pair), train_metric (test BCE of the last epoch), verify_prediction_agreement, seconds (the stages' wall times,
summed, as each stage recorded it when it ran), and the goals: >= 90 % converged, overlap < 1 %, agreement >= 95 %.

    .venv/bin/python benchmarks/foreign_device.py [--out runs/foreign_device] [--devices 64] [--hidden 24]
        [--current-scale 2e-8] [--epochs 8] [--train 48 --valid 8 --test 8] [--samples 4] [--jobs N]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
JSB = HERE.parents[1] / "shared" / "data" / "jsb" / "jsb-chorales-quarter.json"
DEVICE = "jart_vcm"
SECTION = "## Foreign RRAM model through the loop (JART VCM v1b)"
GOALS = {"converged_fraction": (0.9, ">="), "adjacent_overlap": (0.01, "<"),
         "verify_prediction_agreement": (0.95, ">=")}
"""Goals of issue 12: (value, relation)."""


def _stage(out: Path, name: str, run) -> dict:
    """Run stage `name` unless OUT/stages.json records it done; returns its record (seconds and what it gave)."""
    record_path = out / "stages.json"
    records = json.loads(record_path.read_text()) if record_path.exists() else {}
    if name in records:
        print(f"{name}: done earlier ({records[name]['seconds']:.0f} s), skipped", flush=True)
        return records[name]
    start = time.perf_counter()
    print(f"{name} ...", flush=True)
    result = run()
    records[name] = {"seconds": time.perf_counter() - start, **result}
    record_path.write_text(json.dumps(records, indent=1))
    print(f"{name}: {records[name]['seconds']:.0f} s", flush=True)
    return records[name]


def characterise(out: Path) -> dict:
    from cosim.devices.characterize import characterize

    summary = characterize(DEVICE, out / "characterize", quick=True)
    return {"converged_fraction": summary["converged_fraction"],
            "iv_nrmse_vacask_vs_ngspice": summary["iv_nrmse_vacask_vs_ngspice"],
            "set_vs_gate_ngspice_vs_vacask_rel": summary["set_vs_gate_ngspice_vs_vacask_rel"]}


def program(out: Path, devices: int) -> dict:
    from cosim.devices.plugins import synapse_device

    device = synapse_device(DEVICE)
    levels = device.program(device.mapping(), devices, 0, progress=True)
    levels.save(out / "levels")
    mapping = levels.mapping
    return {"levels": mapping.n_levels, "levels_s": list(mapping.levels_s), "v_read": mapping.v_read,
            "tolerance_s": mapping.tolerance_s, "devices_per_level": devices,
            "converged_fraction": float(levels.converged.mean()),
            "adjacent_overlap": float(levels.adjacent_overlap.max()),
            "adjacent_overlap_gaussian": float(levels.adjacent_overlap_gaussian.max()),
            "pulses_mean": float(levels.pulses.mean())}


def train_network(out: Path, args: argparse.Namespace) -> dict:
    from cosim.train.config import load_config
    from cosim.train.loop import train
    from cosim.train.models import SYNAPSE_LEVELS

    run_dir = out / "train"
    settings = ["data.dataset=jsb", f"data.path={json.dumps(str(args.data))}", f"data.train_subset={args.train}",
                f"data.valid_subset={args.valid}", f"data.test_subset={args.test}",
                f"model.synapse={json.dumps(DEVICE)}", "model.synapse_levels=\"programmed\"",
                f"model.synapse_devices={args.devices}",
                f"model.hidden={args.hidden}", f"model.current_scale={args.current_scale}", "model.bits=3",
                f"optimiser.lr={args.lr}", f"run.epochs={args.epochs}", "run.seed=0",
                f"run.out={json.dumps(str(run_dir))}"]
    cfg = load_config("music", settings)
    run_dir.mkdir(parents=True, exist_ok=True)
    for suffix in (".json", ".npz"):  # train on stage 2's population instead of programming another
        shutil.copyfile((out / "levels").with_suffix(suffix), (run_dir / SYNAPSE_LEVELS).with_suffix(suffix))
    history = train(cfg, resume=(run_dir / "config.toml").exists())
    last = history[-1]
    return {"settings": settings, "epochs": len(history), "test_loss": last["test_loss"],
            "test_frame_accuracy": last.get("test_frame_accuracy")}


def verify(out: Path, args: argparse.Namespace) -> dict:
    from cosim.verify.export import HardwareConfig
    from cosim.verify.runner import verify_run

    hw = HardwareConfig(levels_file=str(out / "levels"))
    summary = verify_run(out / "train", samples=args.samples, hw=hw, n_jobs=args.jobs)
    keys = ("prediction_agreement", "frame_agreement", "spike_count_agreement", "spike_time_error_s", "samples",
            "spikes_spice", "spice_loss", "surrogate_loss")
    return {key: summary[key] for key in keys if key in summary}


def met(name: str, value: float) -> bool:
    goal, relation = GOALS[name]
    return value >= goal if relation == ">=" else value < goal


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/foreign_device"), help="stage folder")
    parser.add_argument("--data", type=Path, default=JSB, help="jsb-chorales-quarter.json")
    parser.add_argument("--devices", type=int, default=64, help="devices per level of the programmed population")
    parser.add_argument("--hidden", type=int, default=24, help="FeLIF neurons of the music predictor")
    parser.add_argument("--current-scale", type=float, default=2e-8, help="A per weight unit (model.current_scale)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.02, help="learning rate (the main job's: at the paper's 5e-3 "
                        "8 epochs on 48 chorales stayed above the key-frequency baseline, BCE 0.219 vs 0.192)")
    parser.add_argument("--train", type=int, default=48, help="first N training chorales")
    parser.add_argument("--valid", type=int, default=8, help="first N validation chorales")
    parser.add_argument("--test", type=int, default=8, help="first N test chorales")
    parser.add_argument("--samples", type=int, default=4, help="test chorales verified in SPICE")
    parser.add_argument("--jobs", type=int, help="simulations at once (default: the machine's cores)")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        parser.error(f"JSB file {args.data} not found: give --data PATH/jsb-chorales-quarter.json")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    stages = {"characterise": _stage(out, "characterise", lambda: characterise(out)),
              "program": _stage(out, "program", lambda: program(out, args.devices)),
              "train": _stage(out, "train", lambda: train_network(out, args)),
              "verify": _stage(out, "verify", lambda: verify(out, args))}
    programmed = stages["program"]
    result = {"device": DEVICE, "levels": programmed["levels"], "converged_fraction": programmed["converged_fraction"],
              "adjacent_overlap": programmed["adjacent_overlap"],
              "train_metric": {"name": "test BCE (per key and frame)", "value": stages["train"]["test_loss"]},
              "verify_prediction_agreement": stages["verify"]["prediction_agreement"],
              "seconds": sum(stage["seconds"] for stage in stages.values())}
    result["goals"] = {name: {"goal": f"{relation} {goal}", "value": result[name], "met": met(name, result[name])}
                       for name, (goal, relation) in GOALS.items()}
    result["stages"] = stages

    rows = [("device", DEVICE),
            ("levels", f"{programmed['levels']} ({programmed['levels_s'][0] * 1e6:g} .. "
                       f"{programmed['levels_s'][-1] * 1e6:g} uS at {programmed['v_read']} V, "
                       f"+- {programmed['tolerance_s'] * 1e6:g} uS)"),
            ("devices per level", str(args.devices)),
            ("converged", f"{result['converged_fraction']:.4f} (goal >= 0.9)"),
            ("adjacent overlap, worst pair", f"{result['adjacent_overlap']:.4f} (Gaussian estimate "
                                             f"{programmed['adjacent_overlap_gaussian']:.1e}; goal < 0.01)"),
            ("write-verify pulses, mean", f"{programmed['pulses_mean']:.2f}"),
            ("test BCE after training", f"{stages['train']['test_loss']:.4f} ({stages['train']['epochs']} epochs)"),
            ("SPICE prediction agreement", f"{result['verify_prediction_agreement']:.4f} (goal >= 0.95; "
                                           f"{stages['verify']['samples']} samples)"),
            ("SPICE spike-count agreement", f"{stages['verify']['spike_count_agreement']:.4f}"),
            ("seconds (stages)", " + ".join(f"{name} {stage['seconds']:.0f}" for name, stage in stages.items())
             + f" = {result['seconds']:.0f}")]
    text = "| quantity | value |\n|---|---|\n" + "\n".join(f"| {name} | {value} |" for name, value in rows)
    print(text)
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    machine = f"`{platform.node()}`, {os.cpu_count()} CPUs (shared), load average {os.getloadavg()[0]:.1f} at the end"
    command = " ".join(["python", *sys.argv])
    with open(HERE / "RESULTS.md", "a") as f:
        f.write(f"\n{SECTION}, {stamp}\n\nMachine {machine}; `{command}`. Stages in `{out}` (a rerun skips the "
                 "finished ones; seconds are each stage's own). Network: the music predictor on the first "
                 f"{args.train}/{args.valid}/{args.test} JSB chorales, {args.hidden} FeLIF neurons, 3-bit input "
                 "synapses trained on the programmed level table of JART VCM 1T1R cells; verification draws every "
                 "synapse from the same programmed population.\n\n" + text + "\n")
    path = HERE / "results" / "foreign_device.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"date": stamp, "machine": machine, "command": command, **result}, indent=1))
    return 0 if all(goal["met"] for goal in result["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
