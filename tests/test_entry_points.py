"""The examples and the ``hfadapt`` command: every ``--help`` works; bad arguments, YAML files and model folders
are one line naming the cause and the fix, exit status 2 (``--debug`` shows the traceback); an output folder holding
a previous run's results is refused unless ``--overwrite_output_dir`` (or resuming) is given."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import saved_tiny_bert

from hfadapt.cli import main as cli
from hfadapt.cli.args import report_errors
from hfadapt.cli.scripts import text_transfer
from hfadapt.trainer.integrity import write_manifest
from hfadapt.trainer.preflight import OutputDirInUseError, check_output_dir

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def run(*args):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args", [
    ["examples/sentiment_transfer.py", "--help"], ["examples/digits_transfer.py", "--help"],
    ["-m", "hfadapt.cli.main", "--help"], ["-m", "hfadapt.cli.main", "train", "--help"],
    ["-m", "hfadapt.cli.main", "evaluate", "--help"], ["-m", "hfadapt.cli.main", "report", "--help"],
    ["-m", "hfadapt.cli.main", "fuse", "--help"],
], ids=lambda a: " ".join(a))
def test_every_entry_point_has_a_help(args):
    done = run(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout.lower() and "Traceback" not in done.stderr


def one_line_error(capsys, main, prog="prog"):
    with pytest.raises(SystemExit) as exit_info:
        report_errors(main, prog)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "\n" not in err and err.startswith(f"{prog}: error: ")
    assert err.endswith("(--debug shows the traceback)")
    return err


def test_a_malformed_yaml_names_the_file_and_line(tmp_path, capsys):
    config = tmp_path / "mine.yaml"
    config.write_text("method: dann\nlearning_rate: [1e-4\n  max_steps: 3\n")
    err = one_line_error(capsys, lambda: text_transfer.main(["--config", str(config)]))
    assert f"{config}, line 3: not valid YAML (" in err and "fix that line" in err


def test_a_yaml_list_is_refused_naming_the_file(tmp_path, capsys):
    config = tmp_path / "mine.yaml"
    config.write_text("- method\n- dann\n")
    err = one_line_error(capsys, lambda: text_transfer.main(["--config", str(config)]))
    assert f"{config} holds a YAML list, not a mapping of argument names to values" in err


def test_debug_shows_the_traceback(tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text("- method\n")
    quiet = run("examples/sentiment_transfer.py", "--config", str(config))
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr and "holds a YAML list" in quiet.stderr
    loud = run("examples/sentiment_transfer.py", "--config", str(config), "--debug")
    assert loud.returncode != 0 and "Traceback" in loud.stderr and "ValueError" in loud.stderr


def test_hfadapt_errors_go_through_the_same_handler(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--config", str(tmp_path / "absent.yaml")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err == (f"hfadapt train: error: --config {tmp_path / 'absent.yaml'}: no such "
                                                 "file (--debug shows the traceback)")


def test_evaluate_on_a_missing_folder_names_it(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evaluate", str(tmp_path / "nope"), "--domain", "books"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "\n" not in err
    assert err.startswith(f"hfadapt evaluate: error: model folder {tmp_path / 'nope'} does not exist")


def test_evaluate_refuses_a_model_folder_that_fails_its_manifest(tmp_path, capsys):
    model_dir = saved_tiny_bert(tmp_path / "model")
    write_manifest(model_dir)
    weights = model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evaluate", str(model_dir), "--domain", "books"])
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the save's progress bar
    assert exit_info.value.code == 2
    assert f"IntegrityError: {weights} is truncated or was rewritten" in err


def finished_run(folder: Path) -> Path:
    (folder / "dann").mkdir(parents=True)
    (folder / "dann" / "config.json").write_text("{}")
    write_manifest(folder / "dann")
    (folder / "results.json").write_text("{}")
    return folder


def test_the_example_refuses_a_used_output_folder_before_reading_data(tmp_path, capsys):
    out = finished_run(tmp_path / "out")
    before = sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*"))
    err = one_line_error(capsys, lambda: text_transfer.main(["--output_dir", str(out), "--train_file", "absent.csv"]))
    assert (f"output_dir {out} holds a previous run's results (results.json, dann/); nothing was trained or written. "
            "Pass --overwrite_output_dir to replace them, --resume_from_checkpoint true to continue that run") in err
    assert sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*")) == before


def test_hfadapt_train_refuses_a_used_output_folder(tmp_path):
    out = finished_run(tmp_path / "out")
    done = run("-m", "hfadapt.cli.main", "train", "--output_dir", str(out), "--max_steps", "1")
    assert done.returncode == 2 and "holds a previous run's results (results.json, dann/)" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("settings", [{"overwrite_output_dir": True}, {"resume_from_checkpoint": "true"},
                                      {"resume_from_checkpoint": "out/dann/checkpoint-2"}])
def test_overwrite_or_resume_is_allowed(tmp_path, settings):
    from types import SimpleNamespace

    out = finished_run(tmp_path / "out")
    check_output_dir(SimpleNamespace(output_dir=str(out), **settings))
    with pytest.raises(OutputDirInUseError):
        check_output_dir(SimpleNamespace(output_dir=str(out), overwrite_output_dir=False, resume_from_checkpoint=None))


def test_a_folder_with_only_checkpoints_or_nothing_is_not_refused(tmp_path):
    from types import SimpleNamespace

    (tmp_path / "out" / "dann" / "checkpoint-2").mkdir(parents=True)
    write_manifest(tmp_path / "out" / "dann" / "checkpoint-2")
    for folder in (tmp_path / "out", tmp_path / "absent"):
        check_output_dir(SimpleNamespace(output_dir=str(folder), overwrite_output_dir=False,
                                         resume_from_checkpoint=None))
