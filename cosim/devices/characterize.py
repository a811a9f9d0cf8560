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


def characterize(name: str, out: str | Path, quick: bool = False) -> dict:
    """Run the characterisation `name` into folder `out` (created); write and return its summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = characterizer(name)(out, quick)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    return summary
