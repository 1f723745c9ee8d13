"""adalink: input-centric parameter-efficient fine-tuning (AdaLink) and its baselines in JAX/Flax."""

__version__ = "0.1.0"
