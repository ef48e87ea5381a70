"""`tagger-torch data-summary`: what a data file in the release's layout holds (also the release's
own files), with each split's statistics. NumPy and h5py only."""
from __future__ import annotations

from typing import List, Optional, Tuple

import h5py
import numpy as np

from ..constants import MASK_THRESHOLD
from . import permute
from .h5layout import dataset_info, open_fuel_file, scan_rows


def split_statistics(path: str, split: str, has_mask: bool) -> Tuple[float, Optional[float]]:
    """(mean pixel, mean number of mask groups owning a pixel with mask value > 0.9 per image)
    (SPEC 6's threshold, MASK_THRESHOLD)."""
    with open_fuel_file(path) as (f, table):
        start, stop = table[split]["features"]
        total = sum(float(block.sum(dtype=np.float64)) for block in scan_rows(f["features"], start, stop))
        mean_pixel = total / max(1, (stop - start) * int(np.prod(f["features"].shape[1:])))
        if not has_mask or "mask" not in table[split]:
            return mean_pixel, None
        start, stop = table[split]["mask"]
        owners = 0
        for block in scan_rows(f["mask"], start, stop):
            block = block.reshape(block.shape[0], block.shape[1], -1)  # (n, groups, D)
            owners += int(np.sum(np.any(block > MASK_THRESHOLD, axis=2)))
        return mean_pixel, owners / max(1, stop - start)


def summary_lines(path: str, input_type: Optional[str] = None) -> List[str]:
    """The lines of `data-summary`: type, shape, splits, sources, labels, mask groups, the pixel
    permutation, and each split's statistics. input_type overrides the type found from the data."""
    info = dataset_info(path, input_type)
    how = "given" if input_type else ("features all in {0, 1}" if info.input_type == "binary" else
                                     "features not all in {0, 1}")
    lines = [path, f"  input type   {info.input_type} ({how})",
             f"  input shape  {info.in_dim}  D = {int(np.prod(info.in_dim))}",
             "  splits       " + ", ".join(f"{s} {n}" for s, n in info.splits.items())]
    with h5py.File(path, "r") as f:
        lines += [f"  source       {source:<9} {str(f[source].shape):<22} {f[source].dtype}" for source in info.sources]
        permutation = permute.read_permutation(f)
    labels = (f"yes, {info.objects_per_sample} per image" if info.has_labels
              else "none (targets all zero)" if "targets" in info.sources else "none")
    lines.append(f"  labels       {labels}")
    lines.append(f"  mask groups  {info.n_mask_groups if info.n_mask_groups is not None else 'none'}")
    if permutation is not None:
        lines.append(f"  pixels       permuted: RandomState({permutation[0]}).permutation({len(permutation[1])}) "
                     f"(attribute {permute.PERM_ATTR}; features and masks alike)")
    for split in info.splits:
        mean_pixel, owners = split_statistics(path, split, info.n_mask_groups is not None)
        line = f"  {split:<12} mean pixel {mean_pixel:.4f}"
        if owners is not None:
            line += f", mask groups owning pixels (> 0.9) per image {owners:.3f}"
        lines.append(line)
    return lines
