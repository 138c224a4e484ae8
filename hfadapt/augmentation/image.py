"""Strong augmentation of image batches, ``pixel_values (N, C, H, W)`` float, each image drawn on its own.

In the manner of TrivialAugment (Müller & Hutter, "TrivialAugment: Tuning-free Yet State-of-the-Art Data
Augmentation", ICCV 2021) and of the RandAugment variant FixMatch uses (Cubuk, Zoph, Shlens & Le, "RandAugment:
Practical automated data augmentation with a reduced search space", CVPR Workshops 2020; Sohn et al., NeurIPS 2020):

- ``trivial``: each image gets one operation drawn uniformly from :data:`IMAGE_OPERATIONS` (identity included) at
  a magnitude drawn uniformly in ``[-1, 1]`` times the operation's range.
- ``randaugment:n``: ``n`` such operations in a row, each with its own random magnitude (FixMatch's RandAugment,
  which draws the magnitude instead of fixing it).
- ``cutout:s``: a square of side ``u * s`` of the image's shorter side (``u`` uniform in ``(0, 1]``) at a uniform
  centre is set to 0 (FixMatch adds Cutout after RandAugment, ``s = 0.5``).
- ``dropout``: the identity; the view differs only by the model's dropout.

The operations work on *normalised* pixels (after the image processor), so they are written to commute with a
per-channel affine normalisation: brightness blends towards the image's darkest value, contrast towards its mean,
and empty pixels (cutout, and those a shift or rotation uncovers) become 0, the dataset mean for mean/std
normalisation. Geometric operations use ``torch.nn.functional.affine_grid`` / ``grid_sample`` (bilinear) in
normalised coordinates.

Why not torchvision: its transforms would be the obvious choice, but the torchvision wheels on PyPI do not import
beside the CPU build of torch 2.13.0 this project pins, so the few batched operations needed are written here.

Random draws come from the given ``torch.Generator`` or torch's current CPU generator (inside
:meth:`hfadapt.utils.rng.RandomStream.active`: the methods' own stream).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .spec import Augmentation, AugmentationStep, parse_steps


def _uniform(n: int, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """``(n,)`` uniform ``[0, 1)`` numbers drawn on the CPU, on ``like``'s device and dtype."""
    return torch.rand(n, generator=generator).to(device=like.device, dtype=like.dtype)


def _per_image(values: torch.Tensor) -> torch.Tensor:
    """``(M,)`` -> ``(M, 1, 1, 1)``, to broadcast over an image batch."""
    return values.view(-1, 1, 1, 1)


