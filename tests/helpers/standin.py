"""The HTTP plumbing of the stand-in servers (services the tests cannot reach: an LLM API, the Qizhi platform).

    class MyService(StandIn):
        def on_post(self, request: BaseHTTPRequestHandler) -> None:
            send(request, 200, b'{"ok": true}')

    with MyService() as service:       # a threaded server on 127.0.0.1:<free port>
        service.url                    # http://127.0.0.1:<port> + the subclass's `prefix`
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def send(request: BaseHTTPRequestHandler, status: int, data: bytes, content_type: str = "application/json",
         headers: Mapping[str, str] | None = None) -> None:
    """Write one reply; a client that has already given up (timed out) is not an error of the stand-in."""
    try:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


class StandIn:
    prefix = ""  # appended to the URL (an API root such as /v1)

    def __init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                server.on_post(self)

            def do_PUT(self) -> None:  # noqa: N802
                server.on_put(self)

            def do_GET(self) -> None:  # noqa: N802
                server.on_get(self)

            def do_HEAD(self) -> None:  # noqa: N802
                server.on_head(self)

            def log_message(self, *args: Any) -> None:
                pass

            def do_PATCH(self) -> None:  # noqa: N802
                server.on_patch(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{self.prefix}"

    def on_post(self, request: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    def on_put(self, request: BaseHTTPRequestHandler) -> None:
        """PUT (file uploads); a service that has none answers 405."""
        send(request, 405, b'{"error": "method not allowed"}')

    def on_get(self, request: BaseHTTPRequestHandler) -> None:
        send(request, 405, b'{"error": "method not allowed"}')

    def __enter__(self) -> Any:
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()  # a quick shutdown
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def on_head(self, request: BaseHTTPRequestHandler) -> None:
        """HEAD (file metadata); a service that has none answers 405."""
        send(request, 405, b"")

    def on_patch(self, request: BaseHTTPRequestHandler) -> None:
        send(request, 405, b'{"error": "method not allowed"}')
