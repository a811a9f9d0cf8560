"""Data sets of cosim.data: sizes, load times, and a nearest-centroid baseline on the SYNTHETIC Braille task.

Run from the repository root:  .venv/bin/python benchmarks/data_sets.py
Prints a table, appends a section to benchmarks/RESULTS.md, writes benchmarks/results/data_sets.json and
benchmarks/results/data_sets.png (a JSB and a music21 piano roll, SYNTHETIC Braille raw and preprocessed).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pickle
import platform
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from cosim.data import (  # noqa: E402
    KEPT_TAXELS,
    LETTERS,
    ChoraleSplits,
    load_braille_raw,
    load_jsb,
    load_music21_chorales,
    preprocess_braille,
    synthetic_braille,
)

HERE = Path(__file__).resolve().parent
JSB = HERE.parent / "../shared/data/jsb/jsb-chorales-quarter.json"


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def music_summary(splits: ChoraleSplits) -> dict:
    parts = (splits.train, splits.valid, splits.test)
    rolls = [r for p in parts for r in p.rolls]
    return {"chorales": [len(p) for p in parts], "prediction_steps": [p.n_steps for p in parts],
            "notes_outside_keys": sum(p.notes_outside_keys for p in parts),
            "mean_keys_per_step": float(np.mean(np.concatenate([r.sum(axis=1) for r in rolls]))),
            "steps_min_max": [min(map(len, rolls)), max(map(len, rolls))], "source": splits.source}


def nearest_centroid_accuracy(data) -> float:
    train, test = data.train, data.test
    centroids = torch.stack([train.inputs[train.labels == c].mean(0) for c in range(len(LETTERS))])
    distance = ((test.inputs[:, None] - centroids[None]) ** 2).sum(dim=(2, 3))
    return (distance.argmin(dim=1) == test.labels).double().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="synthetic Braille generator seeds")
    args = parser.parse_args()
    results: dict = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": platform.node(),
                     "cpus": os.cpu_count(), "command": " ".join([Path(sys.executable).name] + sys.argv)}
    rows = []

    if JSB.is_file():
        jsb, seconds = timed(load_jsb, JSB)
        results["jsb"] = music_summary(jsb) | {"load_s": seconds}
        rows.append(("JSB load (json)", f"{seconds:.3f} s", f"{results['jsb']['chorales']} chorales"))
        rows.append(("JSB notes outside keys 43..96", str(results["jsb"]["notes_outside_keys"]), ""))
    else:
        jsb = None
        print(f"JSB file not found at {JSB}; skipped")

    with tempfile.TemporaryDirectory() as cache:
        music, parse_s = timed(load_music21_chorales, cache_dir=cache)
        _, cached_s = timed(load_music21_chorales, cache_dir=cache)
    results["music21"] = music_summary(music) | {"parse_s": parse_s, "cached_load_s": cached_s}
    rows.append(("music21 corpus parse", f"{parse_s:.1f} s", f"{results['music21']['chorales']} chorales "
                 "(music21's own parse cache may be warm)"))
    total = sum(float(r.sum()) for s in (music.train, music.valid, music.test) for r in s.rolls)
    outside = results["music21"]["notes_outside_keys"]
    rows.append(("music21 notes outside keys 43..96", str(outside),
                 f"{100 * outside / (total + outside):.2f} % of sounding (step, key) cells; 0 with transpose=12"))
    rows.append(("music21 cached load", f"{cached_s:.3f} s", results["music21"]["source"]))

    accuracies = []
    for seed in range(args.seeds):
        records, generate_s = timed(synthetic_braille, 200, seed=seed)
        data, preprocess_s = timed(preprocess_braille, records, seed=0, source=f"synthetic seed {seed}")
        accuracies.append(nearest_centroid_accuracy(data))
        if seed == 0:
            first_records, first_data = records, data
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "synthetic.pkl"
                path.write_bytes(pickle.dumps(records))
                _, restricted_s = timed(load_braille_raw, path)
                _, plain_s = timed(pickle.loads, path.read_bytes())
            results["braille_synthetic"] = {
                "records": len(records), "generate_s": generate_s, "preprocess_s": preprocess_s,
                "raw_steps": data.raw_steps, "steps": data.steps, "channels": data.channels,
                "train_test": [len(data.train), len(data.test)],
                "restricted_load_s": restricted_s, "plain_pickle_load_s": plain_s}
            rows.append(("SYNTHETIC Braille generate (5400)", f"{generate_s:.2f} s", ""))
            rows.append(("SYNTHETIC Braille preprocess", f"{preprocess_s:.2f} s",
                         f"{data.steps} steps x {data.channels} ch, {len(data.train)}/{len(data.test)}"))
            rows.append(("Braille raw load (restricted, checked)", f"{restricted_s:.2f} s",
                         f"plain pickle.loads {plain_s:.2f} s"))
    results["braille_synthetic"]["nearest_centroid_test_accuracy"] = accuracies
    rows.append(("SYNTHETIC Braille nearest-centroid acc.", f"{np.mean(accuracies):.3f}",
                 f"+- {np.std(accuracies):.3f} over {args.seeds} generator seeds (chance 0.037)"))

    width = max(len(r[0]) for r in rows)
    table = "\n".join(f"| {a:<{width}} | {b:>9} | {c} |" for a, b, c in rows)
    header = f"| {'what':<{width}} | {'value':>9} | note |\n|{'-' * (width + 2)}|{'-' * 11}|------|"
    print(header + "\n" + table)

    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "data_sets.json").write_text(json.dumps(results, indent=2))
    plot(jsb, music, first_records, first_data, out / "data_sets.png")
    with open(HERE / "RESULTS.md", "a") as f:
        f.write(f"\n## Data sets (cosim.data), {results['date']}\n\nMachine `{results['machine']}`, "
                f"{results['cpus']} CPUs; `{results['command']}`. Figure: `benchmarks/results/data_sets.png`.\n\n"
                f"{header}\n{table}\n")
    print(f"wrote {out / 'data_sets.json'}, {out / 'data_sets.png'}, appended to {HERE / 'RESULTS.md'}")


def plot(jsb: ChoraleSplits | None, music: ChoraleSplits, records: list[dict], data, path: Path) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(12, 7), constrained_layout=True)
    for ax, splits, title in ((axes[0, 0], jsb, "JSB test[0]"), (axes[0, 1], music, "music21")):
        if splits is None:
            ax.set_axis_off()
            continue
        roll, name = splits.test.rolls[0], splits.test.ids[0]
        ax.imshow(roll.T, origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
                  extent=(-0.5, len(roll) - 0.5, 42.5, 96.5))
        ax.set(title=f"{title}: {name}", xlabel="step (quarter note)", ylabel="MIDI pitch (kept keys 43..96)")
    letter = LETTERS.index("Q")
    raw = records[letter * 200]["taxel_data"]
    image = axes[1, 0].imshow(1 - raw.T / 255.0, aspect="auto", origin="lower", interpolation="nearest")
    axes[1, 0].set(title="SYNTHETIC Braille 'Q', 1 - taxel/255 (all 12 taxels)", xlabel="frame (40 Hz)",
                   ylabel="taxel")
    fig.colorbar(image, ax=axes[1, 0])
    test = data.test
    for c, name in enumerate(["A", "Q", "Z"]):
        mean = test.inputs[test.labels == LETTERS.index(name)].mean(0)
        for k in range(len(KEPT_TAXELS)):
            axes[1, 1].plot(mean[:, k] + 4 * k, color=f"C{c}", label=name if k == 0 else None)
    axes[1, 1].set(title="SYNTHETIC preprocessed, class means (taxels 1, 2, 6, 10 offset by 4)",
                   xlabel="step (after x2 resampling)", ylabel="z-score + offset")
    axes[1, 1].legend()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
