"""Throughput of the simulation engine on a sweep of small transients.

Measures, for the same sweep of `--jobs` RC transients (200 output points each):
- serial: `run_many(n_jobs=1)`, one recycled worker process running the jobs one after another (sent to it in
  batches, as `run_many` does for every sweep of short jobs: see `cosim.spice.sweep`);
- pool: `run_many(n_jobs=<cores>)`, one worker per core;
- subprocess: one `ngspice -b` process per job writing a rawfile that is read back (the usual alternative).
Both sides run the same decks (`render_deck`) and read back the same vectors (time and v(out)); every job of
the serial and pool modes also gets its own result object with provenance, as any sweep's does. Workers are
started before timing and ngspice's binary and libraries are in the page cache after the first job (steady
state on both sides); each mode is timed `--repeat` times, alternating, and its best time kept, since the
machine is shared (the load average is recorded). Prints a table, appends it to benchmarks/RESULTS.md with
the date, machine, command line and load, writes benchmarks/results/spice_engine.json and a bar chart.

    .venv/bin/python benchmarks/spice_engine.py [--jobs 200] [--repeat 3]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import joblib
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from cosim.spice import Circuit, SimJob, SimResult, Tran, run_many  # noqa: E402
from cosim.spice.ngspice import render_deck  # noqa: E402
from cosim.spice.progress import progress_bar  # noqa: E402
from cosim.spice.vacask import read_rawfile  # noqa: E402

HERE = Path(__file__).resolve().parent


def sweep(count: int) -> list[SimJob]:
    """`count` RC transients with different resistors, 200 output points each."""
    return [SimJob(Circuit(f"V1 in 0 pulse(0 1 0 1n 1n 1 2)\nR1 in out {1000 + i}\nC1 out 0 1u"),
                   Tran(step=2.5e-5, stop=5e-3), outputs=("v(out)",), name=f"rc{i}") for i in range(count)]


def timed_sweep(jobs: list[SimJob], n_jobs: int) -> float:
    """Wall-clock seconds of `run_many` over `jobs`; every job must succeed."""
    start = time.perf_counter()
    outcomes = run_many(jobs, n_jobs=n_jobs, progress=False)
    elapsed = time.perf_counter() - start
    failed = [o for o in outcomes if not isinstance(o, SimResult)]
    if failed:
        raise SystemExit(f"{len(failed)} jobs failed, first: {failed[0]}")
    return elapsed


def timed_subprocesses(jobs: list[SimJob], ngspice: str) -> float:
    """Wall-clock seconds to run each job as its own `ngspice -b` process and read its rawfile."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cosim-bench-") as folder:
        for i, job in enumerate(progress_bar(jobs, desc="ngspice -b", unit="job", leave=False)):
            deck, raw = Path(folder) / f"{i}.cir", Path(folder) / f"{i}.raw"
            deck.write_text(render_deck(job).text)
            subprocess.run([ngspice, "-b", "-r", str(raw), str(deck)], check=True, capture_output=True)
            if read_rawfile(raw)[0].data.shape[0] < 200:
                raise SystemExit(f"ngspice -b returned a short result for {job.name}")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="jobs in the sweep (default 200)")
    parser.add_argument("--repeat", type=int, default=3, help="timings per mode, best kept (default 3)")
    args = parser.parse_args(argv)
    ngspice = shutil.which("ngspice")
    if ngspice is None:
        raise SystemExit("the ngspice program is not installed (apt-get install ngspice)")
    cores = joblib.cpu_count()
    jobs = sweep(args.jobs)
    load_before = os.getloadavg()
    timed_sweep(sweep(4 * cores), n_jobs=cores)  # start the workers: steady state is measured
    timings = [(timed_sweep(jobs, n_jobs=1), timed_sweep(jobs, n_jobs=cores), timed_subprocesses(jobs, ngspice))
               for _ in range(args.repeat)]
    serial_s, pool_s, subprocess_s = (min(mode) for mode in zip(*timings))
    load_after = os.getloadavg()

    n = len(jobs)
    figures = {"pool_vs_serial_speedup": serial_s / pool_s, "pool_vs_subprocess_speedup": subprocess_s / serial_s,
               "jobs": n}
    rows = [("serial (1 worker)", serial_s), (f"pool ({cores} workers)", pool_s), ("ngspice -b per job", subprocess_s)]
    table = ["| mode | total s | ms/job | jobs/s |", "| --- | ---: | ---: | ---: |"]
    table += [f"| {name} | {seconds:.2f} | {1e3 * seconds / n:.2f} | {n / seconds:.1f} |" for name, seconds in rows]
    summary = (f"pool vs serial: {figures['pool_vs_serial_speedup']:.2f}x (goal >= 1.7x); per job, in-process "
               f"worker vs `ngspice -b`: {figures['pool_vs_subprocess_speedup']:.1f}x (goal >= 3x)")
    print("\n".join(table) + "\n\n" + summary)

    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "spice_engine.json").write_text(json.dumps(figures, indent=1) + "\n")
    figure, axes = plt.subplots(figsize=(6, 3))
    axes.barh([name for name, _ in rows], [1e3 * seconds / n for _, seconds in rows])
    axes.set_xlabel("wall-clock time per job, ms")
    axes.set_title(f"{n} RC transients, {platform.node()}, {cores} cores")
    figure.tight_layout()
    figure.savefig(results / "spice_engine.png", dpi=120)

    with open(HERE / "RESULTS.md", "a") as f:
        f.write(f"\n## spice_engine ({datetime.date.today()}, {platform.node()}, {os.cpu_count()} CPUs)\n\n"
                f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`; best of {args.repeat}. "
                "Load average (1/5/15 min) "
                f"before {'/'.join(f'{x:.1f}' for x in load_before)}, after "
                f"{'/'.join(f'{x:.1f}' for x in load_after)} (machine shared with other work).\n\n"
                + "\n".join(table) + f"\n\n{summary}. Plot: benchmarks/results/spice_engine.png\n")
    return figures


if __name__ == "__main__":
    main()
