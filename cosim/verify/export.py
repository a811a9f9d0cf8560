"""A trained network's device layer as a circuit: RRAM crossbar + FeLIF neuron circuits in one ngspice netlist.

What goes to SPICE is the layer of each network whose neurons are devices: the music predictor's 54 -> 150 input
synapses and its 150 FeLIF neurons (the float readout stays in software), the tactile classifier's 256 -> 27
output synapses and its 27 FeLIF neurons (the encoding and hidden LIF layers stay in software; their spikes are
the crossbar's inputs). `device_layer` extracts it from a model as a `DeviceLayer`.

Weights. The synapses are exported at their nearest integer level q (`QuantizedLinear.integer_levels`), the
deterministic weights a programmed chip holds (training draws a stochastic rounding on every call instead).
The training model's input current of neuron j in a coarse step with presynaptic spikes s_i (0/1) is

    I_j = current_scale * sum_i m(q_ji) * step * s_i                                              (A)

with m(q) the level table's mean of level q in level units (q itself for uniform levels) and step the weight
of one level in weight units. On the chip, q is the differential pair (G+, G-) of the RRAM `LevelMapping`
(G+ - G- = q * weight_step_s, nominally), every device drawn from its level's programmed population
(`ProgrammedLevels`, write-verify Monte Carlo) with a seeded generator, so the array carries the programming
spread. An input spike holds its row at v_read for one coarse step; the column's line currents are mirrored
into the neuron with gain

    mirror_gain = current_scale * step / (v_read * weight_step_s)                            (A/A)

so one level on one active input gives current_scale * step amperes in both. Example (shipped music config):
current_scale = 50 nA per weight unit, max|w| = 0.2 -> step = 0.2/3.5 = 0.057 units, v_read = 0.1 V,
weight_step_s = 20 uS -> 2.9 nA per level and mirror_gain = 1.4e-3. A network trained with a conductance level
table (`ConductanceLevels`, e.g. the programmed levels' means) uses that table's siemens per level unit instead
of the nominal weight_step_s, so the mean programmed currents are the ones it was trained with. With the
nominal mapping the programmed level 0 (the write-verify target closest to the reset state lands at ~8.8 uS,
1.2 uS under its 10 uS target) makes every pair 3-7 % stronger than its level: a verification shows it.

Neurons. Each FeLIF neuron becomes the FeLIF circuit of `cosim.devices.felif` fed at its membrane node by its
column's mirror, with the layer's FeLIFParameters (per-neuron values where the layer has device-to-device
variability; on a surrogate's fitted circuit, its physical parameters scaled by each neuron's factors) and the
coarse step as the reset clock. The training model keeps V in [-5, 5] V (REFERENCE.md); the
circuit has no such limit, so each membrane node gets a clamp to those rails (`membrane_clamp`; switch it off
with `HardwareConfig.membrane_clamp` to see the bare circuit). Without it a negative input (negative weights)
drives the node to -20 V and more, and the neuron then needs much longer to recover than the model's.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from cosim.devices.crossbar import Crossbar, CrossbarConfig
from cosim.devices.fecap import SHIPPED_DOMAIN_COUNTS, FeCapParameters
from cosim.devices.felif import NEURON_MAX_STEP, FeLIFCircuitParameters, circuit_files, neuron_element
from cosim.devices.rram import NETLIST_LIB, LevelMapping, ProgrammedLevels, program_levels
from cosim.felif.layer import FeLIFLayer
from cosim.felif.physics import V_CLIP, FeLIFParameters
from cosim.felif.step import StepConfig
from cosim.felif.variability import VARIED_FIELDS
from cosim.snn.synapses import ConductanceLevels, QuantizedLinear
from cosim.spice import Circuit, SimJob, Tran
from cosim.spice.elements import number
from cosim.train.models import MusicPredictor, TactileClassifier


@dataclass(frozen=True)
class HardwareConfig:
    """How the device layer is built in the circuit (electrical choices the training model does not make)."""

    read_model: Literal["linear", "sinh"] = "linear"
    """RRAM read model of the crossbar (`CrossbarConfig.read_model`): chord conductance (fast) or sinh law."""
    r_wire: float = 0.0
    """Wire resistance per crossbar segment, ohm (0: ideal wires)."""
    programming: Literal["monte_carlo", "ideal"] = "monte_carlo"
    """monte_carlo: every device drawn from its level's write-verify population (programming spread);
    ideal: every device exactly on its target conductance."""
    levels_file: str = ""
    """A saved `ProgrammedLevels` (levels.json of ``cosim characterize rram``); empty: a Monte Carlo of
    `levels_devices` devices per level is run (and cached in the run folder)."""
    levels_devices: int = 32
    """Devices per level of that Monte Carlo."""
    seed: int = 0
    """Seed of the programming: the Monte Carlo, and which programmed device every synapse gets."""
    edge: float = 100e-9
    """Rise and fall time of the input read pulses, s."""
    n_domains: int = 1
    """Domains of the FeCap model in the neuron circuits (1: the single-state model the training layer
    computes); ignored when `neuron_circuit` is given."""
    neuron_circuit: FeLIFCircuitParameters | None = None
    """The neuron circuit of the hardware (clocked at the model's coarse step): for a network trained with a
    fitted surrogate, the device it was fitted to (`FeLIFSurrogate.circuit`). None: built from the layer's
    parameters with `n_domains`."""
    neuron_circuit_nominal: FeLIFParameters | None = None
    """The training-model parameters `neuron_circuit` stands for (the surrogate's fitted ones). A neuron whose
    varied parameters (`cosim.felif.variability.VARIED_FIELDS`, device-to-device variability) differ from these
    gets the circuit's physical parameters scaled by the same factors, so every circuit is its neuron's device
    instance. None: every neuron gets `neuron_circuit` as it is."""
    max_step: float = NEURON_MAX_STEP
    """Largest time step of the transient (and output step of the membrane voltages and spike outputs), s."""
    membrane_clamp: bool = True
    """Clamp every membrane node to [-V_CLIP, V_CLIP] (`membrane_clamp`), as the training model keeps V; the FeLIF
    circuit itself has no clamp, and a negative input current (signed weights) drives it far below -5 V."""
    columns_per_job: int = 4
    """Neurons (crossbar columns) per SPICE job; 0: the whole layer in one netlist. With ideal wires the columns
    are independent, so splitting changes nothing but the size of each simulation, and small ones are much
    faster (every neuron's reset events shorten the time steps of the whole netlist)."""

    def __post_init__(self) -> None:
        if self.read_model not in ("linear", "sinh"):
            raise ValueError(f"HardwareConfig.read_model must be 'linear' or 'sinh', got {self.read_model!r}")
        if self.programming not in ("monte_carlo", "ideal"):
            raise ValueError(f"HardwareConfig.programming must be 'monte_carlo' or 'ideal', got {self.programming!r}")
        if self.r_wire < 0:
            raise ValueError(f"HardwareConfig.r_wire must be >= 0 ohm, got {self.r_wire}")
        if self.levels_devices < 2:
            raise ValueError(f"HardwareConfig.levels_devices must be >= 2, got {self.levels_devices}")
        if not self.max_step > 0 or not self.edge > 0:
            raise ValueError("HardwareConfig.max_step and edge must be > 0 s")
        if self.n_domains not in SHIPPED_DOMAIN_COUNTS:
            raise ValueError(f"HardwareConfig.n_domains must be one of the shipped FeCap models "
                             f"{SHIPPED_DOMAIN_COUNTS}, got {self.n_domains}")
        if self.columns_per_job < 0:
            raise ValueError(f"HardwareConfig.columns_per_job must be >= 0, got {self.columns_per_job}")
        if self.columns_per_job and self.r_wire > 0:
            raise ValueError("HardwareConfig: with wire resistance the columns share the row wires; simulate the "
                             "whole layer in one netlist (columns_per_job = 0)")

    def neuron(self, params: FeLIFParameters, dt: float) -> FeLIFCircuitParameters:
        """The circuit of a neuron with physics `params` clocked at the coarse step `dt` (s): `neuron_circuit` if
        given, else the single-domain reference FeCap or the N-domain one with the default spread of activation
        fields."""
        if self.neuron_circuit is not None:
            circuit = dataclasses.replace(self.neuron_circuit, t_clk=dt)
            if self.neuron_circuit_nominal is not None:
                circuit = _scaled_device(circuit, self.neuron_circuit_nominal, params)
            return circuit.validate()
        fecap = FeCapParameters.reference(params) if self.n_domains == 1 else FeCapParameters(params, self.n_domains)
        return FeLIFCircuitParameters(fecap=fecap, t_clk=dt).validate()


def _scaled_device(circuit: FeLIFCircuitParameters, nominal: FeLIFParameters,
                   params: FeLIFParameters) -> FeLIFCircuitParameters:
    """`circuit` with each varied physical parameter scaled by params / nominal (one neuron's variability)."""
    physics = circuit.fecap.physics
    scaled = {name: getattr(physics, name) * float(getattr(params, name)) / float(getattr(nominal, name))
              for name in VARIED_FIELDS if float(getattr(params, name)) != float(getattr(nominal, name))}
    return dataclasses.replace(circuit, fecap=circuit.fecap.replace(physics=physics.replace(**scaled)))


@dataclass(frozen=True)
class DeviceLayer:
    """The part of a network that runs as a circuit: quantised synapses into FeLIF neurons."""

    name: str
    """The layer's key in `ModelOutput.spikes` ("hidden" for music, "output" for tactile)."""
    levels: np.ndarray
    """Integer weight levels [inputs, neurons] (crossbar orientation: row i is input i)."""
    level_means: np.ndarray
    """Realised weight of each level -L..L, level units (the level table's means)."""
    step: float
    """Weight of one level, weight units."""
    bits: int
    """Synapse precision."""
    current_scale: float
    """Synaptic current gain, A per weight unit."""
    params: FeLIFParameters
    """Neuron parameters; a field may be a tensor of one value per neuron."""
    cfg: StepConfig
    """Coarse step and fine integration of the training model."""
    dtype: torch.dtype = torch.float32
    """Floating-point type the training model computes the neurons in."""
    siemens_per_level: float | None = None
    """G+ - G- of one level unit of the level table, S, where the table is made of conductances
    (`ConductanceLevels.g_unit`); None: the RRAM mapping's nominal weight step."""

    @property
    def max_level(self) -> int:
        """L: the levels are -L..L."""
        return (len(self.level_means) - 1) // 2

    @property
    def inputs(self) -> int:
        return self.levels.shape[0]

    @property
    def neurons(self) -> int:
        return self.levels.shape[1]

    @property
    def current_per_level(self) -> float:
        """Input current of one level unit on one active input, A."""
        return self.current_scale * self.step

    def currents(self, spikes: np.ndarray) -> np.ndarray:
        """Training-model input currents [steps, neurons] (A) for presynaptic spikes [steps, inputs] (0/1)."""
        weights = self.level_means[self.levels + self.max_level]
        return self.current_per_level * (np.asarray(spikes, dtype=float) @ weights)

    def neuron_parameters(self) -> list[FeLIFParameters]:
        """One parameter set (plain floats) per neuron."""
        fields = {f.name: getattr(self.params, f.name) for f in dataclasses.fields(self.params)}
        return [FeLIFParameters(**{name: _item(value, j) for name, value in fields.items()})
                for j in range(self.neurons)]


def _item(value: float | torch.Tensor, j: int) -> float:
    if isinstance(value, torch.Tensor) and value.numel() > 1:
        return float(value.reshape(-1)[j])
    return float(value)


def device_layer(model: nn.Module) -> DeviceLayer:
    """The device layer of a `MusicPredictor` or `TactileClassifier` with FeLIF neurons and quantised synapses."""
    if isinstance(model, MusicPredictor):
        name, synapses, neurons = "hidden", model.synapses, model.neurons
    elif isinstance(model, TactileClassifier):
        name, synapses, neurons = "output", model.output_synapses, model.output
    else:
        raise TypeError(f"SPICE verification knows the music predictor and the tactile classifier, not "
                        f"{type(model).__name__}")
    if not isinstance(neurons, FeLIFLayer):
        raise ValueError(f"the {name} neurons are {type(neurons).__name__}, not FeLIF: only FeLIF neurons have a "
                         "circuit (model.neuron = \"felif\")")
    if not isinstance(synapses, QuantizedLinear) or synapses.level_table is None:
        raise ValueError(f"the {name} synapses have float weights (model.bits = \"float\"): SPICE verification "
                         "maps quantised weight levels onto RRAM conductance pairs; train with model.bits = 3 or 4")
    levels, step = synapses.integer_levels()
    table = synapses.level_table
    means, _ = table.mean_spread()
    return DeviceLayer(name=name, levels=levels.T.numpy().astype(np.int64), level_means=means.numpy(),
                       step=float(step), bits=int(synapses.bits), current_scale=neurons.current_scale,
                       params=neurons.params, cfg=neurons.cfg, dtype=neurons.dtype,
                       siemens_per_level=table.g_unit if isinstance(table, ConductanceLevels) else None)


@torch.no_grad()
def presynaptic_spikes(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The device layer's input spikes [steps, batch, inputs] (0/1) for network inputs [batch, steps, channels]:
    the key roll itself for music; the hidden LIF layer's spikes of a forward pass for tactile (which draws the
    software layers' stochastic weights from torch's RNG: seed it for a reproducible draw)."""
    if isinstance(model, MusicPredictor):
        return inputs.transpose(0, 1)
    return model(inputs).spikes["hidden"]


@torch.no_grad()
def readout(model: nn.Module, spikes: torch.Tensor) -> torch.Tensor:
    """The task's logits (as `ModelOutput.logits`, batch first) from device-layer spikes [steps, batch, n]: the
    float readout for music, the spike counts for tactile."""
    if isinstance(model, MusicPredictor):
        return model.readout(spikes).transpose(0, 1)
    return spikes.sum(0)


# ------------------------------------------------------------------------------------------------ programming


def level_mapping(layer: DeviceLayer, base: LevelMapping = LevelMapping()) -> LevelMapping:
    """`base` with the weight levels of the layer's precision (3 bits: -3..3 on device levels 0, 2, 4, 6)."""
    if layer.max_level > base.n_levels - 1:
        raise ValueError(f"{layer.bits}-bit synapses have levels +-{layer.max_level}, more than a differential pair "
                         f"of {base.n_levels}-level devices holds (+-{base.n_levels - 1}); use 3 or 4 bits")
    return dataclasses.replace(base, weight_max=layer.max_level)


def programmed_levels(hw: HardwareConfig, cache: Path | None = None, progress: bool = False) -> ProgrammedLevels:
    """The write-verify population the devices are drawn from: `hw.levels_file`, else a Monte Carlo of
    `hw.levels_devices` per level with `hw.seed` (read from / saved to `cache` folder if given)."""
    if hw.levels_file:
        path = Path(hw.levels_file)
        if not path.with_suffix(".json").is_file() or not path.with_suffix(".npz").is_file():
            raise FileNotFoundError(f"programmed levels {path.with_suffix('.json')} (+ .npz) not found: give the "
                                    "levels.json that `cosim characterize rram` writes")
        return ProgrammedLevels.load(path)
    cached = None if cache is None else cache / f"levels-n{hw.levels_devices}-seed{hw.seed}"
    if cached is not None and cached.with_suffix(".json").is_file() and cached.with_suffix(".npz").is_file():
        return ProgrammedLevels.load(cached)
    levels = program_levels(hw.levels_devices, seed=hw.seed, progress=progress)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        levels.save(cached)
    return levels


@dataclass(frozen=True)
class HardwareLayer:
    """A programmed chip: the crossbar holding the layer's weights and its neurons' parameters."""

    layer: DeviceLayer
    """What it implements."""
    crossbar: Crossbar
    """Programmed conductances, read configuration and mirror gain."""
    neurons: tuple[FeLIFCircuitParameters, ...]
    """Circuit of each neuron."""
    hw: HardwareConfig
    """Electrical choices."""


def program(layer: DeviceLayer, hw: HardwareConfig, levels: ProgrammedLevels | None = None) -> HardwareLayer:
    """Program the layer's levels into a crossbar: devices drawn from `levels` (needed unless hw.programming is
    "ideal") with a generator seeded by hw.seed; mirror gain by the module docstring's mapping."""
    mapping = level_mapping(layer, levels.mapping if levels is not None else LevelMapping())
    siemens_per_level = layer.siemens_per_level or mapping.weight_step_s
    config = CrossbarConfig(r_wire=hw.r_wire, read_model=hw.read_model, v_read=mapping.v_read,
                            mirror_gain=layer.current_per_level / (mapping.v_read * siemens_per_level),
                            dt=layer.cfg.dt, edge=hw.edge)
    if hw.programming == "ideal":
        crossbar = Crossbar.from_weights(layer.levels, mapping, config)
    else:
        if levels is None:
            raise ValueError("program: programming = 'monte_carlo' needs the programmed levels (`programmed_levels`)")
        population = dataclasses.replace(levels, mapping=mapping)
        crossbar = Crossbar.from_weights(layer.levels, population, config, np.random.default_rng(hw.seed))
    neurons = tuple(hw.neuron(p, layer.cfg.dt) for p in layer.neuron_parameters())
    return HardwareLayer(layer, crossbar, neurons, hw)


CLAMP_CONDUCTANCE = 1e-3
"""Conductance of the membrane clamp beyond its limits, S."""
CLAMP_WIDTH = 1e-3
"""Voltage over which the membrane clamp turns on, V (softplus width)."""


def membrane_clamp(name: str, node: str, limit: float = V_CLIP) -> str:
    """A behavioural clamp holding `node` within [-limit, limit] V: the current g w (softplus((V - limit)/w) -
    softplus(-(V + limit)/w)) to ground, i.e. g (V -+ limit) outside the limits and < 1e-40 A a few tens of w
    inside them, so it never pulls V away from the interval."""
    def softplus(z: str) -> str:
        return f"(max({z}, 0) + ln(1 + exp(-abs({z}))))"  # overflow-free ln(1 + exp(z))

    v, w = f"V({node})", number(CLAMP_WIDTH)
    upper, lower = softplus(f"({v} - {number(limit)})/{w}"), softplus(f"-({v} + {number(limit)})/{w}")
    return f"B{name} {node} 0 I={number(CLAMP_CONDUCTANCE * CLAMP_WIDTH)}*({upper} - {lower})"


def membrane_vector(j: int) -> str:
    """Result vector of neuron j's membrane voltage, V."""
    return f"v(in{j})"


def spike_vector(j: int) -> str:
    """Result vector of neuron j's spike output, V (v_spk while the neuron is reset)."""
    return f"v(spk{j})"


def sample_jobs(chip: HardwareLayer, spikes: np.ndarray, name: str,
                timeout: float = 3600.0) -> list[tuple[SimJob, range]]:
    """The transients of one sample: presynaptic `spikes` [steps, inputs] (0/1) as read pulses of one coarse
    step each into the chip, as (job, neurons it simulates) pairs, `hw.columns_per_job` neurons per job.

    Each job holds all rows and its columns of the crossbar and those columns' neurons (node ``in<j>``, spike
    output ``spk<j>``, j the neuron's index in the layer); vectors: membrane voltage and spike output of each.
    """
    hw, crossbar = chip.hw, chip.crossbar
    spikes = np.asarray(spikes)
    width = hw.columns_per_job or crossbar.cols
    groups = [range(start, min(start + width, crossbar.cols)) for start in range(0, crossbar.cols, width)]
    sources = crossbar.input_sources(spikes)
    includes = (str(NETLIST_LIB),) if hw.read_model == "sinh" else ()
    includes += circuit_files(chip.neurons[0], "ngspice")["includes"]
    analysis = Tran(stop=len(spikes) * chip.layer.cfg.dt, step=hw.max_step, max_step=hw.max_step, method="gear")
    jobs = []
    for g, columns in enumerate(groups):
        part = Crossbar(crossbar.g_plus[:, columns], crossbar.g_minus[:, columns], crossbar.config)
        cards = [neuron_element(f"n{j}", f"in{j}", f"spk{j}", chip.neurons[j]).ngspice() for j in columns]
        if hw.membrane_clamp:
            cards += [membrane_clamp(f"clamp{j}", f"in{j}") for j in columns]
        body = "\n".join([part.netlist(sources, [f"in{j}" for j in columns]), *cards])
        outputs = tuple(v for j in columns for v in (membrane_vector(j), spike_vector(j)))
        circuit = Circuit(netlist=body, title=f"{name} columns {columns.start}-{columns.stop - 1}", includes=includes)
        jobs.append((SimJob(circuit, analysis, outputs, name=f"{name}-c{g}", timeout=timeout), columns))
    return jobs
