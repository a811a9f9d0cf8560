"""The design of experiments with signed currents: regions, rendering, and a real ngspice run onto the clamp rail."""
from __future__ import annotations

import numpy as np
import pytest

from cosim.surrogates import doe, load_felif
from cosim.surrogates.felif_model import simulate
from cosim.surrogates.felif_spice import CircuitReference


def test_the_shipped_design_covers_every_region_in_both_splits():
    for split in doe.SPLITS:
        stimuli = doe.design(split)
        assert {s.region for s in stimuli} == set(doe.REGIONS)
        for s in stimuli:
            assert (min(s.current) < 0) == (s.region != "nominal"), s.name
        rail = [s for s in stimuli if s.region == "rail"]
        assert min(min(s.current) for s in rail) <= -50e-9 and max(max(s.current) for s in stimuli) >= 150e-9
    fit_names = {s.name for s in doe.design("fit")}
    assert fit_names.isdisjoint(s.name for s in doe.design("holdout"))
    again = doe.Stimulus.from_dict(doe.design("fit")[-1].to_dict())
    assert again == doe.design("fit")[-1] and again.region == "rail"


def test_signed_currents_render_with_the_charge_of_each_step():
    stimulus = doe.pulse_train(5e-9, 2, 3, 10, delay_steps=1, low=-20e-9, region="rail")
    assert stimulus.current[:4] == (-20e-9, 5e-9, 5e-9, -20e-9)
    t, i = np.array(stimulus.pwl().points).T
    grid = np.linspace(0, stimulus.duration, 200_001)
    charge = np.add.reduceat(np.interp(grid, t, i)[:-1] * np.diff(grid), np.arange(0, 200_000, 20_000))
    expected = np.array(stimulus.current) * stimulus.dt
    expected[0] -= stimulus.current[0] * 100e-9 / 2  # the first edge from 0 A
    assert charge == pytest.approx(expected, rel=1e-3, abs=1e-20)
    with pytest.raises(ValueError, match="non-zero weights"):
        doe.poisson_driven(300, (4e-9, 0.0), 10, seed=0)


@pytest.mark.slow
def test_negative_phases_drive_the_circuit_onto_the_clamp_rail_and_the_surrogate_follows():
    """One short ngspice transient: -20 nA phases hold V at the lower rail (v_ss = -4.5 V less the diode drop),
    5 nA phases make it fire again; the shipped surrogate sits at its v_min there and spikes alike."""
    surrogate = load_felif()
    stimulus = doe.pulse_train(40e-9, 3, 3, 18, delay_steps=2, low=-20e-9, region="rail")
    reference = CircuitReference(circuit=surrogate.circuit(), n_jobs=1, progress=False)
    (circuit,) = reference([stimulus], 100e-6)
    (model,) = simulate([stimulus], surrogate.params, surrogate.step_config(), 100e-6)
    low = (circuit.t % 6e-3 > 0.5e-3) & (circuit.t % 6e-3 < 2e-3)  # inside a negative phase
    assert -5.05 < circuit.v[low].min() and circuit.v[low].max() < -4.6
    assert model.v[low] == pytest.approx(float(surrogate.params.v_min), abs=1e-6)
    assert len(circuit.spikes) >= 3
    assert len(model.spikes) == len(circuit.spikes)
    assert np.abs(model.spikes - circuit.spikes).max() < 0.1e-3
