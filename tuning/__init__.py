"""Prompt tuning (Lester et al., 2021) on a frozen Hugging Face backbone, in plain PyTorch."""
