"""Judge reply caches: in memory (LRU), optionally backed by a SQLite file on disk."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path

from rftgrade._executors import JudgeReply
from rftgrade._result import TokenUsage

__all__ = ["ReplyCache"]


class ReplyCache:
    """Replies keyed by :meth:`JudgeRequest.cache_key` (model, rendered messages, params)."""

    def __init__(self, max_items: int = 100_000, path: str | Path | None = None) -> None:
        self.max_items = max_items
        self._memory: OrderedDict[str, JudgeReply] = OrderedDict()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._db = sqlite3.connect(str(path), check_same_thread=False)
            self._db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, reply TEXT NOT NULL)")
            self._db.commit()

    def get(self, key: str) -> JudgeReply | None:
        with self._lock:
            reply = self._memory.get(key)
            if reply is not None:
                self._memory.move_to_end(key)
                return reply
            if self._db is None:
                return None
            row = self._db.execute("SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        usage = data.pop("usage", None)
        reply = JudgeReply(**data, usage=TokenUsage(**usage) if usage else None)
        self._remember(key, reply)
        return reply

    def put(self, key: str, reply: JudgeReply) -> None:
        if reply.server_error is not None:
            return  # failures are never cached: the next try may succeed
        self._remember(key, reply)
        if self._db is not None:
            with self._lock:
                self._db.execute(
                    "INSERT OR REPLACE INTO replies VALUES (?, ?)", (key, json.dumps(asdict(reply)))
                )
                self._db.commit()

    def _remember(self, key: str, reply: JudgeReply) -> None:
        with self._lock:
            self._memory[key] = reply
            self._memory.move_to_end(key)
            while len(self._memory) > self.max_items:
                self._memory.popitem(last=False)

    def __len__(self) -> int:
        return len(self._memory)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
