"""Verification runs: M test samples of a trained network through its circuit and through its surrogate.

`verify_model` does one verification of a model in memory (what training calls every K epochs); `verify_run`
loads a run folder's config and checkpoint, verifies, and writes ``verify.json`` and ``verify/raster.png``.

For each sample the device layer's presynaptic spikes come from the training model (the key roll for music, the
hidden LIF spikes of a seeded forward pass for tactile) and drive both sides:

* surrogate: the training model's FeLIF neurons (`cosim.surrogates.felif_model.simulate`, the BRUNO forward
  pass with crossing times) fed the exported weights' currents;
* SPICE: the programmed crossbar and the neuron circuits (`cosim.verify.export`), simulated in parallel through
  the engine (`cosim.spice.run_many`: local worker processes or a Dask scheduler).

CPU-time budget: samples are simulated in rounds of as many as run at once; after each round the measured
simulation time per sample (the jobs' own wall time) predicts the next round, which is only started if it fits
in what is left of the budget. The first round always runs; a job may take as long as the whole budget (at
least MIN_JOB_TIMEOUT_S).
"""
from __future__ import annotations

import dataclasses
import json
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from cosim.devices.card import card_sha256
from cosim.devices.crossbar import Crossbar, TileConfig
from cosim.devices.plugins import neuron_device, synapse_device
from cosim.spice import SimError, run_many
from cosim.surrogates.traces import Traces, compare
from cosim.train.checkpoint import CHECKPOINTS, latest_checkpoint, load_checkpoint, write_atomic
from cosim.train.config import ModelConfig, TrainConfig, VerifyConfig, read_config, validate
from cosim.train.loop import RUN_RECORD
from cosim.train.models import ModelOutput, build_model, device_level_table, fitted_surrogate
from cosim.train.refit import surrogate_to_resume
from cosim.train.tasks import Batch, MusicTask, Task, make_task
from cosim.verify.compare import SPICE_METRIC, prediction_agreement, raster, spice_traces, spike_summary
from cosim.verify.export import (
    DeviceLayer,
    HardwareConfig,
    HardwareLayer,
    device_layer,
    program,
    programmed_levels,
    sample_jobs,
)

WINDOWS_PER_STEP = 20
"""Surrogate V samples per coarse step (the grid on which V is compared)."""
MIN_JOB_TIMEOUT_S = 60.0
"""Wall-time limit of one SPICE job when the CPU-time budget is smaller, s (the budget's limit otherwise)."""


class SpiceDivergenceWarning(UserWarning):
    """SPICE and the surrogate disagree more than the configured tolerance allows."""


def select_samples(task: Task, split: str, count: int, max_steps: int = 0) -> list[tuple[int, Batch]]:
    """`count` samples of `split` spread evenly over it (index, one-sample batch), cut to `max_steps` steps."""
    data = task.splits[split]
    n = len(data)
    indices = sorted(set(np.linspace(0, n - 1, min(count, n)).round().astype(int).tolist()))
    samples = []
    for i in indices:
        if isinstance(task, MusicTask):
            item = data[i]
            inputs, targets = item.inputs[None], item.targets[None]
        else:
            x, label = data[i]
            inputs, targets = x[None], label[None]
        if max_steps:
            inputs = inputs[:, :max_steps]
            targets = targets[:, :max_steps] if isinstance(task, MusicTask) else targets
        samples.append((i, Batch(inputs, targets, torch.ones(inputs.shape[:2], dtype=torch.bool))))
    return samples


def surrogate_traces(layer: DeviceLayer, spikes: Sequence[np.ndarray]) -> list[list[Traces]]:
    """Per sample, per neuron: the training model's response to the exported weights' currents (the neuron
    device's `reference`)."""
    device = neuron_device(layer.neuron, layer.neuron_card)
    return [[Traces(r.t, r.v, np.full(r.t.shape, np.nan), r.spikes, layer.dt)
             for r in device.reference(layer.neurons, layer.currents(sample), layer.dt, layer.dt / WINDOWS_PER_STEP)]
            for sample in spikes]


def _parallel_slots(n_jobs: int | None, scheduler: Any) -> int:
    if n_jobs:
        return n_jobs
    if scheduler is None:
        return joblib.cpu_count()
    return 8  # a Dask cluster: start with a round of 8 jobs, the budget check takes over from there


