"""Device-to-device and cycle-to-cycle variability of the FeLIF parameters (cosim.felif.variability)."""
from __future__ import annotations

import pytest
import torch

from cosim.felif.bruno import bruno_step
from cosim.felif.layer import FeLIFLayer
from cosim.felif.physics import FeLIFParameters, FeLIFState, initial_state
from cosim.felif.step import StepConfig
from cosim.felif.variability import (
    VARIED_FIELDS,
    VariabilityConfig,
    cycle_to_cycle,
    device_to_device,
    with_cycle_to_cycle,
)

# Some tests run BRUNO on its pure-torch fine loop (same ops as the BPTT loop, no kernel build), which warns.
pytestmark = pytest.mark.filterwarnings("ignore:FeLIF fine forward on the pure-torch loop:RuntimeWarning")

BASE = FeLIFParameters()


def _assert_multiplier_statistics(params: FeLIFParameters, sigma: float, count: int) -> None:
    for name in VARIED_FIELDS:
        factor = getattr(params, name) / getattr(BASE, name)
        assert factor.numel() == count
        # 5 standard errors: mean of N(1, sigma) and sample std (standard error sigma / sqrt(2 n))
        assert abs(float(factor.mean()) - 1.0) < 5 * sigma / count**0.5, name
        assert abs(float(factor.std()) / sigma - 1.0) < 5 / (2 * count) ** 0.5, name


def test_device_to_device_statistics_and_untouched_fields():
    params = VariabilityConfig(d2d_sigma=0.1, seed=4).device_parameters(BASE, 20000)
    _assert_multiplier_statistics(params, 0.1, 20000)
    assert params.eps_fe == BASE.eps_fe and params.v_thr == BASE.v_thr and params.tau0 == BASE.tau0
    factors = torch.stack([getattr(params, n) / getattr(BASE, n) for n in VARIED_FIELDS])
    assert abs(float(torch.corrcoef(factors)[0, 1])) < 0.05, "fields are drawn independently"


def test_device_to_device_is_seeded_and_redrawable():
    a = VariabilityConfig(d2d_sigma=0.01, seed=1).device_parameters(BASE, 50)
    b = VariabilityConfig(d2d_sigma=0.01, seed=1).device_parameters(BASE, 50)
    c = VariabilityConfig(d2d_sigma=0.01, seed=2).device_parameters(BASE, 50)
    assert all(torch.equal(getattr(a, n), getattr(b, n)) for n in VARIED_FIELDS)
    assert not any(torch.equal(getattr(a, n), getattr(c, n)) for n in VARIED_FIELDS)
    torch.manual_seed(7)
    d = device_to_device(BASE, 50, 0.01)
    torch.manual_seed(7)
    assert torch.equal(device_to_device(BASE, 50, 0.01).area, d.area), "global RNG when no generator is given"


def test_off_by_default():
    cfg = VariabilityConfig()
    assert cfg.d2d_sigma == 0
    assert cfg.device_parameters(BASE, 10) is BASE
    with pytest.raises(ValueError, match="not FeLIFParameters fields"):
        VariabilityConfig(fields=("area", "thickness"))
    with pytest.raises(ValueError, match="d2d_sigma"):
        VariabilityConfig(d2d_sigma=-0.1)


def test_device_parameters_stay_fixed_in_a_layer(monkeypatch):
    monkeypatch.setenv("COSIM_FINE_BACKEND", "torch")
    params = VariabilityConfig(d2d_sigma=0.1, seed=0).device_parameters(BASE, 4)
    layer = FeLIFLayer(4, params, StepConfig(dt=200e-6), current_scale=10e-9, dtype=torch.float64)
    x = torch.ones(6, 1, 4, dtype=torch.float64)
    _, first = layer(x, record=True)
    _, second = layer(x, record=True)
    assert torch.equal(first.v, second.v), "the same devices on every call"
    assert len({round(v, 9) for v in first.v[-1, 0].tolist()}) == 4, "different devices respond differently"
    assert torch.equal(layer.params.area, params.area)


def test_cycle_to_cycle_changes_on_every_call(monkeypatch):
    monkeypatch.setenv("COSIM_FINE_BACKEND", "torch")
    generator = torch.Generator().manual_seed(0)
    step = with_cycle_to_cycle(bruno_step, 0.05, generator=generator)
    state = initial_state((2, 3), BASE, torch.float64)
    i_in = torch.full((2, 3), 3e-9, dtype=torch.float64)
    s = torch.zeros(2, 3, dtype=torch.float64)
    cfg = StepConfig(dt=100e-6)
    _, a = step(i_in, state, s, BASE, cfg)
    _, b = step(i_in, state, s, BASE, cfg)
    assert not torch.equal(a.v, b.v)
    assert len(set(a.v.flatten().tolist())) == 6, "a draw per neuron and per sample"
    draws = cycle_to_cycle(BASE, (5000,), 0.05)
    assert not torch.equal(draws.e_a, cycle_to_cycle(BASE, (5000,), 0.05).e_a)
    _assert_multiplier_statistics(draws, 0.05, 5000)


def test_c2c_drawn_state_dtype():
    state = FeLIFState(torch.zeros(2, 3), torch.zeros(2, 3))
    params = cycle_to_cycle(BASE, tuple(state.v.shape), 0.01, dtype=state.v.dtype)
    assert params.area.dtype == torch.float32 and params.area.shape == (2, 3)
