"""Linkage-free privacy helpers: per-subscriber pseudonyms, record projection and the disclosure log."""
