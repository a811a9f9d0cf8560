"""SPICE verification of trained networks: SPICE vs surrogate agreement and what it costs.

For each run folder given (a training run with a 3- or 4-bit FeLIF layer), runs `cosim.verify.runner.verify_run`
on its newest checkpoint (or --checkpoint) with the chosen number of test samples and coarse steps, then prints
a table (prediction agreement, spike-count agreement, spike-time error, SPICE vs surrogate metric, samples,
simulation CPU time, wall time), appends a "## SPICE verification" section to benchmarks/RESULTS.md with the
date, machine, command line and load, and appends an entry to benchmarks/results/verify_spice.json (a list, one
entry per invocation). Each run folder also gets its verify.json and verify/raster.png.

    .venv/bin/python benchmarks/verify_spice.py RUN_DIR [RUN_DIR ...] [--samples 8] [--max-steps 0]
        [--budget 3600] [--programming monte_carlo|ideal] [--domains 1] [--jobs N]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

from cosim.verify.export import HardwareConfig
from cosim.verify.runner import verify_run

HERE = Path(__file__).resolve().parent
SECTION = "## SPICE verification"
COLUMNS = (("run", "{}"), ("network", "{}"), ("epoch", "{}"), ("bits", "{}"), ("samples", "{}"),
           ("steps", "{}"), ("prediction_agreement", "{:.4f}"), ("frame_agreement", "{:.4f}"),
           ("spike_count_agreement", "{:.4f}"), ("spike_time_error_s", "{:.2e}"), ("metric", "{}"),
           ("spice_metric", "{:.4f}"), ("surrogate_metric", "{:.4f}"), ("simulation_cpu_s", "{:.0f}"),
           ("seconds", "{:.0f}"))


def table(rows: list[dict]) -> str:
    """Markdown table of the verification summaries."""
    lines = ["| " + " | ".join(name for name, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = []
        for name, fmt in COLUMNS:
            value = row.get(name, "-")
            if name == "steps" and isinstance(value, list):
                value = sum(value)
            cells.append(fmt.format(value) if value != "-" else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="training run folders")
    parser.add_argument("--checkpoint", help="checkpoint name in each run's checkpoints/ (default: newest)")
    parser.add_argument("--samples", type=int, default=8, help="test samples per run (default 8)")
    parser.add_argument("--max-steps", type=int, default=0, help="first N coarse steps of each sample (0: all)")
    parser.add_argument("--budget", type=float, default=3600.0, help="simulation CPU seconds per run")
    parser.add_argument("--programming", choices=["monte_carlo", "ideal"], default="monte_carlo")
    parser.add_argument("--domains", type=int, default=1, help="FeCap domains of the neuron circuits (1 or 8)")
    parser.add_argument("--jobs", type=int, help="simulations at once (default: the machine's cores)")
    args = parser.parse_args(argv)

    hw = HardwareConfig(programming=args.programming, neuron_options={"n_domains": args.domains})
    rows = []
    for run in args.runs:
        summary = verify_run(run, args.checkpoint, args.samples, args.budget, hw, args.jobs, max_steps=args.max_steps)
        rows.append({"run": Path(run).name, **summary})
        print(table(rows[-1:]), flush=True)
    text = table(rows)
    print(text)
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    machine = f"{platform.node()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    command = " ".join(["python", *sys.argv])
    with open(HERE / "RESULTS.md", "a") as f:
        f.write(f"\n{SECTION} ({stamp}, {machine})\n\n`{command}`\n\n{text}\n\nPrediction agreement: music = "
                "(step, key) cells after the warm-up whose thresholded prediction agrees (frame: the whole predicted "
                "chord agrees); tactile = same class (most spikes). Spike-time error: median |t_SPICE - "
                "t_surrogate| of spikes paired within one coarse step. Metric: BCE (music), accuracy (tactile).\n")
    path = HERE / "results" / "verify_spice.json"
    path.parent.mkdir(exist_ok=True)
    earlier = json.loads(path.read_text()) if path.exists() else []
    entries = (earlier if isinstance(earlier, list) else [earlier]) + [
        {"date": stamp, "machine": machine, "command": command, "runs": rows}]
    path.write_text(json.dumps(entries, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
