"""`rftgrade calibrate` and `rftgrade check` end to end: the example's flawed and fixed judges
(a scripted stand-in judge on a loopback server), the HTML report in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rftgrade.testing import FakeJudgeServer

from ..conftest import EXAMPLES, require_or_skip, string_check

CAL = EXAMPLES / "judge_calibration"
sys.path.insert(0, str(CAL))
from simulated_judge import judge  # noqa: E402


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    out = tmp_path_factory.mktemp("cal")
    with FakeJudgeServer(responder=judge) as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "test"}
        env.pop("RFTGRADE_MODELS", None)
        dirs = {}
        for name in ("flawed", "fixed"):
            dirs[name] = out / name
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "rftgrade",
                    "calibrate",
                    str(CAL / f"grader_{name}.json"),
                    str(CAL / "labels.jsonl"),
                    "--repeats",
                    "3",
                    "--out",
                    str(dirs[name]),
                    "--bootstrap",
                    "300",
                ],
                capture_output=True,
                text=True,
                env=env,
                timeout=300,
            )
            # The flawed judge fails calibrate's default gates (exit 1); the fixed one passes.
            assert proc.returncode == (1 if name == "flawed" else 0), proc.stderr
            (dirs[name] / "stdout.txt").write_text(proc.stdout)
        yield dirs


def load(path: Path) -> dict[str, Any]:
    return json.loads((path / "report.json").read_text())


def test_report_json_has_the_contracted_keys(reports: dict[str, Path]) -> None:
    report = load(reports["fixed"])
    for key in ("pearson", "spearman", "kendall_tau_b", "mae", "mean_signed_error", "cohen_kappa_quadratic"):
        assert isinstance(report["agreement"][key], float)
        lo, hi = report["agreement"][f"{key}_ci"]
        assert lo <= report["agreement"][key] <= hi
    assert isinstance(report["stability"]["flip_rate"], float)
    for name, probe in report["probes"].items():
        assert isinstance(probe["mean_score"], float) and isinstance(probe["max_score_rate"], float), name
    assert {
        "empty",
        "whitespace",
        "echo_question",
        "format_no_content",
        "padded_correct",
        "long_wrong",
        "injection",
        "fake_verdict_grade",
        "fake_verdict_json",
        "reference",
        "ladder",
    } <= set(report["probes"])
    prov = report["provenance"]
    assert prov["items"] == 72 and prov["repeats"] == 3 and prov["grader_calls"] >= 216
    assert prov["prompt_hash"].startswith("sha256:") and prov["tokens"]["total_tokens"] > 0
    assert (reports["fixed"] / "summary.md").read_text().startswith("# Calibration")


def test_reports_tell_the_flawed_judge_from_the_fixed(reports: dict[str, Path]) -> None:
    flawed, fixed = load(reports["flawed"]), load(reports["fixed"])
    assert fixed["agreement"]["spearman"] > 0.7 > flawed["agreement"]["spearman"]
    assert fixed["agreement"]["spearman_ci"][0] > flawed["agreement"]["spearman_ci"][1]
    assert (
        flawed["probes"]["injection"]["max_score_rate"] == 1.0
        and fixed["probes"]["injection"]["max_score_rate"] == 0.0
    )
    assert flawed["probes"]["padded_correct"]["flagged"] and not fixed["probes"]["padded_correct"]["flagged"]
    assert flawed["stability"]["flip_rate"] > 0 == fixed["stability"]["flip_rate"]
    assert fixed["calibration"]["ece"] < flawed["calibration"]["ece"]


def test_calibrate_gates_fail_the_flawed_judge_and_say_why(reports: dict[str, Path]) -> None:
    flawed, fixed = load(reports["flawed"]), load(reports["fixed"])
    assert fixed["passed"] and fixed["gate_failures"] == []
    assert not flawed["passed"]
    assert any("probe injection" in f for f in flawed["gate_failures"])
    printed = (reports["flawed"] / "stdout.txt").read_text().replace("\n", " ")
    assert "probe injection" in printed and "all gates passed" not in printed
    assert "FAILED" in (reports["flawed"] / "summary.md").read_text()


def test_html_report_renders_in_headless_chromium(reports: dict[str, Path], tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    require_or_skip(chromium is not None, "chromium")
    page = (reports["flawed"] / "report.html").as_uri()
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page],  # type: ignore[list-item]
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    for marker in (
        'id="plot-scatter"',
        'id="plot-reliability"',
        'id="plot-confusion"',
        'id="plot-probes"',
        'id="agreement"',
        'id="probes"',
        'id="worst"',
        'id="provenance"',
        "<svg",
    ):
        assert marker in dom, marker
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1200,1800",  # type: ignore[list-item]
            f"--screenshot={shot}",
            page,
        ],
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 50_000  # a rendered page with plots, not a blank one
    # Self-contained: no external scripts, styles, images or fonts (XML namespaces are not fetched).
    assert not re.search(r"""(src|href)=["']https?:""", (reports["flawed"] / "report.html").read_text())


