"""Evaluation statistics: Bradley-Terry Elo and pairwise win rates with confidence intervals (pure numpy)."""
