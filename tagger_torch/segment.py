"""A trained Tagger on one's own data (`tagger-torch segment`): inputs from .npy arrays or PNG images,
the clean-path iterations, masks and reconstructions to an .npz, and a Figure-4 picture.

Inputs (`read_inputs`): an .npy of shape (N, *in_dim), (N, D) or (N, H, W) with (H, W) the picture
shape of the model (`visualize.image_shape`: 20x20 for Shapes' in_dim (400,)), taken as they are; or
PNG images of exactly H x W pixels with one channel (grey, or colour whose channels are equal; an
alpha channel must be opaque), scaled to [0, 1] (8-bit / 255, 16-bit / 65535). For a binary model
(input_type binary) every example must be binary-like (at most BINARY_LIKE_MAX of its pixels between
0.25 and 0.75, all within [0, 1]) and is binarised at 0.5.

The run (`segment_examples`): the clean path (x~ = x, no corruption, as AMI and the paper's Figure 4)
in batches of valid_batch_size, with example n's m0 draws the n-th block of K*D standard-normal
draws of a CPU torch.Generator seeded with `seed`, so an example's draws do not depend on the others
or on the batching. They are drawn on the CPU for every device and then copied: a CUDA generator's
draws depend on the size of each call, so there the batching would change them. With population
statistics (`normstats.PopulationStatistics`) or a LayerNorm model, an example's result is then the
same alone or among others (to float rounding).
"""
from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from .errors import TaggerError
from .files import load_npy, save_npz
from .visualize import image_shape, plot_examples

BINARY_LIKE_MAX = 0.10  # the largest fraction of a binary model's input pixels allowed within (0.25, 0.75)
INPUT_SUFFIXES = (".npy", ".png")


