"""Algorithm 1 of the paper in PyTorch: one TAG iteration around a parametric mapping (SPEC 1-4).

Twin of `tagger_reference.tagger`: functions with the same name compute the same thing (the parity
suite pairs them). Equation tags: [A1.n] is line n of Algorithm 1, "SPEC n" a section of
docs/SPEC.md. Layout is group-first: a per-element tensor is (K, B, D). The K groups are stacked
into the rows of every matrix product (K*B rows), never looped over.

The mapping (SPEC 4e, the paper allows "any parametric mapping") is a `Mapping`: the release's
Ladder is `LADDER`; `tag_iteration`, the parameter tables (`params.py`) and the FLOP count reach it
only through that interface.
"""
from __future__ import annotations

from typing import Callable, List, Mapping as MappingType, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from .ladder import init_ladder, ladder, ladder_products, ladder_shapes
from .models import Product, step_flop
from .norms import NORMS
from .normstats import BatchStatistics, Normalise
from .ops import binary_cross_entropy, pos, project, soft_clip


class Mapping(NamedTuple):
    """A parametric mapping h (N, H0) -> (y (N, HL), u0 (N, H0)) with N = K*B rows (SPEC 4e)."""

    shapes: Callable  # config -> OrderedDict name -> shape of its parameters, in creation order
    init: Callable  # (config, seed) -> name -> float32 array: its initial parameters (release order)
    apply: Callable  # (h, params by name, config, normalise, top_only=False) -> (y, u0): y feeds the class head,
    #                  u0 the heads of A1.6 (None with top_only: y alone); every normalisation through
    #                  normalise(a, site) (tagger_torch.normstats)
    products: Callable  # (config, rows, top_only=False) -> [(rows, inner, outer)]: its matrix products (top_only:
    #                     those y depends on), for FLOP counts


LADDER = Mapping(ladder_shapes, init_ladder, ladder, ladder_products)


def draw_corruption(x: Tensor, config, generator: Optional[torch.Generator]) -> Tensor:
    """Draws for `corrupt` (B, D): b ~ Bernoulli(p) (binary) or e ~ N(0, 1) (continuous)."""
    if config.input_type == "binary":
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (u < config.input_noise).to(x.dtype)
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def corrupt(x: Tensor, corruption: Tensor, config) -> Tensor:
    """SPEC 1 [A1 init], x~ from x (B, D) and the draws `corruption` (B, D).

    binary: x~ = x + b (1 - 2x) (b flips bits); continuous: x~ = x + s e with s = input_noise.
    """
    if config.input_type == "binary":
        return x + corruption * (1 - 2 * x)
    return x + config.input_noise * corruption


def initial_state(m_init: Tensor, zhat_init_value: float) -> Tuple[Tensor, Tensor]:
    """SPEC 3 [A1 init]: z0 = zhat_init_value, m0 = softmax over K of the N(0,1) draws m_init (K,B,D)."""
    z0 = torch.full_like(m_init, zhat_init_value)
    m0 = torch.softmax(m_init, dim=0)
    return z0, m0


def group_likelihood(x_tilde: Tensor, z: Tensor, config, v: Optional[Tensor]) -> Tensor:
    """SPEC 4a [A1.4] L(m_k) ∝ q(x~ | z_k): softmax over K of minus a per-element loss l_k.

    x_tilde: x~ (B, D); z: z_k (K, B, D), probability space for binary inputs; v: pos(v) (scalar,
    continuous only). Returns L (K, B, D), summing to 1 over K. It does not use m.
    """
    if config.input_type == "binary":
        p = config.input_noise
        # c_k = soft_clip(z_k (1 - 2p) + p);  l_k = BCE(c_k, x~)
        loss = binary_cross_entropy(soft_clip(z * (1 - 2 * p) + p), x_tilde)
    else:
        # n = s^2 + v^2 (v squared, a release quirk);  l_k = 0.5 log n + (z_k - x~)^2 / (2n)
        n = config.input_noise ** 2 + v * v
        loss = 0.5 * torch.log(n) + (z - x_tilde) ** 2 / (2 * n)
    # L_k = exp(-l_k) / sum_h exp(-l_h)
    return torch.softmax(-loss, dim=0)


