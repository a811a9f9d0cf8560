"""Devices built from device cards: what a card holds replaces the default, what it does not hold stays default
and is listed; bad cards are refused naming the file and the field; a card made by a real calibration builds the
neuron whose circuit SPICE simulates; a surrogate fitted to another device than the run's card is refused."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cosim.calibrate.card import write_card
from cosim.cli import main
from cosim.devices.card import SCHEMA, CardError, card_sha256
from cosim.devices.fecap import FeCapParameters, lognormal_quantiles
from cosim.devices.felif import FeLIFCircuitParameters
from cosim.devices.plugins import PluginError, neuron_device, synapse_device
from cosim.devices.rram import RRAMParameters
from cosim.surrogates.artifact import default_path
from cosim.train.config import ConfigError, load_config
from cosim.train.models import device_neurons

DEVICES = Path(__file__).resolve().parents[2] / "../shared/data/devices"
KINETICS = DEVICES / "fecap-kinetics" / "P_pw_our_own.csv"

FECAP = {"e_a": (1.1e9, "V/m", True), "alpha": (1.6, "", True), "p_s": (0.2, "C/m^2", True),
         "tau0": (3e-13, "s", True), "sigma_ea": (0.3, "", True), "t_fe": (12e-9, "m", False),
         "eps_fe": (28.0, "", True)}
"""A partial FeCap card: (value, unit, fitted); area, t_int, eps_int, i0 and v_t are not in it."""
RRAM = {"rram.g0": (0.34e-9, "m", True), "rram.vel0": (75.0, "m/s", True), "rram.gamma0": (16.4, "", True),
        "rram.f_min": (0.87e9, "V/m", True), "rram.rth": (100.0, "K/W", True), "rram.beta": (0.2515, None, False),
        "rram.gap_max": (2.5e-9, None, False), "rram.gap_ini": (2.5e-9, None, False),
        "transistor.vto": (0.092, "V", True), "transistor.kp": (1.29e-5, "A/V^2", True)}
"""An RRAM card in the layout of `cosim calibrate rram` (held parameters without a unit), values of the 40 nm
cell's calibration (benchmarks/results/calibration.json)."""


def card_file(folder: Path, device: str, parameters: dict, **extra) -> Path:
    """A device card written by the calibration's own writer (`cosim.calibrate.card.write_card`)."""
    entries = {name: {"value": value, "fitted": fitted} | ({"unit": unit} if unit is not None else {})
               for name, (value, unit, fitted) in parameters.items()}
    return write_card(folder, {"device": device, "converged": True, "parameters": entries} | extra)


@pytest.fixture
def fecap_card(tmp_path: Path) -> Path:
    return card_file(tmp_path / "fecap", "fecap", FECAP, n_domains=8)


@pytest.fixture
def rram_card(tmp_path: Path) -> Path:
    return card_file(tmp_path / "rram", "rram", RRAM)


def test_the_felif_neuron_takes_its_fecap_from_the_card_and_keeps_the_rest(fecap_card: Path):
    device = neuron_device("felif", fecap_card)
    physics, default = device.parameters().physics, FeLIFCircuitParameters().physics
    for name, (value, _, _) in FECAP.items():
        if name != "sigma_ea":
            assert getattr(physics, name) == value, name
    for name in ("area", "t_int", "eps_int", "i0", "v_t", "c_par", "i_dsc", "v_thr", "v_reset", "v_min", "v_max"):
        assert getattr(physics, name) == getattr(default, name), name
    assert device.circuit.fecap.n_domains == 8 and device.circuit.fecap.sigma_ea == 0.3
    assert device.circuit.r_on == FeLIFCircuitParameters().r_on  # the periphery is the circuit's
    record = device.card.to_dict()
    assert record["sha256"] == card_sha256(fecap_card) and record["default"] == ["area", "t_int", "eps_int", "i0",
                                                                                  "v_t"]
    assert set(record["from_card"]) == set(FECAP) and "t_fe" not in record["fitted"]
    # the registered device is untouched
    assert neuron_device("felif").parameters() == FeLIFCircuitParameters()


