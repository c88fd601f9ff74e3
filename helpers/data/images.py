"""Images: a generated dataset of coloured shapes in ``ImageFolder`` layout, scikit-learn's
handwritten digits as a ``Dataset``, reproducible random splits, the course's transform
presets and :func:`denormalize` to show normalised images again.

torchvision is imported only when :func:`image_transforms` is called: it takes seconds to
import, and the text half of :mod:`helpers.data` does not need it.

Example::

    from torchvision.datasets import ImageFolder
    root = make_shapes_dataset("artifacts/shapes")
    train_ds = ImageFolder(root, transform=image_transforms(train=True))
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor
from torch.utils.data import Dataset, Subset, random_split

from helpers.device import make_generator

if TYPE_CHECKING:
    from torchvision.transforms import v2

#: Shapes that :func:`make_shapes_dataset` can draw.
SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
#: Channel statistics of ImageNet, what torchvision's pretrained models expect.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def _shape_polygon(
    kind: str, cx: float, cy: float, r: float, angle: float
) -> list[tuple[float, float]]:
    """Vertices of a shape of circumradius ``r`` centred at (cx, cy), rotated by ``angle``."""
    if kind == "square":  # slightly larger circumradii: similar areas, so size is no clue
        polar = [(1.1 * r, math.pi / 4 + k * math.pi / 2) for k in range(4)]
    elif kind == "triangle":
        polar = [(1.25 * r, -math.pi / 2 + k * 2 * math.pi / 3) for k in range(3)]
    elif kind == "star":
        polar = [(r if k % 2 == 0 else 0.45 * r, -math.pi / 2 + k * math.pi / 5) for k in range(10)]
    else:  # cross: a plus sign with arms of half-width w
        w = 0.3 * r
        pts = [
            (w, r),
            (w, w),
            (r, w),
            (r, -w),
            (w, -w),
            (w, -r),
            (-w, -r),
            (-w, -w),
            (-r, -w),
            (-r, w),
            (-w, w),
            (-w, r),
        ]
        polar = [(math.hypot(x, y), math.atan2(y, x)) for x, y in pts]
    return [(cx + d * math.cos(a + angle), cy + d * math.sin(a + angle)) for d, a in polar]


def _render_shape(kind: str, size: int, rng: np.random.Generator) -> Image.Image:
    """One RGB image of ``kind``: random colours, position, scale and rotation, plus noise."""
    big = 4 * size  # draw large, then shrink: smooth (anti-aliased) edges
    bg = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.0, 0.5), rng.uniform(0.05, 0.35))
    fg = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.5, 1.0), rng.uniform(0.65, 1.0))
    r = rng.uniform(0.2, 0.38) * big
    margin = 1.3 * r
    cx, cy = rng.uniform(margin, big - margin, size=2)
    angle = rng.uniform(0, 2 * math.pi)
    img = Image.new("RGB", (big, big), tuple(int(255 * c) for c in bg))
    draw = ImageDraw.Draw(img)
    fill = tuple(int(255 * c) for c in fg)
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon(_shape_polygon(kind, cx, cy, r, angle), fill=fill)
    small = np.asarray(img.resize((size, size), Image.Resampling.LANCZOS), dtype=np.float64)
    noisy = small + rng.normal(0.0, 10.0, size=small.shape)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), mode="RGB")


def make_shapes_dataset(
    root: str | Path,
    n_per_class: int = 60,
    image_size: int = 32,
    seed: int = 0,
    classes: Sequence[str] = ("circle", "square", "triangle"),
) -> Path:
    """Write a small image-classification dataset in ``ImageFolder`` layout and return ``root``.

    Each of ``classes`` (from :data:`SHAPE_CLASSES`) gets ``root/<class>/0000.png``,
    ``0001.png``, ... : ``n_per_class`` RGB images of ``image_size`` pixels, a shape in a
    random colour, position, scale and rotation on a random background, with pixel noise.
    Image ``i`` of a class depends only on ``seed``, the class and ``i``, so re-running with
    the same arguments writes byte-identical files. Numbered PNGs left in a class folder by
    an earlier, larger run are removed; nothing else in ``root`` is touched.

    Example::

        >>> root = make_shapes_dataset("artifacts/shapes", n_per_class=10)
        >>> sorted(p.name for p in root.iterdir())
        ['circle', 'square', 'triangle']
    """
    classes = list(classes)
    _check_shape_arguments(classes, n_per_class, image_size)
    root = Path(root)
    for name in classes:
        _write_shape_class(root / name, name, n_per_class, image_size, seed)
    return root


def _check_shape_arguments(classes: list[str], n_per_class: int, image_size: int) -> None:
    """Raise a clear error for unknown or repeated classes, or a bad count or image size."""
    unknown = [c for c in classes if c not in SHAPE_CLASSES]
    if not classes or unknown:
        raise ValueError(
            f"Unknown shape class(es) {unknown or classes}; choose from {', '.join(SHAPE_CLASSES)}."
        )
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes has duplicates: {classes}.")
    if not isinstance(n_per_class, int) or n_per_class < 1:
        raise ValueError(f"n_per_class must be an int >= 1, got {n_per_class!r}.")
    if not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size must be an int >= 8 pixels, got {image_size!r}.")


def _write_shape_class(folder: Path, name: str, n_images: int, image_size: int, seed: int) -> None:
    """Write ``folder/0000.png`` ... for one class and remove numbered PNGs beyond them."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("[0-9][0-9][0-9][0-9].png"):
        if int(stale.stem) >= n_images:
            stale.unlink()
    for i in range(n_images):
        rng = np.random.default_rng([seed, SHAPE_CLASSES.index(name), i])
        _render_shape(name, image_size, rng).save(folder / f"{i:04d}.png", format="PNG")


