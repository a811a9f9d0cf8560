"""Arrays as built (issue 16): IR drop of the tiled array at full size, the cost of IR-drop-aware training and
the SPICE agreement of networks trained with and without it.

Parts (``--part``, default all), each merging its keys into benchmarks/results/spice_scale.json (the issue's
result file, shared with the fast-verification benchmark: other keys are kept) and its details into
benchmarks/results/ir_drop.json:

* ``array`` -> ``ir_drop_error_rel``: the tactile output layer's 256 x 27 array of the default RRAM levels
  (10-80 uS) in tiles of `ARRAY_TILE` (32 x 16), 1 ohm per wire segment, sinh read law, devices on their level
  targets, random 3-bit weights; ngspice operating points of 4 random reads (10, 30, 50, 90 % of the inputs
  active); the largest ||SPICE - ideal dot product|| / ||ideal|| over the reads, with the per-tile errors. The
  untiled array of the same read is measured beside it.
* ``step`` -> ``train_step_overhead``: the tactile network (3 bits, batch 128 of SYNTHETIC Braille, 102 steps),
  forward + backward + optimiser step with and without ``model.ir_drop`` (same weights), interleaved, 2 torch
  threads; the extra time over the plain step from the medians (and from the fastest steps).
* ``agreement`` -> ``ir_aware_agreement``, ``ir_naive_agreement``: two short trainings of the same 3-bit tactile
  network on the array (model.r_wire = 1, tiles 32 x 16), one through the IR-drop model, one with the ideal dot
  product, then `cosim verify` of each with the wires on (linear read, devices on target, VACASK): prediction
  agreement SPICE vs the training model.

    .venv/bin/python benchmarks/ir_drop.py [--part array|step|agreement] [--epochs 12] [--per-class 40]
        [--samples 10] [--out runs/ir_drop]
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

import numpy as np
import recording

from cosim.devices.crossbar import ARRAY_TILE, Crossbar, CrossbarConfig
from cosim.devices.rram import LevelMapping
from cosim.spice import run_many

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SECTION = "## Arrays as built: IR drop and IR-drop-aware training"




def array_error(r_wire: float = 1.0) -> dict:
    """IR-drop error of the tiled (and the untiled) 256 x 27 array, sinh read, ngspice operating points."""
    rng = np.random.default_rng(16)
    mapping = LevelMapping()
    reads = []
    for occupancy in (0.1, 0.3, 0.5, 0.9):
        weights = rng.integers(-3, 4, size=(256, 27))
        reads.append((weights, mapping.v_read * (rng.random(256) < occupancy)))
    tiled = [Crossbar.from_weights(w, mapping, CrossbarConfig(r_wire=r_wire, tile=ARRAY_TILE)) for w, _ in reads]
    untiled = Crossbar.from_weights(reads[1][0], mapping, CrossbarConfig(r_wire=r_wire))
    jobs = [bar.op_job(v, name=f"ir-tiled-{k}") for k, (bar, (_, v)) in enumerate(zip(tiled, reads))]
    jobs.append(untiled.op_job(reads[1][1], name="ir-untiled"))
    start = time.perf_counter()
    results = run_many(jobs, n_jobs=2, progress=False, raise_errors=True)
    wall = time.perf_counter() - start

    def error(bar: Crossbar, v: np.ndarray, result) -> float:
        simulated = np.array([float(np.ravel(result[f"i(vout{j})"])[-1]) for j in range(bar.cols)])
        ideal = bar.ideal_outputs(v)
        return float(np.linalg.norm(simulated - ideal) / np.linalg.norm(ideal))

    per_read = [{"active": int(np.count_nonzero(v)), "error_rel": error(bar, v, result),
                 "tile_error_rel": bar.tile_errors(bar.partial_outputs(result), v).round(5).tolist(),
                 "simulator_wall_s": float(result.provenance["wall_s"])}
                for bar, (_, v), result in zip(tiled, reads, results)]
    return {"ir_drop_error_rel": max(r["error_rel"] for r in per_read),
            "array": {"rows": 256, "cols": 27, "tile": [ARRAY_TILE.rows, ARRAY_TILE.cols], "r_wire_ohm": r_wire,
                      "read_model": "sinh", "levels_s": list(mapping.levels_s), "reads": per_read,
                      "untiled_error_rel": error(untiled, reads[1][1], results[-1]),
                      "untiled_active": int(np.count_nonzero(reads[1][1])), "wall_s": wall}}


def step_overhead(repeats: int = 10, per_class: int = 40) -> dict:
    """Training-step time of the tactile network with and without the IR-drop model, interleaved."""
    import torch  # after cosim, which sets OMP_WAIT_POLICY for torch's OpenMP threads

    from cosim.train.config import load_config
    from cosim.train.models import build_model
    from cosim.train.tasks import make_task

    torch.set_num_threads(2)
    common = ["model.bits=3", f"data.synthetic_per_class={per_class}", "model.r_wire=1.0"]
    plain_cfg, aware_cfg = load_config("tactile", common), load_config("tactile", common + ["model.ir_drop=true"])
    task = make_task(plain_cfg.data)
    torch.manual_seed(0)
    models = {"plain": build_model(plain_cfg.model, task.n_inputs, task.n_outputs)}
    torch.manual_seed(0)
    models["ir_drop"] = build_model(aware_cfg.model, task.n_inputs, task.n_outputs)
    models["ir_drop"].load_state_dict(models["plain"].state_dict())
    optimisers = {name: torch.optim.Adamax(m.parameters(), lr=0.0) for name, m in models.items()}  # lr 0: same weights
    batch = next(task.batches("train", plain_cfg.data.batch_size))
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats + 1):  # the first round warms up
        for name, model in models.items():
            optimisers[name].zero_grad(set_to_none=True)
            start = time.perf_counter()
            task.loss(model(batch.inputs), batch).backward()
            optimisers[name].step()
            times[name].append(time.perf_counter() - start)
    steady = {name: values[1:] for name, values in times.items()}
    median = {name: statistics.median(values) for name, values in steady.items()}
    fastest = {name: min(values) for name, values in steady.items()}
    return {"train_step_overhead": median["ir_drop"] / median["plain"] - 1,
            "step": {"batch": plain_cfg.data.batch_size, "steps": int(batch.inputs.shape[1]), "threads": 2,
                     "median_s": median, "fastest_s": fastest,
                     "overhead_fastest": fastest["ir_drop"] / fastest["plain"] - 1,
                     "times_s": {name: [round(t, 4) for t in values] for name, values in steady.items()}}}


def agreement(out: Path, epochs: int, per_class: int, samples: int) -> dict:
    """Train the tactile network on the wired array with and without the IR-drop model; verify both in SPICE."""
    from cosim.train.config import load_config
    from cosim.train.loop import train
    from cosim.verify.export import HardwareConfig
    from cosim.verify.runner import verify_run

    record = {}
    for name, aware in (("ir_aware", True), ("ir_naive", False)):
        run_dir = out / name
        cfg = load_config("tactile", ["model.bits=3", f"data.synthetic_per_class={per_class}", "model.r_wire=1.0",
                                      f"model.ir_drop={'true' if aware else 'false'}", f"run.epochs={epochs}",
                                      f"run.out={json.dumps(str(run_dir))}", "run.threads=2"])
        start = time.perf_counter()
        history = train(cfg, resume=(run_dir / "checkpoints").is_dir(), progress=False)
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        summary = verify_run(run_dir, samples=samples, cpu_budget_s=6000.0,
                             hw=HardwareConfig(programming="ideal", r_wire=1.0, tile=ARRAY_TILE), n_jobs=2,
                             progress=False)
        record[name] = {"test_accuracy": history[-1].get("test_accuracy"), "train_s": train_s,
                        "verify_s": time.perf_counter() - start,
                        **{key: summary[key] for key in ("prediction_agreement", "spike_count_agreement",
                                                         "spike_time_error_s", "spice_accuracy",
                                                         "surrogate_accuracy", "samples", "ir_drop_error_rel",
                                                         "wired_array", "simulation_cpu_s")}}
        print(name, json.dumps(record[name]), flush=True)
    return {"ir_aware_agreement": record["ir_aware"]["prediction_agreement"],
            "ir_naive_agreement": record["ir_naive"]["prediction_agreement"],
            "agreement": {"epochs": epochs, "synthetic_per_class": per_class, "samples": samples,
                          "set_up": "SYNTHETIC Braille, 3-bit tactile network, model.r_wire = 1 ohm, tiles 32 x 16; "
                                    "verification: linear read, devices on target, wires on", **record}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["array", "step", "agreement", "all"], default="all")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--per-class", type=int, default=40)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--out", default="runs/ir_drop")
    args = parser.parse_args(argv)
    parts = ("array", "step", "agreement") if args.part == "all" else (args.part,)
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": platform.node(),
            "cpus": os.cpu_count(), "load": os.getloadavg()[0], "argv": sys.argv[1:]}
    RESULTS.mkdir(exist_ok=True)
    lines = []
    for part in parts:
        if part == "array":
            values = array_error()
            tiles = np.array([r["tile_error_rel"] for r in values["array"]["reads"]])
            lines.append(f"- IR drop, 256 x 27 tiled 32 x 16, 1 ohm, sinh: output error "
                         f"{values['ir_drop_error_rel']:.2%} (worst of 4 reads; tiles {tiles.min():.2%}-"
                         f"{tiles.max():.2%}); untiled "
                         f"{values['array']['untiled_error_rel']:.1%}")
        elif part == "step":
            values = step_overhead(per_class=args.per_class)
            lines.append(f"- training step, tactile 3-bit, batch 128: IR-drop model "
                         f"+{values['train_step_overhead']:.1%} (median {values['step']['median_s']['plain']:.2f} -> "
                         f"{values['step']['median_s']['ir_drop']:.2f} s; fastest "
                         f"+{values['step']['overhead_fastest']:.1%})")
        else:
            values = agreement(Path(args.out), args.epochs, args.per_class, args.samples)
            lines.append(f"- SPICE agreement with 1 ohm wires ({args.samples} test samples): trained IR-aware "
                         f"{values['ir_aware_agreement']:.3f}, trained on the ideal product "
                         f"{values['ir_naive_agreement']:.3f}")
        keys = {k: v for k, v in values.items() if not isinstance(v, dict)}
        recording.merge_json("spice_scale.json", keys)
        recording.merge_json("ir_drop.json", {**values, f"{part}_meta": meta})
        print(lines[-1], flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
