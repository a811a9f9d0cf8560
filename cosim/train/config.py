"""Training configuration: small frozen dataclasses composed into `TrainConfig`, loaded from TOML.

A config file has one table per part ([data], [model], [optimiser], [run], [verify]); a missing key takes the default
below. `load_config(file, overrides)` reads a file (or a shipped config by name: "music", "tactile",
"tactile-lif") and applies overrides written "section.key=value" (the value in TOML syntax; a bare word is a
string). An unknown section or key raises `ConfigError` naming it, with the valid ones and a "did you mean".
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
import tomllib
import typing
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Sequence

from cosim.data.braille import EVENT_CHANNELS, FRAME_RATE, KEPT_TAXELS
from cosim.felif.layer import step_method
from cosim.felif.physics import FeLIFParameters


class ConfigError(ValueError):
    """A training configuration that cannot be used (unknown key, wrong type, value out of range)."""


@dataclass(frozen=True)
class DataConfig:
    """Which data set, which part of it, and how it is batched."""

    dataset: Literal["music21", "jsb", "braille", "braille_events", "synthetic_braille"] = "music21"
    """music21: the Bach chorales shipped with music21 (default music set); jsb: a jsb-chorales-quarter.json file
    (`path`) in its standard split; braille: the published raw Braille pickle (`path`); braille_events: the
    benchmark's published event-coded Braille pickle (`path`, such as ../shared/data/braille/
    data_braille_letters_th10; `cosim.data.load_braille_events`), presented as `encoding` says;
    synthetic_braille: the SYNTHETIC tactile set of `cosim.data.synthetic_braille`."""
    path: str = ""
    """Data file for jsb, braille and braille_events (relative paths are taken from the working directory)."""
    train_subset: int = 0
    """Use only the first N training samples (0: all)."""
    valid_subset: int = 0
    """Use only the first N validation samples (0: all; music only, Braille has no validation split)."""
    test_subset: int = 0
    """Use only the first N test samples (0: all)."""
    batch_size: int = 1
    """Samples per update (music: 1 chorale per update; tactile: 128)."""
    eval_batch_size: int = 64
    """Samples per forward call when evaluating (speed and memory; with quantised synapses each call is one
    stochastic draw of the weights)."""
    warmup_steps: int = 5
    """Music: the first steps of every chorale are left out of the loss and the metrics."""
    synthetic_per_class: int = 200
    """synthetic_braille: repetitions per class (200 like the published set)."""
    synthetic_seed: int = 0
    """synthetic_braille: seed of the simulated fingertip."""
    split_seed: int = 0
    """Braille: seed of the fixed permutation before the 80/20 train/test split (`cosim.data.split_samples`; the
    same recordings are tested in both braille_events encodings)."""
    encoding: Literal["events", "rebuilt"] = "events"
    """braille_events: "events", the ON/OFF events as 0/1 spikes on 24 channels (12 taxels x ON/OFF) in bins of
    `event_bin`, one bin per coarse step, not z-scored (the tactile network then has 24 x encoding_repeat encoding
    neurons); "rebuilt", a 40 Hz signal rebuilt per taxel from the events (an approximation of the raw file)
    and then the paper's preprocessing, 4 channels and 2 x frames steps like braille."""
    event_threshold: float = 10.0
    """braille_events, encoding "rebuilt": threshold of the file's event encoder, counts (10 for
    data_braille_letters_th10)."""
    event_bin: float = 1e-3
    """braille_events, encoding "events": recording time per input step, s (each bin is one coarse step model.dt;
    1 ms makes 1301 steps of the published 1.3 s)."""
    event_duration: float = 0.0
    """braille_events: recording time kept per sample, s (0: up to the file's latest event, 1.3 s in the
    published file: 1301 bins of 1 ms, or 53 rebuilt frames -> 106 steps; 1.25 gives the paper's 51 frames ->
    102 steps). Later events are dropped."""


