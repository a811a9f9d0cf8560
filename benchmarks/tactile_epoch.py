"""One training epoch of the tactile classifier: the present code against the code before issue 14's work.

Every run trains the shipped FeLIF float tactile config (`cosim/train/configs/tactile.toml`, the SYNTHETIC Braille
set by default: 4320 training samples, batches of 128) for one epoch from the same seed through `cosim.train`'s
own training loop (`Trainer._train_epoch`: forward, loss, backward, optimiser step; no evaluation), each in a
fresh spawned process with OMP_WAIT_POLICY=PASSIVE (what importing cosim before torch sets, as `cosim train`
does):

- present: the config as shipped (model.method = "bruno": one autograd node per sequence, `bruno_sequence`);
- baseline: the same config on the code of --baseline-commit (default 00107d6, before the sequence-level BRUNO,
  the kernel's packing of moving neurons and the LIF's per-sequence constants), exported with `git archive` into
  a temporary folder, its fine kernel built there;
- step (with --runs): the present code with model.method = "bruno_step", BRUNO step by step.

Before the epoch each child also runs the first test batch forward and backward on a copy of the model: the
parent checks that the runs give the same loss bit for bit and gradients that agree to rounding.

    python benchmarks/tactile_epoch.py                        # 2 threads, table, RESULTS.md, results/*.json
    python benchmarks/tactile_epoch.py --set data.train_subset=512 --no-report   # a quick look
    python benchmarks/tactile_epoch.py --profile 4            # cProfile of 4 batches of the present code

Writes benchmarks/results/tactile_epoch.json: {"epoch_s", "baseline_epoch_s", "samples", "threads", "config",
"date", "machine", "command", "load_average", "baseline_commit", "runs", "first_batch"}.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bruno_vs_bptt import _child_environment, _in_child  # noqa: E402  (the same child set-up)

GOAL_EPOCH_S = 15.0
BASELINE_COMMIT = "00107d6"
RUNS = {"present": (False, []), "baseline": (True, []), "step": (False, ["model.method=bruno_step"])}
"""Run name -> (on the baseline commit's code, config overrides on top of the shipped config and --set)."""


def _config(overrides: list[str], threads: int, seed: int, out: str):
    from cosim.train.config import load_config

    return load_config("tactile", [*overrides, f"run.threads={threads}", f"run.seed={seed}",
                                   f"run.out={json.dumps(out)}"])


def _first_batch(trainer) -> dict:
    """Loss and parameter gradients of the first test batch on a copy of the model (torch's RNG restored)."""
    import copy

    import torch

    rng = torch.get_rng_state()
    model = copy.deepcopy(trainer.model)
    batch = next(trainer.task.batches("test", trainer.cfg.data.batch_size))
    loss = trainer.task.loss(model(batch.inputs), batch)
    loss.backward()
    torch.set_rng_state(rng)
    return {"loss": loss.item(), "grads": {name: p.grad.flatten().tolist() for name, p in model.named_parameters()
                                           if p.grad is not None}}


def _epoch(overrides: list[str], threads: int, seed: int, profile: int, code: str | None = None) -> dict:
    """Child process: build the trainer, check the first batch, time one training epoch (or profile batches).
    code: a folder holding another version of the `cosim` package to run instead of this checkout's (its fine
    kernel is built in a cache of its own there)."""
    _child_environment()
    if code is not None:
        sys.path.insert(0, code)
        os.environ["COSIM_CACHE"] = str(Path(code) / "cache")
    import resource

    from cosim.train.loop import Trainer

    with tempfile.TemporaryDirectory(prefix="tactile_epoch_") as out:
        cfg = _config(overrides, threads, seed, out)
        trainer = Trainer(cfg, progress=False)
        t0 = time.perf_counter()
        first = _first_batch(trainer)  # also builds / loads the fine kernel
        setup_s = time.perf_counter() - t0
        if profile:
            return {"profile": _profile(trainer, profile)}
        t0, cpu0 = time.perf_counter(), time.process_time()
        sums, spikes = trainer._train_epoch(1)
        epoch_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    metrics = trainer.task.metrics(sums)
    return {"epoch_s": epoch_s, "cpu_s": cpu_s, "setup_s": setup_s, "samples": sums["count"],
            "train_loss": metrics["loss"],
            "train_accuracy": metrics["accuracy"], "method": cfg.model.method, "threads": threads,
            "rate_output_hz": spikes["output"] / max(1, spikes["output_slots"]) / cfg.model.dt,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "first_batch": first}


def _profile(trainer, batches: int) -> str:
    """cProfile (by own time) of `batches` training batches."""
    import cProfile
    import io
    import pstats

    from cosim.train import loop

    loaded = list(zip(range(batches), trainer.task.batches("train", trainer.cfg.data.batch_size, trainer.order)))
    trainer.task.batches = lambda *args, **kwargs: iter(batch for _, batch in loaded)
    trainer.task.n_batches = lambda *args, **kwargs: len(loaded)
    profiler = cProfile.Profile()
    profiler.enable()
    trainer._train_epoch(1)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(20)
    return f"{len(loaded)} batches of {trainer.cfg.data.batch_size} ({loop.__name__}._train_epoch)\n" + text.getvalue()


def _max_relative_difference(a: dict, b: dict) -> float:
    """Largest |a - b| per parameter tensor over the largest |b| of that tensor, over all parameters."""
    worst = 0.0
    for name, values in b.items():
        scale = max((abs(v) for v in values), default=0.0) or 1.0
        worst = max(worst, max(abs(x - y) for x, y in zip(a[name], values)) / scale)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for both runs (repeatable), e.g. data.train_subset=512")
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=["present", "baseline"])
    parser.add_argument("--baseline-commit", default=BASELINE_COMMIT, help="git commit of the baseline code")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="only profile N batches of the present code and print the table")
    parser.add_argument("--no-report", action="store_true", help="print only (no JSON, no RESULTS.md entry)")
    args = parser.parse_args()
    if args.profile:
        print(_in_child(_epoch, args.overrides, args.threads, args.seed, args.profile)["profile"])
        return
    load_before = os.getloadavg()
    runs = {}
    with tempfile.TemporaryDirectory(prefix="tactile_epoch_baseline_") as code:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline_commit, "cosim"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", code], input=archive, check=True)
        for name in args.runs:
            on_baseline, overrides = RUNS[name]
            runs[name] = _in_child(_epoch, args.overrides + overrides, args.threads, args.seed, 0,
                                   code if on_baseline else None)
            r = runs[name]
            print(f"{name:9s} {r['method']:10s} {r['epoch_s']:7.1f} s  ({r['samples']} samples, train loss "
                  f"{r['train_loss']:.4f}, accuracy {r['train_accuracy']:.4f})", flush=True)
    load_after = os.getloadavg()
    check = {}
    for name in runs.keys() - {"present"}:
        if "present" in runs:
            a, b = runs["present"]["first_batch"], runs[name]["first_batch"]
            check[name] = {"same_loss": a["loss"] == b["loss"], "loss": a["loss"],
                           "max_relative_grad_difference": _max_relative_difference(a["grads"], b["grads"])}
    for r in runs.values():
        r.pop("first_batch")

    lines = ["| run | method | epoch, s | CPU, s | samples | train loss | train accuracy | output rate, Hz | "
             "peak RSS, MB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in runs.items():
        lines.append(f"| {name} | {r['method']} | {r['epoch_s']:.1f} | {r['cpu_s']:.1f} | {r['samples']} | "
                     f"{r['train_loss']:.4f} | "
                     f"{r['train_accuracy']:.4f} | {r['rate_output_hz']:.1f} | {r['peak_rss_mb']:.0f} |")
    if {"present", "baseline"} <= runs.keys():
        epoch_s, base_s = runs["present"]["epoch_s"], runs["baseline"]["epoch_s"]
        lines += ["", f"Speed-up {base_s / epoch_s:.2f}x over {args.baseline_commit}; present epoch {epoch_s:.1f} s "
                      f"(goal <= {GOAL_EPOCH_S:.0f} s: {'met' if epoch_s <= GOAL_EPOCH_S else 'NOT met'})."]
    for name, c in check.items():
        same = "the same bit for bit" if c["same_loss"] else "DIFFERENT"
        lines.append(f"First test batch, present vs {name}: loss {same} ({c['loss']:.6f}), parameter gradients "
                     f"differ by at most {c['max_relative_grad_difference']:.2e} of each tensor's largest.")
    print("\n".join(lines))
    if args.no_report:
        return
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    machine = f"{platform.node()}, {os.cpu_count()} CPUs"
    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/tactile_epoch.py", *sys.argv[1:]])
    config = "tactile (cosim/train/configs/tactile.toml" + "".join(f", {o}" for o in args.overrides) + ")"
    result = {"epoch_s": runs.get("present", {}).get("epoch_s"),
              "baseline_epoch_s": runs.get("baseline", {}).get("epoch_s"),
              "samples": next(iter(runs.values()))["samples"], "threads": args.threads, "config": config,
              "date": stamp, "machine": machine, "command": command,
              "load_average": {"before": load_before, "after": load_after}, "baseline_commit": args.baseline_commit,
              "runs": runs, "first_batch": check}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "tactile_epoch.json").write_text(json.dumps(result, indent=1))
    section = [f"\n## Tactile training epoch (issue 14), {stamp}\n",
               f"Machine `{machine}` (shared; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after), "
               f"{args.threads} torch threads, OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'PASSIVE')}; "
               f"`{command}`. Config: {config}, one training epoch (no evaluation), each run in a fresh process; "
               f"baseline: the code of commit {args.baseline_commit}. "
               "CPU: user + system time of the process over the epoch (all threads; on a loaded machine the "
               "steadier figure). JSON: `benchmarks/results/tactile_epoch.json`.\n", *lines]
    with open(HERE / "RESULTS.md", "a") as f:
        f.write("\n".join(section) + "\n")


if __name__ == "__main__":
    main()
