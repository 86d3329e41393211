"""Evaluate the base model first: sample it N times per row, grade, and judge the dataset.

``rftgrade eval`` is a face over :func:`run_eval`; see docs/eval.md for the files
it writes and how to read the verdict.
"""

from __future__ import annotations

from rftgrade.evaluate._client import SamplingClient, SamplingError, build_sample, request_body
from rftgrade.evaluate._compare import EvalRun, compare_runs, load_run
from rftgrade.evaluate._compare_series import Series, compare_series
from rftgrade.evaluate._data import DataProblem, EvalRow, Record, load_records, read_rows
from rftgrade.evaluate._run import EvalConfig, EvalOutcome, EvalProgress, arun_eval, run_eval
from rftgrade.evaluate._stats import pass_at_k, row_pass_at_k, summarize_rows

__all__ = [
    "DataProblem",
    "EvalConfig",
    "EvalOutcome",
    "EvalProgress",
    "EvalRow",
    "EvalRun",
    "Record",
    "SamplingClient",
    "SamplingError",
    "Series",
    "arun_eval",
    "build_sample",
    "compare_runs",
    "compare_series",
    "load_records",
    "load_run",
    "pass_at_k",
    "read_rows",
    "request_body",
    "row_pass_at_k",
    "run_eval",
    "summarize_rows",
]
