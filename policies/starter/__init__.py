"""Starter policy files written by `modelgate init` (string.Template placeholders)."""
