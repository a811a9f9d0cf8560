"""The paper's two networks (REFERENCE.md section 4) as thin nn.Module shells over cosim's layers.

Both take batch-first inputs [batch, steps, channels] (as `cosim.data` yields them), run time-major inside
(one data step per coarse step of the neurons) and return a `ModelOutput`: the task's logits and the spike
trains of every spiking layer (for rates and, later, for SPICE verification).

Synaptic current gain: the device neurons (FeLIF) see `ModelConfig.current_scale` amperes per weight unit, chosen
so that the typical FeLIF input at initialisation lies in the 0.5-100 nA window of REFERENCE.md's sanity numbers
and, for the tactile network, below the gradient dead zone (both checked in tests/train/test_models.py).

Dead zone: BRUNO's backward pass is that of one explicit Euler step of 1 ms, which clips V to [-5, 5] V. A
constant input above about 6-8 nA drives that coarse step past the clip on every step, and the gradient of the
spike count with respect to the input is then exactly zero (d count / dI ~ 80 per nA at 1 nA, 1.5 at 5 nA, 0 from
8 nA on, 30 steps, h = 10 us). A neuron driven there receives no training signal and cannot be brought back.

* music (50 nA per unit): about 3.9 of the 54 keys sound per step (JSB), weights uniform[0, sqrt(1/150)] ->
  0.16 units -> median 8 nA (10-90 %: 5-11 nA), about 20 % of the FeLIF neurons spike per step. Training lowers
  the drive (rates 450 -> 270 Hz over 20 epochs); this gain reached the BCE goal, and 10 nA per unit learned more
  slowly (test BCE 0.194 against 0.185 after 8 epochs, seed 0).
* tactile (10 nA per unit): ~30 % of the 256 hidden LIF neurons spike per step into weights of about +-1/16 ->
  median |I| 1.8 nA, 0.1 % of the inputs above 8 nA. At 50 nA per unit (median 9 nA, 27 % above 8 nA) the float
  network still learned, but with 3-bit synapses the output neurons saturated (440 Hz) and stayed near chance
  (8 % after 20 epochs).

The LIF baseline (`neuron = "lif"`) takes the same inputs in weight units directly.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from cosim.devices.crossbar import TileConfig
from cosim.devices.plugins import neuron_device, synapse_device
from cosim.snn.lif import LIF, RecurrentLIF
from cosim.snn.synapses import ConductanceLevels, LevelTable, QuantizedLinear, max_level
from cosim.surrogates import load_fitted, surrogate_path
from cosim.surrogates.crossbar_fit import ArrayRead, CrossbarModel, ReadCorrection
from cosim.train.config import ModelConfig


class ModelOutput(NamedTuple):
    """What a network returns for one batch."""

    logits: torch.Tensor
    """Music: next-step key logits [batch, steps, keys]; tactile: output spike counts [batch, classes]."""
    spikes: dict[str, torch.Tensor]
    """Spike trains of each spiking layer by name, 0/1 [steps, batch, neurons]."""


class DeviceLayerRef(NamedTuple):
    """A network's layer that runs as a circuit: quantised synapses into device neurons."""

    name: str
    """The layer's key in `ModelOutput.spikes`."""
    synapses: nn.Module
    """Its synapses (`QuantizedLinear`, weights [neurons, inputs])."""
    neurons: nn.Module
    """Its neurons (the neuron device's training layer)."""
    neuron: str
    """Name of the neuron device (`cosim.devices.plugins.neuron_device`)."""
    synapse: str
    """Name of the synapse device (`cosim.devices.plugins.synapse_device`)."""
    neuron_card: str = ""
    """Device card the neuron device was built from (config ``model.device_card``; "": its defaults)."""
    synapse_card: str = ""
    """Device card the synapse device was built from (config ``model.synapse_card``; "": its defaults)."""


def fitted_surrogate(cfg: ModelConfig) -> Any | None:
    """The fitted surrogate named by cfg.surrogate_file for the neuron device cfg.neuron, or None."""
    return load_fitted(cfg.neuron, surrogate_path(cfg.surrogate_file, cfg.neuron)) if cfg.surrogate_file else None


def device_neurons(cfg: ModelConfig, n: int) -> nn.Module:
    """The device neuron layer of a network: `n` neurons of the device cfg.neuron (built from cfg.device_card if
    one is given), or the LIF baseline."""
    if cfg.neuron == "lif":
        return LIF(n)
    return neuron_device(cfg.neuron, cfg.device_card).layer(n, cfg, fitted_surrogate(cfg))


