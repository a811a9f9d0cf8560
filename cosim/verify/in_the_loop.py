"""SPICE-in-the-loop fine-tuning: a few epochs in which the device layer's forward pass is the circuit's.

As chip-in-the-loop training does with a chip, every training batch runs the device layer on the programmed
circuits (`cosim.verify.export`: the crossbar with its programming spread and the neuron circuits), in SPICE, in
parallel through the engine (`cosim.verify.runner.simulate_spice`: local worker processes or a Dask scheduler),
and the gradient flows through the training model's surrogate evaluated at the circuit's states:

* forward (straight-through): the device layer's output spikes are SPICE's (`cosim.verify.compare.raster`);
  everything downstream (music: the float readout; tactile: the spike counts) and the loss see the circuit;
* backward: BRUNO's reverse-time recursion (`cosim.felif.bruno.sequence_vjp`: the guarded coarse step's
  Jacobians, zero where reset, and the spike's surrogate derivative) evaluated at the SPICE states
  (`spice_states`) and the chip's input currents instead of the model's own forward, as BRUNO's merge node
  evaluates the coarse Jacobian at the state its fine forward reached. The gradient reaches the synapses' float
  shadow weights through `QuantizedLinear`'s straight-through estimator, and for the tactile network the
  software layers before the crossbar.

The SPICE states of coarse step k ([steps, batch, neurons], after the step's reset, as the model's): V is the
circuit's membrane at the end of the step, t = (k+1) dt; where the circuit spiked in step k, V_thr (the membrane
at the crossing, where the circuit's comparator fires and the model latches); where it spiked in step k-1, the
reset state (V_reset, -P_s), as the model resets. The circuit's polarisation is not an output of the
simulation (a chip would not expose it either): P is the model's, integrated by its fine forward
(`cosim.felif.kernel.fine_forward`) over each step from the SPICE state at the step's start with the chip's
current, i.e. the surrogate run with its V overwritten by SPICE's at every coarse step.

Re-quantisation and re-programming: every training step (batch). The SPICE forward then always runs the weights
the gradient is applied to; the programming draw is per cell and seeded (`HardwareConfig.seed`), so a cell whose
level did not change keeps its conductance and only the changed cells are rewritten, as on a chip; the
write-verify population is computed once (cached in ``RUN_DIR/verify/levels``) and a re-programming costs only
the draw. The mirror gain follows the layer's weight step (max |w| / (L + 0.5)), as in verification.

Run folder: ``RUN_DIR/finetune/``: ``jobs/`` (every SPICE result, content-addressed by `cosim.spice.run_many`'s
store: an interrupted epoch, run again, simulates only what is missing), ``state.pt`` (written after every batch:
model, optimiser, RNG states, position in the epoch; resuming continues from the last finished batch),
``checkpoints/epoch-NNNN.pt`` (the fine-tuned model after each epoch; `cosim verify RUN_DIR --checkpoint
finetune/checkpoints/epoch-NNNN.pt` verifies it), ``finetune.json`` (the outcome: SPICE metric on held-out test
samples before and after, the model's metric on the same samples, per-epoch history: the task metrics of the
SPICE forward passes, ``jobs_simulated`` (fresh simulations; a job whose column, gain and input recur is read
back from the store) and ``simulation_cpu_s`` (the simulation time of the epoch's results, those read back
counted with the time they first took)).
"""
from __future__ import annotations

import dataclasses
import io
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from cosim.felif import physics
from cosim.felif.bruno import sequence_vjp
from cosim.felif.kernel import fine_forward
from cosim.felif.physics import FeLIFParameters, FeLIFState, initial_state
from cosim.felif.step import StepConfig
from cosim.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state, write_atomic
from cosim.train.config import TrainConfig, VerifyConfig
from cosim.train.models import ModelOutput, fitted_surrogate
from cosim.train.tasks import Batch, MusicTask, Task
from cosim.verify.compare import raster
from cosim.verify.export import HardwareConfig, HardwareLayer, device_layer, program, programmed_levels
from cosim.verify.runner import WINDOWS_PER_STEP, load_run, simulate_spice, verify_model

