"""A real gateway in front of the fake media upstream, shared by this package's tests.

Routes: one per media operation (marked for it), a chat-only route, a route whose provider
is not OpenAI-family; keys: `alice` (every route), `bob` (the speech route only), `slow`
(one request per minute) and `single` (one request at a time).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import openai
import pytest

from tests.openai_api.fake_media import FakeMedia
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import hash_of, new_secret
from tests.support.serving import serving

ROUTES = """
routes:
  omni-moderation-latest:
    targets: [fake/omni-moderation-upstream]
    operations: [moderations]
  gpt-image-1:
    targets: [fake/gpt-image-upstream]
    operations: [images]
  gpt-4o-mini-tts:
    targets: [fake/tts-upstream]
    operations: [audio]
  whisper-1:
    targets: [fake/whisper-upstream]
    operations: [audio]
  whisper-failover:
    targets: [fake/whisper-first, fake/whisper-second]
    operations: [audio]
  bge-reranker:
    targets: [fake/rerank-upstream]
    operations: [rerank]
  chat-only:
    targets: [fake/chat-upstream]
    operations: [chat]
  claude-moderation:
    targets: [anth/claude-upstream]
"""


@dataclass
class Media:
    gateway: GatewayProcess
    upstream: FakeMedia
    keys: dict[str, str]
    clients: dict[str, openai.OpenAI] = field(default_factory=dict)

    def client(self, key: str = "alice") -> openai.OpenAI:
        """One SDK client per key (closed with the fixture)."""
        if key not in self.clients:
            self.clients[key] = openai.OpenAI(
                api_key=self.keys.get(key, key),
                base_url=self.gateway.url + "/v1",
                max_retries=0,
                timeout=30,
            )
        return self.clients[key]

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


@pytest.fixture(scope="package")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Media]:
    upstream = FakeMedia().start()
    keys = {name: new_secret() for name in ("alice", "bob", "slow", "single", "admin")}
    providers = f"""
providers:
  fake:
    type: openai-compatible
    base_url: {upstream.url}/v1
    credentials: [env:FAKE_UPSTREAM_KEY]
    max_retries: 0
  anth:
    type: anthropic
    base_url: http://127.0.0.1:9
    credentials: [env:FAKE_UPSTREAM_KEY]
"""
    key_list = f"""
keys:
  - id: alice
    hash: {hash_of(keys["alice"])}
  - id: bob
    hash: {hash_of(keys["bob"])}
    models: [gpt-4o-mini-tts]
  - id: slow
    hash: {hash_of(keys["slow"])}
    limits: {{rpm: 1}}
  - id: single
    hash: {hash_of(keys["single"])}
    limits: {{max_concurrency: 1}}
admins:
  - id: ops
    hash: {hash_of(keys["admin"])}
"""
    root: Path = tmp_path_factory.mktemp("media")
    try:
        with serving(root, providers=providers, routes=ROUTES, keys=key_list) as gateway:
            served = Media(gateway, upstream, keys)
            yield served
            served.close()
    finally:
        upstream.stop()
