"""Tagger's parameters by the release's names: shapes, initialisation from a seed, `.npz` load/save.

Pure NumPy (no torch), so the names and shapes are one table for every user. SPEC section 7.

Names and shapes, checked against the release (CuriousAI/tagger `tagger.py`, and `ladder.py` of its
Ladder submodule CuriousAI/ladder); D = prod(in_dim), H_0..H_L = encoder_proj:

    W (4D, H0)  b (H0)  z_u_W (H0, D)  c1 (D)  b1 (D)  m_u_W (H0, D)  c2 ()  v () [continuous only]
    f_l_W (H_{l-1}, H_l), f_l_b (H_l)               l = 1..L
    f_L_c (H_L)                                     the softmax top's scale (`top_c`)
    g_l_a1 .. g_l_a10 (H_l)                         l = L..0 (the 'gauss' combinators)
    g_l_W (H_{l+1}, H_l)                            l = L-1..0

`c2` and `v` are 0-d arrays: the release creates them from Python/NumPy scalars.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Tuple

import numpy as np

from .config import TaggerConfig
from .errors import TaggerError

Shape = Tuple[int, ...]

# Batch-norm book-keeping that the release's Ladder saves beside the parameters (running averages it
# never uses in Tagger); loading ignores them.
_RELEASE_EXTRA = re.compile(r"^(counter|counter_max|shared_f_\d+_bn_\w+)$")


def is_release_extra(name: str) -> bool:
    """True for the unused `counter`, `counter_max`, `shared_f_*_bn_*` entries of release files."""
    return _RELEASE_EXTRA.match(name) is not None


def param_shapes(config: TaggerConfig) -> "OrderedDict[str, Shape]":
    """name -> shape of every parameter, in the order the release creates them."""
    D = config.input_size
    H = config.encoder_proj
    L = len(H) - 1
    shapes: "OrderedDict[str, Shape]" = OrderedDict()
    # Tagger's own parameters (tagger.py, apply_tagger: v before the iterations, then W .. c2)
    if config.input_type == "continuous":
        shapes["v"] = ()
    shapes["W"] = (4 * D, H[0])
    shapes["b"] = (H[0],)
    shapes["z_u_W"] = (H[0], D)
    shapes["c1"] = (D,)
    shapes["b1"] = (D,)
    shapes["m_u_W"] = (H[0], D)
    shapes["c2"] = ()
    # the Ladder (ladder.py, LadderAE.f and LadderAE.g)
    for l in range(1, L + 1):
        shapes[f"f_{l}_W"] = (H[l - 1], H[l])
        shapes[f"f_{l}_b"] = (H[l],)
    shapes[f"f_{L}_c"] = (H[L],)
    for l in range(L, -1, -1):
        if l < L:
            shapes[f"g_{l}_W"] = (H[l + 1], H[l])
        for j in range(1, 11):
            shapes[f"g_{l}_a{j}"] = (H[l],)
    return shapes


def init_params(config: TaggerConfig, seed: int) -> Dict[str, np.ndarray]:
    """The release's initial parameters for `seed`, float32 (SPEC 7).

    Weights are N(0,1)/sqrt(fan_in) of shape (in, out), drawn from two `numpy.random.RandomState(seed)`
    streams in the release's order:
      * Tagger's stream: W, z_u_W, m_u_W (the first iteration of the first path builds them);
      * the Ladder's stream: f_1_W..f_L_W (clean encoder), the same L shapes again (the corrupted
        encoder draws, then finds the shared weights and discards its draws), then g_{L-1}_W .. g_0_W.
    The release divides the decoder weights g_l_W by `np.sqrt(np.float32(H_{l+1}))` (ladder.py computes
    their fan-in with `np.prod(dtype=floatX, ...)`), a float32 square root; the other weights use a
    float64 one. This is reproduced, since it can change the last bit of the float32 result.
    Biases are 0, scales (c1, c2, f_L_c) and v are 1, the combinators have a2 = a7 = 1, others 0.
    """
    shapes = param_shapes(config)
    L = len(config.encoder_proj) - 1

    def draw(rng, shape, fan_in_sqrt):
        return rng.randn(*shape) / fan_in_sqrt

    out: Dict[str, np.ndarray] = {}
    tagger_rng = np.random.RandomState(seed)
    for name in ("W", "z_u_W", "m_u_W"):
        out[name] = draw(tagger_rng, shapes[name], np.sqrt(shapes[name][0]))
    ladder_rng = np.random.RandomState(seed)
    for l in range(1, L + 1):
        out[f"f_{l}_W"] = draw(ladder_rng, shapes[f"f_{l}_W"], np.sqrt(shapes[f"f_{l}_W"][0]))
    for l in range(1, L + 1):  # the corrupted encoder's draws, discarded by the release
        draw(ladder_rng, shapes[f"f_{l}_W"], 1.0)
    for l in range(L - 1, -1, -1):
        shape = shapes[f"g_{l}_W"]
        out[f"g_{l}_W"] = draw(ladder_rng, shape, np.float64(np.sqrt(np.float32(shape[0]))))

    for name, shape in shapes.items():
        if name in out:
            continue
        ones = name in ("c1", "c2", "v", f"f_{L}_c") or name.endswith(("_a2", "_a7"))
        out[name] = np.ones(shape) if ones else np.zeros(shape)
    return OrderedDict((name, np.asarray(out[name], dtype=np.float32)) for name in shapes)


def check_params(params: Mapping[str, np.ndarray], shapes: Mapping[str, Shape],
                 subset: bool = False) -> List[str]:
    """Check `params` (name -> array) against `shapes`; return the names that will be loaded.

    Every shape is checked. Unless `subset`, every name in `shapes` must be present and no name other
    than the release's book-keeping entries may be extra. With `subset` (stage 2 of the MNIST protocol,
    as the release's `load_params` does), missing names keep their values and extra names are ignored.
    All problems are reported together in one TaggerError.
    """
    problems = []
    for name in params:
        if name in shapes and tuple(np.shape(params[name])) != tuple(shapes[name]):
            problems.append(f"{name} has shape {tuple(np.shape(params[name]))}, the model needs "
                            f"{tuple(shapes[name])}")
    if not subset:
        missing = [n for n in shapes if n not in params]
        unknown = [n for n in params if n not in shapes and not is_release_extra(n)]
        if missing:
            problems.append("missing " + ", ".join(missing))
        if unknown:
            problems.append("unknown parameter name(s) " + ", ".join(unknown))
    if problems:
        raise TaggerError("parameters do not fit the model: " + "; ".join(problems))
    return [n for n in shapes if n in params]


def load_npz(path: str) -> Dict[str, np.ndarray]:
    """Read a parameter file (one array per name) into a dict; TaggerError when it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return {name: f[name] for name in f.files}
    except FileNotFoundError:
        raise TaggerError(f"parameter file not found: {path}") from None
    except (OSError, ValueError) as e:
        raise TaggerError(f"cannot read parameter file {path}: {e}") from None


def save_npz(path: str, params: Mapping[str, np.ndarray], dtype=np.float32) -> None:
    """Write `params` as the release does: one array per name, compressed (float32 unless asked)."""
    arrays = {name: np.asarray(value, dtype=dtype) for name, value in params.items()}
    try:
        np.savez_compressed(path, **arrays)
    except OSError as e:
        raise TaggerError(f"cannot write {path}: {e}") from None