FINETUNE = "finetune"
"""Folder of a run's fine-tuning (module docstring)."""
STATE = "state.pt"
"""Resume point of a fine-tuning, written after every batch."""
RESULT = "finetune.json"
"""Outcome of a fine-tuning."""


@dataclass(frozen=True)
class FinetuneConfig:
    """What a SPICE-in-the-loop fine-tuning runs."""

    epochs: int = 2
    """Fine-tuning epochs (K)."""
    samples: int = 16
    """Training samples per epoch: drawn afresh each epoch from the run's train split (seeded by run.seed and the
    epoch)."""
    eval_samples: int = 8
    """Held-out test samples (spread over the test split, `cosim.verify.runner.select_samples`) on which the
    SPICE metric is measured before and after."""
    max_steps: int = 32
    """Coarse steps of every sample simulated and trained on (0: all)."""
    lr: float = 0.0
    """Adamax learning rate (0: the run's optimiser.lr); a fresh optimiser with the run's betas."""
    batch_size: int = 0
    """Samples per update (0: the run's data.batch_size)."""
    budget_s: float = 3600.0
    """Limit of one batch's (and one evaluation's) SPICE time, s; a sample it would skip is an error."""

    def __post_init__(self) -> None:
        for name in ("epochs", "samples", "eval_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"FinetuneConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_steps", "batch_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"FinetuneConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not self.lr >= 0 or not self.budget_s > 0:
            raise ValueError(f"FinetuneConfig: lr must be >= 0 and budget_s > 0 s, got {self.lr}, {self.budget_s}")


class SpiceStates(NamedTuple):
    """The device layer's states in SPICE, each [steps, batch, neurons] in the neuron layer's dtype."""

    spikes: torch.Tensor
    """The circuit's spikes, 0/1 (coarse step of each threshold crossing)."""
    v: torch.Tensor
    """Membrane voltage after each step's reset, V (module docstring)."""
    p: torch.Tensor
    """Polarisation after each step's reset, C/m^2: the model's along the circuit's V (module docstring)."""
    current: torch.Tensor
    """The chip's input current of each step, A (the programmed crossbar's mirrored output)."""


def spice_states(spikes: torch.Tensor, v_end: torch.Tensor, current: torch.Tensor, params: FeLIFParameters,
                 cfg: StepConfig) -> SpiceStates:
    """`SpiceStates` from the circuit's spikes [steps, batch, n] (0/1), its membrane at the end of every step
    `v_end` (V) and the chip's currents (A), all in one dtype: V_thr where the circuit spiked, the reset state
    after a spike, P from the model's fine forward started at each step from the SPICE state."""
    state = initial_state(tuple(v_end.shape[1:]), params, v_end.dtype, v_end.device)
    v_thr = torch.as_tensor(params.v_thr, dtype=v_end.dtype, device=v_end.device)
    s = torch.zeros_like(state.v)
    v_all, p_all = torch.empty_like(v_end), torch.empty_like(v_end)
    for t in range(v_end.shape[0]):
        reset = s.to(torch.bool)
        fine = fine_forward(state, current[t], params, cfg, frozen=reset)
        v = torch.where(spikes[t].to(torch.bool), v_thr.expand_as(fine.v), v_end[t])
        state = physics.reset_state(FeLIFState(v, fine.p), reset, params)
        s = spikes[t]
        v_all[t], p_all[t] = state
    return SpiceStates(spikes, v_all, p_all, current)


class _SpiceSequence(torch.autograd.Function):
    """Forward: the SPICE spikes; backward: `sequence_vjp` at the SPICE states from rest."""

    @staticmethod
    def forward(ctx, x, spikes, v, p, scale, params, cfg):
        rest = initial_state(tuple(v.shape[1:]), params, v.dtype, v.device)
        ctx.save_for_backward(x, rest.v, rest.p, torch.zeros_like(rest.v), spikes, v, p)
        ctx.scale, ctx.params, ctx.cfg = scale, params, cfg
        return spikes.to(x.dtype).clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes):
        grad_x = sequence_vjp(*ctx.saved_tensors, grad_spikes, None, None, ctx.scale, ctx.params, ctx.cfg)
        return grad_x, None, None, None, None, None, None


