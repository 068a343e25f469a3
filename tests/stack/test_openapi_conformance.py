"""/openapi.json is the truth: requests generated from it get exactly the answers it documents.

Schemathesis generates valid and invalid requests for every operation from the document alone,
sends them to the running stack through the gateway, and checks every answer: its status code is
documented for that route, its body matches the documented schema (errors included), valid
requests are accepted, invalid ones refused, no 5xx, authentication enforced, `Allow` on 405.
Bounded: a fixed seed and number of examples per operation.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.stack

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES_PER_OPERATION = 20
# A guard against a hung run, not a speed check: the run normally takes a minute or two.
RUN_LIMIT_S = 900


def _conformance_run(api_url: str, token: str, report: Path, *selection: str) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        *("--config-file", str(CONFIG)),
        "run",
        f"{api_url}/openapi.json",
        *("--header", f"Authorization: Bearer {token}"),
        *("--checks", "all"),
        *("--max-examples", str(EXAMPLES_PER_OPERATION)),
        *("--seed", "1"),
        *("--workers", "1"),
        "--no-shrink",
        *("--request-timeout", "30"),
        *("--report", "junit", "--report-junit-path", str(report)),
        *selection,
    ]
    # From the test's own folder: schemathesis keeps a cache of failures where it runs.
    result = subprocess.run(command, cwd=report.parent, capture_output=True, text=True, timeout=RUN_LIMIT_S)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]


def test_every_route_answers_as_documented_to_an_agent(outage_stack, tmp_path):
    """Admin routes are in this run too: for an agent they answer the documented 403."""
    agent = outage_stack.agent_token("conformance-agent")
    _conformance_run(outage_stack.api_url, agent, tmp_path / "agent.xml")


def test_the_admin_routes_answer_as_documented_to_the_admin(outage_stack, tmp_path):
    # Only the `admin`-tagged routes: seeding a view (tag `views`) with the largest documented
    # number of tickets is a load-test fixture, not something to repeat on every run.
    admin = outage_stack.admin_token
    _conformance_run(outage_stack.api_url, admin, tmp_path / "admin.xml", "--include-tag", "admin")
