"""Built-in stage kinds; importing this package registers them (no torch is imported here)."""
from cai.registry import STAGES
from cai.stages import critique_revision  # noqa: F401

STAGE_SCHEMAS = {name: kind.schema for name, kind in STAGES.items()}