def simulate_spice(chip: HardwareLayer, spikes: Sequence[np.ndarray], budget_s: float, n_jobs: int | None = None,
                   scheduler: Any = None, progress: bool = True, store: Path | None = None,
                   currents: Sequence[np.ndarray] | None = None) -> tuple[list[list[Traces] | None], float]:
    """SPICE traces per sample (None where skipped for the budget or failed) and the simulation CPU time, s.
    `store`: folder where each job's result is written as it comes (`run_many`), so that an interrupted
    verification, run again, simulates only what is missing. `currents`: the array's output currents of each
    sample (`Crossbar.staged_read`), which then drive the neurons (`sample_jobs`)."""
    grid = (np.arange(max(len(s) for s in spikes) * WINDOWS_PER_STEP) + 1) * chip.layer.dt / WINDOWS_PER_STEP
    timeout = max(budget_s, MIN_JOB_TIMEOUT_S)
    per_sample = [sample_jobs(chip, sample, f"verify-sample{s}", timeout, None if currents is None else currents[s])
                  for s, sample in enumerate(spikes)]
    jobs_per_sample = len(per_sample[0])
    round_size = max(1, _parallel_slots(n_jobs, scheduler) // jobs_per_sample)
    out: list[list[Traces] | None] = [None] * len(spikes)
    spent, done = 0.0, 0
    while done < len(spikes):
        batch = list(range(done, min(done + round_size, len(spikes))))
        if done and spent / done * len(batch) > budget_s - spent:
            break
        jobs = [job for s in batch for job, _ in per_sample[s]]
        results = iter(run_many(jobs, n_jobs=n_jobs, scheduler=scheduler, progress=progress, store=store))
        for s in batch:
            traces: list[Traces] | None = []
            for _, columns in per_sample[s]:
                result = next(results)
                if isinstance(result, SimError):
                    warnings.warn(f"SPICE verification: sample {s} failed and is left out: {result}", stacklevel=2)
                    traces = None
                    continue
                spent += float(result.provenance.get("wall_s", 0.0))
                if traces is not None:
                    traces += spice_traces(result, chip.neurons.select(columns), len(columns),
                                           grid[:len(spikes[s]) * WINDOWS_PER_STEP], chip.layer.dt)
            out[s] = traces
        done += len(batch)
    return out, spent


def verify_model(model: nn.Module, task: Task, cfg: VerifyConfig, hw: HardwareConfig = HardwareConfig(),
                 out_dir: Path | None = None, n_jobs: int | None = None, scheduler: Any = None,
                 progress: bool = True, split: str = "test",
                 fitted: Any | None = None, store: Path | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify `model` on cfg.samples samples of `split`: (summary for verify.json, data for the plots).

    `out_dir` caches the programming Monte Carlo (``out_dir/levels``); `store` keeps every SPICE result as it
    comes (`simulate_spice`: run again, an interrupted verification resumes); `fitted` is the surrogate the
    network was trained with (`cosim.train.models.fitted_surrogate`), None for the analytic model. With wire
    resistance the summary has the array's IR-drop error per tile (`ir_drop_tiles`), and the array is simulated
    in two stages, exact for the array as built with either read model (`Crossbar.staged_read`: its output
    currents from one transient per tile over the distinct input patterns of the samples; then the neurons on
    those currents, one column per job as with ideal wires; summary ``wired_array`` = "staged" and
    ``wired_read``). Global RNG states are left untouched.
    """
    start = time.perf_counter()
    layer = device_layer(model)
    levels = None if hw.programming == "ideal" else programmed_levels(
        hw, layer.synapse, out_dir / "levels" if out_dir is not None else None, progress=progress,
        card=layer.synapse_card)
    chip = program(layer, hw, levels, fitted)
    samples = select_samples(task, split, cfg.samples, cfg.max_steps)
    with torch.random.fork_rng():
        torch.manual_seed(hw.seed)
        with torch.no_grad():
            spikes = [model.presynaptic(batch.inputs)[:, 0].numpy() for _, batch in samples]
    reference = surrogate_traces(layer, spikes)
    read = None
    if hw.r_wire > 0:
        read = chip.crossbar.staged_read(spikes, chip.simulator, "verify-read", n_jobs, scheduler, store, progress,
                                         max(cfg.cpu_budget_s, MIN_JOB_TIMEOUT_S))
    spice, cpu_s = simulate_spice(chip, spikes, cfg.cpu_budget_s, n_jobs, scheduler, progress, store,
                                  None if read is None else read.currents)
    cpu_s += 0.0 if read is None else read.simulator_s

    done = [s for s in range(len(samples)) if spice[s] is not None]
    if not done:
        raise RuntimeError("SPICE verification: no sample could be simulated (see the warnings above)")
    sums = {"spice": Counter(), "surrogate": Counter()}
    agreement: Counter = Counter()
    for s in done:
        _, batch = samples[s]
        steps = len(spikes[s])
        pair = {"spice": raster(spice[s], steps, layer.dt), "surrogate": raster(reference[s], steps, layer.dt)}
        with torch.no_grad():
            logits = {side: model.logits(torch.from_numpy(r)[:, None]) for side, r in pair.items()}
        for side in sums:
            sums[side] += task.sums(ModelOutput(logits[side], {}), batch)
        agreement += prediction_agreement(task, logits["spice"], logits["surrogate"], batch.mask)
    spikes_cmp = compare([t for s in done for t in spice[s]], [t for s in done for t in reference[s]])
    metrics = {side: task.metrics(value) for side, value in sums.items()}
    network = "music" if isinstance(task, MusicTask) else "tactile"
    key = SPICE_METRIC[network]
    summary: dict[str, Any] = {
        "prediction_agreement": agreement["agree"] / max(1, agreement["total"]),
        **spike_summary(spikes_cmp),
        "spice_metric": metrics["spice"][key], "surrogate_metric": metrics["surrogate"][key],
        "metric": "bce" if key == "loss" else "accuracy",
        **{f"{side}_{name}": value for side in metrics for name, value in metrics[side].items()},
        "samples": len(done), "samples_requested": cfg.samples,
        "sample_indices": [samples[s][0] for s in done], "steps": [len(spikes[s]) for s in done],
        "seconds": time.perf_counter() - start, "simulation_cpu_s": cpu_s, "cpu_budget_s": cfg.cpu_budget_s,
        "network": network, "split": split, "neurons": layer.n_neurons, "neuron_device": layer.neuron,
        "synapse_device": layer.synapse, "device_cards": _cards(layer), "inputs": layer.inputs, "bits": layer.bits,
        "current_per_level_a": layer.current_per_level, "mirror_gain": chip.crossbar.config.mirror_gain,
        "tolerance": cfg.tolerance, "hardware": dataclasses.asdict(hw), "simulator": chip.simulator,
        "fitted_surrogate": fitted is not None,
        # the neurons are simulated as their netlists are: no card beside each neuron's instance
        "verification_adds_clamp": any(not card.startswith("Xn") for card in chip.neurons.cards(1)),
    }
    if network == "music":
        summary["frame_agreement"] = agreement["frames_agree"] / max(1, agreement["frames"])
    summary["within_tolerance"] = summary["prediction_agreement"] >= cfg.tolerance
    if read is not None:
        summary |= ir_drop_tiles(chip.crossbar, spikes, chip.simulator)
        summary["wired_array"] = "staged"
        summary["wired_read"] = {"patterns": read.patterns, "jobs": read.jobs, "simulator_s": read.simulator_s}
    plots = {"spice": spice[done[0]], "surrogate": reference[done[0]], "index": samples[done[0]][0]}
    return summary, plots


def _cards(layer: DeviceLayer) -> dict[str, dict | None]:
    """The device cards the layer's circuits were built from ({"neuron", "synapse"}: path, SHA-256, ... or None)."""
    neuron = neuron_device(layer.neuron, layer.neuron_card).card if layer.neuron_card else None
    synapse = synapse_device(layer.synapse, layer.synapse_card).card if layer.synapse_card else None
    return {"neuron": neuron.to_dict() if neuron else None, "synapse": synapse.to_dict() if synapse else None}


IR_DROP_READS = 4
"""Input patterns (coarse steps of the verified samples) whose operating points give the IR-drop error per tile."""


def ir_drop_tiles(crossbar: Crossbar, spikes: Sequence[np.ndarray], simulator: str = "ngspice") -> dict[str, Any]:
    """IR-drop error of the programmed `crossbar` per tile: operating points (on `simulator`) of `IR_DROP_READS`
    input patterns of the samples (the steps at the 25/50/75/100 % quantiles of the number of active inputs),
    each tile's mirrored partial outputs against the same devices with ideal wires (`Crossbar.tile_errors`; the
    programming spread is in both). Keys: ``ir_drop_error_rel`` (||outputs - ideal|| / ||ideal|| of the whole
    array over the reads), ``ir_drop_tile_error_rel`` ([row tiles][column tiles]), ``ir_drop_tiles`` (the tile
    ranges), ``ir_drop_reads_active`` (active inputs of each read)."""
    steps = np.concatenate([np.asarray(s) for s in spikes])
    steps = steps[steps.sum(axis=1) > 0]
    if not len(steps):
        return {}
    order = np.argsort(steps.sum(axis=1), kind="stable")
    picks = sorted({int(order[round(q * (len(order) - 1))]) for q in np.linspace(0.25, 1.0, IR_DROP_READS)})
    v = crossbar.config.v_read * steps[picks].astype(float)
    results = run_many([crossbar.op_job(row, name=f"verify-ir-drop-{k}", simulator=simulator)
                        for k, row in enumerate(v)], progress=False, raise_errors=True)
    partial = np.array([crossbar.partial_outputs(result) for result in results])
    ideal = crossbar.ideal_outputs(v)
    row_tiles, col_tiles = crossbar.tiles
    return {"ir_drop_error_rel": float(np.linalg.norm(partial.sum(axis=1) - ideal) / np.linalg.norm(ideal)),
            "ir_drop_tile_error_rel": crossbar.tile_errors(partial, v).tolist(),
            "ir_drop_tiles": {"rows": [[r.start, r.stop] for r in row_tiles],
                              "pairs": [[c.start, c.stop] for c in col_tiles]},
            "ir_drop_reads_active": [int(n) for n in steps[picks].sum(axis=1)]}


def array_of_run(model_cfg: ModelConfig, hw: HardwareConfig) -> HardwareConfig:
    """`hw` with the array the run was built for (model.r_wire, tiles of model.tile_rows x model.tile_cols)
    where `hw` has ideal wires and the run has wire resistance; else `hw` as it is."""
    if hw.r_wire > 0 or model_cfg.r_wire == 0:
        return hw
    return dataclasses.replace(hw, r_wire=model_cfg.r_wire, tile=TileConfig(model_cfg.tile_rows, model_cfg.tile_cols))


def check_tolerance(summary: dict[str, Any], where: str) -> str | None:
    """Warn (`SpiceDivergenceWarning`) and return the message if the prediction agreement is below tolerance."""
    if summary["within_tolerance"]:
        return None
    message = (f"{where}: SPICE and surrogate diverge: prediction agreement {summary['prediction_agreement']:.3f} "
               f"< tolerance {summary['tolerance']} (spike-count agreement {summary['spike_count_agreement']:.3f}, "
               f"{summary['samples']} samples)")
    warnings.warn(message, SpiceDivergenceWarning, stacklevel=2)
    return message


# ------------------------------------------------------------------------------------------------- run folders


def check_cards(run_dir: Path, cfg: TrainConfig) -> None:
    """ValueError if a device card the run's config names is not the one the run was trained with (run.json's
    ``device_cards``, by SHA-256): its network would be verified on another device than it learnt on."""
    try:
        recorded = json.loads((run_dir / RUN_RECORD).read_text()).get("device_cards") or {}
    except (OSError, ValueError, AttributeError):
        return
    for role, key in (("neuron", "device_card"), ("synapse", "synapse_card")):
        card, trained = getattr(cfg.model, key), (recorded.get(role) or {}).get("sha256")
        if card and trained and card_sha256(card) != trained:
            raise ValueError(f"{run_dir}: the device card model.{key} = {card} has changed since the run was "
                             f"trained on it (sha256 {card_sha256(card)[:12]}..., trained with {trained[:12]}...): "
                             "verification would simulate another device than the network learnt on; restore "
                             "that card or train again")


def load_run(run_dir: str | Path, checkpoint: str | Path | None = None) -> tuple[TrainConfig, nn.Module, Task, Path]:
    """(config, model with the checkpoint's weights, task, checkpoint path) of a training run folder; the config's
    model.surrogate_file is the surrogate version the checkpoint was trained with (`cosim.train.refit`)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    config_file = run_dir / "config.toml"
    if not config_file.is_file():
        raise FileNotFoundError(f"no config.toml in {run_dir}: not a training run folder (`cosim train` writes one)")
    cfg = read_config(config_file)
    check_cards(run_dir, cfg)
    if checkpoint is None:
        path = latest_checkpoint(run_dir)
        if path is None:
            raise FileNotFoundError(f"no checkpoint in {run_dir / CHECKPOINTS}: train at least one epoch first")
    else:
        path = Path(checkpoint)
        if not path.is_file() and (run_dir / CHECKPOINTS / path).is_file():
            path = run_dir / CHECKPOINTS / path
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {checkpoint} not found (looked in . and {run_dir / CHECKPOINTS})")
    state = load_checkpoint(path)
    surrogate = surrogate_to_resume(cfg, state)  # a surrogate version refitted during training (verify.refit)
    if surrogate is not None:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, surrogate_file=str(surrogate)))
    task = make_task(cfg.data)
    with torch.random.fork_rng():
        model = build_model(cfg.model, task.n_inputs, task.n_outputs,
                            device_level_table(cfg.model, run_dir, cfg.run.seed, progress=False))
    model.load_state_dict(state["model"])
    return cfg, model, task, path


def verify_run(run_dir: str | Path, checkpoint: str | Path | None = None, samples: int | None = None,
               cpu_budget_s: float | None = None, hw: HardwareConfig = HardwareConfig(), n_jobs: int | None = None,
               scheduler: Any = None, progress: bool = True, max_steps: int | None = None) -> dict[str, Any]:
    """Verify a run folder's checkpoint (default: the newest); writes verify.json and verify/raster.png there.

    samples, cpu_budget_s and max_steps default to the run's [verify] config; a run built for an array with wire
    resistance (model.r_wire) is verified on that array unless `hw` has wire resistance of its own
    (`array_of_run`). SPICE results are kept in ``verify/jobs`` as they come: run again, an interrupted
    verification resumes."""
    run_dir = Path(run_dir)
    cfg, model, task, path = load_run(run_dir, checkpoint)
    changes = {k: v for k, v in (("samples", samples), ("cpu_budget_s", cpu_budget_s), ("max_steps", max_steps))
               if v is not None}
    vcfg = dataclasses.replace(cfg.verify, **changes)
    validate(dataclasses.replace(cfg, verify=vcfg), where=f"verifying {run_dir} with {changes}")
    summary, plots = verify_model(model, task, vcfg, array_of_run(cfg.model, hw), run_dir / "verify", n_jobs,
                                  scheduler, progress, fitted=fitted_surrogate(cfg.model),
                                  store=run_dir / "verify" / "jobs")
    summary = {"checkpoint": str(path), "epoch": load_checkpoint(path)["epoch"], **summary}
    check_tolerance(summary, f"cosim verify {run_dir}")
    write_atomic(run_dir / "verify.json", json.dumps(summary, indent=1))
    plot_raster(plots, run_dir / "verify" / "raster.png",
                f"{summary['network']} epoch {summary['epoch']}: prediction agreement "
                f"{summary['prediction_agreement']:.3f}, spike counts {summary['spike_count_agreement']:.3f}")
    return summary


HISTORY = "verify_history.jsonl"
"""File in the run folder with one verification record per line (periodic verification during training)."""


def verify_epoch(model: nn.Module, task: Task, cfg: TrainConfig, run_dir: Path, epoch: int,
                 progress: bool = True) -> dict[str, Any]:
    """The periodic verification of training: verify the model after `epoch`, append the record to
    verify_history.jsonl (dropping records of this or later epochs, left by an interrupted run), draw
    verify/history.png and verify/raster_training.png, print a log line and warn if out of tolerance.

    A verification that cannot run (simulator missing, every sample failed) is logged and recorded with its
    error; training goes on."""
    path = run_dir / HISTORY
    history = [row for row in _read_jsonl(path) if row["epoch"] < epoch]
    try:
        hw = array_of_run(cfg.model, HardwareConfig(seed=cfg.run.seed))
        summary, plots = verify_model(model, task, cfg.verify, hw, run_dir / "verify",
                                      progress=progress, fitted=fitted_surrogate(cfg.model))
    except (SimError, RuntimeError) as err:
        record: dict[str, Any] = {"epoch": epoch, "error": str(err)}
        tqdm.write(f"verify epoch {epoch}: SPICE verification failed: {err}")
        warnings.warn(f"SPICE verification after epoch {epoch} failed: {err}", SpiceDivergenceWarning, stacklevel=2)
    else:
        record = {"epoch": epoch, **summary}
        tqdm.write(f"verify epoch {epoch}: prediction agreement {summary['prediction_agreement']:.4f}, spike counts "
                   f"{summary['spike_count_agreement']:.4f}, spike time {summary['spike_time_error_s'] * 1e6:.1f} us, "
                   f"{summary['metric']} SPICE {summary['spice_metric']:.4f} / surrogate "
                   f"{summary['surrogate_metric']:.4f} ({summary['samples']} samples, {summary['seconds']:.0f} s)")
        if message := check_tolerance(summary, f"epoch {epoch}"):
            tqdm.write(f"WARNING {message}")
        plot_raster(plots, run_dir / "verify" / "raster_training.png",
                    f"epoch {epoch}: prediction agreement {summary['prediction_agreement']:.3f}")
    history.append(record)
    write_atomic(path, "".join(json.dumps(row) + "\n" for row in history))
    plot_history(history, run_dir / "verify" / "history.png")
    return record


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------------------- plots


def plot_history(history: Sequence[dict[str, Any]], path: Path) -> Path:
    """SPICE vs surrogate agreement and task metric over the training epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in history if "error" not in row]
    fig, (ax_a, ax_m) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = [row["epoch"] for row in rows]
    for key, label in (("prediction_agreement", "prediction agreement"),
                       ("spike_count_agreement", "spike-count agreement")):
        ax_a.plot(epochs, [row[key] for row in rows], "o-", label=label)
    if rows:
        ax_a.axhline(rows[-1]["tolerance"], color="k", lw=0.6, ls=":", label="tolerance")
        metric = rows[-1]["metric"]
        ax_m.plot(epochs, [row["spice_metric"] for row in rows], "o-", label="SPICE")
        ax_m.plot(epochs, [row["surrogate_metric"] for row in rows], "s--", label="surrogate")
        ax_m.set(ylabel=f"test {metric} of verified samples")
    ax_a.set(xlabel="epoch", ylabel="SPICE vs surrogate", title="SPICE verification during training")
    ax_m.set(xlabel="epoch")
    ax_a.legend(fontsize=8)
    ax_m.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path



def plot_raster(plots: dict[str, Any], path: Path, title: str) -> Path:
    """Spike raster SPICE vs surrogate of the first verified sample, with V of the most active neurons."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spice, surrogate = plots["spice"], plots["surrogate"]
    fig, (ax_r, ax_v) = plt.subplots(2, 1, figsize=(10, 7), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    for j, (a, b) in enumerate(zip(spice, surrogate)):
        ax_r.plot(a.spikes * 1e3, np.full(len(a.spikes), j), "|", color="C0", ms=6,
                  label="SPICE" if j == 0 else None)
        ax_r.plot(b.spikes * 1e3, np.full(len(b.spikes), j), ".", color="C3", ms=3,
                  label="surrogate" if j == 0 else None)
    ax_r.set(ylabel="neuron", title=title)
    ax_r.legend(loc="upper right", fontsize=8)
    busiest = np.argsort([-len(t.spikes) for t in spice])[:3]
    for c, j in enumerate(busiest):
        ax_v.plot(spice[j].t * 1e3, spice[j].v, color=f"C{c}", lw=0.8, label=f"neuron {j} SPICE")
        ax_v.plot(surrogate[j].t * 1e3, surrogate[j].v, "--", color=f"C{c}", lw=0.8, label=f"neuron {j} surrogate")
    ax_v.set(xlabel=f"time (ms), test sample {plots['index']}", ylabel="membrane V (V)")
    ax_v.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
