"""SPICE at the scale of real arrays (issue 16): simulator options, the full-size crossbar, the JSB test split.

Parts (``--part``, repeatable; each writes only its own keys into benchmarks/results/spice_scale.json, keeping
the others, and appends its table under "## SPICE at scale" in benchmarks/RESULTS.md with date, machine, command
line and load average):

- ``options``: which simulator settings keep today's ngspice results. Case: the first `--option-cols` columns of
  the 256 x 27 crossbar of benchmarks/crossbar_sim.py (random 3-bit weights, rows spiking with probability 0.1
  per 1 ms step, default FeLIF neurons with the 8-domain FeCap), `--steps` coarse steps. Reference: today's
  path, ngspice with the linear read model, all columns in one netlist, default tolerances and the neurons'
  5 us maximum step. Each setting (simulator, read model, columns per job, maximum step, reltol, vntol) is timed
  (wall time of `run_many` on `--jobs` processes, and the summed simulator time) and compared with the
  reference: spike-count agreement (1 - sum over neurons |n - n_ref| / sum n_ref) and the error of the paired
  spike times (`cosim.surrogates.traces.pair_spikes`). Key ``options``.
- ``crossbar``: the goal run: 256 x 27 pairs + 27 FeLIF neurons (8-domain), `--steps` ms, sinh read, wire
  resistance on: `R_WIRE` = 1 ohm per segment (the value of the README's "Arrays as built" and of
  benchmarks/ir_drop.py; `HardwareConfig.r_wire` defaults to ideal wires) in the array as built (tiles
  `ARRAY_TILE`, 32 x 16), simulated in two stages (`Crossbar.staged_read`: each tile once per distinct input
  pattern of its rows; then the neurons on the summed currents, `Crossbar.current_jobs`) on the chosen defaults
  (VACASK, one column per job, `cosim.verify.export.HardwareConfig`'s options) over `--jobs` processes, both
  stages in the time; beside it the same run with ideal wires (the neurons' crossbar columns in their netlists,
  as before) and, over the first `--wired-check-steps` steps, the coupled wired netlist with its neurons (jobs
  of whole column tiles) whose spikes the staged run must reproduce. Against today's path (ngspice, linear read,
  ideal wires, one netlist) over the first `--baseline-steps` steps, scaled linearly to `--steps` when shorter
  (stated in the JSON as ``baseline_scaled_from_s``), in the same run. Keys ``crossbar_s`` (wall time of the
  wired staged run, s), ``crossbar_speedup`` (baseline wall time for the same simulated time / crossbar_s) and
  ``crossbar`` (details: the ideal-wire run as ``ideal_wires`` with its own speed-up, the spike agreements).
- ``jsb``: a music run trained on the JSB chorales (`--run`, default runs/jsb3; a run on other data is refused)
  verified in SPICE on the whole JSB test split (77 chorales; the run's own test subset set aside) with the
  8-domain neurons (`cosim.verify.runner.verify_model`), full chorales;
  `--samples` fewer than the split: that many chorales spread over it, the split's time scaled from them by its
  steps; `--store DIR` keeps the results as they come, so an interrupted run resumes. Keys
  ``jsb_test_verify_s``, ``jsb_test_agreement`` and ``jsb`` (details, with the CPU time).

    .venv/bin/python benchmarks/spice_scale.py --part options [--steps 100] [--option-cols 4]
    .venv/bin/python benchmarks/spice_scale.py --part crossbar [--steps 100] [--baseline-steps 10] \
        [--wired-check-steps 5]
    .venv/bin/cosim train --config music --out runs/jsb3 --set model.bits=3 --set 'model.surrogate_file="default"' \
        --set run.epochs=2 --set optimiser.lr=0.02 --set 'data.dataset="jsb"' --set data.valid_subset=20 \
        --set 'data.path="../shared/data/jsb/jsb-chorales-quarter.json"'            # the run measured, ~1 min
    .venv/bin/python benchmarks/spice_scale.py --part jsb [--run runs/jsb3] [--samples 77] [--store DIR]
"""
from __future__ import annotations

import argparse
import dataclasses
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import recording

from cosim.devices.crossbar import ARRAY_TILE, Crossbar, CrossbarConfig, felif_bank
from cosim.devices.felif import VACASK_MAX_STEP, FeLIFCircuitParameters, spike_times
from cosim.devices.plugins import NeuronBank
from cosim.devices.rram import LevelMapping
from cosim.spice import SimError, run_many
from cosim.surrogates.traces import pair_spikes
from cosim.verify.export import HardwareConfig

