"""benchmarks/braille_table.py: the --quick path on a subset of the real recordings (JSON structure, skip on rerun),
the validation part carved from the training split only, and the search's draws."""
from __future__ import annotations

import importlib.util
import json
import math
import statistics
from pathlib import Path

import pytest
import torch

from cosim.train.config import load_config
from cosim.train.tasks import make_task

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("braille_table", ROOT / "benchmarks" / "braille_table.py")
table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(table)


@pytest.mark.skipif(not (ROOT / table.DATA_PATH).exists(), reason=f"shared Braille file not at {table.DATA_PATH}")
def test_quick_run_writes_the_table_and_skips_what_is_done(tmp_path):
    argv = ["--quick", "--cells", "felif-3,lif-3", "--results", str(tmp_path), "--runs", str(tmp_path / "runs"),
            "--threads", "1"]
    data = table.main(argv)
    assert sorted(data["ran"]) == ["felif-3/search/trial0", "felif-3/seed0", "lif-3/search/trial0", "lif-3/seed0"]
    written = json.loads((tmp_path / "braille_table.json").read_text())
    assert written["data"] == "real-events-th10" and written["encoding"].startswith("rebuilt")
    assert set(written["cells"]) == {"felif", "lif"}
    for neuron in ("felif", "lif"):
        assert set(written["cells"][neuron]) == {"3"}
        cell = written["cells"][neuron]["3"]
        assert {"mean", "std", "seeds", "epochs", "epochs_to_70"} <= set(cell)
        assert cell["seeds"] == [0] and cell["epochs"] == 1 and 0 <= cell["mean"] <= 1 and cell["std"] == 0
    assert written["paper"]["felif"]["3"] == {"mean": 74.73, "std": 1.37}
    assert (tmp_path / "braille_table.png").stat().st_size > 0
    seed_file = tmp_path / "braille_table" / "felif-3" / "seed0.json"
    run = json.loads(seed_file.read_text())
    assert run["sizes"] == {"train": table.QUICK["train"], "test": table.QUICK["test"]}
    assert len(run["test_accuracy"]) == len(run["epoch_seconds"]) == 1 and run["setup"] == table.SETUP
    assert run["hyper"] == table.START  # FeLIF: every searched key, trial 0
    search = json.loads((tmp_path / "braille_table" / "felif-3" / "search.json").read_text())
    assert len(search["trials"]) == 1 and search["best"]["hyper"] == table.START

    before = seed_file.stat().st_mtime_ns
    again = table.main(argv)
    assert again["ran"] == [] and seed_file.stat().st_mtime_ns == before
    assert again["cells"]["felif"]["3"]["mean"] == data["cells"]["felif"]["3"]["mean"]


@pytest.mark.skipif(not (ROOT / table.DATA_PATH).exists(), reason=f"shared Braille file not at {table.DATA_PATH}")
def test_post_training_quantisation_of_a_float_cell(tmp_path):
    common = ["--quick", "--results", str(tmp_path), "--runs", str(tmp_path / "runs"), "--threads", "1"]
    table.main(["--cells", "lif-float", *common])
    data = table.main(["--ptq", *common])
    record = json.loads((tmp_path / "braille_table" / "ptq.json").read_text())
    assert set(record["cells"]) == {"lif"} and set(record["cells"]["lif"]) == {"float", "8", "4", "3"}
    run = json.loads((tmp_path / "braille_table" / "lif-float" / "seed0.json").read_text())
    # unquantised, the same network on the same test samples: the seed run's own last figure
    assert record["cells"]["lif"]["float"]["0"]["test_accuracy"] == run["test_accuracy"][-1]
    assert data["post_training_quantisation"]["lif"]["3"]["seeds"] == [0]
    assert data["input_baselines"] == table.run_baselines(tmp_path / "runs" / "lif-float" / "seed0")
    assert 0 < data["input_baselines"]["logistic regression"] <= 1
    assert 0 <= data["post_training_quantisation"]["lif"]["3"]["mean"] <= 1


