"""Device plug-ins: neuron and synapse devices chosen by name.

A device is an object with a few named methods (as CrossSim's devices and aihwkit's device configs): nothing
outside its own module knows which device runs. Training builds its device layers through `neuron_device(name)`
and `synapse_device(name)` (config keys ``model.neuron`` and ``model.synapse``), verification builds the circuit of
a trained layer through the same objects, and the command line offers what the registries hold.

A neuron device (`NeuronDevice`) gives
  ``parameters()``                 its default circuit parameters (a frozen dataclass with ``validate()``);
  ``sample(params, n, sigma, seed)`` n device-to-device variants of them (relative sigma, seeded);
  ``characterize(out, quick)``     testbenches through `cosim.spice.run_many`: data, plots, key figures (dict);
  ``layer(n, model, fitted)``      the training model: an ``nn.Module`` mapping input in weight units
                                   [steps, batch, n] to spikes [steps, batch, n] (0/1), with an attribute
                                   ``current_scale`` (A per weight unit); `model` is the training config's
                                   [model] section, `fitted` the surrogate artifact named there (or None);
  ``circuits(layer, dt, options, fitted)`` the layer's neurons as circuits (`NeuronBank`), one per neuron,
                                   clocked at the coarse step dt (s); `options` are device-specific circuit
                                   choices (a mapping, e.g. FeLIF's ``n_domains``);
  ``reference(layer, currents, dt, sample_every)`` the training model's response to input currents
                                   [steps, n] (A): one `NeuronResponse` per neuron, the side that SPICE is
                                   compared with.

A synapse device (`SynapseDevice`) gives
  ``parameters()``, ``sample(params, n, sigma, seed)``, ``characterize(out, quick)`` as above;
  ``mapping()``                    its default `LevelMapping`: target conductances inside its window, v_read;
  ``program(mapping, n_devices, seed, progress)`` the write-verify Monte Carlo of its programming policy:
                                   `ProgrammedLevels` (per-level conductances, pulses, convergence), the level
                                   table that training can use and the population verification draws from;
  ``read_card(ref, a, b, conductance, v_read)`` an ngspice card of one programmed device in a crossbar read
                                   (the device's own read law at the state of chord conductance `conductance`,
                                   S, at v_read), with ``read_libraries`` the files it needs;
  optionally ``read_card_vacask(ref, a, b, conductance, v_read)``, the same device as a VACASK card, with
                                   ``read_verilog_a`` (Verilog-A sources) and ``read_vacask_preamble`` (model
                                   statements) it needs: without it a crossbar with the device's own read law runs
                                   on ngspice only (`cosim.devices.crossbar.Crossbar.vacask_ready`).

A device built from a device card (a calibrated device, `cosim.devices.card`) also gives
  ``card_kind``                    the kind of card it takes ("fecap", "rram");
  ``with_card(path)``              the device with the card's parameters (what the card does not hold stays
                                   default; ``.card`` is the `DeviceCard` read, for provenance).
`neuron_device(name, card)` and `synapse_device(name, card)` return that device; a device without ``with_card``
given a card is a PluginError naming it.

Register with `register_neuron` / `register_synapse`; a device missing a method fails there, naming it. Devices
outside cosim are found by importing the modules named in the ``COSIM_PLUGINS`` environment variable (module
names or ``.py`` paths, separated by commas) and those installed under the ``cosim.devices`` entry-point group;
importing such a module registers its devices.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from cosim.spice.elements import number

PLUGINS_ENV = "COSIM_PLUGINS"
"""Environment variable naming plug-in modules to import (module names or .py paths, comma-separated)."""
ENTRY_POINT_GROUP = "cosim.devices"
"""Entry-point group of installed plug-in packages (each entry point is a module to import)."""


class PluginError(ValueError):
    """A device that cannot be registered or found."""


@dataclass(frozen=True)
class NeuronBank:
    """One neuron subcircuit per crossbar column, fed at its ``in`` port by the column's mirrored current."""

    subckt: str
    """Subcircuit name."""
    libraries: tuple[str, ...]
    """ngspice library files that define it (and what it instantiates)."""
    ports: tuple[str, ...]
    """The instance's nodes in port order: "in" is the column's input node, "0" ground; any other name is a
    node of the neuron's own, suffixed with the column index (``spk`` -> ``spk<j>``)."""
    params: tuple[tuple[tuple[str, float], ...], ...] = ((),)
    """Instance parameters of each neuron; a single entry is shared by every column."""
    max_step: float | None = None
    """Largest time step the neuron needs in a transient, s (None: no limit)."""
    vacask_max_step: float | None = None
    """Largest time step on VACASK where it differs from `max_step`, s (None: `max_step`)."""
    method: Literal["trap", "gear"] | None = None
    """Integration method the neuron needs (None: the simulator's default)."""
    spike_port: str = ""
    """Port whose voltage rises when the neuron spikes ("" if the neuron has no spike output)."""
    spike_level: float = 0.5
    """Voltage of `spike_port` above which the neuron is spiking, V (a spike is an upward crossing)."""
    vacask_libraries: tuple[str, ...] = ()
    """VACASK netlist files that define the same subcircuit (same name, ports and parameters); empty: the neuron
    runs on ngspice only."""
    verilog_a: tuple[str, ...] = ()
    """Verilog-A sources the VACASK subcircuit instantiates (compiled by OpenVAF before the run)."""

    def __post_init__(self) -> None:
        if "in" not in self.ports:
            raise PluginError(f"NeuronBank {self.subckt}: ports {self.ports} have no 'in' port")
        if self.spike_port and self.spike_port not in self.ports:
            raise PluginError(f"NeuronBank {self.subckt}: spike port {self.spike_port!r} is not one of {self.ports}")
        if not self.params:
            raise PluginError(f"NeuronBank {self.subckt}: params needs one entry (shared) or one per neuron")

    def node(self, port: str, j: int) -> str:
        """Netlist node of `port` of column j's neuron."""
        return port if port == "0" else f"{port}{j}"

    def neuron_params(self, j: int) -> tuple[tuple[str, float], ...]:
        """Instance parameters of neuron j."""
        return self.params[0] if len(self.params) == 1 else self.params[j]

    def select(self, columns: Sequence[int]) -> "NeuronBank":
        """The bank of the neurons `columns` only (numbered 0.. in that order)."""
        if len(self.params) == 1:
            return self
        return dataclasses.replace(self, params=tuple(self.params[j] for j in columns))

    def step_for(self, simulator: str) -> float | None:
        """Largest time step the neuron needs on `simulator`, s (None: no limit)."""
        return self.vacask_max_step if simulator == "vacask" and self.vacask_max_step else self.max_step

    def supports(self, simulator: str) -> bool:
        """Whether the bank has a circuit for `simulator` ("ngspice" always; "vacask" with `vacask_libraries`)."""
        return simulator == "ngspice" or (simulator == "vacask" and bool(self.vacask_libraries))

    def cards(self, n: int, simulator: str = "ngspice") -> list[str]:
        """Instance cards of n neurons, ``Xn<j>``, in the netlist dialect of `simulator`."""
        if not self.supports(simulator):
            raise PluginError(f"NeuronBank {self.subckt}: no {simulator} circuit (vacask_libraries is empty); "
                              "simulate it with ngspice")
        cards = []
        for j in range(n):
            assignments = " ".join(f"{k}={number(v)}" for k, v in self.neuron_params(j))
            nodes = " ".join(self.node(p, j) for p in self.ports)
            nodes = nodes if simulator == "ngspice" else f"({nodes})"
            cards.append(f"Xn{j} {nodes} {self.subckt} {assignments}".rstrip())
        return cards