def array_read(cfg: ModelConfig, level_table: LevelTable | None = None) -> ArrayRead | None:
    """The crossbar the device-layer synapses are read through in training: None (the ideal product) unless
    cfg.ir_drop; then the array of cfg.r_wire ohm per segment in tiles of cfg.tile_rows x cfg.tile_cols, its pairs
    by the synapse device's level mapping (its card's, if given; level 0's conductance as the idle device, G+ - G-
    per level from the level table where it is made of conductances, else the mapping's), first order with the
    analytic coefficients of the RRAM read law at the mapping's v_read (`cosim.surrogates.crossbar_fit.ArrayRead`)."""
    if not cfg.ir_drop:
        return None
    mapping = dataclasses.replace(synapse_device(cfg.synapse, cfg.synapse_card).mapping(),
                                  weight_max=max_level(cfg.bits))
    g_unit = level_table.g_unit if isinstance(level_table, ConductanceLevels) else mapping.weight_step_s
    model = CrossbarModel(cfg.r_wire, mapping.v_read, correction=ReadCorrection.analytic(mapping.v_read))
    return ArrayRead(model, TileConfig(cfg.tile_rows, cfg.tile_cols), mapping.levels_s[0], g_unit)


def _check_input(name: str, x: torch.Tensor, channels: int) -> None:
    if x.dim() != 3 or x.shape[-1] != channels:
        raise ValueError(f"{name} expects inputs [batch, steps, {channels}], got {tuple(x.shape)}")


class MusicPredictor(nn.Module):
    """keys -> `hidden` device neurons (no recurrence) -> linear readout with bias: logits of the next step.

    Input synapses are non-negative at initialisation (uniform[0, sqrt(1/hidden)]) and quantised to cfg.bits;
    the readout is a float layer.
    """

    def __init__(self, n_keys: int, cfg: ModelConfig, level_table: LevelTable | None = None):
        super().__init__()
        self.n_keys = n_keys
        self.synapses = QuantizedLinear(n_keys, cfg.hidden, bits=cfg.bits, bias=False, level_table=level_table,
                                        array=array_read(cfg, level_table))
        with torch.no_grad():
            self.synapses.weight.uniform_(0.0, math.sqrt(1.0 / cfg.hidden))
        self.neurons = device_neurons(cfg, cfg.hidden)
        self.readout = nn.Linear(cfg.hidden, n_keys)
        self.devices = (cfg.neuron, cfg.synapse, cfg.device_card, cfg.synapse_card)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        """`ModelOutput` for keys x [batch, steps, keys] (0/1)."""
        _check_input("MusicPredictor", x, self.n_keys)
        spikes = self.neurons(self.synapses(x.transpose(0, 1)))
        return ModelOutput(self.readout(spikes).transpose(0, 1), {"hidden": spikes})

    def device_layer(self) -> DeviceLayerRef:
        """The layer that runs as a circuit: the key synapses into the hidden neurons."""
        return DeviceLayerRef("hidden", self.synapses, self.neurons, *self.devices)

    def presynaptic(self, x: torch.Tensor) -> torch.Tensor:
        """The device layer's input spikes [steps, batch, keys] for inputs x [batch, steps, keys]: the keys."""
        return x.transpose(0, 1)

    def logits(self, spikes: torch.Tensor) -> torch.Tensor:
        """`ModelOutput.logits` from the device layer's spikes [steps, batch, hidden]: the float readout."""
        return self.readout(spikes).transpose(0, 1)


