"""The FC Ladder baseline of Table 2 (Greff et al. 2016, section 3.3): the Ladder network of Rasmus et
al. 2015 ("Semi-supervised learning with Ladder networks", Algorithm 1), semi-supervised: a softmax
classifier trained on the labelled batch plus per-layer denoising costs on the unlabelled batch
(docs/baselines.md).

The parameters, their initial values and the combinator are the project's Ladder (tagger_torch.ladder:
`ladder_shapes`, `init_ladder`, `combinator` of kind 'gauss', which is Rasmus et al.'s vanilla
combinator with its a2 = a7 = 1 start) for layer sizes H = (D, *hidden, n_classes); the normalisation
is `ops.normalize`. What this file adds is Rasmus et al.'s noise and costs:
* the corrupted encoder adds N(0, noise_std^2) to the input and to every normalised pre-activation;
* the clean encoder gives the targets z_l and the batch statistics (mu_l, sigma_l);
* the decoder's estimates zhat_l are normalised with the clean statistics; each layer's denoising
  cost weighs lambda_l = denoising_weights[l];
* the supervised cost is the cross-entropy of the corrupted encoder's softmax on the labelled batch;
  scoring uses the clean encoder.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from ..constants import NORM_EPS
from ..costs import classification_error
from ..ladder import combinator, init_ladder, ladder_shapes
from ..models import Batch, Product
from ..ops import normalize, project
from .common import Classifier, ClassifierConfig, softmax_cross_entropy


@dataclass(frozen=True)
class LadderNetConfig(ClassifierConfig):
    """The FC Ladder D -> hidden -> n_classes, Rasmus et al.'s noise and costs."""

    model: str = "fc-ladder"  # registry name
    hidden: Tuple[int, ...] = (3000, 2000, 1000, 500, 250)  # hidden layer sizes (the paper's), bottom to top
    noise_std: float = 0.3  # std of the Gaussian noise on the input and every layer (Rasmus et al.'s MNIST)
    # lambda_l of the denoising cost of layer l = 0 (input) .. L (softmax top): Rasmus et al.'s choice for
    # 100 MNIST labels; the presets set their choices for 1000 and for all labels (config._LADDER_*)
    denoising_weights: Tuple[float, ...] = (1000, 10, 0.1, 0.1, 0.1, 0.1, 0.1)
    lr: float = 0.002  # Adam learning rate (Rasmus et al.'s starting rate; `lrate_decay` schedules it)
    num_epochs: int = 100  # epochs of a run

    @property
    def training_streams(self) -> Tuple[str, ...]:
        """Semi-supervised: the unlabelled stream (all train examples) makes the epoch."""
        return ("unlabelled", "labelled")

    @property
    def encoder_proj(self) -> Tuple[int, ...]:
        """Layer sizes H_0..H_L = (D, *hidden, n_classes), in the project's Ladder's terms."""
        return (self.input_size,) + tuple(self.hidden) + (self.n_classes,)

    def _validate(self) -> None:
        super()._validate()
        self._check_widths("hidden")
        if self.noise_std < 0:
            self._bad("noise_std", "must be >= 0")
        if len(self.denoising_weights) != len(self.hidden) + 2 or any(w < 0 for w in self.denoising_weights):
            self._bad("denoising_weights", f"must give {len(self.hidden) + 2} weights >= 0 (input, each hidden "
                                           "layer, the top)")


@dataclass
class Encoded:
    """One encoder pass (Rasmus et al. 2015, Algorithm 1)."""

    z: List[Tensor]  # z_0 = the (noisy) input, z_l the normalised (noisy) pre-activations, (B, H_l)
    logits: Tensor  # (B, C) the softmax's input gamma_L (z_L + beta_L)
    y: Tensor  # (B, C) the softmax output h_L
    mean: List[Optional[Tensor]]  # (1, H_l) batch means of the pre-activations (None for l = 0)
    std: List[Optional[Tensor]]  # (1, H_l) batch std, sqrt(var + eps) as ops.normalize


