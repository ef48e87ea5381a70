"""The release's numeric constants, one home for both twins and every command (no imports).

Each is read off the authors' Theano code; the SPEC section that states it is named beside it.
"""

NORM_EPS = 1e-10  # SPEC preamble: BatchNorm/LayerNorm divide by sqrt(var + 1e-10)
CLIP_EPS = 1e-4  # SPEC 4a, 6: soft_clip(a) = a (1 - 2e) + e with e = 1e-4 (release nn.soft_clip)
MASK_EPS = 1e-5  # SPEC 6: log(m_k + 1e-5) in the continuous denoising cost
MASK_THRESHOLD = 0.9  # SPEC 6: a pixel counts for AMI/ARI when its largest true mask value is > 0.9