class TactileClassifier(nn.Module):
    """Encoding (channels tiled cfg.encoding_repeat times, trainable gain and bias, LIF) -> quantised linear ->
    `hidden` LIF (with quantised recurrent synapses if cfg.recurrent) -> quantised linear -> `n_classes` device
    neurons; logits are the output spike counts.

    The encoding gains and biases start uniform in cfg.encoding_gain and cfg.encoding_bias (by default [0.5, 2]
    and [-0.5, 0.5]) so that the copies of a channel differ from the start; the synapse layers (hidden,
    recurrent, output) start at cfg.weight_scale times nn.Linear's default initial weights.
    """

    def __init__(self, n_channels: int, n_classes: int, cfg: ModelConfig, level_table: LevelTable | None = None):
        super().__init__()
        self.n_channels = n_channels
        self.repeat = cfg.encoding_repeat
        n_encoding = n_channels * cfg.encoding_repeat
        self.gain = nn.Parameter(torch.empty(n_encoding).uniform_(*cfg.encoding_gain))
        self.bias = nn.Parameter(torch.empty(n_encoding).uniform_(*cfg.encoding_bias))
        self.encoding = LIF(n_encoding)
        self.hidden_synapses = QuantizedLinear(n_encoding, cfg.hidden, bits=cfg.bits, bias=False)
        self.hidden = (RecurrentLIF(cfg.hidden, learn_decay=True, bits=cfg.bits) if cfg.recurrent
                       else LIF(cfg.hidden, learn_decay=True))
        self.output_synapses = QuantizedLinear(cfg.hidden, n_classes, bits=cfg.bits, bias=False,
                                               level_table=level_table, array=array_read(cfg, level_table))
        self.output = device_neurons(cfg, n_classes)
        self.devices = (cfg.neuron, cfg.synapse, cfg.device_card, cfg.synapse_card)
        with torch.no_grad():
            for synapses in (self.hidden_synapses, getattr(self.hidden, "recurrent", None), self.output_synapses):
                if synapses is not None:
                    synapses.weight.mul_(cfg.weight_scale)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        """`ModelOutput` for z-scored taxel signals x [batch, steps, channels]."""
        _check_input("TactileClassifier", x, self.n_channels)
        encoded = self.encoding(self.gain * x.transpose(0, 1).repeat(1, 1, self.repeat) + self.bias)
        hidden = self.hidden(self.hidden_synapses(encoded))
        output = self.output(self.output_synapses(hidden))
        return ModelOutput(output.sum(0), {"encoding": encoded, "hidden": hidden, "output": output})

    def device_layer(self) -> DeviceLayerRef:
        """The layer that runs as a circuit: the output synapses into the output neurons."""
        return DeviceLayerRef("output", self.output_synapses, self.output, *self.devices)

    def presynaptic(self, x: torch.Tensor) -> torch.Tensor:
        """The device layer's input spikes [steps, batch, hidden]: the hidden LIF spikes of a forward pass (which
        draws the software layers' stochastic weights from torch's RNG: seed it for a reproducible draw)."""
        return self(x).spikes["hidden"]

    def logits(self, spikes: torch.Tensor) -> torch.Tensor:
        """`ModelOutput.logits` from the device layer's spikes [steps, batch, classes]: the spike counts."""
        return spikes.sum(0)


SYNAPSE_LEVELS = "synapse_levels"
"""Name (in the run folder) of the programmed synapse population a run trains with (``.json`` + ``.npz``)."""


def device_level_table(cfg: ModelConfig, run_dir: Path, seed: int, progress: bool = True) -> LevelTable | None:
    """The level table of the device-layer synapses: None (uniform levels) unless cfg.synapse_levels is
    "programmed"; then the means and spreads of the synapse device's (built from cfg.synapse_card if one is given)
    write-verify Monte Carlo (cfg.synapse_devices per level, seeded), run once and kept in the run folder
    (`SYNAPSE_LEVELS`) so a resumed run and its verification use the same table."""
    if cfg.synapse_levels == "uniform":
        return None
    from cosim.devices.rram import ProgrammedLevels

    path = run_dir / SYNAPSE_LEVELS
    if path.with_suffix(".json").is_file() and path.with_suffix(".npz").is_file():
        levels = ProgrammedLevels.load(path)
    else:
        device = synapse_device(cfg.synapse, cfg.synapse_card)
        mapping = dataclasses.replace(device.mapping(), weight_max=max_level(cfg.bits))
        levels = device.program(mapping, cfg.synapse_devices, seed, progress)
        run_dir.mkdir(parents=True, exist_ok=True)
        levels.save(path)
    return ConductanceLevels(**levels.weight_level_table())


def build_model(cfg: ModelConfig, n_inputs: int, n_outputs: int, level_table: LevelTable | None = None) -> nn.Module:
    """The network cfg.network for `n_inputs` channels and `n_outputs` keys or classes.

    Initial weights and device variability are drawn from torch's global RNG: seed it first. `level_table`: that
    of the device-layer synapses (`device_level_table`; None: uniform levels).
    """
    if cfg.network == "music":
        if n_outputs != n_inputs:
            raise ValueError(f"the music predictor predicts its own inputs: n_outputs ({n_outputs}) must equal "
                             f"n_inputs ({n_inputs})")
        return MusicPredictor(n_inputs, cfg, level_table)
    return TactileClassifier(n_inputs, n_outputs, cfg, level_table)
