"""RRAM synapse surrogate: the programmed level table (mean and spread of the conductance of every device level)
and the read nonlinearity, fitted to the write-verify Monte Carlo and validated on a held-out draw.

What training sees of an RRAM synapse is the weight a differential pair realises after programming: per weight
level, the mean and the spread of G+ - G-. `fit_surrogate` (``cosim fit rram``) measures them:

1. the write-verify Monte Carlo of `cosim.devices.rram.program_levels` (default device-to-device and programming
   variability, VACASK with the compiled Verilog-A model) programs `devices_per_level` fresh devices to each of the
   8 target conductances; the table is each level's sample mean and standard deviation (ddof 1);
2. a second Monte Carlo with another seed (``seed + HOLDOUT_SEED_OFFSET``) is the held-out draw: the table's means
   and spreads are compared with it (goals of issue 5: means within 1 %, spreads within 10 %), next to the
   sampling standard errors of those differences;
3. the read characteristic: devices with the same variability, set to each level's mean conductance, swept in a
   DC analysis of the full model (ngspice) over +-2 v_read; ``I(V) = G v_read sinh(V/v0) / sinh(v_read/v0)`` (G the
   chord conductance at v_read, the table's unit) is fitted for v0. The crossbar read models use this law.

The artifact (kind "rram", `cosim.surrogates.artifact`) holds the means ``g_mean_<k>``, spreads ``g_spread_<k>``
(S) and ``read_v0`` (V) as parameters, the level mapping under ``data.mapping``; `load_rram` reads it and
`RRAMSurrogate.level_table(bits)` gives the `ConductanceLevels` that `QuantizedLinear(level_table=...)` draws from:

    layer = QuantizedLinear(256, 27, bits=3, level_table=load_rram().level_table(3))

The Monte Carlo populations are bounded by the verify band (target +- tolerance), not normal; the table keeps
the first two moments, which is what the quantised layer's Gaussian draw uses.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.optimize import least_squares  # noqa: E402

from cosim.devices.rram import (  # noqa: E402
    MODEL_VA,
    NETLIST_LIB,
    LevelMapping,
    ProgrammedLevels,
    RRAMParameters,
    RRAMVariability,
    WriteVerifyConfig,
    device_circuit,
    gap_for_conductance,
    gap_vector,
    program_levels,
    rram_element,
    sample_devices,
)
from cosim.snn.synapses import ConductanceLevels, max_level  # noqa: E402
from cosim.spice import SimJob, Tran, run_many  # noqa: E402
from cosim.spice.backend import get_backend  # noqa: E402
from cosim.spice.elements import Pwl, VoltageSource  # noqa: E402
from cosim.surrogates import artifact  # noqa: E402
from cosim.surrogates.artifact import SurrogateArtifact, make_provenance, save  # noqa: E402
from cosim.surrogates.report import DPI  # noqa: E402

KIND = "rram"

DEVICES_PER_LEVEL = 1024
"""Devices per level of each Monte Carlo draw of the shipped fit: the level-0 population has a long upper tail
(kurtosis ~10), so its standard deviation needs about a thousand devices to be known to a few %."""
QUICK_DEVICES_PER_LEVEL = 128
"""Devices per level of ``cosim fit rram --quick``."""
HOLDOUT_SEED_OFFSET = 10_000
"""The held-out draw uses seed + this (a different stream than any fit seed near it)."""
READ_DEVICES_PER_LEVEL = 4
"""Devices per level in the read sweep."""
READ_SWEEP_STEP = 0.01
"""Voltage step between the samples of the read sweep, V (it runs over -2 v_read .. 2 v_read)."""
READ_SWEEP_TIME = 10e-6
"""Duration of the read ramp, s: 1000x a programming pulse, far longer than any read."""

GOALS = {"mean_error_rel": 0.01, "spread_error_rel": 0.10}
"""Issue 5 goals: largest |table - held-out| / held-out over the levels, for means and for spreads."""

READ_LAW = "I(V) = G v_read sinh(V/v0) / sinh(v_read/v0), G the chord conductance at v_read"


# ------------------------------------------------------------------------------------------------- the artifact


def _mapping(surrogate: SurrogateArtifact) -> LevelMapping:
    m = surrogate.data["mapping"]
    return LevelMapping(tuple(m["levels_s"]), m["v_read"], m["tolerance_s"], m["weight_max"])


def _level_values(surrogate: SurrogateArtifact, prefix: str, n: int) -> np.ndarray:
    names = [f"{prefix}_{k}" for k in range(n)]
    missing = [name for name in names if name not in surrogate.parameters]
    if missing:
        raise ValueError(f"parameters {missing} missing (one per device level of data.mapping)")
    values = [surrogate.value(name) for name in names]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) for v in values):
        raise ValueError(f"{prefix}_<k> values must be finite numbers, got {values}")
    return np.asarray(values, dtype=float)


def _validate(surrogate: SurrogateArtifact) -> None:
    """Kind validator: a usable level mapping, one positive increasing mean and one spread >= 0 per level, v0 > 0."""
    try:
        mapping = _mapping(surrogate)
    except (KeyError, TypeError) as err:
        raise ValueError(f"data.mapping must give levels_s, v_read, tolerance_s and weight_max ({err})") from None
    means = _level_values(surrogate, "g_mean", mapping.n_levels)
    spreads = _level_values(surrogate, "g_spread", mapping.n_levels)
    if np.any(means <= 0) or np.any(np.diff(means) <= 0):
        raise ValueError(f"g_mean_<k> must be positive and increasing with the level, got {means.tolist()} S")
    if np.any(spreads < 0):
        raise ValueError(f"g_spread_<k> must be >= 0, got {spreads.tolist()} S")
    v0 = surrogate.value("read_v0")
    if isinstance(v0, bool) or not isinstance(v0, (int, float)) or not v0 > 0:
        raise ValueError(f"read_v0 must be a number > 0 V, got {v0!r}")


artifact.register_kind(KIND, _validate)


@dataclass(frozen=True)
class RRAMSurrogate:
    """A loaded RRAM surrogate: the programmed level table and the read law."""

    artifact: SurrogateArtifact
    """The whole artifact (Monte Carlo record, validation, provenance)."""
    path: Path
    """Where it was read from."""

    @property
    def mapping(self) -> LevelMapping:
        """Target levels, read voltage, verify band and the weight mapping the table was programmed with."""
        return _mapping(self.artifact)

    @property
    def means_s(self) -> np.ndarray:
        """Mean programmed chord conductance at v_read per device level, S."""
        return _level_values(self.artifact, "g_mean", self.mapping.n_levels)

    @property
    def spreads_s(self) -> np.ndarray:
        """Standard deviation of the programmed conductance per device level, S."""
        return _level_values(self.artifact, "g_spread", self.mapping.n_levels)

    @property
    def read_v0(self) -> float:
        """Voltage scale of the read law I ~ sinh(V/v0), V."""
        return float(self.artifact.value("read_v0"))

    def weight_mapping(self, bits: int) -> LevelMapping:
        """The level mapping for `bits`-bit weights (levels -L..L, L = 2^(bits-1) - 1) on these device levels."""
        mapping = self.mapping
        if not 1 <= max_level(bits) <= mapping.n_levels - 1:
            raise ValueError(f"the RRAM surrogate {self.path} has {mapping.n_levels} device levels: differential "
                             f"pairs give weights of at most {int(np.log2(mapping.n_levels)) + 1} bits, "
                             f"asked for {bits}")
        return dataclasses.replace(mapping, weight_max=max_level(bits))

    def level_table(self, bits: int = 3) -> ConductanceLevels:
        """The `ConductanceLevels` of `bits`-bit weights: weight level +q is the pair (G[s q], G[0]), -q is
        (G[0], G[s q]) with the programmed means and spreads (s: the mapping's stride, 2 for 3 bits)."""
        states = [self.weight_mapping(bits).pair_levels(q)[0] for q in range(max_level(bits) + 1)]
        return ConductanceLevels.from_device_states(self.means_s[states], self.spreads_s[states])


def load_rram(path: str | Path | None = None, check_provenance: bool = True) -> RRAMSurrogate:
    """Read an RRAM surrogate (default: the shipped ``surrogates/rram.json``); see `artifact.load` for the errors
    (`SurrogateFileError`) and the provenance warning."""
    path = Path(path) if path is not None else artifact.default_path(KIND)
    return RRAMSurrogate(artifact.load(path, kind=KIND, check_provenance=check_provenance), path)


# ------------------------------------------------------------------------------------------------ read law


def read_sweep_job(means_s: np.ndarray, mapping: LevelMapping, seed: int,
                   params: RRAMParameters = RRAMParameters(),
                   variability: RRAMVariability = RRAMVariability()) -> tuple[SimJob, np.ndarray]:
    """A read sweep: READ_DEVICES_PER_LEVEL devices per level, each a fresh device (variability drawn from `seed`)
    of the full model set to its level's mean conductance, driven together by a linear ramp from -2 v_read to
    2 v_read over READ_SWEEP_TIME (a transient: the gap integrates as in a read, and a DC sweep cannot be used
    because ngspice sets `time` to the swept value, which releases the model's DC pinning of the gap). Every
    device has its own 0 V sense source ``vs<k>``. Outputs: ``v(a)``, the sense currents, then the gaps (nm).
    Returns the job and the devices' chord conductances at v_read, S."""
    devices = sample_devices(READ_DEVICES_PER_LEVEL * len(means_s), params, variability, np.random.default_rng(seed))
    conductance = np.repeat(means_s, READ_DEVICES_PER_LEVEL)
    v_max = 2 * mapping.v_read
    elements = [VoltageSource("Vr", "a", "0", waveform=Pwl(((0.0, -v_max), (READ_SWEEP_TIME, v_max))))]
    gaps = []
    for k, (device, g) in enumerate(zip(devices, conductance)):
        gap = float(gap_for_conductance(g, mapping.v_read, device))
        elements.append(rram_element(f"d{k}", "a", f"b{k}", device.replace(gap_ini=gap), "ngspice"))
        gaps.append(gap_vector(elements[-1]))
        elements.append(VoltageSource(f"Vs{k}", f"b{k}", "0"))
    step = READ_SWEEP_TIME * READ_SWEEP_STEP / (2 * v_max)
    # reltol: ngspice's default (1e-3) would show in the fitted law as a 0.1 % solver error
    job = SimJob(circuit=device_circuit(tuple(elements), "ngspice", netlist=".options reltol=1e-6",
                                        title="rram read sweep"),
                 analysis=Tran(step=step, stop=READ_SWEEP_TIME, max_step=step),
                 outputs=("v(a)",) + tuple(f"i(vs{k})" for k in range(len(devices))) + tuple(gaps),
                 name="rram-read-sweep")
    return job, conductance


def read_law(v: np.ndarray, conductance: np.ndarray, v_read: float, v0: float) -> np.ndarray:
    """Read current, A, at voltage v (V) of devices of chord conductance `conductance` (S) at v_read: `READ_LAW`."""
    return conductance * v_read * np.sinh(v / v0) / np.sinh(v_read / v0)


def fit_read_law(v: np.ndarray, currents: np.ndarray, conductance: np.ndarray, v_read: float) -> dict:
    """Fit v0 of `READ_LAW` to swept read currents [devices, points] (A) at voltages v (V); relative residuals
    are over each device's current at v_read. Returns v0 (V), residual figures and the nonlinearity at v_read."""
    scale = (conductance * v_read)[:, None]

    def residuals(x: np.ndarray) -> np.ndarray:
        return ((read_law(v[None, :], conductance[:, None], v_read, x[0]) - currents) / scale).ravel()

    solution = least_squares(residuals, [0.3], bounds=([1e-3], [10.0]), x_scale=[0.1])
    v0 = float(solution.x[0])
    r = residuals(solution.x)
    return {"v0": v0, "residual_rel_rms": float(np.sqrt(np.mean(r**2))), "residual_rel_max": float(np.abs(r).max()),
            # chord over small-signal conductance at 0 V: how far a read at v_read is from a linear resistor
            "chord_over_linear_at_v_read": float(np.sinh(v_read / v0) / (v_read / v0)),
            "sweep_v": [float(v.min()), float(v.max())], "devices": int(len(conductance))}


# ------------------------------------------------------------------------------------------------ validation


def _std_standard_error(g: np.ndarray) -> np.ndarray:
    """Standard error of the sample standard deviation per row of g (from the sample kurtosis), same unit as g."""
    n = g.shape[1]
    centred = g - g.mean(axis=1, keepdims=True)
    m2, m4 = (centred**2).mean(axis=1), (centred**4).mean(axis=1)
    var_of_var = np.maximum(m4 - m2**2 * (n - 3) / (n - 1), 0.0) / n
    return np.sqrt(var_of_var) / (2 * np.sqrt(m2))


def compare_draws(table: ProgrammedLevels, holdout: ProgrammedLevels) -> dict:
    """Table (the fit draw's means and spreads) against a held-out draw: relative errors per level, their
    sampling standard errors (both draws' noise), the worst levels and whether the goals are met."""
    mean_err = (table.mean_s - holdout.mean_s) / holdout.mean_s
    spread_err = (table.std_s - holdout.std_s) / holdout.std_s
    n_t, n_h = table.conductance_s.shape[1], holdout.conductance_s.shape[1]
    mean_se = np.sqrt(table.std_s**2 / n_t + holdout.std_s**2 / n_h) / holdout.mean_s
    spread_se = np.hypot(_std_standard_error(table.conductance_s), _std_standard_error(holdout.conductance_s)) \
        / holdout.std_s
    worst_mean, worst_spread = float(np.abs(mean_err).max()), float(np.abs(spread_err).max())
    return {
        "holdout_mean_s": holdout.mean_s.tolist(), "holdout_spread_s": holdout.std_s.tolist(),
        "mean_error_rel": mean_err.tolist(), "spread_error_rel": spread_err.tolist(),
        "mean_error_rel_se": mean_se.tolist(), "spread_error_rel_se": spread_se.tolist(),
        "max_abs_mean_error_rel": worst_mean, "max_abs_spread_error_rel": worst_spread,
        "devices_per_level": {"table": int(n_t), "holdout": int(n_h)},
        "holdout_converged_fraction": float(holdout.converged.mean()),
        "goals": {"mean_error_rel": {"relation": "<=", "target": GOALS["mean_error_rel"],
                                     "met": worst_mean <= GOALS["mean_error_rel"]},
                  "spread_error_rel": {"relation": "<=", "target": GOALS["spread_error_rel"],
                                       "met": worst_spread <= GOALS["spread_error_rel"]}},
    }


# ------------------------------------------------------------------------------------------------ pipeline


def make_rram_surrogate(out: str | Path, devices_per_level: int = DEVICES_PER_LEVEL, seed: int = 0,
                        n_jobs: int | None = None, progress: bool = True,
                        report_dir: str | Path | None = None) -> SurrogateArtifact:
    """Run the two Monte Carlo draws and the read sweep, build the table, validate it, write the artifact at
    `out` and its report (in `report_dir`, default: the artifact's folder). Returns the artifact."""
    began = time.perf_counter()
    mapping, params, variability, config = LevelMapping(), RRAMParameters(), RRAMVariability(), WriteVerifyConfig()
    seeds = {"monte_carlo": seed, "holdout": seed + HOLDOUT_SEED_OFFSET, "read_devices": seed}
    table = program_levels(devices_per_level, seeds["monte_carlo"], mapping, params, variability, config,
                           n_jobs=n_jobs, progress=progress)
    holdout = program_levels(devices_per_level, seeds["holdout"], mapping, params, variability, config,
                             n_jobs=n_jobs, progress=progress)
    mc_s = time.perf_counter() - began
    job, read_g = read_sweep_job(table.mean_s, mapping, seeds["read_devices"], params, variability)
    (sweep,) = run_many([job], n_jobs=n_jobs, progress=False, raise_errors=True)
    n_read = len(read_g)
    read_v = np.asarray(sweep["v(a)"])
    # i(vs<k>): the device current, through the 0 V sense source from the device's bottom node to ground
    read_i = np.array([sweep[name] for name in job.outputs[1:1 + n_read]])
    gaps = np.array([sweep[name] for name in job.outputs[1 + n_read:]])
    read = fit_read_law(read_v, read_i, read_g, mapping.v_read)
    read["gap_change_max_nm"] = float(np.abs(gaps - gaps[:, :1]).max())

    parameters = {}
    for k, target in enumerate(mapping.levels_s):
        parameters[f"g_mean_{k}"] = {
            "value": float(table.mean_s[k]), "unit": "S", "default": float(target), "fitted": True,
            "description": f"mean programmed chord conductance of device level {k} at v_read (default: target)"}
    for k in range(mapping.n_levels):
        parameters[f"g_spread_{k}"] = {
            "value": float(table.std_s[k]), "unit": "S", "default": None, "fitted": True,
            "description": f"standard deviation of the programmed conductance of device level {k}"}
    parameters["read_v0"] = {"value": read["v0"], "unit": "V", "default": params.v0, "fitted": True,
                             "description": "voltage scale of the read law " + READ_LAW}
    g_all = np.concatenate([table.conductance_s.ravel(), holdout.conductance_s.ravel()])
    surrogate = SurrogateArtifact(
        kind=KIND,
        parameters=parameters,
        support={"conductance": [float(g_all.min()), float(g_all.max())],
                 "read_voltage": read["sweep_v"], "units": {"conductance": "S", "read_voltage": "V"}},
        provenance=make_provenance(
            [MODEL_VA, NETLIST_LIB],
            {name: get_backend(name).version() for name in ("vacask", "ngspice")}, seeds,
            wall_s=time.perf_counter() - began),
        doe={"devices_per_level": devices_per_level, "monte_carlo": "cosim.devices.rram.program_levels (vacask)",
             "write_verify": dataclasses.asdict(config),
             "variability": {"d2d": dict(variability.d2d), "c2c_vel0": variability.c2c_vel0},
             "read_sweep": {"devices_per_level": READ_DEVICES_PER_LEVEL, "step_v": READ_SWEEP_STEP,
                            "ramp_s": READ_SWEEP_TIME, "simulator": "ngspice",
                            "model": "rram (full model, transient)"}},
        fit={"table": {key: value for key, value in table.summary().items()
                       if key not in ("mapping", "mean_s", "std_s", "weight_levels")},
             "read": read, "monte_carlo_wall_s": mc_s},
        validation={"holdout": compare_draws(table, holdout)},
        data={"mapping": mapping.to_dict(), "read_law": READ_LAW},
        notes=("Level table: sample mean and standard deviation (ddof 1) of the verified chord conductance at "
               "v_read per device level. The programmed populations are confined to the verify band "
               "(target +- tolerance) and skewed (level 0 piles up at the lower band edge with a long upper tail); "
               "the quantised layer draws a normal distribution with the same two moments. Device states do not "
               "drift after programming (no retention or read-disturb model)."))
    save(surrogate, out)
    write_rram_report(report_dir or Path(out).parent, surrogate, table, holdout, read_v, read_i, read_g)
    return surrogate


def fit_surrogate(out: Path | None = None, *, seed: int = 0, quick: bool = False, n_jobs: int | None = None) -> Path:
    """`cosim fit rram`: the level table from the write-verify Monte Carlo (DEVICES_PER_LEVEL devices per level,
    QUICK_DEVICES_PER_LEVEL with quick), validated on a held-out draw; writes the artifact (default: the shipped
    ``surrogates/rram.json``) and its report next to it."""
    out = Path(out) if out is not None else artifact.default_path(KIND)
    make_rram_surrogate(out, QUICK_DEVICES_PER_LEVEL if quick else DEVICES_PER_LEVEL, seed, n_jobs)
    return out


# ------------------------------------------------------------------------------------------------ report

def _levels_figure(path: Path, surrogate: SurrogateArtifact, table: ProgrammedLevels,
                   holdout: ProgrammedLevels) -> None:
    mapping = table.mapping
    means, spreads = table.mean_s, table.std_s
    fig, axes = plt.subplots(2, mapping.n_levels // 2, figsize=(11.0, 5.0), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        lo, hi = ((mapping.levels_s[k] + side * 1.5 * mapping.tolerance_s) * 1e6 for side in (-1, 1))
        bins = np.linspace(lo, hi, 41)
        ax.hist(table.conductance_s[k] * 1e6, bins=bins, density=True, histtype="step", color="k", label="MC (fit)")
        ax.hist(holdout.conductance_s[k] * 1e6, bins=bins, density=True, histtype="step", color="tab:blue",
                label="MC (held out)")
        g = np.linspace(lo, hi, 200)
        mean_us, spread_us = means[k] * 1e6, spreads[k] * 1e6
        ax.plot(g, np.exp(-0.5 * ((g - mean_us) / spread_us) ** 2) / (spread_us * np.sqrt(2 * np.pi)),
                color="tab:red", lw=1, label="table (normal)")
        for edge in (-1, 1):
            ax.axvline((mapping.levels_s[k] + edge * mapping.tolerance_s) * 1e6, color="0.6", lw=0.6, ls=":")
        ax.set_title(f"level {k}: {means[k] * 1e6:.2f} +- {spreads[k] * 1e6:.2f} uS", fontsize=8)
        ax.tick_params(labelsize=7)
        if k == 0:
            ax.legend(fontsize=6)
    fig.supxlabel(f"chord conductance at {mapping.v_read} V (uS); dotted: verify band", fontsize=8)
    fig.suptitle("RRAM level table vs write-verify Monte Carlo", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _errors_figure(path: Path, validation: dict) -> None:
    fig, (ax_m, ax_s) = plt.subplots(1, 2, figsize=(8.0, 3.0))
    for ax, name, goal in ((ax_m, "mean", GOALS["mean_error_rel"]), (ax_s, "spread", GOALS["spread_error_rel"])):
        err = np.asarray(validation[f"{name}_error_rel"]) * 100
        se = np.asarray(validation[f"{name}_error_rel_se"]) * 100
        ax.bar(range(len(err)), err, yerr=se, color="tab:green", capsize=2)
        for sign in (-1, 1):
            ax.axhline(sign * goal * 100, color="k", ls=":", lw=0.8)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xlabel("device level")
        ax.set_ylabel(f"{name}: table vs held-out (%)")
    fig.suptitle("level table against the held-out Monte Carlo (bars: 1 sampling s.e.; dotted: goal)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _read_figure(path: Path, v: np.ndarray, currents: np.ndarray, conductance: np.ndarray, v_read: float,
                 v0: float) -> None:
    fig, (ax_i, ax_r) = plt.subplots(1, 2, figsize=(8.0, 3.0))
    scale = (conductance * v_read)[:, None]
    model = read_law(v[None, :], conductance[:, None], v_read, v0)
    ax_i.plot(v, (currents / scale).T, color="0.6", lw=0.6)
    ax_i.plot(v, v / v_read, color="k", ls=":", lw=0.8, label="chord conductance (linear)")
    ax_i.plot(v, model[0] / scale[0], color="tab:red", lw=1, ls="--", label=f"sinh law, v0 = {v0:.4g} V")
    ax_i.set_xlabel("read voltage (V)")
    ax_i.set_ylabel("I / (G v_read)")
    ax_i.legend(fontsize=7)
    ax_r.plot(v, ((model - currents) / scale).T * 1e6, color="tab:blue", lw=0.6)
    ax_r.set_xlabel("read voltage (V)")
    ax_r.set_ylabel("residual (ppm of G v_read)")
    fig.suptitle(f"read characteristic of {len(conductance)} devices at the level means (ngspice)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _markdown(surrogate: SurrogateArtifact, figures: dict[str, str]) -> str:
    validation, fit = surrogate.validation["holdout"], surrogate.fit
    prov = surrogate.provenance
    mapping = _mapping(surrogate)
    lines = ["# RRAM surrogate: level table vs the write-verify Monte Carlo", "",
             f"Kind `{surrogate.kind}`, fitted {prov.created} on {prov.host} in {prov.wall_s or float('nan'):.0f} s "
             f"(Monte Carlo {fit['monte_carlo_wall_s']:.0f} s), command `{prov.command}`; "
             f"{surrogate.doe['devices_per_level']} devices per level and draw, seeds {prov.seeds}.", "",
             "## Held-out goals", "", "| metric | worst level | goal | met |", "|---|---:|---|---|"]
    for name, key in (("mean_error_rel", "max_abs_mean_error_rel"), ("spread_error_rel", "max_abs_spread_error_rel")):
        goal = validation["goals"][name]
        lines.append(f"| {name} | {validation[key]:.3%} | <= {goal['target']:.0%} | {'yes' if goal['met'] else 'NO'} |")
    lines += ["", "## Level table (fit draw) against the held-out draw", "",
              "| level | target (uS) | mean (uS) | held-out mean (uS) | mean error | s.e. | spread (uS) | "
              "held-out spread (uS) | spread error | s.e. |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for k in range(mapping.n_levels):
        lines.append(
            f"| {k} | {mapping.levels_s[k] * 1e6:.1f} | {surrogate.value(f'g_mean_{k}') * 1e6:.3f} | "
            f"{validation['holdout_mean_s'][k] * 1e6:.3f} | {validation['mean_error_rel'][k]:+.3%} | "
            f"{validation['mean_error_rel_se'][k]:.3%} | {surrogate.value(f'g_spread_{k}') * 1e6:.3f} | "
            f"{validation['holdout_spread_s'][k] * 1e6:.3f} | {validation['spread_error_rel'][k]:+.2%} | "
            f"{validation['spread_error_rel_se'][k]:.2%} |")
    table = fit["table"]
    lines += ["", f"Converged (inside the verify band): {table['converged_fraction']:.2%} of the fit draw, "
                  f"{validation['holdout_converged_fraction']:.2%} of the held-out draw; mean pulses per level "
                  f"{[round(p, 1) for p in table['pulses_mean']]}; adjacent-level overlap (Gaussian estimate) "
                  f"{[f'{o:.1e}' for o in table['adjacent_overlap_gaussian']]}.", "",
              "## Weight levels for the quantised layer", "",
              "`load_rram().level_table(bits)` (`ConductanceLevels`): mean and spread of each weight level in level "
              "units (one unit: the mean G+ - G- step).", ""]
    surrogate_obj = RRAMSurrogate(surrogate, Path("."))
    for bits in (3, 4):
        means, spreads = surrogate_obj.level_table(bits).mean_spread()
        lines.append(f"- {bits} bits: means {[round(float(m), 3) for m in means]}, spreads "
                     f"{[round(float(s), 3) for s in spreads]}")
    read = fit["read"]
    lines += ["", "## Read nonlinearity", "",
              f"{READ_LAW}; fitted v0 = {read['v0']:.5g} V (device parameter "
              f"{surrogate.parameters['read_v0']['default']} V) "
              f"on {read['devices']} devices swept over {read['sweep_v'][0]:g} .. {read['sweep_v'][1]:g} V: residual "
              f"{read['residual_rel_rms']:.2e} rms, {read['residual_rel_max']:.2e} max (of G v_read). At v_read the "
              f"chord conductance is {read['chord_over_linear_at_v_read']:.4f} x the small-signal conductance at 0 V. "
              f"The largest gap change over the {surrogate.doe['read_sweep']['ramp_s'] * 1e6:g} us sweep: "
              f"{read['gap_change_max_nm']:.1e} nm "
              "(reads do not disturb the state).", "",
              "## Notes", "", surrogate.notes, "", "## Provenance", ""]
    lines += [f"- `{path}`: sha256 `{digest[:16]}...`" for path, digest in prov.files.items()]
    lines += [f"- {name} {version}" for name, version in prov.simulators.items()]
    lines += [f"- cosim {prov.cosim_version}", "", "## Figures", ""]
    lines += [f"![{name}]({file})" for name, file in figures.items()]
    return "\n".join(lines) + "\n"


def write_rram_report(out_dir: str | Path, surrogate: SurrogateArtifact, table: ProgrammedLevels,
                      holdout: ProgrammedLevels, read_v: np.ndarray, read_i: np.ndarray,
                      read_g: np.ndarray) -> dict[str, Path]:
    """Write ``rram_levels.png`` (histograms: both Monte Carlo draws and the table), ``rram_errors.png`` (table vs
    held-out per level), ``rram_read.png`` (read sweep and fitted law) and ``rram_report.md`` into out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"levels": "rram_levels.png", "errors": "rram_errors.png", "read": "rram_read.png"}
    _levels_figure(out / files["levels"], surrogate, table, holdout)
    _errors_figure(out / files["errors"], surrogate.validation["holdout"])
    _read_figure(out / files["read"], read_v, read_i, read_g, table.mapping.v_read, surrogate.value("read_v0"))
    markdown = out / "rram_report.md"
    markdown.write_text(_markdown(surrogate, files))
    return {name: out / file for name, file in files.items()} | {"markdown": markdown}
