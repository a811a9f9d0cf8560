"""Validation report of the FeLIF surrogate: SPICE vs surrogate on held-out stimuli, as PNGs and Markdown.

`write_felif_report` writes, into one folder (next to the artifact by default):

- ``felif_overlays.png``: V and P of SPICE and the surrogate over time for a few held-out stimuli, with the input;
- ``felif_rasters.png``: spike rasters of every held-out stimulus, SPICE above the surrogate;
- ``felif_errors.png``: histograms of the spike-time errors (relative to the ISI) and of the V errors;
- ``felif_parameters.png``: each fitted parameter over its default;
- ``felif_report.md``: the numbers against the goals, the parameters next to their defaults, the design of
  experiments, the support, the provenance and how the circuit differs from the single-state surrogate.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cosim.surrogates.artifact import SurrogateArtifact  # noqa: E402
from cosim.surrogates.doe import Stimulus  # noqa: E402
from cosim.surrogates.traces import Comparison, Traces, compare  # noqa: E402

GOALS = {"spike_count_agreement": (">=", 0.98), "spike_time_error_rel": ("<=", 0.02), "v_nrmse": ("<=", 0.03)}
"""Held-out goals of issue 5 for the FeLIF surrogate."""

DPI = 80


def goal_met(name: str, value: float) -> bool:
    """Whether a headline number meets its goal (False for NaN)."""
    relation, target = GOALS[name]
    return bool(value >= target) if relation == ">=" else bool(value <= target)


def _overlays(path: Path, stimuli: Sequence[Stimulus], spice: Sequence[Traces], model: Sequence[Traces],
              picks: Sequence[int]) -> None:
    fig, axes = plt.subplots(3, len(picks), figsize=(3.2 * len(picks), 6.0), sharex="col", squeeze=False)
    for col, k in enumerate(picks):
        stim, ref, mod = stimuli[k], spice[k], model[k]
        t_ms = ref.t * 1e3
        ax_i, ax_v, ax_p = axes[:, col]
        ax_i.step(np.arange(stim.steps + 1) * stim.dt * 1e3, np.r_[stim.current, stim.current[-1]] * 1e9,
                  where="post", color="0.3", lw=1)
        ax_i.set_title(stim.name, fontsize=8)
        ax_i.set_ylim(1.1 * min(0.0, min(stim.current)) * 1e9, 1.1 * max(stim.current) * 1e9 + 1e-3)
        ax_v.plot(t_ms, ref.v, color="k", lw=1, label="circuit")
        ax_v.plot(t_ms, mod.v, color="tab:red", lw=0.8, ls="--", label="surrogate")
        ax_p.plot(t_ms, ref.p, color="k", lw=1)
        ax_p.plot(t_ms, mod.p, color="tab:red", lw=0.8, ls="--")
        ax_p.set_xlabel("time (ms)")
        if col == 0:
            ax_i.set_ylabel("input (nA)")
            ax_v.set_ylabel("V (V)")
            ax_p.set_ylabel("P (C/m$^2$)")
            ax_v.legend(fontsize=7, loc="lower right")
    fig.suptitle("held-out stimuli: reference circuit (black) vs surrogate (red)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _rasters(path: Path, stimuli: Sequence[Stimulus], spice: Sequence[Traces], model: Sequence[Traces]) -> None:
    fig, ax = plt.subplots(figsize=(7.0, 0.32 * len(stimuli) + 1.0))
    for row, (ref, mod) in enumerate(zip(spice, model)):
        ax.vlines(ref.spikes * 1e3, row + 0.05, row + 0.45, color="k", lw=1)
        ax.vlines(mod.spikes * 1e3, row - 0.45, row - 0.05, color="tab:red", lw=1)
    ax.set_yticks(range(len(stimuli)), [s.name for s in stimuli], fontsize=6)
    ax.set_xlabel("time (ms)")
    ax.set_title("spikes: circuit (black, upper) vs surrogate (red, lower)", fontsize=9)
    ax.set_ylim(-0.7, len(stimuli) - 0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _errors(path: Path, comparison: Comparison) -> None:
    fig, (ax_t, ax_v) = plt.subplots(1, 2, figsize=(7.0, 2.8))
    if len(comparison.time_errors_rel):
        signed = np.sign(comparison.time_errors) * comparison.time_errors_rel * 100
        ax_t.hist(signed, bins=40, color="tab:blue")
    ax_t.axvline(-GOALS["spike_time_error_rel"][1] * 100, color="k", ls=":")
    ax_t.axvline(GOALS["spike_time_error_rel"][1] * 100, color="k", ls=":")
    ax_t.set_xlabel("spike-time error (% of preceding ISI)")
    ax_t.set_ylabel("spikes")
    ax_v.hist(comparison.v_errors * 1e3, bins=60, color="tab:orange")
    ax_v.set_xlabel("V error where both integrate (mV)")
    ax_v.set_ylabel("samples")
    ax_v.set_yscale("log")
    fig.suptitle(f"held-out errors: median |spike-time error| {comparison.spike_time_error_rel:.2%} of ISI, "
                 f"V NRMSE {comparison.v_nrmse:.2%}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _parameters(path: Path, artifact: SurrogateArtifact) -> None:
    fitted = {name: entry for name, entry in artifact.parameters.items() if entry.get("fitted")}
    names = list(fitted)
    ratios = [entry["value"] / entry["default"] if entry["default"] else np.nan for entry in fitted.values()]
    fig, ax = plt.subplots(figsize=(6.0, 2.8))
    ax.bar(names, ratios, color="tab:green")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_ylabel("fitted / default")
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title("fitted parameters relative to REFERENCE.md defaults", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _markdown(artifact: SurrogateArtifact, figures: dict[str, str], stimuli: Sequence[Stimulus]) -> str:
    held, fitted, start = (artifact.validation[name] for name in ("holdout", "fit", "holdout_start"))
    lines = ["# FeLIF surrogate: validation against the circuit", "",
             f"Artifact kind `{artifact.kind}`, fitted {artifact.provenance.created} on {artifact.provenance.host} "
             f"in {artifact.provenance.wall_s or float('nan'):.0f} s (simulations included), "
             f"command `{artifact.provenance.command}`. Reference: "
             + ", ".join(f"{key} {value}" for key, value in artifact.data.get("circuit", {}).items()
                         if not isinstance(value, (dict, list))) + ".", "",
             "## Held-out goals", "",
             "| metric | held-out | fit set | held-out, unfitted start | goal | met (held-out) |",
             "|---|---:|---:|---:|---|---|"]
    for name, (relation, target) in GOALS.items():
        lines.append(f"| {name} | {held[name]:.4g} | {fitted[name]:.4g} | {start[name]:.4g} | {relation} {target:g} | "
                     f"{'yes' if goal_met(name, held[name]) else 'NO'} |")
    lines += ["", f"Held-out: {held['n_spikes_reference']} reference spikes, {held['n_spikes_model']} surrogate "
                  f"spikes, {held['paired_spikes']} paired; P NRMSE {held['p_nrmse']:.3g} (over 2 P_s, where both "
                  "integrate).", "", "Per held-out stimulus:", "",
              "| stimulus | reference spikes | surrogate spikes | median time error / ISI | V NRMSE | V samples |",
              "|---|---:|---:|---:|---:|---:|"]
    for name, entry in held["per_stimulus"].items():
        lines.append(f"| {name} | {entry['n_spikes_reference']} | {entry['n_spikes_model']} | "
                     f"{entry['spike_time_error_rel']:.3g} | {entry['v_nrmse']:.3g} | {entry['v_samples']} |")
    regions = artifact.validation.get("regions", {})
    if regions:
        lines += ["", "Per design region (`cosim.surrogates.doe`: nominal = non-negative currents, signed = currents "
                      "of both signs, rail = negative phases onto the clamp rail between positive ones):", "",
                  "| region | split | stimuli | spike counts | time error / ISI | V NRMSE | P NRMSE | I (nA) | V (V) |",
                  "|---|---|---:|---:|---:|---:|---:|---|---|"]
        for split in ("holdout", "fit"):
            for region, entry in regions.get(split, {}).items():
                sup = entry["support"]
                lines.append(f"| {region} | {split} | {entry['stimuli']} | {entry['spike_count_agreement']:.4g} | "
                             f"{entry['spike_time_error_rel']:.3g} | {entry['v_nrmse']:.3g} | {entry['p_nrmse']:.3g} | "
                             f"{sup['i_in'][0] * 1e9:.3g} .. {sup['i_in'][1] * 1e9:.3g} | "
                             f"{sup['v'][0]:.3g} .. {sup['v'][1]:.3g} |")
    lines += ["", "V samples: samples where both neurons integrate. At high input currents a neuron integrates for "
                  "well under a millisecond per interval, so its few samples lie on the steep rise to threshold, "
                  "where microseconds of timing are tenths of volts; the pooled NRMSE weighs every sample alike."]
    lines += ["", "## Parameters", "", "| parameter | fitted | default | unit | fitted? |", "|---|---:|---:|---|---|"]
    for name, entry in artifact.parameters.items():
        lines.append(f"| {name} | {entry['value']:.6g} | {entry['default']:.6g} | {entry['unit']} | "
                     f"{'yes' if entry.get('fitted') else ''} |")
    support = artifact.support
    lines += ["", "## Support of the fit", "",
              f"Input current {support['i_in'][0] * 1e9:.3g} to {support['i_in'][1] * 1e9:.3g} nA, "
              f"V {support['v'][0]:.3g} to {support['v'][1]:.3g} V, P {support['p'][0]:.3g} to {support['p'][1]:.3g} "
              "C/m^2 (states of the surrogate on the fit stimuli). The training layer counts steps outside "
              "(`cosim.surrogates.guard`).", "",
              "## Design of experiments", "",
              f"{len(artifact.doe['fit'])} fit and {len(stimuli)} held-out stimuli, step "
              f"{artifact.data['step_config']['dt'] * 1e3:g} ms: " + ", ".join(
                  f"{kind} {sum(s.kind == kind for s in stimuli)}"
                  for kind in ("constant", "pulses", "poisson", "replay") if any(s.kind == kind for s in stimuli))
              + " (held-out counts); regions " + ", ".join(
                  f"{region} {sum(s.region == region for s in stimuli)}"
                  for region in sorted({s.region for s in stimuli})) + ".", "",
              "## Circuit vs single-state surrogate", "", artifact.notes, "", "## Provenance", ""]
    lines += [f"- `{path}`: sha256 `{digest[:16]}...`" for path, digest in artifact.provenance.files.items()]
    lines += [f"- {name} {version}" for name, version in artifact.provenance.simulators.items()]
    lines += [f"- seeds: {artifact.provenance.seeds}", f"- cosim {artifact.provenance.cosim_version}", "",
              "## Figures", ""]
    lines += [f"![{name}]({file})" for name, file in figures.items()]
    return "\n".join(lines) + "\n"


def write_felif_report(out_dir: str | Path, artifact: SurrogateArtifact, holdout: Sequence[Stimulus],
                       spice_holdout: Sequence[Traces], model_holdout: Sequence[Traces],
                       overlay_count: int = 4) -> dict[str, Path]:
    """Write the figures and ``felif_report.md`` into out_dir; their paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    comparison = compare(list(spice_holdout), list(model_holdout))
    # overlays: spread over the amplitude range and the three families
    order = sorted(range(len(holdout)), key=lambda k: (holdout[k].kind != "constant", np.mean(holdout[k].current)))
    picks = sorted(order[:: max(1, len(order) // overlay_count)][:overlay_count])
    files = {"overlays": "felif_overlays.png", "rasters": "felif_rasters.png", "errors": "felif_errors.png",
             "parameters": "felif_parameters.png"}
    _overlays(out / files["overlays"], holdout, spice_holdout, model_holdout, picks)
    _rasters(out / files["rasters"], holdout, spice_holdout, model_holdout)
    _errors(out / files["errors"], comparison)
    _parameters(out / files["parameters"], artifact)
    markdown = out / "felif_report.md"
    markdown.write_text(_markdown(artifact, files, holdout))
    return {name: out / file for name, file in files.items()} | {"markdown": markdown}
