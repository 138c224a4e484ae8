"""The ``hfadapt`` command: ``hfadapt train``, ``hfadapt evaluate``, ``hfadapt report``, ``hfadapt fuse``.

Subcommands in the manner of the HuggingFace CLIs (``hf download``, ``accelerate launch``): each has its own
``--help``. ``train`` runs a recipe of ``examples/`` from a YAML config (its keys are the example's arguments, and
flags after the file override them); ``evaluate`` scores a saved model on one domain; ``report`` draws the plots
and writes the markdown report of a finished run; ``fuse`` saves several trained models as one (an ensemble, a
model soup or a WiSE-FT interpolation).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import yaml

from .fusion import FUSION_MODES, fuse_folders

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
RECIPES = {"sentiment": "sentiment_transfer.py", "digits": "digits_transfer.py"}
"""``hfadapt train --task`` -> the example script it runs."""
DIGIT_DOMAINS = ("usps", "optdigits")
DEFAULT_AMAZON_DIRS = (Path("../shared/data/amazon-msd"), EXAMPLES.parents[1] / "shared" / "data" / "amazon-msd")


def _recipe_main(task: str):
    """The ``main`` of the example script for ``task``, loaded from the checkout's ``examples/``."""
    script = EXAMPLES / RECIPES[task]
    if not script.is_file():
        raise FileNotFoundError(f"{script} not found: `hfadapt train` runs the recipes of a source checkout "
                                "(pip install -e . from the repository)")
    spec = importlib.util.spec_from_file_location(f"hfadapt_recipe_{task}", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script is executed
    spec.loader.exec_module(module)
    return module.main


def infer_task(config_path: Path) -> str:
    """``digits`` if the config's ``source`` or ``target`` is a digits domain, else ``sentiment``."""
    values = yaml.safe_load(config_path.read_text()) or {}
    domains = {str(values.get("source", "")), str(values.get("target", ""))}
    return "digits" if domains & set(DIGIT_DOMAINS) else "sentiment"


def train(args: argparse.Namespace, overrides: list[str]) -> None:
    """Run the recipe of ``args.task`` (or the one the config's domains name) with ``--config args.config`` and the
    remaining command-line flags, which override the file. Raises ``FileNotFoundError`` for a missing config."""
    config = Path(args.config)
    if not config.is_file():
        raise FileNotFoundError(f"config {config} does not exist")
    task = args.task or infer_task(config)
    _recipe_main(task)(["--config", str(config), *overrides])


def _amazon_rows(args, model_dir: Path):
    from transformers import AutoTokenizer

    from .data import load_amazon_reviews, resolve_data_dir
    from .features import row_sample

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = load_amazon_reviews(resolve_data_dir(args.data_dir, DEFAULT_AMAZON_DIRS), args.domain)
    if args.max_samples:
        rows = row_sample(rows, args.max_samples)
    rows = rows.map(lambda b: tokenizer(b["text"], truncation=True, max_length=args.max_length), batched=True)
    return rows, tokenizer


def _digit_rows(args, model_dir: Path, model):
    from transformers import AutoImageProcessor

    from .data import image_transform, load_digits_domain
    from .features import row_sample

    processor = AutoImageProcessor.from_pretrained(model_dir)
    rows = load_digits_domain(args.domain, "test", usps_dir=args.data_dir)
    if args.max_samples:
        rows = row_sample(rows, args.max_samples)
    return rows.with_transform(image_transform(processor, model.config)), processor


def evaluate_model(args: argparse.Namespace) -> dict[str, float]:
    """Accuracy, macro-F1 and per-class recall of the model in ``args.model_dir`` on ``args.domain``'s labelled
    rows (test split for digits, all 2,000 reviews for an Amazon domain); printed as JSON and returned."""
    from transformers import (
        AutoModelForImageClassification,
        AutoModelForSequenceClassification,
        Trainer,
        TrainingArguments,
    )

    from .metrics import classification_metrics

    model_dir = Path(args.model_dir)
    if args.domain in DIGIT_DOMAINS:
        model = AutoModelForImageClassification.from_pretrained(model_dir, use_safetensors=True)
        rows, processor = _digit_rows(args, model_dir, model)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, use_safetensors=True)
        rows, processor = _amazon_rows(args, model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model, TrainingArguments(tmp, per_device_eval_batch_size=args.batch_size, report_to="none",
                                                   use_cpu=args.cpu,
                                                   remove_unused_columns=args.domain not in DIGIT_DOMAINS),
                          processing_class=processor, compute_metrics=classification_metrics)
        metrics = trainer.evaluate(rows, metric_key_prefix=args.domain)
    metrics = {k: v for k, v in metrics.items() if not k.endswith(("_runtime", "_per_second"))}
    print(json.dumps(metrics, indent=2))
    return metrics


def report(args: argparse.Namespace) -> None:
    """Write the plots and ``report.md`` of ``args.run_dir`` (:func:`hfadapt.evaluation.report.write_report`)."""
    from .evaluation.report import write_report

    print(f"written: {write_report(args.run_dir)}")


def fuse(args: argparse.Namespace) -> None:
    """Fuse the models in ``args.model_dirs`` into ``args.output_dir`` (:func:`hfadapt.fusion.fuse_folders`)."""
    print(f"written: {fuse_folders(args.model_dirs, args.output_dir, args.mode, args.alpha, args.weights)}")


def build_parser() -> argparse.ArgumentParser:
    """The ``hfadapt`` argument parser with its ``train``, ``evaluate``, ``report`` and ``fuse`` subcommands."""
    parser = argparse.ArgumentParser(prog="hfadapt",
                                     description="Cross-domain transfer learning for HuggingFace models.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("train", help="train a recipe (source-only baseline and a method) from a YAML config; "
                            "more --flags after the file override it")
    p.add_argument("config", help="YAML file, e.g. configs/sentiment_transfer.yaml")
    p.add_argument("--task", choices=sorted(RECIPES), default=None,
                   help="recipe to run (default: digits if the config's domains are digits, else sentiment)")
    p = commands.add_parser("evaluate", help="score a saved model on one domain (accuracy, macro-F1, recall per class)")
    p.add_argument("model_dir")
    p.add_argument("--domain", required=True, help="an Amazon review domain (books, dvd, electronics, kitchen) "
                   "or a digits domain (usps, optdigits)")
    p.add_argument("--data_dir", default=None, help="Amazon MSD folder, or the folder of usps.npz")
    p.add_argument("--max_samples", type=int, default=None, help="score a seeded random sample of this many rows")
    p.add_argument("--max_length", type=int, default=128)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--cpu", action="store_true", help="evaluate on the CPU even if a GPU is present")
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
                   "wise_ft: (1 - alpha) * first + alpha * second (Wortsman et al., CVPR 2022)")
    p.add_argument("--alpha", type=float, default=None, help="wise_ft only: weight of the second model, in [0, 1] "
                   "(default 0.5)")
    p.add_argument("--weights", type=float, nargs="+", default=None,
                   help="ensemble and uniform_soup only: one weight per model, normalised to sum 1 (default equal)")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``hfadapt`` console script."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        {"train": lambda: train(args, rest), "evaluate": lambda: evaluate_model(args), "report": lambda: report(args),
         "fuse": lambda: fuse(args)}[args.command]()
    except (FileNotFoundError, ValueError) as err:
        print(f"hfadapt {args.command}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from err


if __name__ == "__main__":
    main()
