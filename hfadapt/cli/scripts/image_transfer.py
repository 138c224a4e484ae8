"""Image classification across domains: adapt an image classifier from labelled source images to unlabelled
target images, beside a source-only baseline with the same seed and budget.

Data: the built-in digits domains (``--source optdigits --target usps``: UCI optdigits, 8x8, from scikit-learn, and
USPS, 16x16, shipped with the package), or any image data through :class:`hfadapt.data.DataArguments`: an
``imagefolder`` (``--source_dataset_name folder/`` with one sub-folder per class), a Hub image dataset, a
``save_to_disk`` folder; ``--image_column_name`` (default ``image``) and ``--label_column_name``. Recipe:
``hfadapt/cli/recipes/digits_transfer.yaml``. With the digits domains the same recipe is also trained on the
*labelled* target train split (target-supervised), so the table says what share of the gap the method closes.
Images go through the model's image processor lazily (resized to the model's size, greyscale kept or repeated
to RGB for a pretrained RGB model).

    accelerate launch -m hfadapt.cli.scripts.image_transfer --source usps --target optdigits
    accelerate launch -m hfadapt.cli.scripts.image_transfer --source_dataset_name photos/ --target_dataset_name
    sketches/
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForImageClassification,
    ResNetConfig,
    ViTConfig,
    ViTImageProcessorPil,
)

from ...data import TransferSplits, image_transform, load_digits_domain
from ...data.digits import DIGIT_NAMES, DIGITS_DOMAINS
from ...data.images import RandomAffine
from ...data.loading import OWN_DATA_KEYS, RECIPE_DATA_KEYS, DataArguments, load_transfer_splits
from ...evaluation.experiment import compare_with_source_only, print_results
from ...trainer.config import AdaptConfig
from ...trainer.preflight import check_output_dir
from ...utils.distributed import end_process_group
from ...utils.runtime import use_available_cpu_threads
from ..args import UsageError, parse_with_config, run_as_script
from ..recipes import recipe_path


@dataclass
class ImageScriptArguments:
    """Model and run arguments of the image-classification script."""

    usps_dir: str | None = field(default=None, metadata={"help": "Folder with usps.npz (else $HFADAPT_USPS_DIR, "
                                                                 "else the copy shipped with hfadapt)."})
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A pretrained image model (Hub id or folder); default: a small model from a config."},
    )
    backbone: str = field(
        default="vit", metadata={"help": "Architecture of the model built from a config: vit or resnet."}
    )
    image_size: int = field(default=16, metadata={"help": "Side of the images the model built from a config takes."})
    num_channels: int = field(
        default=1, metadata={"help": "Channels of the model built from a config: 1 (greyscale) or 3 (RGB)."}
    )
    hidden_size: int = field(default=64, metadata={"help": "Width of the ViT built from a config."})
    num_hidden_layers: int = field(default=4, metadata={"help": "Depth of the ViT built from a config."})
    augment: bool = field(
        default=True,
        # no percent sign in help strings: argparse %-formats them, and a bare one breaks --help
        metadata={"help": "Random rotation (+-10 deg), scale (0.9-1.1) and shift (up to a tenth of the side) of "
                  "training images, both domains (hfadapt.data.images.RandomAffine); evaluation images are never "
                  "augmented."},
    )
    baseline: bool = field(default=True, metadata={"help": "Also train the source-only baseline."})
    pad_rows: int = field(
        default=400,
        metadata={"help": "Rows per domain for the proxy A-distance between source-validation and target "
                  "features, before and after training (0: skip)."},
    )
    target_supervised: bool = field(
        default=True, metadata={"help": "With the digits domains: also train on labelled target data (reference)."}
    )


ARGUMENT_TYPES = (DataArguments, ImageScriptArguments, AdaptConfig)


def parse(argv: list[str] | None = None) -> tuple[DataArguments, ImageScriptArguments, AdaptConfig]:
    """The script's arguments: the image recipe, then ``--config``, then the flags in ``argv``."""
    return parse_with_config(ARGUMENT_TYPES, argv, default_config=recipe_path("image"),
                             own_data_keys=OWN_DATA_KEYS, recipe_data_keys=RECIPE_DATA_KEYS)


def model_from_config(args: ImageScriptArguments, label_names: list[str]):
    """A small image classifier built from a config (random weights), ``args.num_channels`` channels, one output
    per class of ``label_names``."""
    labels = {"num_labels": len(label_names), "id2label": dict(enumerate(label_names)),
              "label2id": {n: i for i, n in enumerate(label_names)}}
    if args.backbone == "vit":
        config = ViTConfig(image_size=args.image_size, patch_size=4, num_channels=args.num_channels,
                           hidden_size=args.hidden_size, num_hidden_layers=args.num_hidden_layers,
                           num_attention_heads=4, intermediate_size=2 * args.hidden_size, **labels)
    elif args.backbone == "resnet":
        config = ResNetConfig(num_channels=args.num_channels, embedding_size=32, hidden_sizes=[32, 64, 128],
                              depths=[1, 1, 1], downsample_in_first_stage=False, **labels)
    else:
        raise ValueError(f"--backbone must be vit or resnet, got {args.backbone!r}")
    return AutoModelForImageClassification.from_config(config)


