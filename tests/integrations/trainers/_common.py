"""Shared by the trainer scripts: the grader, a tokenizer, a server started with the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

# exact: the answer; sim: similarity to the row's explanation (a row without one fails to grade).
GRADER: dict[str, Any] = {
    "type": "multi",
    "name": "answer_and_explanation",
    "calculate_output": "0.5 * exact + 0.5 * sim",
    "graders": {
        "exact": {
            "type": "string_check",
            "name": "exact",
            "input": "{{ sample.output_text }}",
            "reference": "{{ item.reference_answer }}",
            "operation": "eq",
        },
        "sim": {
            "type": "text_similarity",
            "name": "sim",
            "input": "{{ sample.output_text }}",
            "reference": "{{ item.explanation }}",
            "evaluation_metric": "fuzzy_match",
        },
    },
}


def write_grader(directory: Path, spec: dict[str, Any] | None = None, name: str = "grader.json") -> str:
    path = directory / name
    path.write_text(json.dumps(spec or GRADER))
    return str(path)


def emit(result: dict[str, Any]) -> None:
    """The script's answer: one JSON line, last on stdout."""
    sys.stdout.write("\nRESULT " + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()


@contextlib.contextmanager
def serve(*args: str) -> Iterator[str]:
    """``rftgrade serve`` as a real process on loopback (the CLI, as users start it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rftgrade", "serve", "--port", str(port), "--sandbox", "process", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(
                    f"rftgrade serve did not start: {proc.stderr.read() if proc.stderr else ''}"
                )
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def requests_to(url: str, path: str) -> int:
    """How many requests ``path`` has answered (the server's Prometheus counter)."""
    total = 0
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("rftgrade_requests_total{") and f'endpoint="{path}"' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def grpo_config(out: Path, *, steps: int, batch: int, generations: int, completion_length: int) -> Any:
    """TRL's GRPOConfig for a tiny CPU run: the reward under test, then a recorder at weight 0."""
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=batch,
        num_generations=generations,
        max_completion_length=completion_length,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        bf16=False,
        seed=0,
        reward_weights=[1.0, 0.0],
    )
