"""The FeLIF fitter: recovers known parameters, is reproducible, writes a loadable artifact with its report."""
from __future__ import annotations

import numpy as np
import pytest

from cosim.felif.physics import FeLIFParameters
from cosim.surrogates import doe, load_felif
from cosim.surrogates.felif_fit import FitConfig, ModelReference, default_fit_parameters, fit, make_surrogate

DEFAULT = FeLIFParameters()
TRUE = DEFAULT.replace(e_a=1.08 * DEFAULT.e_a, p_s=0.9 * DEFAULT.p_s, area=1.1 * DEFAULT.area, v_reset=-1.3)
NAMES = ("e_a", "p_s", "area", "v_reset")
FITTED = tuple(p for p in default_fit_parameters(DEFAULT) if p.name in NAMES)
CONFIG = FitConfig(fitted=FITTED)
STIMULI = (doe.constant(2e-9, max_steps=25), doe.constant(10e-9, max_steps=20), doe.constant(50e-9, max_steps=15),
           doe.pulse_train(20e-9, 2, 3, 20))


def test_recovers_known_parameters_of_the_model_itself():
    reference = ModelReference(TRUE)(STIMULI, 100e-6)
    result = fit(STIMULI, reference, DEFAULT, CONFIG, progress=False)
    for name in NAMES:
        assert float(getattr(result.params, name)) == pytest.approx(float(getattr(TRUE, name)), rel=5e-3), name
    assert result.cost < 1e-2 * result.initial_cost


def test_fits_are_reproducible_with_a_seed():
    reference = ModelReference(TRUE)(STIMULI[1:3], 100e-6)
    config = FitConfig(fitted=FITTED, starts=2, seed=3, max_evaluations=15)
    first = fit(STIMULI[1:3], reference, DEFAULT, config, progress=False)
    again = fit(STIMULI[1:3], reference, DEFAULT, config, progress=False)
    assert again.params == first.params and again.start_costs == first.start_costs
    other = fit(STIMULI[1:3], reference, DEFAULT, FitConfig(fitted=FITTED, starts=2, seed=4, max_evaluations=15),
                progress=False)
    assert other.start_costs[0] == first.start_costs[0]  # the unperturbed start
    assert other.start_costs[1] != first.start_costs[1]  # another perturbed start


def test_make_surrogate_writes_artifact_and_report(tmp_path):
    holdout = (doe.constant(5e-9, max_steps=15), doe.poisson_driven(500, (4e-9,) * 6, 15, seed=1))
    artifact = make_surrogate(ModelReference(TRUE), tmp_path / "felif.json", STIMULI[:2], holdout, config=CONFIG,
                              doe_seed=7, notes="synthetic reference", progress=False)
    surrogate = load_felif(tmp_path / "felif.json")
    assert surrogate.artifact == artifact
    assert all(goal["met"] for goal in artifact.validation["goals"].values())
    assert set(artifact.validation["holdout"]["per_stimulus"]) == {s.name for s in holdout}
    assert [doe.Stimulus.from_dict(s) for s in artifact.doe["holdout"]] == list(holdout)
    assert artifact.provenance.seeds == {"doe": 7, "fit_starts": 0}
    assert artifact.fit["config"]["fitted"][0]["name"] == FITTED[0].name
    assert surrogate.support.i_in == (2e-9, 10e-9)  # the fit stimuli's range
    assert surrogate.support.v[0] == pytest.approx(-1.3, abs=0.01)
    for name in ("felif_report.md", "felif_overlays.png", "felif_rasters.png", "felif_errors.png",
                 "felif_parameters.png"):
        assert (tmp_path / name).stat().st_size > 1000, name
    assert "| v_nrmse |" in (tmp_path / "felif_report.md").read_text()


def test_bad_fit_requests_are_refused():
    reference = ModelReference(TRUE)(STIMULI[:1], 100e-6)
    with pytest.raises(ValueError, match="1 stimuli but 0 reference traces"):
        fit(STIMULI[:1], [], DEFAULT, CONFIG, progress=False)
    with pytest.raises(ValueError, match="distinct FeLIFParameters fields"):
        fit(STIMULI[:1], reference, DEFAULT, FitConfig(fitted=FITTED + FITTED[:1]), progress=False)
    with pytest.raises(ValueError, match=r"start value of \['e_a'\] outside the bounds"):
        fit(STIMULI[:1], reference, DEFAULT.replace(e_a=5e9), CONFIG, progress=False)


def test_stimuli_render_to_pwl_with_the_same_charge():
    stimulus = doe.pulse_train(20e-9, 2, 3, 12, delay_steps=1)
    points = np.array(stimulus.pwl(edge=1e-7).points)
    t_fine = np.linspace(0, stimulus.duration, 120001)
    charge_pwl = np.trapezoid(np.interp(t_fine, points[:, 0], points[:, 1]), t_fine)
    assert charge_pwl == pytest.approx(sum(stimulus.current) * stimulus.dt, rel=1e-4)
    assert points[0].tolist() == [0.0, 0.0]  # the operating point sees no input: the neuron starts at rest
    with pytest.raises(ValueError, match="PWL edge must be in"):
        stimulus.pwl(edge=2e-3)
    fit_names = {s.name for s in doe.design("fit")}
    assert fit_names.isdisjoint(s.name for s in doe.design("holdout"))
    assert doe.design("fit", seed=3) == doe.design("fit", seed=3) != doe.design("fit", seed=4)
