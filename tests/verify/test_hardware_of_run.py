import math

import torch

from cosim.devices.felif import FeLIFCircuitParameters
from cosim.devices.plugins import neuron_device
from cosim.felif.variability import VARIED_FIELDS
from cosim.surrogates.felif import load_felif
from cosim.train.config import load_config
from cosim.train.models import device_neurons, fitted_surrogate


def _circuits(cfg, n: int, dt: float = 1e-3, options=None):
    torch.manual_seed(0)
    layer = device_neurons(cfg.model, n)
    bank = neuron_device("felif").circuits(layer, dt, options or {}, fitted_surrogate(cfg.model))
    return layer, bank


def _parameters(bank, j: int) -> dict[str, float]:
    return dict(bank.neuron_params(j))


def test_surrogate_trained_network_is_verified_on_the_device_the_surrogate_was_fitted_to():
    cfg = load_config("music", ['model.surrogate_file="default"'])
    surrogate = load_felif()
    _, bank = _circuits(cfg, 2, dt=2e-3)
    fitted = surrogate.circuit().replace(t_clk=2e-3)
    assert bank.subckt == fitted.subcircuit == "felif_nd8"
    assert _parameters(bank, 0) == dict(fitted.subcircuit_parameters())
    # the comparator is the circuit's, not the surrogate's effective threshold
    assert _parameters(bank, 0)["v_thr"] == 2.5 != surrogate.params.v_thr


def test_analytic_training_builds_neurons_from_the_layer():
    cfg = load_config("music", ["model.v_thr=2.2"])
    _, bank = _circuits(cfg, 2)
    assert bank.subckt == "felif_nd1" and _parameters(bank, 1)["v_thr"] == 2.2
    _, bank8 = _circuits(cfg, 2, options={"n_domains": 8})
    assert bank8.subckt == "felif_nd8"


def test_each_neuron_of_a_surrogate_trained_network_gets_its_own_device_variation():
    """Device-to-device variability trained on the surrogate's parameters is carried onto the fitted circuit: each
    varied physical parameter is scaled by the neuron's factor, the rest of the circuit is the fitted device."""
    cfg = load_config("music", ['model.surrogate_file="default"', "model.variability_sigma=0.1"])
    surrogate = load_felif()
    layer, bank = _circuits(cfg, 3)
    fitted = dict(surrogate.circuit().replace(t_clk=1e-3).subcircuit_parameters())
    names = {name for name in VARIED_FIELDS if name in fitted}
    assert names, "the varied fields are circuit parameters"
    for j in range(3):
        params = _parameters(bank, j)
        for name in names:
            factor = float(getattr(layer.params, name)[j]) / getattr(surrogate.params, name)
            assert abs(factor - 1.0) > 1e-4, "every neuron must be varied"
            assert math.isclose(params[name], fitted[name] * factor, rel_tol=1e-6)
        assert {k: v for k, v in params.items() if k not in names} == {k: v for k, v in fitted.items()
                                                                         if k not in names}
    assert len({_parameters(bank, j)["area"] for j in range(3)}) == 3
    assert isinstance(FeLIFCircuitParameters(), FeLIFCircuitParameters)


def test_verification_simulates_the_training_models_devices():
    """With the analytic physics and device-to-device variability, neuron j's circuit carries exactly the varied
    parameters of neuron j of the network instance that was trained: fails if verification draws devices of its
    own (`cosim.devices.fecap.sample_devices` with the same seed draws other ones)."""
    cfg = load_config("music", ["model.variability_sigma=0.1"])
    layer, bank = _circuits(cfg, 4)
    for j in range(4):
        params = _parameters(bank, j)
        for name in VARIED_FIELDS:
            assert math.isclose(params[name], float(getattr(layer.params, name)[j]), rel_tol=1e-6), (j, name)
    assert len({_parameters(bank, j)["area"] for j in range(4)}) == 4
