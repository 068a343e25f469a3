"""The example Chaos Toolkit experiment, run with the real `chaos` command against the running stack.

Hardened, the steady state holds before and after; with the vulnerable settings (a worker that
acknowledges on delivery) the journal records the deviation: acknowledged messages were lost.
Either way the method injected its faults and the rollbacks left none in place.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.stack.ledger import FaultLedger

pytestmark = [pytest.mark.stack, pytest.mark.chaos]

EXPERIMENT = Path(__file__).resolve().parents[2] / "examples" / "chaostoolkit" / "worker-crash.json"
# A guard against a hung run, not a speed check.
RUN_LIMIT_S = 1200


def _run_experiment(profile: str, place: Path) -> dict[str, Any]:
    journal = place / f"journal-{profile}.json"
    chaos = Path(sys.executable).with_name("chaos")
    command = [
        str(chaos),
        "--no-version-check",
        *("--log-file", str(place / f"chaostoolkit-{profile}.log")),
        "run",
        *("--journal-path", str(journal)),
        *("--var", f"profile={profile}"),
        "--rollback-strategy=always",
        str(EXPERIMENT),
    ]
    result = subprocess.run(
        command, cwd=place, env=os.environ, capture_output=True, text=True, timeout=RUN_LIMIT_S
    )
    assert journal.exists(), result.stdout[-4000:] + result.stderr[-4000:]
    return json.loads(journal.read_text())


def _activity(journal: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in journal["run"] if a["activity"]["name"] == name)


def _assert_faults_injected_then_rolled_back(journal: dict[str, Any], outage_stack) -> None:
    assert journal["steady_states"]["before"]["steady_state_met"] is True
    assert _activity(journal, "slow-downstream")["status"] == "succeeded"
    assert _activity(journal, "the-worker-is-consuming")["status"] == "succeeded"
    assert _activity(journal, "kill-the-worker")["status"] == "succeeded"
    assert _activity(journal, "backlog-on-the-broker")["status"] == "succeeded"
    assert [r["status"] for r in journal["rollbacks"]] == ["succeeded"] * 4
    assert FaultLedger().outstanding() == []
    admin = {"Authorization": f"Bearer {outage_stack.admin_token}"}
    failpoints = httpx.get(f"{outage_stack.api_url}/admin/failpoints", headers=admin, timeout=10).json()
    assert failpoints["failpoints"] == {}
    assert outage_stack.control.status().healthy


def test_hardened_the_steady_state_holds_through_the_crash(outage_stack, tmp_path):
    journal = _run_experiment("hardened", tmp_path)
    assert journal["status"] == "completed", journal["status"]
    assert journal["deviated"] is False
    assert journal["steady_states"]["after"]["steady_state_met"] is True
    _assert_faults_injected_then_rolled_back(journal, outage_stack)


def test_vulnerable_the_journal_records_the_lost_messages(outage_stack, tmp_path):
    journal = _run_experiment("vulnerable", tmp_path)
    assert journal["deviated"] is True
    after = journal["steady_states"]["after"]
    assert after["steady_state_met"] is False
    lost = next(p for p in after["probes"] if p["activity"]["name"] == "no-acknowledged-message-lost")
    assert lost["output"] > 0
    _assert_faults_injected_then_rolled_back(journal, outage_stack)
