"""Where a drill lives between commands: `drill/` in the stack's state folder (harness/stack/state_dir.py).

`state.json` is what responders may read (the board's address, the briefing, the clock, how it
ended); `facilitator.json` holds what they must not see until `outage drill reveal` (the scenario,
its profile and seed, the runbook). The drill's daemon writes both; the other commands read
them and talk to the daemon over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from harness.stack.state_dir import project_state_dir

STATE_FILE = "state.json"
FACILITATOR_FILE = "facilitator.json"
LOG_FILE = "daemon.log"


class NoDrill(RuntimeError):
    """No drill is running."""


def drill_dir() -> Path:
    return project_state_dir() / "drill"


def _read(name: str) -> dict[str, Any] | None:
    try:
        return json.loads((drill_dir() / name).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _write(name: str, content: dict[str, Any]) -> None:
    folder = drill_dir()
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{name}.partial"
    partial.write_text(json.dumps(content, indent=2, default=str) + "\n")
    partial.replace(folder / name)  # readers never see half a file


def read_state() -> dict[str, Any] | None:
    return _read(STATE_FILE)


def write_state(state: dict[str, Any]) -> None:
    _write(STATE_FILE, state)


def read_facilitator() -> dict[str, Any] | None:
    return _read(FACILITATOR_FILE)


def write_facilitator(secret: dict[str, Any]) -> None:
    _write(FACILITATOR_FILE, secret)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not running.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def running_state() -> dict[str, Any] | None:
    """The state of the drill whose daemon is alive and has not finished; None when there is none."""
    state = read_state()
    if state is None or state.get("status") == "finished":
        return None
    if not process_alive(int(state.get("pid", 0))):
        return None
    return state


def require_running() -> dict[str, Any]:
    state = running_state()
    if state is None:
        raise NoDrill("no drill is running (start one with `outage drill start`)")
    if not state.get("url"):
        raise NoDrill("the drill is still starting; try again in a moment")
    return state
