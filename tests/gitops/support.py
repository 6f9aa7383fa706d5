"""Remotes for GitOps tests: a bare origin with a working clone, and a smart HTTP git server."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import threading
from pathlib import Path
from types import TracebackType
from wsgiref.simple_server import WSGIServer, make_server

import httpx
from dulwich.repo import Repo
from dulwich.server import DictBackend
from dulwich.web import WSGIRequestHandlerLogger, make_wsgi_chain

from tests.support.policy_repo import PolicyRepo


class Origin:
    """A bare repository (the Git host) and an operator's clone that pushes to it."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "origin.git"
        subprocess.run(
            ["git", "init", "-q", "--bare", "-b", "main", str(self.bare)],
            check=True,
            capture_output=True,
        )
        self.work = PolicyRepo(root / "work")
        self.work.git("remote", "add", "origin", str(self.bare))

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def push(self, force: bool = False) -> str:
        self.work.git("push", "-q", *(["--force"] if force else []), "origin", "main")
        return self.head()

    def head(self) -> str:
        return self.work.git("rev-parse", "HEAD")

    def commit_and_push(self, message: str = "policy change") -> str:
        self.work.commit(message)
        return self.push()

    def rewrite_last(self, message: str = "rewritten") -> str:
        """Amend the last commit and force-push it: the remote's history is rewritten."""
        self.work.git("commit", "-q", "--amend", "--allow-empty", "-m", message)
        return self.push(force=True)


class GitHttpServer:
    """dulwich's smart HTTP server for one repository, on 127.0.0.1 in a thread."""

    def __init__(self, repo_path: Path) -> None:
        self._repo = Repo(str(repo_path))
        app = make_wsgi_chain(DictBackend({b"/": self._repo}))
        self._server: WSGIServer = make_server(
            "127.0.0.1", 0, app, handler_class=WSGIRequestHandlerLogger
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/"

    def __enter__(self) -> GitHttpServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._repo.close()


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def policy_status(url: str, admin: str) -> dict[str, object]:
    response = httpx.get(url + "/admin/api/status", headers={"authorization": f"Bearer {admin}"})
    assert response.status_code == 200, response.text
    return response.json()["policy"]  # type: ignore[no-any-return]
