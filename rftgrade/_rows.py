"""Dataset rows in the shapes users have: rftgrade's ``{item, sample}`` and OpenAI's RFT rows.

An OpenAI RFT dataset row (the format AWS Nova RFT also takes) is
``{"messages": [...], "reference_answer": ..., ...}``: the whole row is the
``item`` OpenAI's graders see, ``messages`` included. Its sample is the row's
``"sample"`` (text or an OpenAI sample object), its ``"samples"`` (a list, for
group checks), or, as AWS Nova sends it, a final ``assistant`` message appended
to ``messages`` (then the item's ``messages`` stop before it, as in the dataset).
"""

from __future__ import annotations

from typing import Any

from rftgrade._exceptions import DataError

__all__ = ["NO_SAMPLE_HINT", "checked_tools", "is_rft_row", "split_group", "split_row"]

NO_SAMPLE_HINT = (
    'add the model\'s answer as `"sample": "text"` (or an OpenAI sample object such as '
    '{"output_text": ...}), or append it to `messages` as a final {"role": "assistant", "content": ...} '
    "turn; to sample a model for every row instead, run `rftgrade eval GRADER DATA --model NAME --out DIR`"
)


def is_rft_row(data: dict[str, Any]) -> bool:
    """An OpenAI RFT dataset row: ``messages`` at the top, no ``item`` wrapper."""
    return "item" not in data and "messages" in data


def _final_assistant(messages: Any) -> dict[str, Any] | None:
    if isinstance(messages, list) and messages:
        last = messages[-1]
        if isinstance(last, dict) and last.get("role") == "assistant":
            return last
    return None


def split_row(data: dict[str, Any]) -> tuple[dict[str, Any], Any | None]:
    """``(item, sample)`` of one row; ``sample`` is ``None`` when the row has none.

    Raises:
        DataError: ``item`` is present but not an object.
    """
    if not is_rft_row(data):
        item = data.get("item", {})
        if not isinstance(item, dict):
            raise DataError(f"`item` must be a JSON object, got {type(item).__name__}")
        return item, data.get("sample")
    if "sample" in data:
        item = {k: v for k, v in data.items() if k not in ("sample", "samples")}
        return item, data["sample"]
    answer = _final_assistant(data.get("messages"))
    if answer is not None:
        item = {k: v for k, v in data.items() if k != "samples"}
        item["messages"] = data["messages"][:-1]
        return item, answer
    return {k: v for k, v in data.items() if k != "samples"}, None


def split_group(data: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """``(item, samples)`` of a row holding several samples of one prompt (``samples``).

    A row with one sample (any form :func:`split_row` reads) is a group of one.

    Raises:
        DataError: the row has no sample, or ``samples`` is not a list.
    """
    if "samples" in data:
        samples = data["samples"]
        if not isinstance(samples, list) or not samples:
            raise DataError('`samples` must be a non-empty list of samples (text or {"output_text": ...})')
        if "item" in data and not is_rft_row(data):
            item = data["item"]
            if not isinstance(item, dict):
                raise DataError(f"`item` must be a JSON object, got {type(item).__name__}")
            return item, samples
        return {k: v for k, v in data.items() if k not in ("sample", "samples")}, samples
    item, sample = split_row(data)
    if sample is None:
        raise DataError(f"row has no sample: {NO_SAMPLE_HINT}")
    return item, [sample]


def checked_tools(tools: Any) -> list[dict[str, Any]]:
    """``tools`` (an RFT row's) if it is a list of tool objects.

    Raises:
        DataError: naming the entry that is not one.
    """
    if not isinstance(tools, list):
        raise DataError(f"`tools` must be a list of tools, got {type(tools).__name__}")
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise DataError(
                f'tools[{i}] is a {type(tool).__name__}; a tool is {{"type": "function", "function": '
                '{"name", "description", "parameters"}}'
            )
    return tools