@dataclass(frozen=True)
class ModelConfig:
    """The network (REFERENCE.md section 4) and how its spiking neurons are simulated and trained."""

    network: Literal["music", "tactile"] = "music"
    """music: keys -> `hidden` neurons -> linear readout with bias; tactile: encoding (inputs tiled
    `encoding_repeat` times, trainable gain and bias, LIF) -> `hidden` LIF -> 27 output neurons."""
    neuron: str = "felif"
    """The device neurons (music hidden layer, tactile output layer): a registered neuron device
    (`cosim.devices.plugins.neuron_names()`: "felif" and any plug-in) or "lif", the software LIF baseline."""
    synapse: str = "rram"
    """The synapse device of the quantised device-layer synapses, programmed in SPICE verification: a registered
    synapse device (`cosim.devices.plugins.synapse_names()`: "rram" and any plug-in)."""
    synapse_levels: Literal["uniform", "programmed"] = "uniform"
    """Levels the device-layer synapses train with: uniform (level q weighs q steps), or the means and spreads of
    the synapse device's write-verify Monte Carlo (`cosim.train.models.device_level_table`; 3 or 4 bits)."""
    synapse_devices: int = 32
    """synapse_levels = "programmed": devices per level of that Monte Carlo (seeded with run.seed)."""
    hidden: int = 150
    """Music: FeLIF neurons (150); tactile: LIF hidden neurons (256)."""
    recurrent: bool = False
    """Tactile: the hidden LIF layer has recurrent synapses (`hidden` x `hidden`, quantised to `bits` like the
    others): with neuron = "lif" the paper's recurrent-LIF network (REFERENCE.md section 4: its 105,216 synapses
    are 128 x 256 + 256 x 256 + 256 x 27, so the recurrence is the hidden layer's)."""
    encoding_repeat: int = 32
    """Tactile: each input channel is tiled this many times (4 x 32 = 128 encoding neurons)."""
    encoding_gain: tuple[float, float] = (0.5, 2.0)
    """Tactile: the encoding layer's trainable gains start uniform in [low, high] (weight units per z-scored input
    unit). The synthetic set learns from the default; the real recordings, which sit above their mean at rest,
    learn from signed gains (-4, 4) with negative biases (-2, 0), which leave the encoding silent at rest instead
    of firing at every step (benchmarks/braille_table.py)."""
    encoding_bias: tuple[float, float] = (-0.5, 0.5)
    """Tactile: the encoding layer's trainable biases start uniform in [low, high] (weight units)."""
    weight_scale: float = 1.0
    """Tactile: initial weights of the hidden and output synapses, as a multiple of nn.Linear's default
    (uniform in +-1/sqrt(inputs)). On the real Braille recordings the default drives the LIF output layer to ~1 kHz,
    where the surrogate gradient vanishes and training sits at chance; 0.3 with the signed encoding above (hidden
    layer ~19 Hz) learns, and benchmarks/braille_table.py searches it per cell."""
    bits: int | None = None
    """Synapse precision of the input weights: None (TOML "float") for float, else 8, 4 or 3 bits."""
    method: str = "bruno"
    """FeLIF coarse-step method: bruno, bptt, bptt_ckpt or coarse (`cosim.felif.layer.METHODS`)."""
    v_thr: float = 2.0
    """FeLIF spike threshold, V (2.0 V in the music runs, 2.5 V in the tactile runs)."""
    surrogate: Literal["superspike", "tanh"] = "tanh"
    """Surrogate derivative of the FeLIF spike (tanh in the music runs, SuperSpike in the tactile runs)."""
    beta: float = 10.0
    """SuperSpike steepness, 1/V."""
    rate_grad: Literal["exact", "stop"] = "stop"
    """Gradient through the FeLIF switching rate in the coarse step: stopped (paper-era code) or exact. With
    "exact", dr/dE at 1 ms makes input gradients of 1e4-1e6 in the music network and overflows to inf/NaN
    within 10 steps of signed (tactile) inputs; "stop" keeps them O(0.1-100)."""
    dt: float = 1e-3
    """Coarse step, s: one data step (chorale step or resampled Braille frame) per coarse step."""
    h: float = 1e-6
    """Fine physical step of the FeLIF forward pass, s."""
    integrator: Literal["euler", "exponential"] = "euler"
    """Fine integrator of the FeLIF forward pass."""
    current_scale: float = 5e-8
    """Synaptic current gain into the FeLIF neurons, A per weight unit (see the shipped configs for the choice)."""
    variability_sigma: float = 0.0
    """Device-to-device variability of the FeLIF parameters (relative sigma; drawn once from run.seed)."""
    cycle_to_cycle_sigma: float = 0.0
    """Cycle-to-cycle variability of the FeLIF parameters: relative sigma drawn afresh for every neuron on every
    coarse step, in training and evaluation (`FeLIFLayer.c2c_sigma`; 0: off)."""
    surrogate_file: str = ""
    """Fitted FeLIF surrogate (`cosim.surrogates`) whose parameters, v_thr included, replace the analytic FeLIF
    physics: "default" for the shipped surrogates/felif.json, or a path; empty: the analytic physics. Its fitted
    forward pass (dt, h, integrator) must match this section's, and it must have been fitted to the device of
    `device_card` (the same card file, by SHA-256; none for none)."""
    device_card: str = ""
    """Device card of the neuron device (`cosim calibrate fecap` writes one for FeLIF: its FeCap): training,
    characterisation and SPICE verification run on the calibrated device; what the card does not hold stays
    default (listed in run.json). A path (relative to the working directory); empty: the default device."""
    synapse_card: str = ""
    """Device card of the synapse device (`cosim calibrate rram` writes one for RRAM): programming (the level table
    of synapse_levels = "programmed" and verification's write-verify population) and the crossbar read law use the
    calibrated device. A path; empty: the default device."""
    r_wire: float = 0.0
    """Wire resistance per segment of the device layer's crossbar, ohm (0: ideal wires): the array as built, cut
    into tiles of `tile_rows` x `tile_cols` (`cosim.devices.crossbar.TileConfig`). SPICE verification builds this
    array (README "Arrays as built": 1 ohm per segment for the 40 nm node)."""
    tile_rows: int = 32
    """Most inputs per crossbar tile of the device layer (0: one tile spans all rows)."""
    tile_cols: int = 16
    """Most differential pairs (outputs) per crossbar tile of the device layer (0: one tile spans all)."""
    ir_drop: bool = False
    """Train the device-layer synapses through the array's per-tile first-order IR-drop model
    (`cosim.surrogates.crossbar_fit.tiled_differential_conductance`) instead of the ideal dot product: needs
    model.bits = 3 or 4 and r_wire > 0."""


