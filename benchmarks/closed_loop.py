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
  chorales in SPICE again; once per programming seed (``--seeds``: one chip each, its own fine-tuning folder
  ``finetune-seed<S>`` of the run). Keys: ``in_the_loop`` {spice_metric_before, spice_metric_after, model_metric
  (the model's BCE on the same chorales before fine-tuning), metric, epochs, seconds: means over the seeds;
  gap_closed (that of the means), goal_met, goal_met_every_seed, per_seed, ...} and ``verification_adds_clamp``
  (whether verification adds anything to the neuron netlists: false). ``--control`` adds the same K epochs on the
  same chorales trained through the surrogate alone (ordinary BRUNO training), measured in SPICE the same way
  (``per_seed[i].control``, ``control_gap_closed``): what fine-tuning without the circuit gives.

    .venv/bin/python benchmarks/closed_loop.py --part in_the_loop [--epochs 4] [--seeds 0 1 2] [--control]

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
import json
import subprocess
import time
from pathlib import Path

import recording
import torch

from cosim.train.config import load_config
from cosim.train.loop import train
from cosim.train.models import fitted_surrogate
from cosim.verify.export import HardwareConfig
from cosim.verify.in_the_loop import FinetuneConfig, Finetuner, finetune_run, gap_closed
from cosim.verify.runner import load_run

HERE = Path(__file__).resolve().parent
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


def surrogate_control(run: Path, ft: FinetuneConfig, hw: HardwareConfig, n_jobs: int, folder: str) -> dict:
    """The same epochs and chorales as the fine-tuning, trained through the surrogate alone (the model's own
    BRUNO forward), measured in SPICE on the same held-out chorales (results stored in RUN/<folder>/jobs)."""
    cfg, model, task, _ = load_run(run)
    torch.manual_seed(cfg.run.seed)
    tuner = Finetuner(model, task, cfg, ft, hw, run / folder, run / "verify", fitted_surrogate(cfg.model), n_jobs,
                      progress=False)
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


SEED_KEYS = ("spice_metric_before", "spice_metric_after", "model_metric", "model_metric_after", "gap_closed",
             "seconds", "prediction_agreement_before", "prediction_agreement_after", "history")
"""What each programming seed's fine-tuning reports (``in_the_loop.per_seed``)."""


def _share(x: float | None) -> str:
    return "none (no gap)" if x is None else f"{x:.2f}"


def part_in_the_loop(args: argparse.Namespace) -> tuple[dict, str]:
    run, train_s = train_base(args)
    ft = FinetuneConfig(epochs=args.epochs, samples=args.samples, eval_samples=args.eval_samples,
                        max_steps=args.max_steps, lr=args.lr, batch_size=args.batch_size)
    start = time.perf_counter()
    per_seed, last = [], {}
    for seed in args.seeds:  # each seed: another chip (devices drawn from the write-verify Monte Carlo)
        hw = HardwareConfig(seed=seed, neuron_options={"n_domains": args.domains})
        last = finetune_run(run, ft, hw, n_jobs=args.jobs, progress=False, folder=f"finetune-seed{seed}")
        row = {"seed": seed, **{key: last[key] for key in SEED_KEYS}}
        if args.control:
            row["control"] = surrogate_control(run, ft, hw, args.jobs, f"finetune-control-seed{seed}")
            row["control"]["gap_closed"] = gap_closed(row["spice_metric_before"],
                                                      row["control"]["spice_metric_after"], row["model_metric"])
        per_seed.append(row)
    mean = {key: sum(row[key] for row in per_seed) / len(per_seed)
            for key in ("spice_metric_before", "spice_metric_after", "model_metric", "model_metric_after", "seconds")}
    closed = gap_closed(mean["spice_metric_before"], mean["spice_metric_after"], mean["model_metric"])
    entry = {**mean, "metric": last["metric"], "epochs": args.epochs, "gap_closed": closed,
             "goal_met": closed is not None and closed >= 0.5,
             "goal_met_every_seed": all(row["gap_closed"] is not None and row["gap_closed"] >= 0.5 for row in per_seed),
             "averaged_over": f"programming seeds {args.seeds}, one chip each (the metrics are means over the seeds, "
                              "gap_closed that of the means, seconds the mean fine-tuning wall time of one seed)",
             "samples_per_epoch": args.samples, "eval_samples": last["eval_samples"], "max_steps": args.max_steps,
             "batch_size": args.batch_size, "lr": args.lr, "simulator": last["simulator"], "neurons": last["neurons"],
             "inputs": last["inputs"], "bits": last["bits"], "reprogramming": last["reprogramming"],
             "seconds_all_seeds_with_evaluations": time.perf_counter() - start, "train_base_seconds": train_s,
             "run": str(run), "domains": args.domains, "programming": "monte_carlo", "per_seed": per_seed,
             "network": f"music predictor, JSB, 54 -> {args.hidden} FeLIF (analytic model, BRUNO) -> float readout, "
                        f"3-bit RRAM pairs, {args.current_scale * 1e9:g} nA per weight unit; base trained "
                        f"{args.train_epochs} epochs on {args.train_subset} chorales; fine-tuned and measured on the "
                        f"first {args.max_steps} steps of each chorale"}
    if args.control:
        entry["control_gap_closed"] = gap_closed(
            mean["spice_metric_before"], sum(row["control"]["spice_metric_after"] for row in per_seed) / len(per_seed),
            mean["model_metric"])
    rows = "\n".join(
        f"| {row['seed']} | {row['spice_metric_before']:.4f} | {row['model_metric']:.4f} | "
        f"{row['spice_metric_after']:.4f} | {row['model_metric_after']:.4f} | {_share(row['gap_closed'])} | "
        + (f"{row['control']['spice_metric_after']:.4f} | {_share(row['control']['gap_closed'])} |" if args.control
           else "- | - |") for row in per_seed)
    text = (f"SPICE-in-the-loop fine-tuning: {entry['network']}. Held-out: {last['eval_samples']} test chorales, "
            f"{args.domains}-domain FeLIF circuits, write-verify Monte Carlo pairs (one chip per seed), "
            f"{last['simulator']}; {args.epochs} epochs of {args.samples} chorales, {args.batch_size} per update, lr "
            f"{args.lr:g}. Mean over the seeds: BCE in SPICE **{mean['spice_metric_before']:.4f} -> "
            f"{mean['spice_metric_after']:.4f}** (the model before: {mean['model_metric']:.4f}, after: "
            f"{mean['model_metric_after']:.4f}): gap closed **{_share(closed)}** (goal 0.5: "
            f"{'met' if entry['goal_met'] else 'NOT met'} on the mean, "
            f"{'met' if entry['goal_met_every_seed'] else 'NOT met'} on every seed)"
            + (f"; through the surrogate alone (control) {_share(entry['control_gap_closed'])}" if args.control else "")
            + f". Fine-tuning {mean['seconds']:.0f} s per seed.\n\n"
            "| seed | SPICE before | model before | SPICE after | model after | gap closed | control SPICE after | "
            "control gap closed |\n|---|---:|---:|---:|---:|---:|---:|---:|\n" + rows)
    return {"in_the_loop": entry, "verification_adds_clamp": last["verification_adds_clamp"]}, text


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
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="in_the_loop part: seeds of the programming draw, one chip each (default 0 1 2)")
    parser.add_argument("--jobs", type=int, default=2, help="simulations at once")
    parser.add_argument("--control", action="store_true", help="also fine-tune through the surrogate alone")
    parser.add_argument("--support-epochs", default="4,2",
                        help="support/refit parts: training epochs of music,tactile (default 4,2)")
    parser.add_argument("--parent", type=Path, help="support/refit parts: the surrogate before the signed design "
                                                    f"(default: surrogates/felif.json of git {PARENT_REVISION})")
    parser.add_argument("--dry-run", action="store_true", help="print only; RESULTS.md and JSON untouched")
    args = parser.parse_args(argv)
    return recording.run_parts(PARTS, args.part, args, script="closed_loop.py", section=SECTION,
                               json_name="closed_loop.json", dry_run=args.dry_run)


if __name__ == "__main__":
    main()
