"""Figure-4 style pictures of Tagger's iterations, and the training curves of any run.

For each chosen example (one block of rows each), from the initial state i = 0 to i = T:
* top row: the input, then after each iteration the reconstruction sum_k m_k z_k coloured by group
  (group k in colour k), titled with the example's AMI (SPEC 6) at that iteration, each beside the
  masks coloured by group; last, the true grouping from the data's masks (grey: pixels the AMI
  ignores);
* then one row per group k: z_k beside m_k at each state.
`remove_group` repeats the paper's Figure 4 E2 experiment: group k's mask logits are set to a
large negative value before the last softmax, so the other groups must explain its pixels.
The model runs on the clean path on the whole batch of `valid_batch_size` examples that holds each
chosen example (BatchNorm uses the batch's statistics), as evaluation does.
"""
from __future__ import annotations

import math
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

from .data import load_split
from .errors import TaggerError
from .files import atomic_write
from .metrics import ami_score, true_labels_from_masks

GROUP_COLOURS = np.array([  # colour of group k (tab10, then repeats)
    (0.12, 0.47, 0.71), (1.00, 0.50, 0.05), (0.17, 0.63, 0.17), (0.84, 0.15, 0.16), (0.58, 0.40, 0.74),
    (0.55, 0.34, 0.29), (0.89, 0.47, 0.76), (0.50, 0.50, 0.50), (0.74, 0.74, 0.13), (0.09, 0.75, 0.81)])


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height))


def _save(fig, path: str) -> None:
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=fig.dpi))
    except OSError as e:
        raise TaggerError(f"cannot write {path}: {e.strerror or e}") from None


def image_shape(in_dim: Sequence[int]) -> tuple:
    """(H, W) to draw one example: the last two dims of in_dim, or a square, or a 1-row strip."""
    if len(in_dim) >= 2:
        return int(in_dim[-2]), int(in_dim[-1])
    D = int(np.prod(in_dim))
    side = int(round(math.sqrt(D)))
    return (side, side) if side * side == D else (1, D)


def plot_curves(history: List[dict], path: str) -> None:
    """DIR/curves.png: training cost and validation denoising cost per epoch, and below them the class
    error and the grouping scores (AMI, ARI) where the rows have them."""
    epochs = [r["epoch"] for r in history]
    # the panels below the costs: (y label, [(metrics key, curve label)])
    panels = [("class error %", [("train_class_error", "train (corrupted labelled batch)"),
                                 ("valid_class_error", "valid (clean, last iteration)")]),
              ("AMI, ARI", [("valid_ami", "valid AMI (clean, last iteration, the first examples)"),
                            ("valid_ari", "valid ARI (clean, last iteration, the first examples)")])]
    panels = [(title, curves) for title, curves in panels if any(key in r for key, _ in curves for r in history)]
    fig = _figure(6.5, 3.8 + 2.7 * len(panels))
    ax = fig.add_subplot(1 + len(panels), 1, 1)
    ax.plot(epochs, [r["train_cost"] for r in history], "o-", ms=3, label="train cost (corrupted, mean over iterations)")
    valid = [r for r in history if "valid_denoising_cost" in r]
    if valid:
        ve = [r["epoch"] for r in valid]
        ax.plot(ve, [np.mean(r["valid_denoising_cost"]) for r in valid], "s-", ms=3,
                label="valid denoising cost (mean over iterations)")
        ax.plot(ve, [r["valid_denoising_cost"][-1] for r in valid], "^--", ms=3,
                label="valid denoising cost (last iteration)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cost")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    for i, (title, curves) in enumerate(panels):
        below = fig.add_subplot(1 + len(panels), 1, 2 + i, sharex=ax)
        for key, label in curves:
            rows = [r for r in history if key in r]
            if rows:
                values = [r[key][-1] if isinstance(r[key], list) else r[key] for r in rows]
                below.plot([r["epoch"] for r in rows], values, "o-", ms=3, label=label)
        below.set_xlabel("epoch")
        below.set_ylabel(title)
        below.grid(alpha=0.3)
        below.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def coloured(m: np.ndarray, values: Optional[np.ndarray] = None) -> np.ndarray:
    """RGB (D, 3) of masks m (K, D): sum_k m_k colour_k, times values (K, D) when given."""
    K = m.shape[0]
    colours = GROUP_COLOURS[np.arange(K) % len(GROUP_COLOURS)]  # (K, 3)
    weights = m if values is None else m * np.clip(values, 0, 1)
    return np.clip(np.einsum("kd,kc->dc", weights, colours), 0, 1)


