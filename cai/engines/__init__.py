"""Engines by registered name; importing this package registers the built-in ones."""
from cai.engines import hf, scripted  # noqa: F401
