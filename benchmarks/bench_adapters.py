"""Trainer adapters: rewards/s for one 4,096-sample GRPO step (512 prompts x 8), per
adapter, in-process and through ``rftgrade serve``, against the same grader called in a
plain loop, in one run. ``python -m benchmarks.bench_adapters`` -> results/adapters.*

Each adapter is called the way its trainer calls it: TRL one reward call for the
step's batch; verl's reward loop one ``compute_score_async`` per sample, all at once
(and the sync ``compute_score`` from a thread pool, as verl runs sync functions; and
the ``batch`` manager's list form); verifiers one reward per rollout, all at once;
OpenRLHF one ``/v1/openrlhf/reward`` request per sample (its rollouts send one query),
64 in flight. The grader is a ``multi`` of ``string_check`` and ``text_similarity``
(no sandbox, so the figures are the adapters' and the server's own cost). TRL also
runs with nothing scanned (``reasoning="keep", tool_calls="keep"``), with a ``<think>``
block before every completion, and with a ``<tool_call>`` block after every one (cut
before grading, read as ``output_tools``: the rewards must not change), for what
reading a completion as OpenAI's grader saw it costs, in interleaved rounds against the
plain loop (``--rounds``), a table of their own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks._common import sentences, write

GRADER = {
    "type": "multi",
    "name": "answer",
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


def step(prompts: int, n: int) -> tuple[list[str], list[str], list[str], list[str]]:
    """A GRPO step: each prompt's ``n`` completions side by side, its columns repeated."""
    pairs = sentences(prompts * n, 20)
    refs = sentences(prompts, 20, seed=1)
    completions = [h for h, _ in pairs]
    questions = [f"question {p}" for p in range(prompts) for _ in range(n)]
    answers = [refs[p][1].split()[0] for p in range(prompts) for _ in range(n)]
    explanations = [refs[p][1] for p in range(prompts) for _ in range(n)]
    return questions, completions, answers, explanations


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def start_server(grader: str) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rftgrade", "serve", "--port", str(port), "--grader", f"g={grader}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("rftgrade serve did not start")


