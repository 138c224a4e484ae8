"""Image backbones (tiny ViT, tiny ResNet) with image data made lazily through an image processor."""

import datasets
import numpy as np
import pytest
import torch
from helpers import make_config, trainable_state
from transformers import (
    AutoModelForImageClassification,
    ResNetConfig,
    ResNetForImageClassification,
    ViTConfig,
    ViTForImageClassification,
    ViTImageProcessorPil,
)

from hfadapt import AdaptTrainer
from hfadapt.data import image_transform
from hfadapt.data.images import to_channels

SIZE = 16


def tiny_vit(num_channels=1, seed=0):
    torch.manual_seed(seed)
    config = ViTConfig(image_size=SIZE, patch_size=4, num_channels=num_channels, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=37, num_labels=3, hidden_dropout_prob=0.0,
                       attention_probs_dropout_prob=0.0)
    return ViTForImageClassification(config)


def tiny_resnet(num_channels=1, seed=0):
    torch.manual_seed(seed)
    config = ResNetConfig(num_channels=num_channels, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                          num_labels=3, downsample_in_first_stage=False)
    return ResNetForImageClassification(config)


def processor(num_channels=1, size=SIZE):
    return ViTImageProcessorPil(size={"height": size, "width": size}, image_mean=[0.5] * num_channels,
                                image_std=[0.5] * num_channels)


def image_dataset(n, side, seed, labels=True, rgb=False):
    """Images whose label is which third of the image is bright (learnable), ``side`` x ``side`` pixels."""
    g = np.random.default_rng(seed)
    y = g.integers(0, 3, n)
    images = g.integers(0, 60, (n, side, side)).astype(np.uint8)
    for i, label in enumerate(y):
        images[i, :, label * side // 3 : (label + 1) * side // 3] += 180
    if rgb:
        images = np.repeat(images[..., None], 3, axis=-1)
    row = {"image": list(images)}
    features = {"image": datasets.Image()}
    if labels:
        row["label"] = y.tolist()
        features["label"] = datasets.ClassLabel(num_classes=3)
    return datasets.Dataset.from_dict(row, features=datasets.Features(features))


def lazy(ds, model, num_channels=1):
    return ds.with_transform(image_transform(processor(num_channels), model.config))


@pytest.mark.parametrize("make_model", [tiny_vit, tiny_resnet])
@pytest.mark.parametrize("method", ["dann", "mmd"])
def test_image_backbones_adapt_save_and_reload(tmp_path, make_model, method):
    model = make_model()
    # source: 8x8 greyscale, target: 16x16 RGB; both reach the model as 1 x 16 x 16
    source = lazy(image_dataset(24, 8, seed=1), model)
    target = lazy(image_dataset(24, 16, seed=2, labels=False, rgb=True), model)
    test = lazy(image_dataset(12, 16, seed=3, rgb=True), model)
    trainer = AdaptTrainer(model, make_config(tmp_path, method=method), train_dataset=source, target_dataset=target,
                           eval_dataset={"target_test": test}, processing_class=processor())
    before = trainable_state(trainer)
    trainer.train()
    after = trainable_state(trainer)
    assert [n for n in before if torch.equal(before[n], after[n])] == []
    assert "eval_target_test_loss" in trainer.evaluate()
    assert "image" in trainer.train_dataset.column_names  # stored raw: pixels are made when rows are read
    trainer.save_model(str(tmp_path / "saved"))
    reloaded = AutoModelForImageClassification.from_pretrained(tmp_path / "saved").eval()
    pixels = torch.stack([test[i]["pixel_values"] for i in range(4)])
    trained = trainer.adapt_model.task_model.eval()
    assert torch.allclose(trained(pixel_values=pixels).logits, reloaded(pixel_values=pixels).logits, atol=1e-6)


@pytest.mark.parametrize("method", ["cdan", "jan", "coral", "mcc", "entropy", "im", "iw+dann"])
def test_every_feature_method_trains_a_tiny_vit(tmp_path, method):
    model = tiny_vit()
    source, target = lazy(image_dataset(16, 8, seed=1), model), lazy(image_dataset(16, 16, seed=2, labels=False), model)
    trainer = AdaptTrainer(model, make_config(tmp_path, method=method), train_dataset=source, target_dataset=target)
    trainer.train()
    logged = [e for e in trainer.state.log_history if "loss" in e]
    assert all(f"loss_{name}" in e for e in logged for name in method.split("+"))


def test_udalm_on_an_image_model_fails_before_training(tmp_path):
    model = tiny_vit()
    source, target = lazy(image_dataset(8, 8, seed=1), model), lazy(image_dataset(8, 16, seed=2, labels=False), model)
    with pytest.raises(ValueError, match="tokenizer with a mask token"):
        AdaptTrainer(model, make_config(tmp_path, method="udalm"), train_dataset=source, target_dataset=target,
                     processing_class=processor())


def test_a_batch_norm_model_keeps_target_rows_out_of_source_only_and_with_a_method_s_source_rows(tmp_path):
    model = tiny_resnet()
    source, target = lazy(image_dataset(8, 8, seed=1), model), lazy(image_dataset(8, 16, seed=2, labels=False), model)
    resnet = AdaptTrainer(model, make_config(tmp_path, method="none"), train_dataset=source, target_dataset=target)
    assert resnet.adapt_model.skip_target_rows  # batch statistics must not see the target
    assert not resnet.adapt_model.target_rows_apart  # nor, in a method's batch, be split from the source rows'
    vit = tiny_vit()
    source, target = lazy(image_dataset(8, 8, seed=1), vit), lazy(image_dataset(8, 16, seed=2, labels=False), vit)
    vit_model = AdaptTrainer(vit, make_config(tmp_path, method="none"), train_dataset=source,
                             target_dataset=target).adapt_model
    assert not vit_model.skip_target_rows and vit_model.target_rows_apart


def test_vit_lora_targets_q_v_and_round_trips(tmp_path):
    model = tiny_vit()
    source, target = lazy(image_dataset(16, 8, seed=1), model), lazy(image_dataset(16, 16, seed=2, labels=False), model)
    config = make_config(tmp_path, method="dann", use_peft=True, lora_r=4, lora_target_modules=["q_proj", "v_proj"])
    trainer = AdaptTrainer(model, config, train_dataset=source, target_dataset=target)
    names = [n for n, p in trainer.adapt_model.task_model.named_parameters() if p.requires_grad]
    assert any("q_proj.lora_A" in n for n in names) and any("v_proj.lora_B" in n for n in names)
    assert not any("attention.attention.k_proj" in n for n in names)
    trainer.train()
    trainer.save_model(str(tmp_path / "merged"))
    reloaded = AutoModelForImageClassification.from_pretrained(tmp_path / "merged").eval()
    pixels = torch.stack([source[i]["pixel_values"] for i in range(3)])
    trained = trainer.adapt_model.task_model.eval()
    assert torch.allclose(trained(pixel_values=pixels).logits, reloaded(pixel_values=pixels).logits, atol=1e-5)


def test_channels_are_converted_to_what_the_model_takes():
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    rgb = to_channels(grey, 3)
    assert rgb.shape == (8, 8, 3) and (rgb[..., 0] == grey).all() and (rgb[..., 2] == grey).all()
    assert to_channels(rgb, 1).shape == (8, 8, 1)
    assert to_channels(np.full((4, 4), 16.0), 1).max() == 255  # float images are rescaled to 0-255
    with pytest.raises(ValueError, match="channels"):
        to_channels(grey, 4)


def test_size_and_channel_mismatches_fail_with_a_clear_error(tmp_path):
    model = tiny_vit()
    with pytest.raises(ValueError, match=r"resizes to \(8, 8\) but the model takes \(16, 16\)"):
        image_transform(processor(size=8), model.config)
    with pytest.raises(ValueError, match="normalises 3 channels but the model takes 1"):
        image_transform(processor(num_channels=3), model.config)
    raw = image_dataset(8, 8, seed=1)
    with pytest.raises(ValueError, match="with_transform"):
        AdaptTrainer(model, make_config(tmp_path), train_dataset=raw, target_dataset=raw.remove_columns("label"))
    # a transform that skips the resize: the first rows are run at once and the error says what to check
    unresized = processor(size=16)
    unresized.do_resize = False
    bad = raw.with_transform(lambda b: {"pixel_values": unresized([to_channels(i, 1) for i in b["image"]],
                                                                  return_tensors="pt",
                                                                  input_data_format="channels_last")["pixel_values"],
                                        "label": b["label"]})
    with pytest.raises(ValueError, match="image_size"):
        AdaptTrainer(model, make_config(tmp_path), train_dataset=bad, target_dataset=bad)


def test_random_affine_keeps_size_and_identity_ranges_change_nothing():
    from PIL import Image

    from hfadapt.data.images import RandomAffine

    image = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16))
    same = RandomAffine(degrees=0, translate=0, scale=(1, 1), seed=0)(image)
    assert np.array_equal(np.asarray(same), np.asarray(image))
    moved = RandomAffine(degrees=15, translate=0.1, seed=0)(image)
    assert moved.size == (16, 16) and not np.array_equal(np.asarray(moved), np.asarray(image))
    with pytest.raises(ValueError):
        RandomAffine(translate=0.7)


