"""Subcommands of the `modelgate` command line."""
