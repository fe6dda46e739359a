"""Built-in stage kinds; importing this package registers them (no torch is imported here)."""
from cai.registry import STAGES
from cai.stages import critique_revision  # noqa: F401
from cai.stages import answer_prompts  # noqa: F401
from cai.stages import sft  # noqa: F401
from cai.stages import dpo  # noqa: F401
from cai.stages import sample_pairs  # noqa: F401
from cai.stages import label_preferences  # noqa: F401
from cai.stages import feedback_accuracy  # noqa: F401
from cai.stages import reward_model  # noqa: F401
from cai.stages import rl  # noqa: F401
from cai.stages import evaluate  # noqa: F401

STAGE_SCHEMAS = {name: kind.schema for name, kind in STAGES.items()}
