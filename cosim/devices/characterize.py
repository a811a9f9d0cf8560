"""`cosim characterize NAME`: one registry of device characterisations.

A characterisation is a function ``(out_dir, quick: bool) -> summary dict`` that runs its testbenches through the
engine (`cosim.spice.run_many`, in parallel), writes data files (npz/csv) and PNG plots into `out_dir` and returns
its key figures. `characterize` runs one by name and writes the summary to ``out_dir/summary.json``. `quick` asks
for a small, fast version (tests, the README demo).

Circuits register their characterisation as "module:function" in CHARACTERIZERS (imported on first use, so that
`cosim --help` does not import the device modules); neuron and synapse devices (`cosim.devices.plugins`) are added
when they are registered, plug-ins from outside cosim included.
"""
from __future__ import annotations

import difflib
import functools
import importlib
import json
from pathlib import Path
from typing import Callable

Characterizer = Callable[[Path, bool], dict]

CHARACTERIZERS: dict[str, str | Characterizer] = {
    "fecap": "cosim.devices.fecap:characterize_fecap",
    "crossbar": "cosim.devices.crossbar:characterize_crossbar",
}
"""Name -> its characterisation, or the "module:function" where it is."""


def characterization_names() -> list[str]:
    """Every registered characterisation (device plug-ins loaded), in registration order."""
    from cosim.devices.plugins import load_plugins

    load_plugins()
    return list(CHARACTERIZERS)


def characterizer(name: str) -> Characterizer:
    """The characterisation function registered as `name`; PluginError with the nearest name if there is none."""
    from cosim.devices.plugins import PluginError

    if name not in characterization_names():
        near = difflib.get_close_matches(name, list(CHARACTERIZERS), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise PluginError(f"nothing to characterise named {name!r}{hint} Registered: {', '.join(CHARACTERIZERS)}")
    entry = CHARACTERIZERS[name]
    if callable(entry):
        return entry
    module, function = entry.split(":")
    return getattr(importlib.import_module(module), function)


def card_of(name: str, device_card: str | Path = "", synapse_card: str | Path = "") -> str | Path:
    """The device card the characterisation `name` runs on: `device_card` (a neuron device's, e.g. FeLIF's FeCap
    card) for the FeCap and for neuron devices built from cards, `synapse_card` for synapse devices built from
    cards, "" for anything else (it runs on its defaults)."""
    from cosim.devices.plugins import NEURONS, SYNAPSES, load_plugins

    load_plugins()
    takes_cards = callable(getattr(NEURONS.get(name) or SYNAPSES.get(name), "with_card", None))
    if name == "fecap" or (name in NEURONS and takes_cards):
        return device_card
    return synapse_card if name in SYNAPSES and takes_cards else ""


def card_characterizer(name: str, card: str | Path) -> Characterizer:
    """The characterisation `name` of the calibrated device of the device card `card`: the FeCap with a FeCap
    card, or a neuron or synapse device that takes cards; PluginError for anything else."""
    from cosim.devices.plugins import NEURONS, SYNAPSES, PluginError, neuron_device, synapse_device

    characterizer(name)  # a name that is not registered is an error first
    if name == "fecap":
        from cosim.devices.fecap import characterize_fecap, fecap_from_card

        device, read = fecap_from_card(card)
        return functools.partial(characterize_fecap, device=device, card=read)
    if name in NEURONS:
        return neuron_device(name, card).characterize
    if name in SYNAPSES:
        return synapse_device(name, card).characterize
    raise PluginError(f"{name!r} is not built from a device card ({card}); characterise it without one")


def characterize(name: str, out: str | Path, quick: bool = False, card: str | Path = "") -> dict:
    """Run the characterisation `name` into folder `out` (created); write and return its summary. `card`: a device
    card whose calibrated device is characterised (`card_characterizer`)."""
    run = card_characterizer(name, card) if card else characterizer(name)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = run(out, quick)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    return summary
