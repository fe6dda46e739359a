"""Shared parts of the training stages (sft, dpo): mixtures, TRL argument checks, LoRA, resume, launchers.

Nothing here imports torch at module import time, so composing and planning a config stays cheap.
"""
