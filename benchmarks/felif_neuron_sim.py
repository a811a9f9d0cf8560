"""Simulation time of one FeLIF neuron circuit (cosim.devices.felif) for 100 ms of constant input.

Single-domain (reference) and default 8-domain FeCap, on ngspice (behavioural subcircuit, through the engine's
worker) and VACASK (Verilog-A), at the neurons' default maximum step (NEURON_MAX_STEP) with gear integration.
Times are the simulator's own wall time inside the worker (`provenance["wall_s"]`), best of `--repeat`. Prints a
table, appends it under "## FeLIF neuron simulation time" in benchmarks/RESULTS.md with the date, machine,
command line and load, and writes benchmarks/results/felif_neuron_sim.json.

    .venv/bin/python benchmarks/felif_neuron_sim.py [--current 10e-9] [--stop 0.1] [--repeat 3]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

from cosim.devices.felif import NEURON_MAX_STEP, FeLIFCircuitParameters, current_step_job, result_spikes
from cosim.spice import run

HERE = Path(__file__).resolve().parent
SECTION = "## FeLIF neuron simulation time"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--current", type=float, default=10e-9, help="input current, A")
    parser.add_argument("--stop", type=float, default=0.1, help="simulated time, s")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (best is reported)")
    args = parser.parse_args()

    rows = []
    for label, params in (("1 domain", FeLIFCircuitParameters.reference()), ("8 domains", FeLIFCircuitParameters())):
        for simulator in ("ngspice", "vacask"):
            job = current_step_job(params, args.current, args.stop, simulator=simulator)
            results = [run(job) for _ in range(args.repeat)]
            best = min(results, key=lambda r: r.provenance["wall_s"])
            rows.append({"fecap": label, "simulator": simulator, "wall_s": best.provenance["wall_s"],
                         "timepoints": int(best.x.size), "spikes": int(result_spikes(best, params).size)})

    load = os.getloadavg()
    header = "| FeCap | simulator | wall s | time points | spikes |\n| --- | --- | ---: | ---: | ---: |"
    table = "\n".join([header] + [f"| {r['fecap']} | {r['simulator']} | {r['wall_s']:.3f} | {r['timepoints']} | "
                                  f"{r['spikes']} |" for r in rows])
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    text = (f"{stamp}, machine `{platform.node()}`, {os.cpu_count()} CPUs, load average {load[0]:.1f} "
            f"(shared); `{' '.join([Path(sys.argv[0]).name] + sys.argv[1:])}`. One neuron, "
            f"{args.current * 1e9:g} nA for {args.stop * 1e3:g} ms, max step {NEURON_MAX_STEP * 1e6:g} us, gear; "
            f"best of {args.repeat}. JSON: `benchmarks/results/felif_neuron_sim.json`.\n\n{table}")
    print(table)
    path = HERE / "RESULTS.md"
    content = path.read_text() if path.exists() else ""
    if SECTION not in content:
        content = content.rstrip("\n") + f"\n\n{SECTION}\n"
    start = content.index(SECTION) + len(SECTION)
    following = content.find("\n## ", start)
    end = len(content) if following < 0 else following
    path.write_text(content[:end].rstrip("\n") + f"\n\n{text}\n" + content[end:])
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "felif_neuron_sim.json").write_text(json.dumps(
        {"date": stamp, "machine": platform.node(), "cpus": os.cpu_count(), "load": load, "argv": sys.argv,
         "current_a": args.current, "stop_s": args.stop, "max_step_s": NEURON_MAX_STEP, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
