"""TRL's RewardTrainer with the soft-label Bradley-Terry loss of the CAI preference model (Bai et al. 2022, sec. 4.1):
-(p log sigmoid(r_c - r_r) + (1 - p) log sigmoid(r_r - r_c)), where p = p_chosen from the feedback model.

TRL 1.16 has hard labels only. Its collator batches chosen_ids / rejected_ids / margin and its signature columns
are those three, so `remove_unused_columns` would drop a label column: the subclass adds `p_chosen` to both and
replaces the loss, keeping TRL's forward pass, metrics and logging. Imports torch and TRL (training only).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

import torch
import torch.nn.functional as F
from trl.trainer.reward_trainer import DataCollatorForPreference, RewardTrainer, suppress_seqcls_warning

from cai.training import lora
from cai.training.calibration import calibration

LABEL = "p_chosen"


def soft_bt_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """The soft-label Bradley-Terry loss, averaged over pairs; p = 1 is TRL's -log sigmoid(r_c - r_r)."""
    diff = r_chosen - r_rejected
    return -(p * F.logsigmoid(diff) + (1 - p) * F.logsigmoid(-diff)).mean()


@dataclass
class SoftPreferenceCollator(DataCollatorForPreference):
    """TRL's preference collator, also batching each pair's soft label."""

    def torch_call(self, examples: List[Dict[str, Any]]) -> Dict[str, Any]:
        """Padded chosen-then-rejected ids, and `p_chosen` as a float tensor."""
        batch = super().torch_call(examples)
        batch[LABEL] = torch.tensor([float(e[LABEL]) for e in examples], dtype=torch.float)
        return batch


class SoftRewardTrainer(RewardTrainer):
    """RewardTrainer whose loss reads each pair's soft label; evaluation adds calibration against the labels."""

    def __init__(self, *args, calibration_bins: int = 10, **kwargs):
        self.calibration_bins = calibration_bins
        self.eval_pairs: tuple = ([], [])
        self.last_calibration: Dict[str, Any] = {}
        super().__init__(*args, **kwargs)
        default = self.data_collator
        if type(default) is DataCollatorForPreference:  # TRL built it (pad token resolved): swap in the labelled one
            self.data_collator = SoftPreferenceCollator(default.pad_token_id, default.pad_to_multiple_of,
                                                        default.return_tensors)

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if LABEL not in self._signature_columns:  # else remove_unused_columns drops the label before the collator
            self._signature_columns = [*self._signature_columns, LABEL]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """TRL's forward pass and metrics, with the soft-label loss instead of its hard one."""
        p = inputs.pop(LABEL)  # the model's forward takes no such argument
        _, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        r_chosen, r_rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
        p = p.to(r_chosen.dtype)
        loss = soft_bt_loss(r_chosen, r_rejected, p)
        if self.args.center_rewards_coefficient is not None:  # as TRL adds it to its own loss
            loss = loss + self.args.center_rewards_coefficient * torch.mean((r_chosen + r_rejected) ** 2)
        mode = "train" if self.model.training else "eval"
        with torch.no_grad():
            gathered = self.accelerator.gather_for_metrics(p).float()
            self._metrics[mode][LABEL].append(gathered.mean().item())  # logged: shows the labels reach the loss
            if mode == "eval":
                margins = self.accelerator.gather_for_metrics((r_chosen - r_rejected).detach()).float()
                self.eval_pairs[0].extend(margins.tolist())
                self.eval_pairs[1].extend(gathered.tolist())
        return (loss, outputs) if return_outputs else loss

    def evaluate(self, *args, **kwargs) -> Dict[str, float]:
        """TRL's evaluation plus `eval_pairwise_accuracy`, `eval_ece` and `eval_mean_margin` over all held-out pairs."""
        self.eval_pairs = ([], [])
        return super().evaluate(*args, **kwargs)

    def log(self, logs: Dict[str, float], start_time=None) -> None:
        """Calibration needs every held-out pair at once (not a mean of batch values), so it is added here."""
        margins, labels = self.eval_pairs
        if margins and not self.model.training:
            self.last_calibration = calibration(margins, labels, self.calibration_bins)
            logs.update({f"eval_{k}": v for k, v in self.last_calibration.items() if k != "table"})
            self.eval_pairs = ([], [])
        super().log(logs, start_time)


def load_reward_model(spec, home: Path, dtype: Any) -> Any:
    """A one-output sequence classifier with the body of a causal LM (model role or artifact) and a new score head;
    an adapter saved beside the weights (an unmerged LoRA artifact) is folded in first, as lora.load_model does."""
    from transformers import AutoModelForSequenceClassification

    from cai.models import checkpoint

    revision = spec.revision if spec.source == "hub" else None
    with suppress_seqcls_warning():  # lm_head unused and score new: expected when starting from a causal LM
        model = AutoModelForSequenceClassification.from_pretrained(
            checkpoint(spec, home), num_labels=1, revision=revision, dtype=dtype,
            trust_remote_code=spec.trust_remote_code)
    if getattr(model, "_hf_peft_config_loaded", False):
        lora.merge_loaded_adapters(model)
    return model


def score(model_dir: Path, chats: List[List[dict]]) -> List[float]:
    """Rewards of whole conversations from a saved reward model, tokenized as TRL's RLOO/GRPO do."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if not chats:
        return []
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    texts = [tokenizer.apply_chat_template(chat, tokenize=False) for chat in chats]
    batch = tokenizer(texts, return_tensors="pt", padding=True, padding_side="right", add_special_tokens=False)
    with torch.inference_mode():
        return model(**batch).logits[:, 0].float().tolist()
