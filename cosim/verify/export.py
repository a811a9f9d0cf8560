"""A trained network's device layer as a circuit: a synapse crossbar + neuron circuits in one ngspice netlist.

Any network that exposes `VerifiableNetwork`'s three methods (the paper's two do) is exported; its neuron and
synapse devices are the plug-ins it was built with (`cosim.devices.plugins`), so nothing here knows which devices
run. The rest of this docstring describes the shipped ones (FeLIF neurons, RRAM pairs).

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
coarse step as the reset clock (the neuron device's `circuits`; FeLIF's options, e.g. its FeCap's domain
count, through `HardwareConfig.neuron_options`). The neurons are the netlists as they are, input protection
included (clamp diodes hold the membrane within the training model's v_min..v_max under negative input);
nothing is added to them for verification.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import nn

from cosim.devices.crossbar import ARRAY_TILE, Crossbar, CrossbarConfig, TileConfig
from cosim.devices.plugins import NeuronBank, neuron_device, synapse_device
from cosim.devices.rram import LevelMapping, ProgrammedLevels
from cosim.snn.synapses import ArrayReader, ConductanceLevels, QuantizedLinear
from cosim.spice import SimJob
from cosim.train.models import DeviceLayerRef


class VerifiableNetwork(Protocol):
    """What SPICE verification needs of a network (`cosim.train.models.MusicPredictor` and `TactileClassifier`)."""

    def device_layer(self) -> DeviceLayerRef:
        """The layer that runs as a circuit."""

    def presynaptic(self, x: torch.Tensor) -> torch.Tensor:
        """The device layer's input spikes [steps, batch, inputs] (0/1) for network inputs [batch, steps, ...]."""

    def logits(self, spikes: torch.Tensor) -> torch.Tensor:
        """The task's logits (as `ModelOutput.logits`) from the device layer's spikes [steps, batch, neurons]."""


