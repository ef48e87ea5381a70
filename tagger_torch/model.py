"""Tagger (Greff et al., NIPS 2016) as an `nn.Module`: T iterations of Algorithm 1, and the model
interface the Trainer drives (`tagger_torch.models.Model`).

The numerics are the functions of `tagger.py` (the TAG iteration), `ladder.py` (the mapping) and
`costs.py`; this file holds the parameters, draws the noise, runs the iterations and scores batches.
The same code runs on CPU and CUDA, in float32 (default) or float64 (`model.to(torch.float64)`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping as MappingType, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from .config import TaggerConfig
from .costs import class_probabilities, classification_cost, classification_error, denoising_cost
from .errors import TaggerError
from .inputs import check_input_shape, check_label_shape, check_shape
from .metrics import ami_from_contingency, ari_from_contingency, contingency_tables, true_labels_from_masks
from .models import Batch, Product, Split
from .named_params import NamedParameters
from .ops import pos
from .params import init_params, param_shapes
from .tagger import (LADDER, Mapping, draw_corruption, flop_per_step, initial_state, step_products,
                     tag_iteration)
from .tagger import corrupt as corrupt_input  # `forward`'s argument `corrupt` shadows the name there

TRACE_KEYS = ("z", "m", "m_lh", "delta_z", "y")


@dataclass
class TaggerOutput:
    """What `Tagger.forward` returns (docs/architecture.md)."""

    # with class_cost_only, class_cost and class_error alone (the rest None)
    denoising_cost: Optional[Tensor]  # (T,) eq. 1 after each iteration, against the clean x
    cost: Optional[Tensor]  # scalar: denoising_cost.mean() + class_cost_x * class_cost[-1] (with labels)
    z: Optional[Tensor]  # (K, B, D) final reconstruction (probability space for binary inputs)
    m: Optional[Tensor]  # (K, B, D) final masks
    y: Optional[Tensor]  # (K, B, HL) the mapping's top output at the last iteration
    class_cost: Optional[Tensor] = None  # (T,) with labels
    class_error: Optional[Tensor] = None  # (T,) in %, with labels
    trace: Optional[Dict[str, Tensor]] = None  # record=True: z, m (T+1,K,B,D), m_lh, delta_z, y (T,...)


class Tagger(NamedParameters, nn.Module):
    """Tagger around a parametric mapping (the release's Ladder); parameters are attributes named as
    in the release, so `state_dict()` keys are the release names (`W`, `z_u_W`, `f_1_W`, `g_0_a1`, ...)
    and round-trip with the reference's .npz files and the release's trained_params.npz.

    Tagger(config)                      release init from config.seed (SPEC 7)
    Tagger(config, seed=S)              release init from seed S
    Tagger(config, params=dict)         parameters by name (numpy arrays or tensors; every shape checked)
    """

    monitor = "denoising_cost"  # the release monitored Validation_Denoising_Cost

    def __init__(self, config: TaggerConfig, seed: Optional[int] = None,
                 params: Optional[MappingType[str, np.ndarray]] = None,
                 dtype: torch.dtype = torch.float32, device=None, mapping: Mapping = LADDER):
        super().__init__()
        self.config = config
        self.mapping = mapping
        self.shapes = param_shapes(config, mapping)
        for name, shape in self.shapes.items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape, dtype=dtype, device=device)))
        if params is None:
            params = init_params(config, config.seed if seed is None else seed, mapping)
        self.load_params(params)

    def forward(self, x: Tensor, corrupt: bool = True, corruption: Optional[Tensor] = None,
                m_init: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
                labels: Optional[Tensor] = None, n_groups: Optional[int] = None,
                n_iterations: Optional[int] = None, record: bool = False,
                remove_group: Optional[int] = None, normaliser=None, class_cost_only: bool = False) -> TaggerOutput:
        """T iterations of Algorithm 1 on x (B, *in_dim) or (B, D), the clean input.

        corruption: explicit draws (B, D) (bit-flip indicators b or N(0,1) e); when None, `corrupt`
        says whether to draw them (SPEC 1) with `generator` or to run the clean path. m_init: N(0,1)
        draws (K, B, D) for m0; drawn with `generator` (after the corruption) when None. The
        generator must live on the model's device; without one, torch's default generator is used.
        labels (B,) or (B, objects_per_sample) give class_cost and class_error. n_groups and
        n_iterations override K and T. record keeps the trace. remove_group: Fig. 4 E2, group k's mask
        logits are set to the dtype's most negative value before the softmax of the last iteration.
        normaliser: where the normalisations take their statistics (tagger_torch.normstats), asked
        `normaliser.at(i, path)` at iteration i, path 'corrupted' or 'clean'; None: the current batch's
        (the release). `PopulationStatistics` make the result of each example independent of the others.
        class_cost_only: the labelled pass of a training step, whose part of the cost is the last class cost
        alone: the last iteration computes y alone (`tag_iteration(top_only=True)`, `step_products`), and
        the output holds class_cost and class_error alone (a compiled backward differentiates every output
        that carries a gradient). Needs labels; not with record or remove_group.
        """
        cfg = self.config
        K = cfg.n_groups if n_groups is None else int(n_groups)
        T = cfg.n_iterations if n_iterations is None else int(n_iterations)
        if K < 1 or T < 1:
            raise TaggerError(f"n_groups and n_iterations must be >= 1 (got {K}, {T})")
        if class_cost_only and (labels is None or record or remove_group is not None):
            raise TaggerError("class_cost_only needs labels, and its last iteration computes no masks "
                              "(no record, no remove_group)")
        dtype, device = self.W.dtype, self.W.device
        D = cfg.input_size
        x = torch.as_tensor(x).to(device=device, dtype=dtype)
        B = check_input_shape(x.shape, cfg)
        x = x.reshape(B, D)

        if corruption is None and corrupt:
            corruption = draw_corruption(x, cfg, generator)
        if corruption is not None:
            corruption = self._check("corruption", corruption, (B, D))
            x_tilde = corrupt_input(x, corruption, cfg)  # SPEC 1
        else:
            x_tilde = x
        if m_init is None:
            m_init = self._draw_m_init(K, x, generator)
        m_init = self._check("m_init", m_init, (K, B, D))
        if labels is not None:
            labels = torch.as_tensor(labels).to(device=device, dtype=torch.long)
            check_label_shape(labels.shape, B, cfg.objects_per_sample)
            labels = (labels[:, None] if labels.dim() == 1 else labels)[:, :cfg.objects_per_sample]
        v = pos(self.v) if cfg.input_type == "continuous" else None  # SPEC 2, for the cost

        p = self._parameters
        z, m = initial_state(m_init, cfg.zhat_init_value)  # SPEC 3
        zpre = z
        trace = {key: [] for key in TRACE_KEYS} if record else None
        if record:
            trace["z"].append(z)
            trace["m"].append(m)
        costs, class_costs, class_errors = [], [], []
        path = "clean" if corruption is None else "corrupted"
        for i in range(T):
            normalise = None if normaliser is None else normaliser.at(i, path)
            top_only = class_cost_only and i == T - 1  # y alone: the class cost reads nothing else
            # SPEC 4 [A1.3-A1.6]
            out = tag_iteration(x_tilde, z, m, zpre, p, cfg, remove_group=remove_group if i == T - 1 else None,
                                mapping=self.mapping, normalise=normalise, top_only=top_only)
            if not top_only:
                z, m, zpre = out.z, out.m, out.zpre
            if not class_cost_only:  # the labelled pass returns no denoising cost
                costs.append(denoising_cost(x, z, m, cfg, v))  # SPEC 4g/6 [A1.8], against the clean x
            if labels is not None:
                P = class_probabilities(out.y)
                class_costs.append(classification_cost(P, labels))
                with torch.no_grad():
                    class_errors.append(classification_error(P, labels))
            if record:
                for key in TRACE_KEYS:
                    trace[key].append(getattr(out, key))

        if class_cost_only:
            return TaggerOutput(denoising_cost=None, cost=None, z=None, m=None, y=None,
                                class_cost=torch.stack(class_costs), class_error=torch.stack(class_errors))
        denoising = torch.stack(costs)
        result = TaggerOutput(denoising_cost=denoising, cost=denoising.mean(), z=z, m=m, y=out.y)
        if labels is not None:
            result.class_cost = torch.stack(class_costs)
            result.class_error = torch.stack(class_errors)
            # SPEC 6: cost = mean of the denoising costs + class_cost_x * last class cost
            result.cost = result.cost + cfg.class_cost_x * result.class_cost[-1]
        if record:
            result.trace = {key: torch.stack(values) for key, values in trace.items()}
            result.trace["denoising_cost"] = denoising
            if labels is not None:
                result.trace["class_cost"] = result.class_cost
                result.trace["class_error"] = result.class_error
        return result

    def _draw_m_init(self, K: int, x: Tensor, generator: Optional[torch.Generator]) -> Tensor:
        """N(0, 1) draws (K, B, D) for m0 (SPEC 3) of the examples x (B, D), in the model's dtype."""
        return torch.randn((K,) + tuple(x.shape), generator=generator, device=self.W.device, dtype=self.W.dtype)

    def _noisy_pass(self, forward: nn.Module, x: Tensor, generator: torch.Generator,
                    labels: Optional[Tensor] = None) -> TaggerOutput:
        """A corrupted pass of a training step with its noise drawn here and passed in, in the order
        `forward` would draw it (the corruption, then m_init): the same draws, and a compiled forward
        holds no draw (no graph break, and the draws stay out of a CUDA graph). With labels, the pass's
        cost is its class cost alone (`class_cost_only`)."""
        x = x.reshape(x.shape[0], -1).to(device=self.W.device, dtype=self.W.dtype)  # (B, D)
        corruption = draw_corruption(x, self.config, generator)  # (B, D)
        m_init = self._draw_m_init(self.config.n_groups, x, generator)  # (K, B, D)
        return forward(x, corruption=corruption, m_init=m_init, labels=labels, class_cost_only=labels is not None)

    def _check(self, name: str, value, shape) -> Tensor:
        value = torch.as_tensor(value).to(device=self.W.device, dtype=self.W.dtype)
        check_shape(name, value.shape, shape)
        return value

    # ------------------------------------------------------------------------------------------
    # The model interface (tagger_torch.models.Model)
    # ------------------------------------------------------------------------------------------
    def batch_cost(self, batch: Batch, generator: torch.Generator,
                   forward: Optional[nn.Module] = None) -> Tuple[Tensor, Dict[str, Tensor]]:
        """The release's training cost of one step (SPEC 6) and its statistics.

        cost = mean_i C_i(x) [eq. 1] of the corrupted unlabelled batch x, plus, when the model
        classifies, class_cost_x * the last iteration's classification cost of the corrupted labelled
        batch: a separate pass with its own BatchNorm statistics. Both draw from `generator`, outside
        `forward`: the unlabelled pass's corruption and m_init, then the labelled pass's.
        """
        forward = self if forward is None else forward
        out = self._noisy_pass(forward, batch.x, generator)
        cost = out.cost  # the mean over iterations: this pass has no labels
        stats = {"denoising_cost": out.denoising_cost.detach()}
        if self.config.uses_labels:
            labelled = self._noisy_pass(forward, batch.x_labelled, generator, labels=batch.labels)
            cost = cost + self.config.class_cost_x * labelled.class_cost[-1]
            stats["class_cost"] = labelled.class_cost[-1].detach()
            stats["class_error"] = labelled.class_error[-1].detach()
        stats["cost"] = cost.detach()
        return cost, stats

    @torch.inference_mode()
    def evaluate(self, split: Split, *, batch_size: int, generator: torch.Generator, progress: bool = False,
                 n_groups: Optional[int] = None, n_iterations: Optional[int] = None,
                 normaliser=None) -> Dict[str, list]:
        """Scores on the examples split.x (N, D), one value per iteration, averaged over examples.

        Batches of `batch_size` in order (BatchNorm uses each batch's statistics, so the batching is
        part of the result). `denoising_cost` and, with labels, `class_cost` on the corrupted path;
        with masks (N, G, D) `ami` and `ari` (SPEC 6), and with labels `class_error` (%), on the
        clean path, which runs only for masks or labels. n_groups, n_iterations override K and T.
        normaliser: as in `forward` (None: each batch's statistics, the release's protocol).
        """
        setting = self.evaluation_facts(n_groups, n_iterations)
        K, T = setting["groups"], setting["iterations"]
        x, labels, masks = split.x, split.labels, split.masks
        N, device = x.shape[0], x.device
        if masks is not None:
            true_labels, valid = true_labels_from_masks(masks)  # (N, D) each
            n_true = np.asarray(masks).shape[1]
        sums = {"denoising_cost": torch.zeros(T, dtype=torch.float64, device=device)}
        if labels is not None:
            sums["class_cost"] = torch.zeros(T, dtype=torch.float64, device=device)
            sums["class_error"] = torch.zeros(T, dtype=torch.float64, device=device)
        ami, ari = [], []
        for start in tqdm(range(0, N, batch_size), disable=not progress, leave=False, unit="batch"):
            xb = x[start:start + batch_size]  # (B, D)
            nb = xb.shape[0]
            lb = None if labels is None else labels[start:start + batch_size]
            out = self(xb, corrupt=True, generator=generator, labels=lb, n_groups=K, n_iterations=T,
                       normaliser=normaliser)
            sums["denoising_cost"] += nb * out.denoising_cost.double()
            if lb is not None:
                sums["class_cost"] += nb * out.class_cost.double()
            if masks is None and lb is None:
                continue
            out = self(xb, corrupt=False, generator=generator, labels=lb, n_groups=K, n_iterations=T,
                       record=masks is not None, normaliser=normaliser)
            if lb is not None:
                sums["class_error"] += nb * out.class_error.double()
            if masks is not None:
                pred = out.trace["m"][1:].argmax(dim=1).cpu().numpy()  # (T, B, D) after iterations 1..T
                t = np.broadcast_to(true_labels[start:start + nb], pred.shape).reshape(T * nb, -1)
                v = np.broadcast_to(valid[start:start + nb], pred.shape).reshape(T * nb, -1)
                tables = contingency_tables(t, pred.reshape(T * nb, -1), v, n_true, K)  # (T*B, G, K)
                ami.append(ami_from_contingency(tables).reshape(T, nb))
                ari.append(ari_from_contingency(tables).reshape(T, nb))
        result = {key: (value / N).tolist() for key, value in sums.items()}
        if ami:
            result["ami"] = np.concatenate(ami, axis=1).mean(axis=1).tolist()
            result["ari"] = np.concatenate(ari, axis=1).mean(axis=1).tolist()
        return result

    def evaluation_facts(self, n_groups: Optional[int] = None, n_iterations: Optional[int] = None,
                         normaliser=None) -> dict:
        c = self.config
        return {"iterations": n_iterations or c.n_iterations, "groups": n_groups or c.n_groups,
                "trained_iterations": c.n_iterations, "trained_groups": c.n_groups,
                "norm_stats": "batch" if normaliser is None else "population"}

    def step_products(self, batch_size: int) -> List[Product]:
        return step_products(self.config, batch_size, self.mapping)

    def flop_per_step(self, batch_size: int) -> float:
        return flop_per_step(self.config, batch_size, self.mapping)

    def extra_repr(self) -> str:
        c = self.config
        return (f"input_type={c.input_type}, D={c.input_size}, encoder_proj={c.encoder_proj}, "
                f"K={c.n_groups}, T={c.n_iterations}, norm={c.norm}")
