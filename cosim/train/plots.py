"""Training curves of a run (matplotlib, Agg backend)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from cosim.train.tasks import Baseline, Metric  # noqa: E402

SPLITS = ("train", "valid", "test")
"""Splits a history row may hold metrics of (keys "<split>_<metric>"), each drawn in its own colour."""


def plot_curves(history: Sequence[dict[str, Any]], path: Path, metrics: Mapping[str, Metric], title: str = "",
                baselines: Sequence[Baseline] = ()) -> Path:
    """The task's loss and accuracy (the first two of `metrics`) with the baselines' values as dashed lines, spike
    rates, and learning rate / epoch time over the epochs, as one PNG at `path`."""
    epochs = [row["epoch"] for row in history]
    keys = list(dict.fromkeys(key for row in history for key in row))

    def series(key: str) -> list[float]:
        return [row.get(key, float("nan")) for row in history]

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    for ax, name in zip(axes[0], list(metrics)[:2]):
        for colour, split in enumerate(SPLITS):
            if f"{split}_{name}" in keys:
                ax.plot(epochs, series(f"{split}_{name}"), marker="o", ms=3, color=f"C{colour}", label=split)
            for style, baseline in zip(("--", ":", "-."), baselines):
                if split in baseline.metrics:
                    ax.axhline(baseline.metrics[split][name], ls=style, lw=1, color=f"C{colour}",
                               label=f"{split}: {baseline.name}")
        ax.set_ylabel(metrics[name].label)
    ax = axes[1, 0]
    for key in (k for k in keys if k.startswith("rate_") and k.endswith("_hz")):
        ax.plot(epochs, series(key), marker="o", ms=3, label=key.removeprefix("rate_").removesuffix("_hz"))
    ax.set_ylabel("spike rate per neuron (Hz)")
    for ax in axes.flat[:3]:
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    ax = axes[1, 1]
    ax.semilogy(epochs, series("lr"), marker="o", ms=3, color="C0")
    ax.set_ylabel("learning rate", color="C0")
    twin = ax.twinx()
    twin.plot(epochs, series("epoch_seconds"), marker="s", ms=3, color="C1")
    twin.set_ylabel("epoch time (s)", color="C1")
    for ax in axes[1]:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
