"""Fit the FeLIF training model's parameters to reference traces (ngspice transients of the FeLIF circuit).

The model is `cosim.surrogates.felif_model.simulate`: the BRUNO forward pass with the trainer's fused kernel, in
float64. The fitted parameters are `FeLIFParameters` fields (by default A, E_a, alpha, tau0, P_s, C_par, I_dsc,
V_thr, V_reset), optimised in log space where positive, by `scipy.optimize.least_squares` (trust region
reflective, bounds) on one residual vector per stimulus set:

- V on the common sample grid where both neurons integrate (`Traces.integrating`), over the reference's V span
  and sqrt(samples): the V term of the cost is the squared V NRMSE;
- P likewise over 2 P_s, weighted `FitWeights.p`;
- one entry per reference spike: its time error over the preceding reference ISI if a model spike is paired
  with it (`traces.pair_spikes`), else `FitWeights.miss`; one entry per stimulus for the model's unpaired spikes
  (`FitWeights.miss` each), all over sqrt(reference spikes);
- a weak prior pulling each encoded parameter towards its start (`FitWeights.prior`).

The Jacobian is by forward differences in the encoded (log) parameters. Everything is deterministic: the same reference traces, start and options give the same parameters.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from scipy.optimize import least_squares
from tqdm.auto import tqdm

from cosim.felif.physics import FeLIFParameters
from cosim.felif.step import StepConfig
from cosim.surrogates.artifact import SurrogateArtifact, make_provenance, save
from cosim.surrogates.doe import Stimulus
from cosim.surrogates.felif import KIND, STEP_FIELDS, parameter_table
from cosim.surrogates.felif_model import simulate
from cosim.surrogates.guard import Support
from cosim.surrogates.report import GOALS, goal_met, write_felif_report
from cosim.surrogates.traces import Traces, compare, pair_spikes, preceding_intervals


@dataclass(frozen=True)
class FitParameter:
    """One fitted `FeLIFParameters` field and its bounds."""

    name: str
    """Field name."""
    lower: float
    """Lower bound, in the field's unit."""
    upper: float
    """Upper bound, in the field's unit."""
    log: bool = True
    """Optimise log(value) (positive parameters spanning decades) instead of the value."""

    def encode(self, value: float) -> float:
        return math.log(value) if self.log else value

    def decode(self, x: float) -> float:
        return math.exp(x) if self.log else x


def default_fit_parameters(base: FeLIFParameters = FeLIFParameters()) -> tuple[FitParameter, ...]:
    """A, E_a, alpha, tau0, P_s, C_par, I_dsc (log) and V_thr, V_reset (linear), bounds around `base`."""
    def around(name: str, factor: float) -> FitParameter:
        value = float(getattr(base, name))
        return FitParameter(name, value / factor, value * factor)

    return (around("area", 3.0), around("e_a", 1.5), FitParameter("alpha", 0.5, 3.0), around("tau0", 1e3),
            around("p_s", 3.0), around("c_par", 10.0), around("i_dsc", 100.0),
            FitParameter("v_thr", float(base.v_thr) - 0.5, float(base.v_thr) + 0.5, log=False),
            FitParameter("v_reset", float(base.v_reset) - 1.0, float(base.v_reset) + 1.0, log=False))


@dataclass(frozen=True)
class FitWeights:
    """Relative weights of the residual terms (see the module docstring)."""

    v: float = 1.0
    """V waveform term."""
    p: float = 0.3
    """P waveform term."""
    spike_time: float = 1.0
    """Paired spike-time errors (relative to the ISI)."""
    miss: float = 1.0
    """Residual of each unpaired spike (missing or extra)."""
    prior: float = 0.01
    """Pull of each encoded parameter towards its start value (per unit of log or of V): only settles directions
    the data cannot tell apart (e.g. E_a, alpha and tau0 trade off within the range of switching rates seen)."""