def _png_pixels(path: str) -> np.ndarray:
    """The pixels (h, w) of a one-channel PNG in [0, 1]; TaggerError naming what is wrong."""
    from PIL import Image, UnidentifiedImageError  # Pillow comes with matplotlib

    try:
        with Image.open(path) as img:
            img.load()
            if img.format != "PNG":
                raise TaggerError(f"{path} is a {img.format} image, not a PNG")
            mode = img.mode
            if mode in ("P", "PA"):
                img = img.convert("RGBA")
            a = np.asarray(img)
    except FileNotFoundError:
        raise TaggerError(f"input file not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise TaggerError(f"cannot read image {path}: {e}") from None
    if a.dtype == np.bool_:
        a = a.astype(np.float64)
    elif a.dtype == np.uint8:
        a = a / 255.0
    elif a.dtype in (np.uint16, np.int32, np.uint32) or mode.startswith("I;16"):
        a = a / 65535.0
    else:
        raise TaggerError(f"{path}: unsupported pixel format (mode {mode})")
    if a.ndim == 3:  # (h, w, channels): one channel only in effect
        c = a.shape[2]
        colour, alpha = (a[..., :3], a[..., 3]) if c == 4 else (a[..., :1], a[..., 1]) if c == 2 else (a, None)
        if (alpha is not None and np.any(alpha < 1)) or np.any(colour != colour[..., :1]):
            what = "transparent pixels" if alpha is not None and np.any(alpha < 1) else "colour"
            raise TaggerError(f"{path} has {c} channels ({mode}, with {what}); the model takes one-channel "
                              "(grey-scale) images")
        a = colour[..., 0]
    return a


def read_png(path: str, in_dim: Sequence[int]) -> np.ndarray:
    """One PNG as an example (D,) for a model with input shape `in_dim`."""
    if int(np.prod(in_dim[:-2])) > 1:
        raise TaggerError(f"the model takes {int(np.prod(in_dim[:-2]))}-channel inputs {tuple(in_dim)}: "
                          "give them as an .npy array")
    H, W = image_shape(in_dim)
    a = _png_pixels(path)
    if a.shape != (H, W):
        raise TaggerError(f"{path} is {a.shape[1]}x{a.shape[0]} pixels; the model takes {W}x{H} images")
    return a.reshape(-1)


def read_array(path: str, config) -> np.ndarray:
    """An .npy of examples (N, *in_dim), (N, D) or (N, H, W) as (N, D)."""
    x = load_npy(path, "input")
    D = config.input_size
    shapes = list(dict.fromkeys([(D,), tuple(config.in_dim), image_shape(config.in_dim)]))
    if x.ndim < 2 or x.shape[1:] not in shapes:
        expected = " or ".join("(N, " + ", ".join(map(str, s)) + ")" for s in shapes)
        raise TaggerError(f"{path} has shape {x.shape}; the model takes {expected}")
    if x.shape[0] == 0:
        raise TaggerError(f"{path} holds no examples")
    return x.reshape(x.shape[0], D).astype(np.float64)


def binarise(x: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Binary-like examples x (N, D) in [0, 1] -> {0, 1} at 0.5; TaggerError naming the first that is not."""
    if np.any((x < 0) | (x > 1)):
        n = int(np.argmax(np.any((x < 0) | (x > 1), axis=1)))
        raise TaggerError(f"{names[n]} has values outside [0, 1] ({x[n].min():g}..{x[n].max():g}); "
                          "the model takes binary images")
    grey = np.mean((x > 0.25) & (x < 0.75), axis=1)  # (N,)
    if np.any(grey > BINARY_LIKE_MAX):
        n = int(np.argmax(grey > BINARY_LIKE_MAX))
        raise TaggerError(f"{names[n]} is not binary-like: {100 * grey[n]:.0f}% of its pixels lie between 0.25 "
                          f"and 0.75 (at most {100 * BINARY_LIKE_MAX:.0f}% allowed); the model takes black-and-white "
                          "images")
    return (x > 0.5).astype(np.float64)


def read_inputs(paths: Sequence[str], config) -> Tuple[np.ndarray, List[str]]:
    """The examples (N, D) float32 of .npy and .png files, in order, and a name for each."""
    if not paths:
        raise TaggerError("give at least one --input FILE (.npy or .png)")
    blocks, names = [], []
    for path in paths:
        suffix = os.path.splitext(path)[1].lower()
        if suffix == ".npy":
            x = read_array(path, config)
            names += [f"{path}[{n}]" for n in range(x.shape[0])]
        elif suffix == ".png":
            x = read_png(path, config.in_dim)[None]
            names.append(path)
        else:
            raise TaggerError(f"{path}: unsupported input '{suffix or path}' (use .npy arrays or .png images)")
        blocks.append(x)
    x = np.concatenate(blocks)
    if not np.all(np.isfinite(x)):
        raise TaggerError(f"{names[int(np.argmax(~np.all(np.isfinite(x), axis=1)))]} holds NaN or inf")
    if config.input_type == "binary":
        x = binarise(x, names)
    return x.astype(np.float32), names


@torch.inference_mode()
def segment_examples(model, x: np.ndarray, n_groups: int, n_iterations: int, normaliser=None, seed: int = 0,
                     batch_size: Optional[int] = None) -> dict:
    """The clean-path states of examples x (N, D): z, m (T+1, K, N, D) from the initial state to T.

    normaliser: tagger_torch.normstats (None: each batch's statistics); batches of `batch_size`
    (default valid_batch_size); example n's m0 draws: the n-th block of K*D draws of `seed` on the CPU.
    """
    K, T = n_groups, n_iterations
    device, dtype = next(model.parameters()).device, next(model.parameters()).dtype
    bs = batch_size or model.config.valid_batch_size
    generator = torch.Generator().manual_seed(seed)  # on the CPU for every device (module docstring)
    zs, ms = [], []
    for start in range(0, x.shape[0], bs):
        xb = torch.from_numpy(x[start:start + bs]).to(device=device, dtype=dtype)  # (B, D)
        B, D = xb.shape
        # example-major draws (B, K, D) -> (K, B, D): example n's m0 is block n of the stream
        m_init = torch.randn((B, K, D), generator=generator, dtype=dtype).transpose(0, 1).contiguous().to(device)
        out = model(xb, corrupt=False, m_init=m_init, n_groups=K, n_iterations=T, record=True, normaliser=normaliser)
        zs.append(out.trace["z"].cpu().numpy())  # (T+1, K, B, D)
        ms.append(out.trace["m"].cpu().numpy())
    return {"z": np.concatenate(zs, axis=2), "m": np.concatenate(ms, axis=2)}


def save_segmentation(path: str, x: np.ndarray, states: dict, names: Sequence[str], facts: dict) -> dict:
    """OUT.npz: x (N, D) the input as the model saw it; z, m (T+1, K, N, D) the reconstructions and
    masks from the initial state (row 0) to iteration T; reconstruction (T+1, N, D) = sum_k m_k z_k;
    groups (T+1, N, D) argmax_k m_k; iterations (T+1,) = 0..T; inputs (N,) the example names; and
    `facts` (norm_stats, seed, ...). Returns the arrays."""
    z, m = states["z"], states["m"]
    arrays = dict(x=x, z=z, m=m, reconstruction=(m * z).sum(axis=1), groups=m.argmax(axis=1).astype(np.int16),
                  iterations=np.arange(z.shape[0]), inputs=np.array(list(names)))
    arrays.update({key: np.array(value) for key, value in facts.items()})
    save_npz(path, arrays, dtype=None)
    return arrays


def draw_segmentation(path: str, x: np.ndarray, states: dict, names: Sequence[str], in_dim, count: int,
                      title: str = "") -> None:
    """The Figure-4 picture (visualize.plot_examples) of the first `count` examples."""
    examples = [dict(index=n, x=x[n], z=states["z"][:, :, n], m=states["m"][:, :, n], ami=None, mask=None)
                for n in range(min(count, x.shape[0]))]
    names = ", ".join(f"#{n} {os.path.basename(names[n])}" for n in range(len(examples)))
    plot_examples(examples, in_dim, path, f"{title}\n{names}" if title else names)