def uses_digits_domains(data: DataArguments) -> bool:
    """Whether ``data`` names the built-in digits domains (no dataset or files of its own)."""
    return not any(getattr(data, k) for k in OWN_DATA_KEYS) and {data.source, data.target} <= set(DIGITS_DOMAINS)


def _first(ds, n):
    return ds if not n else ds.shuffle(seed=0).select(range(min(n, len(ds))))


def digits_splits(data: DataArguments, usps_dir: str | None) -> tuple[TransferSplits, TransferSplits]:
    """The raw (untransformed) splits of a digits transfer and of its target-supervised reference: source train
    split / source test split as validation / target train split without labels / target test split.

    Raises:
        ValueError: if source and target are the same domain.
    """
    if data.source == data.target:
        raise ValueError(f"source and target are both {data.source!r}; pick two different domains")
    domain = {split: {name: load_digits_domain(name, split, usps_dir) for name in (data.source, data.target)}
              for split in ("train", "test")}
    n_train, n_eval = data.max_train_samples, data.max_eval_samples
    splits = TransferSplits(
        source_train=_first(domain["train"][data.source], n_train),
        source_val=_first(domain["test"][data.source], n_eval),
        target_train=_first(domain["train"][data.target].remove_columns("label"), n_train),
        target_test=_first(domain["test"][data.target], n_eval),
        label_names=DIGIT_NAMES,
    )
    supervised = dataclasses.replace(splits, source_train=_first(domain["train"][data.target], n_train),
                                     source_val=splits.target_test)
    return splits, supervised


def main(argv: list[str] | None = None) -> dict:
    """Parse ``argv`` (default: ``sys.argv``), train the baseline, the method and (digits) the target-supervised
    reference; print and return the results.

    Raises:
        UsageError: for bad arguments or data, before any training.
    """
    try:
        data, script, config = parse(argv)
        check_output_dir(config)  # before the data are read: a refusal writes nothing
        digits = uses_digits_domains(data)
        if digits:
            raw, supervised = digits_splits(data, script.usps_dir)
            image_column = "image"
        else:
            data = dataclasses.replace(data, image_column_name=data.image_column_name or "image")
            raw, supervised = load_transfer_splits(data, seed=config.seed), None
            image_column = data.image_column_name
    except (ValueError, FileNotFoundError) as err:
        raise UsageError(str(err)) from err
    use_available_cpu_threads()
    label_names = list(raw.label_names)

    if script.model_name_or_path:
        path = script.model_name_or_path
        model_config = AutoConfig.from_pretrained(path)
        processor = AutoImageProcessor.from_pretrained(path)

        def make_model():
            return AutoModelForImageClassification.from_pretrained(
                path, num_labels=len(label_names), id2label=dict(enumerate(label_names)),
                label2id={n: i for i, n in enumerate(label_names)}, ignore_mismatched_sizes=True)
    else:
        model_config = model_from_config(script, label_names).config
        side, channels = script.image_size, script.num_channels
        processor = ViTImageProcessorPil(size={"height": side, "width": side}, image_mean=[0.5] * channels,
                                         image_std=[0.5] * channels)

        def make_model():
            return model_from_config(script, label_names)

    transform = image_transform(processor, model_config, image_column=image_column)
    augment = RandomAffine() if script.augment else None  # draws from torch's generator: seeded per run
    train_transform = image_transform(processor, model_config, image_column=image_column, augment=augment)
    splits = raw.with_transform(train_transform, transform)
    if supervised is not None:
        supervised = supervised.with_transform(train_transform, transform)
    src, tgt = "+".join(data.source_names), data.target_name
    metadata = {
        "task": "image classification",
        "dataset": "handwritten digits (optdigits: UCI; USPS: Hull, TPAMI 1994)" if digits else data.title(),
        "source": src,
        "target": tgt,
        "labels": label_names,
        "model": script.model_name_or_path or f"{script.backbone} from a config (random init)",
        "sizes": splits.sizes(),
    }
    results = compare_with_source_only(
        make_model, config, splits, processing_class=processor, with_baseline=script.baseline, metadata=metadata,
        pad_rows=script.pad_rows,
        target_supervised_splits=supervised if script.target_supervised else None,
        card_details={"source_domains": data.source_names, "target_domain": tgt, "task_type": "image-classification",
                      "dataset_name": metadata["dataset"], "datasets": [] if digits else data.datasets_used(),
                      "license": data.license, "language": data.language,
                      "base_model": script.model_name_or_path},
    )
    print_results(results, f"{src} -> {tgt}, {metadata['model']}, seed {config.seed}", config.output_dir)
    return results


if __name__ == "__main__":
    run_as_script(main)
    end_process_group()
