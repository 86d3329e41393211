"""`rftgrade serve` as a real process: preloaded graders, same results as the library, graceful shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from rftgrade import Grader

from ..conftest import EXAMPLES
from .conftest import free_port

DETERMINISTIC = ["math_answer", "contact_extraction", "support_summary"]


def start(*args: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rftgrade", "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read() if proc.stdout else "server exited")
    raise AssertionError("server did not start")


def rows(name: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (EXAMPLES / name / "data.jsonl").read_text().splitlines() if x.strip()]


def test_server_library_agree_on_examples() -> None:
    args = [a for name in DETERMINISTIC for a in ("--grader", f"{name}={EXAMPLES / name / 'grader.json'}")]
    proc, url = start(*args, "--sandbox", "process")
    try:
        for name in DETERMINISTIC:
            data = rows(name)
            served = httpx.post(url + "/v1/grade", json={"grader": name, "rows": data}, timeout=60).json()[
                "results"
            ]
            local = [r.to_dict() for r in Grader(EXAMPLES / name / "grader.json").run_batch(data)]  # type: ignore[arg-type]
            assert [r["reward"] for r in served] == [r["reward"] for r in local]
            assert [r["metadata"]["errors"] for r in served] == [r["metadata"]["errors"] for r in local]
        docs = httpx.get(url + "/openapi.json").json()
        assert "/v1/fine_tuning/alpha/graders/run" in docs["paths"] and "/v1/grade" in docs["paths"]
    finally:
        proc.terminate()
        proc.wait(30)


def test_graceful_shutdown_finishes_in_flight_batch(tmp_path: Path) -> None:
    slow = tmp_path / "slow.json"
    slow.write_text(
        json.dumps(
            {
                "type": "python",
                "name": "slow",
                "source": "import time\ndef grade(s, i):\n    time.sleep(1.5)\n    return 0.5\n",
            }
        )
    )
    proc, url = start("--grader", f"slow={slow}", "--sandbox", "process")
    result: dict[str, Any] = {}

    def call() -> None:
        result["response"] = httpx.post(
            url + "/v1/grade", json={"rows": [{"sample": "a", "item": {}}]}, timeout=60
        )

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    thread.join(60)
    # uvicorn re-raises the signal once it has shut down gracefully.
    assert proc.wait(60) in (0, -signal.SIGTERM)
    assert result["response"].status_code == 200
    assert result["response"].json()["results"][0]["reward"] == 0.5


def test_bad_grader_file_fails_fast(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"type": "string_check", "name": "x", "input": "a", "reference": "b", "operation": "neq"})
    )
    proc = subprocess.run(
        [sys.executable, "-m", "rftgrade", "serve", "--port", "1", "--grader", f"bad={bad}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert proc.returncode == 1 and "did you mean `ne`" in proc.stderr
