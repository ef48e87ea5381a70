"""The classification baselines of the paper's Table 2 (Greff et al. 2016, section 3.3), one file per
model, each registered in `tagger_torch.models.MODELS`: `mlp` (fc-mlp), `ladder_net` (fc-ladder),
`convnet` (convnet); `common` holds what they share. docs/baselines.md describes them."""
