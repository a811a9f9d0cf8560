"""One element-built circuit, two simulators: ngspice and VACASK must agree (transient within 0.1 % NRMSE)."""
from __future__ import annotations

import numpy as np
import pytest

from cosim.spice import Ac, Circuit, DcSweep, Op, SimJob, Tran, run
from cosim.spice.elements import (
    Capacitor,
    Diode,
    Inductor,
    Model,
    Pulse,
    Pwl,
    Resistor,
    Sine,
    VoltageSource,
)

R, C = 1e3, 1e-6  # RC low-pass, corner 159 Hz, tau 1 ms

RC = Circuit(netlist="", title="RC low-pass", elements=(
    VoltageSource("V1", "in", "0", dc=0.5, ac=1.0,
                  waveform=Pulse(0.0, 1.0, delay=0.1e-3, rise=1e-6, fall=1e-6, width=1e-3, period=2.5e-3)),
    Resistor("R1", "in", "out", R),
    Capacitor("C1", "out", "0", C),
))

SOURCES = Circuit(netlist="", title="every waveform and element kind", elements=(
    VoltageSource("V2", "s", "0", waveform=Sine(0.1, 1.0, 1e3, delay=0.25e-3, damping=100.0, phase=30.0)),
    Resistor("R2", "s", "s2", 1e3),
    Capacitor("C2", "s2", "0", 1e-7),
    VoltageSource("V3", "w", "0", waveform=Pwl(((0.5e-3, 0.0), (1e-3, 1.0), (2e-3, -0.5)))),
    Resistor("R3", "w", "w2", 1e3),
    Inductor("L3", "w2", "0", 1.0),
    Model("dmod", "d", (("is", 1e-14), ("n", 1.05), ("rs", 10.0))),
    VoltageSource("V4", "d", "0", waveform=Pulse(-1.0, 1.0, rise=1e-3, fall=1e-3, width=1e-3)),
    Diode("D1", "d", "dk", "dmod", area=2.0),
    Resistor("R4", "dk", "0", 1e3),
))


def both(circuit: Circuit, analysis) -> tuple:
    """(ngspice result, VACASK result) of the same job."""
    return tuple(run(SimJob(circuit, analysis, simulator=simulator)) for simulator in ("ngspice", "vacask"))


def nrmse(reference: np.ndarray, other: np.ndarray) -> float:
    """Root-mean-square difference over the reference's peak-to-peak range."""
    return float(np.sqrt(np.mean((other - reference) ** 2)) / np.ptp(reference))


def on_grid(result, vector: str, grid: np.ndarray) -> np.ndarray:
    """`vector` linearly interpolated onto `grid` (each simulator picks its own time points)."""
    return np.interp(grid, result.x, result[vector])


@pytest.mark.parametrize("circuit, vectors", [
    (RC, ("v(in)", "v(out)", "i(v1)")),
    (SOURCES, ("v(s)", "v(s2)", "i(v2)", "v(w)", "v(w2)", "i(l3)", "v(d)", "v(dk)", "i(v4)")),
], ids=["rc", "sources"])
def test_transients_agree(circuit, vectors):
    ngspice, vacask = both(circuit, Tran(step=1e-5, stop=5e-3, max_step=1e-5))
    grid = np.linspace(0.0, 5e-3, 2001)
    for vector in vectors:
        error = nrmse(on_grid(ngspice, vector, grid), on_grid(vacask, vector, grid))
        assert error < 1e-3, f"{vector}: NRMSE {error:.2e}"


def test_rc_transient_matches_analytic_on_both():
    # First rising edge: v(out) = 1 - exp(-(t - t0)/RC) after the 1 us ramp (t0 at its middle), until the fall.
    for result in both(RC, Tran(step=1e-5, stop=1e-3, max_step=1e-5)):
        t = result.x[result.x > 0.2e-3]
        expected = 1 - np.exp(-(t - 0.1e-3 - 0.5e-6) / (R * C))
        np.testing.assert_allclose(result["v(out)"][result.x > 0.2e-3], expected, atol=2e-3)


def test_ac_agrees_and_has_the_rc_corner():
    ngspice, vacask = both(RC, Ac(points_per_decade=10, start=1.0, stop=1e5))
    np.testing.assert_allclose(vacask.x, ngspice.x, rtol=1e-9)
    expected = 1 / (1 + 2j * np.pi * ngspice.x * R * C)
    for result in (ngspice, vacask):
        assert result["v(out)"].dtype == np.complex128 and result.x.dtype == np.float64
        np.testing.assert_allclose(result["v(out)"], expected, rtol=1e-6)
    corner = 1 / (2 * np.pi * R * C)
    assert abs(np.interp(corner, vacask.x, np.abs(vacask["v(out)"])) - 2 ** -0.5) < 5e-3


def test_operating_point_and_diode_sweep_agree():
    ngspice, vacask = both(RC, Op())
    for vector in ("v(in)", "v(out)", "i(v1)"):
        assert vacask[vector].shape == ngspice[vector].shape == ()
        assert float(vacask[vector]) == pytest.approx(float(ngspice[vector]), abs=1e-12)
    assert float(vacask["v(out)"]) == pytest.approx(0.5)  # the source's dc value, not its pulse at t = 0

    ngspice, vacask = both(SOURCES, DcSweep(source="V4", start=-1.0, stop=1.0, step=0.05))
    assert vacask.axis == ngspice.axis == "v4"
    np.testing.assert_allclose(vacask.x, ngspice.x, atol=1e-12)
    assert float(ngspice["v(dk)"][-1]) > 0.2  # the diode conducts at the end of the sweep
    # Newton iterations stop within reltol = 1e-3 on both simulators, which bounds the agreement at the knee.
    np.testing.assert_allclose(vacask["v(dk)"], ngspice["v(dk)"], rtol=2e-3, atol=1e-9)
    np.testing.assert_allclose(vacask["i(v4)"], ngspice["i(v4)"], rtol=2e-3, atol=1e-12)
