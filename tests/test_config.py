"""The conf loader: sections, unique keys, typed command-line overrides, clear errors."""
from pathlib import Path

import pytest
import yaml

from asteroid_avspeech.config import ConfigError, apply_overrides, load_conf, parse_conf

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def conf_file(tmp_path):
    path = tmp_path / "conf.yml"
    path.write_text("training:\n  lr: 1e-3\n  epochs: 3\n  loss: spec_mse\nmixtures:\n  snr_range: [-5, 5]\n  path: null\n")
    return path


def test_recipe_conf_has_the_sections_the_issue_asks_for():
    conf = load_conf(REPO / "conf.yml")
    for section in ("data", "visual", "model", "training", "optim", "eval"):
        assert section in conf, section
    assert conf["optim"]["lr"] == pytest.approx(1e-3)


def test_scientific_notation_is_a_float(conf_file):
    assert load_conf(conf_file)["training"]["lr"] == pytest.approx(1e-3)


def test_overrides_are_typed(conf_file):
    conf = apply_overrides(load_conf(conf_file),
                           ["--lr", "1e-4", "--epochs=7", "--snr_range", "[-3, 3]", "--path", "a b/c"])
    assert conf["training"]["lr"] == pytest.approx(1e-4)
    assert conf["training"]["epochs"] == 7
    assert conf["mixtures"]["snr_range"] == [-3, 3]
    assert conf["mixtures"]["path"] == "a b/c"
    assert load_conf(conf_file)["training"]["epochs"] == 3  # the file itself is untouched


def test_unknown_key_names_the_closest_valid_one(conf_file):
    with pytest.raises(ConfigError, match=r"--epoch.*Did you mean --epochs"):
        apply_overrides(load_conf(conf_file), ["--epoch", "3"])


def test_missing_value_and_stray_argument(conf_file):
    with pytest.raises(ConfigError, match="needs a value"):
        apply_overrides(load_conf(conf_file), ["--epochs"])
    with pytest.raises(ConfigError, match="Unexpected argument"):
        apply_overrides(load_conf(conf_file), ["epochs", "3"])


def test_duplicate_key_across_sections_is_rejected(tmp_path):
    path = tmp_path / "conf.yml"
    path.write_text("a:\n  x: 1\nb:\n  x: 2\n")
    with pytest.raises(ConfigError, match="'x' is in sections 'a' and 'b'"):
        load_conf(path)


def test_missing_file_names_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="--conf"):
        load_conf(tmp_path / "nope.yml")


def test_parse_conf_for_entry_points(conf_file, capsys):
    import argparse

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--exp_dir", required=True)
    conf, args = parse_conf(["--conf", str(conf_file), "--exp_dir", "exp/x", "--epochs", "5"], extra=extra)
    assert args.exp_dir == "exp/x" and conf["training"]["epochs"] == 5
    with pytest.raises(SystemExit):
        parse_conf(["--conf", str(conf_file), "--bogus", "1"])
    assert "Unknown option --bogus" in capsys.readouterr().err


def test_dump_round_trip(conf_file, tmp_path):
    from asteroid_avspeech.config import dump_conf

    conf = load_conf(conf_file)
    dump_conf(conf, tmp_path / "out" / "conf.yml")
    assert yaml.safe_load((tmp_path / "out" / "conf.yml").read_text()) == conf