def test_label_free_validators_score_lazily_transformed_images(tmp_path):
    model = tiny_vit()
    source = lazy(image_dataset(16, 8, seed=1), model)
    target = lazy(image_dataset(16, 16, seed=2, labels=False), model)
    trainer = AdaptTrainer(model, make_config(tmp_path, method="dann", label_free_validators=["im", "dev"]),
                           train_dataset=source, target_dataset=target, eval_dataset={"source_val": source})
    metrics = trainer.evaluate()
    assert {"eval_im", "eval_dev"} <= metrics.keys()


def test_adamatch_warns_on_batch_norm_only(tmp_path, caplog):
    # without the paper's random logit interpolation, batch statistics mix the domains: the user is told
    from hfadapt.methods.adamatch import BATCH_NORM_WARNING

    for make_model, warned in ((tiny_resnet, True), (tiny_vit, False)):
        caplog.clear()
        model = make_model()
        source = lazy(image_dataset(8, 8, seed=1), model)
        target = lazy(image_dataset(8, 16, seed=2, labels=False), model)
        with caplog.at_level("WARNING", logger="hfadapt.methods.adamatch"):
            AdaptTrainer(model, make_config(tmp_path, method="adamatch"), train_dataset=source,
                         target_dataset=target, processing_class=processor())
        assert (BATCH_NORM_WARNING in caplog.text) == warned
