"""The ``hfadapt`` command: ``hfadapt train``, ``hfadapt evaluate``, ``hfadapt report``, ``hfadapt fuse``.

Subcommands in the manner of the HuggingFace CLIs (``hf download``, ``trl sft``): each has its own ``--help``.
``train`` launches the text or image script of :mod:`hfadapt.cli.scripts` through accelerate with the default recipe
(``hfadapt/cli/recipes/``), a user's ``--config`` YAML over it and flags over both; ``evaluate`` scores a saved model
on any labelled set; ``report`` draws the plots and writes the markdown report of a finished run; ``fuse`` saves
several trained models as one (an ensemble, a uniform or greedy model soup, or a WiSE-FT interpolation).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..fusion import FUSION_MODES, fuse_folders
from ..fusion.folders import check_model_folder
from .args import DEBUG_FLAG, pop_debug, report_errors
from .labelled_set import (
    add_labelled_set_arguments,
    classification_scores,
    names_a_labelled_set,
    prepared_labelled_set,
)

TRAIN_MODULE = "hfadapt.cli.scripts.train"
"""The module ``hfadapt train`` launches through ``accelerate launch -m`` (inside the package: works from a wheel)."""
LAUNCHER_HELP = """launcher options (hfadapt train):
  --task {text,image}        the script: text classification (recipe sentiment_transfer.yaml) or image
                             classification (digits_transfer.yaml); default: image if the arguments name image
                             data or the digits domains, else text
  --config FILE.yaml         a recipe of your own, layered over the task's default recipe; flags override both
  --accelerate_config FILE   an accelerate config (accelerate launch --config_file), e.g. several GPUs
  --num_processes N          processes to launch (accelerate launch --num_processes)
  --debug                    show the traceback of an error instead of one line
"""


def train_parser(task: str):
    """The argument parser (:class:`~hfadapt.cli.args.SettingsArgumentParser`) of ``task``'s script: its data,
    model and :class:`~hfadapt.AdaptConfig` arguments, the methods' settings among them."""
    from .args import SettingsArgumentParser
    from .scripts.train import script_main

    module = sys.modules[script_main(task).__module__]
    return SettingsArgumentParser(module.ARGUMENT_TYPES, prog="hfadapt train",
                            usage="hfadapt train [--task TASK] [--config FILE.yaml] [--flag value ...]")


def train_help(task: str) -> str:
    """``hfadapt train --help``: the launcher's options, then every argument of ``task``'s script with its help."""
    return LAUNCHER_HELP + "\n" + train_parser(task).format_help()


def train(argv: list[str]) -> None:
    """``hfadapt train``: launch the training script through ``accelerate launch`` (as ``trl sft`` does) with
    ``argv``: ``--task``, ``--config``, ``--accelerate_config``, ``--num_processes`` and any script flag. With
    ``-h`` / ``--help`` print every argument instead.

    Raises:
        FileNotFoundError: for a missing ``--config`` or ``--accelerate_config`` file.
        SystemExit: with the training process's exit status if it fails.
    """
    import subprocess

    from accelerate.commands.launch import launch_command, launch_command_parser

    from .scripts.train import split_task

    launcher = argparse.ArgumentParser(add_help=False)
    launcher.add_argument("--accelerate_config", default=None)
    launcher.add_argument("--num_processes", type=int, default=None)
    launcher.add_argument("-h", "--help", action="store_true")
    known, rest = launcher.parse_known_args(argv)
    task, script_args = split_task(rest)
    if known.help:
        print(train_help(task))
        return
    config = next((script_args[i + 1] for i, a in enumerate(script_args[:-1]) if a == "--config"), None)
    for path, flag in ((config, "--config"), (known.accelerate_config, "--accelerate_config")):
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"{flag} {path} does not exist")
    launch = ["--config_file", known.accelerate_config] if known.accelerate_config else []
    launch += ["--num_processes", str(known.num_processes)] if known.num_processes else []
    launch_args = launch_command_parser().parse_args([*launch, "--module", TRAIN_MODULE, "--task", task,
                                                      *script_args])
    try:
        launch_command(launch_args)
    except subprocess.CalledProcessError as err:
        raise SystemExit(err.returncode) from None


def evaluate_model(args: argparse.Namespace) -> dict[str, float]:
    """Accuracy, macro-F1 and per-class recall of the model in ``args.model_dir`` on a labelled set: a dataset
    (``--dataset_name``, ``--split``), a file (``--test_file``), a domain of one (``--domain_column_name`` +
    ``--domain``), or a domain of the shipped demo data (``--domain books``, ``--domain usps``). Labels are matched
    to the model's ``id2label`` by name (integer ids also work). Printed as JSON and returned.

    The model folder is checked first: a missing folder or one without ``config.json`` is a
    ``FileNotFoundError`` naming it, and a folder hfadapt saved must match its sha256 manifest
    (:func:`~hfadapt.trainer.integrity.verify_manifest`; ``IntegrityError`` names the damaged file).

    Raises:
        ValueError: for a missing column (listing those there are) or labels the model does not know.
    """
    from transformers import AutoModelForImageClassification, AutoModelForSequenceClassification

    from ..trainer.integrity import verify_manifest

    model_dir = Path(args.model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model folder {model_dir} does not exist: give the folder a run saved its model to "
                                "(e.g. <output_dir>/dann)")
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} holds no config.json: not a saved model folder (a run saves its models "
                                "in <output_dir>/<method>/)")
    verify_manifest(model_dir, missing_ok=True)  # a folder saved by hfadapt must be whole and unchanged
    labelled = prepared_labelled_set(args, model_dir)
    auto = AutoModelForImageClassification if labelled.is_image else AutoModelForSequenceClassification
    model = auto.from_pretrained(model_dir, use_safetensors=True)
    metrics = classification_scores(model, labelled, args)
    print(json.dumps(metrics, indent=2))
    return metrics


