"""A scripted HTTP server on 127.0.0.1 standing in for a Kudu (SCM) site or ARM.

Each test scripts the answers per (method, path prefix) and reads back every request the
client made, so the OneDeploy client is exercised over real HTTP without Azure.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.http_server import LocalHttpServer


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int
    body: Any = ""

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class FakeScm:
    """Answers are consumed in order per route; the last one repeats when the script runs out."""

    routes: dict[tuple[str, str], deque[Answer]] = field(default_factory=lambda: defaultdict(deque))
    requests: list[RecordedRequest] = field(default_factory=list)
    server: LocalHttpServer | None = None

    def script(self, method: str, path_prefix: str, *answers: Answer) -> None:
        self.routes[(method, path_prefix)].extend(answers)

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.base_url

    def answer(self, method: str, path: str) -> Answer:
        for (route_method, prefix), queue in self.routes.items():
            if route_method == method and path.startswith(prefix) and queue:
                return queue.popleft() if len(queue) > 1 else queue[0]
        return Answer(404, {"Message": f"no scripted answer for {method} {path}"})

    def start(self) -> FakeScm:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.requests.append(
                    RecordedRequest(self.command, self.path, dict(self.headers.items()), body)
                )
                answer = fake.answer(self.command, self.path)
                payload = answer.encoded()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _handle  # noqa: N815 - http.server naming

            def log_message(self, *_args: Any) -> None:
                """Keep test output clean."""

        self.server = LocalHttpServer(Handler)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
