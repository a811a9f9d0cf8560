import dataclasses
import math

import numpy as np
import torch

from cosim.felif.physics import FeLIFParameters
from cosim.felif.variability import VARIED_FIELDS
from cosim.surrogates.felif import load_felif
from cosim.train.config import load_config
from cosim.train.models import device_neurons
from cosim.verify.export import DeviceLayer, HardwareConfig
from cosim.verify.runner import run_hardware


def test_surrogate_trained_network_is_verified_on_the_device_the_surrogate_was_fitted_to():
    cfg = load_config("music", ['model.surrogate_file="default"'])
    surrogate = load_felif()

    hw = run_hardware(cfg, HardwareConfig())

    assert hw.neuron_circuit == surrogate.circuit()
    neuron = hw.neuron(surrogate.params, dt=2e-3)
    assert neuron.fecap.n_domains == surrogate.artifact.data["circuit"]["n_domains"] == 8
    # the comparator is the circuit's, not the surrogate's effective threshold
    assert neuron.fecap.physics.v_thr == 2.5 != surrogate.params.v_thr
    assert neuron.t_clk == 2e-3


def test_analytic_training_builds_neurons_from_the_layer_and_explicit_circuits_are_kept():
    analytic = load_config("music")
    assert run_hardware(analytic, HardwareConfig()).neuron_circuit is None
    params = FeLIFParameters(v_thr=2.0)
    assert HardwareConfig().neuron(params, 1e-3).fecap.physics.v_thr == 2.0

    mine = dataclasses.replace(load_felif().circuit(), r_on=2e3)
    surrogate_cfg = load_config("music", ['model.surrogate_file="default"'])
    assert run_hardware(surrogate_cfg, HardwareConfig(neuron_circuit=mine)).neuron_circuit == mine


def test_each_neuron_of_a_surrogate_trained_network_gets_its_own_device_variation():
    """Device-to-device variability trained on the surrogate's parameters is carried onto the fitted circuit: each
    varied physical parameter is scaled by the neuron's factor, the rest of the circuit is the fitted device."""
    cfg = load_config("music", ['model.surrogate_file="default"', "model.variability_sigma=0.1"])
    surrogate = load_felif()
    hw = run_hardware(cfg, HardwareConfig())
    assert hw.neuron_circuit_nominal == surrogate.params

    torch.manual_seed(0)
    layer = device_neurons(cfg.model, 3)
    circuits = [hw.neuron(p, 1e-3) for p in DeviceLayer(
        "hidden", np.zeros((2, 3), dtype=np.int64), np.arange(-3.0, 4.0), 1.0, 3, layer.current_scale,
        layer.params, layer.cfg).neuron_parameters()]
    fitted = surrogate.circuit().fecap.physics
    for j, circuit in enumerate(circuits):
        physics = circuit.fecap.physics
        for name in VARIED_FIELDS:
            factor = float(getattr(layer.params, name)[j]) / getattr(surrogate.params, name)
            assert abs(factor - 1.0) > 1e-4, "every neuron must be varied"
            assert math.isclose(getattr(physics, name), getattr(fitted, name) * factor, rel_tol=1e-6)
        assert physics.replace(**{n: getattr(fitted, n) for n in VARIED_FIELDS}) == fitted
        assert circuit.fecap.n_domains == 8 and circuit.r_on == surrogate.circuit().r_on
    assert len({c.fecap.physics.area for c in circuits}) == 3
    assert hw.neuron(surrogate.params, 1e-3) == dataclasses.replace(surrogate.circuit(), t_clk=1e-3)
