"""The validity guard counts the neuron-steps a training layer spends outside the fitted support."""
from __future__ import annotations

import json
import logging

import pytest
import torch

from cosim.felif.layer import FeLIFLayer
from cosim.felif.physics import FeLIFParameters, FeLIFState
from cosim.surrogates.guard import CHECKS, VISIT_BINS, Support, ValidityGuard, Visits

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


def test_guard_records_the_distribution_it_sees():
    guard = ValidityGuard(SUPPORT)
    layer = FeLIFLayer(5, FeLIFParameters(), current_scale=1e-9, dtype=torch.float64, guard=guard)
    x = torch.linspace(-50, 150, 40 * 2 * 5, dtype=torch.float64).reshape(40, 2, 5)  # -50 .. 150 nA
    _, record = layer(x, record=True)
    visits = guard.visits
    assert int(visits.counts["i_in"].sum()) == int(visits.counts["v"].sum()) == x.numel()
    lo, hi, bins = VISIT_BINS["i_in"]
    below_zero = int(visits.counts["i_in"][1: 1 + round(-lo / (hi - lo) * bins)].sum())
    assert below_zero == int((x < 0).sum())  # bins split at 0 A
    q = visits.quantiles("i_in")
    assert q["q0.5"] == pytest.approx(float(x.median()) * 1e-9, abs=1.5e-9)  # 1 nA bins
    assert q["q0.0001"] == pytest.approx(-50e-9, abs=1.5e-9) and q["q0.9999"] == pytest.approx(150e-9, abs=1.5e-9)
    assert visits.quantiles("v")["q0.0001"] == pytest.approx(float(record.v.min()), abs=0.03)
    # one single-neuron input sequence per observed sequence, rotating over the neurons
    layer(x)
    assert [len(s) for s in visits.sequences] == [40, 40]
    assert visits.sequences[0] == pytest.approx((x[:, 0, 0] * 1e-9).tolist())
    assert visits.sequences[1] == pytest.approx((x[:, 0, 7 % 5] * 1e-9).tolist())
    again = Visits.from_dict(json.loads(json.dumps(visits.to_dict())))
    assert all(torch.equal(again.counts[k], visits.counts[k]) for k in VISIT_BINS)
    assert list(again.sequences) == list(visits.sequences)
    guard.reset()
    assert int(guard.visits.counts["v"].sum()) == 0 and not guard.visits.sequences
