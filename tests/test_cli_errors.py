"""Bad inputs to the `cosim` command line give one line that says what is wrong and where, exit code 1 or 2, and
no traceback (the cases of a hostile test of the command line, issue 17)."""
from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path

import pytest

from cosim.cli import main
from cosim.train.checkpoint import checkpoint_path
from cosim.train.config import load_config
from cosim.train.loop import train

TINY = ["model.hidden=4", "model.bits=3", "model.h=1e-5", "run.epochs=2", "run.threads=1"]
"""A music network small enough to train two epochs in about a second."""


@pytest.fixture(scope="module")
def jsb_file(write_jsb) -> Path:
    return write_jsb(5, train=(14, 12), valid=(12,), test=(14,), low=55, high=80)


@pytest.fixture(scope="module")
def trained(jsb_file: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "music"
    train(load_config("music", ["data.dataset=jsb", f"data.path={json.dumps(str(jsb_file))}", *TINY,
                                f"run.out={json.dumps(str(out))}"]), progress=False)
    return out


@pytest.fixture
def run_dir(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained run that a test may damage (its config names the copy as the run folder)."""
    copy = Path(shutil.copytree(trained, tmp_path / "run"))
    config = copy / "config.toml"
    config.write_text(config.read_text().replace(json.dumps(str(trained)), json.dumps(str(copy))))
    return copy


def fails(capsys, argv: list[str], code: int, *names: str) -> str:
    """Run `cosim argv`; check the exit code, that the error is one line naming each of `names`, no traceback."""
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    message = err.strip().splitlines()[-1]  # argparse puts its usage lines before the error line
    for name in names:
        assert name in message, (name, err)
    return message


def usage_error(capsys, argv: list[str], *names: str) -> str:
    """Like `fails` for an error argparse reports (it exits with code 2)."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    message = err.strip().splitlines()[-1]
    for name in names:
        assert name in message, (name, err)
    return message


def test_a_config_file_that_is_not_utf8(capsys, tmp_path: Path):
    config = tmp_path / "latin1.toml"
    config.write_bytes('[run]\nout = "runs/caf\xe9"\n'.encode("latin-1"))
    fails(capsys, ["train", "--config", str(config)], 1, str(config), "UTF-8")


@pytest.mark.parametrize("override, names", [
    ("optimiser.lr=1e300", ("lr = 1e+300", "lr <= 1")),
    ("model.hidden=100000000", ("model.hidden", "100000000")),
    ("data.eval_batch_size=10000000", ("data.eval_batch_size",)),
    ("model.h=1e-12", ("model.h", "sub-steps")),
])
def test_values_that_would_overflow_or_allocate_without_end(capsys, override: str, names: tuple[str, ...]):
    started = time.monotonic()
    fails(capsys, ["train", "--set", override], 1, *names)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("option, value", [("--samples", "0"), ("--samples", "-2"), ("--budget", "nan"),
                                           ("--budget", "-1"), ("--budget", "0"), ("--max-steps", "-5"),
                                           ("--max-steps", "0"), ("--jobs", "0")])
def test_verify_refuses_meaningless_counts_and_budgets(capsys, trained: Path, option: str, value: str):
    usage_error(capsys, ["verify", str(trained), option, value], option, value)


def test_verify_options_are_checked_behind_the_command_line_too(trained: Path):
    from cosim.train.config import ConfigError
    from cosim.verify.runner import verify_run

    for options in ({"samples": 0}, {"cpu_budget_s": float("nan")}, {"cpu_budget_s": -1.0}, {"max_steps": -5}):
        with pytest.raises(ConfigError, match="verify: need"):
            verify_run(trained, **options)


def test_verify_names_the_levels_file_given(capsys, trained: Path):
    message = fails(capsys, ["verify", str(trained), "--levels-file", "x.toml"], 2, "x.toml", "levels.json")
    assert "x.json" not in message


def test_verify_fails_fast_when_no_scheduler_listens(capsys, trained: Path):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    started = time.monotonic()
    fails(capsys, ["verify", str(trained), "--scheduler", address], 1, address, "no Dask scheduler")
    assert time.monotonic() - started < 5


def test_report_on_a_folder_that_does_not_exist(capsys, tmp_path: Path):
    fails(capsys, ["report", str(tmp_path / "nowhere")], 1, str(tmp_path / "nowhere"), "does not exist")


@pytest.mark.parametrize("damage", ["truncated", "empty", "folder", "changed"])
def test_damaged_checkpoints_on_resume_and_verify(capsys, run_dir: Path, damage: str):
    path = checkpoint_path(run_dir, 2)
    data = path.read_bytes()
    if damage == "folder":
        path.unlink()
        path.mkdir()
    else:
        cut = {"truncated": data[:len(data) // 2], "empty": b"", "changed": data[:-600] + b"\0" * 8 + data[-592:]}
        path.write_bytes(cut[damage])
    previous = str(checkpoint_path(run_dir, 1))
    fails(capsys, ["train", "--resume", "--out", str(run_dir)], 1, str(path), previous)
    fails(capsys, ["verify", str(run_dir)], 1, str(path), previous)


def test_a_garbled_config_in_the_run_folder(capsys, run_dir: Path, jsb_file: Path):
    config = run_dir / "config.toml"
    config.write_text(config.read_text()[:200] + "\n[model\nhidden = ")
    fails(capsys, ["train", "--resume", "--out", str(run_dir)], 1, str(config), "not valid TOML")
    same = ["--set", "data.dataset=jsb", "--set", f"data.path={json.dumps(str(jsb_file))}"]
    for item in TINY:
        same += ["--set", item]
    fails(capsys, ["train", "--config", "music", "--resume", "--out", str(run_dir), *same], 1, str(config),
          "not valid TOML")
    fails(capsys, ["verify", str(run_dir)], 1, str(config), "not valid TOML")
    assert (run_dir / "metrics.jsonl").is_file() and checkpoint_path(run_dir, 2).is_file()  # nothing lost


def test_the_main_job_reports_a_bad_override_in_one_line(capsys, tmp_path: Path):
    fails(capsys, ["run", "--out", str(tmp_path / "main"), "--set", "model.v_thr=1e300"], 1, "model.v_thr")
