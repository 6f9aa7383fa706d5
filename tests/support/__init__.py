"""Real components for tests: fake upstreams, git policy repositories, gateway processes."""
