"""Parameters by the release's names (SPEC 7): shapes, release-order initialisation, .npz I/O, Adam.

Names and shapes, with L = len(encoder_proj) - 1 and H0..HL = encoder_proj, D = prod(in_dim):
Tagger's own (tagger.py): W (4D, H0), b (H0), z_u_W (H0, D), m_u_W (H0, D), c1 (D), b1 (D),
c2 () and, for continuous inputs only, v (). The Ladder's (ladder.py): f_l_W (H_{l-1}, H_l) and
f_l_b (H_l) for l = 1..L, f_L_c (H_L), g_l_W (H_{l+1}, H_l) for l = 0..L-1 and g_l_a1..g_l_a10 (H_l)
for l = 0..L.
"""
import re
from collections import OrderedDict
from typing import Dict

import numpy as np

from tagger_torch.errors import TaggerError

# Batch-norm book-keeping that the release saves with the parameters but never uses (SPEC 7).
RELEASE_BOOKKEEPING = re.compile(r"^(counter|counter_max|shared_f_\d+_bn_(mean|var)_clean)$")


def param_shapes(config) -> "OrderedDict[str, tuple]":
    """Every parameter's name and shape, in the order the release creates them."""
    D = config.input_size
    H = config.encoder_proj
    L = len(H) - 1
    shapes = OrderedDict()
    if config.input_type == "continuous":
        shapes["v"] = ()
    shapes["W"] = (4 * D, H[0])
    shapes["b"] = (H[0],)
    shapes["z_u_W"] = (H[0], D)
    shapes["c1"] = (D,)
    shapes["b1"] = (D,)
    shapes["m_u_W"] = (H[0], D)
    shapes["c2"] = ()
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


def init_params(config, seed: int) -> Dict[str, np.ndarray]:
    """SPEC 7: the release's initial parameters for `seed`, float32, bit for bit.

    Weights N(0,1) / sqrt(fan_in) of shape (in, out), biases 0, scales (c1, c2, f_L_c) 1, v = 1,
    combinators a2 = a7 = 1 and the other a's 0. Two numpy.random.RandomState(seed) streams:
    Tagger's draws W, z_u_W, m_u_W; the Ladder's draws f_1_W..f_L_W, the same L shapes again
    (the corrupted encoder's discarded draws), then g_{L-1}_W down to g_0_W. The Ladder divides
    its decoder weights by a float32 sqrt (its fan-in is a float32 there), which is kept.
    """
    shapes = param_shapes(config)
    H = config.encoder_proj
    L = len(H) - 1
    params = OrderedDict()
    for name, shape in shapes.items():
        if re.fullmatch(r"g_\d+_a[27]|c1|c2|v|f_\d+_c", name):
            params[name] = np.ones(shape, dtype=np.float32)
        else:
            params[name] = np.zeros(shape, dtype=np.float32)

    def draw(rng, fan_in, fan_out, sqrt_fan_in):
        return np.float32(rng.randn(fan_in, fan_out) / sqrt_fan_in)

    tagger_rng = np.random.RandomState(seed)
    for name in ("W", "z_u_W", "m_u_W"):
        fan_in, fan_out = shapes[name]
        params[name] = draw(tagger_rng, fan_in, fan_out, np.sqrt(fan_in))

    ladder_rng = np.random.RandomState(seed)
    for l in range(1, L + 1):
        params[f"f_{l}_W"] = draw(ladder_rng, H[l - 1], H[l], np.sqrt(H[l - 1]))
    for l in range(1, L + 1):
        draw(ladder_rng, H[l - 1], H[l], np.sqrt(H[l - 1]))  # discarded
    for l in range(L - 1, -1, -1):
        params[f"g_{l}_W"] = draw(ladder_rng, H[l + 1], H[l], np.sqrt(np.float32(H[l + 1])))
    return dict(params)


def check_params(params: Dict[str, np.ndarray], config) -> None:
    """TaggerError unless `params` holds exactly the parameters of `config` with their shapes."""
    shapes = param_shapes(config)
    missing = [name for name in shapes if name not in params]
    if missing:
        raise TaggerError(f"missing parameter(s) for this config: {', '.join(missing)}")
    unknown = sorted(set(params) - set(shapes))
    if unknown:
        raise TaggerError(f"unknown parameter name(s) for this config: {', '.join(unknown)}")
    for name, shape in shapes.items():
        if np.shape(params[name]) != shape:
            raise TaggerError(f"parameter {name} has shape {np.shape(params[name])}, expected {shape}")


def load_params(path: str, config) -> Dict[str, np.ndarray]:
    """Read a parameter .npz (one array per release name), checked against `config`.

    The release's unused Batch-norm book-keeping entries (counter, counter_max, shared_f_*_bn_*)
    are dropped; scalars stored with shape (1,) are accepted as shape ().
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            params = {name: f[name] for name in f.files if not RELEASE_BOOKKEEPING.match(name)}
    except FileNotFoundError:
        raise TaggerError(f"parameter file not found: {path}") from None
    except (OSError, ValueError) as e:
        raise TaggerError(f"cannot read parameter file {path}: {e}") from None
    for name in ("c2", "v"):
        if name in params and np.shape(params[name]) == (1,):
            params[name] = params[name].reshape(())
    check_params(params, config)
    return params


def save_params(path: str, params: Dict[str, np.ndarray]) -> None:
    """Write parameters as float32 arrays named as in the release (np.savez)."""
    np.savez(path, **{name: np.asarray(value, dtype=np.float32) for name, value in params.items()})


def adam_step(params, grads, state=None, lr=0.001):
    """SPEC 7: one step of Blocks 0.2's Adam (beta1 = 0.1, beta2 = 0.001 in Blocks' notation).

    params, grads: dicts name -> array (float64 here). state: None at the first step, else the
    returned dict {'t': steps taken, 'm': {name: first moment}, 'v': {name: second moment}}.
      t += 1;  lr_t = lr sqrt(1 - 0.999^t) / (1 - 0.9^t)
      beta = 0.9 (1 - 1e-8)^(t - 1);  m = beta m + (1 - beta) g;  v = 0.999 v + 0.001 g^2
      param -= lr_t m / (sqrt(v) + 1e-8)
    Returns (new params, new state); the inputs are not modified.
    """
    if state is None:
        state = {"t": 0, "m": {n: np.zeros(np.shape(p)) for n, p in params.items()},
                 "v": {n: np.zeros(np.shape(p)) for n, p in params.items()}}
    t = state["t"] + 1
    lr_t = lr * np.sqrt(1.0 - 0.999 ** t) / (1.0 - 0.9 ** t)
    beta = 0.9 * (1.0 - 1e-8) ** (t - 1)
    new_params, new_m, new_v = {}, {}, {}
    for name, value in params.items():
        g = np.asarray(grads[name], dtype=np.float64)
        new_m[name] = beta * state["m"][name] + (1.0 - beta) * g
        new_v[name] = 0.999 * state["v"][name] + 0.001 * g ** 2
        new_params[name] = np.asarray(value, dtype=np.float64) - lr_t * new_m[name] / (np.sqrt(new_v[name]) + 1e-8)
    return new_params, {"t": t, "m": new_m, "v": new_v}
