"""Device cards: a calibrated device's parameters as JSON, read by the devices that are built from them.

`cosim calibrate fecap|rram` (`cosim.calibrate.card.write_card`) writes a card; the devices read it here, so that
devices, surrogates, training and verification take a card without importing the calibration. A card holds

    schema      "cosim-device-card/1" (SCHEMA; another version is refused)
    device      "fecap" or "rram": which kind of device the card describes
    converged   true: the calibration converged (a record of one that did not is refused)
    parameters  {name: {"value": number, "unit": text (optional), "fitted": bool (optional), ...}}

and, beside them, what the calibration wrote for people (fit, residuals, errors, data files with SHA-256, citation)
and device-specific entries (a FeCap card's ``n_domains``). The names and units of a kind's parameters are the
device's (`load_card`'s `known`): an unknown name, a unit other than the expected one, a value that is no finite
number is an error naming the file and the field. A known parameter the card does not hold keeps the device's
default and is listed as such (`DeviceCard.defaults`), so what a run took from the card is on record.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

SCHEMA = "cosim-device-card/1"
"""Version tag of the card format."""
CARD_NAME = "device_card.json"
"""File name of a converged calibration's card."""
NOT_CONVERGED_NAME = "not_converged.json"
"""File name of the record of a calibration that did not converge."""
DIMENSIONLESS = ("", "1")
"""Units a card may give a dimensionless parameter."""


class CardError(ValueError):
    """A device card that cannot be used: names the file and the field."""


def card_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a card file's bytes: the card's identity in provenance."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_card(path: str | Path, device: str) -> dict:
    """The content of the device card at `path`, checked to be a converged card of kind `device` ("fecap" or
    "rram") with a ``parameters`` table; a CardError names the file and the field otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CardError(f"device card {path}: no such file")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CardError(f"device card {path}: not JSON ({err})") from None
    if not isinstance(card, dict):
        raise CardError(f"device card {path}: not a card (a JSON object with schema, device, converged, parameters)")
    for key in ("schema", "device", "converged", "parameters"):
        if key not in card:
            raise CardError(f"device card {path}: field {key!r} missing (a card has schema, device, converged, "
                            "parameters; `cosim calibrate` writes them)")
    if card["schema"] != SCHEMA:
        raise CardError(f"device card {path}: field 'schema' is {card['schema']!r}; this cosim reads {SCHEMA!r} "
                        "(recalibrate with this version's `cosim calibrate`)")
    if card["device"] != device:
        raise CardError(f"device card {path}: field 'device' is {card['device']!r}, where a {device!r} card is "
                        f"needed (a {card['device']} card describes another kind of device)")
    if card["converged"] is not True:
        raise CardError(f"device card {path}: field 'converged' is {card['converged']!r}: its calibration did not "
                        "converge, so it describes no calibrated device")
    if not isinstance(card["parameters"], dict) or not card["parameters"]:
        raise CardError(f"device card {path}: field 'parameters' must be a non-empty table of "
                        "{name: {value, unit}}")
    return card


@dataclass(frozen=True)
class DeviceCard:
    """A card as a device reads it: the known parameters it holds, checked, and those it does not hold."""

    path: Path
    """The card file."""
    sha256: str
    """SHA-256 of the file (`card_sha256`)."""
    device: str
    """Kind of device ("fecap", "rram")."""
    values: dict[str, float]
    """Parameter name -> value from the card, in the unit the device expects (SI)."""
    fitted: tuple[str, ...]
    """Names of `values` the calibration fitted (the others it held at the values given)."""
    defaults: tuple[str, ...]
    """Known parameters the card does not hold: they keep the device's default."""
    content: dict
    """The whole card as read (device-specific entries, fit record, data provenance)."""

    def to_dict(self) -> dict[str, Any]:
        """What a run or surrogate records of the card it used (provenance)."""
        return {"path": str(self.path.resolve()), "sha256": self.sha256, "device": self.device,
                "from_card": sorted(self.values), "fitted": list(self.fitted), "default": list(self.defaults),
                "created_utc": self.content.get("created_utc", "")}

    def number(self, key: str, default: float) -> float:
        """A top-level numeric entry of the card (e.g. a FeCap card's ``n_domains``), or `default` if absent;
        CardError naming the file and the field if it is there but no finite number."""
        if key not in self.content:
            return default
        return _finite(self.content[key], self.path, key)


def _finite(value: Any, path: Path, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CardError(f"device card {path}: field {where!r} must be a finite number, got {value!r}")
    return float(value)


def load_card(path: str | Path, device: str, known: Mapping[str, str]) -> DeviceCard:
    """Read the card at `path` for a device of kind `device` whose parameters are `known` ({name: unit}, "" for
    dimensionless): every parameter of the card must be known, carry a finite number as its value and, if it
    states a unit, the expected one. CardError naming the file and the field otherwise."""
    path = Path(path)
    card = read_card(path, device)
    values, fitted = {}, []
    for name, entry in card["parameters"].items():
        where = f"parameters.{name}"
        if name not in known:
            near = difflib.get_close_matches(name, list(known), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise CardError(f"device card {path}: field {where!r}: no {device} parameter of that name{hint}; "
                            f"known: {', '.join(known)}")
        if not isinstance(entry, dict) or "value" not in entry:
            raise CardError(f"device card {path}: field {where!r} must be a table with a 'value', got {entry!r}")
        values[name] = _finite(entry["value"], path, f"{where}.value")
        unit = entry.get("unit")
        expected = known[name]
        if unit is not None and not (unit == expected or (expected in DIMENSIONLESS and unit in DIMENSIONLESS)):
            raise CardError(f"device card {path}: field {where}.unit is {unit!r}; the device takes {name} in "
                            f"{expected or 'no unit (dimensionless)'!r}")
        if entry.get("fitted") is True:
            fitted.append(name)
    return DeviceCard(path, card_sha256(path), device, values, tuple(fitted),
                      tuple(name for name in known if name not in values), card)
