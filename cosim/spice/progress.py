"""Progress bars that suit where they are written: every progress bar of the package is made by `progress_bar`.

On a terminal it is a live tqdm bar. Anywhere else (a log file, a pipe, a captured stream) a redrawn bar is
written as text, ten times a second: the main job wrote ~50 KB of such lines into its log. There the bar draws
nothing while it runs and writes one line when it closes: ``<desc>: <done>/<total> <unit> in <seconds> s``
(with its last postfix); a bar that would vanish on a terminal (``leave=False``) writes nothing.

It lives in `cosim.spice`, the lowest layer, because the engine's sweeps have a bar too.
"""
from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm as plain_tqdm
from tqdm.auto import tqdm


class _Nowhere:
    """A text stream that keeps nothing."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


class _OneLine(plain_tqdm):
    """A tqdm bar drawn nowhere that writes one summary line to stderr when it closes (if it leaves a trace)."""

    def close(self) -> None:
        if self.disable:  # closed already
            return
        summary = self.format_dict
        line = None
        if self.leave:
            total = f"/{summary['total']:g}" if summary["total"] is not None else ""
            line = f"{self.desc}: {summary['n']:g}{total} {self.unit} in {summary['elapsed']:.1f} s"
            line += f" ({summary['postfix']})" if summary["postfix"] else ""
        super().close()
        if line is not None:
            print(line, file=sys.stderr, flush=True)


def progress_bar(iterable: Iterable | None = None, *, desc: str, unit: str = "it", total: float | None = None,
                 enabled: bool = True, **options: Any) -> plain_tqdm:
    """A tqdm bar over `iterable` (or updated by hand with ``update``): live on a terminal, one line when it
    closes elsewhere (module docstring), nothing at all unless `enabled`. `options` go to tqdm (``leave``,
    ``initial``, ...)."""
    if not enabled:
        return plain_tqdm(iterable, total=total, disable=True)
    if sys.stderr.isatty():
        return tqdm(iterable, desc=desc, unit=unit, total=total, **options)
    return _OneLine(iterable, desc=desc, unit=unit, total=total, file=_Nowhere(), **options)
