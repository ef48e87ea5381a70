"""Tagger (Greff et al., NIPS 2016) in PyTorch: Algorithm 1 around the release's Ladder network.

The module-level functions carry the names of their NumPy twins in `tagger_reference`
(docs/architecture.md); the parity suite pairs them. Equation tags: [A1.n] is line n of Algorithm 1,
"SPEC n" a section of docs/SPEC.md.

Layout is group-first: a per-element tensor is (K, B, D). The K groups are stacked into the rows of
every matrix product (K*B rows), never looped over. Every product goes through `project`, which casts
its result back to the parameters' dtype: under `torch.autocast(dtype=torch.bfloat16)` only the
products run in bf16, while normalisation, softmax, log/exp and the costs stay in float32. The same
code runs on CPU and CUDA, in float32 (default) or float64 (`model.to(torch.float64)`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from .config import TaggerConfig
from .errors import TaggerError
from .params import check_params, init_params, param_shapes, save_npz

NORM_EPS = 1e-10  # SPEC: "divide by sqrt(var + 1e-10)" in every BatchNorm/LayerNorm
CLIP_EPS = 1e-4  # SPEC 4a/6: soft_clip's e
MASK_EPS = 1e-5  # SPEC 6: log(m_k + 1e-5) in the continuous cost


# ----------------------------------------------------------------------------------------------
# Elementwise pieces
# ----------------------------------------------------------------------------------------------
def pos(a: Tensor) -> Tensor:
    """SPEC 2: the variance map pos(a) = a + sqrt(a^2 + 1) > 0, as 1/(sqrt(a^2+1) - a) for a <= 0."""
    root = torch.sqrt(a * a + 1)
    return torch.where(a <= 0, 1 / (root - a), a + root)


def soft_clip(a: Tensor, eps: float = CLIP_EPS) -> Tensor:
    """soft_clip(a) = a (1 - 2e) + e: maps [0, 1] into [e, 1 - e] (release nn.soft_clip)."""
    return a * (1 - 2 * eps) + eps


def binary_crossentropy(c: Tensor, target: Tensor) -> Tensor:
    """-(t log c + (1 - t) log(1 - c)), elementwise (Theano's binary_crossentropy)."""
    return -(target * torch.log(c) + (1 - target) * torch.log(1 - c))


def normalize(a: Tensor, norm: str) -> Tensor:
    """SPEC "BN over (K,B)"/"BN over rows" for norm='batch', SPEC 8 for norm='layer'.

    a: (N, H) with N = K*B rows. 'batch': per unit over the N rows of this minibatch; 'layer': per row
    over its H units. Biased variance, eps 1e-10 inside the square root, no running averages.
    """
    dim = 0 if norm == "batch" else -1
    # centred once, variance from the centred values: torch.var_mean over dim 0 is ~15x slower on CPU
    centred = a - a.mean(dim=dim, keepdim=True)
    var = (centred * centred).mean(dim=dim, keepdim=True)
    return centred / torch.sqrt(var + NORM_EPS)


def project(a: Tensor, W: Tensor) -> Tensor:
    """a @ W, cast back to W's dtype (float32 master weights under bf16 autocast). a: (N, in)."""
    return (a @ W).to(W.dtype)


# ----------------------------------------------------------------------------------------------
# Algorithm 1
# ----------------------------------------------------------------------------------------------
def draw_corruption(x: Tensor, config: TaggerConfig, generator: Optional[torch.Generator]) -> Tensor:
    """Draws for `corrupt` (B, D): b ~ Bernoulli(p) (binary) or e ~ N(0, 1) (continuous)."""
    if config.input_type == "binary":
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (u < config.input_noise).to(x.dtype)
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def corrupt(x: Tensor, corruption: Tensor, config: TaggerConfig) -> Tensor:
    """SPEC 1, x~ from x (B, D) and the draws `corruption` (B, D).

    binary: x~ = x + b (1 - 2x) (b flips bits); continuous: x~ = x + s e with s = input_noise.
    """
    if config.input_type == "binary":
        return x + corruption * (1 - 2 * x)
    return x + config.input_noise * corruption


corrupt_input = corrupt  # `Tagger.forward`'s argument `corrupt` shadows the function's name there


def initial_state(m_init: Tensor, zhat_init_value: float) -> Tuple[Tensor, Tensor]:
    """SPEC 3 [A1 init]: z0 = zhat_init_value, m0 = softmax over K of the N(0,1) draws m_init (K,B,D)."""
    z0 = torch.full_like(m_init, zhat_init_value)
    m0 = torch.softmax(m_init, dim=0)
    return z0, m0


def group_likelihood(x_tilde: Tensor, z: Tensor, config: TaggerConfig, v: Optional[Tensor]) -> Tensor:
    """SPEC 4a [A1.4] L(m_k) ∝ q(x~ | z_k): softmax over K of minus a per-element loss l_k.

    x_tilde: x~ (B, D); z: z_k (K, B, D), probability space for binary inputs; v: pos(v) (scalar,
    continuous only). Returns L (K, B, D), summing to 1 over K. It does not use m.
    """
    if config.input_type == "binary":
        p = config.input_noise
        # c_k = soft_clip(z_k (1 - 2p) + p);  l_k = BCE(c_k, x~)
        loss = binary_crossentropy(soft_clip(z * (1 - 2 * p) + p), x_tilde)
    else:
        # n = s^2 + v^2 (v squared, a release quirk);  l_k = 0.5 log n + (z_k - x~)^2 / (2n)
        n = config.input_noise ** 2 + v * v
        loss = 0.5 * torch.log(n) + (z - x_tilde) ** 2 / (2 * n)
    return torch.softmax(-loss, dim=0)


def delta_z(x_tilde: Tensor, z: Tensor, m: Tensor, config: TaggerConfig) -> Tensor:
    """SPEC 4b [A1.3] the modelling error dz_k ∝ dC(x~)/dz_k. x_tilde (B,D); z, m (K,B,D) -> (K,B,D)."""
    if config.input_type == "binary":
        r = 1 - 2 * config.input_noise
        # xi = sum_k m_k (z_k r + p);  dz_k = r m_k / (xi - 1 + x~)
        xi = (m * (z * r + config.input_noise)).sum(dim=0, keepdim=True)  # (1, B, D)
        return r * m / (xi - 1 + x_tilde)
    # dz_k = m_k (x~ - z_k)
    return m * (x_tilde - z)


def combinator_kind(config: TaggerConfig) -> str:
    """The release uses 'gauss_stable_v' for continuous inputs and 'gauss' for binary ones."""
    return "gauss_stable_v" if config.input_type == "continuous" else "gauss"


def combinator(z_lat: Tensor, u: Tensor, a: Sequence[Tensor], kind: str) -> Tensor:
    """SPEC 5, the Ladder's combinator g(z_lat, u) of kind 'gauss' or 'gauss_stable_v', per unit.

    z_lat: lateral input (N, H); u: normalised vertical input (N, H); a: (a1, ..., a10), each (H,).
      mu = a1 sigmoid(a2 u + a3) + a4 u + a5;  nu = a6 sigmoid(a7 u + a8) + a9 u + a10 (then sigmoid
      for gauss_stable_v);  zhat = (z_lat - mu) nu + mu.
    """
    a1, a2, a3, a4, a5, a6, a7, a8, a9, a10 = a
    mu = a1 * torch.sigmoid(a2 * u + a3) + a4 * u + a5
    nu = a6 * torch.sigmoid(a7 * u + a8) + a9 * u + a10
    if kind == "gauss_stable_v":
        nu = torch.sigmoid(nu)
    return (z_lat - mu) * nu + mu


def _combinator_params(p: Mapping[str, Tensor], l: int) -> Tuple[Tensor, ...]:
    return tuple(p[f"g_{l}_a{j}"] for j in range(1, 11))


def ladder(h: Tensor, p: Mapping[str, Tensor], config: TaggerConfig) -> Tuple[Tensor, Tensor]:
    """SPEC 5 [A1.5-A1.6 'parametric mapping']: the release's LadderAE without noise.

    h: the projected input, layer 0 (N, H0) with N = K*B; p: parameters by name (f_l_W, f_l_b, f_L_c,
    g_l_W, g_l_a1..a10).
    Returns y = h_L (N, HL), the softmax top of the encoder, and u0 = zhat_0 (N, H0), the decoder's
    bottom output.
    """
    L = len(config.encoder_proj) - 1
    norm, kind = config.norm, combinator_kind(config)
    lateral = [h]  # z_0 = h, then each layer's normalised pre-activation z_l (before its bias)
    h_l = h
    for l in range(1, L + 1):
        # z_l = BN(h_{l-1} @ f_l_W)                                       (N, H_l)
        z_l = normalize(project(h_l, p[f"f_{l}_W"]), norm)
        lateral.append(z_l)
        if l < L:
            h_l = torch.relu(z_l + p[f"f_{l}_b"])
        else:
            # top: h_L = softmax(f_L_c (z_L + f_L_b)) over units
            h_l = torch.softmax(p[f"f_{L}_c"] * (z_l + p[f"f_{L}_b"]), dim=-1)
    y = h_l
    # decoder, l = L: the vertical input is the softmax output itself (a release quirk), normalised
    zhat = combinator(lateral[L], normalize(y, norm), _combinator_params(p, L), kind)
    for l in range(L - 1, -1, -1):
        # u_l = BN(zhat_{l+1} @ g_l_W)                                    (N, H_l)
        u = normalize(project(zhat, p[f"g_{l}_W"]), norm)
        zhat = combinator(lateral[l], u, _combinator_params(p, l), kind)
    return y, zhat


class IterationOutput(NamedTuple):
    """What one TAG iteration returns."""

    z: Tensor  # (K, B, D) new z, probability space for binary inputs
    m: Tensor  # (K, B, D) new masks
    zpre: Tensor  # (K, B, D) pre-sigmoid z (binary); z itself for continuous inputs
    m_lh: Tensor  # (K, B, D) L(m) of the input state
    delta_z: Tensor  # (K, B, D) dz of the input state
    y: Tensor  # (K, B, HL) the Ladder's top output


def tag_iteration(x_tilde: Tensor, z: Tensor, m: Tensor, zpre: Tensor, p: Mapping[str, Tensor],
                  config: TaggerConfig, remove_group: Optional[int] = None) -> IterationOutput:
    """SPEC 4, one TAG iteration [A1.3-A1.6] with the weights p (release names).

    x_tilde: x~ (B, D); z, m: z_k, m_k (K, B, D), z in probability space for binary inputs; zpre: the
    pre-sigmoid z of the previous iteration (binary; z0 at i = 0).
    remove_group: k whose mask logits become -inf-like before the softmax (Fig. 4 E2), or None.
    """
    K, B, D = z.shape
    binary = config.input_type == "binary"
    v = None if binary else pos(p["v"])  # SPEC 2
    # [A1.4] L(m), [A1.3] dz
    m_lh = group_likelihood(x_tilde, z, config, v)
    dz = delta_z(x_tilde, z, m, config)
    # SPEC 4c: a_in = [zt, dz, m, L], zt = pre-sigmoid z for binary inputs (a release quirk)
    zt = zpre if binary else z
    a_in = torch.cat([zt, dz, m, m_lh], dim=-1).reshape(K * B, 4 * D)  # (K*B, 4D)
    # SPEC 4d [A1.5] h = relu(BN(a_in @ W) + b)                           (K*B, H0)
    h = torch.relu(normalize(project(a_in, p["W"]), config.norm) + p["b"])
    # SPEC 4e: the Ladder; y (K*B, HL), u0 (K*B, H0)
    y, u0 = ladder(h, p, config)
    # SPEC 4f [A1.6] z = c1 BN(u0 @ z_u_W) + b1                           (K*B, D) -> (K, B, D)
    z_new = (p["c1"] * normalize(project(u0, p["z_u_W"]), config.norm) + p["b1"]).reshape(K, B, D)
    # m = softmax over K of c2 BN(u0 @ m_u_W)
    logits = (p["c2"] * normalize(project(u0, p["m_u_W"]), config.norm)).reshape(K, B, D)
    if remove_group is not None:
        logits = logits.index_fill(0, torch.tensor([remove_group], device=logits.device),
                                   torch.finfo(logits.dtype).min)
    m_new = torch.softmax(logits, dim=0)
    zpre_new = z_new
    if binary:
        z_new = torch.sigmoid(z_new)
    return IterationOutput(z_new, m_new, zpre_new, m_lh, dz, y.reshape(K, B, -1))


def denoising_cost(x: Tensor, z: Tensor, m: Tensor, config: TaggerConfig,
                   v: Optional[Tensor] = None) -> Tensor:
    """SPEC 6 [eq. 1, A1.8] C(x) = -log sum_k m_k q(x | z_k), the mean over (B, D) (a scalar).

    x: the clean input (B, D); z, m: (K, B, D) after an iteration; v: pos(v) (continuous only).
    binary: BCE(soft_clip(sum_k m_k z_k), x).
    continuous: -logsumexp_k[-0.5 (log v + (x - z_k)^2 / v) + log(m_k + 1e-5)] (v, not v^2; no 2 pi).
    """
    if config.input_type == "binary":
        x_hat = (m * z).sum(dim=0)  # (B, D)
        return binary_crossentropy(soft_clip(x_hat), x).mean()
    log_p = -0.5 * (torch.log(v) + (x - z) ** 2 / v) + torch.log(m + MASK_EPS)
    return -torch.logsumexp(log_p, dim=0).mean()


def class_probabilities(y: Tensor) -> Tensor:
    """SPEC 6 classification head: y (K, B, HL) -> P (B, HL - 1).

    The last unit is "no class"; the rest are normalised over groups *and* classes (a release quirk),
    then summed over groups.
    """
    pred = y[..., :-1]
    pred = pred / pred.sum(dim=(0, 2), keepdim=True)
    return pred.sum(dim=0)


def classification_cost(P: Tensor, labels: Tensor) -> Tensor:
    """SPEC 6: mean cross-entropy -sum_c t_c log P_c; t = onehot(y) or (onehot(y1) + onehot(y2)) / 2.

    P: (B, C); labels: (B, M) int64, M = objects per sample (1 or 2).
    """
    log_p = torch.log(P.gather(1, labels))  # (B, M): -sum_c t_c log P_c = -mean_j log P[y_j]
    return -log_p.mean(dim=1).mean()


def classification_error(P: Tensor, labels: Tensor) -> Tensor:
    """SPEC 6 error in %. One object: argmax P != y. Two: if y1 == y2 wrong unless top-1 == y1, else
    1 - (matches between the top-2 predictions and {y1, y2}) / 2. Ties go to the lower class index.
    P: (B, C); labels: (B, M) int64, M = 1 or 2."""
    M = labels.shape[1]
    ranked = torch.sort(P, dim=1, descending=True, stable=True).indices[:, :M]  # (B, M) best first
    if M == 1:
        wrong = (ranked[:, 0] != labels[:, 0]).to(P.dtype)
    else:
        matches = (ranked[:, :, None] == labels[:, None, :]).sum(dim=(1, 2)).to(P.dtype)
        same = labels[:, 0] == labels[:, 1]
        wrong = torch.where(same, (ranked[:, 0] != labels[:, 0]).to(P.dtype), 1 - matches / M)
    return wrong.mean() * 100


# ----------------------------------------------------------------------------------------------
# The module
# ----------------------------------------------------------------------------------------------
TRACE_KEYS = ("z", "m", "m_lh", "delta_z", "y")


@dataclass
class TaggerOutput:
    """What `Tagger.forward` returns (docs/architecture.md)."""

    denoising_cost: Tensor  # (T,) eq. 1 after each iteration, against the clean x
    cost: Tensor  # scalar: denoising_cost.mean() + class_cost_x * class_cost[-1] (with labels)
    z: Tensor  # (K, B, D) final reconstruction (probability space for binary inputs)
    m: Tensor  # (K, B, D) final masks
    y: Tensor  # (K, B, HL) the Ladder's top output at the last iteration
    class_cost: Optional[Tensor] = None  # (T,) with labels
    class_error: Optional[Tensor] = None  # (T,) in %, with labels
    trace: Optional[Dict[str, Tensor]] = None  # record=True: z, m (T+1,K,B,D), m_lh, delta_z, y (T,...)


class Tagger(nn.Module):
    """Tagger with the release's Ladder; parameters are attributes named as in the release.

    `state_dict()` keys are exactly the release names (`W`, `z_u_W`, `f_1_W`, `g_0_a1`, ...), so it
    round-trips with the reference's .npz files and the release's trained_params.npz.

    Tagger(config)                      release init from config.seed (SPEC 7)
    Tagger(config, seed=S)              release init from seed S
    Tagger(config, params=dict)         parameters by name (numpy arrays or tensors; every shape checked)
    """

    def __init__(self, config: TaggerConfig, seed: Optional[int] = None,
                 params: Optional[Mapping[str, np.ndarray]] = None,
                 dtype: torch.dtype = torch.float32, device=None):
        super().__init__()
        self.config = config
        self.shapes = param_shapes(config)
        for name, shape in self.shapes.items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape, dtype=dtype, device=device)))
        if params is None:
            params = init_params(config, config.seed if seed is None else seed)
        self.load_params(params)

    def load_params(self, params: Mapping[str, np.ndarray], subset: bool = False) -> list:
        """Copy parameters by name; every shape is checked and each mismatch named (TaggerError).

        subset=False: the names must be exactly the model's (the release's unused book-keeping entries
        `counter`, `counter_max`, `shared_f_*_bn_*` are ignored). subset=True (stage 2 of the MNIST
        protocol): names the model lacks are ignored, parameters the file lacks keep their values.
        Scalars (c2, v) stored with shape (1,) are accepted. Returns the names loaded.
        """
        params = {name: (value.reshape(()) if self.shapes.get(name) == () and np.shape(value) == (1,)
                         else value) for name, value in params.items()}
        loaded = check_params(params, self.shapes, subset=subset)
        with torch.no_grad():
            for name in loaded:
                value = params[name]
                value = value if torch.is_tensor(value) else torch.from_numpy(np.asarray(value))
                self._parameters[name].copy_(value)
        return loaded

    def numpy_params(self) -> Dict[str, np.ndarray]:
        """name -> numpy array (a copy, in the model's dtype), in the release's order."""
        return {name: p.detach().cpu().numpy().copy() for name, p in self._parameters.items()}

    def save_npz(self, path: str, dtype=np.float32) -> None:
        """Save in the release format: one float32 array per release name."""
        save_npz(path, self.numpy_params(), dtype=dtype)

    def forward(self, x: Tensor, corrupt: bool = True, corruption: Optional[Tensor] = None,
                m_init: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
                labels: Optional[Tensor] = None, n_groups: Optional[int] = None,
                n_iterations: Optional[int] = None, record: bool = False,
                remove_group: Optional[int] = None) -> TaggerOutput:
        """T iterations of Algorithm 1 on x (B, *in_dim) or (B, D), the clean input.

        corruption: explicit draws (B, D) (bit-flip indicators b or N(0,1) e); when None, `corrupt`
        says whether to draw them (SPEC 1) with `generator` or to run the clean path. m_init: N(0,1)
        draws (K, B, D) for m0; drawn with `generator` (after the corruption) when None. The
        generator must live on the model's device; without one, torch's default generator is used.
        labels (B,) or (B, objects_per_sample) give class_cost and class_error. n_groups and
        n_iterations override K and T. record keeps the trace. remove_group: Fig. 4 E2, group k's mask
        logits are set to the dtype's most negative value before the softmax of the last iteration.
        """
        cfg = self.config
        K = cfg.n_groups if n_groups is None else int(n_groups)
        T = cfg.n_iterations if n_iterations is None else int(n_iterations)
        if K < 1 or T < 1:
            raise TaggerError(f"n_groups and n_iterations must be >= 1 (got {K}, {T})")
        dtype, device = self.W.dtype, self.W.device
        D = cfg.input_size
        x = torch.as_tensor(x).to(device=device, dtype=dtype)
        B = x.shape[0]
        if x.dim() < 2 or x[0].numel() != D:
            raise TaggerError(f"input has shape {tuple(x.shape)}; the model needs (B, {D}) or "
                              f"(B, {', '.join(map(str, cfg.in_dim))})")
        x = x.reshape(B, D)

        if corruption is None and corrupt:
            corruption = draw_corruption(x, cfg, generator)
        if corruption is not None:
            corruption = self._check("corruption", corruption, (B, D))
            x_tilde = corrupt_input(x, corruption, cfg)  # SPEC 1
        else:
            x_tilde = x
        if m_init is None:
            m_init = torch.randn((K, B, D), generator=generator, device=device, dtype=dtype)
        m_init = self._check("m_init", m_init, (K, B, D))
        if labels is not None:
            labels = self._check_labels(labels, B)
        v = pos(self.v) if cfg.input_type == "continuous" else None  # SPEC 2, for the cost

        p = self._parameters
        z, m = initial_state(m_init, cfg.zhat_init_value)  # SPEC 3
        zpre = z
        trace = {key: [] for key in TRACE_KEYS} if record else None
        if record:
            trace["z"].append(z)
            trace["m"].append(m)
        costs, class_costs, class_errors = [], [], []
        for i in range(T):
            out = tag_iteration(x_tilde, z, m, zpre, p, cfg,
                                remove_group=remove_group if i == T - 1 else None)
            z, m, zpre = out.z, out.m, out.zpre
            costs.append(denoising_cost(x, z, m, cfg, v))  # SPEC 4g/6, against the clean x
            if labels is not None:
                P = class_probabilities(out.y)
                class_costs.append(classification_cost(P, labels))
                with torch.no_grad():
                    class_errors.append(classification_error(P, labels))
            if record:
                for key in TRACE_KEYS:
                    trace[key].append(getattr(out, key))

        denoising = torch.stack(costs)
        result = TaggerOutput(denoising_cost=denoising, cost=denoising.mean(), z=z, m=m, y=out.y)
        if labels is not None:
            result.class_cost = torch.stack(class_costs)
            result.class_error = torch.stack(class_errors)
            # SPEC 6: training cost = mean of the denoising costs + class_cost_x * last class cost
            result.cost = result.cost + cfg.class_cost_x * result.class_cost[-1]
        if record:
            result.trace = {key: torch.stack(values) for key, values in trace.items()}
            result.trace["denoising_cost"] = denoising
            if labels is not None:
                result.trace["class_cost"] = result.class_cost
                result.trace["class_error"] = result.class_error
        return result

    def _check(self, name: str, value, shape) -> Tensor:
        value = torch.as_tensor(value).to(device=self.W.device, dtype=self.W.dtype)
        if tuple(value.shape) != tuple(shape):
            raise TaggerError(f"{name} has shape {tuple(value.shape)}, expected {tuple(shape)}")
        return value

    def _check_labels(self, labels, B: int) -> Tensor:
        objects = self.config.objects_per_sample
        labels = torch.as_tensor(labels).to(device=self.W.device, dtype=torch.long)
        if labels.dim() == 1:
            labels = labels[:, None]
        if labels.dim() != 2 or labels.shape[0] != B or labels.shape[1] < objects:
            raise TaggerError(f"labels have shape {tuple(labels.shape)}, expected ({B},) or "
                              f"({B}, {objects}) for objects_per_sample={objects}")
        return labels[:, :objects]

    def extra_repr(self) -> str:
        c = self.config
        return (f"input_type={c.input_type}, D={c.input_size}, encoder_proj={c.encoder_proj}, "
                f"K={c.n_groups}, T={c.n_iterations}, norm={c.norm}")

