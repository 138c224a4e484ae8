"""Handwritten digits across scanners: adapt an image classifier from one digits domain to another.

Domains (nothing to download): UCI optdigits, 8x8, bundled with scikit-learn, and USPS, 16x16, from
--usps_dir, else $HFADAPT_USPS_DIR, else ../shared/data/usps. Protocol: the source's train split is labelled
training data (its test split the source validation set); the target's train split is unlabelled training
data and its test split the target test set. Beside source-only and the method, the same recipe is trained on
the *labelled* target train split (target-supervised), so the table says what share of the gap the method
closes. Images go through the model's image processor lazily (resize to the model's size, greyscale kept or
repeated to RGB for a pretrained RGB model).

Default recipe: configs/digits_transfer.yaml: optdigits -> USPS, a small ViT initialised from a config and
trained from scratch, DANN.

    accelerate launch examples/digits_transfer.py                                  # optdigits -> USPS
    accelerate launch examples/digits_transfer.py --source usps --target optdigits # the other direction
    accelerate launch examples/digits_transfer.py --method mmd                      # another method
    accelerate launch examples/digits_transfer.py --backbone resnet                 # a small ResNet instead
    accelerate launch examples/digits_transfer.py --model_name_or_path google/vit-base-patch16-224-in21k  # network
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForImageClassification,
    ResNetConfig,
    ViTConfig,
    ViTImageProcessorPil,
)

from hfadapt import AdaptConfig
from hfadapt.cli_args import parse_with_config
from hfadapt.data import TransferSplits, image_transform, load_digits_domain
from hfadapt.data.digits import DIGIT_NAMES, DIGITS_DOMAINS
from hfadapt.data.images import RandomAffine
from hfadapt.distributed import end_process_group
from hfadapt.experiment import compare_with_source_only, print_results
from hfadapt.runtime import use_available_cpu_threads

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "hfadapt" / "recipes" / "digits_transfer.yaml"
DEFAULT_USPS_DIRS = (REPO.parent / "shared" / "data" / "usps", Path("../shared/data/usps"))


@dataclass
class ScriptArguments:
    """Data and model arguments of the digits transfer example."""

    source: str = field(default="optdigits", metadata={"help": f"Labelled source domain, one of {DIGITS_DOMAINS}."})
    target: str = field(default="usps", metadata={"help": f"Unlabelled target domain, one of {DIGITS_DOMAINS}."})
    usps_dir: str | None = field(default=None, metadata={"help": "Folder with usps.npz (else $HFADAPT_USPS_DIR, "
                                                                 "else ../shared/data/usps)."})
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A pretrained image model (Hub id or folder); default: a small model from a config."},
    )
    backbone: str = field(
        default="vit", metadata={"help": "Architecture of the model built from a config: vit or resnet."}
    )
    image_size: int = field(default=16, metadata={"help": "Side of the images the model built from a config takes."})
    hidden_size: int = field(default=64, metadata={"help": "Width of the ViT built from a config."})
    num_hidden_layers: int = field(default=4, metadata={"help": "Depth of the ViT built from a config."})
    max_train_samples: int | None = field(default=None, metadata={"help": "At most this many train rows per domain."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "At most this many test rows per domain."})
    augment: bool = field(
        default=True,
        metadata={"help": "Random rotation (+-10 deg), scale (0.9-1.1) and shift (+-10%) of training images, both "
                  "domains (hfadapt.data.images.RandomAffine); evaluation images are never augmented."},
    )
    baseline: bool = field(default=True, metadata={"help": "Also train the source-only baseline."})
    pad_rows: int = field(
        default=400,
        metadata={"help": "Rows per domain for the proxy A-distance between source-validation and target-test "
                  "features, before and after training (0: skip)."},
    )
    target_supervised: bool = field(default=True, metadata={"help": "Also train on labelled target data (reference)."})


def model_from_config(args: ScriptArguments):
    """A small image classifier built from a config (random weights), one greyscale channel, 10 classes."""
    labels = {"num_labels": 10, "id2label": dict(enumerate(DIGIT_NAMES)),
              "label2id": {n: i for i, n in enumerate(DIGIT_NAMES)}}
    if args.backbone == "vit":
        config = ViTConfig(image_size=args.image_size, patch_size=4, num_channels=1, hidden_size=args.hidden_size,
                           num_hidden_layers=args.num_hidden_layers, num_attention_heads=4,
                           intermediate_size=2 * args.hidden_size, **labels)
    elif args.backbone == "resnet":
        config = ResNetConfig(num_channels=1, embedding_size=32, hidden_sizes=[32, 64, 128], depths=[1, 1, 1],
                              downsample_in_first_stage=False, **labels)
    else:
        raise ValueError(f"--backbone must be vit or resnet, got {args.backbone!r}")
    return AutoModelForImageClassification.from_config(config)


def _first(ds, n):
    return ds if not n else ds.shuffle(seed=0).select(range(min(n, len(ds))))


def main(args: list[str] | None = None) -> dict:
    script_args, config = parse_with_config((ScriptArguments, AdaptConfig), args, default_config=DEFAULT_CONFIG)
    use_available_cpu_threads()
    if script_args.source == script_args.target:
        raise ValueError(f"source and target are both {script_args.source!r}; pick two different domains")
    domain = {split: {name: load_digits_domain(name, split, script_args.usps_dir or _usps_default())
                      for name in (script_args.source, script_args.target)} for split in ("train", "test")}
    n_train, n_eval = script_args.max_train_samples, script_args.max_eval_samples
    src, tgt = script_args.source, script_args.target

    if script_args.model_name_or_path:
        path = script_args.model_name_or_path
        model_config = AutoConfig.from_pretrained(path)
        processor = AutoImageProcessor.from_pretrained(path)

        def make_model():
            return AutoModelForImageClassification.from_pretrained(
                path, num_labels=10, id2label=dict(enumerate(DIGIT_NAMES)),
                label2id={n: i for i, n in enumerate(DIGIT_NAMES)}, ignore_mismatched_sizes=True)
    else:
        model_config = model_from_config(script_args).config
        side = script_args.image_size
        processor = ViTImageProcessorPil(size={"height": side, "width": side}, image_mean=[0.5], image_std=[0.5])

        def make_model():
            return model_from_config(script_args)

    transform = image_transform(processor, model_config)
    augment = RandomAffine() if script_args.augment else None  # draws from torch's generator: seeded per run
    train_transform = image_transform(processor, model_config, augment=augment)
    lazy = {name: _first(ds, n_train).with_transform(train_transform) for name, ds in
            [("source_train", domain["train"][src]), ("target_labelled", domain["train"][tgt])]}
    splits = TransferSplits(
        source_train=lazy["source_train"],
        source_val=_first(domain["test"][src], n_eval).with_transform(transform),
        target_train=_first(domain["train"][tgt].remove_columns("label"), n_train).with_transform(train_transform),
        target_test=_first(domain["test"][tgt], n_eval).with_transform(transform),
        label_names=DIGIT_NAMES,
    )
    supervised = dataclasses.replace(splits, source_train=lazy["target_labelled"], source_val=splits.target_test)
    metadata = {
        "task": "digits",
        "source": src,
        "target": tgt,
        "model": script_args.model_name_or_path or f"{script_args.backbone} from a config (random init)",
        "sizes": splits.sizes(),
    }
    results = compare_with_source_only(
        make_model, config, splits, processing_class=processor, with_baseline=script_args.baseline, metadata=metadata,
        pad_rows=script_args.pad_rows,
        target_supervised_splits=supervised if script_args.target_supervised else None,
        card_details={"source_domains": [src], "target_domain": tgt, "task_type": "image-classification",
                      "dataset_name": "handwritten digits (optdigits: UCI; USPS: Hull, TPAMI 1994)",
                      "base_model": script_args.model_name_or_path},
    )
    print_results(results, f"{src} -> {tgt}, {metadata['model']}, seed {config.seed}", config.output_dir)
    return results


def _usps_default() -> Path | None:
    return next((p for p in DEFAULT_USPS_DIRS if (p / "usps.npz").is_file()), None)


if __name__ == "__main__":
    main()
    end_process_group()
