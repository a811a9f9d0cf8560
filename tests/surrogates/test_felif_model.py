"""The surrogate simulation used for fitting is the trainer's BRUNO forward pass, with timed crossings."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cosim.felif.layer import FeLIFLayer
from cosim.felif.physics import FeLIFParameters
from cosim.felif.step import StepConfig
from cosim.surrogates import doe
from cosim.surrogates.felif_model import current_matrix, simulate

STIMULI = (doe.constant(1e-9, max_steps=30), doe.constant(10e-9, max_steps=12), doe.constant(50e-9, max_steps=8),
           doe.pulse_train(20e-9, 2, 1, 12), doe.poisson_driven(800, (6e-9,) * 5, 12, seed=4))


def test_same_spikes_and_states_as_the_training_layer():
    params = FeLIFParameters(v_thr=2.3, c_par=20e-15)
    traces = simulate(STIMULI, params, sample_every=100e-6)
    layer = FeLIFLayer(len(STIMULI), params, StepConfig(), current_scale=1.0, dtype=torch.float64)
    spikes, record = layer(current_matrix(STIMULI, 1e-3)[:, None, :], record=True)
    for j, (stimulus, trace) in enumerate(zip(STIMULI, traces)):
        assert len(trace.spikes) > 0
        layer_steps = np.flatnonzero(spikes[: stimulus.steps, 0, j].numpy())
        np.testing.assert_array_equal(np.floor(trace.spikes / 1e-3).astype(int), layer_steps)
        # the last window of each step is the state the layer holds after the step (reset included)
        np.testing.assert_array_equal(trace.v[9::10], record.v[: stimulus.steps, 0, j].numpy())
        np.testing.assert_array_equal(trace.p[9::10], record.p[: stimulus.steps, 0, j].numpy())


def test_first_crossings_match_the_reference_numbers():
    # REFERENCE.md section 1: explicit Euler at 1 us from rest
    expected = {1e-9: 12.562e-3, 10e-9: 1.237e-3, 50e-9: 0.244e-3}
    stimuli = [doe.constant(i, max_steps=14) for i in expected]
    for trace, t_first in zip(simulate(stimuli, FeLIFParameters()), expected.values()):
        assert trace.spikes[0] == pytest.approx(t_first, abs=1e-6)


def test_crossing_times_do_not_depend_on_the_recording_window():
    # windows of one fine step need no re-run: the crossing is interpolated in the sub-step where it happens
    stimuli = STIMULI[1:4]
    fine = simulate(stimuli, FeLIFParameters(), sample_every=1e-6)
    for sample_every in (50e-6, 250e-6):
        for a, b in zip(fine, simulate(stimuli, FeLIFParameters(), sample_every=sample_every)):
            np.testing.assert_allclose(b.spikes, a.spikes, rtol=0, atol=1e-12)
            np.testing.assert_array_equal(b.v, a.v[round(sample_every / 1e-6) - 1::round(sample_every / 1e-6)])


def test_bad_grids_are_refused():
    with pytest.raises(ValueError, match="must divide the coarse step"):
        simulate(STIMULI[:1], FeLIFParameters(), sample_every=300e-6)
    with pytest.raises(ValueError, match="has dt=0.002 s but the model steps dt=0.001 s"):
        simulate([doe.constant(1e-9, dt=2e-3)], FeLIFParameters())
