"""Image data for image backbones: a lazy transform through the model's image processor.

Follows the HuggingFace image-classification recipe (``run_image_classification.py``): images stay in an
``image`` column (``datasets.Image``: PIL images, or arrays) and the processor (resize, rescale, normalise) runs
when a batch is read, via ``Dataset.with_transform``. hfadapt adds the two things a domain shift between image
sources breaks: the number of channels (a greyscale domain for an RGB backbone, or the reverse) and the size
(8x8 digits for a 16x16 model), both made to match the model here, before the processor sees them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

IMAGE_COLUMN = "image"


def to_channels(image, num_channels: int) -> np.ndarray:
    """An image (PIL, or a ``(H, W)`` / ``(H, W, C)`` array) as a ``(H, W, num_channels)`` uint8 array.

    Greyscale becomes RGB by repeating its channel; RGB becomes greyscale by PIL's luminance (ITU-R 601-2).

    Raises:
        ValueError: for ``num_channels`` other than 1 or 3, or an array that is not 2-D or 3-D.
    """
    if num_channels not in (1, 3):
        raise ValueError(f"image models with {num_channels} input channels are not supported (1 or 3)")
    if not isinstance(image, Image.Image):
        array = np.asarray(image)
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim not in (2, 3):
            raise ValueError(f"an image must be (H, W) or (H, W, C), got an array of shape {array.shape}")
        if array.dtype != np.uint8:
            top = float(array.max()) if array.size else 1.0
            array = np.clip(array * (255.0 / top if top > 1.0 else 255.0), 0, 255).astype(np.uint8)
        image = Image.fromarray(array)
    image = image.convert("L" if num_channels == 1 else "RGB")
    array = np.asarray(image)
    return array[..., None] if num_channels == 1 else array


def image_transform(image_processor, model_config=None, image_column: str = IMAGE_COLUMN,
                    augment: Callable | None = None) -> Callable[[dict], dict]:
    """A batch transform for ``Dataset.with_transform``: ``{image_column: [...]} -> {"pixel_values": (B, C, H, W)}``.

    Args:
        image_processor: the backbone's image processor (``AutoImageProcessor.from_pretrained(...)`` or one
            built from a config); it resizes and normalises.
        model_config: the model's config: its ``num_channels`` decides greyscale vs RGB, and for a model with a
            fixed ``image_size`` (ViT) the processor must resize to it.
        image_column: the column holding the images.
        augment: optional ``PIL.Image -> PIL.Image`` applied to each image first (training-time augmentation),
            after resizing it to the processor's output size (so a small domain's images are not blurred by
            sub-pixel shifts at their native resolution).

    Returns:
        The transform; label columns pass through untouched.

    Raises:
        ValueError: now, if the processor's output size differs from the model's ``image_size`` (a ViT would
            fail on the first batch); when called, if the batch has no ``image_column``.
    """
    num_channels = int(getattr(model_config, "num_channels", 3) or 3)
    size = getattr(image_processor, "size", None) or {}
    out_hw = (size.get("height"), size.get("width")) if "height" in size else (size.get("shortest_edge"),) * 2
    model_size = getattr(model_config, "image_size", None)
    if model_size is not None and None not in out_hw:
        model_hw = tuple(model_size) if isinstance(model_size, list | tuple) else (model_size, model_size)
        if tuple(out_hw) != model_hw:
            raise ValueError(
                f"the image processor resizes to {out_hw} but the model takes {model_hw} images; build the "
                f"processor with size={{'height': {model_hw[0]}, 'width': {model_hw[1]}}}"
            )
    mean = getattr(image_processor, "image_mean", None)
    if mean is not None and len(mean) != num_channels:
        raise ValueError(f"the image processor normalises {len(mean)} channels but the model takes {num_channels}; "
                         "give it image_mean / image_std with one value per channel")

    def transform(batch: dict) -> dict:
        if image_column not in batch:
            raise ValueError(f"the batch has no {image_column!r} column (columns: {list(batch)})")
        images = batch[image_column]
        if augment is not None:
            pils = [im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im)) for im in images]
            if None not in out_hw:
                pils = [im.resize((out_hw[1], out_hw[0]), Image.Resampling.BILINEAR) for im in pils]
            images = [augment(im) for im in pils]
        arrays = [to_channels(im, num_channels) for im in images]
        pixels = image_processor(arrays, return_tensors="pt", input_data_format="channels_last")["pixel_values"]
        out = {k: v for k, v in batch.items() if k != image_column}
        out["pixel_values"] = pixels
        return out

    return transform


class RandomAffine:
    """Random rotation, scaling and translation of a PIL image about its centre (training-time augmentation).

    The usual digits augmentation (as torchvision's ``RandomAffine``, which is not a dependency here): angle
    uniform in ``[-degrees, degrees]``, scale uniform in ``scale``, shift uniform in ``[-translate, translate]``
    times the image side, bilinear, background 0. Picklable. With ``seed=None`` the draws come from torch's
    global generator, so a run seeded by ``Trainer`` (``set_seed``) gets the same augmentations every time; a
    ``seed`` gives the transform its own generator.
    """

    def __init__(self, degrees: float = 10.0, translate: float = 0.1, scale: tuple[float, float] = (0.9, 1.1),
                 seed: int | None = None):
        if degrees < 0 or not 0 <= translate < 0.5 or not 0 < scale[0] <= scale[1]:
            raise ValueError(f"bad RandomAffine ranges: degrees={degrees}, translate={translate}, scale={scale}")
        self.degrees, self.translate, self.scale = float(degrees), float(translate), tuple(scale)
        self.rng = np.random.default_rng(seed) if seed is not None else None

    def __call__(self, image: Image.Image) -> Image.Image:
        w, h = image.size
        u = self.rng.uniform(size=4) if self.rng is not None else torch.rand(4, dtype=torch.float64).numpy()
        angle = np.deg2rad((2 * u[0] - 1) * self.degrees)
        s = self.scale[0] + u[1] * (self.scale[1] - self.scale[0])
        tx, ty = (2 * u[2:] - 1) * self.translate * np.array([w, h])
        cx, cy = w / 2, h / 2
        # inverse map (output pixel -> input pixel) of: rotate by angle and scale by s about the centre, then shift
        cos, sin = np.cos(angle) / s, np.sin(angle) / s
        a, b = cos, sin
        d, e = -sin, cos
        c = cx - a * (cx + tx) - b * (cy + ty)
        f = cy - d * (cx + tx) - e * (cy + ty)
        return image.transform((w, h), Image.Transform.AFFINE, (a, b, c, d, e, f), resample=Image.Resampling.BILINEAR)