@dataclass(frozen=True)
class NeuronResponse:
    """One neuron's response in the training model: membrane voltage on a time grid and spike times."""

    t: np.ndarray
    """Sample times, s."""
    v: np.ndarray
    """Membrane voltage at `t`, V."""
    spikes: np.ndarray
    """Spike times, s."""


class NeuronDevice(Protocol):
    """A neuron device (see the module docstring for what each method gives)."""

    name: str
    """Registry key, e.g. "felif"."""

    def parameters(self) -> Any: ...

    def sample(self, params: Any, n: int, sigma: float, seed: int) -> list[Any]: ...

    def characterize(self, out: Path, quick: bool) -> dict: ...

    def layer(self, n: int, model: Any, fitted: Any | None) -> Any: ...

    def circuits(self, layer: Any, dt: float, options: Mapping[str, Any], fitted: Any | None) -> NeuronBank: ...

    def reference(self, layer: Any, currents: np.ndarray, dt: float, sample_every: float) -> list[NeuronResponse]: ...


class SynapseDevice(Protocol):
    """A synapse device (see the module docstring for what each method gives)."""

    name: str
    """Registry key, e.g. "rram"."""
    read_libraries: tuple[str, ...]
    """ngspice files the cards of `read_card` need."""

    def parameters(self) -> Any: ...

    def sample(self, params: Any, n: int, sigma: float, seed: int) -> list[Any]: ...

    def characterize(self, out: Path, quick: bool) -> dict: ...

    def mapping(self) -> Any: ...

    def program(self, mapping: Any, n_devices: int, seed: int, progress: bool) -> Any: ...

    def read_card(self, ref: str, a: str, b: str, conductance: float, v_read: float) -> str: ...