class LadderNet(Classifier):
    """LadderNet(config, seed=None, params=None, device=None): the project's Ladder initialisation
    (`init_ladder`, numpy RandomState(seed), default config.seed)."""

    def __init__(self, config: LadderNetConfig, seed: Optional[int] = None,
                 params: Optional[Mapping[str, np.ndarray]] = None, device=None):
        sizes = SimpleNamespace(encoder_proj=config.encoder_proj, norm="batch")  # the release's parameters
        shapes = ladder_shapes(sizes)
        initial = init_ladder(sizes, config.seed if seed is None else seed) if params is None else None
        super().__init__(config, shapes, initial, params, device)
        self.L = len(config.encoder_proj) - 1

    def draw_noise(self, batch_size: int, generator: torch.Generator) -> List[Tensor]:
        """The N(0, 1) draws of one corrupted encoder pass: (B, H_l) for l = 0..L, in the order `encode`
        adds them. Drawn before the forward (`batch_cost`), so a compiled forward is one graph."""
        p = next(iter(self._parameters.values()))
        return [torch.randn((batch_size, h), generator=generator, device=p.device, dtype=p.dtype)
                for h in self.config.encoder_proj]

    def encode(self, x: Tensor, noise_std: float = 0.0, noise: Optional[List[Tensor]] = None) -> Encoded:
        """The clean (noise_std 0) or corrupted encoder on x (B, D); noise: `draw_noise`'s draws."""
        p = self._parameters

        def noisy(a: Tensor, l: int) -> Tensor:
            # a + N(0, noise_std^2)
            if noise_std == 0:
                return a
            return a + noise_std * noise[l].to(a.dtype)

        h = noisy(self.images(x), 0)  # (B, D): h_0 = z_0 = x + noise
        z, mean, std = [h], [None], [None]
        for l in range(1, self.L + 1):
            a = project(h, p[f"f_{l}_W"])  # (B, H_l) the pre-activation W_l h_{l-1}
            mu = a.mean(dim=0, keepdim=True)
            # z_l = (a - mu) / sqrt(var + eps) + noise: ops.normalize's BN, the statistics kept for the decoder
            sigma = torch.sqrt(((a - mu) ** 2).mean(dim=0, keepdim=True) + NORM_EPS)
            z_l = noisy((a - mu) / sigma, l)
            z.append(z_l)
            mean.append(mu)
            std.append(sigma)
            if l < self.L:
                # h_l = relu(z_l + beta_l)
                h = torch.relu(z_l + p[f"f_{l}_b"])
        # top: h_L = softmax(gamma_L (z_L + beta_L))
        logits = p[f"f_{self.L}_c"] * (z[-1] + p[f"f_{self.L}_b"])
        return Encoded(z, logits, torch.softmax(logits, dim=1), mean, std)

    def denoising_costs(self, clean: Encoded, noisy: Encoded) -> Tensor:
        """C_d^(l) = lambda_l / (B H_l) sum ||z_l - zhat_l^BN||^2 for l = 0..L, (L+1,) (Rasmus et al. eq. 4).

        The decoder from the top: u_L = BN(h~_L) (the corrupted softmax output), u_l = BN(V_l zhat_{l+1});
        zhat_l = g(z~_l, u_l), the combinator; zhat_l^BN = (zhat_l - mu_l) / sigma_l with the clean
        encoder's statistics (l >= 1; the input's estimate is compared as it is).
        """
        p = self._parameters
        weights = self.config.denoising_weights
        costs = [None] * (self.L + 1)
        zhat = None
        for l in range(self.L, -1, -1):
            # u_l = BN(h~_L) at the top, else BN(zhat_{l+1} V_l)                  (B, H_l)
            u = normalize(noisy.y if l == self.L else project(zhat, p[f"g_{l}_W"]), "batch")
            a = tuple(p[f"g_{l}_a{j}"] for j in range(1, 11))
            zhat = combinator(noisy.z[l], u, a, "gauss")
            zhat_bn = zhat if l == 0 else (zhat - clean.mean[l]) / clean.std[l]
            costs[l] = weights[l] * ((zhat_bn - clean.z[l]) ** 2).mean()
        return torch.stack(costs)

    def forward(self, x: Tensor, x_labelled: Optional[Tensor] = None, labels: Optional[Tensor] = None,
                noise: Optional[Tuple[List[Tensor], List[Tensor]]] = None) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        """Without x_labelled: the clean logits (B, C) of x. With them, one training step's terms:
        (per-layer denoising costs (L+1,) of the unlabelled x, the supervised cost of x_labelled, the
        corrupted logits of x_labelled); the labelled batch is its own pass (its own BN statistics).
        noise: `draw_noise`'s draws of the unlabelled and of the labelled corrupted pass."""
        if x_labelled is None:
            return self.encode(x).logits
        clean = self.encode(x)
        corrupted = self.encode(x, self.config.noise_std, noise[0])
        denoising = self.denoising_costs(clean, corrupted)
        labelled = self.encode(x_labelled, self.config.noise_std, noise[1])
        return denoising, softmax_cross_entropy(labelled.logits, labels), labelled.logits

    def batch_cost(self, batch: Batch, generator: torch.Generator,
                   forward: Optional[nn.Module] = None) -> Tuple[Tensor, Dict[str, Tensor]]:
        """C = -log P(y~ = t | x) on the corrupted labelled batch + sum_l C_d^(l) of the unlabelled batch
        (Rasmus et al. 2015, eq. 3-4); SPEC 6's targets for two digits. The noise is drawn from
        `generator` here, the unlabelled pass's then the labelled pass's, and passed into `forward`."""
        forward = self if forward is None else forward
        noise = (self.draw_noise(batch.x.shape[0], generator), self.draw_noise(batch.x_labelled.shape[0], generator))
        denoising, supervised, logits = forward(batch.x, batch.x_labelled, batch.labels, noise)
        cost = supervised + denoising.sum()
        with torch.no_grad():
            error = classification_error(torch.softmax(logits, dim=1), batch.labels)
        return cost, {"cost": cost.detach(), "class_cost": supervised.detach(), "class_error": error,
                      "denoising_cost": denoising.detach()}

    def step_products(self, batch_size: int) -> List[Product]:
        """The clean and the corrupted encoder (f_l_W) and the decoder (g_l_W, from the top) on the
        unlabelled batch, the corrupted encoder on the labelled one of the same size; an encoder's first
        input is the data."""
        H = self.config.encoder_proj
        encoder = [Product(batch_size, H[l - 1], H[l], input_grad=l > 1) for l in range(1, len(H))]
        decoder = [Product(batch_size, H[l + 1], H[l]) for l in range(len(H) - 2, -1, -1)]
        return encoder + encoder + decoder + encoder

    def extra_repr(self) -> str:
        c = self.config
        return f"sizes={c.encoder_proj}, noise_std={c.noise_std}, denoising_weights={c.denoising_weights}"
