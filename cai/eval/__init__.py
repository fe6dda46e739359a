"""Evaluation: Bradley-Terry Elo and win rates with intervals (elo, pure numpy), held-out prompt selection by lineage
(heldout, lineage), the refusal detector (refusal), over-refusal vs harmful compliance (overrefusal), pair/order
bookkeeping (matchups), judge calls (judging), whether the eval judge labeled the compared models' data
(independence), and what an evaluate node writes (report_rows)."""