def straight_through(x: torch.Tensor, states: SpiceStates, neurons: nn.Module) -> torch.Tensor:
    """The device layer's spikes [steps, batch, n] for synaptic input x (weight units, with its autograd graph):
    forward, the circuit's spikes; backward, the surrogate's coarse-step Jacobians at the SPICE states and the
    chip's currents (x's gradient path carries the chip's value: x + stopgrad(I_chip / current_scale - x)).
    `neurons`: the FeLIF layer (params, cfg, current_scale)."""
    scale = float(neurons.current_scale)
    chip_x = (states.current / scale).to(x.dtype)
    x = x + (chip_x - x).detach()
    return _SpiceSequence.apply(x, states.spikes, states.v, states.p, scale, neurons.params, neurons.cfg)


def spice_forward(chip: HardwareLayer, presynaptic: np.ndarray, lengths: list[int], budget_s: float,
                  n_jobs: int | None = None, scheduler: Any = None, progress: bool = True,
                  store: Path | None = None) -> tuple[SpiceStates, float]:
    """The programmed layer `chip` simulated on presynaptic spikes [steps, batch, inputs] (0/1), sample b over
    its first lengths[b] steps (later steps: no spikes, V = 0, as after padding), in parallel through the engine
    with results kept in `store`: (`SpiceStates` in the neuron layer's dtype, simulation CPU time in s).
    RuntimeError if a sample fails or the budget would skip one (the store keeps what finished)."""
    neurons = chip.layer.neurons
    steps, batch = presynaptic.shape[:2]
    samples = [presynaptic[:lengths[b], b] for b in range(batch)]
    traces, cpu_s = simulate_spice(chip, samples, budget_s, n_jobs, scheduler, progress, store)
    missing = [b for b, t in enumerate(traces) if t is None]
    if missing:
        raise RuntimeError(f"SPICE-in-the-loop: sample(s) {missing} of the batch could not be simulated (failed or "
                           f"over the budget of {budget_s:g} s; see the warnings); finished simulations are kept "
                           f"in {store}, run again to resume")
    spikes = np.zeros((steps, batch, chip.layer.n_neurons))
    v_end = np.zeros_like(spikes)
    ends = np.arange(1, steps + 1) * WINDOWS_PER_STEP - 1  # grid points at t = (k + 1) dt
    for b, sample in enumerate(traces):
        n = lengths[b]
        spikes[:n, b] = raster(sample, n, chip.layer.dt)
        v_end[:n, b] = np.stack([trace.v[ends[:n]] for trace in sample], axis=1)
    current = chip.crossbar.ideal_outputs(chip.crossbar.config.v_read * np.asarray(presynaptic, dtype=float))
    dtype = neurons.dtype
    as_tensor = lambda a: torch.as_tensor(a, dtype=dtype)  # noqa: E731
    return spice_states(as_tensor(spikes), as_tensor(v_end), as_tensor(current), neurons.params, neurons.cfg), cpu_s


def gap_closed(spice_before: float, spice_after: float, model: float) -> float | None:
    """The share of the gap between SPICE's metric and the model's that fine-tuning closed, (before - after) /
    (before - model), for a loss (BCE) and an accuracy alike; None where SPICE and the model agreed before."""
    gap = spice_before - model
    return (spice_before - spice_after) / gap if gap else None


def _stored(store: Path) -> int:
    """Results in a `run_many` store."""
    return len(list(store.glob("*.json"))) if store.is_dir() else 0


def _cut(batch: Batch, task: Task, max_steps: int) -> Batch:
    """`batch` cut to its first `max_steps` steps (0: as it is)."""
    if not max_steps:
        return batch
    targets = batch.targets[:, :max_steps] if isinstance(task, MusicTask) else batch.targets
    return Batch(batch.inputs[:, :max_steps], targets, batch.mask[:, :max_steps])


