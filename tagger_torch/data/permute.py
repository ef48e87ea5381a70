"""One fixed permutation of the pixel positions: the data option `--permute-seed` and its twin on Tagger's weights.

The paper (section 4) notes that Tagger assumes nothing image-specific, so its results hold "even if we
permute all the pixels". Tagger sees an input as D pixels x_1..x_D: every operation is either
per pixel (corruption, z0/m0, L(m), dz, the costs) or a dense product over all pixels (a_in @ W,
u0 @ z_u_W, u0 @ m_u_W), and the normalisations reduce over rows or over all D units. Permuting the
pixel axis of the data is therefore absorbed exactly by permuting the pixel axis of the weights
(`permute_params`) and of the noise draws (`permute_pixels`): docs/permutation.md.

Convention: perm = `numpy.random.RandomState(seed).permutation(D)`; the permuted image's pixel j is
the original's pixel perm[j], i.e. `x_permuted = x[..., perm]` on the flattened pixel axis.
NumPy and h5py only (no torch).
"""
from __future__ import annotations

from typing import Mapping, Optional, Tuple

import h5py
import numpy as np

# root attributes of a permuted data file (absent in plain files, which stay byte-identical)
SEED_ATTR = "permute_seed"
PERM_ATTR = "pixel_permutation"
PIXEL_SOURCES = ("features", "mask")  # what is permuted; `targets` and `codes` carry no pixel axis
# (Shapes' `codes` (N, G, 400) are all-zero placeholders: permuting them changes nothing, so they stay)

# parameters with a pixel axis (release names, tagger_torch.params): where it sits
# W (4D, H0): rows in four blocks [zt, dz, m, L] of D rows each; z_u_W, m_u_W (H0, D): columns;
# c1, b1 and, with norm 'layer-gain', m_u_c (D,). All others (b, c, c2, v, the Ladder's f_*, g_*) have none.
_COLUMNS = ("z_u_W", "m_u_W")
_VECTORS = ("c1", "b1", "m_u_c")


def pixel_permutation(seed: int, n_pixels: int) -> np.ndarray:
    """perm (D,) int64 = RandomState(seed).permutation(D): new pixel j is old pixel perm[j]."""
    return np.random.RandomState(seed).permutation(n_pixels).astype(np.int64)


def _pixel_axes(shape: Tuple[int, ...], n_pixels: int) -> int:
    """How many trailing axes of `shape` hold the D pixels (the fewest whose product is D)."""
    size = 1
    for k in range(1, len(shape) + 1):
        size *= shape[-k]
        if size == n_pixels:
            return k
        if size > n_pixels:
            break
    raise ValueError(f"no trailing axes of shape {shape} hold {n_pixels} pixels")


def permute_pixels(x, perm: np.ndarray):
    """x with its pixels reordered, x'[..., j] = x[..., perm[j]] over the flattened pixel axes.

    x: (..., D) or (..., *in_dim) with prod(in_dim) = D (features (N, 1, 28, 28), masks (N, G, 400),
    noise draws (B, D) or (K, B, D)); a NumPy array or a torch tensor, returned in the same shape.
    """
    perm = np.asarray(perm)
    D = len(perm)
    shape = tuple(x.shape)
    k = _pixel_axes(shape, D)
    lead = shape[:len(shape) - k]
    flat = x.reshape(*lead, D)
    if not isinstance(x, np.ndarray):  # a torch tensor: index with a tensor on its device
        import torch
        return flat[..., torch.as_tensor(perm, device=x.device)].reshape(shape)
    return flat[..., perm].reshape(shape)


def inverse_permutation(perm: np.ndarray) -> np.ndarray:
    """inv with permute_pixels(permute_pixels(x, perm), inv) == x."""
    return np.argsort(np.asarray(perm)).astype(np.int64)


def permute_params(params: Mapping[str, np.ndarray], perm: np.ndarray, config=None) -> dict:
    """Tagger's weights for pixel-permuted inputs: the same function of the permuted data.

    With theta' = permute_params(theta, perm), the model theta' on x[..., perm] (and on the noise
    draws permuted the same way) computes exactly what theta computes on x, with every per-pixel
    output (z, m, L(m), dz) permuted; per-image outputs (costs, the Ladder's y) are equal.
      W (4D, H0): each block of D rows [zt, dz, m, L] -> block[perm] (a_in' @ W' = a_in @ W)
      z_u_W, m_u_W (H0, D): columns [:, perm];  c1, b1, m_u_c (D,): [perm];  everything else unchanged.
    params: name -> array (release names; NumPy arrays or torch tensors); config (optional) checks D.
    """
    perm = np.asarray(perm)
    D = len(perm)
    if config is not None and config.input_size != D:
        raise ValueError(f"the permutation has {D} pixels, the config D={config.input_size}")
    if sorted(perm.tolist()) != list(range(D)):
        raise ValueError("perm is not a permutation of 0..D-1")
    out = dict(params)
    W = params["W"]
    if tuple(W.shape)[0] != 4 * D:
        raise ValueError(f"W has shape {tuple(W.shape)}, expected (4*{D}, H0)")
    rows = np.concatenate([block * D + perm for block in range(4)])  # (4D,)
    out["W"] = W[_index(rows, W)]
    for name in _COLUMNS:
        out[name] = params[name][:, _index(perm, params[name])]
    for name in (name for name in _VECTORS if name in params):  # m_u_c: only with learned gains
        out[name] = params[name][_index(perm, params[name])]
    return out


def _index(index: np.ndarray, like):
    if isinstance(like, np.ndarray):
        return index
    import torch
    return torch.as_tensor(index, device=like.device)


# ---------------------------------------------------------------------------------------------
# Data files
# ---------------------------------------------------------------------------------------------
def permute_splits(splits: Mapping[str, Mapping[str, np.ndarray]], perm: np.ndarray) -> dict:
    """{split: {source: array}} with `features` and `mask` of every split permuted by perm."""
    return {name: {source: permute_pixels(a, perm) if source in PIXEL_SOURCES else a
                   for source, a in sources.items()}
            for name, sources in splits.items()}


def write_permutation(f: h5py.File, seed: int, perm: np.ndarray) -> None:
    """Record the permutation as the root attributes `permute_seed` and `pixel_permutation`."""
    f.attrs[SEED_ATTR] = np.int64(seed)
    f.attrs[PERM_ATTR] = np.asarray(perm, dtype=np.int64)


def read_permutation(f: h5py.File) -> Optional[Tuple[int, np.ndarray]]:
    """(seed, perm) of a file written with --permute-seed, or None for a file in image order."""
    if PERM_ATTR not in f.attrs:
        return None
    seed = int(f.attrs[SEED_ATTR]) if SEED_ATTR in f.attrs else -1
    return seed, np.asarray(f.attrs[PERM_ATTR], dtype=np.int64)
