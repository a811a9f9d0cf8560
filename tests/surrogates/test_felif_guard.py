"""The validity guard counts the neuron-steps a training layer spends outside the fitted support."""
from __future__ import annotations

import logging

import pytest
import torch

from cosim.felif.layer import FeLIFLayer
from cosim.felif.physics import FeLIFParameters, FeLIFState
from cosim.surrogates.guard import CHECKS, Support, ValidityGuard

SUPPORT = Support(i_in=(0.0, 60e-9), v=(-1.5, 2.6), p=(-0.22, 0.22))


def test_layer_counts_inputs_and_states_outside_the_support(caplog):
    torch.manual_seed(0)
    guard = ValidityGuard(SUPPORT, tolerance=0.0)
    layer = FeLIFLayer(6, FeLIFParameters(), current_scale=1e-9, dtype=torch.float64, guard=guard)
    x = torch.rand(20, 3, 6, dtype=torch.float64) * 100 - 20  # -20 .. 80 nA: some below, some above
    with caplog.at_level(logging.WARNING, logger="cosim.surrogates.guard"):
        _, record = layer(x, record=True)
        layer(x)
    current = x * 1e-9
    expected = {
        "i_in_below": int((current < 0).sum()), "i_in_above": int((current > 60e-9).sum()),
        "v_outside": int(((record.v < -1.5) | (record.v > 2.6)).sum()),
        "p_outside": int(((record.p < -0.22) | (record.p > 0.22)).sum()),
        "any": int(((current < 0) | (current > 60e-9) | (record.v < -1.5) | (record.v > 2.6) | (record.p < -0.22)
                    | (record.p > 0.22)).sum()),
    }
    report = guard.report()
    assert expected["i_in_below"] > 0 and expected["i_in_above"] > 0 and expected["v_outside"] > 0
    assert {check: report[check] for check in expected} == {check: 2 * n for check, n in expected.items()}
    assert report["observed"] == 2 * x.numel()
    assert report["fraction_outside"] == pytest.approx(expected["any"] / x.numel())
    assert sum("outside the support" in r.message for r in caplog.records) == 1  # warned once
    guard.reset()
    assert guard.report()["any"] == 0 and guard.observed == 0


def test_inside_the_support_counts_nothing_and_tolerance_gives_slack():
    guard = ValidityGuard(SUPPORT)
    layer = FeLIFLayer(4, FeLIFParameters(), current_scale=1e-9, guard=guard)
    layer(torch.full((15, 2, 4), 10.0))
    report = guard.report()
    assert report["observed"] == 120 and all(report[check] == 0 for check in CHECKS)
    edge = ValidityGuard(SUPPORT, tolerance=0.01)
    state = FeLIFState(torch.tensor([2.6 + 0.005 * 4.1]), torch.tensor([0.0]))
    edge.observe(torch.tensor([60.3e-9]), state)
    assert edge.report()["any"] == 0
    edge.observe(torch.tensor([61e-9]), state)
    assert edge.report()["i_in_above"] == 1


def test_support_round_trip_and_errors():
    assert Support.from_dict(SUPPORT.to_dict()) == SUPPORT
    with pytest.raises(KeyError, match="no range 'p'"):
        Support.from_dict({"i_in": [0, 1], "v": [0, 1]})
    with pytest.raises(ValueError, match="lower end 2.0 above upper end 1.0"):
        Support(i_in=(0, 1), v=(2.0, 1.0), p=(0, 1))
