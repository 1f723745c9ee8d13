"""Installs the `adalink` package. requirements.txt pins the exact versions CI installs."""

from setuptools import find_packages, setup

setup(
  name="adalink",
  version="0.1.0",
  description="AdaLink (input-centric PEFT) and its baselines for T5 and PaLI-style models in JAX/Flax.",
  packages=find_packages(include=["adalink", "adalink.*"]),
  package_data={"adalink.data.fixtures": ["testdata/**/*"], "adalink.zoo": ["*/*"]},
  include_package_data=True,
  python_requires=">=3.10",
  # The core (models, adapters, train step) needs only these; the data layer adds seqio/TF.
  install_requires=[
    "jax>=0.4.30",
    "flax>=0.10",
    "optax>=0.2",
    "orbax-checkpoint>=0.6",
    "ml-collections>=0.1",
    "numpy",
    "msgpack",
    "safetensors",
    "ml_dtypes",
    "tqdm",
  ],
  extras_require={
    "data": [
      "seqio>=0.0.18",
      "tensorflow>=2.15",
      "tensorflow-text",
      "tensorflow-datasets",
      "sentencepiece",
      "pillow",
    ],
    "test": [
      "pytest",
      "torch",
      "transformers",
      "scikit-learn",
      "scipy",
      "pycocoevalcap",
      "tensorstore",
    ],
    # scripts/benchmark.py's PyTorch reference side.
    "bench": ["torch", "transformers", "peft"],
  },
)
