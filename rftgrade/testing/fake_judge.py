"""A deterministic OpenAI-compatible chat server on loopback, for testing model graders.

It stands in for a paid hosted judge, over real HTTP, so the code under test is
exactly what talks to OpenAI, vLLM or Ollama. It reads directives from the
prompt text:

- ``SCORE=<x>`` / ``LABEL=<name>``: answer ``{"steps": [...], "result": ...}``;
- ``MODE:malformed``: answer prose with no JSON; ``MODE:refuse``: a refusal;
- ``MODE:fail``: always HTTP 500; ``MODE:429:<key>:<n>`` / ``MODE:500:<key>:<n>``:
  fail the first ``n`` calls for ``key``, then answer;
- ``MODE:slow:<seconds>``: wait before answering.

``structured_output=False`` makes it reject ``response_format`` with HTTP 400, like
servers without JSON-schema support.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeJudgeServer"]


class FakeJudgeServer:
    """Start with ``with FakeJudgeServer() as server:``; ``server.base_url`` ends in ``/v1``."""

    def __init__(
        self, *, structured_output: bool = True, responder: Callable[[dict[str, Any]], Any] | None = None
    ) -> None:
        """``responder(body)``, when given, returns the ``result`` for requests without directives."""
        self.structured_output = structured_output
        self.responder = responder
        self.calls: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                status, payload, headers = owner.answer(self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeJudgeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- behaviour -------------------------------------------------------------
    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        if not path.endswith("/chat/completions"):
            return 404, {"error": {"message": f"no route {path}"}}, {}
        text = "\n".join(_text(m.get("content")) for m in body.get("messages", []))
        with self.lock:
            self.requests.append(body)
            self.calls["total"] += 1
        if body.get("response_format") and not self.structured_output:
            return (
                400,
                {
                    "error": {
                        "message": "response_format json_schema is not supported",
                        "type": "invalid_request_error",
                        "param": "response_format",
                    }
                },
                {},
            )
        if "MODE:fail" in text:
            return 500, {"error": {"message": "judge exploded"}}, {}
        for kind in ("429", "500"):
            match = re.search(rf"MODE:{kind}:(\w+):(\d+)", text)
            if match:
                with self.lock:
                    self.calls[match.group(1)] += 1
                    seen = self.calls[match.group(1)]
                if seen <= int(match.group(2)):
                    return int(kind), {"error": {"message": f"try again ({kind})"}}, {"retry-after": "0"}
        slow = re.search(r"MODE:slow:([\d.]+)", text)
        if slow:
            time.sleep(float(slow.group(1)))
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        if "MODE:refuse" in text:
            message["refusal"] = "I can't help with grading that."
        elif "MODE:malformed" in text:
            message["content"] = "Hmm, I would say it is pretty good overall."
        elif self.responder is not None and "SCORE=" not in text and "LABEL=" not in text:
            message["content"] = json.dumps(
                {
                    "steps": [{"description": "scripted", "conclusion": "scripted"}],
                    "result": self.responder(body),
                }
            )
        else:
            label = re.search(r"LABEL=([\w-]+)", text)
            score = re.search(r"SCORE=(-?[\d.]+)", text)
            schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}
            wants_label = (
                schema.get("properties", {}).get("result", {}).get("type") == "string"
                if schema
                else score is None
            )
            result: Any = (
                (label.group(1) if label else "") if wants_label else float(score.group(1)) if score else 0.0
            )
            message["content"] = json.dumps(
                {"steps": [{"description": "read the answer", "conclusion": "graded"}], "result": result}
            )
        prompt_tokens = max(1, len(text.split()))
        completion = len((message["content"] or "").split())
        return (
            200,
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion,
                    "total_tokens": prompt_tokens + completion,
                    "prompt_tokens_details": {"cached_tokens": 0},
                },
            },
            {},
        )


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""