def delta_z(x_tilde: Tensor, z: Tensor, m: Tensor, config) -> Tensor:
    """SPEC 4b [A1.3] the modelling error dz_k ∝ dC(x~)/dz_k. x_tilde (B,D); z, m (K,B,D) -> (K,B,D)."""
    if config.input_type == "binary":
        r = 1 - 2 * config.input_noise
        # xi = sum_k m_k (z_k r + p);  dz_k = r m_k / (xi - 1 + x~)
        xi = (m * (z * r + config.input_noise)).sum(dim=0, keepdim=True)  # (1, B, D)
        return r * m / (xi - 1 + x_tilde)
    # dz_k = m_k (x~ - z_k)
    return m * (x_tilde - z)


class IterationOutput(NamedTuple):
    """What one TAG iteration returns."""

    z: Optional[Tensor]  # (K, B, D) new z, probability space for binary inputs (None: top_only)
    m: Optional[Tensor]  # (K, B, D) new masks (None: top_only)
    zpre: Optional[Tensor]  # (K, B, D) pre-sigmoid z (binary); z itself for continuous inputs (None: top_only)
    m_lh: Tensor  # (K, B, D) L(m) of the input state
    delta_z: Tensor  # (K, B, D) dz of the input state
    y: Tensor  # (K, B, HL) the mapping's top output


def tag_iteration(x_tilde: Tensor, z: Tensor, m: Tensor, zpre: Tensor, p: MappingType[str, Tensor],
                  config, remove_group: Optional[int] = None, mapping: Mapping = LADDER,
                  normalise: Optional[Normalise] = None, top_only: bool = False) -> IterationOutput:
    """SPEC 4, one TAG iteration [A1.3-A1.6] with the weights p (release names).

    x_tilde: x~ (B, D); z, m: z_k, m_k (K, B, D), z in probability space for binary inputs; zpre: the
    pre-sigmoid z of the previous iteration (binary; z0 at i = 0).
    remove_group: k whose mask logits become -inf-like before the softmax (Fig. 4 E2), or None.
    normalise: (a, site) -> BN(a), every normalisation of the iteration and of the mapping (sites W,
    z_u_W, m_u_W here; tagger_torch.normstats); None: each batch's own statistics for config.norm (the
    release's protocol, SPEC's quirk).
    top_only: y alone (z, m, zpre None), for a pass whose cost reads only y: the products y depends on.
    """
    K, B, D = z.shape
    normalise = BatchStatistics(config.norm, K) if normalise is None else normalise
    gains = NORMS[config.norm].gains  # SPEC 8: learned per-unit gains c, m_u_c (and the mapping's)
    binary = config.input_type == "binary"
    v = None if binary else pos(p["v"])  # SPEC 2
    # [A1.4] L(m), [A1.3] dz
    m_lh = group_likelihood(x_tilde, z, config, v)
    if not z.requires_grad:
        # z depends on no parameter only as z0 (SPEC 3), the same in every group: L(m0) = 1/K whatever v,
        # and its gradient to v sums to 0 over K. Detached, a_in depends on no parameter, and autograd
        # skips the input gradient of the first product (step_products).
        m_lh = m_lh.detach()
    dz = delta_z(x_tilde, z, m, config)
    # SPEC 4c: a_in = [zt, dz, m, L], zt = pre-sigmoid z for binary inputs (a release quirk)
    zt = zpre if binary else z
    a_in = torch.cat([zt, dz, m, m_lh], dim=-1).reshape(K * B, 4 * D)  # (K*B, 4D)
    # SPEC 4d [A1.5] h = relu(BN(a_in @ W) + b); with gains h = relu(c BN(a_in @ W) + b)   (K*B, H0)
    a = normalise(project(a_in, p["W"]), "W")
    h = torch.relu((p["c"] * a if gains else a) + p["b"])
    # SPEC 4e: the parametric mapping; y (K*B, HL), u0 (K*B, H0)
    y, u0 = mapping.apply(h, p, config, normalise, top_only=top_only)
    if top_only:
        return IterationOutput(None, None, None, m_lh, dz, y.reshape(K, B, -1))
    # SPEC 4f [A1.6] z = c1 BN(u0 @ z_u_W) + b1                           (K*B, D) -> (K, B, D)
    z_new = (p["c1"] * normalise(project(u0, p["z_u_W"]), "z_u_W") + p["b1"]).reshape(K, B, D)
    # m = softmax over K of c2 BN(u0 @ m_u_W); with gains of c2 m_u_c BN(u0 @ m_u_W)   (K*B, D) -> (K, B, D)
    mm = normalise(project(u0, p["m_u_W"]), "m_u_W")
    logits = (p["c2"] * (p["m_u_c"] * mm if gains else mm)).reshape(K, B, D)
    if remove_group is not None:
        logits = logits.index_fill(0, torch.tensor([remove_group], device=logits.device),
                                   torch.finfo(logits.dtype).min)
    m_new = torch.softmax(logits, dim=0)
    zpre_new = z_new
    if binary:
        z_new = torch.sigmoid(z_new)
    return IterationOutput(z_new, m_new, zpre_new, m_lh, dz, y.reshape(K, B, -1))


