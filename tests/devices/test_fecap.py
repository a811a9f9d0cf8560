"""FeCap compact model: generated files, parameter checks, the equations against cosim.felif.physics, Verilog-A on
VACASK against the ngspice subcircuit, device variability, characterisation. Real simulators throughout."""
from __future__ import annotations

import json
from statistics import NormalDist

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from cosim.devices import fecap
from cosim.devices.fecap import (
    DEFAULT_SIGMA_EA,
    FeCapParameters,
    loop_figures,
    nrmse,
    pv_loop,
    pv_loop_job,
    render_ngspice,
    render_verilog_a,
    sample_devices,
)
from cosim.felif import physics
from cosim.felif.physics import FeLIFParameters
from cosim.spice import run_many


@pytest.mark.parametrize("n", fecap.SHIPPED_DOMAIN_COUNTS)
def test_model_files_are_generated_from_the_equations(n):
    files = fecap.model_files(n)
    assert files["verilog_a"].read_text() == render_verilog_a(n), "run python -m cosim.devices.fecap"
    assert files["ngspice"].read_text() == render_ngspice(n), "run python -m cosim.devices.fecap"


@pytest.mark.parametrize("change, message", [
    (dict(physics=FeLIFParameters(t_fe=-10e-9)), "t_fe"),
    (dict(physics=FeLIFParameters(t_int=0.0)), "t_int"),
    (dict(physics=FeLIFParameters(p_s=0.0)), "p_s"),
    (dict(physics=FeLIFParameters(p_s=-0.2)), "p_s"),
    (dict(physics=FeLIFParameters(area=torch.full((3,), 25e-12))), "one number per device"),
    (dict(n_domains=0), "n_domains"),
    (dict(sigma_ea=-0.1), "sigma_ea"),
    (dict(n_domains=2, ea_factors=(1.0,)), "ea_factors"),
    (dict(n_domains=2, ea_factors=(1.0, 0.0)), "ea_factors"),
    (dict(p0=-1.5), "p0"),
])
@pytest.mark.parametrize("simulator", ["ngspice", "vacask"])
def test_bad_parameters_are_rejected_before_any_simulation(change, message, simulator):
    with pytest.raises(ValueError, match=message):
        pv_loop_job(FeCapParameters().replace(**change), 4.0, 1e4, simulator=simulator)


def test_domain_activation_fields():
    assert FeCapParameters.reference().domain_factors() == (1.0,)
    factors = np.log(FeCapParameters().domain_factors())
    assert len(factors) == 8 and np.all(np.diff(factors) > 0)
    assert abs(factors.mean()) < 1e-12  # median E_a kept
    midpoints = [NormalDist().inv_cdf((i + 0.5) / 8) for i in range(8)]  # of N(0, 1), spread by sigma
    assert factors == pytest.approx(DEFAULT_SIGMA_EA * np.array(midpoints), rel=1e-12)
    assert FeCapParameters(ea_factors=tuple(range(1, 9))).domain_factors() == tuple(float(k) for k in range(1, 9))


def test_single_domain_subcircuit_integrates_the_reference_equations():
    """ngspice's fecap_nd1 under a triangular sweep against an accurate ODE solution of physics.polarisation_rate
    (the one definition of the equations) driven by the same voltage."""
    params = FeCapParameters.reference()
    frequency, amplitude = 1e4, 4.0
    job = pv_loop_job(params, amplitude, frequency, periods=1)
    (result,) = run_many([job], progress=False, raise_errors=True)
    p_spice = result["v(xfe.p1)"]
    time, v = result.x, result["v(a)"]

    def rate(t, p):
        voltage = torch.tensor(np.interp(t, time, v), dtype=torch.float64)
        return [physics.polarisation_rate(voltage, torch.tensor(p[0] * 0.22, dtype=torch.float64),
                                          params.physics).item() / 0.22]

    exact = solve_ivp(rate, (0, time[-1]), [-1.0], method="LSODA", t_eval=time, rtol=1e-9, atol=1e-12,
                      max_step=1.0 / (frequency * 4000))
    assert exact.success
    assert nrmse(exact.y[0], p_spice) < 1e-4


