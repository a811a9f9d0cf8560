"""A tiny music network trained and verified in SPICE on calibrated devices (a FeCap card for the FeLIF neurons,
an RRAM card for the synapses): the circuits are the cards' devices and the run records which cards it used."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cosim.calibrate.card import write_card
from cosim.devices.card import card_sha256
from cosim.devices.plugins import synapse_device
from cosim.devices.rram import LevelMapping
from cosim.train.config import load_config
from cosim.train.loop import train
from cosim.verify.export import HardwareConfig, device_layer, program
from cosim.verify.runner import load_run, verify_run

FECAP = {"e_a": (1.1e9, "V/m"), "alpha": (1.6, ""), "p_s": (0.2, "C/m^2"), "tau0": (3e-13, "s"),
         "sigma_ea": (0.3, ""), "t_fe": (12e-9, "m"), "eps_fe": (28.0, "")}
"""A FeCap unlike the default one (E_a 1.27e9 V/m, alpha 1.3, P_s 0.22 C/m^2, tau0 1e-13 s, t_fe 10 nm, eps 25.2)."""
RRAM = {"rram.g0": (0.34e-9, "m"), "rram.vel0": (75.0, "m/s"), "rram.gamma0": (16.4, ""), "rram.f_min": (0.87e9, "V/m"),
        "rram.rth": (100.0, "K/W"), "rram.beta": (0.2515, ""), "rram.gap_max": (2.5e-9, "m"),
        "rram.gap_ini": (2.5e-9, "m"), "transistor.vto": (0.092, "V"), "transistor.kp": (1.29e-5, "A/V^2")}
"""The 40 nm 1T1R cell's calibration (benchmarks/results/calibration.json)."""


def card(folder: Path, device: str, parameters: dict) -> Path:
    entries = {name: {"value": value, "unit": unit, "fitted": True} for name, (value, unit) in parameters.items()}
    return write_card(folder, {"device": device, "converged": True, "n_domains": 8, "parameters": entries})


@pytest.fixture(scope="module")
def card_run(write_jsb, tmp_path_factory) -> tuple[Path, Path, Path]:
    jsb = write_jsb(3, train=(14, 12, 16), valid=(12,), test=(14, 12), low=55, high=80)
    folder = tmp_path_factory.mktemp("cards")
    fecap, rram = card(folder / "fecap", "fecap", FECAP), card(folder / "rram", "rram", RRAM)
    out = folder / "music"
    cfg = load_config("music", ["data.dataset=jsb", f"data.path={json.dumps(str(jsb))}", "model.hidden=4",
                                "model.bits=3", "model.current_scale=1e-8", "run.epochs=1", "run.threads=1",
                                f"run.out={json.dumps(str(out))}", "verify.samples=2", "verify.max_steps=12",
                                f"model.device_card={json.dumps(str(fecap))}",
                                f"model.synapse_card={json.dumps(str(rram))}"])
    train(cfg, progress=False)
    return out, fecap, rram


def test_training_runs_on_the_card_s_neuron_and_records_the_cards(card_run):
    out, fecap, rram = card_run
    record = json.loads((out / "run.json").read_text())["device_cards"]
    assert record["neuron"]["sha256"] == card_sha256(fecap) and record["synapse"]["sha256"] == card_sha256(rram)
    assert "area" in record["neuron"]["default"] and "e_a" in record["neuron"]["from_card"]
    _, model, _, _ = load_run(out)
    params = model.neurons.params
    assert params.e_a == 1.1e9 and params.alpha == 1.6 and params.t_fe == 12e-9 and params.v_thr == 2.0


def test_spice_verification_simulates_the_cards_devices(card_run):
    out, fecap, rram = card_run
    _, model, _, _ = load_run(out)
    chip = program(device_layer(model), HardwareConfig(programming="ideal", neuron_options={"n_domains": 8}))
    neuron = dict(chip.neurons.neuron_params(0))
    assert chip.neurons.subckt == "felif_nd8" and neuron["e_a"] == 1.1e9 and neuron["tau0"] == 3e-13

    summary = verify_run(out, hw=HardwareConfig(levels_devices=2), n_jobs=2, progress=False)
    assert summary["device_cards"]["neuron"]["sha256"] == card_sha256(fecap)
    assert summary["device_cards"]["synapse"]["sha256"] == card_sha256(rram)
    # the synapses were drawn from the card's RRAM programmed in its 1T1R cell (cached under the card's hash)
    levels = json.loads((out / "verify" / "levels" / f"levels-rram-card{card_sha256(rram)[:12]}-n2-seed0.json")
                        .read_text())
    default = synapse_device("rram").program(LevelMapping(), 2, 0, False).summary()
    assert levels["converged_fraction"] == 1.0 and levels["pulses_mean"] != default["pulses_mean"]
    assert summary["spikes_spice"] > 10, "the tiny network must spike for the comparison to mean anything"
    # single-domain circuits of the card's physics against the training model on the same physics
    assert summary["spike_count_agreement"] > 0.9 and summary["prediction_agreement"] > 0.9


def test_a_card_changed_since_training_is_refused(card_run):
    out, fecap, _ = card_run
    original = fecap.read_text()
    try:
        fecap.write_text(original.replace('"value": 1.6', '"value": 1.7'))
        with pytest.raises(ValueError, match=f"model.device_card = {fecap} has changed since the run was trained"):
            verify_run(out, hw=HardwareConfig(programming="ideal"), progress=False)
    finally:
        fecap.write_text(original)