@dataclass(frozen=True)
class FitResult:
    """Outcome of `fit`."""

    params: FeLIFParameters
    """The fitted parameters (the base with the fitted fields replaced)."""
    fitted: tuple[FitParameter, ...]
    """What was fitted, with the bounds used."""
    start: FeLIFParameters
    """Where the optimiser started."""
    cost: float
    """Final cost, 0.5 * sum of squared residuals."""
    initial_cost: float
    """Cost at the start."""
    residual_terms: dict[str, float]
    """Final cost split by term: v, p, spike_time, unpaired, prior."""
    nfev: int
    """Model evaluations (each Jacobian counts as one batched evaluation)."""
    status: str
    """The optimiser's termination message."""
    wall_s: float
    """Time spent fitting, s."""


def with_values(base: FeLIFParameters, fitted: Sequence[FitParameter], x: np.ndarray) -> FeLIFParameters:
    """`base` with the fitted fields set from the optimiser vector x (encoded values)."""
    return base.replace(**{p.name: p.decode(float(v)) for p, v in zip(fitted, x)})


def residuals(reference: Sequence[Traces], model: Sequence[Traces], p_s: float,
              weights: FitWeights = FitWeights()) -> dict[str, np.ndarray]:
    """The residual terms of `model` against `reference` (same stimuli, same sample grid), by name."""
    v_span = float(np.ptp(np.concatenate([r.v[r.integrating()] for r in reference])))
    n_samples = sum(len(r.t) for r in reference)
    n_spikes = max(sum(len(r.spikes) for r in reference), 1)
    v, p, times, unpaired = [], [], [], []
    for ref, mod in zip(reference, model):
        both = ref.integrating() & mod.integrating()
        v.append(np.where(both, mod.v - ref.v, 0.0))
        p.append(np.where(both, mod.p - ref.p, 0.0))
        i, j = pair_spikes(ref.spikes, mod.spikes, ref.dt)
        errors = np.full(len(ref.spikes), weights.miss)
        errors[i] = weights.spike_time * (mod.spikes[j] - ref.spikes[i]) / preceding_intervals(ref.spikes)[i]
        times.append(errors)
        unpaired.append(len(mod.spikes) - len(j))
    return {
        "v": weights.v * np.concatenate(v) / (v_span * math.sqrt(n_samples)),
        "p": weights.p * np.concatenate(p) / (2 * p_s * math.sqrt(n_samples)),
        "spike_time": np.concatenate(times) / math.sqrt(n_spikes),
        "unpaired": weights.miss * np.asarray(unpaired, dtype=float) / math.sqrt(n_spikes),
    }


class _Objective:
    """Residuals and their forward-difference Jacobian (one model run per parameter set).

    The parameter sets of a Jacobian are run one after the other, not as one batch with per-neuron parameter
    tensors: the kernel's per-call cost of per-neuron coefficients exceeds what batching saves at these sizes.
    """

    def __init__(self, stimuli, reference, base, fitted, cfg, sample_every, weights, diff_step, bar):
        self.stimuli, self.reference, self.base, self.fitted = list(stimuli), list(reference), base, tuple(fitted)
        self.cfg, self.sample_every, self.weights, self.diff_step, self.bar = cfg, sample_every, weights, diff_step, bar
        self.p_s = float(base.p_s)
        self.x0 = np.array([p.encode(float(getattr(base, p.name))) for p in self.fitted])
        self.evaluations = 0

    def terms(self, x: np.ndarray) -> dict[str, np.ndarray]:
        traces = simulate(self.stimuli, with_values(self.base, self.fitted, x), self.cfg, self.sample_every)
        self.evaluations += 1
        if self.bar is not None:
            self.bar.update()
        prior = self.weights.prior * (x - self.x0)
        return residuals(self.reference, traces, self.p_s, self.weights) | {"prior": prior}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate(list(self.terms(x).values()))

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        steps = self.diff_step * np.maximum(1.0, np.abs(x))
        upper = np.array([p.encode(p.upper) for p in self.fitted])
        steps = np.where(x + steps > upper, -steps, steps)  # stay inside the bounds
        at_x = self(x)
        return np.stack([(self(x + np.eye(len(x))[i] * steps[i]) - at_x) / steps[i] for i in range(len(x))], axis=1)