def layer_products(config, rows: int, mapping: Mapping = LADDER) -> List[Tuple[int, int, int]]:
    """The (rows, inner, outer) matrix products of one TAG iteration's forward pass (SPEC 4-5)."""
    D, H0 = config.input_size, config.encoder_proj[0]
    return ([(rows, 4 * D, H0)]  # [A1.5] input projection W
            + mapping.products(config, rows)  # the mapping
            + [(rows, H0, D), (rows, H0, D)])  # [A1.6] heads z_u_W, m_u_W


def step_products(config, batch_size: int, mapping: Mapping = LADDER) -> List[Product]:
    """The products of one training step: `layer_products` on K*B rows for each of the T iterations of
    each pass (the unlabelled batch, and the labelled one of the same size when the config classifies).

    What autograd skips: the first iteration's input of `W`, [z0, dz, m0, L(m0)], depends on no
    parameter (`tag_iteration` detaches L(m0), which is 1/K), so that input gradient. The labelled
    pass's cost is the last iteration's class cost of y, so that iteration computes only the products
    y depends on (`Tagger.forward(class_cost_only=True)`, `tag_iteration(top_only=True)`).
    """
    T, rows = config.n_iterations, config.n_groups * batch_size
    iteration = layer_products(config, rows, mapping)
    to_y = 1 + len(mapping.products(config, rows, top_only=True))  # W and the mapping's products y depends on

    def one_pass(cost_of_y: bool) -> List[Product]:
        products = []
        for i in range(T):
            computed = iteration[:to_y] if cost_of_y and i == T - 1 else iteration
            products += [Product(m, k, n, input_grad=not (i == 0 and j == 0)) for j, (m, k, n) in enumerate(computed)]
        return products

    return one_pass(False) + (one_pass(True) if config.class_cost_x > 0 else [])


def flop_per_step(config, batch_size: int, mapping: Mapping = LADDER) -> float:
    """FLOP of the matrix products of one training step (`step_products`), counted from the layer shapes.

    A product (m, k) @ (k, n) costs 2mkn forward; backward costs the same again for the weight's
    gradient and, unless its input carries no gradient, for the input's (`models.step_flop`).
    Element-wise work (BN, combinators, softmax, costs, Adam) is not counted.
    """
    return step_flop(step_products(config, batch_size, mapping))
