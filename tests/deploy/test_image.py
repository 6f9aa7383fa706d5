"""The container image's build steps, checked without a container engine.

The Dockerfile is parsed (its stages, the final stage's user, health check and entry point),
and its install steps run here: the wheel is built from exactly what the build stage COPYs,
installed with its dependencies into a fresh venv (`--no-index`, from wheels of this venv's
packages: the test run has loopback only), pip removed as the Dockerfile removes it; the
venv's `modelgate` then answers --help and serves /healthz on the image's MG_* settings.
The venv's size is what the final stage adds to its base image.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from email.parser import Parser
from pathlib import Path
from typing import Any

import httpx
import pytest
from dockerfile_parse import DockerfileParser

from tests.deploy.wheelhouse import dependency_closure, repack
from tests.support.gateway_process import free_port
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
BASE = "python:3.11-slim-bookworm"


def stages(parser: DockerfileParser) -> list[list[dict[str, Any]]]:
    """The Dockerfile's instructions, one list per FROM."""
    found: list[list[dict[str, Any]]] = []
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            found.append([])
        if found and instruction["instruction"] != "COMMENT":
            found[-1].append(instruction)
    return found


def values(stage: list[dict[str, Any]], name: str) -> list[str]:
    return [str(i["value"]) for i in stage if i["instruction"] == name]


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(ROOT / "Dockerfile"))


def test_two_stages_on_the_slim_base_and_a_non_root_final_stage(
    dockerfile: DockerfileParser,
) -> None:
    build, final = stages(dockerfile)
    assert values(build, "FROM") == [f"{BASE} AS build"]
    assert values(final, "FROM") == [BASE]
    # The final stage takes only the venv from the build stage: no compiler, no sources.
    assert values(final, "COPY") == ["--from=build /opt/venv /opt/venv"]
    assert not any("apt-get" in run for run in values(final, "RUN"))
    (user,) = values(final, "USER")
    assert user.split(":")[0] not in ("0", "root")
    (health,) = values(final, "HEALTHCHECK")
    assert "/readyz" in health
    assert json.loads(values(final, "ENTRYPOINT")[0]) == ["modelgate"]
    assert json.loads(values(final, "CMD")[0]) == ["serve"]
    env = dockerfile.envs  # the final stage's
    assert env["MG_HOST"] == "0.0.0.0" and env["MG_PORT"] == "8080"
    assert "MG_REMOTE" not in env  # policy from --remote only when a deployment sets it


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory, dockerfile: DockerfileParser) -> Path:
    """/opt/venv of the build stage, made here by the same steps."""
    tmp = tmp_path_factory.mktemp("image")
    src = tmp / "src"
    src.mkdir()
    (build, _) = stages(dockerfile)
    for copy in values(build, "COPY"):  # what the build stage sees of the work tree
        *sources, _dest = copy.split()
        for source in sources:
            origin = ROOT / source
            if origin.is_dir():
                ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
                shutil.copytree(origin, src / source, ignore=ignore)
            else:
                shutil.copy2(origin, src / source)
    wheels = tmp / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
        "--wheel-dir", str(wheels), str(src))  # fmt: skip
    (wheel,) = wheels.glob("modelgate-*.whl")
    house = tmp / "wheelhouse"
    house.mkdir()
    for dist in dependency_closure(_requirements_of(wheel)):
        repack(dist, house)
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    run(*pip, "install", "--no-index", "--find-links", str(house), str(wheel))
    run(*pip, "check")  # every requirement of every installed distribution met
    run(*pip, "uninstall", "-y", "pip")
    for cache in list(venv.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    return venv


def _requirements_of(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(zf.read(name).decode())
    return metadata.get_all("Requires-Dist") or []


def run(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_installed_modelgate_answers_help(image_venv: Path) -> None:
    out = run(str(image_venv / "bin" / "modelgate"), "--help")
    assert "serve" in out and "policy" in out


def test_the_installed_modelgate_serves_on_the_image_settings(
    image_venv: Path, dockerfile: DockerfileParser, tmp_path: Path
) -> None:
    """`modelgate serve` (the image's CMD) on the image's MG_* environment, its paths moved
    under tmp and its host to loopback; away from the sources, so only the wheel's files
    count (package data: the policy schemas, Lua scripts, SQL)."""
    env = {k: v for k, v in dockerfile.envs.items() if k.startswith(("MG_", "PYTHON"))}
    port = free_port()
    env |= {
        "MG_HOST": "127.0.0.1",
        "MG_PORT": str(port),
        "MG_POLICY_REPO": str(tmp_path / "policy"),
        "MG_STATE_DIR": str(tmp_path / "state"),
        "MG_CREDENTIALS_DIR": str(tmp_path / "secrets"),
        "PATH": f"{image_venv / 'bin'}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(image_venv / "bin" / "modelgate"), "serve"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        assert _healthy(f"http://127.0.0.1:{port}/healthz", proc), log.read_text()
        # A SIGTERM between the first answer and "Worker ready" can hang the single-process
        # server (seen here; not yet understood): stop it once it is fully up.
        eventually(lambda: b"Worker ready" in log.read_bytes(), within_s=10)
        proc.terminate()
        assert proc.wait(15) == 0, log.read_text()  # drains (5 s grace by default), exits 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert '"level"' in log.read_text()  # MG_LOG_FORMAT=json from the image


def _healthy(url: str, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False


def test_what_the_final_stage_adds_to_its_base(image_venv: Path) -> None:
    """The venv is all the final stage adds to python:3.11-slim-bookworm (besides a user)."""
    sizes = {p.name: _size(p) for p in (image_venv / "lib").glob("python*/site-packages/*")}
    total = _size(image_venv)
    largest = sorted(sizes.items(), key=lambda kv: -kv[1])[:6]
    print(
        f"image venv: {total / 1e6:.0f} MB; largest: "
        + ", ".join(f"{name} {size / 1e6:.0f} MB" for name, size in largest)
    )
    assert total < 250e6, total  # a goal, not a promise: a jump here deserves a look


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
