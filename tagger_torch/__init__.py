"""Tagger (Greff et al., NIPS 2016) in PyTorch.

Importing the package is cheap: torch is imported by the submodules that need it
(`tagger_torch.model`, `tagger_torch.training`, ...), not here.
"""
from .config import PRESETS, TaggerConfig, get_preset, load_config
from .errors import TaggerError

__version__ = "0.1.0"
__all__ = ["TaggerConfig", "TaggerError", "PRESETS", "get_preset", "load_config", "__version__"]
