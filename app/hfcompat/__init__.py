"""Hugging Face Hub-compatible routes, mapped onto the catalogue and delivery."""
