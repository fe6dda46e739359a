"""The RL-CAI feedback model (Bai et al. 2022, section 4): multiple-choice prompts (prompt), option scoring
(scorer), label math (labels), soft labels for pairs (labeling), the judge's known-answer audit (audit) and the
verdict on it (verdict)."""