def fit(
    stimuli: Sequence[Stimulus],
    reference: Sequence[Traces],
    start: FeLIFParameters = FeLIFParameters(),
    fitted: Sequence[FitParameter] | None = None,
    cfg: StepConfig = StepConfig(),
    sample_every: float = 100e-6,
    weights: FitWeights = FitWeights(),
    max_evaluations: int = 60,
    diff_step: float = 1e-3,
    progress: bool = True,
) -> FitResult:
    """Fit `fitted` fields of the training model (cfg: the trainer's dt, h, integrator) to `reference` traces of
    `stimuli`, starting from `start`; the other fields stay as in `start`.

    reference: one `Traces` per stimulus on the grid of `sample_every` (s), e.g. from the ngspice harness.
    max_evaluations bounds the optimiser's model evaluations (a Jacobian counts as one batched evaluation).
    """
    if len(stimuli) != len(reference):
        raise ValueError(f"fit: {len(stimuli)} stimuli but {len(reference)} reference traces")
    fitted = tuple(fitted if fitted is not None else default_fit_parameters(start))
    names = [p.name for p in fitted]
    unknown = sorted(set(names) - {f.name for f in dataclasses.fields(FeLIFParameters)})
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"fit: fitted parameters must be distinct FeLIFParameters fields; got {names}")
    x0 = np.array([p.encode(float(getattr(start, p.name))) for p in fitted])
    lower = np.array([p.encode(p.lower) for p in fitted])
    upper = np.array([p.encode(p.upper) for p in fitted])
    outside = [p.name for p, x, lo, hi in zip(fitted, x0, lower, upper) if not lo <= x <= hi]
    if outside:
        raise ValueError(f"fit: start value of {outside} outside the bounds")
    began = time.perf_counter()
    with tqdm(disable=not progress, desc="FeLIF fit", unit="model run") as bar:
        objective = _Objective(stimuli, reference, start, fitted, cfg, sample_every, weights, diff_step, bar)
        initial = objective(x0)
        solution = least_squares(objective, x0, jac=objective.jacobian, bounds=(lower, upper), method="trf",
                                 max_nfev=max_evaluations)
    params = with_values(start, fitted, solution.x)
    terms = objective.terms(solution.x)
    return FitResult(
        params=params, fitted=fitted, start=start, cost=float(solution.cost), initial_cost=0.5 * float(initial @ initial),
        residual_terms={name: 0.5 * float(r @ r) for name, r in terms.items()}, nfev=objective.evaluations,
        status=str(solution.message), wall_s=time.perf_counter() - began)


# ------------------------------------------------------------------------------------------ artifact pipeline


class ReferenceSimulator(Protocol):
    """What produces the reference traces: the FeLIF circuit in ngspice (`cosim.surrogates.felif_spice`), or
    any other simulator of the neuron (e.g. `ModelReference` for checking the machinery)."""

    files: tuple[str, ...]
    """Netlist and model files it simulates (hashed into the provenance)."""
    description: dict
    """What it simulates, for the artifact (``data.circuit``) and the report."""

    def simulators(self) -> dict[str, str]:
        """Simulator name -> version."""

    def __call__(self, stimuli: Sequence[Stimulus], sample_every: float) -> list[Traces]:
        """One `Traces` per stimulus on the grid of `sample_every` (s)."""


@dataclass(frozen=True)
class ModelReference:
    """The training model itself with given parameters as the reference: known ground truth for tests."""

    params: FeLIFParameters
    """The true parameters."""
    cfg: StepConfig = StepConfig()
    """Forward pass it runs with."""
    files: tuple[str, ...] = ()
    description: dict = dataclasses.field(default_factory=lambda: {"reference": "the training model (synthetic)"})

    def simulators(self) -> dict[str, str]:
        return {}

    def __call__(self, stimuli: Sequence[Stimulus], sample_every: float) -> list[Traces]:
        return simulate(stimuli, self.params, self.cfg, sample_every)


