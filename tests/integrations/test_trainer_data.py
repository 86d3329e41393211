"""``rftgrade export dataset``: an OpenAI RFT dataset as verl's, TRL's or OpenRLHF's,
and the adapters reading each row's item back exactly. (The trainers' own dataset
loaders and reward paths on these files: ``test_real_trainers.py``.)"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rftgrade import Grader
from rftgrade._exceptions import DataError
from rftgrade.cli.main import app
from rftgrade.integrations import trl as trl_adapter
from rftgrade.integrations import verl as verl_adapter
from rftgrade.integrations._client import RewardSource
from rftgrade.integrations.openrlhf import openrlhf_columns
from rftgrade.integrations.trainer_data import write_rows

from ..conftest import EXAMPLES, require_or_skip

JOB = EXAMPLES / "openai_rft_job"
TRAIN = JOB / "train.jsonl"
ROWS = [json.loads(line) for line in TRAIN.read_text().splitlines() if line.strip()]


def export(tmp_path: Path, trainer: str, data: Path = TRAIN, suffix: str = "jsonl") -> tuple[Any, Path]:
    out = tmp_path / f"{trainer}.{suffix}"
    result = CliRunner().invoke(app, ["export", "dataset", str(data), "--trainer", trainer, "-o", str(out)])
    return result, out


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def prompt_of(row: dict[str, Any]) -> list[dict[str, str]]:
    # The developer role is written as system: open models' chat templates have none.
    return [
        {"role": "system" if m["role"] == "developer" else m["role"], "content": m["content"]}
        for m in row["messages"]
    ]


@pytest.mark.parametrize("trainer", ["verl", "trl", "openrlhf"])
def test_each_trainer_row_has_the_prompt_and_the_item_exactly(tmp_path: Path, trainer: str) -> None:
    result, out = export(tmp_path, trainer)
    assert result.exit_code == 0, result.output
    assert f"wrote {len(ROWS)} row(s)" in result.output
    assert "developer turn(s) written as system turns" in result.output
    if trainer == "verl":  # the overrides to paste, with this installation's adapter path
        assert f"reward.custom_reward_function.path={verl_adapter.__file__}" in result.output.replace(
            "\n", ""
        )
    written = lines(out)
    assert len(written) == len(ROWS)
    for index, (row, original) in enumerate(zip(written, ROWS, strict=True)):
        if trainer == "verl":
            assert row["data_source"] == "rftgrade" and row["ability"] == "rft"
            assert row["prompt"] == prompt_of(original)
            assert row["reward_model"]["style"] == "rule"
            assert row["extra_info"]["index"] == index
            item_text = row["extra_info"]["rftgrade_item"]
        elif trainer == "trl":
            assert sorted(row) == ["prompt", "rftgrade_item"]
            assert row["prompt"] == prompt_of(original)
            item_text = row["rftgrade_item"]
        else:
            assert sorted(row) == ["item", "messages"]
            assert row["messages"] == prompt_of(original)
            item_text = row["item"]
        assert isinstance(item_text, str)  # one text column, whatever the item's shape
        assert json.loads(item_text) == original  # OpenAI's item: the whole row, messages included


def test_a_byte_order_mark_is_not_a_bad_row(tmp_path: Path) -> None:
    data = tmp_path / "bom.jsonl"
    data.write_bytes(b"\xef\xbb\xbf" + TRAIN.read_bytes())
    result, out = export(tmp_path, "trl", data)
    assert result.exit_code == 0, result.output
    assert [json.loads(r["rftgrade_item"]) for r in lines(out)] == ROWS


def test_rows_with_samples_are_exported_without_them(tmp_path: Path) -> None:
    # data.jsonl's rows end with the assistant's answer (a sample), as graded rows do.
    result, out = export(tmp_path, "trl", JOB / "data.jsonl")
    assert result.exit_code == 0, result.output
    assert "carried samples, which training does not use: left out" in result.output
    for row in lines(out):
        assert row["prompt"][-1]["role"] == "user"
        item = json.loads(row["rftgrade_item"])
        assert item["messages"][-1]["role"] == "user" and "sample" not in item


def test_text_parts_are_joined_and_other_parts_named(tmp_path: Path) -> None:
    data = tmp_path / "rft.jsonl"
    rows = [
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "input_text", "text": "b"}],
                }
            ]
        },
        {"messages": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result, out = export(tmp_path, "verl", data)
    assert result.exit_code == 1
    assert "line 2: messages[0].content[0] is a part of type 'input_image'" in result.output
    assert "nothing was written" in result.output and not out.exists()
    data.write_text(json.dumps(rows[0]) + "\n")
    result, out = export(tmp_path, "verl", data)
    assert result.exit_code == 0, result.output
    assert lines(out)[0]["prompt"] == [{"role": "user", "content": "a\nb"}]


def test_every_bad_row_is_named_with_its_line_and_field(tmp_path: Path) -> None:
    data = tmp_path / "rft.jsonl"
    data.write_text(
        "\n".join(
            [
                json.dumps(ROWS[0]),
                "{not json",
                json.dumps({"answer": "1"}),
                json.dumps(
                    {"messages": [{"role": "user", "content": "q"}, {"role": "system", "content": "s"}]}
                ),
                json.dumps({"messages": [{"role": "user", "content": "q", "tool_calls": []}]}),
                json.dumps({"messages": [{"role": "robot", "content": "q"}]}),
                json.dumps({"messages": []}),
                json.dumps({"item": {"answer": "1"}, "sample": "1"}),
            ]
        )
        + "\n"
    )
    result, out = export(tmp_path, "trl", data)
    assert result.exit_code == 1
    text = result.output
    assert "line 2: " in text  # not JSON
    assert 'line 3: a row is an OpenAI RFT row: {"messages": [...]' in text
    assert "line 4: messages end with a system turn; a training prompt ends with the user's turn" in text
    assert "line 5: messages[0] has 'tool_calls'" in text
    assert "line 6: messages[0].role is 'robot'" in text
    assert "line 7: `messages` must be a non-empty list" in text
    assert 'line 8: an {"item", "sample"} row (a graded sample) has no prompt' in text
    assert "7 row(s)" in text and "line 1:" not in text
    assert not out.exists()


def test_bad_options_say_what_to_pass(tmp_path: Path) -> None:
    result, _ = export(tmp_path, "nemo")
    assert result.exit_code == 2 and "--trainer 'nemo' is not one of: verl, trl, openrlhf" in result.output
    result = CliRunner().invoke(
        app, ["export", "dataset", str(TRAIN), "--trainer", "trl", "-o", str(tmp_path / "x.csv")]
    )
    assert result.exit_code == 2 and "name a .jsonl or a .parquet file" in result.output
    result = CliRunner().invoke(
        app,
        [
            "export",
            "dataset",
            str(tmp_path / "none.jsonl"),
            "--trainer",
            "trl",
            "-o",
            str(tmp_path / "x.jsonl"),
        ],
    )
    assert result.exit_code == 2 and "no data file at" in result.output
    copy = tmp_path / "train.jsonl"
    copy.write_text(TRAIN.read_text())
    result = CliRunner().invoke(app, ["export", "dataset", str(copy), "--trainer", "trl", "-o", str(copy)])
    assert result.exit_code == 2 and "is the dataset itself" in result.output
    assert copy.read_text() == TRAIN.read_text()


def test_parquet_has_the_same_rows(tmp_path: Path) -> None:
    import importlib.util

    require_or_skip(
        importlib.util.find_spec("pyarrow") is not None, "pyarrow (pip install 'rftgrade[parquet]')"
    )
    import pyarrow.parquet as pq

    result, out = export(tmp_path, "verl", suffix="parquet")
    assert result.exit_code == 0, result.output
    _, jsonl = export(tmp_path, "verl")
    assert pq.read_table(out).to_pylist() == lines(jsonl)


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_rows_are_written_in_batches_and_only_whole(tmp_path: Path, suffix: str) -> None:
    import importlib.util

    if suffix == "parquet":
        require_or_skip(
            importlib.util.find_spec("pyarrow") is not None, "pyarrow (pip install 'rftgrade[parquet]')"
        )
    rows = [
        {"prompt": [{"role": "user", "content": str(i)}], "rftgrade_item": json.dumps({"i": i})}
        for i in range(5)
    ]
    out = tmp_path / f"rows.{suffix}"
    assert write_rows(iter(rows), out, batch=2) == 5
    if suffix == "parquet":
        import pyarrow.parquet as pq

        assert pq.read_table(out).to_pylist() == rows
    else:
        assert lines(out) == rows

    def failing() -> Any:
        yield from rows[:3]
        raise DataError("row 4 broke")

    with pytest.raises(DataError):
        write_rows(failing(), out, batch=2)
    # The file written before is untouched, and no partial file is left beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]
    assert (pq.read_table(out).to_pylist() if suffix == "parquet" else lines(out)) == rows


def test_parquet_without_pyarrow_says_how(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    result, out = export(tmp_path, "verl", suffix="parquet")
    assert result.exit_code == 2
    assert "pip install 'rftgrade[parquet]'" in result.output and "or write .jsonl" in result.output
    assert not out.exists()


GRADER = JOB / "job.json"
ANSWERS = [
    '{"reasoning": "36 - 5", "answer": "31"}',
    '{"reasoning": "60 x 2.5", "answer": "150"}',
    "no",
    "{}",
]


def own_rewards() -> list[float]:
    with Grader(GRADER) as grader:
        return [
            r.reward
            for r in grader.run_batch([{"sample": a, "item": r} for a, r in zip(ANSWERS, ROWS, strict=True)])
        ]


def test_verl_adapter_grades_the_exported_item(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, out = export(tmp_path, "verl")
    rows = lines(out)
    monkeypatch.setenv("RFTGRADE_GRADER", str(GRADER))
    monkeypatch.setattr(verl_adapter, "_STATE", None)
    scores = verl_adapter.compute_score_batch(
        data_sources=[r["data_source"] for r in rows],
        solution_strs=ANSWERS,
        ground_truths=[r["reward_model"]["ground_truth"] for r in rows],
        extra_infos=[r["extra_info"] for r in rows],
    )
    assert [s["score"] for s in scores] == pytest.approx(own_rewards())
    assert scores[0]["score"] == pytest.approx(1.0)  # item.answer and item.key_quantity resolved
    # A text that is not an item's JSON: the row's extra_info is the item, as before.
    row = verl_adapter._row("d", "31", "31", {"rftgrade_item": "not json", "answer": "31"})
    assert row["item"]["answer"] == "31" and row["item"]["rftgrade_item"] == "not json"


def test_trl_adapter_grades_the_exported_item(tmp_path: Path) -> None:
    _, out = export(tmp_path, "trl")
    rows = lines(out)
    rewards = asyncio.run(
        trl_adapter.rftgrade_reward(
            prompts=[r["prompt"] for r in rows],
            completions=ANSWERS,
            source=RewardSource(grader=str(GRADER)),
            failed_reward=0.0,  # "no" and "{}" fail to parse as the JSON answer: 0, as the grader scores them
            rftgrade_item=[r["rftgrade_item"] for r in rows],
        )
    )
    assert rewards == pytest.approx(own_rewards())


def test_openrlhf_label_is_the_exported_item(tmp_path: Path) -> None:
    _, out = export(tmp_path, "openrlhf")
    rows = lines(out)
    columns = openrlhf_columns(ANSWERS, None, [r["item"] for r in rows])
    for item, original in zip(columns.items, ROWS, strict=True):
        assert {k: v for k, v in item.items() if k not in ("prompt", "query")} == original
