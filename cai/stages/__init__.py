"""Built-in stage kinds, one per file; cai.registry imports them by name (no file here imports another)."""
