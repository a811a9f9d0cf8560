"""Device plug-ins defined outside cosim: the toy neuron and synapse of tests/plugins/toy_devices.py, loaded
through COSIM_PLUGINS, go through `cosim characterize`, `cosim fit`, a two-epoch training verified in SPICE every
epoch and `cosim verify`; a plug-in missing a method and an unknown device name are clear errors."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import cosim.devices.characterize as characterization
import cosim.devices.plugins as plugins
import cosim.surrogates as surrogates
import cosim.surrogates.artifact as artifact
from cosim.cli import main
from cosim.devices.plugins import PluginError, register_neuron
from cosim.spice import run_many
from cosim.train.config import ConfigError, ModelConfig, load_config
from cosim.train.models import build_model
from cosim.verify.compare import spice_traces
from cosim.verify.export import HardwareConfig, device_layer, program, sample_jobs
from cosim.verify.runner import load_run, select_samples

TOY = Path(__file__).with_name("toy_devices.py")
TOY_LIB = str(TOY.with_suffix(".lib"))
HIDDEN = 4
"""toylif neurons of the tiny music network."""


def _isolated_registries(mp: pytest.MonkeyPatch) -> None:
    """Plug-ins loaded from here on are forgotten when `mp` undoes its changes."""
    mp.setattr(plugins, "_loaded", set())
    for module, name in ((plugins, "NEURONS"), (plugins, "SYNAPSES"), (characterization, "CHARACTERIZERS"),
                         (surrogates, "FITTERS"), (surrogates, "LOADERS"), (artifact, "VALIDATORS")):
        mp.setattr(module, name, dict(getattr(module, name)))


@pytest.fixture(scope="module")
def toy():
    """COSIM_PLUGINS names the toy module (registries restored afterwards); yields the module as loaded."""
    with pytest.MonkeyPatch.context() as mp:
        _isolated_registries(mp)
        mp.setenv(plugins.PLUGINS_ENV, str(TOY))
        plugins.load_plugins()
        yield sys.modules[f"cosim_plugin_{TOY.stem}"]


@pytest.fixture(scope="module")
def fit_file(toy, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fit") / "toylif.json"
    assert main(["fit", "toylif", "--out", str(path), "--quick"]) == 0
    return path


@pytest.fixture(scope="module")
def toy_run(toy, fit_file: Path, write_jsb, tmp_path_factory) -> Path:
    """Two epochs of the music predictor on toylif neurons and toyres synapses (the fitted r and c), verified in
    SPICE after each epoch, through `cosim train`."""
    jsb = write_jsb(3, train=(14, 12, 16), valid=(12,), test=(14, 12), low=55, high=80)
    out = tmp_path_factory.mktemp("runs") / "toy"
    settings = ["data.dataset=jsb", f"data.path={json.dumps(str(jsb))}", "model.neuron=toylif", "model.synapse=toyres",
                f"model.surrogate_file={json.dumps(str(fit_file))}", f"model.hidden={HIDDEN}", "model.bits=3",
                "model.current_scale=1e-8", "run.epochs=2", "run.threads=1", "verify.every=1", "verify.samples=2",
                "verify.tolerance=0.9"]
    assert main(["train", "--config", "music", "--out", str(out), *[a for s in settings for a in ("--set", s)]]) == 0
    return out


def test_characterize_accepts_the_plug_ins(toy, tmp_path: Path):
    assert main(["characterize", "toylif", "--quick", "--out", str(tmp_path / "toylif")]) == 0
    neuron = json.loads((tmp_path / "toylif" / "summary.json").read_text())
    # the circuit's first spikes follow the RC formula and its spike steps are the training model's
    assert neuron["first_spike_error_max_s"] < 2e-6 and neuron["spike_steps_agree"]
    assert neuron["spike_steps"]["20"] == [1, 4, 7] and neuron["spike_steps"]["40"] == [0, 2, 4, 6, 8]
    assert (tmp_path / "toylif" / "toylif.png").stat().st_size > 10_000

    assert main(["characterize", "toyres", "--quick", "--out", str(tmp_path / "toyres")]) == 0
    synapse = json.loads((tmp_path / "toyres" / "summary.json").read_text())
    assert synapse["switching_state_error_max"] < 0.01  # the simulated switching law is its closed form
    assert synapse["converged_fraction"] >= 0.9 and max(synapse["adjacent_overlap"]) == 0
    assert np.allclose(synapse["mean_s"], np.arange(15e-6, 90e-6, 10e-6), rtol=0, atol=1.5e-6)
    assert (tmp_path / "toyres" / "levels.json").is_file() and (tmp_path / "toyres" / "toyres.png").is_file()


def test_fit_accepts_the_plug_in(toy, fit_file: Path):
    fitted = toy.load_toylif(fit_file)
    true = toy.ToyLIFParameters()
    # from a start off by 2x, r and c of the circuit, and the first spike at twice the rheobase to 0.1 %
    assert fitted.value("r") == pytest.approx(true.r, rel=1e-3) and fitted.value("c") == pytest.approx(true.c, rel=1e-3)
    assert max(v["rel_error"] for v in fitted.validation["first_spike"].values()) < 1e-3
    assert set(fitted.provenance.files) == {"tests/plugins/toy_devices.lib"}


def test_two_epoch_training_and_verification_run_on_the_toy_circuits(toy, toy_run: Path, capsys):
    history = [json.loads(line) for line in (toy_run / "verify_history.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in history] == [1, 2] and all("error" not in row for row in history)
    assert all((row["neuron_device"], row["synapse_device"]) == ("toylif", "toyres") for row in history)
    assert (toy_run / "verify" / "levels" / "levels-toyres-n32-seed0.json").is_file()  # toyres write-verify ran

    assert main(["verify", str(toy_run), "--samples", "2"]) == 0
    assert "verify.json" in capsys.readouterr().out
    summary = json.loads((toy_run / "verify.json").read_text())
    assert (summary["neuron_device"], summary["synapse_device"], summary["epoch"]) == ("toylif", "toyres", 2)
    assert summary["fitted_surrogate"] and summary["samples"] == 2
    assert summary["spikes_spice"] >= 10, "the tiny network must spike for the comparison to mean anything"
    # devices drawn from toyres's programmed population: the spread moves a spike time by tens of us
    assert summary["prediction_agreement"] >= 0.9 and summary["spike_count_agreement"] >= 0.9

    # what was simulated: the crossbar into toylif subcircuits from the toy library
    _, model, task, _ = load_run(toy_run)
    chip = program(device_layer(model), HardwareConfig(programming="ideal"))
    job, _ = sample_jobs(chip, select_samples(task, "test", 1)[0][1].inputs[0].numpy(), "toy")[0]
    assert "Xn0 in0 spk0 toylif " in job.circuit.netlist and TOY_LIB in job.circuit.includes

    # every device on its target: the exact RC model and the circuit agree to the solver's resolution
    assert main(["verify", str(toy_run), "--samples", "2", "--programming", "ideal"]) == 0
    ideal = json.loads((toy_run / "verify.json").read_text())
    assert ideal["prediction_agreement"] == 1.0 and ideal["spike_count_agreement"] == 1.0
    assert ideal["spike_time_error_s"] < 5e-6


def test_the_device_read_law_reads_toyres_through_its_read_card(toy, toy_run: Path):
    _, model, task, _ = load_run(toy_run)
    layer = device_layer(model)
    spikes = select_samples(task, "test", 1, max_steps=8)[0][1].inputs[0].numpy()
    jobs = {read: sample_jobs(program(layer, HardwareConfig(programming="ideal", read_model=read)), spikes, read)[0]
            for read in ("linear", "sinh")}
    job, columns = jobs["sinh"]
    assert "toyres_read g=" in job.circuit.netlist and "rram_read" not in job.circuit.netlist
    assert TOY_LIB in job.circuit.includes
    chip = program(layer, HardwareConfig(programming="ideal"))
    grid = (np.arange(8 * 20) + 1) * layer.dt / 20
    results = run_many([j for j, _ in jobs.values()], progress=False, raise_errors=True)
    linear, device = (spice_traces(r, chip.neurons.select(columns), len(columns), grid, layer.dt) for r in results)
    assert sum(len(t.spikes) for t in linear) > 0
    for a, b in zip(linear, device):  # a resistor of the programmed conductance: the same circuit
        assert len(a.spikes) == len(b.spikes) and np.allclose(a.spikes, b.spikes, rtol=0, atol=1e-6)


def test_toylif_variability_is_saved_with_the_model_and_reaches_the_circuits(toy):
    cfg = ModelConfig(network="music", neuron="toylif", synapse="toyres", hidden=5, bits=3, variability_sigma=0.1)
    torch.manual_seed(0)
    model = build_model(cfg, 54, 54)
    torch.manual_seed(1)
    other = build_model(cfg, 54, 54)
    assert not torch.equal(model.neurons.r, other.neurons.r)
    other.load_state_dict(model.state_dict())  # what `cosim verify` does with a checkpoint
    bank = plugins.neuron_device("toylif").circuits(other.neurons, 1e-3, {}, None)
    r = [dict(params)["r"] for params in bank.params]
    assert np.allclose(r, model.neurons.r.numpy(), rtol=1e-12) and np.std(r) > 0.02 * np.mean(r)
    with pytest.raises(ValueError, match="cycle-to-cycle"):
        build_model(ModelConfig(network="music", neuron="toylif", cycle_to_cycle_sigma=0.1), 54, 54)


def test_a_plug_in_missing_a_method_fails_at_registration_naming_it(toy, tmp_path: Path, monkeypatch, capsys):
    class NoReference(toy.ToyLIFDevice):
        name = "noref"
        reference = None

    with pytest.raises(PluginError, match="neuron device 'noref' .* lacks reference"):
        register_neuron(NoReference())

    broken = tmp_path / "broken_synapse.py"
    broken.write_text("from cosim.devices.plugins import register_synapse\n\n\nclass Half:  # no read_card\n"
                      "    name = 'half'\n    read_libraries = ()\n\n    def parameters(self): ...\n"
                      "    def sample(self, *a): ...\n    def characterize(self, *a): ...\n"
                      "    def mapping(self): ...\n    def program(self, *a): ...\n\n\nregister_synapse(Half())\n")
    _isolated_registries(monkeypatch)
    monkeypatch.setenv(plugins.PLUGINS_ENV, str(broken))
    assert main(["characterize", "half", "--quick", "--out", str(tmp_path / "half")]) == 2
    err = capsys.readouterr().err
    assert "synapse device 'half'" in err and "lacks read_card" in err


def test_an_unknown_device_name_lists_the_registered_ones_with_the_nearest_match(toy, tmp_path: Path, capsys):
    assert main(["characterize", "toylyf", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "'toylyf'; did you mean 'toylif'?" in err and "toyres" in err and "felif" in err
    with pytest.raises(ConfigError, match=r"model\.neuron: unknown neuron device 'toylyf'; did you mean 'toylif'\? "
                                          r"Registered: felif.*toylif"):
        load_config("music", ["model.neuron=toylyf"])
    with pytest.raises(ConfigError, match=r"model\.synapse: unknown synapse device 'toyre'; did you mean 'toyres'\?"):
        load_config("music", ["model.synapse=toyre"])
    assert main(["fit", "toylyf"]) == 2
    assert "did you mean 'toylif'?" in capsys.readouterr().err
