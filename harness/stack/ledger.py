"""The fault ledger: every injection is written here before it happens, and marked when reverted.

It is an append-only JSON-lines file, so a harness killed with -9 mid-fault leaves a record that
`outage heal` reads to revert what is still in place.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from harness.stack.state_dir import project_state_dir


def ledger_path() -> Path:
    """One ledger per compose project (in its state folder), so two stacks never heal each other."""
    configured = os.environ.get("OUTAGE_LEDGER")
    return Path(configured) if configured else project_state_dir() / "ledger.jsonl"


class FaultLedger:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or ledger_path()

    def _append(self, entry: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        # One write + fsync per entry: the record must exist before the fault does.
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def record_injection(self, fault: dict[str, Any]) -> str:
        entry_id = uuid.uuid4().hex[:12]
        self._append({"id": entry_id, "op": "inject", "at": time.time(), "pid": os.getpid(), "fault": fault})
        return entry_id

    def record_revert(self, entry_id: str) -> None:
        self._append({"id": entry_id, "op": "revert", "at": time.time()})

    def outstanding(self) -> list[tuple[str, dict[str, Any]]]:
        """Injections without a revert, oldest first."""
        if not self.path.exists():
            return []
        injected: dict[str, dict[str, Any]] = {}
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a kill -9 is not a fault record
            if entry.get("op") == "inject":
                injected[entry["id"]] = entry["fault"]
            elif entry.get("op") == "revert":
                injected.pop(entry.get("id"), None)
        return list(injected.items())
