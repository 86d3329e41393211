"""rftgrade: OpenAI-compatible graders for reinforcement fine-tuning, run locally.

Load a grader written as OpenAI grader JSON, grade ``(sample, item)`` rows with it,
and get results in OpenAI's ``graders/run`` response shape::

    import rftgrade
    grader = rftgrade.Grader("grader.json", sandbox="auto")  # a sandbox for python graders
    result = grader.run("the model's answer", {"answer": "42"})
    result.reward, result.to_dict()
"""

from __future__ import annotations

from rftgrade._columns import Columns
from rftgrade._exceptions import (
    BackendUnavailableError,
    DataError,
    GraderValidationError,
    Problem,
    RftgradeError,
)
from rftgrade._executors import (
    JudgeExecutor,
    JudgeReply,
    JudgeRequest,
    PythonCall,
    PythonCalls,
    PythonExecutor,
    PythonOutcome,
    PythonProgram,
)
from rftgrade._gc import set_gc_pausing
from rftgrade._grader import Grader, ValidationReport, grader_id, validate
from rftgrade._graders import Runtime
from rftgrade._load import grader_to_dict, load_spec
from rftgrade._reasoning import final_answer
from rftgrade._result import ERROR_FLAGS, GraderErrors, GradeResult, TokenUsage
from rftgrade._runtime import build_runtime
from rftgrade._sample import Sample, make_sample
from rftgrade._specs import (
    GRADER_TYPES,
    LabelModelGrader,
    MultiGrader,
    PythonGrader,
    ScoreModelGrader,
    StringCheckGrader,
    TextSimilarityGrader,
)

__version__ = "0.1.0"

__all__ = [
    "ERROR_FLAGS",
    "GRADER_TYPES",
    "BackendUnavailableError",
    "Columns",
    "DataError",
    "GradeResult",
    "Grader",
    "GraderErrors",
    "GraderValidationError",
    "JudgeExecutor",
    "JudgeReply",
    "JudgeRequest",
    "LabelModelGrader",
    "MultiGrader",
    "Problem",
    "PythonCall",
    "PythonCalls",
    "PythonExecutor",
    "PythonGrader",
    "PythonOutcome",
    "PythonProgram",
    "RftgradeError",
    "Runtime",
    "Sample",
    "ScoreModelGrader",
    "StringCheckGrader",
    "TextSimilarityGrader",
    "TokenUsage",
    "ValidationReport",
    "__version__",
    "build_runtime",
    "final_answer",
    "grader_id",
    "grader_to_dict",
    "load_spec",
    "make_sample",
    "set_gc_pausing",
    "validate",
]
