"""Gradients by central finite differences, float64, for checking the PyTorch port's autograd.

Example: numerical_grad(lambda p: training_cost(p, config, x, m_init, corruption), params)
"""
from typing import Callable, Dict, Iterable, Optional

import numpy as np


def numerical_grad(f: Callable[[Dict[str, np.ndarray]], float], params: Dict[str, np.ndarray],
                   names: Optional[Iterable[str]] = None, eps: float = 1e-6) -> Dict[str, np.ndarray]:
    """d f / d params[name] for each name in `names` (default: all), element by element.

    f: maps a dict of float64 arrays (the same names as `params`) to a scalar.
    Each element gets (f(p + eps) - f(p - eps)) / (2 eps); the error is O(eps^2) plus rounding
    of order |f| 1e-16 / eps. Returns {name: float64 array of the parameter's shape}.
    """
    point = {name: np.array(value, dtype=np.float64) for name, value in params.items()}
    grads = {}
    for name in (list(point) if names is None else list(names)):
        value = point[name]
        grad = np.zeros(value.shape)
        for index in np.ndindex(*value.shape):
            original = value[index]
            value[index] = original + eps
            f_plus = float(f(point))
            value[index] = original - eps
            f_minus = float(f(point))
            value[index] = original
            grad[index] = (f_plus - f_minus) / (2.0 * eps)
        grads[name] = grad
    return grads