def report(args: argparse.Namespace) -> None:
    """Write the plots and ``report.md`` of ``args.run_dir`` (:func:`hfadapt.evaluation.report.write_report`)."""
    from ..evaluation.report import write_report

    print(f"written: {write_report(args.run_dir)}")


def fuse(args: argparse.Namespace) -> None:
    """Fuse the models in ``args.model_dirs`` into ``args.output_dir`` (:func:`hfadapt.fusion.fuse_folders`); a
    greedy soup scores its candidates on the labelled held-out set the arguments name, read with the first
    folder's tokenizer or processor, and prints the folders it kept."""
    mode, score = FUSION_MODES[args.mode], None
    mode.check(args.mode, len(args.model_dirs), args.weights, args.alpha)  # before any data or model is read
    mode.check_score(args.mode, names_a_labelled_set(args))
    if mode.uses_score:
        held_out = prepared_labelled_set(args, check_model_folder(args.model_dirs[0]))

        def score(model) -> float:
            return classification_scores(model, held_out, args)[f"{held_out.name}_accuracy"]

    output_dir = fuse_folders(args.model_dirs, args.output_dir, args.mode, args.alpha, args.weights, score)
    if mode.uses_score:
        from transformers import AutoConfig

        choice = AutoConfig.from_pretrained(output_dir).greedy_soup
        kept = ", ".join(args.model_dirs[i] for i in choice["ingredients"])
        alone = ", ".join(f"{s:.4f}" for s in choice["individual_scores"])
        print(f"greedy soup of {kept}: held-out accuracy {choice['score']:.4f} (each model alone: {alone})")
    print(f"written: {output_dir}")


def build_parser() -> argparse.ArgumentParser:
    """The ``hfadapt`` argument parser with its ``train``, ``evaluate``, ``report`` and ``fuse`` subcommands."""
    parser = argparse.ArgumentParser(prog="hfadapt",
                                     description="Cross-domain transfer learning for HuggingFace models.")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("train", add_help=False,
                        help="train the source-only baseline and a method on your data (--config FILE.yaml, any "
                        "--flag); launched through accelerate. `hfadapt train --help` lists every argument")
    p = commands.add_parser("evaluate", help="score a saved model on a labelled set (accuracy, macro-F1, recall per "
                            "class)")
    p.add_argument("model_dir", help="a saved model folder")
    add_labelled_set_arguments(p, "--test_file", "test", "the test set")
    p = commands.add_parser("report", help="plots and report.md of a finished run (its --output_dir)")
    p.add_argument("run_dir")
    p = commands.add_parser("fuse", help="save several trained classifiers as one model folder: an ensemble of their "
                            "predictions, a model soup or a WiSE-FT interpolation of their weights")
    p.add_argument("model_dirs", nargs="+", metavar="MODEL_DIR",
                   help="saved model folders (for wise_ft: the source-only model, then the adapted one)")
    p.add_argument("--output_dir", required=True, help="folder to write the fused model (and the first folder's "
                   "tokenizer or processor) to")
    p.add_argument("--mode", choices=sorted(FUSION_MODES), required=True,
                   help="ensemble: average the members' softmax probabilities (loads after `import hfadapt`); "
                   "uniform_soup: average the weights of models of one architecture (Wortsman et al., ICML 2022); "
                   "greedy_soup: add the models, best first, while the soup's held-out accuracy does not drop "
                   "(Wortsman et al., ICML 2022; needs a labelled held-out set, below); "
                   "wise_ft: (1 - alpha) * first + alpha * second (Wortsman et al., CVPR 2022)")
    p.add_argument("--alpha", type=float, default=None, help="wise_ft only: weight of the second model, in [0, 1] "
                   "(default 0.5)")
    p.add_argument("--weights", type=float, nargs="+", default=None,
                   help="ensemble and uniform_soup only: one weight per model, normalised to sum 1 (default equal)")
    add_labelled_set_arguments(p, "--validation_file", "validation",
                               "greedy_soup's labelled held-out set (source-domain validation rows, never target "
                               "labels)")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``hfadapt`` console script."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = DEBUG_FLAG in argv
    if argv[:1] != ["train"]:  # train passes --debug on to the script it launches
        argv = pop_debug(argv)[1]
    if argv[:1] == ["train"]:  # its own arguments, parsed by the script it launches (and --help by hfadapt)
        args, rest = argparse.Namespace(command="train"), argv[1:]
    else:
        args, rest = parser.parse_known_args(argv)
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
    command = {"train": lambda: train(rest), "evaluate": lambda: evaluate_model(args), "report": lambda: report(args),
               "fuse": lambda: fuse(args)}[args.command]
    report_errors(command, f"hfadapt {args.command}", debug)


if __name__ == "__main__":
    main()
