"""One judge model on two loopback OpenAI-compatible servers, one failing mid-run."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from rftgrade import Grader
from rftgrade.judge import BatchScorer, ModelRoute, RoutingConfig
from rftgrade.judge._balance import BalancedBackend
from rftgrade.judge._config import load_routing
from rftgrade.testing import FakeJudgeServer


class DyingServer(FakeJudgeServer):
    """Answers its first ``good`` requests, then 500s on every one (a server that went bad)."""

    def __init__(self, good: int) -> None:
        super().__init__()
        self.good = good
        self.ok = 0
        self.refused = 0
        self._count = threading.Lock()

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._count:
            if self.ok >= self.good:
                self.refused += 1
                return 500, {"error": {"message": "this server went bad"}}, {}
            self.ok += 1
        return super().answer(path, body)


class CountingServer(FakeJudgeServer):
    def __init__(self) -> None:
        super().__init__()
        self.ok = 0

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        status, payload, headers = super().answer(path, body)
        if status == 200:
            with self.lock:
                self.ok += 1
        return status, payload, headers


SPEC = {
    "type": "score_model",
    "name": "judge",
    "model": "judge-1",
    "input": [{"role": "user", "content": "{{ item.q }} SCORE={{ item.score }}"}],
}


def test_balanced_over_two_servers_fails_over_without_losing_or_doubling() -> None:
    with CountingServer() as good, DyingServer(good=5) as bad:
        route = ModelRoute(
            "*", base_url=good.base_url, base_urls=(good.base_url, bad.base_url), concurrency=2
        )
        scorer = BatchScorer(RoutingConfig([route], "test"), backoff=0.05, cache=False)
        grader = Grader(SPEC, judge=scorer)
        rows = [
            {"sample": "x", "item": {"q": f"question {i}", "score": round(i / 100, 2)}} for i in range(60)
        ]
        try:
            results = grader.run_batch(rows)
            backend = scorer._backends["*"]
            assert isinstance(backend, BalancedBackend)
            servers = backend.snapshot()
        finally:
            grader.close()
        assert [r.reward for r in results] == [round(i / 100, 2) for i in range(60)]
        assert all(r.ok for r in results), [r.error_messages for r in results if not r.ok]
        # Both servers took load; every request was answered once, by exactly one server.
        assert bad.ok == 5 and good.ok == 55, (bad.ok, good.ok)
        assert sum(s["answered"] for s in servers) == 60
        assert bad.refused >= 1 and servers[1]["failed"] == bad.refused
        # Backed off: the bad server saw far fewer attempts than the requests left after it went bad.
        assert bad.refused < 30, bad.refused


def test_routing_file_takes_a_list_of_base_urls(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text('[models."j*"]\nbase_url = ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"]\n')
    route = load_routing(path).route("judge")
    assert route is not None and route.base_urls == ("http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1")
    path.write_text('[models."j*"]\nbase_url = []\n')
    try:
        load_routing(path)
    except ValueError as exc:
        assert "models.j*.base_url must be a URL or a list of URLs" in str(exc)
    else:
        raise AssertionError("an empty base_url list was accepted")
