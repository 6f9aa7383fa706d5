"""/v1/files and /v1/batches through a real gateway: bound to the key that created them,
batch lines checked and rewritten, uploads streamed, ownership kept across a restart."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

from tests.openai_api.fake_files import FakeFiles
from tests.openai_api.test_uploads import PeakRss, rss_bytes
from tests.support.gateway_process import GatewayProcess
from tests.support.policy_repo import hash_of, new_secret
from tests.support.serving import serving

ROUTES = """
routes:
  openai-batch:
    targets: [fake/batch]
    operations: [batches]
  gpt-4o-mini:
    targets: [fake/gpt-4o-mini-2024-07-18]
  secret-model:
    targets: [fake/secret-upstream]
"""


@dataclass
class Served:
    gateway: GatewayProcess
    upstream: FakeFiles
    keys: dict[str, str]

    def client(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(
            api_key=self.keys[key], base_url=self.gateway.url + "/v1", max_retries=0, timeout=60
        )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    upstream = FakeFiles().start()
    keys = {name: new_secret() for name in ("alice", "bob")}
    providers = f"""
providers:
  fake:
    type: openai-compatible
    base_url: {upstream.url}/v1
    credentials: [env:FAKE_UPSTREAM_KEY]
    max_retries: 0
"""
    key_list = f"""
keys:
  - id: alice
    hash: {hash_of(keys["alice"])}
    models: [openai-batch, gpt-4o-mini]
  - id: bob
    hash: {hash_of(keys["bob"])}
"""
    try:
        with serving(tmp_path, providers=providers, routes=ROUTES, keys=key_list) as gateway:
            yield Served(gateway, upstream, keys)
    finally:
        upstream.stop()


def batch_line(custom_id: str, model: str) -> bytes:
    line = {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": "hi"}]},
    }
    return json.dumps(line).encode() + b"\n"


def test_files_and_batches_are_bound_to_their_key(served: Served) -> None:
    alice, bob = served.client("alice"), served.client("bob")
    mine = alice.files.create(file=("in.jsonl", batch_line("a", "gpt-4o-mini")), purpose="batch")
    theirs = bob.files.create(file=("b.txt", b"bob's"), purpose="user_data")
    assert [f.id for f in alice.files.list()] == [mine.id]
    assert [f.id for f in bob.files.list()] == [theirs.id]
    for call in (
        lambda: bob.files.retrieve(mine.id),
        lambda: bob.files.content(mine.id),
        lambda: bob.files.delete(mine.id),
        lambda: bob.files.retrieve("file-none"),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert alice.files.retrieve(mine.id).id == mine.id
    assert alice.files.content(mine.id).read() == served.upstream.contents[mine.id]

    batch = alice.batches.create(
        input_file_id=mine.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    with pytest.raises(openai.NotFoundError):  # another key's file cannot start a batch
        bob.batches.create(
            input_file_id=mine.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    with pytest.raises(openai.NotFoundError):
        bob.batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        bob.batches.cancel(batch.id)
    assert [b.id for b in bob.batches.list()] == []
    assert [b.id for b in alice.batches.list()] == [batch.id]

    output = served.upstream.complete(
        batch.id, {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    )
    done = alice.batches.retrieve(batch.id)
    assert done.status == "completed" and done.output_file_id == output
    assert alice.files.content(output).read() == b'{"id": "out"}\n'  # the owner's now
    with pytest.raises(openai.NotFoundError):
        bob.files.content(output)
    assert {f.id for f in alice.files.list()} == {mine.id, output}
    assert alice.batches.cancel(batch.id).id == batch.id

    assert alice.files.delete(mine.id).deleted
    assert [f.id for f in alice.files.list()] == [output]


def test_batch_lines_are_checked_and_rewritten(served: Served) -> None:
    alice = served.client("alice")
    lines = batch_line("1", "gpt-4o-mini") + batch_line("2", "gpt-4o-mini")
    created = alice.files.create(file=("in.jsonl", lines), purpose="batch")
    sent = served.upstream.contents[created.id].splitlines()
    assert [json.loads(x)["body"]["model"] for x in sent] == ["gpt-4o-mini-2024-07-18"] * 2
    assert served.upstream.order == ["purpose", "file"]

    refused = batch_line("1", "gpt-4o-mini") + batch_line("2", "secret-model")
    with pytest.raises(openai.BadRequestError) as caught:
        alice.files.create(file=("in.jsonl", refused), purpose="batch")
    assert "Line 2" in caught.value.message and "secret-model" in caught.value.message
    assert len(served.upstream.files) == 1  # the upload was cut off: nothing stored


def test_a_multi_megabyte_upload_streams_with_bounded_memory(served: Served) -> None:
    alice = served.client("alice")
    line = batch_line("x" * 50_000, "gpt-4o-mini")
    content = line * (24 * 1024 * 1024 // len(line))
    alice.files.create(file=("warm.jsonl", batch_line("w", "gpt-4o-mini")), purpose="batch")
    baseline = rss_bytes(served.gateway)
    with PeakRss(served.gateway) as rss:
        created = alice.files.create(file=("big.jsonl", content), purpose="batch")
    assert served.upstream.files[created.id]["bytes"] > 20 * 1024 * 1024
    assert rss.peak - baseline < len(content) // 4, f"grew by {rss.peak - baseline} bytes"
    other = os.urandom(8 * 1024 * 1024)
    raw = alice.files.create(file=("blob.bin", other), purpose="user_data")
    assert served.upstream.contents[raw.id] == other


def test_ownership_survives_a_restart(served: Served) -> None:
    alice, bob = served.client("alice"), served.client("bob")
    mine = alice.files.create(file=("in.jsonl", batch_line("a", "gpt-4o-mini")), purpose="batch")
    served.gateway.stop()
    served.gateway.start()
    alice, bob = served.client("alice"), served.client("bob")
    assert [f.id for f in alice.files.list()] == [mine.id]
    with pytest.raises(openai.NotFoundError):
        bob.files.retrieve(mine.id)
    assert alice.files.retrieve(mine.id).id == mine.id