@dataclass(frozen=True)
class HardwareConfig:
    """How the device layer is built in the circuit (electrical choices the training model does not make)."""

    read_model: Literal["linear", "sinh"] = "linear"
    """Synapse read model of the crossbar (`CrossbarConfig.read_model`): chord conductance (fast) or the device's
    nonlinear read law."""
    r_wire: float = 0.0
    """Wire resistance per crossbar segment, ohm (0: ideal wires)."""
    tile: TileConfig = ARRAY_TILE
    """The array as built: tiles of at most tile.rows inputs x tile.cols pairs, each with its own wires, row
    drivers, virtual-ground sensing and mirrors into the neurons (`cosim.devices.crossbar.TileConfig`; README
    "Arrays as built"). With wire resistance verification simulates it in two stages (the tiles' outputs per
    input pattern, then the neurons on them: `Crossbar.staged_read`); with ideal wires the tiled array is
    exactly the untiled one, which is simulated (fewer sense sources and mirrors)."""
    programming: Literal["monte_carlo", "ideal"] = "monte_carlo"
    """monte_carlo: every device drawn from its level's write-verify population (programming spread);
    ideal: every device exactly on its target conductance."""
    levels_file: str = ""
    """A saved `ProgrammedLevels` (levels.json of ``cosim characterize <synapse>``); empty: a Monte Carlo of
    `levels_devices` devices per level is run (and cached in the run folder)."""
    levels_devices: int = 32
    """Devices per level of that Monte Carlo."""
    seed: int = 0
    """Seed of the programming: the Monte Carlo, and which programmed device every synapse gets."""
    edge: float = 100e-9
    """Rise and fall time of the input read pulses, s."""
    neuron_options: dict[str, Any] = field(default_factory=dict)
    """Circuit options of the neuron device (its `circuits` docstring), e.g. FeLIF's {"n_domains": 8}."""
    columns_per_job: int = 1
    """Neurons (crossbar columns) per SPICE job; 0: the whole layer in one netlist. With ideal wires the columns
    are independent, so splitting changes nothing but the size of each simulation, and small ones are much
    faster: every neuron's reset events shorten the time steps of the whole netlist, and the LU factorisation of
    the rows x columns block grows faster than its size (256 x 27, VACASK, sinh read: 10 ms of 27 columns per
    job 10 ms/time point, 1 column 0.15 ms; benchmarks/RESULTS.md, "SPICE at scale")."""
    simulator: Literal["auto", "vacask", "ngspice"] = "auto"
    """Simulator of the circuits: auto runs VACASK where the synapse's read model and the neurons have a VACASK
    circuit (`Crossbar.vacask_ready`; 3-7x faster than ngspice, the same spikes within a few us) and ngspice
    otherwise; ngspice stays the cross-check."""
    options: tuple[tuple[str, float], ...] = ()
    """Simulator options of every job (`cosim.spice.SimJob.options`, e.g. (("reltol", 1e-4),)); empty: the
    simulator's defaults."""
    max_step: float | None = None
    """Largest time step of the transients on either simulator, s; None: what the neuron device asks for on the
    simulator that runs (`NeuronBank.step_for`; FeLIF: 5 us on ngspice, 20 us on VACASK, `VACASK_MAX_STEP`)."""

    def __post_init__(self) -> None:
        if self.read_model not in ("linear", "sinh"):
            raise ValueError(f"HardwareConfig.read_model must be 'linear' or 'sinh', got {self.read_model!r}")
        if self.programming not in ("monte_carlo", "ideal"):
            raise ValueError(f"HardwareConfig.programming must be 'monte_carlo' or 'ideal', got {self.programming!r}")
        if self.r_wire < 0:
            raise ValueError(f"HardwareConfig.r_wire must be >= 0 ohm, got {self.r_wire}")
        if self.levels_devices < 2:
            raise ValueError(f"HardwareConfig.levels_devices must be >= 2, got {self.levels_devices}")
        if not self.edge > 0:
            raise ValueError("HardwareConfig.edge must be > 0 s")
        if self.simulator not in ("auto", "vacask", "ngspice"):
            raise ValueError(f"HardwareConfig.simulator must be 'auto', 'vacask' or 'ngspice', got {self.simulator!r}")
        if self.max_step is not None and not self.max_step > 0:
            raise ValueError(f"HardwareConfig.max_step must be > 0 s or None, got {self.max_step}")
        if self.columns_per_job < 0:
            raise ValueError(f"HardwareConfig.columns_per_job must be >= 0, got {self.columns_per_job}")


@dataclass(frozen=True)
class DeviceLayer:
    """The part of a network that runs as a circuit: quantised synapses into device neurons."""

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
    neurons: nn.Module
    """The training model's neuron layer (with `current_scale`, A per weight unit, and `dt`, s)."""
    neuron: str
    """Its neuron device."""
    synapse: str
    """The synapse device."""
    neuron_card: str = ""
    """Device card the neuron device is built from ("": its defaults)."""
    synapse_card: str = ""
    """Device card the synapse device is built from ("": its defaults)."""
    siemens_per_level: float | None = None
    """G+ - G- of one level unit of the level table, S, where the table is made of conductances
    (`ConductanceLevels.g_unit`); None: the synapse mapping's nominal weight step."""
    array: ArrayReader | None = None
    """The array model the synapses were trained through (`QuantizedLinear.array`, IR-drop-aware training), which
    the training model's currents then include; None: the ideal product."""

    @property
    def max_level(self) -> int:
        """L: the levels are -L..L."""
        return (len(self.level_means) - 1) // 2

    @property
    def inputs(self) -> int:
        return self.levels.shape[0]

    @property
    def n_neurons(self) -> int:
        return self.levels.shape[1]

    @property
    def dt(self) -> float:
        """Coarse step, s."""
        return float(self.neurons.dt)

    @property
    def current_per_level(self) -> float:
        """Input current of one level unit on one active input, A."""
        return float(self.neurons.current_scale) * self.step

    def currents(self, spikes: np.ndarray) -> np.ndarray:
        """Training-model input currents [steps, neurons] (A) for presynaptic spikes [steps, inputs] (0/1), through
        the layer's array model if it was trained with one."""
        weights = self.level_means[self.levels + self.max_level]
        x = np.asarray(spikes, dtype=float)
        if self.array is None:
            return self.current_per_level * (x @ weights)
        with torch.no_grad():
            read = self.array.read(torch.from_numpy(x), torch.from_numpy(weights.T.astype(float)), torch.tensor(1.0))
        return self.current_per_level * read.numpy()


