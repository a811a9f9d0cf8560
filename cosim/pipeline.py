"""The main job: a small end-to-end run of the whole pipeline on the embedded defaults.

characterise the devices (quick testbenches) -> load the shipped surrogates -> train the music predictor with
BRUNO and 3-bit RRAM synapses for a few epochs (verified in SPICE during training) -> verify the final network
in SPICE -> one HTML report. Every stage writes into the run folder; `summary.json` there holds the command, the
commit and machine, the stages with their wall times, and the outcomes (`cosim.report.outcomes`: each headline
figure with its definition, value, baselines on the same data, the paper's value and the goal), which the job
also prints when it ends.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from cosim.train.config import load_config

MAIN_OVERRIDES: tuple[str, ...] = (
    "model.bits=3",
    'model.surrogate_file="default"',
    "run.epochs=5",
    "optimiser.lr=0.02",
    "data.train_subset=40",
    "data.valid_subset=10",
    "data.test_subset=10",
    "verify.every=2",
    "verify.samples=2",
    "verify.max_steps=16",
    "verify.cpu_budget_s=60",
)
"""The main job's changes to the shipped `music` config: 3-bit synapses, the fitted FeLIF surrogate, and a run
small enough for about 5 minutes on 2 cores (a subset of the music21 Bach chorales, short verifications). The
learning rate is 4x the paper's: with 5e-3, 3 epochs on 40 chorales ended above the key-frequency baseline (test
BCE 0.219 vs 0.205); with 2e-2 the network passes it at epoch 2 and reached 0.195 at epoch 5 (analytic FeLIF,
same subsets)."""

_REPO = Path(__file__).resolve().parents[1]


def run_main(out: Path | str, overrides: tuple[str, ...] = (), devices: Sequence[str] | None = None,
             device_card: str = "", synapse_card: str = "") -> Path:
    """Run the main job into folder `out`; return the path of its report.

    `overrides` ("section.key=value") are applied to the training config after `MAIN_OVERRIDES`; `devices`: the
    characterisations to run (default: every registered one). `device_card`: a device card of the neuron device
    (FeLIF: a FeCap card, `cosim calibrate fecap`): the characterisations of the FeCap and the neuron run on the
    calibrated device, the FeLIF surrogate is fitted to its circuit (``surrogates/felif.json`` in the run folder,
    instead of the shipped one), and training and verification run on it. `synapse_card`: the same for the synapse
    device (an RRAM card: its characterisation and the write-verify population verification draws from).
    """
    from cosim.devices.characterize import card_of, characterization_names, characterize
    from cosim.report import build_report, format_outcomes, training_outcomes
    from cosim.surrogates.artifact import cosim_version
    from cosim.train.loop import train
    from cosim.verify.runner import verify_epoch, verify_run

    run_dir = Path(out)
    run_dir.mkdir(parents=True, exist_ok=True)
    cards = tuple(f"model.{key}={json.dumps(str(Path(card).resolve()))}"
                  for key, card in (("device_card", device_card), ("synapse_card", synapse_card)) if card)
    fitted = run_dir / "surrogates" / "felif.json"
    settings = MAIN_OVERRIDES + (f"run.out={json.dumps(str(run_dir))}",) + cards + tuple(overrides)
    if device_card:  # the run's own surrogate, fitted below; the cards are checked before anything runs
        load_config("music", settings + ('model.surrogate_file=""',))
        settings += (f"model.surrogate_file={json.dumps(str(fitted.resolve()))}",)
    else:
        cfg = load_config("music", settings)
    stages: dict[str, dict[str, Any]] = {}
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")

    def stage(name: str, work: Callable[[], Any]) -> Any:
        print(f"cosim run: {name} ...", flush=True)
        start = time.perf_counter()
        result = work()
        stages[name] = {"seconds": round(time.perf_counter() - start, 1)}
        return result

    for device in characterization_names() if devices is None else devices:
        card = card_of(device, device_card, synapse_card)
        stage(f"characterize {device}", lambda device=device, card=card: characterize(
            device, run_dir / "characterization" / device, quick=True, card=card))
    stage("surrogates", lambda: _copy_surrogate_reports(run_dir / "surrogates", skip="felif" if device_card else ""))
    if device_card:
        stage("fit felif surrogate to the device card", lambda: _fit_to_card(fitted, device_card))
        cfg = load_config("music", settings)
    history = stage("train", lambda: train(cfg, resume=(run_dir / "checkpoints").is_dir(), verify=verify_epoch))
    stages["train"]["final"] = history[-1]
    verified = stage("verify", lambda: verify_run(run_dir))
    stages["verify"]["figures"] = {k: verified[k] for k in ("prediction_agreement", "spike_count_agreement",
                                                            "spike_time_error_s", "spice_metric", "surrogate_metric")}
    _copy_benchmark_figures(run_dir / "benchmarks")
    outcomes = training_outcomes(run_dir)
    command = shlex.join(["cosim", "run", "--out", str(run_dir)]
                         + [a for flag, card in (("--device-card", device_card), ("--synapse-card", synapse_card))
                            if card for a in (flag, str(card))]
                         + [a for o in overrides for a in ("--set", o)])
    summary = {"command": command, "cosim": cosim_version(), "machine": f"{platform.node()}, {os.cpu_count()} CPUs",
               "started": started, "overrides": [o for o in settings if not o.startswith("run.out=")], "stages": stages,
               "outcomes": [outcome.to_dict() for outcome in outcomes]}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    report = build_report(run_dir)
    print(f"cosim run: outcomes (test split after epoch {history[-1]['epoch']}; definitions in {report}):\n"
          f"{format_outcomes(outcomes)}", flush=True)
    return report


def _fit_to_card(out: Path, device_card: str) -> str:
    """The FeLIF surrogate fitted to the neuron of `device_card`, at `out`: fitted now, or kept from an earlier
    (interrupted) run of the job if it was fitted to the same card (same SHA-256). Returns what was done."""
    from cosim.devices.card import card_sha256
    from cosim.surrogates import fitter, load_felif

    if out.is_file():
        recorded = load_felif(out).device_card or {}
        if recorded.get("sha256") == card_sha256(device_card):
            return f"kept {out} (fitted to this card)"
    fitter("felif")(out, device_card=device_card)
    return f"fitted {out}"


def _copy_surrogate_reports(dest: Path, skip: str = "") -> list[str]:
    """The shipped surrogate artifacts this run uses, with their validation plots, into the run folder (those of
    kind `skip` left out: the run fits its own)."""
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for path in sorted((_REPO / "surrogates").glob("*")):
        if skip and path.name.startswith(skip):
            continue
        if path.suffix in (".json", ".png", ".md"):
            shutil.copy2(path, dest / path.name)
            copied.append(path.name)
    return copied


def _copy_benchmark_figures(dest: Path) -> None:
    """BRUNO vs BPTT memory/time as last measured by benchmarks/bruno_vs_bptt.py (see benchmarks/RESULTS.md)."""
    source = _REPO / "benchmarks" / "results"
    for name in ("bruno_vs_bptt.json", "bruno_vs_bptt.png"):
        if (source / name).is_file():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, dest / name)
