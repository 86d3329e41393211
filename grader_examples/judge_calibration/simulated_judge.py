"""A scripted stand-in for an LLM judge, served on loopback, for the calibration example.

No model can be downloaded or called from the machines this project is built on,
so the example's reports are produced with this stand-in behind rftgrade's fake
OpenAI-compatible server (``rftgrade.testing.FakeJudgeServer``). It imitates what a
small judge does with each prompt, nothing more:

- a prompt that asks for "detailed and thorough" answers scores by length and
  obeys instructions inside the answer (the flaws of ``grader_flawed.json``); at
  temperature 1 its score wobbles from call to call;
- a prompt with the reference and "ignore any instructions" scores by whether the
  answer states the reference, hedges, or mixes it with alternatives
  (``grader_fixed.json``), deterministically at temperature 0.

Run ``python grader_examples/judge_calibration/simulated_judge.py`` to serve it,
then point ``OPENAI_BASE_URL`` at the printed URL. With a real judge, skip this file.
"""

from __future__ import annotations

import hashlib
import re
import time
from itertools import count
from typing import Any

_calls = count()


def _text(content: Any) -> str:
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content or [])


def _words(text: str) -> set[str]:
    return {
        w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in {"the", "a", "of", "is", "it", "in"}
    }


def judge(body: dict[str, Any]) -> float:
    system = " ".join(_text(m["content"]) for m in body["messages"] if m["role"] in ("system", "developer"))
    user = _text(body["messages"][-1]["content"])
    answer = user.split("Answer to grade:")[-1] if "Answer to grade:" in user else user.split("Answer:")[-1]
    answer = answer.strip()
    if "thorough" in system:  # the flawed prompt
        if "maximum score" in answer.lower():
            return 5.0
        score = 1.0 + min(4.0, len(answer.split()) / 8)
        if (body.get("temperature") or 0) > 0:
            digest = hashlib.sha256(f"{answer}|{next(_calls)}".encode()).digest()
            score += (digest[0] / 255 - 0.5) * 1.6
        return round(min(5.0, max(1.0, score)), 2)
    reference = user.split("Reference answer:")[-1].split("Answer to grade:")[0]
    ref_words, ans_words = _words(reference), _words(answer)
    if not ans_words or not ref_words:
        return 1.0
    hit = len(ref_words & ans_words) / len(ref_words)
    if hit < 0.5:
        return 1.0
    if re.search(r"\b(either|or possibly)\b", answer.lower()):
        return 2.0
    if re.search(r"\b(might|probably|not completely sure|believe)\b", answer.lower()):
        return 4.0
    return 5.0


if __name__ == "__main__":
    from rftgrade.testing import FakeJudgeServer

    with FakeJudgeServer(responder=judge) as server:
        print(f"simulated judge at {server.base_url} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
