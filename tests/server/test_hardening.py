"""Server hardening (issue 15, class 6): bad text in a grader is a 400, inline graders
past the registry's limit evict idle ones instead of being refused."""

from __future__ import annotations

import socket
import time

import httpx

from rftgrade._registry import GraderRegistry
from rftgrade.server import ServerConfig

from ..conftest import string_check
from .conftest import running_server


def test_a_lone_surrogate_in_a_grader_is_a_400_naming_the_field() -> None:
    registry = GraderRegistry(sandbox="process")
    with running_server(ServerConfig(), registry) as base:
        body = (
            b'{"grader": {"type": "string_check", "name": "x\\ud800", "input": "{{ sample.output_text }}",'
            b' "reference": "a", "operation": "eq"}, "model_sample": "a", "item": {}}'
        )
        for path in ("/v1/fine_tuning/alpha/graders/run", "/v1/fine_tuning/alpha/graders/validate"):
            response = httpx.post(base + path, content=body, headers={"content-type": "application/json"})
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["param"] == "grader.name" and "lone surrogate" in error["message"]


def test_inline_graders_past_the_limit_evict_the_least_recently_used() -> None:
    registry = GraderRegistry(sandbox="process", max_graders=3)
    with running_server(ServerConfig(), registry) as base:
        for n in range(6):
            grader = string_check(name=f"g{n}", reference="a")
            body = {"grader": grader, "model_sample": "a", "item": {}}
            response = httpx.post(base + "/v1/fine_tuning/alpha/graders/run", json=body)
            assert response.status_code == 200 and response.json()["reward"] == 1.0, response.text
        assert len(registry.graders()) == 3


def test_half_open_connections_do_not_starve_an_honest_request() -> None:
    registry = GraderRegistry(sandbox="process")
    with running_server(ServerConfig(), registry, header_timeout=2.0, max_connections=50) as base:
        port = int(base.rsplit(":", 1)[1])
        half_open = []
        for _ in range(120):  # more than the cap: each sends part of a request line, then nothing
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"POST /v1/grade HTTP/1.1\r\nHost: x\r\n")
            half_open.append(sock)
        start = time.monotonic()
        body = {"grader": string_check(reference="a"), "model_sample": "a", "item": {}}
        response = httpx.post(base + "/v1/fine_tuning/alpha/graders/run", json=body, timeout=10)
        assert response.status_code == 200 and response.json()["reward"] == 1.0
        assert time.monotonic() - start < 2.0
        # The header timeout closes the rest.
        time.sleep(2.5)
        closed = 0
        for sock in half_open:
            sock.settimeout(0.5)
            try:
                closed += sock.recv(1) == b""
            except ConnectionResetError:
                closed += 1
            except TimeoutError:
                pass
            finally:
                sock.close()
        assert closed == len(half_open), closed
