"""The reward server on loopback, driven by the openai client, httpx and an OpenRLHF-shaped client."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from rftgrade._registry import GraderRegistry
from rftgrade.sandbox import Limits, SandboxExecutor
from rftgrade.sandbox._select import backend_class
from rftgrade.server import ServerConfig

from ..conftest import EXAMPLES, require_or_skip, string_check
from .conftest import running_server

TOKEN = "s3cret-token"
HANG = {
    "type": "python",
    "name": "hang",
    "source": "import time\ndef grade(sample, item):\n"
    "    if item.get('hang'):\n        while True:\n            pass\n    return 1.0\n",
}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    # RFTGRADE_SANDBOX picks the isolating backend (a machine whose docker another job uses sets bwrap).
    backend = os.environ.get("RFTGRADE_SANDBOX", "")
    if backend not in ("docker", "bwrap"):
        backend = "docker" if backend_class("docker").unavailable_reason() is None else "bwrap"
    require_or_skip(backend_class(backend).unavailable_reason() is None, "an isolating sandbox")
    registry = GraderRegistry(python=SandboxExecutor(backend, workers=2, limits=Limits(timeout=2.0)))
    config = ServerConfig(
        graders={
            "math": str(EXAMPLES / "math_answer" / "grader.json"),
            "chip": str(EXAMPLES / "chip_wiring" / "grader.json"),
        },
        api_key=TOKEN,
        max_body_bytes=2_000_000,
        max_inflight_rows=5_000,
    )
    with running_server(config, registry) as base:
        yield base


@pytest.fixture(scope="module")
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=TOKEN, max_retries=0)


def post(url: str, path: str, body: Any, token: str = TOKEN, **kw: Any) -> httpx.Response:
    return httpx.post(url + path, json=body, headers={"authorization": f"Bearer {token}"}, timeout=60, **kw)


def test_openai_client_run(client: openai.OpenAI) -> None:
    response = client.fine_tuning.alpha.graders.run(
        grader=string_check(), model_sample="42", item={"answer": "42"}
    )  # type: ignore[arg-type]
    assert response.reward == 1.0
    assert response.metadata.errors.invalid_variable_error is False
    missing = client.fine_tuning.alpha.graders.run(grader=string_check(), model_sample="42", item={})  # type: ignore[arg-type]
    assert missing.reward == 0.0 and missing.metadata.errors.invalid_variable_error is True


def test_openai_client_run_python_grader_sandboxed(client: openai.OpenAI) -> None:
    grader = json.loads((EXAMPLES / "chip_wiring" / "grader.json").read_text())
    ref = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    response = client.fine_tuning.alpha.graders.run(
        grader=grader, model_sample=json.dumps({"predicted": ref[:1]}), item={"reference_answer": ref}
    )
    assert response.reward == pytest.approx(2 / 3)


def test_openai_client_validate(client: openai.OpenAI) -> None:
    ok = client.fine_tuning.alpha.graders.validate(grader=string_check())  # type: ignore[arg-type]
    assert ok.grader is not None and ok.grader.type == "string_check"
    with pytest.raises(openai.BadRequestError) as info:
        client.fine_tuning.alpha.graders.validate(grader=string_check("neq"))  # type: ignore[arg-type]
    assert "did you mean `ne`" in str(info.value) and "operation" in str(info.value)


def test_bad_formula_on_run_is_a_flagged_result(url: str) -> None:
    bad = {"type": "multi", "name": "m", "graders": {"a": string_check()}, "calculate_output": "a +"}
    body = post(url, "/v1/fine_tuning/alpha/graders/run", {"grader": bad, "model_sample": "x"}).json()
    assert body["metadata"]["errors"]["formula_parse_error"] is True and body["reward"] == 0.0


def test_register_once_then_grade_by_id_with_dedupe(url: str) -> None:
    registered = post(url, "/v1/graders", {"grader": string_check("ilike")}).json()
    assert registered["id"].startswith("grader_")
    again = post(url, "/v1/graders", {"grader": string_check("ilike")}).json()
    assert again["id"] == registered["id"]
    rows = [{"sample": "YES", "item": {"answer": "yes"}}] * 3 + [
        {"sample": "no", "item": {"answer": "yes"}},
        {"bad": 1},
    ]
    body = post(url, "/v1/grade", {"grader": registered["id"], "rows": rows}).json()
    assert [r["reward"] for r in body["results"]] == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert body["results"][4]["metadata"]["errors"]["sample_parse_error"]
    fetched = httpx.get(
        url + f"/v1/graders/{registered['id']}", headers={"authorization": f"Bearer {TOKEN}"}
    ).json()
    assert fetched["grader"]["operation"] == "ilike"


def test_compact_answer_matches_the_full_one(url: str) -> None:
    rows = [{"sample": "YES", "item": {"answer": "yes"}}] * 2 + [
        {"sample": "no", "item": {"answer": "yes"}},
        {"bad": 1},
        {"sample": "yes", "item": {"answer": "yes"}},
    ]
    full = post(url, "/v1/grade", {"grader": string_check("ilike"), "rows": rows}).json()
    compact = post(url, "/v1/grade", {"grader": string_check("ilike"), "rows": rows, "compact": True}).json()
    assert compact["grader_id"] == full["grader_id"]
    assert compact["rewards"] == [r["reward"] for r in full["results"]] == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert "results" not in compact
    (failure,) = compact["failures"]
    assert failure["index"] == 3 and failure["flags"] == ["sample_parse_error"]
    assert failure["messages"] == full["results"][3]["metadata"]["error_messages"]


ECHO_ITEM = {
    "type": "python",
    "name": "echo_item",
    "source": "import json\ndef grade(sample, item):\n"
    "    print(json.dumps(item, sort_keys=True))\n    return float(len(item))\n",
}


@pytest.mark.parametrize("compact", [False, True])
def test_items_left_as_json_text_reach_graders_unchanged(url: str, compact: bool) -> None:
    # The server keeps each row's item as its JSON text (a python grader's worker
    # parses it); every shape of item must still reach a grader exactly as the
    # library gives it, and bad ones must get the library's flag.
    items: list[Any] = [
        {"a": 1, "b": [1.5, None, True], "c": {"d": "é \u2028 🦀"}},
        {},
        {"big": 2**70, "neg": -0.0, "exp": 1e-300},
        {"dup": 1},
        None,
        [1, 2],
        5,
    ]
    rows: list[Any] = [{"sample": f"s{i}", "item": item} for i, item in enumerate(items)]
    rows.append({"sample": "no item"})
    rows.append({"sample": {"output_text": "a dict sample"}, "item": {"x": 1}})
    rows.append({"item": {"no": "sample"}})
    rows.append({"sample": "s0", "item": items[0]})  # identical to the first row
    text = json.dumps({"grader": ECHO_ITEM, "rows": rows, "compact": compact}).replace(
        '"dup": 1',
        '"dup": 0, "dup": 1',  # a duplicate key: the last one wins, as everywhere
    )
    answer = httpx.post(
        url + "/v1/grade",
        content=text,
        headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
        timeout=60,
    ).json()
    full = post(url, "/v1/grade", {"grader": ECHO_ITEM, "rows": rows}).json()["results"]
    expected_len = [3.0, 0.0, 3.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 3.0]
    expected_ok = [True, True, True, True, True, False, False, True, True, False, True]
    rewards = answer["rewards"] if compact else [r["reward"] for r in answer["results"]]
    assert rewards == expected_len
    assert [not r["metadata"]["errors"]["sample_parse_error"] for r in full] == expected_ok
    for i in (0, 1, 2, 3, 8, 10):
        seen = json.loads(full[i]["metadata"]["scores"]["stdout"])
        want = {"dup": 1} if i == 3 else rows[i]["item"]
        assert seen == json.loads(json.dumps(want, sort_keys=True)), i
    if compact:
        assert [f["index"] for f in answer["failures"]] == [5, 6, 9]


@pytest.mark.parametrize("text_only", [False, True])
@pytest.mark.parametrize("shape", ["full", "compact", "stream"])
def test_groups_are_answered_like_the_rows_they_stand_for(url: str, shape: str, text_only: bool) -> None:
    # A GRPO batch sends each prompt's item once, with its samples; the answer is
    # the rows' answer: one entry per sample, group after group.
    groups: list[Any] = [
        {"item": {"a": 1, "b": [1.5, "é 🦀"]}, "samples": ["s0", "s1", "s0"]},
        {"item": {}, "samples": ["s2"]},
        {"item": {"c": 2}, "samples": []},
        {"samples": ["no item"]},
        {"item": [1, 2], "samples": ["bad item", "bad item too"]},
        {"item": {"x": 1}, "samples": ["x" if text_only else {"output_text": "a dict sample"}]},
    ]
    rows = [{"sample": s, "item": g.get("item")} for g in groups for s in g["samples"]]
    options = {"compact": True} if shape == "compact" else {"stream": True} if shape == "stream" else {}
    by_rows = post(url, "/v1/grade", {"grader": ECHO_ITEM, "rows": rows, **options})
    by_groups = post(url, "/v1/grade", {"grader": ECHO_ITEM, "groups": groups, **options})
    assert by_groups.status_code == by_rows.status_code == 200, by_groups.text
    if shape == "stream":
        lines = [json.loads(x) for x in by_groups.text.splitlines() if x]
        got = {line["index"]: line["result"]["reward"] for line in lines}
        want = {
            line["index"]: line["result"]["reward"] for line in map(json.loads, by_rows.text.splitlines())
        }
        assert got == want and len(got) == len(rows)
        return
    answer, expected = by_groups.json(), by_rows.json()
    if shape == "compact":
        assert answer["rewards"] == expected["rewards"] == [2.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0, 1.0]
        assert [f["index"] for f in answer["failures"]] == [5, 6]
    else:
        assert [r["reward"] for r in answer["results"]] == [r["reward"] for r in expected["results"]]
        seen = json.loads(answer["results"][1]["metadata"]["scores"]["stdout"])
        assert seen == {"a": 1, "b": [1.5, "é 🦀"]}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"rows": [], "groups": []}, "not both"),
        ({"grader": "math"}, "not neither"),
        ({"groups": [{"item": {}}]}, "groups.0.samples"),
        ({"groups": "not a list"}, "groups"),
    ],
)
def test_a_batch_is_rows_or_groups(url: str, body: dict[str, Any], needle: str) -> None:
    response = post(url, "/v1/grade", {"grader": string_check(), **body})
    assert response.status_code == 400 and needle in response.json()["error"]["message"], response.text


def test_a_lone_surrogate_in_a_result_is_still_answered(url: str) -> None:
    # A grader's stdout (or a model's text) may hold a lone surrogate; the answer
    # must still be valid JSON, on every path that writes results.
    grader = {
        "type": "python",
        "name": "odd",
        "source": "def grade(sample, item):\n    print('bad \\udc80 text')\n    return 0.5\n",
    }
    run = post(url, "/v1/fine_tuning/alpha/graders/run", {"grader": grader, "model_sample": "x", "item": {}})
    assert run.status_code == 200 and run.json()["reward"] == 0.5
    # The sandbox channel takes valid UTF-8 only (issue 15): the worker sends "?" for it.
    assert run.json()["metadata"]["scores"]["stdout"].startswith("bad ? text")
    body = {"grader": grader, "rows": [{"sample": "x", "item": {}}], "stream": True}
    streamed = post(url, "/v1/grade", body)
    assert streamed.status_code == 200
    (line,) = [json.loads(x) for x in streamed.text.splitlines() if x]
    assert line["result"]["reward"] == 0.5


def test_preloaded_grader_by_name_and_default(url: str) -> None:
    rows = [
        {
            "sample": json.dumps({"reasoning": "36", "answer": "31"}),
            "item": {"answer": "31", "key_quantity": "36"},
        }
    ]
    named = post(url, "/v1/grade", {"grader": "math", "rows": rows}).json()
    default = post(url, "/v1/grade", {"rows": rows}).json()
    assert named["results"][0]["reward"] == default["results"][0]["reward"] == 1.0


def test_stream_returns_ndjson_with_indices(url: str) -> None:
    rows = [{"sample": str(i % 7), "item": {"answer": "3"}} for i in range(1500)]
    with httpx.stream(
        "POST",
        url + "/v1/grade",
        json={"grader": string_check(), "rows": rows, "stream": True},
        headers={"authorization": f"Bearer {TOKEN}"},
        timeout=60,
    ) as response:
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert sorted(line["index"] for line in lines) == list(range(1500))
    assert all(
        line["result"]["reward"] == (1.0 if int(rows[line["index"]]["sample"]) == 3 else 0.0)
        for line in lines
    )


def test_openrlhf_shaped_client(url: str) -> None:
    body = {
        "query": ["Q: 2+2?\nA: 4", "Q: 2+2?\nA: 5", "unrelated 4"],
        "prompts": ["Q: 2+2?\nA: ", "Q: 2+2?\nA: ", "nope"],
        "labels": ["4", "4", "4"],
    }
    grader = post(url, "/v1/graders", {"grader": string_check(reference="{{ item.label }}")}).json()["id"]
    reply = post(url, f"/v1/openrlhf/reward?grader={grader}", body).json()
    assert reply["rewards"] == [1.0, 0.0, 0.0]  # the third: prompt not a prefix -> whole query graded
    assert reply["scores"] == reply["rewards"] and reply["extra_logs"]["rftgrade_error"] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("path", "body", "token", "status", "needle"),
    [
        ("/v1/grade", "{not json", TOKEN, 400, "not valid JSON"),
        ("/v1/grade", {"grader": "grader_nope", "rows": []}, TOKEN, 404, "no grader registered"),
        ("/v1/grade", {"rows": "not a list"}, TOKEN, 400, "rows"),
        ("/v1/grade", {"grader": string_check("neq"), "rows": []}, TOKEN, 400, "did you mean"),
        ("/v1/grade", {"grader": "math", "rows": [{"sample": "x" * 3_000_000}]}, TOKEN, 413, "over"),
        # Graded once, answered 100,001 times: the limit counts the rows answered.
        (
            "/v1/grade",
            {"groups": [{"samples": ["x"] * 100_001}], "compact": True},
            TOKEN,
            413,
            "100,001 rows",
        ),
        ("/v1/grade", {"rows": [{"sample": "x"}] * 100_001, "stream": True}, TOKEN, 413, "100,001 rows"),
        # One 100 KB item for 400 samples stands for 40 MB of rows: over 16x this server's 2 MB.
        (
            "/v1/grade",
            {"groups": [{"item": {"pad": "x" * 100_000}, "samples": ["a"] * 400}]},
            TOKEN,
            413,
            "fewer",
        ),
        ("/v1/grade", {"grader": "math", "rows": []}, "wrong", 401, "token"),
        ("/v1/fine_tuning/alpha/graders/run", {"grader": string_check()}, TOKEN, 400, "model_sample"),
    ],
)
def test_error_answers(url: str, path: str, body: Any, token: str, status: int, needle: str) -> None:
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    data = body if isinstance(body, str) else json.dumps(body)
    response = httpx.post(url + path, content=data, headers=headers, timeout=30)
    assert response.status_code == status, response.text
    assert needle in response.json()["error"]["message"]


def test_hanging_grader_does_not_block_other_clients(url: str) -> None:
    results: dict[str, Any] = {}

    def hang() -> None:
        results["hang"] = post(
            url,
            "/v1/grade",
            {"grader": HANG, "rows": [{"sample": "x", "item": {"hang": True}}, {"sample": "x", "item": {}}]},
        ).json()

    thread = threading.Thread(target=hang)
    thread.start()
    time.sleep(0.3)
    start = time.perf_counter()
    quick = post(
        url, "/v1/grade", {"grader": string_check(), "rows": [{"sample": "a", "item": {"answer": "a"}}]}
    )
    assert quick.status_code == 200 and time.perf_counter() - start < 1.5
    assert httpx.get(url + "/healthz").json()["status"] == "ok"
    thread.join(30)
    hung, fine = results["hang"]["results"]
    assert hung["metadata"]["errors"]["unresponsive_reward_error"] and hung["reward"] == 0.0
    assert fine["reward"] == 1.0


def _counter(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " "))


def test_metrics(url: str) -> None:
    before = httpx.get(url + "/metrics").text
    post(url, "/v1/grade", {"grader": string_check(), "rows": [{"sample": "a", "item": {}}]})
    post(url, "/v1/grade", {"grader": "math", "rows": []}, token="wrong")
    text = httpx.get(url + "/metrics").text
    # Counted by route and status, the refused token included; timed per route.
    ok = 'rftgrade_requests_total{endpoint="/v1/grade",status="200"}'
    refused = 'rftgrade_requests_total{endpoint="/v1/grade",status="401"}'
    timed = 'rftgrade_request_seconds_count{endpoint="/v1/grade"}'
    assert _counter(text, ok) == _counter(before, ok) + 1
    assert _counter(text, refused) == _counter(before, refused) + 1
    assert _counter(text, timed) >= _counter(before, timed) + 1
    for name in (
        "rftgrade_requests_total",
        "rftgrade_samples_total",
        "rftgrade_request_seconds_bucket",
        'rftgrade_sample_errors_total{flag="invalid_variable_error"}',
        "rftgrade_inflight_rows",
        "rftgrade_pool_workers",
        "rftgrade_graders",
    ):
        assert name in text, name


def test_overload_answers_429_with_retry_after() -> None:
    registry = GraderRegistry(python=SandboxExecutor("process", workers=1, limits=Limits(timeout=3.0)))
    slow = {
        "type": "python",
        "name": "slow",
        "source": "import time\ndef grade(s, i):\n    time.sleep(1)\n    return 1.0\n",
    }
    with running_server(ServerConfig(max_inflight_rows=2), registry) as base:
        holder = threading.Thread(
            target=lambda: httpx.post(
                base + "/v1/grade",
                json={"grader": slow, "rows": [{"sample": "a", "item": {}}, {"sample": "b", "item": {}}]},
                timeout=30,
            )
        )
        holder.start()
        time.sleep(0.5)
        refused = httpx.post(
            base + "/v1/grade", json={"grader": slow, "rows": [{"sample": "c", "item": {}}]}, timeout=30
        )
        holder.join()
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        after = httpx.post(
            base + "/v1/grade",
            json={"grader": string_check(), "rows": [{"sample": "c", "item": {}}]},
            timeout=30,
        )
        assert after.status_code == 200
