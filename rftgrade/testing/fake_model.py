"""A deterministic OpenAI-compatible chat model on loopback, for testing ``rftgrade eval``.

It stands in for the base model a team would evaluate (vLLM, Ollama, a hosted
API) over real HTTP (Starlette on uvicorn, both installed with the server extra), so the code under test is the real
``openai`` client. What it answers is read from the last user turn:

- ``answer=<X>``: the right answer (one word);
- ``mode=right`` (default) answers ``X``; ``mode=wrong`` answers ``wrong``;
  ``mode=alternate`` answers right on the 1st, 3rd, ... call for that prompt and
  wrong on the 2nd, 4th, ...;
- ``mode=model:<name>``: right when the request names model ``<name>``, else wrong
  (a tuned model against its base, for ``rftgrade compare``);
- ``mode=slow:<s>``: right, after ``s`` seconds;
- ``mode=500:<n>`` / ``mode=429:<n>``: the first ``n`` calls for the prompt fail
  with that status (429 with ``retry-after-ms: 10``), then right;
- ``mode=hang:<n>``: the first ``n`` calls wait 60 s (past any client timeout), then right;
- ``mode=fail``: always HTTP 500;
- ``mode=tool``: a tool call to the request's first tool, ``{"answer": X}``;
  ``mode=tool-text``: the same call written in the text as Qwen3 writes it (a
  ``<tool_call>`` block after its reasoning), as an endpoint without a tool parser returns it;
- ``mode=think``: right, after a reasoning model's ``<think>...</think>`` (as an
  endpoint without a reasoning parser returns Qwen3's replies); ``mode=think-cut``:
  the reasoning alone, cut before any answer (the length limit).

A request with a JSON ``response_format`` gets ``{"reasoning": "because <reply>",
"answer": <reply>}`` as text.
Every server answers after ``latency`` seconds (the benchmark's fixed model time).
Run one alone with ``python -m rftgrade.testing.fake_model --port 8000 --latency 0.02``.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections import Counter
from typing import Any

__all__ = ["FakeModelServer"]

_ANSWER = re.compile(r"answer=(\S+)")
_MODE = re.compile(r"mode=(\S+)")


def _prompt_key(body: dict[str, Any]) -> str:
    for turn in reversed(body.get("messages") or []):
        if isinstance(turn, dict) and turn.get("role") == "user":
            content = turn.get("content")
            return content if isinstance(content, str) else json.dumps(content, sort_keys=True)
    return ""


class FakeModelServer:
    """Start with ``with FakeModelServer() as server:``; ``server.base_url`` ends in ``/v1``.

    ``calls[prompt]`` counts requests per prompt (failed ones included);
    ``requests`` is the total, ``bodies`` the request bodies, ``max_in_flight`` the most
    requests held at once.
    """

    def __init__(self, *, latency: float = 0.0, port: int = 0) -> None:
        self.latency = latency
        self.calls: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()
        self.requests = 0
        self.bodies: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        """The most requests the server held at once (the client's concurrency bound)."""
        self.lock = threading.Lock()
        # proto=IPPROTO_TCP, not the default 0: asyncio turns Nagle off only on sockets
        # that say they are TCP, and with it on every answer waits ~40 ms for a delayed ACK.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self.port: int = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def app(self) -> Any:
        """The ASGI app."""
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def chat(request: Request) -> JSONResponse:
            body = await request.json()
            status, payload, headers, delay = self.answer(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(delay + self.latency)
            finally:
                self.in_flight -= 1
            return JSONResponse(payload, status_code=status, headers=headers)

        return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str], float]:
        """(status, JSON body, headers, extra delay) for one request."""
        key = _prompt_key(body)
        with self.lock:
            self.requests += 1
            self.bodies.append(body)
            self.calls[key] += 1
            call = self.calls[key]
        answer_match, mode_match = _ANSWER.search(key), _MODE.search(key)
        answer = answer_match.group(1) if answer_match else "?"
        mode, _, arg = (mode_match.group(1) if mode_match else "right").partition(":")
        delay = 0.0
        if mode == "fail":
            return 500, {"error": {"message": "the model is down", "type": "server_error"}}, {}, 0.0
        if mode in ("500", "429") and call <= int(arg):
            headers = {"retry-after-ms": "10"} if mode == "429" else {}
            return int(mode), {"error": {"message": f"{mode} number {call}", "type": "x"}}, headers, 0.0
        if mode == "hang" and call <= int(arg):
            delay = 60.0
        if mode == "slow":
            delay = float(arg)
        with self.lock:
            self.answered[key] += 1
            answered = self.answered[key]
        reply = answer
        if (
            mode == "wrong"
            or (mode == "alternate" and answered % 2 == 0)
            or (mode == "model" and body.get("model") != arg)
        ):
            reply = "wrong"
        message: dict[str, Any] = {"role": "assistant", "content": reply}
        fmt = body.get("response_format") or {}
        if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
            message["content"] = json.dumps({"reasoning": f"because {reply}", "answer": reply})
        if mode == "think":
            message["content"] = (
                f"<think>\nThe answer is {reply}, I am sure.\n</think>\n\n{message['content']}"
            )
        if mode == "think-cut":
            message["content"] = "<think>\nLet me think about this for a long"
        if mode == "tool" and body.get("tools"):
            name = body["tools"][0].get("function", {}).get("name", "tool")
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": f"call_{call}",
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps({"answer": reply})},
                    }
                ],
            }
        if mode == "tool-text" and body.get("tools"):
            name = body["tools"][0].get("function", {}).get("name", "tool")
            call_text = json.dumps({"name": name, "arguments": {"answer": reply}})
            message["content"] = f"<think>\nA tool call.\n</think>\n\n<tool_call>\n{call_text}\n</tool_call>"
        payload = {
            "id": f"chatcmpl-{self.requests}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
        }
        return 200, payload, {}, delay

    def start(self) -> FakeModelServer:
        import uvicorn

        config = uvicorn.Config(
            self.app(), log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="fake-model", daemon=True
        )
        self._thread.start()
        deadline = time.time() + 20
        while not self._server.started:
            if time.time() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake model server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> FakeModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    """``python -m rftgrade.testing.fake_model --port P --latency S``: serve until killed."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    server = FakeModelServer(latency=args.latency, port=args.port).start()
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
