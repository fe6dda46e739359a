"""The RL-CAI feedback model (Bai et al. 2022, section 4): multiple-choice prompts, option scoring, label math."""