def brightness(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Blend towards each channel's darkest value by factor ``1 + 0.9 m`` (``m`` in ``[-1, 1]``, ``(M,)``)."""
    low = x.amin(dim=(2, 3), keepdim=True)
    return low + _per_image(1 + 0.9 * m) * (x - low)


def contrast(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Blend towards each image's mean by factor ``1 + 0.9 m``."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return mean + _per_image(1 + 0.9 * m) * (x - mean)


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Resample ``x`` at ``theta`` ``(M, 2, 3)`` (output to input, normalised coordinates); outside pixels are 0."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _theta(m: torch.Tensor, a=0.0, b=0.0, c=0.0, d=0.0) -> torch.Tensor:
    """``(M, 2, 3)``: the identity plus ``m`` times ``[[0, a, c], [b, 0, d]]``."""
    theta = torch.zeros(len(m), 2, 3, dtype=m.dtype, device=m.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 1], theta[:, 1, 0], theta[:, 0, 2], theta[:, 1, 2] = a * m, b * m, c * m, d * m
    return theta


def translate_x(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Shift horizontally by ``0.3 m`` of the width (FixMatch's range)."""
    return _affine(x, _theta(m, c=0.6))  # normalised coordinates span 2 per side


def translate_y(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Shift vertically by ``0.3 m`` of the height."""
    return _affine(x, _theta(m, d=0.6))


def shear_x(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Shear along x by ``0.3 m``."""
    return _affine(x, _theta(m, a=0.3))


def shear_y(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Shear along y by ``0.3 m``."""
    return _affine(x, _theta(m, b=0.3))


def rotate(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Rotate about the centre by ``30 m`` degrees (in normalised coordinates: exact for square images)."""
    angle = m * math.radians(30.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros_like(m)], 1),
                         torch.stack([sin, cos, torch.zeros_like(m)], 1)], 1)
    return _affine(x, theta)


def identity(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """No change (TrivialAugment draws it like any other operation)."""
    return x


IMAGE_OPERATIONS = {
    "identity": identity, "brightness": brightness, "contrast": contrast, "rotate": rotate,
    "shear_x": shear_x, "shear_y": shear_y, "translate_x": translate_x, "translate_y": translate_y,
}
"""TrivialAugment's operations here: ``op(x (M, C, H, W), magnitude (M,) in [-1, 1]) -> (M, C, H, W)``."""


def trivial_augment(x: torch.Tensor, value=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """One random operation of :data:`IMAGE_OPERATIONS` per image at a random magnitude. ``(N, C, H, W)`` in and out.

    Raises:
        ValueError: if ``x`` is not 4-D.
    """
    if x.ndim != 4:
        raise ValueError(f"image augmentation takes pixel_values of shape (N, C, H, W), got {tuple(x.shape)}")
    ops = list(IMAGE_OPERATIONS.values())
    choice = (_uniform(len(x), generator, x) * len(ops)).long().clamp_max(len(ops) - 1)
    magnitude = 2 * _uniform(len(x), generator, x) - 1
    out = x.clone()
    for index, op in enumerate(ops):
        rows = choice == index
        if rows.any() and op is not identity:
            out[rows] = op(x[rows], magnitude[rows])
    return out


def rand_augment(x: torch.Tensor, n: int = 2, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` successive :func:`trivial_augment` operations per image, each at its own random magnitude."""
    for _ in range(int(n)):
        x = trivial_augment(x, generator=generator)
    return x


def cutout(x: torch.Tensor, size: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Set a square of side up to ``size`` times the shorter image side to 0, per image (DeVries & Taylor, arXiv
    2017). ``(N, C, H, W)`` in and out."""
    n, _, height, width = x.shape
    side = _uniform(n, generator, x) * size * min(height, width)
    centre_y, centre_x = _uniform(n, generator, x) * height, _uniform(n, generator, x) * width
    ys = torch.arange(height, device=x.device, dtype=x.dtype).view(1, -1, 1) + 0.5
    xs = torch.arange(width, device=x.device, dtype=x.dtype).view(1, 1, -1) + 0.5
    half = (side / 2).view(-1, 1, 1)
    inside = ((ys - centre_y.view(-1, 1, 1)).abs() < half) & ((xs - centre_x.view(-1, 1, 1)).abs() < half)
    return x.masked_fill(inside.unsqueeze(1), 0.0)


IMAGE_AUGMENTATIONS: dict[str, Augmentation] = {
    "trivial": Augmentation(trivial_augment),
    "randaugment": Augmentation(rand_augment, (1, 10), integer=True),
    "cutout": Augmentation(cutout, (0.0, 1.0)),
    "dropout": Augmentation(lambda x, value=None, generator=None: x),
}
"""Image augmentations by name: ``fn(pixel_values, value, generator) -> pixel_values``."""


def parse_image_augmentation(spec: str) -> list[AugmentationStep]:
    """Parse a spec such as ``"randaugment:2+cutout:0.5"`` against :data:`IMAGE_AUGMENTATIONS`.

    Raises:
        ValueError: on an unknown name or an out-of-range value.
    """
    return parse_steps(spec, IMAGE_AUGMENTATIONS)


class ImageAugmenter:
    """Apply parsed image augmentation steps in order to ``pixel_values (N, C, H, W)``.

    Raises:
        ValueError: at construction, if a step is no image augmentation.
    """

    def __init__(self, steps: list[AugmentationStep]):
        unknown = [s.name for s in steps if s.name not in IMAGE_AUGMENTATIONS]
        if unknown:
            raise ValueError(f"{unknown} are no image augmentations; choose from {sorted(IMAGE_AUGMENTATIONS)}")
        self.steps = list(steps)

    def __call__(self, pixel_values: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch of images."""
        for step in self.steps:
            pixel_values = IMAGE_AUGMENTATIONS[step.name].fn(pixel_values, step.value, generator)
        return pixel_values
