"""Simulation time of the 256 x 27 RRAM crossbar (13,824 devices) driving 27 FeLIF neurons for 100 ms.

Random 3-bit weights (levels -3..3 on the default `LevelMapping`), Poisson-like input spikes (each row spikes in
a coarse step with probability `--rate`), 1 ms coarse steps, columns at virtual ground mirrored into the FeLIF
neuron subcircuits, one ngspice transient through `cosim.spice.run`. Timed per read model: ``linear`` (chord
conductance resistors, the model for large transients) over `--steps`, ``sinh`` (behavioural read current, ~1.7
us per device per Newton iteration) over `--sinh-steps`. Prints a table, appends it under "## Crossbar
simulation time" in benchmarks/RESULTS.md with the date, machine, command line and load, and writes
benchmarks/results/crossbar_sim.json.

    .venv/bin/python benchmarks/crossbar_sim.py [--steps 100] [--sinh-steps 10] [--r-wire 0]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import recording

from cosim.devices.crossbar import Crossbar, CrossbarConfig, NeuronBank, felif_bank
from cosim.devices.felif import FeLIFCircuitParameters, spike_times
from cosim.devices.rram import LevelMapping
from cosim.spice import run

HERE = Path(__file__).resolve().parent
SECTION = "## Crossbar simulation time"


def timed_run(crossbar: Crossbar, spikes: np.ndarray, bank: NeuronBank, v_spk: float) -> dict:
    """Simulate `spikes` through `crossbar` into `bank`; wall time, time points and output spike counts."""
    outputs = tuple(f"v({bank.node('spk', j)})" for j in range(crossbar.cols))
    job = crossbar.tran_job(spikes, neurons=bank, outputs=outputs, name=f"crossbar-{crossbar.config.read_model}")
    start = time.perf_counter()
    result = run(job)
    wall = time.perf_counter() - start
    counts = [spike_times(result.x, result[name], v_spk).size for name in outputs]
    return {"read_model": crossbar.config.read_model, "steps": int(spikes.shape[0]),
            "simulated_s": float(spikes.shape[0] * crossbar.config.dt), "wall_s": wall,
            "simulator_wall_s": float(result.provenance["wall_s"]), "timepoints": int(result.x.size),
            "spikes_total": int(sum(counts)), "neurons_spiking": int(sum(c > 0 for c in counts))}




def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--cols", type=int, default=27)
    parser.add_argument("--steps", type=int, default=100, help="coarse steps (1 ms) with the linear model")
    parser.add_argument("--sinh-steps", type=int, default=10, help="coarse steps with the sinh model (0: skip)")
    parser.add_argument("--rate", type=float, default=0.1, help="spike probability of a row per step")
    parser.add_argument("--r-wire", type=float, default=0.0, help="wire resistance per segment, ohm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dry-run", action="store_true", help="print the table only; RESULTS.md and JSON untouched")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    weights = rng.integers(-3, 4, size=(args.rows, args.cols))
    spikes = (rng.random((max(args.steps, args.sinh_steps), args.rows)) < args.rate).astype(int)
    neuron = FeLIFCircuitParameters()
    bank = felif_bank(neuron)
    runs = []
    for model, steps in (("linear", args.steps), ("sinh", args.sinh_steps)):
        if steps > 0:
            crossbar = Crossbar.from_weights(weights, LevelMapping(), CrossbarConfig(r_wire=args.r_wire,
                                                                                   read_model=model))
            runs.append(timed_run(crossbar, spikes[:steps], bank, neuron.v_spk))
            print(f"{model}: {runs[-1]}", flush=True)

    load = os.getloadavg()
    header = ("| read model | simulated | wall s | s per simulated ms | timepoints | spikes (neurons spiking) |\n"
              "| --- | ---: | ---: | ---: | ---: | ---: |")
    rows = [f"| {r['read_model']} | {r['simulated_s'] * 1e3:g} ms | {r['wall_s']:.1f} | "
            f"{r['wall_s'] / (r['simulated_s'] * 1e3):.3f} | {r['timepoints']} | {r['spikes_total']} "
            f"({r['neurons_spiking']}/{args.cols}) |" for r in runs]
    table = "\n".join([header, *rows])
    print(table)
    devices = 2 * args.rows * args.cols
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    text = (f"### {stamp}, `{platform.node()}`, {os.cpu_count()} CPUs\n\n"
            f"Command: `python {' '.join(['benchmarks/crossbar_sim.py', *sys.argv[1:]])}`. {args.rows} x "
            f"{args.cols} pairs ({devices} devices), wire {args.r_wire:g} ohm/segment, {args.cols} FeLIF "
            f"neurons, input spike probability {args.rate:g} per row and 1 ms step, ngspice "
            f"through `cosim.spice.run`. Load average before/after: {load[0]:.1f}/{os.getloadavg()[0]:.1f} "
            f"(shared machine).\n\n{table}")
    report = {"date": stamp, "machine": platform.node(), "cpus": os.cpu_count(), "argv": sys.argv[1:],
              "rows": args.rows, "cols": args.cols, "devices": devices, "r_wire": args.r_wire, "rate": args.rate,
              "runs": runs}
    if not args.dry_run:
        recording.append_results(SECTION, text)
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "crossbar_sim.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
