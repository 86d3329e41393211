"""Inline graders (a grader's JSON in a request) are an LRU cache bounded by count and
by the bytes of their canonical JSON; named graders stay, up to their own limit (issue 16)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from rftgrade._registry import GraderRegistry, RegistryFullError, UnknownGraderError
from rftgrade.server import ServerConfig

from ..conftest import string_check
from .conftest import running_server


def big(n: int, size: int = 2000) -> dict[str, object]:
    """A distinct grader whose canonical JSON is a little over ``size`` bytes."""
    return string_check(name=f"g{n}", reference="a" * size)


def test_inline_graders_are_bounded_by_bytes_least_recent_first() -> None:
    registry = GraderRegistry(sandbox="process", max_graders=100, max_inline_bytes=7000)
    ids = [registry.add(big(n)).id for n in range(3)]
    registry.get(ids[0])  # used again: now the most recent
    fourth = registry.add(big(3)).id
    usage = registry.inline_usage()
    assert usage["graders"] == 3 and 6000 < usage["bytes"] <= 7000, usage
    with pytest.raises(UnknownGraderError):
        registry.get(ids[1])  # the least recently used went first
    assert {g.id for g in registry.graders()} == {ids[0], ids[2], fourth}
    # A grader bigger than the whole bound is still taken (and kept while it is the latest).
    huge = registry.add(big(9, size=50_000))
    assert registry.get(huge.id) is huge and registry.inline_usage()["graders"] == 1
    assert huge.run("a" * 50_000, {}).reward == 1.0


def test_named_graders_stay_and_a_renamed_one_joins_the_cache() -> None:
    registry = GraderRegistry(sandbox="process", max_graders=2)
    first = registry.add(big(0), name="keep")
    for n in range(1, 6):
        registry.add(big(n))
    assert registry.get("keep") is first and registry.inline_usage()["graders"] == 2
    registry.add(big(10), name="keep")  # the name moves on: its old grader is inline now
    assert registry.get(first.id) is first
    registry.add(big(11))
    registry.add(big(12))
    with pytest.raises(UnknownGraderError):
        registry.get(first.id)
    # An inline grader that gets a name leaves the cache for good.
    inline = registry.add(big(20))
    registry.add(big(20), name="later")
    for n in range(30, 35):
        registry.add(big(n))
    assert registry.get("later") is inline and registry.get(inline.id) is inline


def test_names_past_their_limit_are_a_clear_400_and_inline_graders_still_run() -> None:
    registry = GraderRegistry(sandbox="process", max_graders=2, max_named_graders=2)
    with running_server(ServerConfig(), registry) as base:
        for n in range(2):
            response = httpx.post(base + "/v1/graders", json={"grader": big(n, 10), "name": f"n{n}"})
            assert response.status_code == 200, response.text
        refused = httpx.post(base + "/v1/graders", json={"grader": big(2, 10), "name": "n2"})
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["param"] == "name" and error["code"] == "too_many_graders"
        assert "inline" in error["message"]
        # Re-registering under a taken name is no new name.
        again = httpx.post(base + "/v1/graders", json={"grader": big(3, 10), "name": "n1"})
        assert again.status_code == 200, again.text
        for n in range(20):  # many more inline graders than either limit: none refused
            body = {"grader": big(100 + n, 10), "rows": [{"sample": "a" * 10, "item": {}}]}
            response = httpx.post(base + "/v1/grade", json=body)
            assert response.status_code == 200 and response.json()["results"][0]["reward"] == 1.0
        assert registry.inline_usage()["graders"] == 2
        metrics = httpx.get(base + "/metrics").text
        assert "rftgrade_inline_graders 2.0" in metrics and "rftgrade_graders 4.0" in metrics
        assert (
            httpx.post(base + "/v1/grade", json={"grader": "n0", "rows": [{"sample": "a" * 10}]}).json()[
                "results"
            ][0]["reward"]
            == 1.0
        )


def test_a_name_past_the_limit_raises_in_the_library() -> None:
    registry = GraderRegistry(sandbox="process", max_named_graders=1)
    registry.add(big(0), name="a")
    with pytest.raises(RegistryFullError, match="named graders"):
        registry.add(big(1), name="b")
    assert registry.add(big(1)).run("a" * 2000, {}).reward == 1.0  # inline: fine


def test_the_servers_config_sets_the_registrys_limits(tmp_path: Any) -> None:
    # What `rftgrade serve --max-named-graders ... --max-inline-graders ...` passes on.
    from typer.testing import CliRunner

    from rftgrade.cli.main import app

    config = ServerConfig(max_named_graders=1, max_inline_graders=3, max_inline_grader_mb=1)
    with running_server(config) as base:
        first = httpx.post(base + "/v1/graders", json={"grader": big(0, 10), "name": "a"})
        refused = httpx.post(base + "/v1/graders", json={"grader": big(1, 10), "name": "b"})
        assert first.status_code == 200 and refused.status_code == 400
        assert refused.json()["error"]["param"] == "name"
    help_text = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).output
    for flag in ("--max-named-graders", "--max-inline-graders", "--max-inline-grader-mb"):
        assert flag in help_text
