"""Evaluation: Bradley-Terry Elo and win rates with intervals (elo, pure numpy), held-out prompt selection by lineage
(heldout), the refusal detector (refusal), pair/order bookkeeping (matchups), judge calls (judging), and what an
evaluate node writes (report_rows)."""
