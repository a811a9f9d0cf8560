"""BRUNO against fine-step BPTT, checkpointed BPTT and the coarse-only ablation: peak memory and time.

Each (shape, method) runs in a fresh spawned process: build a linear layer and a FeLIFLayer, warm up (kernel
build, torch.compile) on two coarse steps, then measure one forward + backward pass over the whole sequence:

- memory: the high-water mark of resident memory (getrusage ru_maxrss) minus the process's resident memory after
  imports, set-up and warm-up (with the heap's free memory given back first); the high-water mark is reset
  (/proc/self/clear_refs) before the measured pass, so the compiler's own peak during warm-up does not count;
- time: wall time of that forward + backward pass.

Shapes (issue 4): music 54 -> 150 FeLIF, 64 coarse steps x 1000 sub-steps, batch 1 (V_thr 2.0 V, tanh
surrogate); tactile 256 -> 27 FeLIF, 102 coarse steps x 1000 sub-steps, batch 32 (SuperSpike). Inputs are
Bernoulli spike trains; the current gain is chosen so that the neurons spike (rates are printed).
Also the fused fine kernel's throughput in neuron-sub-steps per second.

    python benchmarks/bruno_vs_bptt.py            # full run: table, benchmarks/RESULTS.md, results/*.json, *.png
    python benchmarks/bruno_vs_bptt.py --quick    # fewer coarse steps, < 1 min with warm compiler caches;
                                                  # writes results/bruno_vs_bptt_quick.json only
"""
from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import json
import multiprocessing as mp
import os
import platform
import resource
import shlex
import statistics
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

SHAPES = {
    "music": dict(n_in=54, n=150, steps=64, quick_steps=8, batch=1, v_thr=2.0, surrogate="tanh",
                  input_rate=0.1, current_scale=60e-9),
    "tactile": dict(n_in=256, n=27, steps=102, quick_steps=8, batch=32, v_thr=2.5, surrogate="superspike",
                    input_rate=0.2, current_scale=40e-9),
}
"""current_scale: A per weight unit, set so that a good part of the neurons spike."""

