"""Device cards: a calibrated device's parameters as JSON, with how the fit went and where the data came from.

A card holds ``schema``, ``device`` (``fecap`` or ``rram``), ``converged``, ``parameters`` ({name: {value, unit,
fitted, bounds (fitted ones), std_error, relative_std_error, description}}), the fit's residuals, the errors on
fitted and held-out data (fast path and SPICE), ``data`` ([{path, sha256, kind, role}]) and ``citation``. A
calibration whose optimiser did not converge writes the same content to ``not_converged.json`` instead of
``device_card.json``, so that nothing downstream takes it for a calibrated device. The schema and the reading of a
card belong to the devices (`cosim.devices.card`: `read_card`, `load_card`); `cosim.devices.fecap.fecap_from_card`
and `cosim.devices.rram.rram_from_card` build a device from one.

Parameter uncertainty: from the Jacobian J of the residuals r at the solution (in the optimiser's variables, the
logarithm of parameters spanning decades), cov = s^2 (J^T J)^+ with s^2 = |r|^2 / (m - n); a standard error of a
log variable is a relative error of the parameter. Strongly correlated parameters (e.g. tau0 and e_a over one
decade of frequency) get large errors: the data do not separate them.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from cosim.calibrate.readers import file_sha256
from cosim.devices.card import CARD_NAME, NOT_CONVERGED_NAME, SCHEMA


@dataclass(frozen=True)
class FitOutcome:
    """How one least-squares fit ended."""

    converged: bool
    """The optimiser met a convergence test (scipy status > 0), not just its evaluation limit."""
    message: str
    """The optimiser's own words."""
    evaluations: int
    """Model evaluations used."""
    residual_rms: float
    """Root-mean-square of the weighted residuals at the solution (the residuals' unit)."""
    residual_count: int
    """Number of residuals."""
    std_errors: dict[str, float]
    """Standard error of each fitted parameter, in its unit."""
    relative_std_errors: dict[str, float]
    """Standard error over the value (for log-scaled parameters: of its logarithm)."""
    correlation: dict[str, dict[str, float]]
    """Correlation of the fitted parameters' estimates."""

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"converged": self.converged, "message": self.message, "evaluations": self.evaluations,
                "residual_rms": self.residual_rms, "residual_count": self.residual_count,
                "correlation": self.correlation}


def fit_outcome(result: Any, names: Sequence[str], logs: Sequence[bool], values: Sequence[float]) -> FitOutcome:
    """A `scipy.optimize.least_squares` result as a `FitOutcome`: parameter `names`, whether each was fitted
    as a logarithm, and the fitted `values` (physical units)."""
    jac, residuals = np.asarray(result.jac), np.asarray(result.fun)
    m, n = jac.shape
    variance = float(residuals @ residuals) / max(m - n, 1)
    covariance = variance * np.linalg.pinv(jac.T @ jac)
    sd = np.sqrt(np.clip(np.diag(covariance), 0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = covariance / np.outer(sd, sd)
    std, rel = {}, {}
    for name, log, value, s in zip(names, logs, values, sd):
        std[name] = float(abs(value) * s if log else s)
        rel[name] = float(s if log else (s / abs(value) if value else float("inf")))
    return FitOutcome(bool(result.status > 0), str(result.message), int(result.nfev),
                      float(np.sqrt(np.mean(residuals ** 2))) if m else 0.0, int(m), std, rel,
                      {a: {b: _finite(corr[i, j]) for j, b in enumerate(names)} for i, a in enumerate(names)})


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def citation_for(path: str | Path) -> str:
    """The "Source:" entry of the SOURCE.md next to a data file (or one folder up), "" if there is none."""
    for folder in (Path(path).parent, Path(path).parent.parent):
        source = folder / "SOURCE.md"
        if source.is_file():
            match = re.search(r"^- Source:(.*?)(?=^- |\Z)", source.read_text(), flags=re.S | re.M)
            if match:
                return " ".join(match.group(1).split())
    return ""


def provenance(files: Sequence[tuple[str | Path, str, str]]) -> tuple[list[dict], list[str]]:
    """([{path, sha256, kind, role}], citations) of the data files given as (path, kind, role)."""
    data = [{"path": str(Path(p).resolve()), "sha256": file_sha256(p), "kind": kind, "role": role}
            for p, kind, role in files]
    citations = sorted({c for c in (citation_for(p) for p, _, _ in files) if c})
    return data, citations


def write_card(out: str | Path, card: dict) -> Path:
    """Write `card` (with schema and time stamp added) to OUT/device_card.json if it converged, else to
    OUT/not_converged.json (removing a stale device_card.json); returns the path written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    card = {"schema": SCHEMA, "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), **card}
    path = out / (CARD_NAME if card["converged"] else NOT_CONVERGED_NAME)
    if not card["converged"]:
        (out / CARD_NAME).unlink(missing_ok=True)
    path.write_text(json.dumps(card, indent=1, default=_json_default) + "\n")
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def report_head(title: str, card: dict, residual_unit: str, units: bool) -> list[str]:
    """The first lines of a calibration's report.md: title, convergence, the parameter table (with a unit column
    if `units`)."""
    lines = [f"# {title}", "", f"Converged: **{card['converged']}** ({card['fit']['message']}, "
             f"{card['fit']['evaluations']} iterations, weighted residual RMS {card['fit']['residual_rms']:.3g}"
             f"{residual_unit}).", "",
             "| parameter | value |" + (" unit |" if units else "") + " fitted | std error | bounds |",
             "|---|---|" + ("---|" if units else "") + "---|---|---|"]
    for name, p in card["parameters"].items():
        error = (f"{p['std_error']:.2g} ({100 * p['relative_std_error']:.0f} %) | {p['bounds'][0]:g} .. "
                 f"{p['bounds'][1]:g}") if p["fitted"] else " |"
        lines.append(f"| {name} | {p['value']:.4g} |" + (f" {p['unit']} |" if units else "")
                     + f" {'yes' if p['fitted'] else 'held'} | {error} |")
    return lines


def report_tail(card: dict, figures: Sequence[str]) -> list[str]:
    """The last lines of a calibration's report.md: the figures, the data files and their sources."""
    return (["", "## Figures", ""] + [f"![{f}]({f})" for f in figures]
            + ["", "## Data", ""] + [f"- {d['role']} {d['kind']}: `{d['path']}` (sha256 {d['sha256'][:16]}...)"
                                     for d in card["data"]]
            + [""] + [f"Source: {c}" for c in card["citation"]])
