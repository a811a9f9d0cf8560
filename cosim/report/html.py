"""Assemble a self-contained HTML report from what a run folder holds.

A run folder is written by the pipeline's stages, each into a conventional place (see `SECTIONS`); the report
shows every section whose files exist, so a partial run still gives a useful page. Images are embedded
(base64) so the page can be mailed or archived as one file.
"""
from __future__ import annotations

import base64
import datetime
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Section:
    """One part of the report: the files it shows, found by glob patterns relative to the run folder."""

    title: str
    """Heading."""
    summaries: tuple[str, ...] = ()
    """JSON files shown as tables of their key figures."""
    images: tuple[str, ...] = ()
    """PNG files shown as figures."""
    note: str = ""
    """One sentence saying what the section shows."""


SECTIONS: tuple[Section, ...] = (
    Section("Device characterisation", ("characterization/*/summary.json",), ("characterization/*/*.png",),
            "ngspice/VACASK testbenches of the compact models and circuits."),
    Section("Surrogates vs SPICE", ("surrogates/*.json",), ("surrogates/*.png",),
            "Fitted surrogate parameters, fit residuals and validation against circuit simulation."),
    Section("Training", ("summary.json",), ("*.png",), "Training and validation curves of this run."),
    Section("SPICE verification", ("verify.json", "verify/*.json"), ("verify/*.png",),
            "The trained network exported to a netlist and re-simulated, compared with the surrogate."),
    Section("BRUNO vs BPTT", ("benchmarks/*.json",), ("benchmarks/*.png",),
            "Peak memory and time of the training methods (benchmarks/bruno_vs_bptt.py)."),
)


def build_report(run_dir: Path | str, out: Path | str | None = None,
                 sections: tuple[Section, ...] = SECTIONS) -> Path:
    """Write `report.html` (or `out`) for `run_dir` and return its path.

    Raises FileNotFoundError if `run_dir` does not exist.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    out = Path(out) if out is not None else run_dir / "report.html"
    parts = [
        f"<h1>cosim report: {html.escape(run_dir.resolve().name)}</h1>",
        f"<p class=meta>{html.escape(str(run_dir.resolve()))} &middot; built "
        f"{datetime.datetime.now().isoformat(timespec='seconds')}</p>",
    ]
    shown = 0
    for section in sections:
        body = _section_html(run_dir, section)
        if body:
            shown += 1
            parts.append(body)
    if not shown:
        parts.append("<p>This run folder holds nothing a report section knows how to show yet.</p>")
    out.write_text(_PAGE.format(title=html.escape(run_dir.name), body="\n".join(parts)))
    return out


def _section_html(run_dir: Path, section: Section) -> str:
    summaries = sorted({p for pattern in section.summaries for p in run_dir.glob(pattern)})
    images = sorted({p for pattern in section.images for p in run_dir.glob(pattern)})
    if not summaries and not images:
        return ""
    parts = [f"<h2>{html.escape(section.title)}</h2>", f"<p>{html.escape(section.note)}</p>"]
    for path in summaries:
        rel = path.relative_to(run_dir)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            parts.append(f"<p class=err>{html.escape(str(rel))}: not valid JSON ({html.escape(str(err))})</p>")
            continue
        parts.append(f"<h3>{html.escape(str(rel))}</h3>{_table(data)}")
    for path in images:
        rel = path.relative_to(run_dir)
        data = base64.b64encode(path.read_bytes()).decode()
        parts.append(f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(str(rel))}'>"
                     f"<figcaption>{html.escape(str(rel))}</figcaption></figure>")
    return "\n".join(parts)


def _table(data: Any) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(key)}</th><td>{html.escape(_format(value))}</td></tr>"
        for key, value in _flatten(data)
    )
    return f"<table>{rows}</table>"


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as dotted keys; lists longer than a few items are summarised rather than spelled out."""
    if isinstance(data, dict):
        items: list[tuple[str, Any]] = []
        for key, value in data.items():
            items.extend(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return items
    return [(prefix or "value", data)]


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        if len(value) > 8:
            return f"[{len(value)} values: {_format(value[0])} ... {_format(value[-1])}]"
        return "[" + ", ".join(_format(v) for v in value) + "]"
    return str(value)


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>cosim: {title}</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
h2 {{ border-bottom: 1px solid #ccc; margin-top: 2em; }}
table {{ border-collapse: collapse; font-size: 0.9em; margin-bottom: 1em; }}
th, td {{ border: 1px solid #ddd; padding: 2px 8px; text-align: left; }}
th {{ background: #f4f4f4; font-weight: normal; font-family: monospace; }}
figure {{ display: inline-block; margin: 0.5em; }}
img {{ max-width: 520px; border: 1px solid #eee; }}
figcaption, .meta {{ color: #777; font-size: 0.8em; }}
.err {{ color: #b00; }}
</style></head>
<body>
{body}
</body></html>
"""
