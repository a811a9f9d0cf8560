"""Training curves of a run (matplotlib, Agg backend)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def plot_curves(history: Sequence[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Loss, accuracy, spike rates and learning rate / epoch time over the epochs, as one PNG at `path`."""
    epochs = [row["epoch"] for row in history]
    keys = list(dict.fromkeys(key for row in history for key in row))

    def series(key: str) -> list[float]:
        return [row.get(key, float("nan")) for row in history]

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    panels = [(axes[0, 0], "_loss", "loss"), (axes[0, 1], "_accuracy", "accuracy"), (axes[1, 0], "_hz", "rate (Hz)")]
    for ax, suffix, label in panels:
        for key in (k for k in keys if k.endswith(suffix)):
            ax.plot(epochs, series(key), marker="o", ms=3, label=key.removesuffix(suffix).removeprefix("rate_"))
        ax.set_ylabel(label)
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
