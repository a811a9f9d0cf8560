import dataclasses

from cosim.felif.physics import FeLIFParameters
from cosim.surrogates.felif import load_felif
from cosim.train.config import load_config
from cosim.verify.export import HardwareConfig
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