def test_label_names_are_accepted_for_label_graders(tmp_path: Path) -> None:
    from rftgrade import Grader
    from rftgrade.judge import BatchScorer, ModelRoute, RoutingConfig
    from rftgrade.quality import calibrate

    spec = {
        "type": "label_model",
        "name": "l",
        "model": "m",
        "labels": ["good", "bad"],
        "passing_labels": ["good"],
        "input": [{"role": "user", "content": "LABEL={{ item.verdict }} {{ sample.output_text }}"}],
    }
    rows = [
        {"item": {"verdict": v}, "sample": f"s{i}", "label": h}
        for i, (v, h) in enumerate([("good", "good"), ("bad", "bad"), ("good", "bad"), ("bad", "bad")] * 3)
    ]
    with FakeJudgeServer() as server:
        grader = Grader(
            spec,
            judge=BatchScorer(RoutingConfig([ModelRoute("*", base_url=server.base_url)], "t"), cache=False),
        )
        report = calibrate(grader, rows, repeats=2, n_boot=100, probes=False)
        grader.close()
    assert report["agreement"]["accuracy"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="not among"):
        calibrate(Grader(spec), [{"item": {}, "sample": "x", "label": "meh"}] * 3, repeats=1, probes=False)


def _check(
    tmp_path: Path, spec: dict[str, Any], rows: list[dict[str, Any]], *extra: str
) -> subprocess.CompletedProcess[str]:
    g, d = tmp_path / "g.json", tmp_path / "d.jsonl"
    g.write_text(json.dumps(spec))
    d.write_text("\n".join(json.dumps(r) for r in rows))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "rftgrade",
            "check",
            str(g),
            str(d),
            "--json",
            str(tmp_path / "c.json"),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_passes_a_sound_grader_and_fails_a_flat_one(tmp_path: Path) -> None:
    rows = []
    for q in range(10):
        answer = f"answer {q}"
        for s in (answer, "wrong", answer, "nope"):
            rows.append({"item": {"question": f"q{q}", "reference_answer": answer}, "sample": s})
    sound = _check(tmp_path, string_check(reference="{{ item.reference_answer }}"), rows)
    assert sound.returncode == 0, sound.stdout
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["passed"] and report["flat_groups"]["all_min_share"] == 0.0
    assert report["mean_within_group_sd"] == pytest.approx(0.5)
    assert report["probes"]["reference"]["mean_score"] == 1.0
    # A grader that gives everything 1 (like) is flat and rewards the empty answer.
    flat = _check(tmp_path, string_check("like", reference=""), rows)
    assert flat.returncode == 1
    text = flat.stdout
    assert "no learning signal" in text and "probe empty" in text


def test_check_flags_error_rate(tmp_path: Path) -> None:
    rows = [{"item": {}, "sample": "x", "group": i // 2} for i in range(10)]
    proc = _check(tmp_path, string_check(), rows, "--no-probes")
    assert proc.returncode == 1 and "error rate" in proc.stdout


def test_probes_take_the_shape_of_the_graders_expected_output() -> None:
    from rftgrade._load import load_spec
    from rftgrade.quality._probes import build_probes, sample_shape

    spec = load_spec(EXAMPLES / "math_answer" / "grader.json")  # reads sample.output_json.answer
    rows = [json.loads(line) for line in (EXAMPLES / "math_answer" / "data.jsonl").read_text().splitlines()]
    probes = build_probes(rows, shape=sample_shape(spec))
    for probe in probes:
        for row in probe.rows:
            parsed = json.loads(row["sample"])
            assert set(parsed) == {"answer", "reasoning"}, probe.name
    reference = next(p for p in probes if p.name == "reference")
    assert json.loads(reference.rows[0]["sample"])["answer"] == rows[0]["item"]["answer"]
    # A grader that reads the plain text keeps plain-text probes.
    plain = build_probes(rows, shape=sample_shape(load_spec(string_check())))
    assert next(p for p in plain if p.name == "empty").rows[0]["sample"] == ""


def test_a_judge_with_negative_kappa_fails_the_default_gate() -> None:
    from rftgrade.quality.calibrate import CalibrationGates, gate_failures

    report = {
        "agreement": {"cohen_kappa_quadratic": -0.40, "spearman": -0.3},
        "failures": {"calls": 10, "failed_calls": 0, "by_flag": {}},
        "probes": {},
    }
    (why,) = gate_failures(report, CalibrationGates())
    assert "kappa -0.40 < 0.4" in why
    assert gate_failures(report, CalibrationGates(min_kappa=None)) == []
