"""The FeLIF surrogate against ngspice on the tactile network's output layer: 27 neurons behind their crossbar.

Circuit side (ngspice): a 256 x 27 RRAM crossbar of differential pairs (`cosim.devices.crossbar`, linear read model,
ideal wires) driven by 256 random input spike trains for `--steps` coarse steps of 1 ms (102: one Braille
sample); its mirrored column currents feed 27 FeLIF neuron circuits with the default 8-domain FeCap
(`cosim.devices.felif`, `felif_nd8`). One transient, timed by the simulator's own wall clock (inside the worker).

Surrogate side: the same crossbar as its ideal dot product (exact for ideal wires and linear devices) feeding a
`FeLIFLayer` with the fitted surrogate (`surrogates/felif.json`): the training code's forward pass (BRUNO,
float32, no autograd), timed as the median of `--repeat` runs including the dot product. Agreement (spike
counts, spike times relative to the ISI, V NRMSE where both integrate) is measured on the fine traces of the same
model in float64 (`cosim.surrogates.felif_model.simulate`), whose spike steps are checked against the layer's.

Weights are non-negative levels 0..3 (densities differing per neuron), so the column currents stay inside the
surrogate's fitted support (0 to 100 nA); signed weights drive the circuit's membrane far negative, outside it.

Prints a table, appends a section to benchmarks/RESULTS.md, writes benchmarks/results/surrogate_vs_spice.json
(speedup, spike_count_agreement, spike_time_error_rel, v_nrmse, ...) and surrogate_vs_spice.png.

    .venv/bin/python benchmarks/surrogate_vs_spice.py [--steps 102] [--repeat 5] [--seed 0]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from cosim.devices.crossbar import Crossbar, CrossbarConfig, NeuronBank  # noqa: E402
from cosim.devices.fecap import domain_vectors  # noqa: E402
from cosim.devices.felif import NEURON_MAX_STEP, FeLIFCircuitParameters, circuit_files, spike_times  # noqa: E402
from cosim.devices.rram import LevelMapping  # noqa: E402
from cosim.felif.layer import FeLIFLayer  # noqa: E402
from cosim.spice import Circuit, SimJob, Tran, run  # noqa: E402
from cosim.surrogates import load_felif  # noqa: E402
from cosim.surrogates.doe import Stimulus  # noqa: E402
from cosim.surrogates.felif_model import simulate  # noqa: E402
from cosim.surrogates.traces import Traces, compare  # noqa: E402

HERE = Path(__file__).resolve().parent
ROWS, COLS = 256, 27
SAMPLE_EVERY = 100e-6


def network(steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Input spikes [steps, 256] (10 % per step) and weight levels [256, 27] in 0..3, denser for later neurons."""
    rng = np.random.default_rng(seed)
    spikes = (rng.random((steps, ROWS)) < 0.1).astype(int)
    density = np.linspace(0.05, 0.35, COLS)
    weights = np.where(rng.random((ROWS, COLS)) < density, rng.integers(1, 4, size=(ROWS, COLS)), 0)
    return spikes, weights


def spice_job(crossbar: Crossbar, spikes: np.ndarray, neuron: FeLIFCircuitParameters) -> SimJob:
    """One transient of the crossbar feeding 27 neuron circuits (vectors: membranes, spike outputs, domains)."""
    files = circuit_files(neuron, "ngspice")
    bank = NeuronBank(neuron.subcircuit, files["includes"][-1], ("in", "spk"), (neuron.subcircuit_parameters(),))
    body = "\n".join([crossbar.netlist(crossbar.input_sources(spikes), [bank.node("in", j) for j in range(COLS)]),
                      *bank.cards(COLS)])
    outputs = tuple(f"v(in{j})" for j in range(COLS)) + tuple(f"v(spk{j})" for j in range(COLS))
    outputs += tuple(v for j in range(COLS) for v in domain_vectors(f"xn{j}.xfe", neuron.fecap.n_domains))
    circuit = Circuit(netlist=body, title=f"crossbar {ROWS}x{COLS} + {COLS} FeLIF", **files)
    stop = len(spikes) * crossbar.config.dt
    return SimJob(circuit, Tran(step=NEURON_MAX_STEP, stop=stop, max_step=NEURON_MAX_STEP, method="gear"),
                  outputs=outputs, name="surrogate_vs_spice", timeout=3600.0)


