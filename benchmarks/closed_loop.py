"""Issue 15, closing the loop: benchmarks/results/closed_loop.json.

Parts (``--part``, repeatable; each writes only its own keys into benchmarks/results/closed_loop.json, keeping
the keys other parts wrote, and appends its text to the "Closing the loop" section of benchmarks/RESULTS.md):

* ``in_the_loop``: SPICE-in-the-loop fine-tuning (`cosim.verify.in_the_loop`). A small 3-bit music predictor
  (JSB, 54 keys -> ``--hidden`` FeLIF neurons -> float readout; the paper's has 150 neurons and trains 100
  epochs on all chorales) is trained with BRUNO on the analytic FeLIF model, then measured in SPICE on held-out
  test chorales (the first ``--max-steps`` steps of ``--eval-samples`` of them, programmed RRAM pairs drawn from
  the write-verify Monte Carlo, FeLIF circuits with ``--domains`` FeCap domains, VACASK): SPICE's BCE is worse
  than the model's. K = ``--epochs`` fine-tuning epochs of ``--samples`` training chorales each, the device
  layer's forward in SPICE and the gradient through the surrogate at the SPICE states, then the same held-out
  chorales in SPICE again. Keys: ``in_the_loop`` {spice_metric_before, spice_metric_after, model_metric (the
  model's BCE on the same chorales before fine-tuning), metric, epochs, seconds, gap_closed, ...} and
  ``verification_adds_clamp`` (whether verification adds anything to the neuron netlists: false).
  ``--control`` adds the same K epochs on the same chorales trained through the surrogate alone (ordinary BRUNO
  training), measured in SPICE the same way (``in_the_loop.control``): what fine-tuning without the circuit gives.

    .venv/bin/python benchmarks/closed_loop.py --part in_the_loop [--epochs 4] [--samples 48] [--control]

* ``support``: the shipped configs' 3-bit networks (music: music.toml on its music21 chorales; tactile:
  tactile.toml on synthetic Braille) trained ``--support-epochs`` epochs each with the shipped FeLIF surrogate
  (``model.surrogate_file=default``) and, for comparison, with ``--parent`` (the surrogate shipped before the
  signed design, read from git: ``PARENT_REVISION``); key ``outside_support_fraction`` {music, tactile} (the last
  epoch's fraction of FeLIF neuron-steps outside the support) with the "before" figures beside them.
* ``refit``: the music network trained with the ``--parent`` surrogate and ``verify.refit = true`` (SPICE
  verification of 1 test chorale, 40 steps, at the last epoch); the refit the outside-support fraction triggers
  (`cosim.train.refit`); key ``refit`` {agreement_before, agreement_after, outside_before, outside_after, ...}.

    .venv/bin/python benchmarks/closed_loop.py --part support --part refit [--support-epochs 4,2]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from cosim.train.config import load_config
from cosim.train.loop import train
from cosim.train.models import fitted_surrogate
from cosim.verify.export import HardwareConfig
from cosim.verify.in_the_loop import FinetuneConfig, Finetuner, finetune_run
from cosim.verify.runner import load_run

HERE = Path(__file__).resolve().parent
RESULTS_JSON = HERE / "results" / "closed_loop.json"
SECTION = "## Closing the loop"
JSB = HERE.parent.parent / "shared" / "data" / "jsb" / "jsb-chorales-quarter.json"


def train_base(args: argparse.Namespace) -> tuple[Path, float]:
    """The 3-bit music network fine-tuned (trained here unless its run folder has a checkpoint): (run, seconds)."""
    run = args.out / "music"
    if (run / "checkpoints").is_dir():
        return run, 0.0
    start = time.perf_counter()
    cfg = load_config("music", ["data.dataset=jsb", f"data.path={json.dumps(str(args.jsb))}", "model.bits=3",
                                f"model.hidden={args.hidden}", f"model.current_scale={args.current_scale}",
                                f"data.train_subset={args.train_subset}",
                                "data.valid_subset=16", "data.test_subset=16", f"run.epochs={args.train_epochs}",
                                "run.threads=1", f"run.out={json.dumps(str(run))}"])
    train(cfg, progress=False)
    return run, time.perf_counter() - start


def surrogate_control(run: Path, ft: FinetuneConfig, hw: HardwareConfig, n_jobs: int) -> dict:
    """The same epochs and chorales as the fine-tuning, trained through the surrogate alone (the model's own
    BRUNO forward), measured in SPICE on the same held-out chorales."""
    cfg, model, task, _ = load_run(run)
    torch.manual_seed(cfg.run.seed)
    tuner = Finetuner(model, task, cfg, ft, hw, run / "finetune-control", run / "verify", fitted_surrogate(cfg.model),
                      n_jobs, progress=False)
    start = time.perf_counter()
    for epoch in range(1, ft.epochs + 1):
        for batch in tuner.epoch_batches(epoch):
            model.train()
            tuner.optimiser.zero_grad(set_to_none=True)
            task.loss(model(batch.inputs), batch).backward()
            tuner.optimiser.step()
    seconds = time.perf_counter() - start
    after = tuner.evaluate()
    return {"spice_metric_after": after["spice_metric"], "model_metric_after": after["surrogate_metric"],
            "seconds": seconds, "what": "the same epochs and chorales trained through the surrogate (BRUNO), no SPICE"}


def part_in_the_loop(args: argparse.Namespace) -> tuple[dict, str]:
    run, train_s = train_base(args)
    ft = FinetuneConfig(epochs=args.epochs, samples=args.samples, eval_samples=args.eval_samples,
                        max_steps=args.max_steps, lr=args.lr, batch_size=args.batch_size)
    hw = HardwareConfig(seed=args.seed, neuron_options={"n_domains": args.domains})
    start = time.perf_counter()
    record = finetune_run(run, ft, hw, n_jobs=args.jobs, progress=False)
    total_s = time.perf_counter() - start
    keys = ("spice_metric_before", "spice_metric_after", "model_metric", "model_metric_after", "metric", "epochs",
            "seconds", "gap_closed", "samples_per_epoch", "eval_samples", "max_steps", "simulator", "neurons",
            "inputs", "bits", "prediction_agreement_before", "prediction_agreement_after", "reprogramming", "history")
    entry = {key: record[key] for key in keys}
    closed = record["gap_closed"]
    closed_text = "none (no gap)" if closed is None else f"{closed:.2f}"
    entry |= {"goal_met": closed is not None and closed >= 0.5, "seconds_with_evaluations": total_s,
              "train_base_seconds": train_s, "run": str(run), "domains": args.domains, "programming": "monte_carlo",
              "network": f"music predictor, JSB, 54 -> {args.hidden} FeLIF (analytic model, BRUNO) -> float readout, "
                         f"3-bit RRAM pairs, {args.current_scale * 1e9:g} nA per weight unit; base trained "
                         f"{args.train_epochs} epochs on {args.train_subset} "
                         f"chorales; fine-tuned and measured on the first {args.max_steps} steps of each chorale"}
    if args.control:
        entry["control"] = surrogate_control(run, ft, hw, args.jobs)
    text = (f"SPICE-in-the-loop fine-tuning: {entry['network']}. Held-out: {record['eval_samples']} test chorales, "
            f"{args.domains}-domain FeLIF circuits, write-verify Monte Carlo pairs, {record['simulator']}. BCE in "
            f"SPICE **{record['spice_metric_before']:.4f} -> {record['spice_metric_after']:.4f}** after "
            f"{args.epochs} epochs of {args.samples} chorales (the model before: {record['model_metric']:.4f}; "
            f"after: {record['model_metric_after']:.4f}): gap closed **{closed_text}** (goal 0.5: "
            f"{'met' if entry['goal_met'] else 'NOT met'}); fine-tuning {record['seconds']:.0f} s, with the two "
            f"evaluations {total_s:.0f} s.")
    if args.control:
        c = entry["control"]
        text += (f" Control, the same epochs through the surrogate alone: SPICE BCE {c['spice_metric_after']:.4f}, "
                 f"model {c['model_metric_after']:.4f}.")
    return {"in_the_loop": entry, "verification_adds_clamp": record["verification_adds_clamp"]}, text


PARENT_REVISION = "e70e17c^"
"""The git revision whose surrogates/felif.json is the FeLIF surrogate fitted on non-negative currents only (0 to
100 nA; shipped before the signed design of issue 15)."""


def parent_surrogate(args: argparse.Namespace) -> Path:
    """The ``--parent`` surrogate file (default: surrogates/felif.json of PARENT_REVISION, written into --out)."""
    if args.parent is not None:
        return args.parent
    path = args.out / "felif-parent.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(subprocess.run(["git", "-C", str(HERE.parent), "show", f"{PARENT_REVISION}:surrogates/felif.json"],
                                    capture_output=True, check=True).stdout)
    return path


def train_shipped(name: str, surrogate: str, epochs: int, run: Path, *extra: str) -> list[dict]:
    """Train the shipped config `name` with 3-bit synapses and `surrogate` (a fresh run folder); its history."""
    from cosim.verify.runner import verify_epoch

    cfg = load_config(name, ["model.bits=3", f"model.surrogate_file={json.dumps(surrogate)}", f"run.epochs={epochs}",
                             "run.threads=1", f"run.out={json.dumps(str(run))}", *extra])
    if run.exists():
        raise FileExistsError(f"{run} exists: remove it or give another --out")
    return train(cfg, progress=False, verify=verify_epoch if cfg.verify.every else None)


def part_support(args: argparse.Namespace) -> tuple[dict, str]:
    epochs = dict(zip(("music", "tactile"), (int(e) for e in args.support_epochs.split(","))))
    parent = parent_surrogate(args)
    entry: dict = {"epochs": epochs, "before": {}, "surrogate": "surrogates/felif.json",
                   "parent": f"{PARENT_REVISION}:surrogates/felif.json"}
    for name, n in epochs.items():
        for label, surrogate in (("after", "default"), ("before", str(parent))):
            start = time.perf_counter()
            history = train_shipped(name, surrogate, n, args.out / f"support-{name}-{label}")
            fraction = next(v for k, v in history[-1].items() if k.startswith("outside_support_"))
            if label == "after":
                entry[name] = fraction
            else:
                entry["before"][name] = fraction
            entry.setdefault("seconds", {})[f"{name}_{label}"] = time.perf_counter() - start
    text = (f"Outside-support fraction of the shipped configs' 3-bit networks (last of {epochs['music']} music / "
            f"{epochs['tactile']} tactile epochs, synthetic Braille): music **{entry['music']:.3%}**, tactile "
            f"**{entry['tactile']:.3%}** with the surrogate fitted on the signed design (goal <= 1 %); with the "
            f"0-100 nA surrogate before it: music {entry['before']['music']:.3%}, tactile "
            f"{entry['before']['tactile']:.3%}.")
    return {"outside_support_fraction": entry}, text


def part_refit(args: argparse.Namespace) -> tuple[dict, str]:
    epochs = int(args.support_epochs.split(",")[0])
    run = args.out / "refit-music"
    start = time.perf_counter()
    train_shipped("music", str(parent_surrogate(args)), epochs, run, "verify.refit=true", f"verify.every={epochs}",
                  "verify.samples=1", "verify.max_steps=40")
    from cosim.train.refit import read_refits

    refits = read_refits(run)
    if not refits:
        raise RuntimeError(f"no refit in {run}: the outside-support fraction stayed below verify.refit_outside")
    r = refits[0]
    entry = {key: r.get(key) for key in ("agreement_before", "agreement_after", "outside_before", "outside_after",
                                         "epoch", "trigger", "ok", "version", "seconds", "stimuli", "holdout",
                                         "split")} | {"run_seconds": time.perf_counter() - start, "run": str(run)}
    text = (f"Refit during training (music, 3-bit, the 0-100 nA surrogate, verify.refit): after epoch {r['epoch']} "
            f"({r['trigger']}), {r['stimuli']} circuit runs and the warm-started fit in {r['seconds']:.0f} s; "
            f"outside-support on the {r['split']} split **{r['outside_before']:.3%} -> {r['outside_after']:.4%}**, "
            f"SPICE agreement {r['agreement_before']} -> {r['agreement_after']} (1 test chorale, 40 steps).")
    return {"refit": entry}, text


PARTS = {"in_the_loop": part_in_the_loop, "support": part_support, "refit": part_refit}


def merge_json(keys: dict, stamp: str) -> None:
    """Write `keys` into closed_loop.json, keeping the keys other parts wrote."""
    report = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    report.update(keys)
    report.setdefault("written", {}).update({key: stamp for key in keys})
    RESULTS_JSON.parent.mkdir(exist_ok=True)
    RESULTS_JSON.write_text(json.dumps(report, indent=2, default=float))


def append_results(text: str) -> None:
    """Add `text` at the end of this benchmark's section of RESULTS.md (the section is created if missing)."""
    path = HERE / "RESULTS.md"
    content = path.read_text() if path.exists() else ""
    if SECTION not in content:
        path.write_text(content.rstrip("\n") + f"\n\n{SECTION}\n\n{text}\n")
        return
    start = content.index(SECTION) + len(SECTION)
    following = content.find("\n## ", start)
    end = len(content) if following < 0 else following
    path.write_text(content[:end].rstrip("\n") + f"\n\n{text}\n" + content[end:])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", action="append", choices=sorted(PARTS), required=True)
    parser.add_argument("--out", type=Path, default=Path("runs/closed_loop"), help="run folders")
    parser.add_argument("--jsb", type=Path, default=JSB, help="jsb-chorales-quarter.json")
    parser.add_argument("--hidden", type=int, default=16, help="FeLIF neurons of the music network")
    parser.add_argument("--current-scale", type=float, default=1.6e-8,
                        help="A per weight unit: the paper's 50 nA x sqrt(16/150) for 16 neurons, whose initial "
                             "weights (uniform[0, sqrt(1/hidden)]) are 3x the 150 neurons' (default 1.6e-8)")
    parser.add_argument("--train-subset", type=int, default=96, help="training chorales of the base network")
    parser.add_argument("--train-epochs", type=int, default=16, help="training epochs of the base network")
    parser.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs (K)")
    parser.add_argument("--samples", type=int, default=48, help="training chorales per fine-tuning epoch")
    parser.add_argument("--eval-samples", type=int, default=16, help="held-out test chorales")
    parser.add_argument("--max-steps", type=int, default=24, help="steps of each chorale")
    parser.add_argument("--lr", type=float, default=1e-2, help="fine-tuning learning rate (0: the run's)")
    parser.add_argument("--batch-size", type=int, default=4, help="chorales per fine-tuning update")
    parser.add_argument("--domains", type=int, default=8, help="FeCap domains of the FeLIF circuits (1 or 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the programming draw")
    parser.add_argument("--jobs", type=int, default=2, help="simulations at once")
    parser.add_argument("--control", action="store_true", help="also fine-tune through the surrogate alone")
    parser.add_argument("--support-epochs", default="4,2",
                        help="support/refit parts: training epochs of music,tactile (default 4,2)")
    parser.add_argument("--parent", type=Path, help="support/refit parts: the surrogate before the signed design "
                                                    f"(default: surrogates/felif.json of git {PARENT_REVISION})")
    parser.add_argument("--dry-run", action="store_true", help="print only; RESULTS.md and JSON untouched")
    args = parser.parse_args(argv)
    report = {}
    for part in args.part:
        load_before = os.getloadavg()[0]
        keys, text = PARTS[part](args)
        stamp = datetime.datetime.now().isoformat(timespec="seconds")
        header = (f"### {part}: {stamp}, `{platform.node()}`, {os.cpu_count()} CPUs\n\nCommand: `python "
                  f"{' '.join(['benchmarks/closed_loop.py', *sys.argv[1:]])}`. Load average before/after: "
                  f"{load_before:.1f}/{os.getloadavg()[0]:.1f} (shared machine).\n\n")
        for value in keys.values():
            if isinstance(value, dict):
                value.update({"load_before": load_before, "load_after": os.getloadavg()[0], "date": stamp,
                              "machine": platform.node(), "cpus": os.cpu_count()})
        print(header + text)
        if not args.dry_run:
            merge_json(keys, stamp)
            append_results(header + text)
        report.update(keys)
    return report


if __name__ == "__main__":
    main()
