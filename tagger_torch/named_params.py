"""Parameters by the release's names: load, copy out and save, for any model whose parameters are
registered under the names of its `shapes` table (Tagger and the Table-2 baselines)."""
from __future__ import annotations

from typing import Dict, Mapping

import numpy as np
import torch

from .files import save_npz
from .inputs import check_params


class NamedParameters:
    """Mixin for an `nn.Module` with `self.shapes` (name -> shape) and one parameter per name."""

    def load_params(self, params: Mapping[str, np.ndarray], subset: bool = False) -> list:
        """Copy parameters by name; every shape is checked and each mismatch named (TaggerError).

        subset=False: the names must be exactly the model's (the release's unused book-keeping entries
        `counter`, `counter_max`, `shared_f_*_bn_*` are ignored). subset=True (stage 2 of the MNIST
        protocol): names the model lacks are ignored, parameters the file lacks keep their values.
        Scalars (c2, v) stored with shape (1,) are accepted. Returns the names loaded.
        """
        fitted = check_params(params, self.shapes, subset=subset)
        with torch.no_grad():
            for name, value in fitted.items():
                value = value if torch.is_tensor(value) else torch.from_numpy(np.asarray(value))
                self._parameters[name].copy_(value)
        return list(fitted)

    def numpy_params(self) -> Dict[str, np.ndarray]:
        """name -> numpy array (a copy, in the model's dtype), in the order of `shapes`."""
        return {name: p.detach().cpu().numpy().copy() for name, p in self._parameters.items()}

    def save_npz(self, path: str, dtype=np.float32) -> None:
        """Save in the release format: one array per name, float32 unless `dtype` says otherwise."""
        save_npz(path, self.numpy_params(), dtype=dtype)
