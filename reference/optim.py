"""The release's optimiser (SPEC 7) in plain NumPy, float64: one functional Adam step of Blocks 0.2.

Twin of `tagger_torch.optim` (`BlocksAdam`, a torch.optim.Optimizer whose in-place rule is
`adam_update_`).
"""
import numpy as np


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
