"""Engines: the one seam every stage's model I/O goes through (base.py); cai.registry loads them by name."""