def read_rounds(
    rounds: int,
    path: Path,
    completions: list[str],
    items: list[dict[str, Any]],
    questions: list[str],
    answers: list[str],
    explanations: list[str],
) -> dict[str, Any]:
    """What reading a completion as OpenAI's grader saw it costs: TRL's step with nothing
    scanned, over plain completions, with a ``<think>`` block before each (cut), and
    with a ``<tool_call>`` block after each (read as ``output_tools``, the text before it
    the grader's input), against the plain loop, in ``rounds`` interleaved rounds (this
    machine's speed moves within minutes; a median of interleaved rounds sees through
    it). Every variant must give the plain loop's rewards."""
    from rftgrade import Grader
    from rftgrade.integrations import trl as trl_adapter

    thoughts = [f"<think>\n{t} {u}\n</think>\n\n" for t, u in sentences(len(completions), 40, seed=2)]
    call = '<tool_call>\n{"name": "submit", "arguments": {"answer": "x", "confidence": 0.9}}\n</tool_call>'
    default = trl_adapter.make_reward_function(str(path), sandbox="process")
    unscanned = trl_adapter.make_reward_function(
        str(path), sandbox="process", reasoning="keep", tool_calls="keep"
    )

    def trl(reward: Any, texts: list[str]) -> list[float]:
        out = asyncio.run(
            reward(prompts=questions, completions=texts, reference_answer=answers, explanation=explanations)
        )
        return [float(x) for x in out]

    grader = Grader(GRADER)
    variants: dict[str, Callable[[], list[float]]] = {
        "plain loop (Grader.run per sample)": lambda: [
            grader.run(c, i).reward for c, i in zip(completions, items, strict=True)
        ],
        "TRL, nothing scanned (reasoning=keep, tool_calls=keep)": lambda: trl(unscanned, completions),
        "TRL, plain completions (the default: scanned, nothing found)": lambda: trl(default, completions),
        "TRL, a `<think>` block cut from every completion": lambda: trl(
            default, [t + c for t, c in zip(thoughts, completions, strict=True)]
        ),
        "TRL, a `<tool_call>` block read from every completion": lambda: trl(
            default, [c + call for c in completions]
        ),
    }
    seconds: dict[str, list[float]] = {label: [] for label in variants}
    agree = dict.fromkeys(variants, True)
    plain: list[float] | None = None
    try:
        for _ in range(rounds):
            for label, fn in variants.items():
                took, out = timed(fn)
                seconds[label].append(took)
                plain = out if plain is None else plain
                agree[label] = agree[label] and out == plain
    finally:
        grader.close()
    return {"seconds": seconds, "agree": agree}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the reading variants")
    args = parser.parse_args()

    from rftgrade import Grader
    from rftgrade.integrations import trl as trl_adapter
    from rftgrade.integrations import verifiers as vf_adapter

    tmp = Path(tempfile.mkdtemp())
    path = tmp / "grader.json"
    path.write_text(json.dumps(GRADER))
    questions, completions, answers, explanations = step(args.prompts, args.n)
    total = len(completions)
    items = [
        {"prompt": q, "reference_answer": a, "explanation": e}
        for q, a, e in zip(questions, answers, explanations, strict=True)
    ]
    results: dict[str, float] = {}
    rewards: dict[str, list[float]] = {}

    with Grader(GRADER) as grader:
        seconds, out = timed(
            lambda: [grader.run(c, i).reward for c, i in zip(completions, items, strict=True)]
        )
    results["plain loop (Grader.run per sample)"] = seconds
    rewards["plain"] = out

    os.environ.update(RFTGRADE_GRADER=str(path), RFTGRADE_SANDBOX="process")
    os.environ.pop("RFTGRADE_SERVER_URL", None)
    import rftgrade.integrations.verl as verl

    def trl(reward: Any) -> list[float]:
        out: list[float] = asyncio.run(
            reward(
                prompts=questions, completions=completions, reference_answer=answers, explanation=explanations
            )
        )
        return out

    def verl_async() -> list[float]:
        async def run() -> list[Any]:
            calls = [
                verl.compute_score_async("d", c, a, {"explanation": e})
                for c, a, e in zip(completions, answers, explanations, strict=True)
            ]
            return list(await asyncio.gather(*calls))

        return [r["score"] for r in asyncio.run(run())]

    def verl_threads() -> list[float]:
        with ThreadPoolExecutor(32) as pool:  # verl's run_in_executor(None): the default pool
            futures = [
                pool.submit(
                    verl.compute_score,
                    data_source="d",
                    solution_str=c,
                    ground_truth=a,
                    extra_info={"explanation": e},
                )
                for c, a, e in zip(completions, answers, explanations, strict=True)
            ]
            return [f.result()["score"] for f in futures]

    def verl_batch() -> list[float]:
        out = verl.compute_score(
            data_sources=["d"] * total,
            solution_strs=completions,
            ground_truths=answers,
            extra_infos=[{"explanation": e} for e in explanations],
        )
        return [r["score"] for r in out]

    def verifiers(reward: Any) -> list[float]:
        async def run() -> list[float]:
            tasks = [
                {"prompt": q, "answer": a, "info": {"explanation": e}}
                for q, a, e in zip(questions, answers, explanations, strict=True)
            ]
            return list(
                await asyncio.gather(*(reward(t, c) for t, c in zip(tasks, completions, strict=True)))
            )

        return asyncio.run(run())

    def measure(label: str, fn: Callable[[], list[float]], key: str) -> None:
        seconds, out = timed(fn)
        results[label] = seconds
        rewards[key] = [float(x) for x in out]

    measure(
        "TRL, in-process", lambda: trl(trl_adapter.make_reward_function(str(path), sandbox="process")), "trl"
    )
    reading = read_rounds(args.rounds, path, completions, items, questions, answers, explanations)
    verl._STATE = None
    measure("verl compute_score_async (reward loop), in-process", verl_async, "verl_async")
    measure("verl compute_score from 32 threads, in-process", verl_threads, "verl_threads")
    measure("verl batch form, in-process", verl_batch, "verl_batch")
    measure(
        "verifiers reward, in-process",
        lambda: verifiers(vf_adapter.make_reward(str(path), sandbox="process")),
        "vf",
    )

    proc, url = start_server(str(path))
    try:
        measure(
            "TRL, rftgrade serve", lambda: trl(trl_adapter.make_reward_function("g", server_url=url)), "trl_s"
        )
        os.environ.update(RFTGRADE_SERVER_URL=url, RFTGRADE_GRADER="g")
        verl._STATE = None
        measure("verl compute_score_async (reward loop), rftgrade serve", verl_async, "verl_async_s")
        measure("verl compute_score from 32 threads, rftgrade serve", verl_threads, "verl_threads_s")
        measure("verl batch form, rftgrade serve", verl_batch, "verl_batch_s")
        measure(
            "verifiers reward, rftgrade serve",
            lambda: verifiers(vf_adapter.make_reward("g", server_url=url)),
            "vf_s",
        )

        def openrlhf() -> list[float]:
            import httpx

            async def run() -> list[float]:
                limit = asyncio.Semaphore(64)
                async with httpx.AsyncClient(timeout=180) as client:

                    async def one(i: int) -> float:
                        body = {
                            "query": [questions[i] + completions[i]],
                            "prompts": [questions[i]],
                            "labels": [items[i]],
                        }
                        async with limit:
                            reply = await client.post(url + "/v1/openrlhf/reward", json=body)
                        return float(reply.json()["rewards"][0])

                    return list(await asyncio.gather(*(one(i) for i in range(total))))

            return asyncio.run(run())

        measure("OpenRLHF, one request per sample (64 in flight), rftgrade serve", openrlhf, "openrlhf")
    finally:
        proc.terminate()
        proc.wait(30)

    plain = results["plain loop (Grader.run per sample)"]
    agree = {k: v == rewards["plain"] for k, v in rewards.items()}
    rows = [(label, total / s, plain / s) for label, s in results.items()]
    lines = [
        f"# Trainer adapters: one GRPO step of {total:,} samples ({args.prompts} prompts x {args.n})",
        "",
        "Measured side by side in one run (`python -m benchmarks.bench_adapters`); grader: "
        "`multi` of `string_check` + `text_similarity` (fuzzy_match); x = speed relative to the plain loop.",
        "",
        "| path | rewards/s | x plain loop |",
        "|---|---:|---:|",
        *[f"| {label} | {rate:,.0f} | {ratio:.2f}x |" for label, rate, ratio in rows],
        "",
        "Every path gave the plain loop's rewards: " + ("yes" if all(agree.values()) else f"NO: {agree}"),
        "",
        f"## Reading a completion as OpenAI's grader saw it (TRL, in-process; median of {args.rounds} "
        "interleaved rounds)",
        "",
        "| path | rewards/s | x plain loop | rounds, x plain loop |",
        "|---|---:|---:|---|",
    ]
    medians = {label: statistics.median(times) for label, times in reading["seconds"].items()}
    loop = reading["seconds"]["plain loop (Grader.run per sample)"]
    for label, times in reading["seconds"].items():
        each = ", ".join(f"{p / t:.2f}" for p, t in zip(loop, times, strict=True))
        lines.append(
            f"| {label} | {total / medians[label]:,.0f} | {medians['plain loop (Grader.run per sample)'] / medians[label]:.2f}x | {each} |"
        )
    lines += [
        "",
        "Every variant gave the plain loop's rewards: "
        + ("yes" if all(reading["agree"].values()) else f"NO: {reading['agree']}"),
        "",
    ]
    write(
        "adapters",
        {
            "samples": total,
            "seconds": results,
            "rewards_per_second": {k: total / v for k, v in results.items()},
            "agree": agree,
            "reading": reading,
        },
        "\n".join(lines),
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
