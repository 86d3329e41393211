"""The server's dedupe is the core's (:mod:`rftgrade._dedupe`); kept under its old name for imports."""

from rftgrade._dedupe import dedupe_columns, dedupe_rows

__all__ = ["dedupe_columns", "dedupe_rows"]
