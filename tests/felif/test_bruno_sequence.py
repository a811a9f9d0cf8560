"""BRUNO as one autograd node per sequence (method "bruno") against the step-by-step form ("bruno_step"): the same
spikes and states bit for bit, the same gradients to rounding, the same guard counts and stateful continuation."""
from __future__ import annotations

import pytest
import torch

from cosim.felif import bruno
from cosim.felif.layer import FeLIFLayer
from cosim.felif.physics import FeLIFParameters
from cosim.felif.step import StepConfig
from cosim.surrogates.guard import Support, ValidityGuard

CFG = StepConfig(h=1e-5)  # 100 sub-steps per coarse step: the same code paths, 10x faster than h = 1 us


def inputs(t: int, batch: int, n: int, seed: int) -> torch.Tensor:
    """float64 inputs in weight units: mostly driving (spikes and resets), some negative (V below zero)."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(t, batch, n, generator=g, dtype=torch.float64) * 14 - 3


def run(method: str, x: torch.Tensor, dtype: torch.dtype, cfg: StepConfig = CFG, uses=(1.0, 0.1, 10.0),
        **layer_args):
    """(spikes, V, P, d loss / d x) of a layer of `method`; the loss weighs spikes, V and P with fixed random
    weights times `uses` (0: that output is not in the loss) so that every output's gradient path is used."""
    layer = FeLIFLayer(x.shape[-1], cfg=cfg, method=method, current_scale=0.5e-9, dtype=dtype, **layer_args)
    x = x.detach().clone().requires_grad_()
    spikes, record = layer(x, record=True)
    g = torch.Generator().manual_seed(7)
    w = [torch.rand(spikes.shape, generator=g, dtype=torch.float64).to(dtype) for _ in range(3)]
    loss = sum(use * (out * weight).sum() for use, out, weight in zip(uses, (spikes, record.v, record.p), w) if use)
    loss.backward()
    return spikes, record.v, record.p, x.grad


def assert_same_values(a, b):
    for got, want, name in zip(a[:3], b[:3], ("spikes", "V", "P")):
        assert torch.equal(got, want), f"{name} differ between the sequence and the step-by-step BRUNO"


@pytest.mark.parametrize("cfg", [CFG, StepConfig(h=1e-5, rate_grad="stop", surrogate="tanh")],
                         ids=["exact-superspike", "stop-tanh"])
def test_float64_values_equal_and_gradients_to_rounding(cfg):
    x = inputs(30, 3, 5, seed=1)
    seq, step = run("bruno", x, torch.float64, cfg), run("bruno_step", x, torch.float64, cfg)
    assert_same_values(seq, step)
    assert 0.05 < float(seq[0].detach().mean()) < 0.5, "the test needs spikes and resets"
    torch.testing.assert_close(seq[3], step[3], rtol=1e-11, atol=1e-11 * float(step[3].abs().max()))


@pytest.mark.parametrize("uses", [(0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 0.0, 0.0)], ids=["V", "P", "spikes"])
def test_gradients_through_one_output_only(uses):
    x = inputs(12, 2, 4, seed=8)
    seq, step = run("bruno", x, torch.float64, uses=uses), run("bruno_step", x, torch.float64, uses=uses)
    torch.testing.assert_close(seq[3], step[3], rtol=1e-11, atol=1e-11 * float(step[3].abs().max()))


def test_float32_values_equal_and_gradients_to_rounding():
    x = inputs(30, 3, 5, seed=2)
    seq, step = run("bruno", x, torch.float32), run("bruno_step", x, torch.float32)
    assert_same_values(seq, step)
    reference = run("bruno_step", x, torch.float64)[3]
    assert torch.equal(seq[0].double(), run("bruno", x, torch.float64)[0]), "float32 spikes as in float64 here"
    scale = float(reference.abs().max())
    # float32's own rounding error against float64; the two float32 forms may differ by about that much
    err_step = float((step[3].double() - reference).abs().max()) / scale
    err_seq = float((seq[3].double() - reference).abs().max()) / scale
    assert err_seq <= 2 * err_step + 1e-6, (err_seq, err_step)
    torch.testing.assert_close(seq[3], step[3], rtol=1e-3, atol=1e-5 * scale)


