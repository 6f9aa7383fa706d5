"""upstream package."""
