"""Where benchmarks leave their figures: a section of benchmarks/RESULTS.md and a JSON under benchmarks/results/.

Each benchmark script imports this module (it sits beside them, so ``python benchmarks/<name>.py`` finds it).
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS_MD = HERE / "RESULTS.md"
RESULTS_DIR = HERE / "results"


def now() -> str:
    """The date and time a figure was taken, ISO 8601 to the second."""
    return datetime.datetime.now().isoformat(timespec="seconds")


def header(title: str, script: str, load_before: float) -> str:
    """A RESULTS.md sub-heading: what ran, when, where, with which command, under which load."""
    return (f"### {title}{': ' if title else ''}{now()}, `{platform.node()}`, {os.cpu_count()} CPUs\n\n"
            f"Command: `python {' '.join([f'benchmarks/{script}', *sys.argv[1:]])}`. Load average before/after: "
            f"{load_before:.1f}/{os.getloadavg()[0]:.1f} (shared machine).\n\n")


def merge_json(name: str, keys: dict) -> Path:
    """Write `keys` into benchmarks/results/`name`, keeping the keys other parts of the benchmark wrote."""
    path = RESULTS_DIR / name
    report = json.loads(path.read_text()) if path.exists() else {}
    report.update(keys)
    report.setdefault("written", {}).update({key: now() for key in keys})
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=float))
    return path


def append_results(section: str, text: str) -> None:
    """Add `text` at the end of `section` (a "## ..." heading) of RESULTS.md, creating the section if missing."""
    content = RESULTS_MD.read_text() if RESULTS_MD.exists() else ""
    if section not in content:
        RESULTS_MD.write_text(content.rstrip("\n") + f"\n\n{section}\n\n{text}\n")
        return
    start = content.index(section) + len(section)
    following = content.find("\n## ", start)
    end = len(content) if following < 0 else following
    RESULTS_MD.write_text(content[:end].rstrip("\n") + f"\n\n{text}\n" + content[end:])


def run_parts(parts: dict, names: list[str], args: Any, *, script: str, section: str, json_name: str,
              dry_run: bool = False) -> dict:
    """Run the benchmark parts `names` (each ``parts[name](args) -> (json keys, RESULTS.md text)``) one after
    another; each part's keys are stamped (date, machine, load) and merged into `json_name`, its text appended to
    `section`, as soon as it finishes (so parts run in separate sessions fill in one JSON)."""
    report = {}
    for name in names:
        load_before = os.getloadavg()[0]
        keys, text = parts[name](args)
        stamp = header(name, script, load_before)
        for value in keys.values():
            if isinstance(value, dict):
                value.update({"load_before": load_before, "load_after": os.getloadavg()[0], "date": now(),
                              "machine": platform.node(), "cpus": os.cpu_count()})
        print(stamp + text)
        if not dry_run:
            merge_json(json_name, keys)
            append_results(section, stamp + text)
        report.update(keys)
    return report