class Finetuner:
    """SPICE-in-the-loop fine-tuning of a model in memory; `fit()` runs (or resumes) it in `out`.

    Args:
        model: a `VerifiableNetwork` with FeLIF device neurons and 3- or 4-bit device-layer synapses.
        task: its task; cfg: its training config (seed, optimiser betas and lr, batch size, threads).
        ft: what to run. hw: the hardware (programming, seed, neuron options); ideal wires only (with wire
            resistance every re-programming would need the wired array's transfer transient).
        out: the fine-tuning folder (``RUN_DIR/finetune``); cache: where the programming Monte Carlo is cached
            (in ``cache/levels``, as `verify_model`'s out_dir; None: not cached).
        fitted: the surrogate the model was trained with (None: analytic). n_jobs, scheduler: where the
            simulations run (`cosim.spice.run_many`). stop_after: stop after this many batches of this session
            (for tests and the benchmark's resume check; None: run to the end). surrogate: the surrogate record of
            the checkpoint fine-tuned (a refitted version, `cosim.train.refit`), copied into the fine-tuned
            checkpoints so that `load_run` builds them with the same surrogate.
    """

    def __init__(self, model: nn.Module, task: Task, cfg: TrainConfig, ft: FinetuneConfig, hw: HardwareConfig,
                 out: Path, cache: Path | None = None, fitted: Any | None = None, n_jobs: int | None = None,
                 scheduler: Any = None, progress: bool = True, stop_after: int | None = None,
                 surrogate: dict[str, Any] | None = None):
        if hw.r_wire > 0:
            raise ValueError("SPICE-in-the-loop fine-tuning simulates ideal wires only (HardwareConfig.r_wire = 0): "
                             "with wire resistance every re-programming would need the wired array's transfer "
                             "transient")
        layer = device_layer(model)  # the checks of verification: device neurons, quantised synapses
        if layer.neuron != "felif":
            raise ValueError(f"SPICE-in-the-loop fine-tuning needs FeLIF device neurons (its backward pass is "
                             f"BRUNO's), got {layer.neuron!r}")
        self.model, self.task, self.cfg, self.ft, self.hw = model, task, cfg, ft, hw
        self.out, self.cache, self.fitted = Path(out), cache, fitted
        self.n_jobs, self.scheduler = n_jobs, scheduler
        self.progress, self.stop_after, self.surrogate = progress, stop_after, surrogate
        self.store = self.out / "jobs"
        self.levels = None if hw.programming == "ideal" else programmed_levels(
            hw, layer.synapse, cache / "levels" if cache is not None else None, progress=progress,
            card=layer.synapse_card)
        self.optimiser = torch.optim.Adamax(model.parameters(), lr=ft.lr or cfg.optimiser.lr,
                                            betas=cfg.optimiser.betas)
        self.epoch, self.batch = 1, 0
        """Epoch in progress (1-based) and its batches done."""
        self.sums: Counter = Counter()
        """Task sums of the epoch's finished batches (SPICE forward), and its jobs and CPU time."""
        self.history: list[dict[str, Any]] = []
        self.before: dict[str, Any] | None = None
        self.seconds = 0.0
        """Wall time of the fine-tuning epochs so far, s (all sessions)."""
        if (self.out / STATE).is_file():
            self._restore(torch.load(self.out / STATE, weights_only=False))

    # --------------------------------------------------------------------------------------------- state

    def _state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "batch": self.batch, "model": self.model.state_dict(),
                "optimiser": self.optimiser.state_dict(), "rng": rng_state(), "sums": dict(self.sums),
                "history": self.history, "before": self.before, "seconds": self.seconds,
                "config": dataclasses.asdict(self.ft), "hardware": dataclasses.asdict(self.hw)}

    def _save(self) -> None:
        buffer = io.BytesIO()
        torch.save(self._state(), buffer)
        write_atomic(self.out / STATE, buffer.getvalue())

    def _restore(self, state: dict[str, Any]) -> None:
        same = {k: v for k, v in dataclasses.asdict(self.ft).items() if k != "epochs"}
        saved = {k: v for k, v in state["config"].items() if k != "epochs"}
        if same != saved or state["hardware"] != dataclasses.asdict(self.hw):
            raise ValueError(f"{self.out / STATE}: a fine-tuning with other settings is in progress there "
                             f"({saved}, hardware {state['hardware']}); resume it with those settings (only "
                             "--epochs may change) or move the folder away")
        self.model.load_state_dict(state["model"])
        self.optimiser.load_state_dict(state["optimiser"])
        set_rng_state(state["rng"])
        self.epoch, self.batch, self.sums = state["epoch"], state["batch"], Counter(state["sums"])
        self.history, self.before, self.seconds = state["history"], state["before"], state["seconds"]

    # ---------------------------------------------------------------------------------------------- runs

    def evaluate(self) -> dict[str, Any]:
        """Verification of the current model on `ft.eval_samples` held-out test samples (`verify_model`), its
        SPICE results kept in the store."""
        vcfg = VerifyConfig(samples=self.ft.eval_samples, cpu_budget_s=self.ft.budget_s, max_steps=self.ft.max_steps)
        summary, _ = verify_model(self.model, self.task, vcfg, self.hw, self.cache, self.n_jobs, self.scheduler,
                                  self.progress, "test", self.fitted, self.store)
        if summary["samples"] < summary["samples_requested"]:
            raise RuntimeError(f"SPICE-in-the-loop evaluation: only {summary['samples']} of "
                               f"{summary['samples_requested']} held-out samples were simulated (budget or "
                               "failures, see the warnings); raise FinetuneConfig.budget_s")
        return summary

    def epoch_batches(self, epoch: int) -> list[Batch]:
        """The training batches of `epoch`: `ft.samples` samples of the train split, shuffled by a generator
        seeded with run.seed and the epoch (so a resumed epoch has the same batches), cut to ft.max_steps."""
        generator = torch.Generator().manual_seed(self.cfg.run.seed * 100003 + epoch)
        size = self.ft.batch_size or self.cfg.data.batch_size
        batches, taken = [], 0
        for batch in self.task.batches("train", size, generator):
            if taken >= self.ft.samples:
                break
            keep = min(len(batch.inputs), self.ft.samples - taken)
            batches.append(_cut(Batch(batch.inputs[:keep], batch.targets[:keep], batch.mask[:keep]), self.task,
                                self.ft.max_steps))
            taken += keep
        return batches

    def train_batch(self, batch: Batch, name: str) -> dict[str, float]:
        """One update with the device layer's forward in SPICE: re-quantise and re-program the layer, simulate
        the batch (store: `self.store`), straight-through backward, optimiser step. Its task sums, jobs run
        and simulation CPU time."""
        self.model.train()
        self.optimiser.zero_grad(set_to_none=True)
        ref = self.model.device_layer()
        presynaptic = self.model.presynaptic(batch.inputs)  # [steps, batch, inputs], with its graph (tactile)
        chip = program(device_layer(self.model), self.hw, self.levels, self.fitted)
        lengths = batch.mask.sum(1).tolist()
        before = _stored(self.store)
        states, cpu_s = spice_forward(chip, presynaptic.detach().numpy(), lengths, self.ft.budget_s, self.n_jobs,
                                      self.scheduler, self.progress, self.store)
        spikes = straight_through(ref.synapses(presynaptic), states, ref.neurons)
        output = ModelOutput(self.model.logits(spikes), {ref.name: spikes})
        loss = self.task.loss(output, batch)
        if not torch.isfinite(loss):
            raise RuntimeError(f"SPICE-in-the-loop {name}: the loss is {loss.item()}; lower FinetuneConfig.lr")
        loss.backward()
        self.optimiser.step()
        with torch.no_grad():
            sums = self.task.sums(ModelOutput(output.logits.detach(), {}), batch)
        return {**sums, "jobs_simulated": _stored(self.store) - before, "simulation_cpu_s": cpu_s}

    def fit(self) -> dict[str, Any]:
        """Run the epochs not done yet (resuming from `state.pt` if there is one), then measure SPICE on the
        held-out samples; writes and returns ``finetune.json``'s record. With `stop_after`, stops after that many
        batches of this session (state saved) and returns {"stopped": True, "epoch", "batch"}."""
        self.out.mkdir(parents=True, exist_ok=True)
        if self.before is None:
            self.before = self.evaluate()
            self._save()
        done_now = 0
        while self.epoch <= self.ft.epochs:
            batches = self.epoch_batches(self.epoch)
            while self.batch < len(batches):
                if self.stop_after is not None and done_now >= self.stop_after:
                    return {"stopped": True, "epoch": self.epoch, "batch": self.batch}
                start = time.perf_counter()
                self.sums.update(self.train_batch(batches[self.batch], f"epoch {self.epoch} batch {self.batch + 1}"))
                self.batch += 1
                done_now += 1
                self.seconds += time.perf_counter() - start
                self.sums["seconds"] += time.perf_counter() - start
                self._save()
            row = {"epoch": self.epoch, **{f"train_{k}": v for k, v in self.task.metrics(self.sums).items()},
                   "jobs_simulated": int(self.sums["jobs_simulated"]),
                   "simulation_cpu_s": self.sums["simulation_cpu_s"], "seconds": self.sums["seconds"]}
            self.history.append(row)
            save_checkpoint(self.out / "checkpoints" / f"epoch-{self.epoch:04d}.pt",
                            {"epoch": self.epoch, "model": self.model.state_dict(), "finetune": row,
                             "surrogate": self.surrogate})
            if self.progress:
                print(f"finetune epoch {self.epoch}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()
                                                                   if isinstance(v, float)))
            self.epoch, self.batch, self.sums = self.epoch + 1, 0, Counter()
            self._save()
        after = self.evaluate()
        before = self.before
        closed = gap_closed(before["spice_metric"], after["spice_metric"], before["surrogate_metric"])
        record = {
            "spice_metric_before": before["spice_metric"], "spice_metric_after": after["spice_metric"],
            "model_metric": before["surrogate_metric"], "model_metric_after": after["surrogate_metric"],
            "metric": before["metric"], "gap_closed": closed, "epochs": self.ft.epochs,
            "seconds": self.seconds, "samples_per_epoch": self.ft.samples, "eval_samples": before["samples"],
            "max_steps": self.ft.max_steps, "prediction_agreement_before": before["prediction_agreement"],
            "prediction_agreement_after": after["prediction_agreement"], "simulator": before["simulator"],
            "neurons": before["neurons"], "inputs": before["inputs"], "bits": before["bits"],
            "eval_sample_indices": before["sample_indices"], "history": self.history,
            "verification_adds_clamp": before["verification_adds_clamp"],
            "config": dataclasses.asdict(self.ft), "hardware": dataclasses.asdict(self.hw),
            "reprogramming": "every batch (re-quantised to the nearest levels and re-drawn per cell, seeded)",
        }
        write_atomic(self.out / RESULT, json.dumps(record, indent=1, default=str))
        return record


def finetune_run(run_dir: str | Path, ft: FinetuneConfig, hw: HardwareConfig = HardwareConfig(),
                 checkpoint: str | Path | None = None, n_jobs: int | None = None, scheduler: Any = None,
                 progress: bool = True, stop_after: int | None = None, folder: str = FINETUNE) -> dict[str, Any]:
    """SPICE-in-the-loop fine-tuning of a run folder's checkpoint (default: the newest) into ``RUN_DIR/<folder>``
    (`Finetuner`; the programming Monte Carlo cached with verification's, in ``RUN_DIR/verify/levels``); resumes a
    fine-tuning in progress there. Another `folder` keeps another fine-tuning of the same run (e.g. on other
    hardware) apart."""
    run_dir = Path(run_dir)
    cfg, model, task, path = load_run(run_dir, checkpoint)
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    torch.manual_seed(cfg.run.seed)
    tuner = Finetuner(model, task, cfg, ft, hw, run_dir / folder, run_dir / "verify",
                      fitted_surrogate(cfg.model), n_jobs, scheduler, progress, stop_after,
                      load_checkpoint(path).get("surrogate"))
    return tuner.fit()
