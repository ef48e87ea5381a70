"""The normalisations a Tagger config can choose (`norm`), one home for both twins (no project imports).

Every normalisation of a TAG iteration is one site (tagger_torch.normstats lists them): Tagger's own
three, W [A1.5] and the heads z_u_W, m_u_W [A1.6], and the mapping's (the Ladder's f_l_W, y, g_l_W).
A norm says which statistics each site takes (`ops.normalize` in both twins computes them) and whether
the layers carry learned per-unit gains. The release is BatchNorm only (`batch`); the others are this
project's candidates for the paper's Tagger* ("LayerNorm instead of BatchNorm", placement unstated),
SPEC 8 and docs/training.md "LayerNorm placements".

Statistics (a: (N, H) with N = K*B rows in group-major order, row k*B + b = group k of example b):
  batch         per unit, over the N rows of the minibatch (SPEC "BN over (K,B)")
  layer         per row, over its H units (Ba et al.'s LayerNorm of one (group, example) pair)
  layer-groups  per example b, over the K*H values of its K rows (Ba et al.'s LayerNorm of one example)
"""
from typing import NamedTuple

STATISTICS = ("batch", "layer", "layer-groups")
TAGGER_SITES = ("W", "z_u_W", "m_u_W")  # Tagger's own normalisations; every other site is the mapping's


class Norm(NamedTuple):
    """Which statistics a norm's sites take, and whether its layers learn gains."""

    tagger: str  # the statistics at Tagger's own sites W, z_u_W, m_u_W (one of STATISTICS)
    mapping: str  # the statistics at the mapping's sites (the Ladder's f_l_W, y, g_l_W)
    gains: bool = False  # learned per-unit gains c (H0), f_l_c (H_l, l < L), m_u_c (D), initialised to 1


NORMS = {
    "batch": Norm("batch", "batch"),  # the release: BatchNorm, per unit over the minibatch's K*B rows
    "layer": Norm("layer", "layer"),  # LayerNorm per (group, example) row over its units (SPEC 8, shapes-ln)
    "layer-groups": Norm("layer-groups", "layer-groups"),  # LayerNorm per example over its K groups' units
    "layer-gain": Norm("layer", "layer", gains=True),  # 'layer' + Ba et al.'s per-unit gain where a layer has none
    "layer-ladder": Norm("batch", "layer"),  # LayerNorm in the Ladder; the release's BatchNorm at W, z_u_W, m_u_W
    "layer-tagger": Norm("layer", "batch"),  # LayerNorm at W, z_u_W, m_u_W; the Ladder keeps its BatchNorm
}


def site_statistics(norm: str, site: str) -> str:
    """The statistics (one of STATISTICS) that normalise `site` under the config's `norm`."""
    return NORMS[norm].tagger if site in TAGGER_SITES else NORMS[norm].mapping


def uses_batch_statistics(norm: str) -> bool:
    """Whether some site of `norm` takes the minibatch's statistics: then one example's result depends on
    the others in its batch, and population statistics (`tagger-torch calibrate`) apply to those sites."""
    return "batch" in NORMS[norm][:2]
