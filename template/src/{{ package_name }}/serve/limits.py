"""Request body size limit: a body over `max_body_bytes` answers 413 before any parsing.

A declared Content-Length over the limit is refused at once; a chunked body is counted while it is
read, and refused as soon as it passes the limit, so an oversized upload is never held in memory.
"""

from __future__ import annotations

from starlette.responses import JSONResponse

from .metrics import ASGIApp, Message, Receive, Scope, Send


def too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"request body exceeds MAX_BODY_BYTES={limit} bytes"}, status_code=413)


class BodyLimitMiddleware:
    """ASGI middleware enforcing MAX_BODY_BYTES on every HTTP request body."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app, self.limit = app, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await too_large(self.limit)(scope, receive, send)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await too_large(self.limit)(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