def true_grouping(mask: np.ndarray) -> np.ndarray:
    """RGB (D, 3) of a true mask (G, D): the owning group's colour, grey where the AMI ignores it."""
    labels, valid = true_labels_from_masks(mask[None])
    rgb = GROUP_COLOURS[labels[0] % len(GROUP_COLOURS)]
    rgb[~valid[0]] = 0.35
    return rgb


def run_examples(model, x: np.ndarray, indices: Sequence[int], masks: Optional[np.ndarray], *,
                 n_groups: Optional[int], n_iterations: Optional[int], seed: int,
                 remove_group: Optional[int]) -> List[dict]:
    """The clean-path trace of each chosen example, computed within its batch of valid_batch_size (once
    for the chosen examples of the same batch)."""
    cfg = model.config
    bs = cfg.valid_batch_size
    device = next(model.parameters()).device
    results, batches = [], {}
    for index in indices:
        start = (index // bs) * bs
        if start not in batches:
            xb = torch.from_numpy(np.ascontiguousarray(x[start:start + bs], dtype=np.float32)).to(device)
            generator = torch.Generator(device=device)
            generator.manual_seed(seed)
            with torch.inference_mode():
                batches[start] = model(xb, corrupt=False, generator=generator, record=True, n_groups=n_groups,
                                       n_iterations=n_iterations, remove_group=remove_group)
        out = batches[start]
        j = index - start
        z = out.trace["z"][:, :, j].cpu().numpy()  # (T+1, K, D)
        m = out.trace["m"][:, :, j].cpu().numpy()  # (T+1, K, D)
        ami = None
        if masks is not None:
            ami = [float(ami_score(masks[index][None], m[i][:, None])[0]) for i in range(1, m.shape[0])]
        results.append(dict(index=index, x=np.asarray(x[index]).reshape(-1), z=z, m=m, ami=ami,
                            mask=None if masks is None else np.asarray(masks[index]).reshape(masks.shape[1], -1)))
    return results


def _image_cell(fig, spec, img, shape, label: str, colour=None):
    """One image in grid cell `spec`: grey (D,) or RGB (D, 3) pixels shown as `shape` (H, W), no ticks,
    titled `label` (in `colour`, default black). Returns the axes."""
    ax = fig.add_subplot(spec)
    rgb = img.ndim == 2
    ax.imshow(img.reshape(shape + (3,) if rgb else shape), cmap=None if rgb else "gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(label, fontsize=6, pad=2, color="black" if colour is None else tuple(colour))
    return ax


def plot_examples(examples: List[dict], in_dim: Sequence[int], path: str, title: str = "") -> None:
    """The Figure-4 style grid of `run_examples`' results, one block of K + 1 rows per example.

    Columns come in pairs, one pair per state i = 0..T. Top row: the input (i = 0) or the
    reconstruction coloured by group (i >= 1, titled with the AMI), beside the masks coloured by
    group; then the true grouping. Row k: z_k beside m_k (grey scale, 0 black, 1 white).
    """
    H, W = image_shape(in_dim)
    T1, K = examples[0]["z"].shape[:2]  # T + 1 states
    cols, rows_each = 2 * T1 + 1, K + 1
    cell, head = 0.9, 0.45
    height = len(examples) * rows_each * cell + head
    fig = _figure(cols * cell, height)
    grid = fig.add_gridspec(len(examples) * rows_each, cols, left=0.01, right=0.99, bottom=0.01,
                            top=1 - head / height, hspace=0.4, wspace=0.08)

    def show(r, c, img, label, colour=None):
        return _image_cell(fig, grid[r, c], img, (H, W), label, colour)

    for e, ex in enumerate(examples):
        r0 = e * rows_each
        for i in range(T1):
            if i == 0:
                show(r0, 0, np.clip(ex["x"], 0, 1), f"input #{ex['index']}")
            else:
                ami = f" AMI {ex['ami'][i - 1]:.2f}" if ex["ami"] is not None else ""
                show(r0, 2 * i, coloured(ex["m"][i], ex["z"][i]), f"i={i}{ami}")
            show(r0, 2 * i + 1, coloured(ex["m"][i]), f"masks i={i}")
            for k in range(K):
                colour = GROUP_COLOURS[k % len(GROUP_COLOURS)]
                show(r0 + 1 + k, 2 * i, np.clip(ex["z"][i, k], 0, 1), f"z{k + 1} i={i}", colour)
                show(r0 + 1 + k, 2 * i + 1, ex["m"][i, k], f"m{k + 1} i={i}", colour)
        if ex["mask"] is not None:
            show(r0, cols - 1, true_grouping(ex["mask"]), "true groups")
    if title:
        fig.suptitle(title, fontsize=8, y=1 - 0.1 / height)
    _save(fig, path)


def draw_examples(model, hdf5: str, split: str, indices: Sequence[int], path: str, title: str = "", *,
                  masks: bool = True, n_groups: Optional[int] = None, n_iterations: Optional[int] = None,
                  seed: int = 0, remove_group: Optional[int] = None) -> List[dict]:
    """The Figure-4 picture of the examples `indices` of `split` in `hdf5`, written to `path`;
    returns `run_examples`' results. masks: the file has true masks; remove_group: 0-based."""
    arrays = load_split(hdf5, split, ["features"] + (["mask"] if masks else []))
    n = arrays["features"].shape[0]
    examples = run_examples(model, arrays["features"].reshape(n, -1), indices, arrays.get("mask"),
                            n_groups=n_groups, n_iterations=n_iterations, seed=seed, remove_group=remove_group)
    plot_examples(examples, model.config.in_dim, path, title)
    return examples


class Panel(NamedTuple):
    """One row of `draw_example_rows`: an example of a data file, drawn with K = n_groups."""

    label: str  # the row's label, e.g. "A: K=2, test #0"
    hdf5: str
    split: str
    index: int
    n_groups: Optional[int] = None  # None: the trained K


def plot_example_rows(rows: List[Tuple[str, dict]], in_dim: Sequence[int], path: str, title: str = "") -> None:
    """One row per (label, `run_examples` result): the input; the reconstruction coloured by group
    after each iteration, titled with the example's AMI; the final masks m_k (grey, titled in group
    k's colour; blank beyond the row's K); the true grouping (grey: pixels the AMI ignores)."""
    H, W = image_shape(in_dim)
    T = rows[0][1]["z"].shape[0] - 1
    K_max = max(ex["z"].shape[1] for _, ex in rows)
    cols = 1 + T + K_max + 1
    cell, head, left = 0.8, 0.4, 1.1
    width, height = left + cols * cell, len(rows) * cell * 1.12 + head
    fig = _figure(width, height)
    grid = fig.add_gridspec(len(rows), cols, left=left / width, right=0.995, bottom=0.01, top=1 - head / height,
                            hspace=0.35, wspace=0.06)

    def show(r, c, img, label, colour=None):
        return _image_cell(fig, grid[r, c], img, (H, W), label, colour)

    for r, (label, ex) in enumerate(rows):
        K = ex["z"].shape[1]
        ax = show(r, 0, np.clip(ex["x"], 0, 1), f"input #{ex['index']}")
        ax.set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center", labelpad=4)
        for i in range(1, T + 1):
            ami = f" AMI {ex['ami'][i - 1]:.2f}" if ex["ami"] is not None else ""
            show(r, i, coloured(ex["m"][i], ex["z"][i]), f"i={i}{ami}")
        for k in range(K):
            show(r, 1 + T + k, ex["m"][T, k], f"m{k + 1} i={T}", GROUP_COLOURS[k % len(GROUP_COLOURS)])
        if ex["mask"] is not None:
            show(r, cols - 1, true_grouping(ex["mask"]), "true groups")
    if title:
        fig.suptitle(title, fontsize=8, y=1 - 0.1 / height)
    _save(fig, path)


def draw_example_rows(model, panels: Sequence[Panel], path: str, title: str = "", *,
                      n_iterations: Optional[int] = None, seed: int = 0) -> List[Tuple[str, dict]]:
    """A one-row-per-example picture (`plot_example_rows`) of examples from several data files and
    K's (e.g. the paper's Figure 4a: test examples and the generalisation cases), written to `path`.
    Each example runs within its batch of its own file (`run_examples`). Returns (label, result)."""
    rows, loaded = [], {}
    for panel in panels:
        key = (panel.hdf5, panel.split)
        if key not in loaded:
            loaded[key] = load_split(panel.hdf5, panel.split, ["features", "mask"])
        arrays = loaded[key]
        n = arrays["features"].shape[0]
        if not 0 <= panel.index < n:
            raise TaggerError(f"example {panel.index} is not in the {n} examples of split '{panel.split}' of {panel.hdf5}")
        (example,) = run_examples(model, arrays["features"].reshape(n, -1), [panel.index], arrays["mask"],
                                  n_groups=panel.n_groups, n_iterations=n_iterations, seed=seed, remove_group=None)
        rows.append((panel.label, example))
    plot_example_rows(rows, model.config.in_dim, path, title)
    return rows