@dataclass(frozen=True)
class OptimiserConfig:
    """Adamax with an optional reduce-on-plateau schedule."""

    lr: float = 5e-3
    """Learning rate."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adamax coefficients (b1, b2)."""
    scheduler: Literal["plateau", "none"] = "plateau"
    """plateau: multiply lr by `plateau_factor` when `plateau_metric` has not improved for `plateau_patience`
    epochs; none: constant lr."""
    plateau_metric: Literal["valid_loss", "train_loss"] = "valid_loss"
    """Metric the plateau schedule watches (Braille has no validation split: train_loss)."""
    plateau_factor: float = 0.5
    """Factor applied to lr on a plateau."""
    plateau_patience: int = 2
    """Epochs without improvement before lr is reduced."""
    min_lr: float = 1e-5
    """lr is never reduced below this."""


@dataclass(frozen=True)
class RunConfig:
    """How long, with which seed and where."""

    epochs: int = 20
    """Training epochs."""
    seed: int = 0
    """Seed of everything random: initial weights, variability, data order, stochastic rounding."""
    out: str = "runs/train"
    """Run folder: config.toml, metrics.jsonl/csv, checkpoints/, curves.png."""
    threads: int = 0
    """torch threads (0: torch's default)."""


@dataclass(frozen=True)
class VerifyConfig:
    """SPICE verification of the device layer (`cosim.verify`): on demand with `cosim verify`, and every `every`
    epochs during training."""

    every: int = 0
    """Verify in SPICE every K epochs during training (0: never during training)."""
    samples: int = 4
    """Test samples simulated per verification (fewer when the CPU-time budget runs out)."""
    cpu_budget_s: float = 600.0
    """Simulation CPU time one verification may spend, s; samples that would exceed it are skipped."""
    tolerance: float = 0.95
    """SPICE vs surrogate prediction agreement below which a warning is raised (fraction)."""
    max_steps: int = 0
    """Simulate only the first N coarse steps of each sample (0: all)."""
    refit: bool = False
    """Refit the FeLIF surrogate during training (`cosim.train.refit`): after an epoch whose verification agreement
    is below `tolerance`, or whose outside-support fraction exceeds `refit_outside`, simulate the neuron circuit at
    the states the network visited, refit the surrogate warm-started from the current one (a new version in the
    run folder's ``surrogates/``, its parent in the provenance) and continue with it. Needs model.surrogate_file
    and a FeLIF neuron."""
    refit_outside: float = 0.01
    """Fraction of a FeLIF layer's neuron-steps in an epoch outside its surrogate's support above which a refit is
    made (with `refit`)."""


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run."""

    data: DataConfig = DataConfig()
    """Data set and batching."""
    model: ModelConfig = ModelConfig()
    """Network and neuron simulation."""
    optimiser: OptimiserConfig = OptimiserConfig()
    """Optimiser and schedule."""
    run: RunConfig = RunConfig()
    """Epochs, seed, run folder."""
    verify: VerifyConfig = VerifyConfig()
    """SPICE verification."""


SECTIONS: dict[str, type] = typing.get_type_hints(TrainConfig)
"""The config's sections and their dataclasses."""
SHIPPED = ("music", "tactile", "tactile-lif")
MAX_NEURONS = 10_000
"""Most neurons in a layer (model.hidden, 4 x model.encoding_repeat): 40x the largest shipped layer (256); a
mistyped size (1e8) would otherwise try to allocate gigabytes."""
MAX_BATCH = 4096
"""Most samples per batch (data.batch_size, data.eval_batch_size): 32x the shipped 128, ~0.4 GB per state tensor
of the tactile network."""
MAX_SYNTHETIC_PER_CLASS = 10_000
"""Most repetitions per class of the synthetic tactile set: 50x the published set's 200."""
MIN_EVENT_BIN = 5e-4
"""Finest data.event_bin, s: the event times are interpolated between 25 ms frames, so finer bins only add steps
(at 0.5 ms the published 1.3 s make 2601 steps, 1.35 GB of inputs)."""
MAX_R_WIRE = 100.0
"""Largest model.r_wire, ohm per segment: 100x the 40 nm figure of README "Arrays as built"."""
MAX_LR = 1.0
"""Largest learning rate: Adamax moves each weight by up to lr per update, so beyond 1 nothing is learnt (and
beyond 3.4e38 torch cannot even apply it)."""
PHYSICAL_RANGES = {
    "dt": (1e-6, 1.0, "s", "one data step per coarse step (the shipped runs: 1 ms)"),
    "current_scale": (1e-13, 1e-5, "A per weight unit", "below, inputs stay under the neuron's 10 pA discharge "
                      "current; above, one 1 us step of a single unit lifts the 0.57 pF membrane by 17 V"),
}
"""Ranges (low, high, unit, reason) that model fields must lie in to describe a device that can exist."""
MAX_SUBSTEPS = 100_000
"""Most fine sub-steps of model.h per coarse step model.dt: 100x the shipped runs' 1000, already 100x their time
per epoch; a mistyped h (1e-12 s) would otherwise run 1e9 sub-steps per coarse step without a word."""
"""Configs shipped in cosim/train/configs/, by name."""
_MUSIC_DATA = ("music21", "jsb")