def test_per_neuron_parameters_and_small_jacobian_chunks(monkeypatch):
    area = torch.linspace(20e-12, 30e-12, 4, dtype=torch.float64)
    params = FeLIFParameters(area=area, v_thr=2.0)
    x = inputs(17, 2, 4, seed=3)
    step = run("bruno_step", x, torch.float64, params=params)
    whole = run("bruno", x, torch.float64, params=params)
    for chunks in (17, 9, 1):  # one step per chunk; 2 steps and a shorter last chunk; the whole sequence
        monkeypatch.setattr(bruno, "JACOBIAN_CHUNKS", chunks)
        chunked = run("bruno", x, torch.float64, params=params)
        assert_same_values(chunked, step)
        torch.testing.assert_close(chunked[3], step[3], rtol=1e-11, atol=1e-11 * float(step[3].abs().max()))
        torch.testing.assert_close(chunked[3], whole[3], rtol=1e-12, atol=0)


def test_guard_counts_equal():
    support = Support(i_in=(0.0, 5e-9), v=(-1.0, 2.6), p=(-0.22, 0.0))
    x = inputs(20, 2, 6, seed=4)
    guards = {m: ValidityGuard(support, name=m) for m in ("bruno", "bruno_step")}
    for method, guard in guards.items():
        run(method, x, torch.float32, guard=guard)
    seq, step = guards["bruno"].report(), guards["bruno_step"].report()
    assert seq == step and 0 < seq["any"] < seq["observed"] == 20 * 2 * 6


def test_stateful_continuation_equals_step_by_step():
    x = inputs(24, 2, 5, seed=5)
    layers = {m: FeLIFLayer(5, cfg=CFG, method=m, stateful=True, dtype=torch.float64)
              for m in ("bruno", "bruno_step")}
    parts = {}
    for method, layer in layers.items():
        layer.reset_state(2)
        chunks = []
        for part in (x[:9], x[9:10], x[10:]):
            part = part.clone().requires_grad_()
            spikes, record = layer(part, record=True)
            (spikes.sum() + record.v.sum()).backward()
            chunks.append((spikes, record.v, record.p, part.grad))
        parts[method] = [torch.cat(t) for t in zip(*chunks)]
    assert_same_values(parts["bruno"], parts["bruno_step"])
    scale = float(parts["bruno_step"][3].abs().max())
    torch.testing.assert_close(parts["bruno"][3], parts["bruno_step"][3], rtol=1e-11, atol=1e-11 * scale)
    whole = FeLIFLayer(5, cfg=CFG, dtype=torch.float64)(x)
    assert torch.equal(parts["bruno"][0], whole), "streaming equals one long call"
    state, s = layers["bruno"]._state
    assert state.v._base is None and state.p._base is None, "the carried state must not hold the whole sequence"
    assert s.dtype == torch.float64


def test_cycle_to_cycle_variability_runs_the_step_form():
    x = inputs(8, 2, 4, seed=6).float()
    out = {}
    for method in ("bruno", "bruno_step"):
        torch.manual_seed(11)
        out[method] = FeLIFLayer(4, cfg=CFG, method=method, c2c_sigma=0.05)(x, record=True)[1].v
    assert torch.equal(out["bruno"], out["bruno_step"])


def test_sequence_checks_its_input():
    layer = FeLIFLayer(3, cfg=CFG, stateful=True)
    layer.reset_state(2)
    with pytest.raises(ValueError, match=r"reset_state\(4\)"):
        layer(torch.zeros(5, 4, 3))
    state, s = layer._state
    with pytest.raises(ValueError, match="must match the state"):
        bruno.bruno_sequence(torch.zeros(5, 2, 4), 1e-9, state, s, FeLIFParameters(), CFG)