class DigitsDataset(Dataset):
    """The 1,797 handwritten digits that ship with scikit-learn as a map-style dataset:
    item ``i`` is ``(image, label)``, ``image`` a float tensor of shape (1, 8, 8) in [0, 1]
    (after ``transform`` when one is given), ``label`` an int 0-9. ``classes`` and
    ``targets`` follow torchvision's conventions."""

    def __init__(self, transform: Callable | None = None) -> None:
        from sklearn.datasets import load_digits

        digits = load_digits()
        self.images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        self.targets: list[int] = [int(t) for t in digits.target]
        self.classes: list[str] = [str(c) for c in digits.target_names]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]


def load_digits_dataset(transform: Callable | None = None) -> DigitsDataset:
    """scikit-learn's handwritten digits (no download: they ship with scikit-learn) as a
    :class:`DigitsDataset` of ``(image (1, 8, 8) in [0, 1], label)`` pairs.

    Example::

        >>> ds = load_digits_dataset()
        >>> len(ds), ds[0][0].shape, ds.classes[:3]
        (1797, torch.Size([1, 8, 8]), ['0', '1', '2'])
    """
    return DigitsDataset(transform)


def split_dataset(
    dataset: Dataset, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0
) -> list[Subset]:
    """Split ``dataset`` at random into ``Subset``s of the given fractions (which must sum
    to 1), reproducibly: ``random_split`` with a generator seeded by ``seed``. Every part
    must get at least one item.

    Example::

        >>> train, val, test = split_dataset(load_digits_dataset(), (0.8, 0.1, 0.1))
        >>> len(train), len(val), len(test)
        (1438, 180, 179)
    """
    fractions = [float(f) for f in fractions]
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise ValueError(f"fractions must be numbers in (0, 1], got {fractions}.")
    if not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ValueError(f"fractions {fractions} sum to {sum(fractions):.6g}; they must sum to 1.")
    sizes = _split_sizes(len(dataset), fractions)
    return random_split(dataset, sizes, generator=make_generator(seed))


def _split_sizes(n: int, fractions: list[float]) -> list[int]:
    """The part sizes ``random_split`` gives ``fractions`` of ``n`` items (floors, then the
    remainder one by one), or an error when a part would be empty."""
    sizes = [math.floor(n * f) for f in fractions]
    for k in range(n - sum(sizes)):
        sizes[k % len(sizes)] += 1
    for k, size in enumerate(sizes):
        if size == 0:
            raise ValueError(
                f"Split {k} (fraction {fractions[k]}) of a dataset of {n} items "
                f"would be empty; use a larger dataset or a larger fraction."
            )
    return sizes


