"""Refuses request bodies over a size limit before anything reads them into memory."""

from __future__ import annotations

import json


class BodyTooLargeError(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: 413 for a declared Content-Length over the limit, without reading the
    body; for a chunked body, 413 as soon as the bytes received pass the limit."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await self.refuse(send, 400, "Content-Length is not a number")
                return
            if int(declared) > self.max_bytes:
                await self.refuse(send, 413, self.too_large_message())
                return

        received = 0
        response_started = False

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError
            return message

        async def tracking_send(message):
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if not response_started:
                await self.refuse(send, 413, self.too_large_message())

    def too_large_message(self) -> str:
        return f"request body is larger than {self.max_bytes} bytes; nothing was enqueued"

    @staticmethod
    async def refuse(send, status: int, message: str) -> None:
        body = json.dumps({"detail": message}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
