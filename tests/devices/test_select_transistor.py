"""The 1T1R select transistor: the same level-1 NMOS on ngspice and VACASK (forward and backward, as in a RESET),
its square law, and cosim's own RRAM (gap model) SET through it at three gate voltages. Real simulators."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from cosim.devices import rram
from cosim.devices.select_transistor import Nmos, SelectTransistor, set_and_read_job, transistor_files
from cosim.spice import Circuit, DcSweep, SimJob, run_many
from cosim.spice.elements import VoltageSource


def test_the_nmos_is_the_same_square_law_on_both_simulators():
    """Source at 1 V, drain swept 0 .. 2 V: below 1 V the transistor conducts backwards (a RESET through the
    source line), above it forwards (a SET)."""
    transistor = SelectTransistor()
    v_source, gates = 1.0, (0.8, 1.2)
    jobs = []
    for simulator in ("ngspice", "vacask"):
        for gate in gates:
            elements = (VoltageSource("Vd", "d", "0"), VoltageSource("Vg", "g", "0", dc=v_source + gate),
                        VoltageSource("Vs", "s", "0", dc=v_source), Nmos("sel", "d", "g", "s", "0", transistor))
            circuit = Circuit(netlist="", elements=elements, **transistor_files(simulator))
            jobs.append(SimJob(circuit, DcSweep(source="Vd", start=0.0, stop=2.0, step=0.05), outputs=("i(vd)",),
                               simulator=simulator))
    results = run_many(jobs, progress=False, raise_errors=True)
    for ngspice, vacask in zip(results[:2], results[2:]):
        # ngspice's junction diodes (reverse biased) add gmin = 1e-12 S: up to 2e-12 A here
        assert np.allclose(ngspice["i(vd)"], vacask["i(vd)"], rtol=1e-9, atol=3e-12)
    beta = transistor.beta
    for gate, result in zip(gates, results[2:]):
        v_ds, current = result.x - v_source, -result["i(vd)"]
        saturated = v_ds > gate - transistor.vto
        expected = transistor.saturation_current(gate) * (1 + transistor.lam * v_ds[saturated])
        assert np.allclose(current[saturated], expected, rtol=1e-9)
        backwards = v_ds < 0  # the drain is the source: overdrive gate - v_ds - vto, always linear here
        v_sd, overdrive = -v_ds[backwards], gate - v_ds[backwards] - transistor.vto
        expected = -beta * v_sd * (overdrive - v_sd / 2) * (1 + transistor.lam * v_sd)
        assert np.allclose(current[backwards], expected, rtol=1e-9)
    assert transistor.gate_voltage(transistor.saturation_current(1.1)) == pytest.approx(1.1)


@pytest.mark.parametrize("changes, message", [({"kp": 0.0}, "kp"), ({"vto": -0.3}, "vto"), ({"lam": -0.1}, "lam"),
                                              ({"w": float("inf")}, "w")])
def test_bad_transistors_are_rejected(changes, message):
    with pytest.raises(ValueError, match=message):
        Nmos("sel", "d", "g", "s", params=SelectTransistor(**changes)).ngspice()


def test_cosims_rram_sets_to_the_conductance_the_gate_allows():
    """The gap model from its high-resistance state, SET at 2 V through the transistor at 1.0, 1.2 and 1.5 V on the
    gate: the SET current saturates at the transistor's saturation current, and the conductance after the SET grows
    with it across the 3-bit level range (10 .. 80 uS); both simulators agree."""
    params, transistor = rram.RRAMParameters(), SelectTransistor()
    files = {"ngspice": {"includes": (str(rram.NETLIST_LIB),)}, "vacask": {"verilog_a": (str(rram.MODEL_VA),)}}
    gates = (1.0, 1.2, 1.5)
    jobs = []
    for simulator in ("vacask", "ngspice"):
        cell = partial(rram.rram_element, params=params, simulator=simulator)
        jobs += [set_and_read_job(cell, files[simulator], simulator, gate, v_read=0.1,
                                  outputs=(rram.gap_vector(cell("dut", "bl", "cell")),)) for gate in gates]
    results = run_many(jobs, progress=False, raise_errors=True)
    gaps = np.array([result[job.outputs[-1]][-1] * 1e-9 for job, result in zip(jobs, results)]).reshape(2, 3)
    assert np.allclose(gaps[0], gaps[1], rtol=1e-3)
    conductance = rram.chord_conductance(gaps[0], 0.1, params)
    assert np.all(np.diff(conductance) > 0) and conductance[0] > 8e-6 and conductance[-1] < 120e-6
    for gate, result in zip(gates, results[:3]):
        assert 1.0 < (-result["i(vbl)"]).max() / transistor.saturation_current(gate) < 1.15
