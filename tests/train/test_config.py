"""Training configs: shipped files, TOML round trip, overrides, and the errors a user sees."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from cosim.train.config import (
    SHIPPED,
    ConfigError,
    apply_overrides,
    config_from_dict,
    differences,
    load_config,
    to_toml,
)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_load_and_round_trip(name: str):
    cfg = load_config(name)
    assert config_from_dict(tomllib.loads(to_toml(cfg))) == cfg
    # every field is written in the shipped file itself (documented there, not left to a default)
    from cosim.train.config import shipped_config, to_dict
    written = tomllib.loads(shipped_config(name).read_text())
    for section, table in to_dict(cfg).items():
        assert set(written[section]) == set(table), (name, section)


def test_shipped_networks_match_the_paper():
    music, tactile, lif = load_config("music"), load_config("tactile"), load_config("tactile-lif")
    assert (music.model.network, music.model.hidden, music.model.v_thr, music.model.surrogate) == \
        ("music", 150, 2.0, "tanh")
    assert (music.optimiser.lr, music.optimiser.scheduler, music.data.batch_size, music.data.warmup_steps) == \
        (5e-3, "plateau", 1, 5)
    assert (tactile.model.hidden, tactile.model.encoding_repeat, tactile.optimiser.betas, tactile.data.batch_size) == \
        (256, 32, (0.9, 0.995), 128)
    assert differences(tactile, lif) == ["model.neuron", "run.out"] and lif.model.neuron == "lif"


def test_overrides_are_typed():
    cfg = load_config("music", ["model.bits=3", "model.method=bptt", "optimiser.betas=[0.8, 0.99]",
                                "model.h=1e-5", "run.epochs=2", 'run.out="x y"'])
    assert cfg.model.bits == 3 and cfg.model.method == "bptt" and cfg.optimiser.betas == (0.8, 0.99)
    assert cfg.model.h == 1e-5 and cfg.run.epochs == 2 and cfg.run.out == "x y"
    assert apply_overrides(cfg, ["model.bits=float"]).model.bits is None
    assert isinstance(apply_overrides(cfg, ["model.v_thr=3"]).model.v_thr, float)


@pytest.mark.parametrize("override, words", [
    ("modle.bits=3", ["unknown section 'modle'", "did you mean 'model'", "data, model, optimiser, run"]),
    ("model.bit=3", ["unknown key 'bit' in [model]", "did you mean 'bits'"]),
    ("model.bits=5", ["model.bits must be"]),
    ("model.bits=three", ["model.bits = 'three'", "must be int"]),
    ("model.surrogate=sigmoid", ["model.surrogate = 'sigmoid'", "'superspike', 'tanh'"]),
    ("model.method=brono", ["unknown FeLIF method 'brono'", "bruno"]),
    ("optimiser.betas=[0.9]", ["optimiser.betas", "list of 2 numbers"]),
    ("model.h=0.01", ["model.h = 0.01 s must not exceed model.dt"]),
    ("data.dataset=jsb", ["data.path is needed"]),
    ("data.dataset=synthetic_braille", ["does not go with"]),
    ("model.surrogate_file=x.json", ["surrogate file x.json: no such file"]),
    ("bits=3", ["write section.key=value"]),
    ("model.encoding_gain=[2, -2]", ["model.encoding_gain must be [low, high] with finite low <= high"]),
    ("model.weight_scale=0", ["model.weight_scale must be a finite number > 0, got 0"]),
])
def test_bad_overrides_name_the_problem(override: str, words: list[str]):
    with pytest.raises(ConfigError) as err:
        load_config("music", [override])
    for word in words:
        assert word in str(err.value)


def test_typos_in_a_file_are_named(tmp_path: Path):
    path = tmp_path / "run.toml"
    path.write_text('[model]\nnetwork = "music"\nhiden = 10\n')
    with pytest.raises(ConfigError, match=r"run.toml: unknown key 'hiden' in \[model\] \(did you mean 'hidden'\?\)"):
        load_config(path)
    path.write_text('[optimizer]\nlr = 1e-3\n')
    with pytest.raises(ConfigError, match=r"unknown section \[optimizer\] \(did you mean 'optimiser'\?\)"):
        load_config(path)
    path.write_text('[model\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="did you mean 'tactile'"):
        from cosim.train.config import shipped_config
        shipped_config("tactle")


def test_defaults_fill_missing_keys(tmp_path: Path):
    path = tmp_path / "short.toml"
    path.write_text('[data]\ndataset = "synthetic_braille"\n[model]\nnetwork = "tactile"\n'
                    '[optimiser]\nplateau_metric = "train_loss"\n')
    cfg = load_config(path)
    assert cfg.model.network == "tactile" and cfg.run.epochs == 20 and cfg.model.bits is None


def test_a_fine_step_that_would_hang_the_run_is_refused():
    with pytest.raises(ConfigError, match=r"model.h = 1e-12 s makes 1e\+09 fine sub-steps .* at most 100000"):
        load_config("music", ["model.h=1e-12"])
    assert load_config("music", ["model.h=1e-8"]).model.h == 1e-8  # 1e5 sub-steps: slow, but allowed


@pytest.mark.parametrize("override, message", [
    ("model.v_thr=1e300", r"model.v_thr = 1e\+300 V: the FeLIF membrane is held within \[-5.0049, 3.8049\] V"),
    ("model.v_thr=3.9", r"threshold it can cross is in \(0, 3.8049\) V"),
    ("model.v_thr=-1", r"model.v_thr = -1.0 V"),
    ("model.current_scale=1.0", r"model.current_scale = 1.0 A per weight unit is outside \[1e-13, 1e-05\]"),
    ("model.current_scale=nan", r"model.current_scale = nan"),
    ("model.dt=10.0", r"model.dt = 10.0 s is outside \[1e-06, 1\] s"),
])
def test_physical_parameters_stay_in_ranges_a_device_can_have(override: str, message: str):
    with pytest.raises(ConfigError, match=message):
        load_config("music", [override])


def test_verifying_fewer_music_steps_than_the_warm_up_is_refused():
    """With verify.max_steps at or below the warm-up no (step, key) cell is compared, and the agreement came out 0."""
    with pytest.raises(ConfigError, match="verify.max_steps = 5 leaves nothing to compare"):
        load_config("music", ["verify.max_steps=5"])
    assert load_config("music", ["verify.max_steps=6"]).verify.max_steps == 6
