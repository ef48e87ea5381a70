"""Data sets in the release's HDF5 layout (SPEC 9): reader, writer, generators. NumPy only, no torch.

    from tagger_torch.data import dataset_info, load_split
    info = dataset_info("datasets/shapes50k_20x20.h5")   # input_type, in_dim, splits, ...
    batch = load_split(info.path, "train")               # {'features', 'mask', 'targets'} arrays
"""
from .h5layout import DatasetInfo, dataset_info, load_split

__all__ = ["DatasetInfo", "dataset_info", "load_split"]
