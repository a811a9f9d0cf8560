"""SPICE-in-the-loop fine-tuning (`cosim.verify.in_the_loop`), on real VACASK: the straight-through forward is the
circuit's spikes and its backward the surrogate's coarse-step Jacobian product at the SPICE states; an interrupted
epoch resumes from the store without simulating again what had finished; `cosim finetune` end to end."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cosim.cli import main
from cosim.felif.bruno import coarse_step
from cosim.felif.physics import FeLIFState, initial_state
from cosim.felif.step import spike
from cosim.train.config import ModelConfig, load_config
from cosim.train.loop import train
from cosim.train.models import build_model
from cosim.verify.compare import raster
from cosim.verify.export import HardwareConfig, device_layer, program
from cosim.verify.in_the_loop import (
    FINETUNE,
    RESULT,
    FinetuneConfig,
    Finetuner,
    finetune_run,
    gap_closed,
    spice_forward,
    straight_through,
)
from cosim.verify.runner import load_run, simulate_spice

HIDDEN = 4
"""FeLIF neurons of the tiny music network: 4 single-column SPICE jobs per sample."""


@pytest.fixture(scope="module")
def trained_run(write_jsb, tmp_path_factory) -> Path:
    jsb = write_jsb(3, train=(14, 12, 16, 10), valid=(12,), test=(14, 12), low=55, high=80)
    out = tmp_path_factory.mktemp("runs") / "music"
    # 4 nA per weight unit: the 4 neurons spike every few steps, below the coarse step's dead zone (the gradient
    # vanishes from ~8 nA on, `cosim.train.models`)
    train(load_config("music", ["data.dataset=jsb", f"data.path={json.dumps(str(jsb))}", f"model.hidden={HIDDEN}",
                                "model.bits=3", "model.current_scale=4e-9", "run.epochs=1", "run.threads=1",
                                f"run.out={json.dumps(str(out))}"]), progress=False)
    return out


def test_straight_through_forward_is_spice_and_backward_the_surrogate_at_spice_states(tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig(network="music", hidden=3, bits=3, current_scale=2e-8, v_thr=2.0), 12, 12)
    with torch.no_grad():
        model.synapses.weight.uniform_(-0.2, 0.6)
    pre = torch.from_numpy((np.random.default_rng(0).random((10, 2, 12)) < 0.5).astype(np.float32))
    lengths = [10, 7]
    pre[7:, 1] = 0.0  # the second sample is padding after 7 steps
    chip = program(device_layer(model), HardwareConfig(programming="ideal"))
    store = tmp_path / "jobs"
    states, _ = spice_forward(chip, pre.numpy(), lengths, 600.0, n_jobs=2, progress=False, store=store)

    # forward: the circuit's spikes, read back here from the stored SPICE results
    traces, _ = simulate_spice(chip, [pre[:n, b].numpy() for b, n in enumerate(lengths)], 600.0, n_jobs=2,
                               progress=False, store=store)
    neurons = model.neurons
    x = model.synapses(pre).detach().requires_grad_()
    out = straight_through(x, states, neurons)
    for b, n in enumerate(lengths):
        assert torch.equal(out[:n, b], torch.from_numpy(raster(traces[b], n, chip.layer.dt)))
    assert not out[7:, 1].any()
    assert 5 <= out.sum() < out.numel() / 2  # the circuits spike, and not at every step
    # V: the threshold where the circuit spiked, the reset value after, below threshold elsewhere
    params = neurons.params
    spiked = states.spikes.bool()
    assert torch.all(states.v[spiked] == params.v_thr)
    assert torch.all(states.v[1:][spiked[:-1]] == params.v_reset)
    assert torch.all(states.v[~spiked] < params.v_thr)

    # backward: a step-by-step autograd graph of the guarded coarse step at the SPICE states, its values the
    # SPICE states (straight-through), reset steps without gradient, the spike's surrogate derivative at V
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (out * weights).sum().backward()
    scale = neurons.current_scale
    ref_x = x.detach().clone().requires_grad_()
    current = (ref_x + (states.current / scale - ref_x).detach()) * scale
    state = initial_state(tuple(x.shape[1:]), params)
    s_prev, loss = torch.zeros_like(state.v), torch.zeros(())
    for t in range(x.shape[0]):
        coarse = coarse_step(state, current[t], params, neurons.cfg, guard=True)
        reset = s_prev.bool()
        v, p = (torch.where(reset, fixed, c + (fixed - c).detach())
                for c, fixed in ((coarse.v, states.v[t]), (coarse.p, states.p[t])))
        surrogate = spike(v, params.v_thr, neurons.cfg)
        loss = loss + ((states.spikes[t] + surrogate - surrogate.detach()) * weights[t]).sum()
        state, s_prev = FeLIFState(v, p), states.spikes[t]
    loss.backward()
    assert x.grad.abs().sum() > 0
    assert torch.allclose(x.grad, ref_x.grad, rtol=1e-4, atol=1e-6 * float(ref_x.grad.abs().max()))


def _stored(run: Path) -> int:
    return len(list((run / FINETUNE / "jobs").glob("*.json")))


def test_an_interrupted_epoch_resumes_without_simulating_again(trained_run, tmp_path):
    ft = FinetuneConfig(epochs=1, samples=3, eval_samples=2, max_steps=8, batch_size=1, lr=0.02)
    hw = HardwareConfig(programming="ideal")
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    for run in (whole, parts):
        shutil.copytree(trained_run, run)
    reference = finetune_run(whole, ft, hw, n_jobs=2, progress=False)
    assert reference["history"][0]["jobs_simulated"] == 3 * HIDDEN

    stopped = finetune_run(parts, ft, hw, n_jobs=2, progress=False, stop_after=1)
    assert stopped == {"stopped": True, "epoch": 1, "batch": 1}
    assert _stored(parts) == 2 * HIDDEN + HIDDEN  # the held-out samples before, one batch
    # a session that simulated the second batch and was stopped before its update was saved
    cfg, model, task, _ = load_run(parts)
    tuner = Finetuner(model, task, cfg, ft, hw, parts / FINETUNE, n_jobs=2, progress=False)
    assert (tuner.epoch, tuner.batch) == (1, 1)
    batch = tuner.epoch_batches(1)[1]
    chip = program(device_layer(tuner.model), hw)
    spice_forward(chip, tuner.model.presynaptic(batch.inputs).numpy(), batch.mask.sum(1).tolist(), 600.0, 2,
                  progress=False, store=tuner.store)
    assert _stored(parts) == 4 * HIDDEN

    record = tuner.fit()
    # batch 1 in the first session, batch 2 read back from the store, batch 3 simulated: 2 x 4 jobs this epoch
    assert record["history"][0]["jobs_simulated"] == 2 * HIDDEN
    assert _stored(parts) == _stored(whole)  # the same simulations in all
    for key in ("spice_metric_before", "spice_metric_after", "model_metric", "model_metric_after"):
        assert record[key] == reference[key]
    resumed, uninterrupted = (torch.load(run / FINETUNE / "checkpoints" / "epoch-0001.pt")["model"]
                              for run in (parts, whole))
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)


def test_cosim_finetune_runs_an_epoch_end_to_end(trained_run, tmp_path, capsys):
    run = tmp_path / "music"
    shutil.copytree(trained_run, run)
    start = load_run(run)[1].state_dict()
    code = main(["finetune", str(run), "--epochs", "1", "--samples", "2", "--eval-samples", "2", "--max-steps", "8",
                 "--lr", "0.02", "--jobs", "2"])
    assert code == 0, capsys.readouterr().err
    record = json.loads((run / FINETUNE / RESULT).read_text())
    for key in ("spice_metric_before", "spice_metric_after", "model_metric", "metric", "epochs", "seconds"):
        assert key in record
    assert record["metric"] == "bce" and record["epochs"] == 1 and record["simulator"] == "vacask"
    assert record["history"][0]["jobs_simulated"] == 2 * HIDDEN
    assert np.isfinite(record["spice_metric_after"]) and record["spice_metric_after"] != record["spice_metric_before"]
    tuned = load_run(run, run / FINETUNE / "checkpoints" / "epoch-0001.pt")[1].state_dict()
    assert not torch.equal(tuned["synapses.weight"], start["synapses.weight"])  # the straight-through gradient
    assert not torch.equal(tuned["readout.weight"], start["readout.weight"])


def test_the_gap_closed_is_measured_for_a_loss_and_an_accuracy_alike():
    assert gap_closed(0.25, 0.23, 0.21) == pytest.approx(0.5)  # BCE: SPICE worse when higher
    assert gap_closed(0.6, 0.7, 0.8) == pytest.approx(0.5)  # accuracy: SPICE worse when lower
    assert gap_closed(0.25, 0.27, 0.21) == pytest.approx(-0.5)  # worse after
    assert gap_closed(0.3, 0.2, 0.3) is None  # no gap to close