def test_training_layer_and_circuits_are_the_card_s_device(fecap_card: Path):
    cfg = load_config("music", [f"model.device_card={json.dumps(str(fecap_card))}", "model.v_thr=2.2"])
    layer = device_neurons(cfg.model, 3)
    assert layer.params.e_a == 1.1e9 and layer.params.alpha == 1.6 and layer.params.v_thr == 2.2
    device = neuron_device("felif", fecap_card)
    single = dict(device.circuits(layer, 1e-3, {}, None).neuron_params(0))
    assert single["e_a"] == 1.1e9 and single["t_fe"] == 12e-9 and single["v_thr"] == 2.2 and single["ea_k1"] == 1.0
    bank = device.circuits(layer, 1e-3, {"n_domains": 8}, None)
    params = dict(bank.neuron_params(2))
    assert bank.subckt == "felif_nd8" and params["p_s"] == 0.2 and params["area"] == 25e-12
    assert [params[f"ea_k{i}"] for i in range(1, 9)] == list(lognormal_quantiles(8, 0.3))


def test_the_rram_synapse_takes_its_model_and_transistor_from_the_card(rram_card: Path):
    device = synapse_device("rram", rram_card)
    assert device.params.g0 == 0.34e-9 and device.params.gap_max == 2.5e-9 and device.params.v0 == RRAMParameters().v0
    assert device.write_verify.gate_set == 1.0 and device.write_verify.transistor.kp == 1.29e-5
    assert device.write_verify.transistor.w == 1e-6  # not in the card: the default
    assert "rram.i0" in device.card.defaults and "transistor.w" in device.card.defaults
    card = device.read_card("s0", "a", "b", 40e-6, 0.1)
    gap = float(card.split("gap=")[1].split()[0])
    assert math.isclose(1e-3 * math.exp(-gap / 0.34e-9) * math.sinh(0.1 / 0.25) / 0.1, 40e-6, rel_tol=1e-6)
    assert "g0=3.4e-10" in card or "g0=340p" in card or "g0=0.34n" in card


BAD = [
    ("wrong kind", lambda p: p | {"device": "rram"}, "field 'device' is 'rram'"),
    ("other version", lambda p: p | {"schema": "cosim-device-card/2"}, "field 'schema'"),
    ("missing parameters", lambda p: {k: v for k, v in p.items() if k != "parameters"}, "field 'parameters' missing"),
    ("not converged", lambda p: p | {"converged": False}, "field 'converged'"),
    ("NaN value", lambda p: p | {"parameters": p["parameters"] | {"e_a": {"value": float("nan"), "unit": "V/m"}}},
     "field 'parameters.e_a.value' must be a finite number"),
    ("infinite value", lambda p: p | {"parameters": p["parameters"] | {"tau0": {"value": float("inf")}}},
     "parameters.tau0.value"),
    ("no value", lambda p: p | {"parameters": p["parameters"] | {"p_s": {"unit": "C/m^2"}}}, "parameters.p_s"),
    ("unknown name", lambda p: p | {"parameters": p["parameters"] | {"e_A": {"value": 1e9}}},
     "parameters.e_A'.*did you mean 'e_a'"),
    ("wrong unit", lambda p: p | {"parameters": p["parameters"] | {"p_s": {"value": 20.0, "unit": "uC/cm^2"}}},
     "parameters.p_s.unit is 'uC/cm\\^2'"),
    ("unphysical", lambda p: p | {"parameters": p["parameters"] | {"tau0": {"value": -1e-9, "unit": "s"}}}, "tau0"),
    ("unshipped domain count", lambda p: p | {"n_domains": 5}, "field 'n_domains' is 5"),
]