def device_layer(model: nn.Module) -> DeviceLayer:
    """The device layer of a `VerifiableNetwork` with device neurons and quantised synapses."""
    missing = [m for m in ("device_layer", "presynaptic", "logits") if not callable(getattr(model, m, None))]
    if missing:
        raise TypeError(f"SPICE verification needs a network with device_layer(), presynaptic() and logits() "
                        f"(cosim.verify.export.VerifiableNetwork); {type(model).__name__} lacks {', '.join(missing)}")
    ref = model.device_layer()
    if ref.neuron == "lif":
        raise ValueError(f"the {ref.name} neurons are the software LIF baseline, not a device: only device neurons "
                         "have a circuit (model.neuron = \"felif\" or a neuron plug-in)")
    synapses = ref.synapses
    if not isinstance(synapses, QuantizedLinear) or synapses.level_table is None:
        raise ValueError(f"the {ref.name} synapses have float weights (model.bits = \"float\"): SPICE verification "
                         "maps quantised weight levels onto conductance pairs; train with model.bits = 3 or 4")
    levels, step = synapses.integer_levels()
    table = synapses.level_table
    means, _ = table.mean_spread()
    return DeviceLayer(name=ref.name, levels=levels.T.numpy().astype(np.int64), level_means=means.numpy(),
                       step=float(step), bits=int(synapses.bits), neurons=ref.neurons, neuron=ref.neuron,
                       synapse=ref.synapse, neuron_card=ref.neuron_card, synapse_card=ref.synapse_card,
                       siemens_per_level=table.g_unit if isinstance(table, ConductanceLevels) else None,
                       array=synapses.array)


# ------------------------------------------------------------------------------------------------ programming


def level_mapping(layer: DeviceLayer, base: LevelMapping) -> LevelMapping:
    """`base` with the weight levels of the layer's precision (3 bits: -3..3 on device levels 0, 2, 4, 6)."""
    if layer.max_level > base.n_levels - 1:
        raise ValueError(f"{layer.bits}-bit synapses have levels +-{layer.max_level}, more than a differential pair "
                         f"of {base.n_levels}-level devices holds (+-{base.n_levels - 1}); use 3 or 4 bits")
    return dataclasses.replace(base, weight_max=layer.max_level)


def programmed_levels(hw: HardwareConfig, synapse: str, cache: Path | None = None,
                      progress: bool = False, card: str = "") -> ProgrammedLevels:
    """The write-verify population the devices are drawn from: `hw.levels_file`, else a Monte Carlo of
    `hw.levels_devices` per level of the synapse device (built from the device card `card` if given) with
    `hw.seed` (read from / saved to `cache` folder, under a name with the card's SHA-256)."""
    if hw.levels_file:
        path = Path(hw.levels_file)
        if not path.with_suffix(".json").is_file() or not path.with_suffix(".npz").is_file():
            raise FileNotFoundError(f"programmed levels {path.with_suffix('.json')} (+ .npz) not found: give the "
                                    "levels.json that `cosim characterize <synapse>` writes")
        return ProgrammedLevels.load(path)
    device = synapse_device(synapse, card)
    tag = f"-card{device.card.sha256[:12]}" if card else ""
    cached = None if cache is None else cache / f"levels-{synapse}{tag}-n{hw.levels_devices}-seed{hw.seed}"
    if cached is not None and cached.with_suffix(".json").is_file() and cached.with_suffix(".npz").is_file():
        return ProgrammedLevels.load(cached)
    levels = device.program(device.mapping(), hw.levels_devices, hw.seed, progress)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        levels.save(cached)
    return levels


