"""Text and image augmentations: special tokens and padding untouched, exact counts, reproducible draws, specs."""

import pytest
import torch
from conftest import tiny_tokenizer

from hfadapt.augmentation import (
    ImageAugmenter,
    SpecialTokens,
    TextAugmenter,
    cutout,
    parse_image_augmentation,
    parse_text_augmentation,
    span_cutoff,
    split_augmentation,
    token_deletion,
    token_masking,
    trivial_augment,
)
from hfadapt.augmentation.image import brightness, contrast, translate_x

SPECIAL = SpecialTokens.from_tokenizer(tiny_tokenizer())  # [PAD]=0, [CLS]=1, [SEP]=2, [MASK]=3, [UNK]=4


def batch():
    """Two rows: 20 and 10 real tokens between [CLS] and [SEP], then padding; a second segment in row 0."""
    ids = torch.zeros(2, 24, dtype=torch.long)
    ids[0, :22] = torch.tensor([1, *range(10, 30), 2])
    ids[1, :12] = torch.tensor([1, *range(40, 50), 2])
    types = torch.zeros_like(ids)
    types[0, 12:22] = 1
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "token_type_ids": types}


def test_special_tokens_come_from_the_tokenizer():
    assert SPECIAL.ids == (0, 1, 2, 3, 4) and SPECIAL.mask_token_id == 3 and SPECIAL.pad_token_id == 0
    with pytest.raises(ValueError, match="tokenizer"):
        SpecialTokens.from_tokenizer(object())


def test_masking_replaces_the_expected_count_and_never_special_tokens_or_padding():
    inputs = batch()
    out = token_masking(inputs, 0.25, SPECIAL, torch.Generator().manual_seed(0))
    masked = out["input_ids"] == 3
    assert masked.sum(1).tolist() == [5, 3]  # round(0.25 * 20), round(0.25 * 10) (halves round up)
    assert not masked[:, 0].any() and not masked[0, 21] and not masked[1, 11:].any()
    unchanged = ~masked
    assert torch.equal(out["input_ids"][unchanged], inputs["input_ids"][unchanged])
    assert torch.equal(out["attention_mask"], inputs["attention_mask"])


def test_deletion_removes_the_expected_count_shifts_left_and_repads():
    inputs = batch()
    out = token_deletion(inputs, 0.5, SPECIAL, torch.Generator().manual_seed(0))
    ids, mask = out["input_ids"], out["attention_mask"]
    assert mask.sum(1).tolist() == [22 - 10, 12 - 5]
    for row in range(2):
        n = int(mask[row].sum())
        kept = ids[row, :n].tolist()
        assert kept[0] == 1 and kept[-1] == 2  # [CLS] first, [SEP] last
        original = inputs["input_ids"][row].tolist()
        assert [original.index(t) for t in kept] == sorted(original.index(t) for t in kept)  # order kept
        assert (ids[row, n:] == 0).all() and (mask[row, n:] == 0).all()
    # a kept token keeps its segment
    originals = inputs["input_ids"][0].tolist()
    n0 = int(mask[0].sum())
    assert [int(inputs["token_type_ids"][0, originals.index(t)]) for t in ids[0, :n0].tolist()] == \
        out["token_type_ids"][0, :n0].tolist()


def test_span_cutoff_masks_one_contiguous_span_out_of_the_attention():
    inputs = batch()
    out = span_cutoff(inputs, 0.3, SPECIAL, torch.Generator().manual_seed(1))
    assert torch.equal(out["input_ids"], inputs["input_ids"])
    cut = (inputs["attention_mask"] == 1) & (out["attention_mask"] == 0)
    assert cut.sum(1).tolist() == [6, 3]
    for row in range(2):
        positions = cut[row].nonzero().flatten().tolist()
        assert positions == list(range(positions[0], positions[0] + len(positions)))
        assert positions[0] >= 1 and positions[-1] <= (20 if row == 0 else 10)  # never [CLS], [SEP]


def test_draws_are_reproducible_with_a_seed_and_from_the_global_generator():
    spec = parse_text_augmentation("mask:0.2+delete:0.2+cutoff:0.2")
    augment = TextAugmenter(spec, SPECIAL)
    a = augment(batch(), torch.Generator().manual_seed(3))
    b = augment(batch(), torch.Generator().manual_seed(3))
    c = augment(batch(), torch.Generator().manual_seed(4))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    torch.manual_seed(5)
    d = augment(batch())
    torch.manual_seed(5)
    e = augment(batch())
    assert all(torch.equal(d[k], e[k]) for k in d)


def test_specs_parse_and_reject_bad_names_and_values():
    text, image = split_augmentation("mask:0.1+dropout+randaugment:2+cutout:0.5")
    assert [(s.name, s.value) for s in text] == [("mask", 0.1), ("dropout", None)]
    assert [(s.name, s.value) for s in image] == [("dropout", None), ("randaugment", 2), ("cutout", 0.5)]
    for spec, message in [("mask:0.1+blur:2", "unknown augmentation 'blur'"), ("mask:1.5", r"\(0, 1\)"),
                          ("mask", "needs a value"), ("dropout:0.1", "takes no value"), ("mask:x", "not a number"),
                          ("", "empty"), ("mask:0.1+mask:0.2", "twice")]:
        with pytest.raises(ValueError, match=message):
            parse_text_augmentation(spec)
    with pytest.raises(ValueError, match="whole number"):
        parse_image_augmentation("randaugment:1.5")
    with pytest.raises(ValueError, match="mask token"):
        TextAugmenter(parse_text_augmentation("mask:0.1"), SpecialTokens((0, 1, 2)))


def test_image_operations_hand_checked():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    # brightness blends towards the darkest value, contrast towards the mean: both by factor 1 + 0.9 m
    torch.testing.assert_close(brightness(x, torch.tensor([0.5])), 1.45 * x)
    torch.testing.assert_close(contrast(x, torch.tensor([-1.0])), 7.5 + 0.1 * (x - 7.5))
    # a shift by 0.3 m of the width with m = 5/6 moves the image one pixel (exactly: bilinear at pixel centres)
    shifted = translate_x(x, torch.tensor([1 / (4 * 0.3)]))
    torch.testing.assert_close(shifted[0, 0, :, :3], x[0, 0, :, 1:])
    assert (shifted[0, 0, :, 3] == 0).all()


def test_image_augmentation_keeps_shapes_is_reproducible_and_cuts_out_squares():
    x = torch.randn(16, 3, 12, 12)
    augment = ImageAugmenter(parse_image_augmentation("randaugment:2+cutout:0.5"))
    a, b = augment(x, torch.Generator().manual_seed(0)), augment(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    changed = [not torch.equal(trivial_augment(x, generator=torch.Generator().manual_seed(s))[0], x[0])
               for s in range(20)]
    assert 5 < sum(changed) < 20  # the identity is one of the operations drawn
    out = cutout(torch.ones(64, 1, 10, 10), 0.5, torch.Generator().manual_seed(0))
    zeros = (out == 0).sum((1, 2, 3))
    assert zeros.max() <= 25 and (zeros > 0).float().mean() > 0.5  # side <= 5 pixels
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        trivial_augment(torch.randn(3, 12, 12))
