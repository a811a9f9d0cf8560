"""The FeLIF surrogate artifact: fitted `FeLIFParameters` and step configuration, with the support of the fit.

`load_felif()` reads ``surrogates/felif.json`` (or a given file) and gives what training needs:

    surrogate = load_felif()
    layer = FeLIFLayer(n, surrogate.params, surrogate.step_config(surrogate="tanh"), guard=surrogate.guard())

The artifact (kind "felif", `cosim.surrogates.artifact`) holds every `FeLIFParameters` field with its unit, its
default and whether it was fitted, the StepConfig fields the fit simulated with (dt, h, integrator) under
``data.step_config``, the circuit it was fitted to under ``data.circuit`` (and the device card that circuit's
FeCap came from under ``data.device_card``, if any), and the support (input current, V and
P ranges) for the validity guard.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from cosim.devices.fecap import FeCapParameters
from cosim.devices.felif import MODEL_LIMIT_FIELDS, FeLIFCircuitParameters
from cosim.felif.physics import FeLIFParameters
from cosim.felif.step import StepConfig
from cosim.surrogates import artifact
from cosim.surrogates.artifact import SurrogateArtifact
from cosim.surrogates.guard import Support, ValidityGuard

KIND = "felif"

UNITS = {
    "area": "m^2", "t_fe": "m", "t_int": "m", "eps_fe": "1", "eps_int": "1", "c_par": "F", "i_dsc": "A",
    "e_a": "V/m", "p_s": "C/m^2", "tau0": "s", "alpha": "1", "i0": "A/m^2", "v_t": "V", "v_thr": "V",
    "v_reset": "V", "v_min": "V", "v_max": "V", "e_guard": "V/m",
}
"""Unit of each FeLIFParameters field."""

STEP_FIELDS = ("dt", "h", "integrator")
"""StepConfig fields the surrogate was fitted with (the forward pass); the gradient options stay free."""


def parameter_table(params: FeLIFParameters, fitted: tuple[str, ...],
                    defaults: FeLIFParameters = FeLIFParameters()) -> dict[str, dict]:
    """The artifact's ``parameters`` section: every field with value, unit, default and fitted flag."""
    return {f.name: {"value": float(getattr(params, f.name)), "unit": UNITS[f.name],
                     "default": float(getattr(defaults, f.name)), "fitted": f.name in fitted}
            for f in dataclasses.fields(FeLIFParameters)}


def _validate(surrogate: SurrogateArtifact) -> None:
    """Kind validator: every FeLIFParameters field present, numeric and physical; step config and support."""
    names = [f.name for f in dataclasses.fields(FeLIFParameters)]
    missing = [name for name in names if name not in surrogate.parameters]
    if missing:
        raise ValueError(f"parameters {missing} missing")
    for name in names:
        value = surrogate.parameters[name]["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"parameter {name!r} value must be a number, got {value!r}")
    felif_parameters(surrogate).validate()
    step_config(surrogate)
    Support.from_dict(surrogate.support)


artifact.register_kind(KIND, _validate)


def felif_parameters(surrogate: SurrogateArtifact) -> FeLIFParameters:
    """The fitted `FeLIFParameters` of an artifact."""
    return FeLIFParameters(**{f.name: surrogate.value(f.name) for f in dataclasses.fields(FeLIFParameters)})


def step_config(surrogate: SurrogateArtifact, /, **overrides) -> StepConfig:
    """A StepConfig with the fitted forward-pass fields (dt, h, integrator) and `overrides` for the others
    (surrogate, beta, rate_grad). Overriding a fitted field is refused: the parameters hold only for it."""
    fixed = sorted(set(overrides) & set(STEP_FIELDS))
    if fixed:
        raise ValueError(f"step_config: {fixed} were fixed by the fit ({surrogate.data.get('step_config')}); "
                         "refit the surrogate for another forward pass")
    try:
        fields = {name: surrogate.data["step_config"][name] for name in STEP_FIELDS}
    except (KeyError, TypeError):
        raise ValueError(f"data.step_config must give {list(STEP_FIELDS)}") from None
    cfg = StepConfig(**fields, **overrides)
    cfg.substeps  # noqa: B018 (raises unless dt is a whole multiple of h)
    return cfg


@dataclass(frozen=True)
class FeLIFSurrogate:
    """A loaded FeLIF surrogate: what a training layer needs from the artifact."""

    artifact: SurrogateArtifact
    """The whole artifact (fit and validation records, provenance)."""
    path: Path
    """Where it was read from."""

    @property
    def params(self) -> FeLIFParameters:
        """Fitted device and neuron parameters."""
        return felif_parameters(self.artifact)

    @property
    def support(self) -> Support:
        """Ranges the fit covered."""
        return Support.from_dict(self.artifact.support)

    def step_config(self, /, **overrides) -> StepConfig:
        """The fitted forward pass (dt, h, integrator) with gradient options from `overrides`."""
        return step_config(self.artifact, **overrides)

    def guard(self, name: str = "FeLIF layer") -> ValidityGuard:
        """A fresh validity guard over this surrogate's support."""
        return ValidityGuard(self.support, name=f"{name} ({self.path.name})")

    @property
    def device_card(self) -> dict | None:
        """The device card whose device the surrogate was fitted to (`cosim.devices.card.DeviceCard.to_dict`:
        path, sha256, what came from the card), None for the default device."""
        return self.artifact.data.get("device_card")

    def circuit(self) -> FeLIFCircuitParameters:
        """The neuron circuit this surrogate was fitted to, with its physical (not the fitted) parameters: the
        hardware a network trained with this surrogate runs on, and so what SPICE verification simulates."""
        try:
            record = self.artifact.data["circuit"]
            values = record["parameters"]
            physics = FeLIFParameters(**{f.name: values[f.name] for f in dataclasses.fields(FeLIFParameters)
                                         if f.name not in MODEL_LIMIT_FIELDS})
            fecap = FeCapParameters(physics, n_domains=record["n_domains"], sigma_ea=record["sigma_ea"],
                                    ea_factors=tuple(record["ea_factors"]), p0=values["p0"])
            periphery = {f.name: values[f.name] for f in dataclasses.fields(FeLIFCircuitParameters)
                         if f.name != "fecap"}
        except (KeyError, TypeError) as err:
            raise ValueError(f"{self.path}: data.circuit does not describe the fitted neuron circuit "
                             f"(missing {err}); refit with `cosim fit felif`") from None
        return FeLIFCircuitParameters(fecap=fecap, **periphery).validate()


def load_felif(path: str | Path | None = None, check_provenance: bool = True) -> FeLIFSurrogate:
    """Read a FeLIF surrogate (default: the shipped ``surrogates/felif.json``); see `artifact.load` for errors
    and the provenance warning."""
    path = Path(path) if path is not None else artifact.default_path(KIND)
    return FeLIFSurrogate(artifact.load(path, kind=KIND, check_provenance=check_provenance), path)
