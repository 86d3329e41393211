"""Which isolation a python grader gets when its JSON does not say.

``worker`` isolation (one process grades every sample) is fast and safe for a
grader that only computes on its inputs. A grader that runs code it did not come
with (``exec``/``eval`` of the model's answer, a subprocess running a file the
sample wrote) lets one sample change how later ones are graded in a shared
process: such graders get ``sample`` isolation (a fresh fork per sample). The
check reads the source with :mod:`ast`; it errs towards ``sample``.
"""

from __future__ import annotations

import ast
from typing import NamedTuple

__all__ = ["IsolationChoice", "choose_isolation"]

# Calls that run code given to them (names as written: `eval(...)`, `os.system(...)`).
_RUNNERS = frozenset({"exec", "eval", "compile"})
_MODULES = frozenset({"subprocess", "ctypes", "multiprocessing", "runpy", "pty", "cffi"})
_ATTRS = frozenset(
    {
        "system",
        "popen",
        "execv",
        "execve",
        "execl",
        "execlp",
        "execvp",
        "execvpe",
        "spawnv",
        "spawnl",
        "posix_spawn",
        "posix_spawnp",
        "fork",
        "run_path",
        "run_module",
        "exec_module",
        "load_module",
    }
)


class IsolationChoice(NamedTuple):
    isolation: str
    """``"worker"`` or ``"sample"``."""
    reason: str
    """Why, in a line: names the construct and its line, or says none was found."""


def choose_isolation(source: str) -> IsolationChoice:
    """``sample`` when the source runs code it did not come with, else ``worker``."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return IsolationChoice("sample", "the source does not parse here, so it cannot be checked")
    for node in ast.walk(tree):
        found = _runs_code(node)
        if found is not None:
            line = getattr(node, "lineno", 0)
            return IsolationChoice("sample", f"line {line}: {found} runs code the grader did not come with")
    return IsolationChoice("worker", "the source runs no code it did not come with")


def _runs_code(node: ast.AST) -> str | None:
    if isinstance(node, ast.Import | ast.ImportFrom):
        names = [alias.name for alias in node.names]
        module = node.module if isinstance(node, ast.ImportFrom) else None
        for name in [module or "", *names]:
            if name.split(".")[0] in _MODULES:
                return f"importing {name}"
            if isinstance(node, ast.ImportFrom) and module in ("os", "posix") and name in _ATTRS:
                return f"os.{name}"
        return None
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Name):
        if func.id in _RUNNERS:
            return f"{func.id}()"
        if func.id in ("import_module", "__import__") and not _constant(node):
            return f"{func.id}() of a computed name"
    elif isinstance(func, ast.Attribute):
        if func.attr in _ATTRS:
            return f".{func.attr}()"
        if func.attr in ("exec", "eval"):  # builtins.exec, not re.compile
            return f".{func.attr}()"
        if func.attr == "import_module" and not _constant(node):
            return "importlib.import_module() of a computed name"
    return None


def _constant(call: ast.Call) -> bool:
    return bool(call.args) and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)
