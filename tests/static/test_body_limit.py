"""The 64 KiB body limit (shared by every recipe), as ASGI middleware around a stand-in app."""

from __future__ import annotations

import asyncio

import pytest
from demo_arq import body_limit

LIMIT = 64 * 1024


class ReadsWholeBody:
    def __init__(self) -> None:
        self.called = False

    async def __call__(self, scope, receive, send):
        self.called = True
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})


def call(chunks: list[bytes], content_length: int | None):
    inner = ReadsWholeBody()
    middleware = body_limit.BodySizeLimit(inner, max_bytes=LIMIT)
    headers = [] if content_length is None else [(b"content-length", str(content_length).encode())]
    scope = {"type": "http", "headers": headers}
    pending = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    received_count = 0
    sent = []

    async def receive():
        nonlocal received_count
        received_count += 1
        return pending.pop(0)

    async def send(message):
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    return inner.called, received_count, sent[0]["status"], sent[-1]["body"]


def test_a_declared_length_over_the_limit_is_refused_before_reading():
    called, received, status, body = call([b"x" * (LIMIT + 1)], LIMIT + 1)
    assert (called, received, status) == (False, 0, 413)
    assert b"larger than 65536 bytes" in body


def test_a_chunked_body_is_refused_once_it_passes_the_limit():
    chunks = [b"x" * 16384] * 8  # 128 KiB, no Content-Length
    _, received, status, _ = call(chunks, None)
    assert status == 413
    assert received == 5  # stopped at the first chunk past 64 KiB, the rest never read


@pytest.mark.parametrize("size", [0, 1, LIMIT])
def test_bodies_up_to_the_limit_pass(size: int):
    called, _, status, body = call([b"x" * size], size)
    assert (called, status, body) == (True, 202, str(size).encode())


def test_a_malformed_content_length_is_a_400():
    sent = []

    async def send(message):
        sent.append(message)

    async def never_receive():
        raise AssertionError("must not read")

    scope = {"type": "http", "headers": [(b"content-length", b"12abc")]}
    asyncio.run(body_limit.BodySizeLimit(ReadsWholeBody(), LIMIT)(scope, never_receive, send))
    assert sent[0]["status"] == 400
