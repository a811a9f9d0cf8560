"""Simulator-neutral elements: validation, naming and the VACASK netlist around them (what the simulators
themselves make of the elements is in test_cross_simulator.py)."""
from __future__ import annotations

import numpy as np
import pytest

from cosim.spice import Circuit, Op, SimJob
from cosim.spice.elements import (
    Capacitor,
    Model,
    Pulse,
    Pwl,
    Resistor,
    Sine,
    VerilogAInstance,
    VoltageSource,
    number,
)
from cosim.spice.vacask import render_netlist


@pytest.mark.parametrize("make", [
    lambda: Pulse(0.0, 1.0, rise=0.0),
    lambda: Pulse(0.0, 1.0, period=1e-3),  # periodic without a width
    lambda: Pulse(0.0, 1.0, width=1e-3, period=0.5e-3),  # period shorter than the pulse
    lambda: Sine(0.0, 1.0, frequency=0.0),
    lambda: Pwl(((1e-3, 0.0), (1e-3, 1.0))),
    lambda: Resistor("R 1", "a", "0", 1e3),
    lambda: Capacitor("C1", "out(1)", "0", 1e-9),
])
def test_meaningless_elements_are_rejected(make):
    with pytest.raises(ValueError):
        make()


def test_numbers_render_without_loss():
    for value in (1e-15, 1 / 3, 2.5e9, np.float32(0.1), np.float64(-7.25)):
        assert float(number(value)) == float(value)
    assert number(3) == "3" and number(np.int64(4)) == "4"
    with pytest.raises(TypeError):
        number(True)
    with pytest.raises(TypeError):
        number("1k")


def test_names_are_the_same_on_both_simulators():
    resistor = Resistor("load", "a", "0", 50.0)
    assert resistor.ngspice().split()[0] == "Rload"
    assert resistor.vacask().split()[0] == "Rload"
    assert Resistor("r2", "a", "0", 50.0).ref == "r2"  # already has its letter (any case)
    instance = VerilogAInstance("cell", ("a", "b"), "felif", (("vth", 2.5),))
    assert instance.ngspice().splitlines() == [".model Ncell_model felif(vth=2.5)", "Ncell a b Ncell_model"]
    assert instance.vacask().splitlines() == ["model Ncell_model felif vth=2.5", "Ncell (a b) Ncell_model"]


def test_vacask_netlist_declares_each_model_once():
    circuit = Circuit(netlist="", title="two\nlines", elements=(
        VoltageSource("V1", "a", "0", dc=1.0, waveform=Pulse(0.0, 1.0)),
        Resistor("R1", "a", "b", 1e3), Resistor("R2", "b", "0", 1e3),
        Model("dm", "d", (("is", 1e-14),)), Model("dm2", "D"),
    ))
    lines = render_netlist(SimJob(circuit, Op(), simulator="vacask")).splitlines()
    assert lines[0] == "two lines"
    assert lines.count('load "resistor.osdi"') == 1 and lines.count("model cosim_resistor resistor") == 1
    assert lines.count('load "spice/diode.osdi"') == 1
    assert "model dm sp_diode is=1e-14" in lines and "model dm2 sp_diode" in lines
    assert '  alter instance("V1") type="dc"' in lines  # the op uses the dc value, as ngspice does
