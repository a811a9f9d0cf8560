"""Goal runs of issue 6 (training): the music predictor on the standard JSB split and the tactile classifier on
the SYNTHETIC Braille set, through `cosim.train` exactly as `cosim train` runs them.

Runs (each in its own run folder under --out, resumed if it is there already, each in a fresh process so that
its peak memory is its own):

- music-float, music-3bit: BRUNO, float / 3-bit input synapses, --music-epochs epochs (goal: test BCE <= 0.18
  within 20 epochs for float);
- music-3bit-surrogate: the 3-bit run on the shipped fitted FeLIF surrogate (8-domain neuron circuit) instead of
  the analytic model, the network `benchmarks/verify_spice.py` then runs on that circuit;
- music-bruno-short, music-bptt-short: the same network on the first --short-chorales chorales of each split for
  three epochs, BRUNO against fine-step BPTT (1 us autograd): time, peak memory and the loss curves;
- tactile-felif-float, tactile-felif-3bit, tactile-lif-float, tactile-lif-3bit: SYNTHETIC Braille, FeLIF + BRUNO
  against the LIF output baseline, float and 3 bits, --tactile-epochs epochs.

    python benchmarks/train_music.py                         # everything (hours on 2 shared cores)
    python benchmarks/train_music.py --runs music-float      # one run (resumes it if interrupted)
    python benchmarks/train_music.py --runs tactile-lif-float --no-report   # train only
    python benchmarks/train_music.py --report-only           # table, RESULTS.md, JSON, figure from the folders

After the runs it prints a table of every run folder found, appends a section to benchmarks/RESULTS.md, and
writes benchmarks/results/train_music.json and benchmarks/results/train_music.png.
"""
from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing as mp
import os
import platform
import resource
import shlex
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
JSB = ROOT / "../shared/data/jsb/jsb-chorales-quarter.json"
MUSIC_GOAL_BCE, MUSIC_GOAL_EPOCHS = 0.18, 20

RUNS: dict[str, tuple[str, list[str]]] = {
    "music-float": ("music", []),
    "music-3bit": ("music", ["model.bits=3"]),
    "music-3bit-surrogate": ("music", ["model.bits=3", 'model.surrogate_file="default"']),
    "music-bruno-short": ("music", ["run.epochs=3", "SHORT"]),
    "music-bptt-short": ("music", ["run.epochs=3", "model.method=bptt", "SHORT"]),
    "tactile-felif-float": ("tactile", []),
    "tactile-felif-3bit": ("tactile", ["model.bits=3"]),
    "tactile-lif-float": ("tactile-lif", []),
    "tactile-lif-3bit": ("tactile-lif", ["model.bits=3"]),
}
"""Run name -> (shipped config, overrides); "SHORT" stands for the --short-chorales subsets."""


def run_config(name: str, args: argparse.Namespace):
    from cosim.train.config import load_config

    base, extra = RUNS[name]
    overrides = [f"run.seed={args.seed}", f"run.threads={args.threads}", f"run.out={json.dumps(str(args.out / name))}"]
    if base == "music":
        overrides += ["data.dataset=jsb", f"data.path={json.dumps(str(JSB.resolve()))}",
                      f"run.epochs={args.music_epochs}"]
    else:
        overrides += [f"run.epochs={args.tactile_epochs}"]
    for item in extra:
        overrides += ([f"data.{split}_subset={args.short_chorales}" for split in ("train", "valid", "test")]
                      if item == "SHORT" else [item])
    return load_config(base, overrides)


def _run_child(name: str, args: argparse.Namespace, queue) -> None:
    from cosim.train.checkpoint import latest_checkpoint
    from cosim.train.loop import train

    cfg = run_config(name, args)
    start = time.perf_counter()
    history = train(cfg, resume=latest_checkpoint(Path(cfg.run.out)) is not None)
    queue.put({"wall_s": time.perf_counter() - start, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
               / 1024, "epochs": len(history)})


