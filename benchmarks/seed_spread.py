"""Spread over seeds of tactile classifier runs: final and best test accuracy per (neuron, bits), mean and standard
deviation, with the curves of every seed in one figure.

The runs are made by `benchmarks/train_music.py` with one --out folder per seed, e.g.

    python benchmarks/train_music.py --runs tactile-felif-3bit tactile-lif-3bit --seed 1 --tactile-epochs 20 \
        --out runs/bench-seed1 --no-report
    python benchmarks/seed_spread.py runs/bench runs/bench-seed1 runs/bench-seed2

Every tactile run folder found directly under the given folders is grouped by its config (model.neuron,
model.bits); the table goes to stdout and benchmarks/RESULTS.md, the figures to benchmarks/results/seed_spread.json
and seed_spread.png.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import shlex
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from cosim.train.checkpoint import read_metrics  # noqa: E402
from cosim.train.config import load_config  # noqa: E402


def tactile_runs(parents: list[Path]) -> dict[tuple[str, str], list[dict]]:
    """(neuron, bits) -> one entry per run folder: seed, epochs, test accuracy by epoch."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for parent in parents:
        for folder in sorted(p for p in parent.iterdir() if (p / "metrics.jsonl").is_file()):
            cfg = load_config(folder / "config.toml")
            if cfg.model.network != "tactile":
                continue
            accuracy = [row["test_accuracy"] for row in read_metrics(folder)]
            key = (cfg.model.neuron, str(cfg.model.bits or "float"))
            groups.setdefault(key, []).append({"folder": str(folder), "seed": cfg.run.seed, "epochs": len(accuracy),
                                               "test_accuracy": accuracy})
    return groups


def _sd(values: list[float]) -> float:
    """Sample standard deviation; 0 for a single seed."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("parents", nargs="+", type=Path, help="folders holding run folders (one per seed)")
    args = parser.parse_args()
    groups = tactile_runs(args.parents)
    if not groups:
        raise SystemExit(f"no tactile run folders under {[str(p) for p in args.parents]}")

    rows = ["| neuron | bits | seeds | epochs | final test accuracy per seed | final mean +- sd | best mean +- sd |",
            "|---|---|---|---|---|---|---|"]
    summary = {}
    for (neuron, bits), runs in sorted(groups.items()):
        finals = [r["test_accuracy"][-1] for r in runs]
        bests = [max(r["test_accuracy"]) for r in runs]
        summary[f"{neuron}-{bits}"] = {"runs": runs, "final_mean": statistics.mean(finals),
                                       "final_sd": _sd(finals), "best_mean": statistics.mean(bests),
                                       "best_sd": _sd(bests)}
        s = summary[f"{neuron}-{bits}"]
        rows.append(f"| {neuron} | {bits} | {', '.join(str(r['seed']) for r in runs)} | "
                    f"{', '.join(str(r['epochs']) for r in runs)} | {', '.join(f'{x:.4f}' for x in finals)} | "
                    f"{s['final_mean']:.4f} +- {s['final_sd']:.4f} | {s['best_mean']:.4f} +- {s['best_sd']:.4f} |")
    print("\n".join(rows))

    out = HERE / "results"
    out.mkdir(exist_ok=True)
    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/seed_spread.py", *sys.argv[1:]])
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    (out / "seed_spread.json").write_text(json.dumps({"date": stamp, "machine": platform.node(), "command": command,
                                                      "groups": summary}, indent=1))
    fig, ax = plt.subplots(figsize=(7, 4))
    for (key, group), color in zip(sorted(summary.items()), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        for i, run in enumerate(group["runs"]):
            ax.plot(range(1, run["epochs"] + 1), run["test_accuracy"], color=color,
                    label=f"{key} ({len(group['runs'])} seeds)" if i == 0 else None)
    ax.set(xlabel="epoch", ylabel="test accuracy", title="tactile classifier, SYNTHETIC Braille: one line per seed")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "seed_spread.png", dpi=120)
    plt.close(fig)
    with open(HERE / "RESULTS.md", "a") as f:
        f.write(f"\n## Seed spread, tactile classifier ({stamp}, {platform.node()})\n\n`{command}`. SYNTHETIC "
                "Braille; test accuracy after the last epoch and the best over the epochs; sd: sample standard "
                "deviation over seeds. Figure: `benchmarks/results/seed_spread.png`.\n\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
