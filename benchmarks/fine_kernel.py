"""Throughput of BRUNO's fused fine kernel (cosim.felif.kernel) in neuron-sub-steps per second.

Neurons start at rest with 0.5 nA input, which keeps them below threshold for the whole window, so no neuron
latches early and every sub-step is computed. Reported per integrator, dtype, neuron count and torch thread count:
wall-clock rate and rate per CPU-second of the process (less sensitive to other load on a shared machine).
The exponential integrator is timed at its own sub-step (1 us and 100 us); its rate counts its own sub-steps.

    python benchmarks/fine_kernel.py           # table, benchmarks/RESULTS.md section, results/fine_kernel.{json,png}
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from cosim.felif import kernel  # noqa: E402
from cosim.felif.physics import FeLIFParameters, initial_state  # noqa: E402
from cosim.felif.step import StepConfig  # noqa: E402
from cosim.spice.progress import progress_bar  # noqa: E402

GOAL = 60e6
CASES = [  # (integrator, sub-step h in s)
    ("euler", 1e-6),
    ("exponential", 1e-6),
    ("exponential", 1e-4),
]
NEURONS = (864, 8192)  # tactile batch 32 x 27; batch 32 x 256
WORK = 1e7  # neuron-sub-steps per measurement


def measure(integrator: str, h: float, dtype: torch.dtype, n: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    params = FeLIFParameters()
    cfg = StepConfig(dt=1e-3, h=h, integrator=integrator)
    state = initial_state((n,), params, dtype)
    current = torch.full((n,), 0.5e-9, dtype=dtype)
    kernel.fine_forward(state, current, params, cfg)  # build and warm up
    reps = max(1, round(WORK / (n * cfg.substeps)))
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(reps):
        out = kernel.fine_forward(state, current, params, cfg)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert not bool((out.v > params.v_thr).any()), "a neuron latched: the measurement would skip sub-steps"
    work = reps * n * cfg.substeps
    return dict(integrator=integrator, h=h, dtype=str(dtype).removeprefix("torch."), neurons=n, threads=threads,
                substeps_per_s=work / wall, substeps_per_cpu_s=work / cpu)


def main() -> None:
    kernel.load_extension()
    load_before = os.getloadavg()
    rows = [
        measure(integrator, h, dtype, n, threads)
        for integrator, h in CASES
        for dtype in (torch.float32, torch.float64)
        for n in NEURONS
        for threads in (1, 2)
        for _ in progress_bar([0], desc=f"{integrator} h={h:g} {dtype} n={n} t={threads}", leave=False)
    ]
    load_after = os.getloadavg()
    header = "| integrator | h | dtype | neurons | threads | M sub-steps/s (wall) | M sub-steps per CPU-s |"
    lines = [header, "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['integrator']} | {r['h']:g} | {r['dtype']} | {r['neurons']} | {r['threads']} | "
                     f"{r['substeps_per_s'] / 1e6:.1f} | {r['substeps_per_cpu_s'] / 1e6:.1f} |")
    best = max(r["substeps_per_s"] for r in rows if r["integrator"] == "euler" and r["dtype"] == "float32"
               and r["threads"] == 2)
    verdict = f"Euler float32, 2 threads: {best / 1e6:.0f} M neuron-sub-steps/s (goal >= {GOAL / 1e6:.0f} M: " \
              f"{'met' if best >= GOAL else 'NOT met'})"
    table = "\n".join(lines)
    print(table)
    print(verdict)

    results = HERE / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    (results / "fine_kernel.json").write_text(json.dumps(dict(
        date=stamp, machine=platform.node(), cpus=os.cpu_count(), command=shlex.join(sys.argv),
        load_average_before=load_before, load_average_after=load_after, rows=rows,
        fine_kernel_steps_per_s=best), indent=2))
    fig, ax = plt.subplots(figsize=(11, 5))
    labels = [f"{r['integrator'][:3]} {r['h'] * 1e6:g}us\n{r['dtype'][5:]} n{r['neurons']} t{r['threads']}"
              for r in rows]
    ax.bar(range(len(rows)), [r["substeps_per_s"] / 1e6 for r in rows], label="wall")
    ax.plot(range(len(rows)), [r["substeps_per_cpu_s"] / 1e6 for r in rows], "k.", label="per CPU-second")
    ax.axhline(GOAL / 1e6, color="r", ls="--", label="goal (Euler, 2 cores)")
    ax.set_xticks(range(len(rows)), labels, fontsize=6, rotation=90)
    ax.set_yscale("log")
    ax.set_ylabel("M neuron-sub-steps / s")
    ax.set_title(f"fused FeLIF fine kernel, {platform.node()}, {os.cpu_count()} CPUs")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(results / "fine_kernel.png", dpi=120)

    with open(HERE / "RESULTS.md", "a") as f:
        f.write(f"\n## Fine kernel throughput (cosim.felif.kernel), {stamp}\n\n"
                f"Machine `{platform.node()}` (`uname -n`), {os.cpu_count()} CPUs, shared (load average "
                f"{load_before[0]:.1f} before, {load_after[0]:.1f} after); `{shlex.join(['python', *sys.argv])}`. "
                f"Neurons below threshold all window (every sub-step computed). JSON "
                f"`benchmarks/results/fine_kernel.json`, figure `benchmarks/results/fine_kernel.png`.\n\n"
                f"{table}\n\n{verdict}\n")


if __name__ == "__main__":
    main()
