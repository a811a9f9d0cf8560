"""Crossbar surrogate: exact with ideal wires, exact to first order against ngspice, a fitted correction that
beats the ideal dot product on held-out patterns, differentiable, reproducible; clear errors for bad files."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from test_rram_surrogate import edited_copy  # the test folder is on sys.path (pytest's default import mode)

from cosim.cli import main
from cosim.spice import run
from cosim.surrogates import fitter
from cosim.surrogates.artifact import SurrogateFileError
from cosim.surrogates.crossbar_fit import (
    CrossbarCase,
    CrossbarModel,
    ReadCorrection,
    column_currents,
    crossbar_outputs,
    design,
    fit_surrogate,
    load_crossbar,
    make_crossbar_surrogate,
)
from cosim.surrogates.rram_fit import load_rram

SEED = 4


def small_design(sizes, cases_per_size: int, seed: int) -> list[CrossbarCase]:
    """Random cases of the given sizes, r_wire 0.5..3 ohm (IR drops of a few to ~20 % at these sizes)."""
    rng = np.random.default_rng(seed)
    return [CrossbarCase(rows, cols, r_wire=float(rng.uniform(0.5, 3.0)), occupancy=float(rng.uniform(0.1, 1.0)),
                         weight_density=float(rng.uniform(0.2, 1.0)), seed=int(rng.integers(2**31)))
            for rows, cols in sizes for _ in range(cases_per_size)]


FIT_CASES = small_design(((8, 4), (16, 8), (32, 8)), 3, SEED)
HOLDOUT_CASES = small_design(((12, 6), (24, 16), (40, 8)), 3, SEED + 1)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    path = tmp_path_factory.mktemp("crossbar") / "crossbar.json"
    return make_crossbar_surrogate(path, FIT_CASES, HOLDOUT_CASES, seed=SEED, progress=False), path


def test_ideal_wires_give_exactly_the_dot_product():
    crossbar, v_rows = CrossbarCase(24, 5, r_wire=0.0, occupancy=0.5, weight_density=0.7, seed=1).draw()
    assert crossbar.config.r_wire == 0.0
    predicted = crossbar_outputs(crossbar, v_rows, ReadCorrection(2.0, 3.0, 4.0))  # coefficients play no part
    np.testing.assert_allclose(predicted, crossbar.ideal_outputs(v_rows), rtol=1e-12)


def test_analytic_correction_is_exact_to_first_order_against_ngspice():
    """Small wire resistance (IR drop ~0.1 %): the error of the ideal dot product is first order in r_wire, what
    is left after the correction is higher order (kappa from the sinh read law, no fitting)."""
    crossbar, v_rows = CrossbarCase(16, 4, r_wire=0.2, occupancy=0.6, weight_density=0.8, seed=2).draw()
    result = run(crossbar.op_job(v_rows))
    simulated = np.array([result[f"i(vout{j})"] for j in range(4)]).ravel()
    ideal_error = np.abs(crossbar.ideal_outputs(v_rows) - simulated).max()
    analytic = ReadCorrection.analytic(crossbar.config.v_read, crossbar.config.device.v0)
    corrected_error = np.abs(crossbar_outputs(crossbar, v_rows, analytic) - simulated).max()
    linear_error = np.abs(crossbar_outputs(crossbar, v_rows, ReadCorrection(1.0, 1.0)) - simulated).max()
    assert ideal_error > 5e-4 * np.abs(simulated).max()
    assert corrected_error < 1e-3 * ideal_error
    # the read nonlinearity (kappa != 1) is ~4 % of the first-order error
    assert linear_error > 0.01 * ideal_error
    assert corrected_error < 0.01 * linear_error


def test_correction_beats_the_ideal_dot_product_on_held_out_patterns(fitted):
    surrogate_artifact, path = fitted
    assert {p.name for p in path.parent.iterdir()} >= {"crossbar.json", "crossbar_report.md",
                                                       "crossbar_predicted.png", "crossbar_errors.png"}
    held = surrogate_artifact.validation["holdout"]
    per_case = held["per_case"]
    ideal, corrected = np.array(per_case["relative_error_ideal"]), np.array(per_case["relative_error_surrogate"])
    assert np.all(ideal > 0.001)  # nonzero wire resistance matters on every held-out read
    assert np.all(corrected < ideal)
    assert np.median(corrected) < 0.05 * np.median(ideal)
    assert held["level_error"]["surrogate"]["max"] < held["level_error"]["ideal"]["max"]
    # fitted coefficients stay near their first-order values
    analytic = ReadCorrection.analytic()
    surrogate = load_crossbar(path)
    for name in ("kappa_on", "kappa_off", "resummation"):
        assert getattr(surrogate.correction, name) == pytest.approx(getattr(analytic, name), rel=0.2)
    with pytest.warns(UserWarning, match=r"r_wire = 10 outside"):
        surrogate.model(10.0)
    assert surrogate.outside_support(1.0, rows=16, cols=4) == []
    assert surrogate.outside_support(0.0, rows=4096) == []  # ideal wires: exact anywhere


def test_fit_is_reproducible_with_a_seed(fitted, tmp_path):
    first, _ = fitted
    assert design("fit", seed=3) == design("fit", seed=3) != design("fit", seed=4)
    assert design("holdout", seed=3) != design("fit", seed=3)
    again = make_crossbar_surrogate(tmp_path / "crossbar.json", FIT_CASES, HOLDOUT_CASES, seed=SEED, progress=False)
    assert again.parameters == first.parameters
    assert again.validation == first.validation


def test_correction_is_differentiable_in_inputs_and_conductances():
    rng = np.random.default_rng(0)
    g_plus = torch.tensor(rng.uniform(10e-6, 80e-6, (6, 3)), requires_grad=True)
    g_minus = torch.tensor(rng.uniform(10e-6, 80e-6, (6, 3)), requires_grad=True)
    v_rows = torch.tensor(0.1 * rng.uniform(0.0, 1.0, (2, 6)), requires_grad=True)
    # 300 ohm per segment: an IR drop of tens of %, where the resummation is far from linear
    model = CrossbarModel(r_wire=300.0, correction=ReadCorrection(1.05, 0.97, 1.1))
    assert torch.autograd.gradcheck(lambda v, gp, gm: column_currents(v, gp, gm, model), (v_rows, g_plus, g_minus))


def test_corrupted_or_mismatched_files_give_clear_errors(fitted, tmp_path):
    _, path = fitted
    with pytest.raises(SurrogateFileError, match="is a 'crossbar' surrogate, expected 'rram'"):
        load_rram(path)
    cut = tmp_path / "cut.json"
    cut.write_text(path.read_text()[:-200])
    with pytest.raises(SurrogateFileError, match="cut.json: not valid JSON"):
        load_crossbar(cut)

    with pytest.raises(SurrogateFileError, match="invalid crossbar content: parameter 'kappa_on' must be a finite"):
        load_crossbar(edited_copy(path, tmp_path / "kappa.json",
                                  lambda d: d["parameters"]["kappa_on"].update(value=-1.0)))
    with pytest.raises(SurrogateFileError, match="has no parameter 'resummation'"):
        load_crossbar(edited_copy(path, tmp_path / "missing.json", lambda d: d["parameters"].pop("resummation")))
    with pytest.raises(SurrogateFileError, match=r"support.r_wire must be \[lowest, highest\]"):
        load_crossbar(edited_copy(path, tmp_path / "support.json", lambda d: d["support"].update(r_wire=[2.0, 1.0])))


@pytest.mark.slow
def test_cosim_fit_crossbar_quick_from_the_command_line(tmp_path):
    assert fitter("crossbar") is fit_surrogate
    out = tmp_path / "crossbar.json"
    assert main(["fit", "crossbar", "--quick", "--out", str(out), "--seed", "1"]) == 0
    surrogate = load_crossbar(out)
    held = surrogate.artifact.validation["holdout"]["relative_error"]
    assert held["surrogate"]["max"] < held["ideal"]["median"]
    assert len(surrogate.artifact.doe["fit"]) == len(design("fit", 1, quick=True))
