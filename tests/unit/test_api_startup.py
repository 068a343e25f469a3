"""A bad environment stops the api at start-up with a clear message instead of a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_bad_switch_value_exits_non_zero_naming_the_variable() -> None:
    env = {**os.environ, "OUTBOX": "maybe"}
    result = subprocess.run(
        [sys.executable, "-m", "services.api"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0
    assert "OUTBOX='maybe'" in result.stderr
    assert "Traceback" not in result.stderr