def spice_traces(result, neuron: FeLIFCircuitParameters, steps: int, dt: float) -> list[Traces]:
    grid = (np.arange(round(steps * dt / SAMPLE_EVERY)) + 1) * SAMPLE_EVERY
    traces = []
    for j in range(COLS):
        domains = [result[v] for v in domain_vectors(f"xn{j}.xfe", neuron.fecap.n_domains)]
        p = float(neuron.physics.p_s) * np.mean(domains, axis=0)
        spikes = spike_times(result.x, result[f"v(spk{j})"], neuron.v_spk)
        traces.append(Traces(grid, np.interp(grid, result.x, result[f"v(in{j})"]), np.interp(grid, result.x, p),
                             spikes[spikes < steps * dt], dt))
    return traces


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=102, help="coarse steps of 1 ms (default 102)")
    parser.add_argument("--repeat", type=int, default=5, help="timed surrogate runs (median kept)")
    parser.add_argument("--seed", type=int, default=0, help="seed of inputs and weights")
    args = parser.parse_args(argv)

    surrogate = load_felif()
    cfg = surrogate.step_config()
    spikes, weights = network(args.steps, args.seed)
    crossbar = Crossbar.from_weights(weights, LevelMapping(), CrossbarConfig(read_model="linear", dt=cfg.dt))
    currents = crossbar.ideal_outputs(spikes * crossbar.config.v_read)  # [steps, 27], A
    neuron = FeLIFCircuitParameters()

    load_before = os.getloadavg()
    print(f"ngspice: {ROWS}x{COLS} crossbar + {COLS} felif_nd{neuron.fecap.n_domains} neurons, {args.steps} ms ...",
          flush=True)
    began = time.perf_counter()
    result = run(spice_job(crossbar, spikes, neuron))
    spice_total = time.perf_counter() - began
    spice_wall = float(result.provenance["wall_s"])

    # the surrogate as training runs it: dot product + FeLIFLayer forward (float32, BRUNO, no autograd)
    layer = FeLIFLayer(COLS, surrogate.params, cfg, current_scale=1.0, guard=surrogate.guard("benchmark layer"))
    g = torch.tensor((crossbar.g_plus - crossbar.g_minus) * crossbar.config.mirror_gain, dtype=torch.float32)
    x = torch.tensor(spikes * crossbar.config.v_read, dtype=torch.float32)[:, None, :]
    times = []
    with torch.no_grad():
        for _ in range(args.repeat + 1):  # the first run builds/loads the kernel
            began = time.perf_counter()
            layer_spikes = layer(x @ g)
            times.append(time.perf_counter() - began)
    surrogate_wall = statistics.median(times[1:])
    load_after = os.getloadavg()

    stimuli = [Stimulus(f"neuron{j}", "poisson", tuple(float(i) for i in currents[:, j]), cfg.dt) for j in range(COLS)]
    model = simulate(stimuli, surrogate.params, cfg, SAMPLE_EVERY)
    reference = spice_traces(result, neuron, args.steps, cfg.dt)
    comparison = compare(reference, model)
    layer_steps = [np.flatnonzero(layer_spikes[:, 0, j].numpy()).tolist() for j in range(COLS)]
    model_steps = [np.floor(m.spikes / cfg.dt).astype(int).tolist() for m in model]
    float32_agrees = sum(a == b for a, b in zip(layer_steps, model_steps))

    summary = {
        "speedup": spice_wall / surrogate_wall, "speedup_incl_process": spice_total / surrogate_wall,
        "spike_count_agreement": comparison.spike_count_agreement,
        "spike_time_error_rel": comparison.spike_time_error_rel, "v_nrmse": comparison.v_nrmse,
        "spice_wall_s": spice_wall, "spice_total_s": spice_total, "surrogate_wall_s": surrogate_wall,
        "surrogate_times_s": times[1:], "n_spikes_spice": comparison.n_reference,
        "n_spikes_surrogate": comparison.n_model, "paired_spikes": len(comparison.time_errors),
        "float32_layer_spike_trains_equal_float64": f"{float32_agrees}/{COLS}",
        "current_range_na": [float(currents.min() * 1e9), float(currents.max() * 1e9)],
        "guard": layer.guard.report(), "steps": args.steps, "seed": args.seed, "simulator": "ngspice "
        + str(result.provenance["simulator_version"]), "artifact_created": surrogate.artifact.provenance.created,
        "machine": platform.node(), "cpus": os.cpu_count(), "load_before": load_before, "load_after": load_after,
        "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    rows = [("ngspice transient (simulator wall)", f"{spice_wall:.2f} s"),
            ("ngspice incl. worker round trip", f"{spice_total:.2f} s"),
            ("surrogate (dot product + FeLIFLayer)", f"{surrogate_wall * 1e3:.2f} ms"),
            ("speedup", f"{summary['speedup']:.0f}x (goal >= 1000x)"),
            ("spike-count agreement", f"{comparison.spike_count_agreement:.4f} ({comparison.n_model} vs "
                                      f"{comparison.n_reference} spikes)"),
            ("median spike-time error / ISI", f"{comparison.spike_time_error_rel:.4f}"),
            ("V NRMSE (both integrating)", f"{comparison.v_nrmse:.4f}"),
            ("float32 layer = float64 model (spike steps)", f"{float32_agrees}/{COLS} neurons"),
            ("input current range", f"{currents.min() * 1e9:.1f} to {currents.max() * 1e9:.1f} nA")]
    table = "| what | value |\n| --- | --- |\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)
    print(table)

    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "surrogate_vs_spice.json").write_text(json.dumps(summary, indent=1) + "\n")
    fig, (ax_r, ax_v) = plt.subplots(1, 2, figsize=(11, 4.5))
    for j, (ref, mod) in enumerate(zip(reference, model)):
        ax_r.vlines(ref.spikes * 1e3, j + 0.05, j + 0.45, color="k", lw=0.8)
        ax_r.vlines(mod.spikes * 1e3, j - 0.45, j - 0.05, color="tab:red", lw=0.8)
    ax_r.set_xlabel("time (ms)")
    ax_r.set_ylabel("output neuron")
    ax_r.set_title("spikes: ngspice (black, upper) vs surrogate (red, lower)", fontsize=9)
    for j, color in zip((3, 13, 26), ("tab:blue", "tab:green", "tab:purple")):
        ax_v.plot(reference[j].t * 1e3, reference[j].v, color=color, lw=1, label=f"neuron {j} ngspice")
        ax_v.plot(model[j].t * 1e3, model[j].v, color=color, lw=0.8, ls="--", label=f"neuron {j} surrogate")
    ax_v.set_xlim(0, 30)
    ax_v.set_xlabel("time (ms)")
    ax_v.set_ylabel("V (V)")
    ax_v.legend(fontsize=6, ncol=3)
    ax_v.set_title(f"speedup {summary['speedup']:.0f}x: ngspice {spice_wall:.1f} s, surrogate "
                   f"{surrogate_wall * 1e3:.1f} ms", fontsize=9)
    fig.tight_layout()
    fig.savefig(results / "surrogate_vs_spice.png", dpi=80)
    plt.close(fig)
    with open(HERE / "RESULTS.md", "a") as f:
        f.write(f"\n## surrogate_vs_spice ({summary['date']}, {platform.node()}, {os.cpu_count()} CPUs)\n\n"
                f"Command: `{summary['command']}`. Load average before {'/'.join(f'{x:.1f}' for x in load_before)}, "
                f"after {'/'.join(f'{x:.1f}' for x in load_after)} (shared machine). {ROWS}x{COLS} crossbar (linear "
                f"read, ideal wires, non-negative levels) + {COLS} felif_nd8 neurons over {args.steps} ms; surrogate "
                f"`surrogates/felif.json` ({surrogate.artifact.provenance.created}) in FeLIFLayer, median of "
                f"{args.repeat}. Figure: benchmarks/results/surrogate_vs_spice.png\n\n{table}\n")
    return summary


if __name__ == "__main__":
    main()