@dataclass(frozen=True)
class HardwareLayer:
    """A programmed chip: the crossbar holding the layer's weights and its neuron circuits."""

    layer: DeviceLayer
    """What it implements."""
    crossbar: Crossbar
    """Programmed conductances, read configuration and mirror gain."""
    neurons: NeuronBank
    """Circuit of each neuron."""
    hw: HardwareConfig
    """Electrical choices."""

    @property
    def simulator(self) -> Literal["vacask", "ngspice"]:
        """The simulator its jobs run on: `hw.simulator`, with "auto" resolved (VACASK where the circuits allow)."""
        if self.hw.simulator != "auto":
            return self.hw.simulator
        return "vacask" if self.crossbar.vacask_ready(self.neurons) else "ngspice"


def program(layer: DeviceLayer, hw: HardwareConfig, levels: ProgrammedLevels | None = None,
            fitted: Any | None = None) -> HardwareLayer:
    """Program the layer's levels into a crossbar: devices drawn from `levels` (needed unless hw.programming is
    "ideal") with a generator seeded by hw.seed; mirror gain by the module docstring's mapping. `fitted`: the
    surrogate the network was trained with (its neurons then run on the circuit it was fitted to)."""
    if layer.synapse_card and hw.read_model == "sinh":
        raise ValueError(f"HardwareConfig.read_model = 'sinh' reads the synapses with the default {layer.synapse} "
                         f"device's read law, not with that of the synapse card {layer.synapse_card}: use the "
                         "'linear' read model (each device at its programmed chord conductance)")
    base = levels.mapping if levels is not None else synapse_device(layer.synapse, layer.synapse_card).mapping()
    mapping = level_mapping(layer, base)
    siemens_per_level = layer.siemens_per_level or mapping.weight_step_s
    config = CrossbarConfig(r_wire=hw.r_wire, read_model=hw.read_model, v_read=mapping.v_read,
                            mirror_gain=layer.current_per_level / (mapping.v_read * siemens_per_level),
                            dt=layer.dt, edge=hw.edge, synapse=layer.synapse,
                            tile=hw.tile if hw.r_wire > 0 else TileConfig())  # ideal wires: tiles change nothing
    if hw.programming == "ideal":
        crossbar = Crossbar.from_weights(layer.levels, mapping, config)
    else:
        if levels is None:
            raise ValueError("program: programming = 'monte_carlo' needs the programmed levels (`programmed_levels`)")
        population = dataclasses.replace(levels, mapping=mapping)
        crossbar = Crossbar.from_weights(layer.levels, population, config, np.random.default_rng(hw.seed))
    neurons = neuron_device(layer.neuron, layer.neuron_card).circuits(layer.neurons, layer.dt, hw.neuron_options,
                                                                       fitted)
    if hw.max_step is not None:
        neurons = dataclasses.replace(neurons, max_step=hw.max_step, vacask_max_step=hw.max_step)
    return HardwareLayer(layer, crossbar, neurons, hw)


def sample_jobs(chip: HardwareLayer, spikes: np.ndarray, name: str, timeout: float = 3600.0,
                currents: np.ndarray | None = None) -> list[tuple[SimJob, range]]:
    """The transients of one sample: presynaptic `spikes` [steps, inputs] (0/1) as read pulses of one coarse
    step each into the chip, as (job, neurons it simulates) pairs, `hw.columns_per_job` neurons per job.

    Each job holds all rows and its columns of the crossbar and those columns' neurons, numbered from 0 in the
    job (`Crossbar.tran_job`); with the array's output `currents` [steps, neurons] (A, `Crossbar.staged_read`,
    the wired array's) it holds only the neurons, driven by them (`Crossbar.current_jobs`). Vectors: each
    neuron's membrane (``v(in<k>)``) and spike output.
    """
    if currents is not None:
        return chip.crossbar.current_jobs(currents, chip.neurons, chip.hw.columns_per_job, name, timeout,
                                          chip.simulator, chip.hw.options)
    return chip.crossbar.column_jobs(spikes, chip.neurons, chip.hw.columns_per_job, name, timeout, chip.simulator,
                                     chip.hw.options)