def _suggest(name: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{hint}; valid: {', '.join(valid)}"


def _coerce(value: Any, kind: Any, where: str) -> Any:
    """`value` as the annotated type `kind`, or ConfigError naming `where`."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where} = {value!r}: must be one of {', '.join(map(repr, args))}")
        return value
    if kind == int | None:  # bits: TOML has no null, "float" stands for None
        if value == "float":
            return None
        return _coerce(value, int, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{where} = {value!r}: must be a list of {len(args)} numbers")
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is str and isinstance(value, str):
        return value
    if kind is bool and isinstance(value, bool):
        return value
    raise ConfigError(f"{where} = {value!r}: must be {getattr(kind, '__name__', kind)}")


def _build_section(cls: type, values: dict, where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in names:
            raise ConfigError(f"unknown key {key!r} in [{where}]{_suggest(key, names)}")
    return cls(**{key: _coerce(value, hints[key], f"{where}.{key}") for key, value in values.items()})


def config_from_dict(tables: dict, where: str = "config") -> TrainConfig:
    """A validated TrainConfig from {section: {key: value}} (as read from TOML); `where` names the source."""
    for name, table in tables.items():
        if name not in SECTIONS:
            raise ConfigError(f"{where}: unknown section [{name}]{_suggest(name, list(SECTIONS))}")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{name}] must be a table of key = value, got {table!r}")
    try:
        cfg = TrainConfig(**{name: _build_section(cls, tables.get(name, {}), name) for name, cls in SECTIONS.items()})
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    validate(cfg, where)
    return cfg


def validate(cfg: TrainConfig, where: str = "config") -> TrainConfig:
    """Raise ConfigError naming the field if a value is out of range or fields contradict each other."""
    d, m, o, r = cfg.data, cfg.model, cfg.optimiser, cfg.run
    problems = []
    for name in ("train_subset", "valid_subset", "test_subset", "warmup_steps", "synthetic_seed", "split_seed"):
        if getattr(d, name) < 0:
            problems.append(f"data.{name} must be >= 0")
    for name, most in (("batch_size", MAX_BATCH), ("eval_batch_size", MAX_BATCH),
                       ("synthetic_per_class", MAX_SYNTHETIC_PER_CLASS)):
        if not 1 <= getattr(d, name) <= most:
            problems.append(f"data.{name} must be in [1, {most}], got {getattr(d, name)}")
    if d.dataset in ("jsb", "braille", "braille_events") and not d.path:
        example = " such as ../shared/data/braille/data_braille_letters_th10" if d.dataset == "braille_events" else ""
        problems.append(f"data.path is needed for data.dataset = {d.dataset!r} (the data file{example})")
    if not (math.isfinite(d.event_threshold) and d.event_threshold > 0):
        problems.append(f"data.event_threshold must be a finite number of counts > 0, got {d.event_threshold}")
    if not MIN_EVENT_BIN <= d.event_bin <= 1:
        problems.append(f"data.event_bin = {d.event_bin} s is outside [{MIN_EVENT_BIN:g}, 1] s")
    if not (d.event_duration == 0 or 1 / FRAME_RATE <= d.event_duration <= 60):
        problems.append(f"data.event_duration = {d.event_duration} s: 0 (up to the latest event) or within "
                        f"[{1 / FRAME_RATE:g}, 60] s (at least one {1e3 / FRAME_RATE:g} ms frame)")
    music_data = d.dataset in _MUSIC_DATA
    if music_data != (m.network == "music"):
        problems.append(f"model.network = {m.network!r} does not go with data.dataset = {d.dataset!r} "
                        f"(music: {', '.join(_MUSIC_DATA)}; tactile: braille, braille_events, synthetic_braille)")
    channels = EVENT_CHANNELS if (d.dataset, d.encoding) == ("braille_events", "events") else len(KEPT_TAXELS)
    for name, most in (("hidden", MAX_NEURONS), ("encoding_repeat", MAX_NEURONS // channels)):
        if not 1 <= getattr(m, name) <= most:
            problems.append(f"model.{name} must be in [1, {most}], got {getattr(m, name)}")
    if m.bits is not None and m.bits not in (3, 4, 8):
        problems.append(f"model.bits must be \"float\", 8, 4 or 3, got {m.bits}")
    try:
        step_method(m.method)
    except ValueError as err:
        problems.append(f"model.method: {err}")
    for name in ("encoding_gain", "encoding_bias"):
        low, high = getattr(m, name)
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            problems.append(f"model.{name} must be [low, high] with finite low <= high, got {list(getattr(m, name))}")
    for name in ("beta", "h", "weight_scale"):
        value = getattr(m, name)
        if not (math.isfinite(value) and value > 0):
            problems.append(f"model.{name} must be a finite number > 0, got {value}")
    limits = FeLIFParameters()
    if not 0 < m.v_thr < limits.v_max:
        problems.append(f"model.v_thr = {m.v_thr} V: the FeLIF membrane is held within [{limits.v_min:g}, "
                        f"{limits.v_max:g}] V by its input protection, so a threshold it can cross is in "
                        f"(0, {limits.v_max:g}) V")
    for name, (low, high, unit, why) in PHYSICAL_RANGES.items():
        if not low <= getattr(m, name) <= high:
            problems.append(f"model.{name} = {getattr(m, name)} {unit} is outside [{low:g}, {high:g}] {unit}: {why}")
    if m.h > m.dt:
        problems.append(f"model.h = {m.h} s must not exceed model.dt = {m.dt} s")
    elif m.h > 0 and m.dt / m.h > MAX_SUBSTEPS:
        problems.append(f"model.h = {m.h} s makes {m.dt / m.h:.3g} fine sub-steps per coarse step of model.dt = "
                        f"{m.dt} s: at most {MAX_SUBSTEPS} (h >= {m.dt / MAX_SUBSTEPS:g} s; the shipped runs use "
                        "1000)")
    for name in ("variability_sigma", "cycle_to_cycle_sigma"):
        if not 0 <= getattr(m, name) < 1:
            problems.append(f"model.{name} must be in [0, 1), got {getattr(m, name)}")
    from cosim.devices.plugins import PluginError, neuron_device, synapse_device

    for kind, name, lookup in (("neuron", m.neuron, neuron_device), ("synapse", m.synapse, synapse_device)):
        try:
            if not (kind == "neuron" and name == "lif"):
                lookup(name)
        except PluginError as err:
            problems.append(f"model.{kind}: {err}" + (' (or "lif", the software baseline)' if kind == "neuron" else ""))
            continue
        key, card = ("device_card", m.device_card) if kind == "neuron" else ("synapse_card", m.synapse_card)
        if card and kind == "neuron" and name == "lif":
            problems.append("model.device_card is for a device neuron; model.neuron = \"lif\" has none")
        elif card:
            try:
                lookup(name, card)
            except ValueError as err:  # CardError, PluginError
                problems.append(f"model.{key}: {err}")
    if m.recurrent and m.network != "tactile":
        problems.append("model.recurrent = true is the tactile classifier's recurrent hidden layer; model.network "
                        f"is {m.network!r}")
    if m.synapse_levels == "programmed" and m.bits not in (3, 4):
        problems.append(f"model.synapse_levels = \"programmed\" needs model.bits = 3 or 4 (a differential pair of "
                        f"8-level devices), got {m.bits}")
    if not (math.isfinite(m.r_wire) and 0 <= m.r_wire <= MAX_R_WIRE) or m.tile_rows < 0 or m.tile_cols < 0:
        problems.append(f"model.r_wire must be in [0, {MAX_R_WIRE:g}] ohm per segment and model.tile_rows, "
                        f"model.tile_cols >= 0 (0: no tiling); got {m.r_wire}, {m.tile_rows}, {m.tile_cols}")
    if m.ir_drop and (m.r_wire == 0 or m.bits not in (3, 4) or m.neuron == "lif"):
        problems.append(f"model.ir_drop = true trains through the crossbar's IR drop: it needs model.r_wire > 0 "
                        f"(got {m.r_wire}), model.bits = 3 or 4 (got {m.bits}) and device neurons (got "
                        f"{m.neuron!r})")
    if not 2 <= m.synapse_devices <= 4096:
        problems.append(f"model.synapse_devices must be in [2, 4096], got {m.synapse_devices}")
    if m.surrogate_file and m.neuron == "lif":
        problems.append("model.surrogate_file is for a device neuron; model.neuron = \"lif\" has no surrogate")
    elif m.surrogate_file:
        from cosim.surrogates import SurrogateFileError, load_fitted, surrogate_path

        try:
            surrogate = load_fitted(m.neuron, surrogate_path(m.surrogate_file, m.neuron))
            # only a surrogate fitted to a forward pass (FeLIF's) records one to match; a plug-in's may not
            fitted = surrogate.step_config() if hasattr(surrogate, "step_config") else None
            mismatched = [f"{name} = {getattr(m, name)} (fitted with {getattr(fitted, name)})"
                          for name in ("dt", "h", "integrator")
                          if fitted is not None and getattr(m, name) != getattr(fitted, name)]
            if mismatched:
                problems.append(f"model.surrogate_file {m.surrogate_file!r} was fitted for another forward pass: "
                                f"model.{', model.'.join(mismatched)}")
            if problem := _card_mismatch(surrogate, m.surrogate_file, m.device_card):
                problems.append(problem)
        except (SurrogateFileError, ValueError) as err:
            problems.append(f"model.surrogate_file: {err}")
    if not (0 < o.lr <= MAX_LR and 0 <= o.min_lr <= MAX_LR and 0 < o.plateau_factor < 1 and o.plateau_patience >= 0):
        problems.append(f"optimiser: need 0 < lr <= {MAX_LR:g}, 0 <= min_lr <= {MAX_LR:g}, 0 < plateau_factor < 1, "
                        f"plateau_patience >= 0; got lr = {o.lr}, min_lr = {o.min_lr}, plateau_factor = "
                        f"{o.plateau_factor}, plateau_patience = {o.plateau_patience}")
    if not all(0 <= b < 1 for b in o.betas):
        problems.append(f"optimiser.betas must be in [0, 1), got {list(o.betas)}")
    if o.scheduler == "plateau" and o.plateau_metric == "valid_loss" and not music_data:
        problems.append("optimiser.plateau_metric = 'valid_loss' needs a validation split; Braille has none "
                        "(use 'train_loss')")
    if r.epochs < 1 or r.threads < 0:
        problems.append("run.epochs must be >= 1 and run.threads >= 0")
    if not r.out:
        problems.append("run.out (the run folder) must not be empty")
    v = cfg.verify
    if v.every < 0 or v.samples < 1 or v.max_steps < 0 or not v.cpu_budget_s > 0 or not 0 <= v.tolerance <= 1:
        problems.append("verify: need every >= 0, samples >= 1, max_steps >= 0, cpu_budget_s > 0 and tolerance in "
                        "[0, 1]")
    if music_data and 0 < v.max_steps <= d.warmup_steps:
        problems.append(f"verify.max_steps = {v.max_steps} leaves nothing to compare after the {d.warmup_steps} "
                        "warm-up steps (data.warmup_steps) of each chorale: use more steps, or 0 for all")
    if v.refit and (m.neuron != "felif" or not m.surrogate_file or m.variability_sigma > 0):
        problems.append("verify.refit needs a fitted FeLIF surrogate (model.neuron = \"felif\", model.surrogate_file "
                        "set) without device-to-device variability (model.variability_sigma = 0)")
    if not 0 <= v.refit_outside <= 1:
        problems.append(f"verify.refit_outside is a fraction in [0, 1], got {v.refit_outside}")
    if v.every and (m.neuron == "lif" or m.bits not in (3, 4)):
        problems.append("verify.every > 0 needs device neurons and 3- or 4-bit synapses (model.neuron not \"lif\", "
                        "model.bits = 3 or 4): SPICE verification maps weight levels onto synapse conductance pairs")
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))
    return cfg


def _card_mismatch(surrogate: Any, name: str, device_card: str) -> str | None:
    """Why the surrogate `name` was fitted to another device than the one of `device_card`, or None: compared by
    the card files' SHA-256 (a surrogate records the card it was fitted to, `cosim fit --device-card`)."""
    from cosim.devices.card import card_sha256

    fitted_to = getattr(surrogate, "device_card", None) or {}
    card = Path(device_card) if device_card else None
    if not fitted_to and card is None:
        return None
    sha = card_sha256(card) if card is not None and card.is_file() else None
    if fitted_to.get("sha256") == sha:
        return None
    was = (f"fitted to the device card {fitted_to.get('path')} (sha256 {str(fitted_to.get('sha256'))[:12]}...)"
           if fitted_to else "fitted to the default device (no device card)")
    run = (f"model.device_card = {str(card)!r} (sha256 {sha[:12]}...)" if sha else
           f"model.device_card = {str(card)!r}" if card is not None else "no model.device_card (the default device)")
    return (f"model.surrogate_file {name!r} was {was}, but this run has {run}: the network would train on one device "
            "and be verified on another; fit a surrogate to the run's device (cosim fit felif --device-card CARD "
            "--out FILE) and name it, or give the card it was fitted to")


def _parse_value(text: str) -> Any:
    """A TOML value ("3", "1e-3", "[0.9, 0.99]", "true", '"x"'); anything else is taken as a bare string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(cfg: TrainConfig, overrides: Sequence[str]) -> TrainConfig:
    """`cfg` with "section.key=value" overrides applied (later ones win), validated."""
    tables = to_dict(cfg)
    for item in overrides:
        key, sep, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise ConfigError(f"override {item!r}: write section.key=value, for example model.bits=3")
        if section not in tables:
            raise ConfigError(f"override {item!r}: unknown section {section!r}{_suggest(section, list(tables))}")
        if name not in tables[section]:
            valid = list(tables[section])
            raise ConfigError(f"override {item!r}: unknown key {name!r} in [{section}]{_suggest(name, valid)}")
        tables[section][name] = _parse_value(text.strip())
    return config_from_dict(tables, where="overrides")


def shipped_config(name: str) -> Path:
    """Path of a config shipped with cosim ("music", "tactile", "tactile-lif")."""
    if name not in SHIPPED:
        raise ConfigError(f"no shipped config {name!r}{_suggest(name, SHIPPED)}")
    return Path(str(resources.files("cosim.train") / "configs" / f"{name}.toml"))


def load_config(source: str | Path = "music", overrides: Sequence[str] = ()) -> TrainConfig:
    """The config in TOML file `source` (or the shipped one of that name), with overrides applied."""
    path = Path(source)
    if not path.suffix and str(source) in SHIPPED:
        path = shipped_config(str(source))
    if not path.is_file():
        raise ConfigError(f"config file not found: {path} (give a TOML file or one of the shipped configs: "
                          f"{', '.join(SHIPPED)})")
    cfg = read_config(path)
    return apply_overrides(cfg, overrides) if overrides else cfg


def read_config(path: Path) -> TrainConfig:
    """The validated config in TOML file `path`; ConfigError naming the file if it cannot be read as one."""
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a text file in UTF-8 (byte {err.start}: {err.reason}); a config is a TOML "
                          "file") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    except OSError as err:
        raise ConfigError(f"config file {path} cannot be read: {err.strerror}") from None
    return config_from_dict(tables, where=str(path))


def to_dict(cfg: TrainConfig) -> dict[str, dict[str, Any]]:
    """{section: {key: value}} with TOML-representable values (bits None as "float", tuples as lists)."""
    tables = {}
    for name in SECTIONS:
        section = getattr(cfg, name)
        tables[name] = {f.name: _plain(getattr(section, f.name)) for f in dataclasses.fields(section)}
    tables["model"]["bits"] = "float" if cfg.model.bits is None else cfg.model.bits
    return tables


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else
                                                         ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if value is None:
        return '"float"'
    raise TypeError(f"cannot write {value!r} as a TOML value")


def to_toml(cfg: TrainConfig) -> str:
    """The fully resolved config as TOML (every field, also those left at their default)."""
    lines = ["# Resolved training configuration (fields documented in cosim/train/config.py)"]
    for section, table in to_dict(cfg).items():
        lines += ["", f"[{section}]"] + [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


def differences(a: TrainConfig, b: TrainConfig) -> list[str]:
    """The "section.key" fields in which two configs differ."""
    da, db = to_dict(a), to_dict(b)
    return [f"{s}.{k}" for s in da for k in da[s] if da[s][k] != db[s][k]]