def run(name: str, args: argparse.Namespace) -> None:
    """Train (or resume) one run in a fresh process; add its wall time and peak memory to <run>/bench.json."""
    queue = mp.get_context("spawn").Queue()
    child = mp.get_context("spawn").Process(target=_run_child, args=(name, args, queue))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"run {name} failed (exit code {child.exitcode}); see the messages above")
    result = queue.get()
    path = args.out / name / "bench.json"
    sessions = json.loads(path.read_text())["sessions"] if path.is_file() else []
    sessions.append(result)
    path.write_text(json.dumps({"sessions": sessions}, indent=1))


def summarise(name: str, folder: Path) -> dict | None:
    """Figures of one run folder, or None if it holds no finished epoch."""
    from cosim.train.checkpoint import read_metrics
    from cosim.train.config import load_config

    if not (folder / "metrics.jsonl").is_file():
        return None
    history = read_metrics(folder)
    cfg = load_config(folder / "config.toml")
    sessions = json.loads((folder / "bench.json").read_text())["sessions"] if (folder / "bench.json").is_file() else []
    out = {"run": name, "epochs": len(history), "seed": cfg.run.seed, "bits": cfg.model.bits,
           "neuron": cfg.model.neuron, "method": cfg.model.method, "h_s": cfg.model.h,
           "train_samples": cfg.data.train_subset or "all",
           "mean_epoch_s": sum(r["epoch_seconds"] for r in history) / len(history),
           "peak_rss_mb": max((s["peak_rss_mb"] for s in sessions), default=None),
           "history": history}
    if cfg.model.network == "music":
        best = min(history, key=lambda r: r["valid_loss"])
        first = next((r["epoch"] for r in history if r["test_loss"] <= MUSIC_GOAL_BCE), None)
        out.update(metric="test BCE", final=history[-1]["test_loss"], at_best_valid=best["test_loss"],
                   best_valid_epoch=best["epoch"], min_test=min(r["test_loss"] for r in history),
                   first_epoch_at_goal=first, initial=history[0]["test_loss"])
    else:
        accuracies = [r["test_accuracy"] for r in history]
        out.update(metric="test accuracy", final=accuracies[-1], best=max(accuracies),
                   best_epoch=1 + accuracies.index(max(accuracies)),
                   first_epoch_70=next((r["epoch"] for r in history if r["test_accuracy"] >= 0.70), None))
    return out


def table(rows: list[dict]) -> str:
    head = "| run | epochs | seed | metric | final | best / at best valid | epoch | s/epoch | peak RSS MB |"
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        music = r["metric"] == "test BCE"
        best = r["at_best_valid"] if music else r["best"]
        epoch = r["best_valid_epoch"] if music else r["best_epoch"]
        rss = f"{r['peak_rss_mb']:.0f}" if r["peak_rss_mb"] else "-"
        lines.append(f"| {r['run']} | {r['epochs']} | {r['seed']} | {r['metric']} | {r['final']:.4f} | {best:.4f} | "
                     f"{epoch} | {r['mean_epoch_s']:.0f} | {rss} |")
    return "\n".join(lines)


