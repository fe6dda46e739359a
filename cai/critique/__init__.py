"""SL-CAI data helpers (Bai et al. 2022, sec. 3): cleaning critiques and revisions, exporting the records."""
