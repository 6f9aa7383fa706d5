"""A live-event viewer for tests: reads /admin/api/events on a thread, parses the frames."""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Frame:
    event: str
    data: dict[str, Any] | None
    id: int | None
    comments: list[str] = field(default_factory=list)


class Viewer:
    def __init__(self, url: str, token: str, last_event_id: int | None = None) -> None:
        headers = {"authorization": f"Bearer {token}"}
        if last_event_id is not None:
            headers["last-event-id"] = str(last_event_id)
        self.frames: queue.Queue[Frame] = queue.Queue()
        self.comments: list[str] = []
        self.status: int | None = None
        self.ended = threading.Event()
        self._connected = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=30))
        self._url, self._headers = url + "/admin/api/events", headers
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self._connected.wait(10), "the viewer did not connect"

    def _read(self) -> None:
        try:
            with self._client.stream("GET", self._url, headers=self._headers) as response:
                self.status = response.status_code
                self._connected.set()
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if line.startswith(":"):
                        self.comments.append(line[1:].strip())
                    elif line == "":
                        if "event" in fields or "data" in fields:
                            self.frames.put(_frame(fields))
                        fields = {}
                    else:
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
        except httpx.HTTPError:
            pass
        finally:
            self._connected.set()
            self.ended.set()

    def next(self, timeout: float = 10) -> Frame:
        return self.frames.get(timeout=timeout)

    def requests(self, count: int, timeout: float = 10) -> list[Frame]:
        """The next `count` request events (other frames are skipped)."""
        found: list[Frame] = []
        deadline = time.monotonic() + timeout
        while len(found) < count:
            frame = self.frames.get(timeout=max(0.01, deadline - time.monotonic()))
            if frame.event == "request":
                found.append(frame)
        return found

    def close(self) -> None:
        self._client.close()
        self._thread.join(5)


def _frame(fields: dict[str, str]) -> Frame:
    data = json.loads(fields["data"]) if "data" in fields else None
    return Frame(
        fields.get("event", "message"), data, int(fields["id"]) if "id" in fields else None
    )