def figure(rows: list[dict], path: Path) -> None:
    fig, (ax_m, ax_t) = plt.subplots(1, 2, figsize=(12, 4.5))
    for r in rows:
        epochs = [h["epoch"] for h in r["history"]]
        if r["metric"] == "test BCE" and r["epochs"] > 1:
            ax_m.plot(epochs, [h["test_loss"] for h in r["history"]], marker="o", ms=3, label=f"{r['run']} test")
            ax_m.plot(epochs, [h["valid_loss"] for h in r["history"]], ls="--", alpha=0.6, label=f"{r['run']} valid")
        elif r["metric"] == "test accuracy":
            ax_t.plot(epochs, [h["test_accuracy"] for h in r["history"]], marker="o", ms=3, label=r["run"])
    ax_m.axhline(MUSIC_GOAL_BCE, color="k", lw=0.8, ls=":", label=f"goal {MUSIC_GOAL_BCE}")
    ax_m.set(xlabel="epoch", ylabel="BCE per key and step", title="music predictor, JSB chorales (BRUNO)")
    ax_t.set(xlabel="epoch", ylabel="test accuracy", title="tactile classifier, SYNTHETIC Braille")
    for ax in (ax_m, ax_t):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS), help="runs to train")
    parser.add_argument("--report-only", action="store_true", help="train nothing; report the folders found")
    parser.add_argument("--no-report", action="store_true", help="train only (report later with --report-only)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench", help="parent of the run folders")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--music-epochs", type=int, default=MUSIC_GOAL_EPOCHS)
    parser.add_argument("--tactile-epochs", type=int, default=30)
    parser.add_argument("--short-chorales", type=int, default=8, help="chorales per split of the *-short runs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    args = parser.parse_args()
    if not JSB.is_file() and any(n.startswith("music") for n in args.runs) and not args.report_only:
        raise SystemExit(f"JSB chorales file not found at {JSB}")
    if not args.report_only:
        for name in args.runs:
            print(f"== {name}", flush=True)
            run(name, args)
    if args.no_report:
        return
    rows = [s for name in RUNS if (s := summarise(name, args.out / name)) is not None]
    if not rows:
        raise SystemExit(f"no finished runs under {args.out}")
    text = table(rows)
    print(text)
    results = HERE / "results"
    figure(rows, results / "train_music.png")
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    machine = f"{platform.node()}, {os.cpu_count()} CPUs"
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])
    (results / "train_music.json").write_text(json.dumps(
        {"date": stamp, "machine": machine, "command": command, "runs": rows}, indent=1, default=str))
    music = {r["run"]: r for r in rows if r["metric"] == "test BCE"}
    notes = []
    if "music-float" in music:
        m = music["music-float"]
        within = m["first_epoch_at_goal"] is not None and m["first_epoch_at_goal"] <= MUSIC_GOAL_EPOCHS
        notes.append(f"music-float: test BCE {m['initial']:.4f} after epoch 1 -> {m['at_best_valid']:.4f} at the best "
                     f"validation epoch ({m['best_valid_epoch']}); first epoch with test BCE <= {MUSIC_GOAL_BCE}: "
                     f"{m['first_epoch_at_goal']} (goal {'met' if within else 'NOT met'} within "
                     f"{MUSIC_GOAL_EPOCHS} epochs).")
    short = [music.get(n) for n in ("music-bruno-short", "music-bptt-short")]
    if all(short):
        bruno, bptt = short
        curves = " vs ".join("/".join(f"{r['test_loss']:.4f}" for r in run["history"]) for run in (bptt, bruno))
        notes.append(f"BPTT (1 us autograd) vs BRUNO, {bptt['epochs']} vs {bruno['epochs']} epochs on "
                     f"{bruno['train_samples']} chorales: {bptt['mean_epoch_s']:.0f} s vs "
                     f"{bruno['mean_epoch_s']:.0f} s per epoch, peak RSS {bptt['peak_rss_mb']:.0f} vs "
                     f"{bruno['peak_rss_mb']:.0f} MB (whole process); test BCE by epoch {curves}.")
    section = [f"\n## Training goal runs (cosim.train), {stamp}\n",
               f"Machine `{machine}`; `{command}`. Figure: `benchmarks/results/train_music.png`. "
               "Music: JSB chorales, standard split, BRUNO at h = 1 us; \"best / at best valid\" is the test BCE at "
               "the epoch of lowest validation BCE. Tactile: SYNTHETIC Braille (simulated fingertip, not measured "
               "data); \"best\" is the best test accuracy over the epochs. s/epoch: wall time on a shared machine "
               "(training + evaluation).\n", text, ""] + [f"- {n}" for n in notes]
    with open(HERE / "RESULTS.md", "a") as f:
        f.write("\n".join(section) + "\n")


if __name__ == "__main__":
    main()
