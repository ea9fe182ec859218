"""A local OpenAI-compatible chat-completions server for driving the real litellm path in tests.

    with LLMServer([Reply(content="{...}"), Reply(status=500)]) as server:
        server.url        # http://127.0.0.1:<port>/v1 ; server.requests: the JSON bodies received
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from .standin import StandIn, send


@dataclass
class Reply:
    content: str = ""
    status: int = 200
    delay_s: float = 0.0


class LLMServer(StandIn):
    prefix = "/v1"

    def __init__(self, replies: list[Reply]):
        self.replies, self.requests, self.headers = list(replies), [], []
        super().__init__()

    def on_post(self, request: BaseHTTPRequestHandler) -> None:
        body = json.loads(request.rfile.read(int(request.headers["Content-Length"])))
        self.requests.append(body)
        self.headers.append(request.headers)  # an HTTPMessage: header names are case-insensitive
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        time.sleep(reply.delay_s)
        if reply.status != 200:
            payload = {"error": {"message": "scripted failure", "type": "server_error", "code": reply.status}}
        else:
            payload = {
                "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "test"),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": reply.content}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            }
        send(request, reply.status, json.dumps(payload).encode())
