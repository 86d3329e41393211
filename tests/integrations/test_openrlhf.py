"""OpenRLHF's endpoint: the token in the path, special tokens stripped, JSON-object labels
as items (the real OpenRLHF client is in test_real_trainers.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from rftgrade.integrations.openrlhf import strip_special_tokens
from rftgrade.server import ServerConfig

from ..conftest import string_check
from ..server.conftest import running_server

ANSWER = string_check(input="{{ sample.output_json.answer }}", reference="{{ item.label }}")


def openrlhf_post(url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    # As OpenRLHF sends it (aiohttp's json=): a JSON body, no authorization header.
    return httpx.post(url + path, json=body, timeout=30)


def grader_file(tmp_path: Path, spec: dict[str, Any]) -> str:
    path = tmp_path / "g.json"
    path.write_text(json.dumps(spec))
    return str(path)


def test_token_in_the_path_for_a_server_behind_api_key(tmp_path: Path) -> None:
    body = {"query": ['P{"answer": "4"}'], "prompts": ["P"], "labels": ["4"]}
    config = ServerConfig(graders={"m": grader_file(tmp_path, ANSWER)}, api_key="s3cret")
    with running_server(config) as url:
        assert openrlhf_post(url, "/v1/openrlhf/reward", body).status_code == 401  # no headers: the trap
        reply = openrlhf_post(url, "/v1/openrlhf/s3cret/reward", body)
        assert reply.status_code == 200 and reply.json()["rewards"] == [1.0]
        wrong = openrlhf_post(url, "/v1/openrlhf/s3cre/reward", body)
        assert wrong.status_code == 401 and "token" in wrong.json()["error"]["message"]
        # The bearer route still works for clients that send headers.
        bearer = httpx.post(
            url + "/v1/openrlhf/reward", json=body, headers={"authorization": "Bearer s3cret"}, timeout=30
        )
        assert bearer.json()["rewards"] == [1.0]
        metrics = httpx.get(url + "/metrics", timeout=30).text
        assert "s3cre" not in metrics and "/v1/openrlhf/{token}/reward" in metrics


def test_special_tokens_are_stripped_from_the_sample(tmp_path: Path) -> None:
    queries = [
        '<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n{"answer": "3000"}<|im_end|>',
        'Q{"answer": "3000"}<|eot_id|>',
        'Q{"answer": "3000"}[END]',
    ]
    prompts = ["<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n", "Q", "Q"]
    body = {"query": queries, "prompts": prompts, "labels": ["3000"] * 3}
    config = ServerConfig(graders={"m": grader_file(tmp_path, ANSWER)}, strip_tokens=("[END]",))
    with running_server(config) as url:
        reply = openrlhf_post(url, "/v1/openrlhf/reward", body).json()
    assert reply["rewards"] == [1.0, 1.0, 1.0], reply
    assert reply["extra_logs"]["rftgrade_error"] == [0.0, 0.0, 0.0]


def test_a_json_object_label_becomes_the_item(tmp_path: Path) -> None:
    explained = string_check(input="{{ sample.output_text }}", reference="{{ item.reference_explanation }}")
    item = {"reference_explanation": "because", "id": 7}
    body = {"query": ["Pbecause", "Pbecause", "Pbecause"], "prompts": ["P"] * 3}
    with running_server(ServerConfig(graders={"m": grader_file(tmp_path, explained)})) as url:
        as_object = openrlhf_post(
            url, "/v1/openrlhf/reward", {**body, "labels": [item, json.dumps(item), "x"]}
        )
    reply = as_object.json()
    # A plain-string label has no reference_explanation: that sample fails, flagged.
    assert reply["rewards"] == [1.0, 1.0, 0.0] and reply["extra_logs"]["rftgrade_error"] == [0.0, 0.0, 1.0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"answer": 3000}<|im_end|>', '{"answer": 3000}'),
        ('{"a": 1}<|im_end|>\n<|endoftext|>', '{"a": 1}'),
        ("x<|im_end|>y", "xy"),
        ("plain\n", "plain\n"),
        ("</s></s>", ""),
    ],
)
def test_strip_special_tokens(text: str, expected: str) -> None:
    assert strip_special_tokens(text) == expected


@pytest.mark.timeout(60)
def test_a_completion_that_ends_in_many_special_tokens_is_stripped_in_one_pass() -> None:
    # A policy can end its turn with the same token again and again, up to its length
    # limit; a copy of the text per token was quadratic in them.
    assert strip_special_tokens("42" + "<|im_end|>\n" * 2_000_000) == "42"


def test_serve_cli_strip_tokens_and_path_token(tmp_path: Path) -> None:
    from ..server.test_serve_cli import start

    proc, url = start(
        "--grader", f"m={grader_file(tmp_path, ANSWER)}", "--api-key", "K", "--strip-tokens", "[END], <eot>"
    )
    try:
        body = {"query": ['Q{"answer": "1"}<eot>[END]'], "prompts": ["Q"], "labels": ["1"]}
        assert openrlhf_post(url, "/v1/openrlhf/K/reward", body).json()["rewards"] == [1.0]
    finally:
        proc.terminate()
        proc.wait(30)
