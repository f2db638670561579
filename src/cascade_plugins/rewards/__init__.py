"""Reward plugins: pure Python scoring of samples (no torch, no Ray)."""