@pytest.mark.parametrize("change", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_cards_name_the_file_and_the_field(fecap_card: Path, change):
    edit, message = change
    content = edit(json.loads(fecap_card.read_text()))
    bad = fecap_card.with_name("bad_card.json")
    bad.write_text(json.dumps(content))  # NaN and Infinity as Python's json writes them
    with pytest.raises(CardError, match=f"{bad}.*{message}"):
        neuron_device("felif", bad)
    with pytest.raises(ConfigError, match=f"model.device_card: device card {bad}"):
        load_config("music", [f"model.device_card={json.dumps(str(bad))}"])


def test_other_bad_card_uses(fecap_card: Path, rram_card: Path, tmp_path: Path):
    with pytest.raises(CardError, match=f"{rram_card}: field 'device' is 'rram', where a 'fecap' card is needed"):
        neuron_device("felif", rram_card)  # an RRAM card given as the neuron's device card
    with pytest.raises(ConfigError, match="model.synapse_card: .*field 'device' is 'fecap'"):
        load_config("music", [f"model.synapse_card={json.dumps(str(fecap_card))}"])
    with pytest.raises(CardError, match="no such file"):
        neuron_device("felif", tmp_path / "missing.json")
    (tmp_path / "text.json").write_text("not json")
    with pytest.raises(CardError, match="text.json: not JSON"):
        neuron_device("felif", tmp_path / "text.json")
    with pytest.raises(PluginError, match="'jart_vcm' is not built from device cards"):
        synapse_device("jart_vcm", rram_card)
    with pytest.raises(ConfigError, match="model.device_card is for a device neuron"):
        load_config("music", ["model.neuron=lif", f"model.device_card={json.dumps(str(fecap_card))}"])


def test_a_surrogate_fitted_to_another_device_is_refused(fecap_card: Path, tmp_path: Path):
    shipped = json.loads(default_path("felif").read_text())
    assert "device_card" not in shipped["data"]
    with pytest.raises(ConfigError, match="fitted to the default device .no device card., but this run has "
                                          "model.device_card"):
        load_config("music", ['model.surrogate_file="default"', f"model.device_card={json.dumps(str(fecap_card))}"])
    # a surrogate that records this card is accepted; one that records another card is refused, with or without
    # a card in the run
    fitted = tmp_path / "felif_card.json"
    record = {"path": str(fecap_card), "sha256": card_sha256(fecap_card)}
    fitted.write_text(json.dumps(shipped | {"data": shipped["data"] | {"device_card": record}}))
    load_config("music", [f"model.surrogate_file={json.dumps(str(fitted))}",
                          f"model.device_card={json.dumps(str(fecap_card))}"])
    other = card_file(tmp_path / "other", "fecap", FECAP | {"e_a": (1.2e9, "V/m", True)})
    with pytest.raises(ConfigError, match=f"was fitted to the device card {fecap_card}.*but this run has "
                                          f"model.device_card = '{other}'"):
        load_config("music", [f"model.surrogate_file={json.dumps(str(fitted))}",
                              f"model.device_card={json.dumps(str(other))}"])
    with pytest.raises(ConfigError, match="but this run has no model.device_card"):
        load_config("music", [f"model.surrogate_file={json.dumps(str(fitted))}"])


@pytest.mark.skipif(not KINETICS.is_file(), reason=f"shared device data not present at {KINETICS}")
def test_a_card_from_a_real_calibration_builds_the_neuron_spice_simulates(tmp_path: Path):
    out = tmp_path / "kinetics"
    assert main(["calibrate", "fecap", "--kinetics", str(KINETICS), "--t-fe", "10e-9", "--no-spice",
                 "--out", str(out)]) == 0
    card = json.loads((out / "device_card.json").read_text())
    assert card["schema"] == SCHEMA
    device = neuron_device("felif", out / "device_card.json")
    fecap = device.parameters().fecap
    assert fecap.n_domains == card["n_domains"] and fecap.sigma_ea == card["parameters"]["sigma_ea"]["value"]
    netlist = dict(device.parameters().subcircuit_parameters())
    for name in ("e_a", "alpha", "tau0", "p_s", "t_int", "eps_fe", "t_fe", "area", "i0", "v_t"):
        assert netlist[name] == card["parameters"][name]["value"], name
    assert device.card.defaults == () and isinstance(fecap, FeCapParameters)
    summary = main(["characterize", "fecap", "--quick", "--device-card", str(out / "device_card.json"),
                    "--out", str(tmp_path / "char")])
    assert summary == 0
    written = json.loads((tmp_path / "char" / "summary.json").read_text())
    assert written["device"]["parameters"]["tau0"] == card["parameters"]["tau0"]["value"]
    assert written["device"]["device_card"]["sha256"] == card_sha256(out / "device_card.json")
