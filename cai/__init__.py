"""cai: Constitutional AI (Bai et al. 2022) as one declarative, cached Hydra pipeline."""
__version__ = "0.1.0"
