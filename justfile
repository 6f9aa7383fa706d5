# ModelGate tasks. Run through ./dev so the venv is ready: `./dev just test`.
set shell := ["bash", "-euo", "pipefail", "-c"]

# Run the gateway on its embedded defaults (./var/policy, 127.0.0.1:18080).
serve *ARGS:
    modelgate serve {{ARGS}}

# Debian packages the tests need (redis-server, git, tmux, unshare and ip for the loopback-only
# namespace, Node.js and npm for the client programs, haproxy for the rollout test); installs only
# what is missing.
system-deps:
    #!/usr/bin/env bash
    set -euo pipefail
    missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v git >/dev/null || missing+=(git)
    command -v tmux >/dev/null || missing+=(tmux)
    command -v unshare >/dev/null || missing+=(util-linux)
    command -v ip >/dev/null || missing+=(iproute2)
    command -v node >/dev/null || missing+=(nodejs)
    command -v npm >/dev/null || missing+=(npm)
    command -v haproxy >/dev/null || missing+=(haproxy)
    command -v chromium >/dev/null || missing+=(chromium)  # tests/tui/test_web.py
    if [ ${#missing[@]} -gt 0 ]; then
      sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
      $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi

# Lint and type-check.
lint:
    ruff check .
    ruff format --check .
    mypy

# The client programs tests/clients drives (Claude Code, Codex, Gemini CLI), pinned by
# tests/clients/package-lock.json; installed again only when that file changes.
client-deps:
    #!/usr/bin/env bash
    set -euo pipefail
    dir=tests/clients
    stamp="$dir/node_modules/.installed-$(cksum < "$dir/package-lock.json" | cut -d' ' -f1)"
    [ -f "$stamp" ] && exit 0
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >/dev/null
    touch "$stamp"

# The whole test suite: lint, types, then every test, in a network namespace where only
# loopback exists (tests/loopback-only), so no test or client program can reach further.
test *ARGS: system-deps client-deps lint
    tests/loopback-only pytest -q -n 2 --dist loadfile {{ARGS}}

# Format the code in place.
fmt:
    ruff format .
    ruff check --fix .

# The overhead benchmark: fake upstream, wrk, direct vs through the gateway in one run.
bench *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    command -v wrk >/dev/null || { sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"; $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null; }
    bench/run.sh {{ARGS}}

# Knobs as environment variables (bench/streams/run.sh); N defaults to 100 1000 3000.
# Streams at scale: N concurrent 300-chunk SSE streams, direct and through the gateway.
bench-streams *NS:
    bench/streams/run.sh {{NS}}
