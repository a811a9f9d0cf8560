"""Training with the fitted surrogate: the config names it, the device layer takes its parameters and guard."""
from __future__ import annotations

import pytest
import torch

from cosim.surrogates import load_felif
from cosim.train.config import ConfigError, load_config
from cosim.train.models import build_model


def test_tactile_network_uses_the_shipped_surrogate_and_counts_its_support():
    cfg = load_config("tactile", ["model.surrogate_file=default", "model.hidden=16", "model.encoding_repeat=2"])
    torch.manual_seed(0)
    model = build_model(cfg.model, 4, 27)
    surrogate = load_felif()
    layer = model.output
    assert layer.params == surrogate.params  # fitted v_thr, not the config's
    assert layer.cfg.h == surrogate.step_config().h
    model(torch.randn(3, 12, 4))
    report = layer.guard.report()
    assert report["observed"] == 3 * 12 * 27
    assert 0 <= report["any"] <= report["observed"]


def test_surrogate_fitted_for_another_forward_pass_is_refused():
    with pytest.raises(ConfigError, match=r"fitted for another forward pass: model.h = 1e-05 \(fitted with 1e-06\)"):
        load_config("tactile", ["model.surrogate_file=default", "model.h=1e-5"])