def image_transforms(
    train: bool,
    size: int = 32,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> v2.Compose:
    """The course's transform presets (``torchvision.transforms.v2``) for a PIL image or an
    image tensor: the result is a float tensor (C, size, size), normalised by ``mean``/``std``.

    ``train=True`` adds random augmentation (resized crop, horizontal flip, rotation up to
    15 degrees, colour jitter), a new variant every call; ``train=False`` only resizes and
    centre-crops, so the same image always gives the same tensor. A PIL image is augmented
    before it becomes a tensor: PIL's single-threaded code is the fastest for small images
    (torch's multi-threaded kernels lose time coordinating threads on a busy CPU). For
    one-channel images pass one-element ``mean`` and ``std``, e.g. ``(0.5,)``.

    Example::

        >>> ImageFolder("artifacts/shapes", transform=image_transforms(train=True))[0][0].shape
        torch.Size([3, 32, 32])
    """
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be an int >= 1, got {size!r}.")
    if len(mean) != len(std) or len(mean) == 0:
        raise ValueError(
            f"mean {tuple(mean)} and std {tuple(std)} need one value per channel each."
        )
    if any(s <= 0 for s in std):
        raise ValueError(f"std values must be > 0, got {tuple(std)}.")
    from torchvision.transforms import v2  # here, not at the top: it takes seconds to import

    if train:
        geometry = [
            v2.RandomResizedCrop(size, scale=(0.7, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomRotation(15, interpolation=v2.InterpolationMode.BILINEAR),
            v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05),
        ]
    else:
        geometry = [v2.Resize(size, antialias=True), v2.CenterCrop(size)]
    return v2.Compose(
        [
            *geometry,
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
        ]
    )


def denormalize(
    images: Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> Tensor:
    """Undo ``Normalize(mean, std)`` for display: ``images * std + mean``, clipped to [0, 1].
    Works on one image (C, H, W) or a batch (B, C, H, W)."""
    if images.ndim not in (3, 4):
        raise ValueError(
            f"Expected an image (C, H, W) or a batch (B, C, H, W), got shape {tuple(images.shape)}."
        )
    channels = images.shape[-3]
    if len(mean) != channels or len(std) != channels:
        raise ValueError(
            f"The images have {channels} channels but mean has {len(mean)} and std "
            f"{len(std)} values."
        )
    m = torch.tensor(mean, dtype=images.dtype).view(-1, 1, 1)
    s = torch.tensor(std, dtype=images.dtype).view(-1, 1, 1)
    return (images * s + m).clamp(0, 1)


#: The photo-patch classes: scikit-image's sample photo each comes from, the region of it that
#: is used (rows, columns; ``None`` for all of it) and its licence. Every photo ships inside
#: the scikit-image wheel (``skimage/data/``), so nothing is downloaded.
PHOTO_SOURCES: dict[str, tuple[str, tuple[slice, slice] | None, str]] = {
    "brick": ("brick.png", None, "CC0 (CC0Textures Bricks25)"),
    "grass": ("grass.png", None, "CC0 (DeviantArt, linolafett)"),
    "gravel": ("gravel.png", None, "CC0 (CC0Textures Gravel04)"),
    "retina": ("retina.jpg", (slice(300, 1100), slice(300, 1100)), "CC0 (Wikimedia Commons)"),
    "space": ("hubble_deep_field.jpg", None, "public domain (NASA, Hubble XDF)"),
    "astronaut": ("astronaut.png", None, "public domain (NASA, Eileen Collins)"),
    "camera": ("camera.png", None, "CC0 (Lav Varshney)"),
    "cell": ("cell.png", None, "CC0 (Jean-Yves Tinevez)"),
    "clock": ("clock_motion.png", None, "public domain (Stefan van der Walt)"),
    "coins": ("coins.png", None, "no known copyright restrictions (Brooklyn Museum)"),
}
#: Which band of rows of each photo a split cuts its patches from: no pixel is shared.
PHOTO_SPLIT_BANDS: dict[str, tuple[float, float]] = {
    "train": (0.0, 0.6),
    "val": (0.6, 0.8),
    "test": (0.8, 1.0),
}


def load_source_photo(name: str) -> np.ndarray:
    """The grey-scale photo (H, W) uint8 of class ``name`` of :data:`PHOTO_SOURCES`, read from
    the scikit-image wheel and cropped to the class's region. Colour photos are converted to
    grey (ITU-R 601 luma), so that colour alone does not give the class away."""
    if name not in PHOTO_SOURCES:
        raise ValueError(f"Unknown photo class {name!r}; choose from {', '.join(PHOTO_SOURCES)}.")
    import skimage

    filename, region, _ = PHOTO_SOURCES[name]
    image = Image.open(Path(skimage.__file__).parent / "data" / filename).convert("L")
    pixels = np.asarray(image)
    return pixels[region] if region is not None else pixels


def make_photo_patches_dataset(
    root: str | Path,
    patches_per_split: dict[str, int] | None = None,
    patch_size: int = 48,
    seed: int = 0,
    classes: Sequence[str] = tuple(PHOTO_SOURCES),
) -> Path:
    """Cut square patches from real photos into ``root/<split>/<class>/0000.png`` (the
    ``ImageFolder`` layout, one folder per split) and return ``root``.

    Each class comes from one photo of :data:`PHOTO_SOURCES`; split ``s`` cuts its patches at
    random positions inside its own band of rows (:data:`PHOTO_SPLIT_BANDS`), so no pixel of a
    validation or test patch was seen in training. ``patches_per_split`` defaults to
    ``{"train": 30, "val": 15, "test": 15}``; every band of every photo fits a patch of the
    default 48 pixels (the smallest bands, of coins and clock, are 60 rows). Patches are grey (3
    equal RGB channels) PNGs of ``patch_size`` pixels; the same arguments write byte-identical
    files, and numbered PNGs left by an earlier, larger run are removed.

    Example::

        >>> root = make_photo_patches_dataset("artifacts/photos")
        >>> sorted(p.name for p in (root / "train").iterdir())
        ['astronaut', 'brick', 'camera', 'cell', 'clock', 'coins', 'grass', 'gravel', 'retina',
         'space']
    """
    counts = patches_per_split or {"train": 30, "val": 15, "test": 15}
    unknown = [s for s in counts if s not in PHOTO_SPLIT_BANDS]
    if unknown or any(not isinstance(n, int) or n < 1 for n in counts.values()):
        raise ValueError(
            f"patches_per_split must map splits among {list(PHOTO_SPLIT_BANDS)} to ints >= 1, "
            f"got {counts}."
        )
    if not isinstance(patch_size, int) or patch_size < 8:
        raise ValueError(f"patch_size must be an int >= 8 pixels, got {patch_size!r}.")
    root = Path(root)
    for c, name in enumerate(classes):
        photo = load_source_photo(name)
        for s, (split, n) in enumerate(counts.items()):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for stale in folder.glob("[0-9][0-9][0-9][0-9].png"):
                if int(stale.stem) >= n:
                    stale.unlink()
            band = _split_band(photo, split, patch_size, name)
            rng = np.random.default_rng([seed, c, list(PHOTO_SPLIT_BANDS).index(split)])
            for i in range(n):
                top = int(rng.integers(0, band.shape[0] - patch_size + 1))
                left = int(rng.integers(0, band.shape[1] - patch_size + 1))
                patch = band[top : top + patch_size, left : left + patch_size]
                Image.fromarray(patch).convert("RGB").save(folder / f"{i:04d}.png", format="PNG")
    return root


def _split_band(photo: np.ndarray, split: str, patch_size: int, name: str) -> np.ndarray:
    """The rows of ``photo`` that ``split`` may use, or an error when a patch does not fit."""
    lo, hi = PHOTO_SPLIT_BANDS[split]
    band = photo[round(lo * photo.shape[0]) : round(hi * photo.shape[0])]
    if band.shape[0] < patch_size or band.shape[1] < patch_size:
        raise ValueError(
            f"The {split} band of the {name} photo is {band.shape[0]}x{band.shape[1]} pixels, "
            f"too small for patches of {patch_size}: use a smaller patch_size."
        )
    return band