def test_results_of_another_set_up_are_not_mixed_in(tmp_path: Path):
    path = tmp_path / "lif-3" / "seed0.json"
    assert table._same_setup(None, path) is None
    assert table._same_setup({"setup": table.SETUP}, path) == {"setup": table.SETUP}
    with pytest.raises(SystemExit, match="made with set-up None, not 'init-v2'.*move its cell folder"):
        table._same_setup({"epochs": 8}, path)


def test_validation_part_comes_from_the_training_split_only():
    task = make_task(load_config("tactile", ["data.synthetic_per_class=5"]).data)
    valid = table.validation_task(task)
    train = task.splits["train"].inputs
    assert valid.sizes["train"] + valid.sizes["test"] == task.sizes["train"] == 108
    assert valid.sizes["test"] == round(108 * table.VALID_FRACTION)
    rows = {tuple(x.flatten().tolist()) for x in train}
    parts = [{tuple(x.flatten().tolist()) for x in valid.splits[name].inputs} for name in ("train", "test")]
    assert parts[0] | parts[1] == rows and not parts[0] & parts[1]
    assert not any(torch.equal(x, y) for x in task.splits["test"].inputs[:5] for y in valid.splits["test"].inputs)


def test_search_draws_and_cells():
    assert table.search_draw(0, "felif") == table.START
    assert table.search_draw(0, "lif") == {"lr": 2e-3, "weight_scale": 0.3}
    draw = table.search_draw(3, "felif")
    assert draw == table.search_draw(3, "felif") and draw["lr"] == table.search_draw(3, "rlif")["lr"]
    for key, (low, high) in table.SEARCH_SPACE.items():
        assert all(low * 0.99 <= table.search_draw(k, "felif")[key] <= high * 1.01 for k in range(1, 20))
    assert len({table.search_draw(k, "felif")["lr"] for k in range(1, 20)}) == 19
    assert table.parse_cells("felif-3,rlif") == [("felif", "3"), ("rlif", "3"), ("rlif", "4"), ("rlif", "8"),
                                                ("rlif", "float")]
    assert len(table.parse_cells("all")) == 12 and table.parse_seeds(None, "3") == list(range(10))
    assert table.parse_seeds("0-2,5", "float") == [0, 1, 2, 5] and table.parse_seeds(None, "8") == [0, 1, 2]
    with pytest.raises(SystemExit, match="felif-3"):
        table.parse_cells("felif-2")


def test_cell_summary_at_the_common_epoch():
    runs = [{"seed": s, "epochs": len(acc), "target_epochs": 4, "stopped": None, "test_accuracy": acc,
             "train_accuracy": [a + 0.05 for a in acc], "epoch_seconds": [1.0] * len(acc), "hyper": {"lr": 1e-3},
             "threads": 1}
            for s, acc in enumerate([[0.5, 0.71, 0.8, 0.9], [0.6, 0.65, 0.72], [0.2, 0.3, 0.4, 0.5]])]
    cell = table.summarise_cell(runs)
    assert cell["epochs"] == 3 and cell["seeds"] == [0, 1, 2]
    assert math.isclose(cell["mean"], (0.8 + 0.72 + 0.4) / 3)
    assert cell["epochs_to_70"] == 3 and cell["reached_70"] == 2  # epochs 2, 3 and never: median 3
    assert cell["test_curve"] == [statistics.mean(x) for x in ([0.5, 0.6, 0.2], [0.71, 0.65, 0.3], [0.8, 0.72, 0.4])]
    assert len(cell["train_curve"]) == 3


def test_level_use_counts_the_nearest_levels():
    # abs-max scale: max|w| = 3.5 levels at 3 bits, so w = 1, 0.5, 0.2, -0.1, 0.05 are levels 3, 2, 1, 0, 0
    w = torch.tensor([[1.0, 0.5, 0.2, -0.1, 0.05]])
    use = table.level_use({"output_synapses.weight": w, "encoding.gain": torch.ones(4)}, 3)
    assert list(use) == ["output_synapses.weight"]
    assert use["output_synapses.weight"]["zero"] == pytest.approx(0.4)
    assert use["output_synapses.weight"]["within_one"] == pytest.approx(0.6)
    assert use["output_synapses.weight"]["p99_over_max"] == pytest.approx(torch.quantile(w.abs(), 0.99).item())
