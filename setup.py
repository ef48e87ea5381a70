from setuptools import setup

setup(
    name="tagger-torch",
    version="0.1.0",
    description="Tagger (Greff et al., NIPS 2016): a NumPy reference and a fast PyTorch implementation",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    # Only two import names are installed: the PyTorch port and the NumPy reference,
    # which lives in the folder reference/ but is imported as tagger_reference.
    packages=["tagger_torch", "tagger_torch.baselines", "tagger_torch.commands", "tagger_torch.data",
              "tagger_torch.reproduce", "tagger_torch.training",
              "tagger_reference"],
    package_dir={"tagger_reference": "reference"},
    install_requires=[
        "numpy>=1.23",
        "scipy>=1.9",
        "torch>=2.2",
        "scikit-learn>=1.2",
        "h5py>=3.7",
        "click>=8.1",
        "tqdm>=4.64",
        "matplotlib>=3.6",
    ],
    extras_require={"test": ["pytest>=7"]},
    entry_points={"console_scripts": ["tagger-torch=tagger_torch.cli:main"]},
)