def support_of(stimuli: Sequence[Stimulus], model: Sequence[Traces]) -> Support:
    """The fit's support: the input current range of the stimuli and the V and P ranges the surrogate visited."""
    currents = np.concatenate([s.current for s in stimuli])
    v = np.concatenate([m.v for m in model])
    p = np.concatenate([m.p for m in model])
    return Support(i_in=(float(currents.min()), float(currents.max())), v=(float(v.min()), float(v.max())),
                   p=(float(p.min()), float(p.max())))


def _validation(stimuli: Sequence[Stimulus], reference: Sequence[Traces], model: Sequence[Traces],
                p_s: float) -> dict:
    comparison = compare(list(reference), list(model))
    summary = comparison.summary()
    summary["p_nrmse"] = float(np.sqrt(np.mean(comparison.p_errors**2)) / (2 * p_s))
    summary["per_stimulus"] = {s.name: compare([r], [m]).summary() for s, r, m in zip(stimuli, reference, model)}
    return summary


def make_surrogate(
    reference: ReferenceSimulator,
    out: str | Path,
    fit_stimuli: Sequence[Stimulus],
    holdout: Sequence[Stimulus],
    *,
    start: FeLIFParameters = FeLIFParameters(),
    fitted: Sequence[FitParameter] | None = None,
    cfg: StepConfig = StepConfig(),
    sample_every: float = 100e-6,
    weights: FitWeights = FitWeights(),
    max_evaluations: int = 60,
    seeds: dict[str, int] | None = None,
    notes: str = "",
    report_dir: str | Path | None = None,
    progress: bool = True,
) -> SurrogateArtifact:
    """Simulate the reference on the fit and held-out stimuli, fit, validate, and write the artifact at `out`
    with its validation report (in `report_dir`, default: the artifact's folder). Returns the artifact."""
    began = time.perf_counter()
    traces = reference(list(fit_stimuli) + list(holdout), sample_every)
    reference_fit, reference_holdout = traces[: len(fit_stimuli)], traces[len(fit_stimuli):]
    result = fit(fit_stimuli, reference_fit, start, fitted, cfg, sample_every, weights, max_evaluations,
                 progress=progress)
    model_fit = simulate(fit_stimuli, result.params, cfg, sample_every)
    model_holdout = simulate(holdout, result.params, cfg, sample_every)
    p_s = float(result.params.p_s)
    validation = {"holdout": _validation(holdout, reference_holdout, model_holdout, p_s),
                  "fit": _validation(fit_stimuli, reference_fit, model_fit, p_s)}
    validation["goals"] = {name: {"relation": relation, "target": target,
                                  "met": goal_met(name, validation["holdout"][name])}
                           for name, (relation, target) in GOALS.items()}
    surrogate = SurrogateArtifact(
        kind=KIND,
        parameters=parameter_table(result.params, tuple(p.name for p in result.fitted)),
        support=support_of(fit_stimuli, model_fit).to_dict(),
        provenance=make_provenance(reference.files, reference.simulators(), seeds or {},
                                   wall_s=time.perf_counter() - began),
        doe={"sample_every": sample_every, "fit": [s.to_dict() for s in fit_stimuli],
             "holdout": [s.to_dict() for s in holdout]},
        fit={"cost": result.cost, "initial_cost": result.initial_cost, "residual_terms": result.residual_terms,
             "model_runs": result.nfev, "status": result.status, "wall_s": result.wall_s,
             "weights": dataclasses.asdict(weights), "max_evaluations": max_evaluations,
             "fitted": [dataclasses.asdict(p) for p in result.fitted],
             "start": {p.name: float(getattr(result.start, p.name)) for p in result.fitted}},
        validation=validation,
        data={"step_config": {name: getattr(cfg, name) for name in STEP_FIELDS}, "circuit": reference.description},
        notes=notes)
    save(surrogate, out)
    write_felif_report(report_dir or Path(out).parent, surrogate, holdout, reference_holdout, model_holdout)
    return surrogate