NEURON_METHODS = ("parameters", "sample", "characterize", "layer", "circuits", "reference")
SYNAPSE_METHODS = ("parameters", "sample", "characterize", "mapping", "program", "read_card")

NEURONS: dict[str, NeuronDevice] = {}
"""Registered neuron devices by name."""
SYNAPSES: dict[str, SynapseDevice] = {}
"""Registered synapse devices by name."""


def _register(registry: dict, kind: str, device: Any, methods: Sequence[str], attributes: Sequence[str] = ()) -> Any:
    name = getattr(device, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise PluginError(f"{kind} device {device!r}: needs a `name` attribute that is an identifier, got {name!r}")
    missing = [m for m in methods if not callable(getattr(device, m, None))]
    missing += [a for a in attributes if not hasattr(device, a)]
    if missing:
        raise PluginError(f"{kind} device {name!r} ({type(device).__module__}.{type(device).__qualname__}) lacks "
                          f"{', '.join(missing)}: a {kind} device implements {', '.join(methods + tuple(attributes))} "
                          "(cosim.devices.plugins)")
    registry[name] = device
    return device


def register_neuron(device: NeuronDevice) -> NeuronDevice:
    """Add a neuron device to the registry (replacing one of the same name); PluginError if a method is missing."""
    from cosim.devices.characterize import CHARACTERIZERS

    _register(NEURONS, "neuron", device, NEURON_METHODS)
    CHARACTERIZERS[device.name] = device.characterize
    return device


def register_synapse(device: SynapseDevice) -> SynapseDevice:
    """Add a synapse device to the registry (replacing one of the same name); PluginError if a method is missing."""
    from cosim.devices.characterize import CHARACTERIZERS

    _register(SYNAPSES, "synapse", device, SYNAPSE_METHODS, ("read_libraries",))
    CHARACTERIZERS[device.name] = device.characterize
    return device


_loaded: set[str] = set()


def load_plugins() -> None:
    """Import cosim's own devices, the modules of ``COSIM_PLUGINS`` and the ``cosim.devices`` entry points (each
    once); a module that cannot be imported is a PluginError naming it."""
    sources = ["cosim.devices.felif", "cosim.devices.rram", "cosim.devices.jart_vcm"]
    sources += [s.strip() for s in os.environ.get(PLUGINS_ENV, "").split(",") if s.strip()]
    sources += [ep.module for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)]
    for source in sources:
        if source in _loaded:
            continue
        _loaded.add(source)
        try:
            if source.endswith(".py"):
                _import_file(Path(source))
            else:
                importlib.import_module(source)
        except (ImportError, OSError, SyntaxError) as err:
            _loaded.discard(source)
            raise PluginError(f"device plug-in {source!r} (from {PLUGINS_ENV} or the {ENTRY_POINT_GROUP} entry "
                              f"points) cannot be imported: {err}") from None


def _import_file(path: Path) -> None:
    if not path.is_file():
        raise ImportError(f"no such file {path}")
    name = f"cosim_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


def _lookup(registry: dict, kind: str, name: str, card: str | Path = "") -> Any:
    load_plugins()
    if name not in registry:
        near = difflib.get_close_matches(name, list(registry), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise PluginError(f"unknown {kind} device {name!r}{hint} Registered: {', '.join(sorted(registry))} "
                          f"(add your own with cosim.devices.plugins.register_{kind} in a module named in "
                          f"{PLUGINS_ENV})")
    device = registry[name]
    if not card:
        return device
    if not callable(getattr(device, "with_card", None)):
        raise PluginError(f"{kind} device {name!r} is not built from device cards (it has no with_card); "
                          f"{card} cannot be used with it")
    return device.with_card(card)


def neuron_device(name: str, card: str | Path = "") -> NeuronDevice:
    """The registered neuron device `name`, built from the device card at `card` if one is given; PluginError
    listing the registered ones and the nearest match, `cosim.devices.card.CardError` for a card it cannot use."""
    return _lookup(NEURONS, "neuron", name, card)


def synapse_device(name: str, card: str | Path = "") -> SynapseDevice:
    """The registered synapse device `name`, built from the device card at `card` if one is given; errors as
    `neuron_device`."""
    return _lookup(SYNAPSES, "synapse", name, card)


def neuron_names() -> list[str]:
    """Names of the registered neuron devices (plug-ins loaded)."""
    load_plugins()
    return sorted(NEURONS)


def synapse_names() -> list[str]:
    """Names of the registered synapse devices (plug-ins loaded)."""
    load_plugins()
    return sorted(SYNAPSES)

