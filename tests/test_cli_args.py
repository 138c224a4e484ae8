from dataclasses import dataclass, field

import pytest

from hfadapt import AdaptConfig
from hfadapt.cli.args import parse_with_config


@dataclass
class Script:
    source: str = field(default="books", metadata={"help": "source"})


def test_yaml_sets_defaults_and_command_line_wins(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(f"source: dvd\nmethod: mmd\nmmd_weight: 0.5\noutput_dir: {tmp_path}\nreport_to: none\n")
    script, config = parse_with_config((Script, AdaptConfig), ["--config", str(path), "--mmd_weight", "2"])
    assert script.source == "dvd" and config.method == "mmd" and config.mmd_weight == 2.0


def test_default_config_is_read_when_no_config_is_given(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text(f"source: kitchen\noutput_dir: {tmp_path}\nreport_to: none\n")
    script, _ = parse_with_config((Script, AdaptConfig), [], default_config=path)
    assert script.source == "kitchen"


def test_unknown_key_and_missing_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("sorce: dvd\n")
    with pytest.raises(ValueError, match="unknown argument.*sorce"):
        parse_with_config((Script, AdaptConfig), ["--config", str(path)])
    with pytest.raises(FileNotFoundError):
        parse_with_config((Script, AdaptConfig), ["--config", str(tmp_path / "none.yaml")])


def test_ignored_keys_are_left_out(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(f"source: dvd\nmax_length: 64\noutput_dir: {tmp_path}\nreport_to: none\n")
    (config,) = parse_with_config((AdaptConfig,), ["--config", str(path)], ignore_keys=("source", "max_length"))
    assert config.output_dir == str(tmp_path)


def test_methods_as_a_yaml_list(tmp_path):
    path = tmp_path / "l.yaml"
    path.write_text(f"method: [dann, mmd]\nmmd_weight: 0.5\noutput_dir: {tmp_path}\nreport_to: none\nuse_cpu: true\n")
    (config,) = parse_with_config((AdaptConfig,), ["--config", str(path)])
    assert config.method == "dann+mmd" and config.method_names == ["dann", "mmd"]
