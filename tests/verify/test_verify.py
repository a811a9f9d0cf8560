"""SPICE verification: exported conductances against the quantised weights, a tiny network end to end in
ngspice (`cosim verify` and every epoch during training), the CPU-time budget, and clear errors on bad inputs."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cosim.cli import main
from cosim.devices.crossbar import TileConfig
from cosim.devices.felif import FeLIFCircuitParameters, circuit_files, neuron_element, spike_times
from cosim.devices.rram import program_levels
from cosim.felif.physics import FeLIFParameters
from cosim.snn.synapses import ConductanceLevels
from cosim.spice import Circuit, SimJob, Tran, run
from cosim.spice.elements import CurrentSource, Pwl
from cosim.surrogates.doe import Stimulus
from cosim.surrogates.felif_model import simulate
from cosim.train.config import ConfigError, ModelConfig, load_config
from cosim.train.loop import train
from cosim.train.models import build_model
from cosim.verify.export import HardwareConfig, device_layer, program, sample_jobs
from cosim.verify.runner import (
    SpiceDivergenceWarning,
    check_tolerance,
    load_run,
    select_samples,
    simulate_spice,
    verify_epoch,
    verify_run,
)

HIDDEN = 4
"""FeLIF neurons of the tiny music network (one SPICE job of 4 columns per sample)."""


@pytest.fixture(scope="module")
def jsb_file(write_jsb) -> Path:
    return write_jsb(3, train=(14, 12, 16), valid=(12,), test=(14, 12), low=55, high=80)


def music_config(jsb_file: Path, out: Path, *extra: str):
    # 10 nA per weight unit: the 4 neurons spike every 2-4 steps with the input weights at initialisation
    return load_config("music", ["data.dataset=jsb", f"data.path={json.dumps(str(jsb_file))}",
                                 f"model.hidden={HIDDEN}", "model.bits=3", "model.current_scale=1e-8",
                                 "run.epochs=1", "run.threads=1", f"run.out={json.dumps(str(out))}",
                                 "verify.samples=2", "verify.max_steps=12", *extra])


@pytest.fixture(scope="module")
def trained_run(jsb_file: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "music"
    train(music_config(jsb_file, out), progress=False)
    return out


def test_exported_conductances_reproduce_the_quantised_weights():
    torch.manual_seed(0)
    model = build_model(ModelConfig(network="music", hidden=6, bits=3), 54, 54)
    layer = device_layer(model)
    levels, step = model.synapses.integer_levels()
    assert np.array_equal(layer.levels, levels.T.numpy()) and layer.step == float(step)
    assert set(np.unique(layer.levels)) <= set(range(-3, 4)) and len(np.unique(layer.levels)) > 2

    ideal = program(layer, HardwareConfig(programming="ideal"))
    mapping = ideal.crossbar.config
    g_diff = ideal.crossbar.g_plus - ideal.crossbar.g_minus
    assert np.allclose(g_diff, 20e-6 * layer.levels, rtol=0, atol=1e-12)  # 3 bits: 20 uS per weight level
    # mirrored currents of the ideal array = the training model's input currents of the exported weights
    spikes = (np.random.default_rng(1).random((5, 54)) < 0.3).astype(float)
    expected = model.neurons.current_scale * (torch.from_numpy(spikes).float()
                                               @ (levels.float() * step).T).numpy()
    assert np.allclose(ideal.crossbar.ideal_outputs(mapping.v_read * spikes), expected, rtol=1e-5, atol=1e-15)
    assert np.allclose(layer.currents(spikes), expected, rtol=1e-5, atol=1e-15)

    # programmed devices: G+ - G- scattered around the level, proportional to it on average
    population = program_levels(8, seed=2, progress=False)
    chip = program(layer, HardwareConfig(seed=5), population)
    g_diff = (chip.crossbar.g_plus - chip.crossbar.g_minus) / population.mapping.weight_step_s
    spread = np.sqrt(2) * population.std_s.max() / population.mapping.weight_step_s
    assert np.all(np.abs(g_diff - layer.levels) < 6 * spread)
    slope = np.polyfit(layer.levels.ravel(), g_diff.ravel(), 1)[0]
    assert abs(slope - 1) < 0.1
    again = program(layer, HardwareConfig(seed=5), population)
    assert np.array_equal(again.crossbar.g_plus, chip.crossbar.g_plus)  # the programming draw is seeded

    # trained with the programmed levels as its level table: on average the chip's currents are the trained ones
    model.synapses.level_table = ConductanceLevels(**{k: tuple(v) for k, v in
                                                      population.weight_level_table().items()})
    layer = device_layer(model)
    chip = program(layer, HardwareConfig(seed=5), population)
    one_hot = np.eye(54)
    programmed = chip.crossbar.ideal_outputs(mapping.v_read * one_hot)  # [input, neuron]: each synapse's current
    trained = layer.currents(one_hot)
    noise = np.sqrt(2) * population.std_s.max() * chip.crossbar.config.mirror_gain * mapping.v_read
    for q in range(-3, 4):
        chosen = layer.levels == q
        if chosen.sum() > 5:
            assert abs(programmed[chosen].mean() - trained[chosen].mean()) < 4 * noise / np.sqrt(chosen.sum()), q


def test_four_bit_weights_use_every_device_level_and_eight_bits_are_refused():
    torch.manual_seed(0)
    layer4 = device_layer(build_model(ModelConfig(network="music", hidden=3, bits=4), 54, 54))
    chip = program(layer4, HardwareConfig(programming="ideal"))
    assert np.allclose(chip.crossbar.g_plus - chip.crossbar.g_minus, 10e-6 * layer4.levels, atol=1e-12)
    layer8 = device_layer(build_model(ModelConfig(network="music", hidden=3, bits=8), 54, 54))
    with pytest.raises(ValueError, match="8-bit synapses have levels \\+-127"):
        program(layer8, HardwareConfig(programming="ideal"))


@pytest.mark.parametrize("negative", [-6e-9, -300e-9])
def test_protected_circuit_keeps_the_model_s_limits_under_negative_input(negative):
    """A negative current for 4 ms, then +4 nA: the model holds V at its v_min (-5.005 V) and spikes at 7.3,
    11.8, 15.8, 19.8 ms. The circuit as built (no clamp added; the bare node fell to about -22 V at -6 nA and
    spiked 2.5 ms late) settles where its clamp diode carries the current (-4.90 V at -6 nA, -5.005 V at -300 nA)
    and spikes with the model."""
    params = FeLIFParameters(v_thr=2.0)
    current = (negative,) * 4 + (4e-9,) * 16
    reference = simulate([Stimulus("negative-then-positive", "pulses", current)], params)[0].spikes
    circuit = FeLIFCircuitParameters.reference(params)
    points = [(0.0, current[0]), (4e-3 - 50e-9, current[0]), (4e-3 + 50e-9, current[-1]), (20e-3, current[-1])]
    elements = (CurrentSource("Iin", "0", "m", waveform=Pwl(tuple(points))), neuron_element("n", "m", "s", circuit))
    job = SimJob(Circuit("", elements=elements, **circuit_files(circuit, "ngspice")),
                 Tran(step=5e-6, stop=20e-3, max_step=5e-6, method="gear"), outputs=("v(m)", "v(s)"))
    result = run(job)
    settled = result["v(m)"][np.searchsorted(result.x, 3.9e-3)]
    assert settled == pytest.approx(circuit.membrane_limits(-negative)[0], abs=2e-3)
    assert result["v(m)"].min() > params.v_min - 0.01, "only the first 5 us steps overshoot, by a few mV"
    # Once the input turns positive, the diode lifts the node within ~C V_T / I to where it carries less than
    # the input, v_ss - V_T ln(I / i_sd) (-4.89 V at 4 nA): a head start of 0.11 V, 16 us at 4 nA, over the
    # model, which starts from v_min. After the first reset both start from v_reset.
    head_start = (circuit.membrane_limits(current[-1])[0] - params.v_min) * params.c_tot / current[-1]
    spikes = spike_times(result.x, result["v(s)"], 1.0)
    assert len(spikes) == len(reference) == 4
    assert 0 < reference[0] - spikes[0] < head_start + 10e-6 and np.abs(spikes - reference)[1:].max() < 10e-6


def test_tactile_output_layer_is_the_device_layer():
    torch.manual_seed(0)
    cfg = ModelConfig(network="tactile", hidden=8, encoding_repeat=2, bits=3, v_thr=2.5)
    layer = device_layer(build_model(cfg, 4, 27))
    assert (layer.name, layer.inputs, layer.n_neurons) == ("output", 8, 27)
    chip = program(layer, HardwareConfig(programming="ideal", columns_per_job=10))
    jobs = sample_jobs(chip, np.eye(8)[:3], "t")
    assert [list(columns) for _, columns in jobs] == [list(range(0, 10)), list(range(10, 20)), list(range(20, 27))]
    assert jobs[-1][0].simulator == "vacask"  # the default where the circuits allow
    netlist = jobs[-1][0].circuit.netlist
    on_membrane = [line.split()[0] for line in netlist.splitlines()
                   if " in6 " in f" {line.replace('(', ' ').replace(')', ' ')} "]
    assert on_membrane == ["Fp6", "Fm6", "Xn6"], "the column's mirror and the neuron as built, nothing added"


def test_verify_cli_writes_verify_json_and_raster(trained_run: Path, capsys):
    assert main(["verify", str(trained_run), "--programming", "ideal", "--jobs", "2"]) == 0
    assert "verify.json" in capsys.readouterr().out
    summary = json.loads((trained_run / "verify.json").read_text())
    for key in ("prediction_agreement", "spike_count_agreement", "spike_time_error_s", "spice_metric",
                "surrogate_metric", "samples", "seconds"):
        assert key in summary, key
    assert summary["samples"] == 2 and summary["steps"] == [12, 11] and summary["epoch"] == 1
    assert summary["verification_adds_clamp"] is False
    assert summary["spikes_spice"] > 10, "the tiny network must spike for the comparison to mean anything"
    # the ideal-limit circuit with exact conductances is the surrogate's model: they must agree
    assert summary["spike_count_agreement"] > 0.95 and summary["prediction_agreement"] > 0.95
    assert summary["spike_time_error_s"] < 20e-6
    assert abs(summary["spice_metric"] - summary["surrogate_metric"]) < 0.05
    assert (trained_run / "verify" / "raster.png").stat().st_size > 10_000


def test_dask_scheduler_gives_the_same_verification(trained_run: Path):
    distributed = pytest.importorskip("distributed")
    hw = HardwareConfig(programming="ideal")
    local = verify_run(trained_run, hw=hw, progress=False)
    shutil.rmtree(trained_run / "verify" / "jobs")  # else the results the local run stored would be reused
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        remote = verify_run(trained_run, hw=hw, scheduler=cluster.scheduler_address, progress=False)
    for key in ("prediction_agreement", "spike_count_agreement", "spikes_spice", "spice_metric", "samples"):
        assert remote[key] == local[key], key
    assert remote["spike_time_error_s"] == pytest.approx(local["spike_time_error_s"], rel=1e-6)


def test_budget_limits_the_samples(trained_run: Path):
    cfg, model, task, _ = load_run(trained_run)
    chip = program(device_layer(model), HardwareConfig(programming="ideal"))
    samples = select_samples(task, "test", 2, max_steps=6)
    spikes = [batch.inputs[0].numpy() for _, batch in samples]
    traces, spent = simulate_spice(chip, spikes, budget_s=1e-3, n_jobs=1, progress=False)
    assert traces[0] is not None and len(traces[0]) == HIDDEN and traces[1] is None  # the first round always runs
    assert spent > 1e-3


def test_periodic_verification_during_training_leaves_training_unchanged(jsb_file: Path, tmp_path: Path):
    plain = train(music_config(jsb_file, tmp_path / "plain", "run.epochs=2"), progress=False)
    checked_cfg = music_config(jsb_file, tmp_path / "checked", "run.epochs=2", "verify.every=1", "verify.samples=1",
                               "verify.max_steps=8", "verify.tolerance=0.5")
    checked = train(checked_cfg, progress=False, verify=verify_epoch)
    strip = lambda rows: [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in rows]  # noqa: E731
    assert strip(plain) == strip(checked)  # verification draws from its own generators only
    history = [json.loads(line) for line in (tmp_path / "checked" / "verify_history.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in history] == [1, 2]
    assert all(0 <= row["prediction_agreement"] <= 1 and row["samples"] == 1 for row in history)
    assert (tmp_path / "checked" / "verify" / "history.png").is_file()
    assert (tmp_path / "checked" / "verify" / "levels").is_dir()  # the programming Monte Carlo, cached


def test_divergence_beyond_tolerance_warns():
    summary = {"within_tolerance": False, "prediction_agreement": 0.8, "tolerance": 0.95,
               "spike_count_agreement": 0.9, "samples": 3}
    with pytest.warns(SpiceDivergenceWarning, match="prediction agreement 0.800 < tolerance 0.95"):
        assert "diverge" in check_tolerance(summary, "epoch 3")
    assert check_tolerance({**summary, "within_tolerance": True}, "epoch 3") is None


def test_bad_inputs_give_clear_errors(trained_run: Path, jsb_file: Path, tmp_path: Path, capsys):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        verify_run(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.toml"):
        verify_run(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="checkpoint epoch-0009.pt not found"):
        verify_run(trained_run, checkpoint="epoch-0009.pt")
    no_checkpoint = tmp_path / "fresh"
    no_checkpoint.mkdir()
    (no_checkpoint / "config.toml").write_text((trained_run / "config.toml").read_text())
    assert main(["verify", str(no_checkpoint)]) == 1
    assert "no checkpoint" in capsys.readouterr().err

    torch.manual_seed(0)
    with pytest.raises(ValueError, match="float weights"):
        device_layer(build_model(ModelConfig(network="music", hidden=3, bits=None), 54, 54))
    with pytest.raises(ValueError, match="software LIF baseline, not a device"):
        device_layer(build_model(ModelConfig(network="music", neuron="lif", hidden=3, bits=3), 54, 54))
    with pytest.raises(ConfigError, match="verify.every > 0 needs device neurons and 3- or 4-bit synapses"):
        music_config(jsb_file, tmp_path / "x", "verify.every=1", "model.bits=float")
    with pytest.raises(ValueError, match="TileConfig.cols"):
        HardwareConfig(r_wire=1.0, tile=TileConfig(32, -16))


def test_training_with_the_programmed_level_table_carries_it_into_verification(jsb_file: Path, tmp_path: Path):
    """model.synapse_levels = "programmed": training draws its weights from the synapse device's write-verify
    Monte Carlo (kept in the run folder, reused on resume and by verification), and the verified chip's mirror gain
    comes from that table's siemens per level, not from the nominal mapping."""
    out = tmp_path / "programmed"
    cfg = music_config(jsb_file, out, 'model.synapse_levels="programmed"', "model.synapse_devices=2")
    train(cfg, progress=False)
    assert (out / "synapse_levels.json").is_file()
    _, model, _, _ = load_run(out)
    table = model.synapses.level_table
    assert isinstance(table, ConductanceLevels)
    layer = device_layer(model)
    assert layer.siemens_per_level == table.g_unit
    chip = program(layer, HardwareConfig(programming="ideal"))
    nominal = 20e-6  # the RRAM mapping's weight step for 3 bits
    assert abs(table.g_unit / nominal - 1) > 1e-3
    assert chip.crossbar.config.mirror_gain == pytest.approx(layer.current_per_level / (0.1 * table.g_unit))
    with pytest.raises(ConfigError, match="synapse_levels"):
        music_config(jsb_file, tmp_path / "x", 'model.synapse_levels="programmed"', "model.bits=8")
