"""The Shapes data set, shapes50k_20x20, exactly as the release's data/shapes.py draws it (SPEC 9).

Binary 20x20 images with three shapes each (a 7x7 square ring, an up-triangle and a
down-triangle, 7x12), drawn from the legacy generator `RandomState(265076)` in the order
train, valid, test, single (one shape per image), so the files are bit-for-bit reproducible and
a smaller file's train images are the first train images of the full file.

`n_shapes` is the release's own `nr_shapes` (3 in its file): shapes per image in train, valid and
test, and the number of mask groups of every split (`single` included), with 1/n_shapes for the
background, and n_shapes + 1 rows of `codes`. Other values give the paper's Figure 4a test sets
(2 or 4 shapes); 3 gives the standard file byte for byte.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
from tqdm import tqdm

SEED = 265076
WIDTH = HEIGHT = 20
N_SHAPES = 3
MIN_SHAPES, MAX_SHAPES = 2, 10  # `--n-shapes` bounds (docs/data.md: why)
SPLIT_SIZES = {"train": 50000, "valid": 10000, "test": 10000, "single": 10000}
DESCRIPTION = ("Shapes: binary 20x20 images with three random shapes each (7x7 square ring, 7x12 up- and "
               "down-triangle); split 'single' has one shape per image. Drawn as the Tagger release's "
               "data/shapes.py draws them (numpy RandomState(265076)).")


def description(n_shapes: int = N_SHAPES) -> str:
    """The file's `description` attribute: DESCRIPTION itself for the standard three shapes."""
    if n_shapes == N_SHAPES:
        return DESCRIPTION
    return DESCRIPTION.replace("three random shapes each", f"{n_shapes} random shapes each (--n-shapes "
                               f"{n_shapes}; the standard file has three)")


SQUARE = np.ones((7, 7), dtype=bool)
SQUARE[2:5, 2:5] = False  # a ring with a 2-pixel border

TRIANGLE = np.array([[c == "1" for c in row] for row in (
    "000001100000",
    "000011110000",
    "000111111000",
    "001110011100",
    "011100001110",
    "111111111111",
    "111111111111",
)])

SHAPES = (SQUARE, TRIANGLE, TRIANGLE[::-1])  # kind 0, 1, 2 = square, up-, down-triangle


def shapes_image(rng: np.random.RandomState, n_shapes: int = N_SHAPES) -> Tuple[np.ndarray, np.ndarray]:
    """One image: (pixels (20, 20) bool, group ids (20, 20) uint8).

    Per shape k = 1..n_shapes: kind = randint(0, 3), then x = randint(0, 20 - w + 1),
    y = randint(0, 20 - h + 1); the shape adds 1 to a count image and writes k into the group
    image. Pixels covered more than once get group 0, like the background.
    """
    count = np.zeros((HEIGHT, WIDTH), dtype=np.int64)
    group = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    for k in range(1, n_shapes + 1):
        shape = SHAPES[rng.randint(0, len(SHAPES))]
        h, w = shape.shape
        x = rng.randint(0, WIDTH - w + 1)
        y = rng.randint(0, HEIGHT - h + 1)
        count[y:y + h, x:x + w] += shape
        group[y:y + h, x:x + w][shape] = k
    group[count > 1] = 0
    return count > 0, group


def group_masks(group: np.ndarray, n_groups: int = N_SHAPES) -> np.ndarray:
    """Group ids (N, 20, 20) -> masks (N, n_groups, 400) float32.

    A pixel owned by shape k has the one-hot row e_{k-1}; background and overlaps (id 0) have
    1/n_groups in every group.
    """
    table = np.eye(n_groups + 1, dtype=np.float32)
    table[0] = 1.0 / n_groups
    table = table[:, 1:]  # (n_groups + 1, n_groups): id -> mask row
    masks = table[group]  # (N, 20, 20, n_groups)
    return np.ascontiguousarray(masks.reshape(len(group), HEIGHT * WIDTH, n_groups).transpose(0, 2, 1))


def generate_shapes(n_train: int = 50000, n_valid: int = 10000, n_test: int = 10000,
                    n_single: int = 10000, seed: int = SEED, progress: bool = True,
                    n_shapes: int = N_SHAPES) -> Dict[str, Dict[str, np.ndarray]]:
    """All splits: {split: {'features' (N,400) float32, 'mask' (N,n_shapes,400) float32,
    'targets' (N,1) uint8 zeros, 'codes' (N,n_shapes+1,400) uint8 zeros}} in the release's source
    order. n_shapes: the release's `nr_shapes` (see the module's docstring); `single` keeps one."""
    if not MIN_SHAPES <= n_shapes <= MAX_SHAPES:
        raise ValueError(f"n_shapes must be in [{MIN_SHAPES}, {MAX_SHAPES}] (got {n_shapes})")
    rng = np.random.RandomState(seed)
    sizes = {"train": n_train, "valid": n_valid, "test": n_test, "single": n_single}
    splits = {}
    with tqdm(total=sum(sizes.values()), desc="shapes", unit="img", disable=None if progress else True,
              leave=False) as bar:
        for split, n in sizes.items():
            per_image = 1 if split == "single" else n_shapes
            pixels = np.zeros((n, HEIGHT, WIDTH), dtype=np.float32)
            group = np.zeros((n, HEIGHT, WIDTH), dtype=np.uint8)
            for i in range(n):
                pixels[i], group[i] = shapes_image(rng, per_image)
                bar.update()
            splits[split] = {
                "features": pixels.reshape(n, HEIGHT * WIDTH),
                "mask": group_masks(group, n_shapes),
                "targets": np.zeros((n, 1), dtype=np.uint8),
                "codes": np.zeros((n, n_shapes + 1, HEIGHT * WIDTH), dtype=np.uint8),
            }
    return splits