METHODS = ("bruno", "bptt", "bptt_ckpt", "coarse")
EXTRA_METHODS = ("bptt_ckpt_nonreentrant", "floor")
"""Selectable with --methods, for the record: the non-reentrant checkpointing that cosim.felif.baselines does not
use (it kept most of BPTT's memory), and "floor", the memory every method pays in this set-up (`_floor_step`)."""
KERNEL_NEURONS = 8192
"""Neurons in the fine-kernel throughput measurement (batch 32 x 256)."""
GOAL_MEM_FRACTION, GOAL_TIME_FRACTION, GOAL_KERNEL_RATE = 0.01, 0.40, 60e6


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status: this benchmark needs Linux")


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _release_free_memory() -> None:
    """Give the C heap's free memory back to the system, so that the baseline counts only live memory and a
    measured pass cannot hide its allocations in memory the warm-up freed (glibc malloc_trim; no-op elsewhere)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak() -> bool:
    """Reset the resident-memory high-water mark of this process (Linux >= 4.0); False if not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _child_environment() -> None:
    """Before torch is imported in a child: idle OpenMP threads sleep instead of spinning.

    The fused kernel's OpenMP runtime and torch's each keep a thread pool; with the default (spinning) wait
    policy, the threads idling after one parallel region occupy the 2 cores while the other pool or the main
    thread needs them. On this 2-core machine that made BRUNO's coarse-step ops 10-50x slower and compiled BPTT
    about 2x slower. The same setting applies to every method; set OMP_WAIT_POLICY yourself to override it.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _nonreentrant_ckpt_step(i_in, state, s_prev, params, cfg):
    from torch.utils.checkpoint import checkpoint

    from cosim.felif.baselines import bptt_step

    return checkpoint(bptt_step, i_in, state, s_prev, params, cfg, use_reentrant=False)


def _floor_step(i_in, state, s_prev, params, cfg):
    """Not a neuron: V' = V + I dt / C_tot, no reset, no polarisation, one autograd node that saves nothing.

    Its extra memory is what the layer, the linear input layer and the loss hold whatever the method (input
    current, per-step spikes and their stacked copy, the gradients), plus V at each step: a lower bound for any
    method that keeps a per-step state, and so for BRUNO, which keeps V and P."""
    from cosim.felif.physics import FeLIFState
    from cosim.felif.step import spike

    v = state.v + i_in * (cfg.dt / params.c_tot)
    return spike(v, params.v_thr, cfg), FeLIFState(v, state.p)


def _measure(shape: str, method: str, steps: int, repeats: int, threads: int, seed: int, bptt_backend: str) -> dict:
    """Child process: forward + backward of `method` on `shape`, `repeats` times: memory of the first pass, the
    shortest time (the machine is shared: the minimum is the least disturbed run)."""
    os.environ["COSIM_BPTT_BACKEND"] = bptt_backend
    _child_environment()
    import torch

    from cosim.felif.layer import METHODS as REGISTRY
    from cosim.felif.layer import FeLIFLayer
    from cosim.felif.physics import FeLIFParameters
    from cosim.felif.step import StepConfig

    REGISTRY["bptt_ckpt_nonreentrant"] = _nonreentrant_ckpt_step
    REGISTRY["floor"] = _floor_step
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    spec = SHAPES[shape]
    linear = torch.nn.Linear(spec["n_in"], spec["n"], bias=False)
    layer = FeLIFLayer(spec["n"], FeLIFParameters(v_thr=spec["v_thr"]), StepConfig(surrogate=spec["surrogate"]),
                       method=method, current_scale=spec["current_scale"])
    x = (torch.rand(steps, spec["batch"], spec["n_in"]) < spec["input_rate"]).float()

    def forward_backward(inputs: torch.Tensor) -> torch.Tensor:
        linear.zero_grad()
        spikes = layer(linear(inputs))
        loss = ((spikes.mean(0) - 0.1) ** 2).sum()  # any loss that needs the spike gradient
        loss.backward()
        return spikes

    t0 = time.perf_counter()
    forward_backward(x[:2])  # builds the fine kernel, compiles BPTT's graphs
    setup_s = time.perf_counter() - t0
    gc.collect()
    _release_free_memory()
    baseline = _rss_bytes()
    peak_was_reset = _reset_peak()
    if not peak_was_reset:
        baseline = _maxrss_bytes()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        spikes = forward_backward(x)
        times.append(time.perf_counter() - t0)
        if len(times) == 1:
            peak = _maxrss_bytes()
    grad = linear.weight.grad
    return dict(shape=shape, method=method, steps=steps, seconds=min(times), times=times, setup_s=setup_s,
                mem_bytes=max(peak - baseline, 0), baseline_bytes=baseline, peak_was_reset=peak_was_reset,
                spike_rate=float(spikes.detach().mean()), grad_norm=float(grad.norm()),
                grad_finite=bool(torch.isfinite(grad).all()))


def _kernel_rate(threads: int, repeats: int) -> dict:
    """Child process: neuron-sub-steps per second of the fused fine forward (no neuron latches), median call (the
    best call was up to 2x faster than the typical one here, and users get the typical one)."""
    _child_environment()
    import torch

    from cosim.felif.kernel import fine_forward
    from cosim.felif.physics import FeLIFParameters, FeLIFState
    from cosim.felif.step import StepConfig

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    params, cfg = FeLIFParameters(), StepConfig()
    # Below threshold for the whole window: every neuron does every sub-step (no early exit after a latch).
    v = torch.rand(KERNEL_NEURONS, generator=gen) - 1.0  # V_thr is not reached in 1 ms at <= 1 nA (<= 1.75 V more)
    p = -params.p_s + torch.rand(KERNEL_NEURONS, generator=gen) * 0.05
    i_in = torch.rand(KERNEL_NEURONS, generator=gen) * 1e-9
    fine_forward(FeLIFState(v, p), i_in, params, cfg)  # build / load
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fine_forward(FeLIFState(v, p), i_in, params, cfg)
        times.append(time.perf_counter() - t0)
    latched = int((out.v > params.v_thr).sum())
    if latched:
        raise RuntimeError(f"{latched} neurons latched: the throughput would count sub-steps not computed")
    return dict(steps_per_s=KERNEL_NEURONS * cfg.substeps / statistics.median(times), neurons=KERNEL_NEURONS,
                substeps=cfg.substeps, repeats=repeats, times=times, latched=latched)


def _child_main(conn, fn, args) -> None:
    try:
        conn.send(("ok", fn(*args)))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def _in_child(fn, *args) -> dict:
    """fn(*args) in a fresh spawned process (its own memory high-water mark); its exception re-raised here."""
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(send, fn, args))
    proc.start()
    send.close()
    try:
        status, value = receive.recv()
    except EOFError:
        proc.join()
        raise RuntimeError(f"benchmark child {fn.__name__}{args} died with exit code {proc.exitcode}") from None
    proc.join()
    if status == "error":
        raise RuntimeError(f"benchmark child {fn.__name__}{args} failed:\n{value}")
    return value


def _plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = [s for s in SHAPES if s in results]
    methods = list(dict.fromkeys(m for s in shapes for m in results[s]["runs"]))
    panels = (("seconds", 1.0, "forward + backward, s"), ("mem_bytes", 2.0**-20, "extra peak resident memory, MiB"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(methods)
    for ax, (key, unit, label) in zip(axes, panels):
        for k, method in enumerate(methods):
            xs = [i + k * width for i in range(len(shapes))]
            ax.bar(xs, [results[s]["runs"].get(method, {}).get(key, 0) * unit for s in shapes], width, label=method)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(shapes))], shapes)
        ax.set_ylabel(label)
        ax.set_yscale("log")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=len(methods), fontsize="small")
    fig.suptitle("BRUNO vs fine-step BPTT (1 us sub-steps), CPU")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _table(results: dict) -> list[str]:
    rows = ["| shape | method | steps | time, s | extra memory, MiB | vs BPTT time | vs BPTT memory | spike rate |"
            " set-up, s | gradient finite |", "|---|---|---|---|---|---|---|---|---|---|"]
    for shape in SHAPES:
        if shape not in results:
            continue
        runs = results[shape]["runs"]
        bptt = runs.get("bptt")
        for method, r in runs.items():
            rel_t = f"{r['seconds'] / bptt['seconds']:.1%}" if bptt else "-"
            rel_m = f"{r['mem_bytes'] / bptt['mem_bytes']:.2%}" if bptt and bptt["mem_bytes"] else "-"
            rows.append(f"| {shape} | {method} | {r['steps']} | {r['seconds']:.3f} | {r['mem_bytes'] / 2**20:.3f} |"
                        f" {rel_t} | {rel_m} | {r['spike_rate']:.3f} | {r['setup_s']:.1f} | {r['grad_finite']} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer coarse steps; no RESULTS.md entry")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads per child")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS + EXTRA_METHODS)
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--bptt-backend", default="compiled", choices=("compiled", "eager"),
                        help="BPTT sub-step backend (cosim.felif.baselines); compiled is the honest baseline")
    parser.add_argument("--repeats", type=int, default=None, help="timed passes per run (default 3, quick 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from tqdm import tqdm

    from cosim.spice.progress import progress_bar

    results: dict = {}
    jobs = [(s, m) for s in args.shapes for m in args.methods]
    for shape, method in progress_bar(jobs, desc="processes", unit="run"):
        spec = SHAPES[shape]
        steps = spec["quick_steps"] if args.quick else spec["steps"]
        repeats = args.repeats or (1 if args.quick else 3)
        r = _in_child(_measure, shape, method, steps, repeats, args.threads, args.seed, args.bptt_backend)
        results.setdefault(shape, {"runs": {}})["runs"][method] = r
        tqdm.write(f"{shape:8s} {method:10s} {r['seconds']:8.3f} s {r['mem_bytes'] / 2**20:9.2f} MiB "
                   f"(set-up {r['setup_s']:.1f} s, spike rate {r['spike_rate']:.3f})")
    for entry in results.values():
        runs = entry["runs"]
        for method, key in (("bruno", "bruno"), ("bptt", "bptt"), ("bptt_ckpt", "ckpt"), ("coarse", "coarse")):
            if method in runs:
                entry[f"{key}_s"] = runs[method]["seconds"]
                if method != "coarse":
                    entry[f"{key}_mem_bytes"] = runs[method]["mem_bytes"]
    kernel = _in_child(_kernel_rate, args.threads, 2 if args.quick else 10)
    results["fine_kernel_steps_per_s"] = kernel["steps_per_s"]
    results["fine_kernel"] = kernel
    results["machine"] = dict(node=platform.node(), cpus=os.cpu_count(), threads=args.threads,
                              bptt_backend=args.bptt_backend, load_average=os.getloadavg(),
                              omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    results["command"] = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/bruno_vs_bptt.py", *sys.argv[1:]])
    results["date"] = datetime.datetime.now().isoformat(timespec="seconds")

    lines = _table(results)
    lines.append("")
    lines.append(f"Fine kernel: {kernel['steps_per_s'] / 1e6:.1f} M neuron-sub-steps/s on {args.threads} threads "
                 f"({kernel['neurons']} neurons x {kernel['substeps']} sub-steps, median of {kernel['repeats']} calls; "
                 f"goal >= {GOAL_KERNEL_RATE / 1e6:.0f} M)")
    for shape in args.shapes:
        e = results[shape]
        if {"bruno_s", "bptt_s", "bruno_mem_bytes", "bptt_mem_bytes"} <= e.keys():
            mem_frac = e["bruno_mem_bytes"] / max(e["bptt_mem_bytes"], 1)
            time_frac = e["bruno_s"] / e["bptt_s"]
            verdict = {True: "met", False: "NOT met"}
            lines.append(f"{shape}: BRUNO memory {mem_frac:.2%} of BPTT (goal <= {GOAL_MEM_FRACTION:.0%}: "
                         f"{verdict[mem_frac <= GOAL_MEM_FRACTION]}), time {time_frac:.1%} of BPTT "
                         f"(goal <= {GOAL_TIME_FRACTION:.0%}: {verdict[time_frac <= GOAL_TIME_FRACTION]})")
    print("\n".join(lines))

    out = HERE / "results"
    out.mkdir(exist_ok=True)
    name = "bruno_vs_bptt" + ("_quick" if args.quick else "") + ("_eager" if args.bptt_backend == "eager" else "")
    (out / f"{name}.json").write_text(json.dumps(results, indent=2))
    _plot(results, out / f"{name}.png")
    if not args.quick:
        machine = results["machine"]
        header = (f"\n## BRUNO vs BPTT (cosim.felif), {results['date']}\n\nMachine `{machine['node']}` (`uname -n`), "
                  f"{machine['cpus']} CPUs (shared; load average {os.getloadavg()[0]:.1f} at the end), "
                  f"{args.threads} torch threads, OMP_WAIT_POLICY {machine['omp_wait_policy']}, BPTT backend "
                  f"{args.bptt_backend}; `{results['command']}`. JSON: `benchmarks/results/{name}.json`, figure "
                  f"`benchmarks/results/{name}.png`. Memory: peak resident minus the process after set-up; time: "
                  f"best of {args.repeats or 3} forward + backward passes.\n\n")
        with open(HERE / "RESULTS.md", "a") as f:
            f.write(header + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
