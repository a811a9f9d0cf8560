"""`cosim characterize {fecap,felif,rram,crossbar}`: one registry of device characterisations.

A characterisation is a function ``(out_dir, quick: bool) -> summary dict`` that runs its testbenches through the
engine (`cosim.spice.run_many`, in parallel), writes data files (npz/csv) and PNG plots into `out_dir` and returns
its key figures. `characterize` runs one by name and writes the summary to ``out_dir/summary.json``. `quick` asks
for a small, fast version (tests, the README demo).

Register a characterisation by adding its "module:function" to CHARACTERIZERS (imported on first use, so that
`cosim --help` does not import the device modules).
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Callable

Characterizer = Callable[[Path, bool], dict]

CHARACTERIZERS: dict[str, str] = {
    "fecap": "cosim.devices.fecap:characterize_fecap",
    "felif": "cosim.devices.felif:characterize_felif",
    "rram": "cosim.devices.rram:characterize_rram",
    "crossbar": "cosim.devices.crossbar:characterize_crossbar",
}
"""Device name -> "module:function" of its characterisation."""


def characterizer(name: str) -> Characterizer:
    """The characterisation function registered as `name`."""
    if name not in CHARACTERIZERS:
        raise ValueError(f"no characterisation named {name!r}; known: {sorted(CHARACTERIZERS)}")
    module, function = CHARACTERIZERS[name].split(":")
    return getattr(importlib.import_module(module), function)


def characterize(name: str, out: str | Path, quick: bool = False) -> dict:
    """Run the characterisation `name` into folder `out` (created); write and return its summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = characterizer(name)(out, quick)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    return summary