@pytest.fixture(scope="module")
def both_simulators():
    """Default multi-domain device: a major and a minor loop on ngspice and on VACASK."""
    params = FeCapParameters()
    cases = [(a, 1e4, sim) for a in (4.0, 2.0) for sim in ("ngspice", "vacask")]
    jobs = [pv_loop_job(params, a, f, periods=2, simulator=sim) for a, f, sim in cases]
    results = run_many(jobs, progress=False, raise_errors=True)
    return params, {case: pv_loop(job, result, params, case[1]) for case, job, result in zip(cases, jobs, results)}


@pytest.mark.parametrize("amplitude", [4.0, 2.0], ids=["major", "minor"])
def test_verilog_a_on_vacask_matches_ngspice_subcircuit(both_simulators, amplitude):
    _, loops = both_simulators
    ng, va = loops[amplitude, 1e4, "ngspice"], loops[amplitude, 1e4, "vacask"]
    assert nrmse(ng["p"], np.interp(ng["time"], va["time"], va["p"])) < 0.01


def test_loop_figures(both_simulators):
    params, loops = both_simulators
    major = loop_figures(loops[4.0, 1e4, "ngspice"]["v"], loops[4.0, 1e4, "ngspice"]["p"])
    minor = loop_figures(loops[2.0, 1e4, "ngspice"]["v"], loops[2.0, 1e4, "ngspice"]["p"])
    assert 0.5 < major["coercive_positive_v"] < 4.0 and major["coercive_negative_v"] == pytest.approx(
        -major["coercive_positive_v"], rel=0.02)
    assert major["remanent"] == pytest.approx(params.physics.p_s, rel=0.05)  # saturated loop
    assert 0 < minor["remanent"] < 0.8 * major["remanent"]  # partial switching


def test_sample_devices_is_reproducible_and_varies_only_the_varied_fields():
    # (that verification simulates the trained network's own devices: tests/verify/test_hardware_of_run.py)
    params = FeCapParameters()
    devices = sample_devices(params, 5, 0.1, seed=3)
    again = sample_devices(params, 5, 0.1, seed=3)
    other = sample_devices(params, 5, 0.1, seed=4)
    assert devices == again and devices != other
    for device in devices:
        for name in ("area", "e_a", "p_s", "i0", "t_fe", "t_int"):
            assert getattr(device.physics, name) != getattr(params.physics, name), name
        assert device.physics.tau0 == params.physics.tau0 and device.domain_factors() == params.domain_factors()
    spread = np.array([d.physics.e_a for d in sample_devices(params, 400, 0.1, seed=0)]) / params.physics.e_a
    assert spread.mean() == pytest.approx(1.0, abs=0.02) and spread.std() == pytest.approx(0.1, rel=0.15)
    with pytest.raises(ValueError, match="not physical"):
        sample_devices(params, 2000, 2.0, seed=0)


def test_characterize_quick(tmp_path):
    from cosim.devices.characterize import characterize

    summary = characterize("fecap", tmp_path, quick=True)
    assert json.loads((tmp_path / "summary.json").read_text()) == json.loads(json.dumps(summary))
    for name in ("pv_loops.npz", "pv_loops.csv", "pv_loops.png"):
        assert (tmp_path / name).stat().st_size > 0
    frequencies = [f"{f:.0f}" for f in fecap.SWEEP_FREQUENCIES]
    assert list(summary["coercive_voltage_v"]) == frequencies == list(summary["remanent_polarization"])
    coercive = [summary["coercive_voltage_v"][f]["positive"] for f in frequencies]
    assert all(c > 0 for c in coercive) and np.all(np.diff(coercive) > 0)  # NLS: faster sweeps, higher Vc
    assert all(summary["coercive_voltage_v"][f]["negative"] < 0 for f in frequencies)
    assert all(v < 0.01 for v in summary["vacask_vs_ngspice_nrmse"].values())