HERE = Path(__file__).resolve().parent
SECTION = "## SPICE at scale"
ROWS, COLS = 256, 27
R_WIRE = 1.0
"""Wire resistance per segment of the goal run, ohm (README "Arrays as built"; benchmarks/ir_drop.py)."""


@dataclasses.dataclass(frozen=True)
class Setting:
    """One way of simulating the crossbar with its neurons."""

    label: str
    """Name in the table."""
    simulator: str = "vacask"
    """"vacask" or "ngspice"."""
    read_model: str = "sinh"
    """Crossbar read model ("linear" or "sinh")."""
    columns_per_job: int = 1
    """Columns (neurons) per job, 0: all in one netlist."""
    max_step: float = 5e-6
    """Largest time step, s."""
    options: tuple[tuple[str, float], ...] = ()
    """Simulator options (`SimJob.options`)."""
    r_wire: float = 0.0
    """Wire resistance per segment, ohm; > 0: the array as built, tiles `ARRAY_TILE`."""
    staged: bool = False
    """Simulate in two stages (`Crossbar.staged_read`, then `Crossbar.current_jobs`) instead of the coupled
    netlist of array and neurons (`Crossbar.column_jobs`)."""


REFERENCE = Setting("ngspice, linear, one netlist (today)", "ngspice", "linear", 0)
"""Today's path: what the issue's 449 s were measured on."""


