"""Screens pushed over the tabs: forms, review and commit, secrets, confirmations, help."""
