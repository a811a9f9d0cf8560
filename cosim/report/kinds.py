"""What a report shows of each kind of run folder, read from the files the package writes there.

Each kind has a small function returning a `Page`: the run card (what ran: command, config, devices, data,
commit, machine, wall times), the outcomes (`cosim.report.outcomes`), three or four key figures, and folded
sections, raw tables last. `detect_kind` tells the kind from the files present:

* main job (`cosim run`): ``summary.json`` with its ``stages``;
* training (`cosim train`): ``config.toml`` and ``metrics.jsonl`` (with its SPICE verification if ``verify.json``
  is there);
* verification: ``verify.json`` without a training history;
* characterisation (`cosim characterize --out`): a ``summary.json`` of one device, or ``<device>/summary.json``;
* fit (`cosim fit --out`): surrogate artifacts ``<kind>.json`` (a ``surrogates/`` folder).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from cosim.report.outcomes import (
    Outcome,
    Reference,
    against_baselines,
    number,
    read_run_record,
    task_class,
    training_outcomes,
    verification_outcomes,
    within,
)
from cosim.train.checkpoint import read_metrics
from cosim.train.config import SHIPPED, TrainConfig, differences, load_config, read_config, to_dict
from cosim.train.refit import read_refits


class ReportError(ValueError):
    """A folder the report cannot be built from: not a run folder of a known kind, or a file in it unreadable."""


@dataclass(frozen=True)
class Figure:
    """A PNG file of the run folder shown in the report."""

    path: Path
    """The file."""
    caption: str
    """What it shows."""


@dataclass(frozen=True)
class Table:
    """A table of text cells."""

    caption: str
    """Its heading."""
    header: tuple[str, ...]
    """Column names."""
    rows: tuple[tuple[str, ...], ...]
    """Cells, row by row."""


@dataclass(frozen=True)
class Section:
    """A folded part of the report."""

    title: str
    """Heading (the summary line of the fold)."""
    note: str = ""
    """One sentence saying what it shows."""
    outcomes: tuple[Outcome, ...] = ()
    """An outcome table of its own (characterisations and fits inside a main job's report)."""
    tables: tuple[Table, ...] = ()
    """Tables."""
    figures: tuple[Figure, ...] = ()
    """Figures."""


@dataclass(frozen=True)
class Page:
    """Everything a report shows of a run folder."""

    kind: str
    """What the folder is ("main job", "training run", ...)."""
    card: tuple[tuple[str, str], ...]
    """The run card: (label, text) rows."""
    outcomes: tuple[Outcome, ...]
    """The outcome table."""
    figures: tuple[Figure, ...]
    """The key figures."""
    sections: tuple[Section, ...]
    """Folded sections, raw tables last."""


def read_json(path: Path) -> Any:
    """The content of a JSON file of the run folder; ReportError naming it if it is not JSON."""
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ReportError(f"{path}: not valid JSON ({err})") from None


# --------------------------------------------------------------------------------------------------- training


def _shipped_diff(cfg: TrainConfig) -> str:
    """The config as its differences from the nearest shipped config of the same network (run.out left out)."""
    values = to_dict(cfg)
    diffs = {}
    for name in SHIPPED:
        shipped = load_config(name)
        if shipped.model.network == cfg.model.network:
            diffs[name] = [key for key in differences(shipped, cfg) if key != "run.out"]
    name = min(diffs, key=lambda n: len(diffs[n]))
    if not diffs[name]:
        return f"the shipped {name} config, unchanged"
    changes = ", ".join(f"{key} = {json.dumps(values[key.split('.')[0]][key.split('.')[1]])}" for key in diffs[name])
    return f"shipped {name} config with {changes}"


def _devices(cfg: TrainConfig, record: dict[str, Any]) -> str:
    m = cfg.model
    surrogate = record.get("surrogate")
    if m.neuron == "lif":
        neuron = "software LIF (no device)"
    elif surrogate:
        neuron = (f"{m.neuron}, fitted surrogate {Path(surrogate['path']).name} (SHA-256 {surrogate['sha256'][:12]}, "
                  f"fitted {surrogate['fitted'][:10]} with cosim {surrogate['fitted_with']})")
    elif m.surrogate_file:
        neuron = f"{m.neuron}, fitted surrogate {m.surrogate_file} (not recorded)"
    else:
        neuron = f"{m.neuron}, analytic model"
    synapse = f"{m.synapse}, {m.bits or 'float'}-bit, {m.synapse_levels} levels"
    return f"neurons: {neuron}; synapses: {synapse}; network {m.network}, {m.hidden} hidden, method {m.method}"


def _data(cfg: TrainConfig, record: dict[str, Any]) -> str:
    data = record.get("data")
    unit = "chorales" if cfg.model.network == "music" else "samples"
    if not data:
        return f"{cfg.data.dataset} (sizes not recorded: a folder from before run.json)"
    sizes = ", ".join(f"{split} {n}" for split, n in data["sizes"].items())
    return f"{data['source']}; used: {sizes} {unit}"


def _sessions(record: dict[str, Any]) -> list[tuple[str, str]]:
    sessions = record.get("sessions") or [{}]
    last = sessions[-1]
    resumed = f" ({len(sessions)} sessions, the last from epoch {last['from_epoch']})" if len(sessions) > 1 else ""
    return [("command", last.get("command", "not recorded")), ("commit", last.get("cosim", "not recorded")),
            ("machine", last.get("machine", "not recorded")), ("started", sessions[0].get("started", "-") + resumed)]


def _training_card(run_dir: Path, cfg: TrainConfig, record: dict[str, Any], history: list[dict]) -> list:
    seconds = sum(row.get("epoch_seconds", 0.0) for row in history)
    per_epoch = seconds / max(1, len(history))
    wall = f"{len(history)} epochs, {seconds:.0f} s of training and evaluation ({per_epoch:.1f} s per epoch)"
    if (run_dir / "verify.json").is_file():
        wall += f"; final SPICE verification {read_json(run_dir / 'verify.json')['seconds']:.0f} s"
    return [*_sessions(record)[:1], ("config", _shipped_diff(cfg)), ("devices", _devices(cfg, record)),
            ("data", _data(cfg, record)), *_sessions(record)[1:], ("wall time", wall)]


def _training_sections(run_dir: Path, cfg: TrainConfig, record: dict[str, Any], history: list[dict]) -> list:
    info = task_class(cfg).metric_info
    columns = list(dict.fromkeys(key for row in history for key in row))
    epochs = Table("Metrics per epoch (metrics.jsonl)", tuple(columns),
                   tuple(tuple(_cell(row.get(key)) for key in columns) for row in history))
    metrics = Table("What the metrics mean", ("metric", "label", "definition"),
                    tuple((name, m.label, m.definition) for name, m in info.items()) +
                    (("rate_<layer>_hz", "spike rate (Hz)", "mean spikes per neuron and second of each spiking "
                      "layer over the training epoch"),))
    baseline = Table("Baselines, computed on the same data in this run (run.json)",
                     ("baseline", "split", *info, "definition"),
                     tuple((b["name"], split, *(_cell(values.get(m)) for m in info), b["definition"])
                           for b in record.get("baselines", []) for split, values in b["metrics"].items()))
    sections = [Section("Training, epoch by epoch", "The task's metrics after every epoch (definitions below), "
                        "the baselines they are judged against, and the spike rates.", (), (epochs, metrics, baseline))]
    if refits := read_refits(run_dir):
        sections.append(_refit_section(refits))
    if (run_dir / "verify.json").is_file():
        sections.append(_verify_section(run_dir, read_json(run_dir / "verify.json")))
    return sections


def _refit_section(refits: list[dict[str, Any]]) -> Section:
    columns = ("epoch", "trigger", "ok", "version", "agreement_before", "agreement_after", "outside_before",
               "outside_after", "split", "stimuli", "seconds", "reason")
    table = Table("Refits (refits.jsonl)", columns, tuple(tuple(_cell(r.get(key)) for key in columns) for r in refits))
    return Section("Surrogate refits", "verify.refit: the FeLIF surrogate refitted at the states the network visited "
                   "(cosim.train.refit), warm-started from the one in use; prediction agreement with SPICE and the "
                   "fraction of neuron-steps outside the surrogate's support on the split named, before and after. "
                   "A refit that failed kept the surrogate in use.", (), (table,))


def _verify_section(run_dir: Path, verify: dict[str, Any]) -> Section:
    keys = ("checkpoint", "epoch", "samples", "samples_requested", "steps", "prediction_agreement", "frame_agreement",
            "spike_count_agreement", "spike_time_error_s", "spike_time_error_rel", "v_nrmse", "spikes_spice",
            "spikes_surrogate", "paired_spikes", "spice_loss", "surrogate_loss", "spice_frame_accuracy",
            "surrogate_frame_accuracy", "spice_accuracy", "surrogate_accuracy", "neuron_device", "synapse_device",
            "bits", "mirror_gain", "ir_drop_error_rel", "simulation_cpu_s", "seconds")
    tables = [Table("Key figures (verify.json)", ("figure", "value"),
                    tuple((key, _cell(verify[key])) for key in keys if key in verify))]
    if "ir_drop_tile_error_rel" in verify:  # the array with wire resistance: IR-drop error of each tile
        tiles = verify["ir_drop_tiles"]
        tables.append(Table(
            "IR-drop error per tile (||SPICE - ideal wires|| / ||ideal wires|| of the tile's mirrored partial outputs "
            f"over {len(verify['ir_drop_reads_active'])} reads)",
            ("input rows", *(f"pairs {a}-{b - 1}" for a, b in tiles["pairs"])),
            tuple((f"{a}-{b - 1}", *(f"{e:.2%}" for e in errors))
                  for (a, b), errors in zip(tiles["rows"], verify["ir_drop_tile_error_rel"]))))
    figures = [Figure(run_dir / name, caption) for name, caption in (
        ("verify/history.png", "SPICE verification during training, epoch by epoch"),
        ("verify/raster_training.png", "SPICE vs model during training, the last verified epoch"))
        if (run_dir / name).is_file()]
    return Section("SPICE verification", "The trained device layer exported to circuits (programmed RRAM pairs and "
                   "neuron circuits), simulated in ngspice on test samples and compared with the training model.",
                   (), tuple(tables), tuple(figures))


def _raster(run_dir: Path) -> list[Figure]:
    path = run_dir / "verify" / "raster.png"
    return [Figure(path, "SPICE vs model, one verified test sample: spike rasters of the device neurons (top) and "
                         "membrane voltages of the three busiest neurons (bottom)")] if path.is_file() else []


def _curves(run_dir: Path) -> list[Figure]:
    path = run_dir / "curves.png"
    return [Figure(path, "Training curves: loss and accuracy per split, the baselines dashed in the split's colour; "
                         "spike rates; learning rate and time per epoch")] if path.is_file() else []


def training_page(run_dir: Path) -> Page:
    """A `cosim train` run folder (config.toml, metrics.jsonl; verify.json if verified)."""
    cfg = read_config(run_dir / "config.toml")
    history = read_metrics(run_dir)
    record = read_run_record(run_dir)
    return Page("training run", tuple(_training_card(run_dir, cfg, record, history)),
                tuple(training_outcomes(run_dir)), (*_curves(run_dir), *_raster(run_dir)),
                (*_training_sections(run_dir, cfg, record, history),
                 _raw(run_dir, ("config.toml", "run.json", "verify.json"))))


def verification_page(run_dir: Path) -> Page:
    """A folder with a SPICE verification (verify.json) but no training history."""
    verify = read_json(run_dir / "verify.json")
    cfg = read_config(run_dir / "config.toml") if (run_dir / "config.toml").is_file() else None
    card = (("checkpoint", f"{verify.get('checkpoint', '-')} (epoch {verify.get('epoch', '-')})"),
            ("devices", f"{verify['neurons']} {verify['neuron_device']} neuron circuits, {verify['inputs']} inputs "
                        f"of {verify['synapse_device']} pairs, {verify['bits']}-bit, programming "
                        f"{verify['hardware']['programming']}"),
            ("data", f"{verify['samples']} of {verify['samples_requested']} {verify['network']} {verify['split']} "
                     f"samples, {sum(verify['steps'])} coarse steps"),
            ("wall time", f"{verify['seconds']:.0f} s ({verify['simulation_cpu_s']:.0f} s of simulation CPU time)"))
    outcomes = verification_outcomes(verify, cfg.model.dt if cfg else None)
    return Page("SPICE verification", card, tuple(outcomes), tuple(_raster(run_dir)),
                (_verify_section(run_dir, verify), _raw(run_dir, ("verify.json", "config.toml"))))


# ----------------------------------------------------------------------------------------- characterisation

KEY_DEVICE_FIGURES = {
    "fecap": ("pv_loops.png", "FeCap P-V loops (polarisation against voltage) of the 8-domain model at three "
                              "sweep frequencies, the single-domain reference and VACASK"),
    "rram": ("level_histograms.png", "RRAM levels after write-verify programming: conductance at the read "
                                     "voltage of the devices of each level"),
    "felif": ("fi_curve.png", "FeLIF neuron circuit: spike rate against input current"),
    "crossbar": ("error_vs_size.png", "Crossbar: error of the column currents against the ideal dot product, by "
                                      "size"),
}
"""Per device: the figure of its characterisation shown among the key figures, and its caption."""

_SIGNATURES = {"coercive_voltage_v": "fecap", "first_spike_s": "felif", "adjacent_overlap": "rram",
               "dot_product_error_rel": "crossbar"}
"""A key of a characterisation summary that tells which device it is, when its folder name does not."""


def _characterisations(folder: Path) -> list[tuple[str, Path, dict]]:
    """(device, its folder, its summary) of a characterisation output folder (one device or one per subfolder)."""
    if (folder / "summary.json").is_file():
        summary = read_json(folder / "summary.json")
        if isinstance(summary, dict) and "stages" not in summary:
            name = next((device for key, device in _SIGNATURES.items() if key in summary), folder.name)
            return [(name, folder, summary)]
        return []
    return [(path.parent.name, path.parent, read_json(path)) for path in sorted(folder.glob("*/summary.json"))]


def _worst(values: dict[str, float]) -> float:
    return max(abs(v) for v in values.values())


def _device_outcomes(device: str, s: dict[str, Any]) -> list[Outcome]:
    """The headline figures of the shipped devices' characterisations (none for other devices)."""
    if device == "fecap":
        single = s["reference_single_domain"]["coercive_voltage_v"]["10000"]["positive"]
        return [Outcome("FeCap: coercive voltage at 10 kHz (V)", "voltage where the 8-domain P-V loop crosses P = 0 "
                        "on its rising branch, triangular sweep of +-4 V", s["coercive_voltage_v"]["10000"]["positive"],
                        (("single-domain FeCap", single),)),
                within("FeCap: VACASK vs ngspice, P-V loop NRMSE", "RMS difference of the Verilog-A model on VACASK "
                       "and the ngspice model over 2 P_s, worst of the three frequencies",
                       _worst(s["vacask_vs_ngspice_nrmse"]), 0.01, "<=")]
    if device == "felif":
        single = s["reference_single_domain"]["first_spike_s"]["1"]
        paper = s["reference_md_first_crossing_s"]["1"]
        return [Outcome("FeLIF: first spike at 1 nA, single-domain circuit (s)", "time of the first threshold "
                        "crossing of the single-domain ngspice circuit driven by 1 nA from rest", single,
                        (("8-domain circuit (the device)", s["first_spike_s"]["1"]),),
                        Reference(paper, "REFERENCE.md section 1", "there: the model equations integrated by explicit "
                                  "Euler at 1 us; here: the circuit in ngspice"),
                        "within 1 % of the paper's value", abs(single / paper - 1) <= 0.01),
                within("FeLIF: VACASK vs ngspice, first spike", "relative difference of the first-spike times, worst "
                       "input current", _worst(s["vacask_vs_ngspice_rel"]), 0.01, "<=")]
    if device == "rram":
        return [within("RRAM: overlap of adjacent levels", "fraction of programmed devices beyond the decision "
                       "threshold to a neighbouring level, worst pair of levels", max(s["adjacent_overlap"]), 0.0,
                       "<="),
                within("RRAM: write-verify converged", "fraction of devices programmed within tolerance of their "
                       "target", s["converged_fraction"], 1.0, ">="),
                within("RRAM: VACASK vs ngspice, I-V NRMSE", "RMS difference of the I-V loops, worst sweep",
                       _worst(s["iv_nrmse_vacask_vs_ngspice"]), 0.01, "<=")]
    if device == "crossbar":
        return [Outcome("crossbar: dot-product error (relative)", "RMS error of the column currents with wire "
                        "resistance and the sinh read, relative to the ideal dot product",
                        s["dot_product_error_rel"], (("ideal wires, linear devices", s["ideal_error_rel"]),))]
    return []


def _characterisation_parts(folder: Path, key_devices: tuple[str, ...]) -> tuple[list, list, Section]:
    """(outcomes, key figures of `key_devices`, folded section with the outcomes and the other figures) of a
    characterisation folder."""
    devices = _characterisations(folder)
    outcomes = [o for device, _, summary in devices for o in _device_outcomes(device, summary)]
    key = [Figure(path / KEY_DEVICE_FIGURES[device][0], KEY_DEVICE_FIGURES[device][1]) for device, path, _ in devices
           if device in key_devices and (path / KEY_DEVICE_FIGURES[device][0]).is_file()]
    shown = {figure.path for figure in key}
    figures = [Figure(png, f"{device}: {png.stem.replace('_', ' ')}") for device, path, _ in devices
               for png in sorted(path.glob("*.png")) if png not in shown]
    section = Section("Device characterisation", "Testbenches of the compact models and circuits in ngspice and "
                      f"VACASK ({', '.join(d for d, _, _ in devices)}); data files and summary.json per device.",
                      tuple(outcomes), (), tuple(figures))
    return outcomes, key, section


def characterisation_page(run_dir: Path) -> Page:
    """A `cosim characterize --out` folder."""
    devices = _characterisations(run_dir)
    outcomes, key, section = _characterisation_parts(run_dir, tuple(KEY_DEVICE_FIGURES))
    card = (("command", f"cosim characterize {' '.join(name for name, _, _ in devices)} --out {run_dir}"),
            ("devices", "; ".join(f"{name} ({_describe_device(summary)})" for name, _, summary in devices)))
    summaries = tuple(str(path.relative_to(run_dir) / "summary.json") for _, path, _ in devices)
    return Page("characterisation", card, tuple(outcomes), tuple(key),
                (Section(section.title, section.note, (), (), section.figures), _raw(run_dir, summaries)))


def _describe_device(summary: dict[str, Any]) -> str:
    device = summary.get("device")
    if not isinstance(device, dict):
        return "parameters in its summary"
    return ", ".join(f"{key} {value}" for key, value in device.items() if not isinstance(value, (dict, list)))


# ------------------------------------------------------------------------------------------------------ fit

FIT_FIGURES = {
    "spike_count_agreement": ("spike-count agreement", "1 - sum |n_surrogate - n_SPICE| / sum n_SPICE over the "
                              "held-out stimuli"),
    "spike_time_error_rel": ("spike-time error / interval", "median |t_surrogate - t_SPICE| of paired spikes over "
                             "the inter-spike interval, held-out stimuli"),
    "v_nrmse": ("membrane-voltage NRMSE", "RMS of V_surrogate - V_SPICE where both neurons integrate, over the "
                "voltage range, held-out stimuli"),
    "mean_error_rel": ("level means, worst relative error", "largest |table mean - held-out mean| / held-out mean "
                       "of a level's conductance (a fresh Monte Carlo draw)"),
    "spread_error_rel": ("level spreads, worst relative error", "largest |table spread - held-out spread| / "
                         "held-out spread of a level's conductance (a fresh Monte Carlo draw)"),
}
"""Name and definition of the held-out figures that the shipped fits set goals for."""


def _artifacts(folder: Path) -> list[tuple[Path, dict]]:
    found = []
    for path in sorted(folder.glob("*.json")):
        data = read_json(path)
        if isinstance(data, dict) and {"kind", "schema_version", "validation"} <= set(data):
            found.append((path, data))
    return found


def _fit_outcomes(artifact: dict[str, Any]) -> list[Outcome]:
    kind, validation = artifact["kind"], artifact["validation"]
    holdout = validation.get("holdout", {})
    start = validation.get("holdout_start", {})
    outcomes = []
    for name, goal in (validation.get("goals") or holdout.get("goals") or {}).items():
        value = holdout.get(f"max_abs_{name}", holdout.get(name))  # per-level lists come with their worst
        baseline = [("unfitted start (default parameters)", start[name])] if name in start else []
        label, definition = FIT_FIGURES.get(name, (name.replace("_", " "), f"see {kind}_report.md"))
        outcomes.append(within(f"{kind}: held-out {label}", definition, value, goal["target"], goal["relation"],
                               baseline))
    errors = holdout.get("relative_error", {})
    if {"ideal", "surrogate"} <= set(errors):
        outcomes.append(against_baselines(
            f"{kind}: held-out relative error of the column currents (median)", "|I_surrogate - I_SPICE| / I_SPICE "
            "of the column currents of held-out crossbars", errors["surrogate"]["median"],
            [("ideal dot product", errors["ideal"]["median"])], False))
    return outcomes


def _fit_parts(folder: Path) -> tuple[list, list, Section, list[str]]:
    """(outcomes, key figures, folded section, card rows) of a folder of surrogate artifacts."""
    artifacts = _artifacts(folder)
    outcomes = [o for _, artifact in artifacts for o in _fit_outcomes(artifact)]
    key, figures, card = [], [], []
    for path, artifact in artifacts:
        kind = artifact["kind"]
        images = sorted(folder.glob(f"{kind}_*.png"))
        key += [Figure(png, f"{kind} surrogate vs SPICE: {png.stem.removeprefix(kind + '_')}") for png in images[:1]]
        figures += [Figure(png, f"{kind} surrogate: {png.stem.removeprefix(kind + '_')}") for png in images[1:]]
        p = artifact.get("provenance", {})
        card.append((f"{kind} surrogate", f"{path.name}: `{p.get('command', '-')}`, fitted {p.get('created', '-')} "
                                          f"with cosim {p.get('cosim_version', '-')} on {p.get('host', '-')} in "
                                          f"{number(p.get('wall_s'))} s; simulators "
                                          f"{', '.join(f'{k} {v}' for k, v in p.get('simulators', {}).items())}"))
    section = Section("Surrogates fitted to SPICE", "Held-out validation of the fitted surrogates against circuit "
                      "simulation (the full reports: <kind>_report.md).", tuple(outcomes), (), tuple(figures))
    return outcomes, key, section, card


def fit_page(run_dir: Path) -> Page:
    """A folder of surrogate artifacts written by `cosim fit --out` (or the shipped surrogates/)."""
    outcomes, key, section, card = _fit_parts(run_dir)
    names = tuple(path.name for path, _ in _artifacts(run_dir))
    return Page("surrogate fit", tuple(card), tuple(outcomes), tuple(key),
                (Section(section.title, section.note, (), (), section.figures), _raw(run_dir, names)))


# ----------------------------------------------------------------------------------------------------- main


def main_page(run_dir: Path) -> Page:
    """The main job's folder (`cosim run`): a training run with characterisations, surrogates and stages."""
    summary = read_json(run_dir / "summary.json")
    training = training_page(run_dir)
    outcomes = tuple(Outcome.from_dict(o) for o in summary.get("outcomes", ())) or training.outcomes
    _, device_figures, characterisation = _characterisation_parts(run_dir / "characterization", ("fecap", "rram"))
    _, _, surrogates, _ = _fit_parts(run_dir / "surrogates")
    stages = summary["stages"]
    total = sum(stage["seconds"] for stage in stages.values())
    card = {label: text for label, text in training.card}
    card.update({"command": summary.get("command", card["command"]), "commit": summary.get("cosim", card["commit"]),
                 "machine": summary.get("machine", card["machine"]), "started": summary.get("started", "-"),
                 "wall time": "; ".join(f"{name} {stage['seconds']:.0f} s" for name, stage in stages.items()) +
                 f"; total {total:.0f} s"})
    benchmark = [Figure(png, "BRUNO vs BPTT: peak memory and time per step (benchmarks/bruno_vs_bptt.py, copied)")
                 for png in sorted((run_dir / "benchmarks").glob("*.png"))]
    sections = (*training.sections[:-1], characterisation, surrogates,
                Section("BRUNO vs BPTT", "Peak memory and time of the training methods, as last measured by "
                        "benchmarks/bruno_vs_bptt.py (not re-measured by this run).", (), (), tuple(benchmark)),
                _raw(run_dir, ("summary.json", "config.toml", "run.json", "verify.json",
                               *(str(p.relative_to(run_dir)) for p in
                                 sorted((run_dir / "characterization").glob("*/summary.json"))))))
    return Page("main job", tuple(card.items()), outcomes, (*training.figures, *device_figures), sections)


# ---------------------------------------------------------------------------------------------- raw tables


def _raw(run_dir: Path, names: tuple[str, ...]) -> Section:
    """The files `names` (those present) as flat tables of their fields: lists summarised, TOML as key = value."""
    tables = []
    for name in names:
        path = run_dir / name
        if not path.is_file():
            continue
        if path.suffix == ".toml":
            rows = tuple((line.split("=", 1)[0].strip(), line.split("=", 1)[1].strip())
                         for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
        else:
            rows = tuple((key, _cell(value)) for key, value in _flatten(read_json(path)))
        tables.append(Table(name, ("field", "value"), rows))
    return Section("Raw tables", "The run folder's own files, field by field (long lists shortened).", (),
                   tuple(tables))


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as dotted keys."""
    if isinstance(data, dict):
        return [item for key, value in data.items() for item in _flatten(value, f"{prefix}.{key}" if prefix else key)]
    return [(prefix or "value", data)]


def _cell(value: Any) -> str:
    """A value as a table cell: numbers to 6 significant digits, long lists shortened."""
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if isinstance(value, list):
        if len(value) > 8:
            return f"[{len(value)} values: {_cell(value[0])} ... {_cell(value[-1])}]"
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value)[:200]
    return "-" if value is None else str(value)


# ---------------------------------------------------------------------------------------------------- kinds

def _is_main(folder: Path) -> bool:
    summary = read_json(folder / "summary.json") if (folder / "summary.json").is_file() else None
    return isinstance(summary, dict) and "stages" in summary


KINDS: tuple[tuple[str, Callable[[Path], bool], Callable[[Path], Page]], ...] = (
    ("main job", _is_main, main_page),
    ("training", lambda d: (d / "config.toml").is_file() and (d / "metrics.jsonl").is_file(), training_page),
    ("verification", lambda d: (d / "verify.json").is_file(), verification_page),
    ("characterisation", lambda d: bool(_characterisations(d)), characterisation_page),
    ("fit", lambda d: bool(_artifacts(d)), fit_page),
)
"""(kind, test of a folder, page builder), tried in this order."""


def page_of(run_dir: Path) -> Page:
    """The page of a run folder of any kind; ReportError if the folder is of none."""
    for _, test, build in KINDS:
        if test(run_dir):
            return build(run_dir)
    raise ReportError(f"{run_dir} is not a cosim run folder: it holds none of summary.json with stages (main job), "
                      "config.toml + metrics.jsonl (training), verify.json (verification), a characterisation's "
                      "summary.json (characterisation) or surrogate artifacts <kind>.json (fit)")