def case(steps: int, seed: int = 0, rate: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """benchmarks/crossbar_sim.py's case: weights [256, 27] (levels -3..3) and input spikes [steps, 256]."""
    rng = np.random.default_rng(seed)
    weights = rng.integers(-3, 4, size=(ROWS, COLS))
    spikes = (rng.random((max(steps, 100), ROWS)) < rate).astype(int)
    return weights, spikes[:steps]


def simulate(setting: Setting, weights: np.ndarray, spikes: np.ndarray, n_jobs: int,
             name: str) -> dict[str, Any]:
    """Run `spikes` through the crossbar of `weights` into default 8-domain FeLIF neurons with `setting`.

    Returns wall time (s), CPU time of the worker processes and their simulators (s; robust to other load on a
    shared machine), summed simulator wall time (s), time points and the spike times (s) of every neuron; staged,
    also ``read`` (stage 1: wall time, patterns, jobs, simulator time), which the totals include."""
    neuron = FeLIFCircuitParameters()
    bank: NeuronBank = dataclasses.replace(felif_bank(neuron), max_step=setting.max_step,
                                           vacask_max_step=setting.max_step)
    config = CrossbarConfig(read_model=setting.read_model, r_wire=setting.r_wire,
                            tile=ARRAY_TILE if setting.r_wire > 0 else CrossbarConfig().tile)
    crossbar = Crossbar.from_weights(weights, LevelMapping(), config)
    start, cpu = time.perf_counter(), children_cpu_s()
    read = None
    if setting.staged:
        staged = crossbar.staged_read([spikes], setting.simulator, f"{name}-read", n_jobs)
        read = {"wall_s": time.perf_counter() - start, "patterns": staged.patterns, "jobs": staged.jobs,
                "simulator_s": staged.simulator_s}
        jobs = crossbar.current_jobs(staged.currents[0], bank, setting.columns_per_job, name=name,
                                     simulator=setting.simulator, options=setting.options, membrane=False)
    else:
        jobs = crossbar.column_jobs(spikes, bank, setting.columns_per_job, name=name, simulator=setting.simulator,
                                    options=setting.options, membrane=False)
    results = run_many([job for job, _ in jobs], n_jobs=n_jobs, progress=False)
    wall, cpu = time.perf_counter() - start, children_cpu_s() - cpu
    trains: list[np.ndarray] = []
    sim_s, points = 0.0, 0
    for (_, columns), result in zip(jobs, results):
        if isinstance(result, SimError):
            raise result
        sim_s += float(result.provenance["wall_s"])
        points += int(result.x.size)
        trains += [spike_times(result.x, result[f"v({bank.node('spk', k)})"], neuron.v_spk)
                   for k in range(len(columns))]
    out = {"wall_s": wall, "cpu_s": cpu, "simulator_s": sim_s + (read["simulator_s"] if read else 0.0),
           "timepoints": points, "jobs": len(jobs) + (read["jobs"] if read else 0), "spikes": trains}
    return out if read is None else out | {"read": read}


def children_cpu_s() -> float:
    """User + system CPU time of this process's child processes, s: the worker processes (which the engine keeps
    for the next sweep: psutil reads them) with the simulators they ran, and those that have exited."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = usage.ru_utime + usage.ru_stime
    for child in psutil.Process().children():
        try:
            t = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def agreement(reference: list[np.ndarray], other: list[np.ndarray], dt: float, until: float | None = None) -> dict:
    """Spike-count agreement and paired spike-time errors of `other` against `reference` (per neuron spike
    times, s), over spikes before `until` (s; None: all)."""
    mismatch, total, errors = 0, 0, []
    for ref, oth in zip(reference, other):
        if until is not None:
            ref, oth = ref[ref < until], oth[oth < until]
        mismatch += abs(len(oth) - len(ref))
        total += len(ref)
        i, j = pair_spikes(ref, oth, dt)
        errors.append(np.abs(oth[j] - ref[i]))
    err = np.concatenate(errors) if errors else np.zeros(0)
    return {"spikes_reference": total, "spikes": int(sum(len(o if until is None else o[o < until]) for o in other)),
            "spike_count_agreement": 1.0 - mismatch / max(total, 1),
            "spike_time_error_max_s": float(err.max()) if err.size else 0.0,
            "spike_time_error_p99_s": float(np.percentile(err, 99)) if err.size else 0.0,
            "spike_time_error_median_s": float(np.median(err)) if err.size else 0.0,
            "paired": int(err.size)}


def option_settings(defaults: HardwareConfig) -> list[Setting]:
    """The settings the options part compares (the reference first)."""
    return [
        REFERENCE,
        Setting("ngspice, linear, 1 column/job", "ngspice", "linear", 1),
        Setting("ngspice, sinh, 1 column/job", "ngspice", "sinh", 1),
        Setting("VACASK, linear, one netlist", "vacask", "linear", 0),
        Setting("VACASK, linear, 1 column/job", "vacask", "linear", 1),
        Setting("VACASK, sinh, one netlist", "vacask", "sinh", 0),
        Setting("VACASK, sinh, 1 column/job", "vacask", "sinh", 1),
        Setting("VACASK, sinh, 1 column/job, max step 10 us", "vacask", "sinh", 1, 10e-6),
        Setting("VACASK, sinh, 1 column/job, max step 20 us", "vacask", "sinh", 1, 20e-6),
        Setting("VACASK, sinh, 1 column/job, max step 50 us", "vacask", "sinh", 1, 50e-6),
        Setting("VACASK, sinh, 2 columns/job, max step 20 us", "vacask", "sinh", 2, 20e-6),
        Setting("VACASK, sinh, one netlist, max step 20 us", "vacask", "sinh", 0, 20e-6),
        Setting("VACASK, sinh, 1 column/job, reltol 1e-4", "vacask", "sinh", 1, options=(("reltol", 1e-4),)),
        Setting("VACASK, sinh, 1 column/job, reltol 1e-2", "vacask", "sinh", 1, options=(("reltol", 1e-2),)),
        Setting("VACASK, sinh, 1 column/job, vntol 1e-4", "vacask", "sinh", 1, options=(("vntol", 1e-4),)),
        Setting("VACASK, sinh, HardwareConfig defaults", "vacask", "sinh", defaults.columns_per_job,
                defaults.max_step or VACASK_MAX_STEP, defaults.options),
    ]


def part_options(args: argparse.Namespace) -> tuple[dict, str]:
    weights, spikes = case(args.steps, args.seed)
    weights = weights[:, :args.option_cols]
    dt = CrossbarConfig().dt
    rows = []
    reference = None
    for setting in option_settings(HardwareConfig()):
        run = simulate(setting, weights, spikes, args.jobs, f"options-{len(rows)}")
        reference = reference or run
        rows.append({**dataclasses.asdict(setting), **{k: v for k, v in run.items() if k != "spikes"},
                     **agreement(reference["spikes"], run["spikes"], dt)})
        print(f"{setting.label}: {run['wall_s']:.1f} s, {rows[-1]['spike_count_agreement']:.4f}, "
              f"max {rows[-1]['spike_time_error_max_s'] * 1e6:.2f} us", flush=True)
    options = {"steps": args.steps, "rows": ROWS, "cols": args.option_cols, "jobs": args.jobs, "settings": rows}
    return {"options": options}, options_text(options)


def options_text(options: dict) -> str:
    """The options part's table (RESULTS.md) of its JSON entry."""
    def cell(row: dict, key: str) -> str:
        return f"{row[key]:.1f}" if key in row else "-"

    table = [f"| {r['label']} | {r['wall_s']:.1f} | {cell(r, 'cpu_s')} | {r['simulator_s']:.1f} | "
             f"{r['timepoints']} | {r['spikes']} | {r['spike_count_agreement']:.4f} | "
             f"{r['spike_time_error_median_s'] * 1e6:.2f} | {r['spike_time_error_p99_s'] * 1e6:.2f} | "
             f"{r['spike_time_error_max_s'] * 1e6:.2f} |" for r in options["settings"]]
    return (f"Simulator settings, {ROWS} x {options['cols']} pairs (the first columns of the 256 x 27 case) into "
            f"{options['cols']} FeLIF neurons (8 domains), {options['steps']} ms, ideal wires, {options['jobs']} "
            "processes; reference: the first row (today's path). Goal: spike counts within 1 %, spike times "
            "within 10 us (1 % of the 1 ms step). Wall and CPU time of the whole setting, simulator s: the jobs' "
            "own wall times summed.\n\n"
            "| setting | wall s | CPU s | simulator s | time points | spikes | count agreement | median dt us | "
            "p99 dt us | max dt us |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
            + "\n".join(table))


def part_crossbar(args: argparse.Namespace) -> tuple[dict, str]:
    weights, spikes = case(args.steps, args.seed)
    hw = HardwareConfig()
    dt = CrossbarConfig().dt
    columns = hw.columns_per_job if args.columns_per_job is None else args.columns_per_job
    max_step = hw.max_step or VACASK_MAX_STEP
    goal = Setting(f"VACASK, sinh, {R_WIRE:g} ohm, tiles {ARRAY_TILE.rows}x{ARRAY_TILE.cols}, staged", "vacask",
                   "sinh", columns, max_step, hw.options, R_WIRE, staged=True)
    ideal = Setting("VACASK, sinh, ideal wires", "vacask", "sinh", columns, max_step, hw.options)
    coupled = Setting(f"VACASK, sinh, {R_WIRE:g} ohm, coupled netlist", "vacask", "sinh", columns, max_step,
                      hw.options, R_WIRE)
    fast = simulate(goal, weights, spikes, args.jobs, "crossbar-goal")
    print(f"goal (wires, staged): {fast['wall_s']:.1f} s (stage 1 {fast['read']['wall_s']:.1f} s, "
          f"{fast['read']['patterns']} patterns)", flush=True)
    flat = simulate(ideal, weights, spikes, args.jobs, "crossbar-ideal")
    print(f"ideal wires: {flat['wall_s']:.1f} s", flush=True)
    check_steps = min(args.wired_check_steps, args.steps)
    check = simulate(coupled, weights, spikes[:check_steps], args.jobs, "crossbar-coupled") if check_steps else None
    if check is not None:
        print(f"coupled wired netlist {check_steps} steps: {check['wall_s']:.1f} s", flush=True)
    base_steps = min(args.baseline_steps, args.steps)
    base = simulate(REFERENCE, weights, spikes[:base_steps], args.jobs, "crossbar-baseline")
    print(f"baseline {base_steps} steps: {base['wall_s']:.1f} s", flush=True)
    scale = args.steps / base_steps
    baseline_s, baseline_cpu_s = base["wall_s"] * scale, base["cpu_s"] * scale
    coupled_match = (agreement(check["spikes"], fast["spikes"], dt, until=check_steps * dt)
                     if check is not None else None)
    ideal_match = agreement(base["spikes"], flat["spikes"], dt, until=base_steps * dt)
    wired_vs_ideal = agreement(flat["spikes"], fast["spikes"], dt)

    def summary(run: dict, setting: Setting) -> dict:
        return {"setting": dataclasses.asdict(setting), "wall_s": run["wall_s"], "cpu_s": run["cpu_s"],
                "simulator_s": run["simulator_s"], "timepoints": run["timepoints"], "jobs": run["jobs"],
                "spikes": int(sum(len(s) for s in run["spikes"])), "speedup": baseline_s / run["wall_s"],
                "cpu_speedup": baseline_cpu_s / run["cpu_s"], **({"stage1": run["read"]} if "read" in run else {})}

    out = {"crossbar_s": fast["wall_s"], "crossbar_speedup": baseline_s / fast["wall_s"],
           "crossbar": {"rows": ROWS, "cols": COLS, "steps": args.steps, "simulated_s": args.steps * dt,
                        "jobs": args.jobs, "r_wire": R_WIRE, "tile": [ARRAY_TILE.rows, ARRAY_TILE.cols],
                        **summary(fast, goal), "ideal_wires": summary(flat, ideal),
                        "coupled_check": None if check is None else {
                            "steps": check_steps, "wall_s": check["wall_s"], "cpu_s": check["cpu_s"],
                            "setting": dataclasses.asdict(coupled), "agreement_with_staged": coupled_match},
                        "staged_vs_ideal_wires": wired_vs_ideal,
                        "baseline": {**dataclasses.asdict(REFERENCE), "steps": base_steps, "wall_s": base["wall_s"],
                                     "cpu_s": base["cpu_s"],
                                     "simulator_s": base["simulator_s"], "timepoints": base["timepoints"]},
                        "baseline_s": baseline_s, "baseline_cpu_s": baseline_cpu_s,
                        "baseline_scaled_from_s": base_steps * dt,
                        "ideal_agreement_on_baseline_window": ideal_match,
                        "note": (f"goal: wire resistance {R_WIRE:g} ohm per segment, tiles {ARRAY_TILE.rows}x"
                                 f"{ARRAY_TILE.cols}, sinh read, staged (both stages in the time); baseline: "
                                 "ngspice, linear read, ideal wires, one netlist"
                                 + (f", run over {base_steps} of {args.steps} steps and scaled x{scale:g}"
                                    if scale != 1 else ", over the same steps"))}}
    read = fast["read"]
    text = (f"Goal run: {ROWS} x {COLS} pairs + {COLS} FeLIF neurons (8 domains), {args.steps} ms, sinh read, "
            f"**wires on** ({R_WIRE:g} ohm per segment, tiles {ARRAY_TILE.rows} x {ARRAY_TILE.cols}), staged on "
            f"VACASK ({columns} column(s)/job, max step {max_step * 1e6:g} us), {args.jobs} processes: "
            f"**{fast['wall_s']:.1f} s** wall, {fast['cpu_s']:.1f} s CPU (stage 1: {read['patterns']} tile "
            f"patterns in {read['jobs']} transients, {read['wall_s']:.1f} s wall). Ideal wires (neurons' columns "
            f"in their netlists): {flat['wall_s']:.1f} s wall, {flat['cpu_s']:.1f} s CPU. Baseline (ngspice, "
            f"linear read, ideal wires, one netlist) over {base_steps} ms: {base['wall_s']:.1f} s wall, "
            f"{base['cpu_s']:.1f} s CPU" + (f", scaled x{scale:g} to {baseline_s:.0f} s" if scale != 1 else "")
            + f". Speed-up **{baseline_s / fast['wall_s']:.1f}x** in wall time with wires "
            f"({baseline_cpu_s / fast['cpu_s']:.1f}x CPU; ideal wires {baseline_s / flat['wall_s']:.1f}x). "
            + (f"Staged against the coupled wired netlist over {check_steps} ms ({check['wall_s']:.1f} s): spike "
               f"counts {coupled_match['spike_count_agreement']:.4f} ({coupled_match['spikes']} vs "
               f"{coupled_match['spikes_reference']}), times max {coupled_match['spike_time_error_max_s'] * 1e6:.2f}"
               " us. " if check is not None else "")
            + f"Wires vs ideal wires: {wired_vs_ideal['spikes']} vs {wired_vs_ideal['spikes_reference']} spikes; "
            f"ideal wires vs baseline over its window: counts {ideal_match['spike_count_agreement']:.4f}, times "
            f"max {ideal_match['spike_time_error_max_s'] * 1e6:.2f} us.")
    return out, text


def part_jsb(args: argparse.Namespace) -> tuple[dict, str]:
    from cosim.train.config import VerifyConfig
    from cosim.train.models import fitted_surrogate
    from cosim.train.tasks import make_task
    from cosim.verify.runner import load_run, verify_model

    cfg, model, _, checkpoint = load_run(args.run)
    if cfg.data.dataset != "jsb":
        raise SystemExit(f"--part jsb verifies the JSB test split: {args.run} was trained on {cfg.data.dataset!r}; "
                         "train a run on the JSB chorales first (this script's docstring has the command)")
    task = make_task(dataclasses.replace(cfg.data, test_subset=0))  # the whole test split, whatever the run used
    n_test = len(task.splits["test"])
    samples = min(args.samples, n_test)
    hw = HardwareConfig(neuron_options={"n_domains": 8}, seed=args.seed, **(
        {} if args.columns_per_job is None else {"columns_per_job": args.columns_per_job}))
    vcfg = VerifyConfig(samples=samples, cpu_budget_s=args.budget, max_steps=0, tolerance=cfg.verify.tolerance)
    start, cpu = time.perf_counter(), children_cpu_s()
    summary, _ = verify_model(model, task, vcfg, hw, args.run / "verify", n_jobs=args.jobs, progress=False,
                              fitted=fitted_surrogate(cfg.model), store=args.store)
    wall, cpu = time.perf_counter() - start, children_cpu_s() - cpu
    done = summary["samples"]
    details = {k: summary[k] for k in ("samples", "prediction_agreement", "frame_agreement",
                                       "spike_count_agreement", "spike_time_error_s", "simulation_cpu_s",
                                       "simulator", "steps") if k in summary}
    details |= {"run": str(args.run), "checkpoint": str(checkpoint), "test_chorales": n_test,
                "samples_requested": samples, "wall_s": wall, "cpu_s": cpu, "hardware": dataclasses.asdict(hw),
                "extrapolated_to_split": done < n_test}
    # The whole split, from the chorales simulated (each chorale's time grows with its length in steps).
    split_steps = sum(len(task.splits["test"][i].inputs) for i in range(n_test))
    scale = split_steps / max(1, sum(summary["steps"]))
    out = {"jsb_test_verify_s": wall * scale, "jsb_test_agreement": summary["prediction_agreement"], "jsb": details}
    details["split_steps"], details["scale_to_split"] = split_steps, scale
    details["split_cpu_s"] = cpu * scale  # on an otherwise idle machine the wall time is about this / --jobs
    text = (f"JSB test split in SPICE: {args.run} ({checkpoint.name}), {done} of {n_test} test chorales "
            f"({sum(summary['steps'])} of {split_steps} steps), 8-domain neurons, {summary.get('simulator')}, "
            f"{hw.columns_per_job} column(s)/job, max step {(hw.max_step or VACASK_MAX_STEP) * 1e6:g} us, "
            f"{args.jobs} processes: "
            f"{wall:.0f} s wall, {cpu:.0f} s CPU"
            + (f"; the whole split scaled by its steps (x{scale:.2f}): **{wall * scale:.0f} s** wall, "
               f"{cpu * scale:.0f} s CPU" if scale != 1 else "")
            + f". Prediction agreement **{summary['prediction_agreement']:.4f}** (frames "
            f"{summary.get('frame_agreement', float('nan')):.4f}, spike counts "
            f"{summary['spike_count_agreement']:.4f}).")
    return out, text


PARTS = {"options": part_options, "crossbar": part_crossbar, "jsb": part_jsb}






def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", action="append", choices=sorted(PARTS), required=True)
    parser.add_argument("--steps", type=int, default=100, help="coarse steps (1 ms) of the crossbar runs")
    parser.add_argument("--baseline-steps", type=int, default=10, help="steps of the ngspice baseline (scaled)")
    parser.add_argument("--wired-check-steps", type=int, default=5,
                        help="crossbar part: steps of the coupled wired netlist the staged run is checked against "
                        "(0: no check)")
    parser.add_argument("--option-cols", type=int, default=4, help="columns of the options part's case")
    parser.add_argument("--jobs", type=int, default=2, help="simulations at once")
    parser.add_argument("--columns-per-job", type=int,
                        help="crossbar part: columns per job (default: HardwareConfig's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", type=Path, default=Path("runs/jsb3"), help="music run trained on JSB (jsb part)")
    parser.add_argument("--samples", type=int, default=77,
                        help="test chorales (jsb part; fewer: the split's time is scaled from them by steps)")
    parser.add_argument("--budget", type=float, default=1e6, help="simulation CPU budget, s (jsb part)")
    parser.add_argument("--store", type=Path, help="jsb part: folder keeping every SPICE result as it comes, so "
                        "an interrupted run resumes (its time then counts only what was left)")
    parser.add_argument("--dry-run", action="store_true", help="print only; RESULTS.md and JSON untouched")
    args = parser.parse_args(argv)
    return recording.run_parts(PARTS, args.part, args, script="spice_scale.py", section=SECTION,
                               json_name="spice_scale.json", dry_run=args.dry_run)


if __name__ == "__main__":
    main()
