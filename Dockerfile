# syntax=docker/dockerfile:1
# ModelGate's image: `docker build -t modelgate .` (needs a container engine).
# Stage 1 builds the wheel and installs it with its dependencies into /opt/venv; the final
# stage copies that venv onto a fresh slim base: no compiler, no pip cache, no sources.
# tests/deploy/test_image.py runs these same install steps without a container engine.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# Every compiled dependency ships wheels for linux/amd64 and arm64: no compiler is needed
# (a platform without them would add one here, in this stage only).
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY policies ./policies
COPY credentials ./credentials
COPY tui ./tui
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install build==1.2.2.post1 \
 && /opt/venv/bin/python -m build --wheel --outdir /wheels . \
 && /opt/venv/bin/pip uninstall -y build pyproject_hooks packaging \
 && /opt/venv/bin/pip install /wheels/modelgate-*.whl \
 && /opt/venv/bin/pip uninstall -y pip \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

FROM python:3.11-slim-bookworm
# git is not needed: dulwich speaks the git protocol itself (--remote).
RUN groupadd --system --gid 10001 modelgate \
 && useradd --system --uid 10001 --gid modelgate --home-dir /var/lib/modelgate \
      --create-home --shell /usr/sbin/nologin modelgate
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MG_HOST=0.0.0.0 \
    MG_PORT=8080 \
    MG_POLICY_REPO=/var/lib/modelgate/policy \
    MG_STATE_DIR=/var/lib/modelgate/state \
    MG_CREDENTIALS_DIR=/run/secrets/modelgate \
    MG_LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/modelgate
VOLUME ["/var/lib/modelgate"]
EXPOSE 8080
# The slim image has no curl: the probe is Python's own HTTP client.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('MG_PORT', '8080'), timeout=2)"]
# Policy from a git remote: `docker run -e MG_REMOTE=https://git.example/policy.git ...`
# (serve clones it into MG_POLICY_REPO; it never creates a fresh repository when a remote is
# set). SIGTERM drains (--drain-grace, --drain-timeout) and exits 0.
ENTRYPOINT ["modelgate"]
CMD ["serve"]
