"""On-call drills, played through the interfaces people use: the `outage` CLI and the board's HTTP.

- An automated responder plays the gorgias-2021 drill: it waits for an alert on the board,
  acknowledges, takes one hint, reads which node stopped last, stops the stuck nodes and starts
  the three in the right order with `outage act`. The drill ends recovered, with a score, and the
  debrief lists those steps.
- A drill nobody repairs ends at its (short) time limit, is healed, and is reported not recovered;
  meanwhile the board is checked in a real headless browser (charts draw, an alert appears, ack
  and hint work) and a screenshot is kept with the test's report.
- A second `drill start` while one runs is refused, and leaves the running drill alone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from faults.broker import GAVE_UP, WAITING
from harness.drill.state import process_alive, read_state
from harness.interfaces.drill_cli import EXIT_USAGE
from harness.stack.compose import project_name

pytestmark = [pytest.mark.stack, pytest.mark.chaos]

OUTAGE = os.path.join(os.path.dirname(sys.executable), "outage")
REPORTS = Path(os.environ.get("OUTAGE_TEST_REPORTS", "reports"))
DRILL_END_TIMEOUT_S = 900  # healing, draining and judging on a loaded machine
BROKER_NODES = ("rabbit1", "rabbit2", "rabbit3")


def outage(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OUTAGE, *args], capture_output=True, text=True, timeout=timeout)


def act(*args: str) -> str:
    finished = outage("act", *args)
    assert finished.returncode == 0, finished.stderr + finished.stdout
    return finished.stdout.strip()


def start_drill(*args: str) -> str:
    """Start a drill; returns the board's URL, as printed for the facilitator."""
    finished = outage("drill", "start", *args, timeout=900)
    assert finished.returncode == 0, finished.stderr + finished.stdout
    assert "Briefing:" in finished.stdout
    match = re.search(r"Board: (http://127\.0\.0\.1:\d+/)", finished.stdout)
    assert match, finished.stdout
    return match.group(1)


def wait_for(condition, what: str, timeout: float = 600, every: float = 2.0) -> Any:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def visible_entries(board: str, seconds: float = 3.0) -> list[dict[str, Any]]:
    """The timeline entries the board's event stream shows (read for a few seconds)."""
    entries: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    with httpx.stream("GET", board + "events", timeout=10) as stream:
        name = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name == "entry":
                entries.append(json.loads(line[6:]))
            if time.monotonic() > deadline:
                break
    return entries


def wait_until_finished() -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        state = read_state() or {}
        return state if state.get("status") == "finished" else None

    state = wait_for(finished, "the drill to end", DRILL_END_TIMEOUT_S, every=5)
    wait_for(lambda: not process_alive(int(state["pid"])), "the drill's process to exit", 120)
    return state


def node_gave_up(node: str) -> bool:
    """The node's log since its latest start says it waited for its peers' tables and gave up."""
    container = f"{project_name()}_{node}_1"
    started = subprocess.run(
        ["docker", "inspect", "--format", "{{.State.StartedAt}}", container], capture_output=True, text=True
    ).stdout.strip()
    logs = subprocess.run(["docker", "logs", "--since", started, container], capture_output=True, text=True)
    text = logs.stdout + logs.stderr
    return bool(WAITING.search(text) and GAVE_UP.search(text))


def broker_states() -> dict[str, str]:
    status = json.loads(outage("status", "--json").stdout)
    return {node: status["services"][node]["state"] for node in BROKER_NODES}


@pytest.fixture
def drill_report(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A report directory kept with the test run's reports; any drill left running is stopped."""
    report_dir = (REPORTS / f"drill-{request.node.name}").resolve()
    shutil.rmtree(report_dir, ignore_errors=True)
    yield report_dir
    state = read_state() or {}
    if state.get("status") != "finished" and process_alive(int(state.get("pid", 0))):
        outage("drill", "stop", timeout=DRILL_END_TIMEOUT_S)


def test_a_responder_recovers_the_queue_cluster_by_hand_and_the_debrief_tells_how(drill_report):
    # Seed 1: the nodes are stopped one by one and the orchestrator starts rabbit1 and rabbit2 again.
    board = start_drill(
        "gorgias-2021-queue-cluster-down", "--seed", "1", "--time-limit", "15m", "--hold", "8s",
        "--min-delay", "3s", "--max-delay", "6s", "--report-dir", str(drill_report),
    )  # fmt: skip
    second = outage("drill", "start", "worker-crash")
    assert second.returncode == EXIT_USAGE and "a drill is already running" in second.stderr
    assert httpx.get(board + "api/status").json()["status"] in ("starting", "running")

    # The board shows an alert: the responder acknowledges, takes a hint, writes down a hypothesis.
    alert = wait_for(lambda: [e for e in visible_entries(board) if e["kind"] == "alert"], "an alert", 300)
    assert "gorgias" not in json.dumps(alert) and "gorgias" not in httpx.get(board + "api/status").text
    assert outage("drill", "ack").stdout.startswith("acknowledged at")
    hint = httpx.post(board + "api/hint", json={}).json()
    assert hint["used"] == 1 and hint["hint"]
    outage("drill", "note", "broker nodes down and the restarted ones wait for their peers' tables")

    # The nodes the orchestrator started wait for their peers and give up, as their logs say.
    wait_for(
        lambda: node_gave_up("rabbit1") and node_gave_up("rabbit2"), "rabbit1 and rabbit2 to give up", 600
    )
    time.sleep(3)  # a person reads the logs before acting
    peers = act("broker-shutdown-peers")
    assert re.search(r"rabbit3: rabbit3(;|$)", peers.strip()), (
        peers
    )  # rabbit3 saw no peer running: it stopped last
    for node, state in broker_states().items():
        if state == "running":
            act("broker-stop", node)
    act("broker-start", "rabbit3")
    act("broker-wait", "rabbit3")
    act("broker-start", "rabbit1")
    act("broker-start", "rabbit2")

    state = wait_until_finished()
    result = state["result"]
    assert result["ended"] == "recovered", state
    summary = json.loads((drill_report / "summary.json").read_text())
    failed = [(c["name"], c["observed"]) for c in summary["checks"] if c["status"] != "passed"]
    assert result["verdict"] == "held", (failed, summary["metrics"].get("machine"))
    assert result["lost"] == 0
    assert 0 < result["score"] <= 90  # one hint taken: 10 points
    durations = result["durations"]
    assert durations["time_to_acknowledge_s"] is not None
    assert durations["time_to_mitigate_s"] <= durations["time_to_recover_s"]

    assert summary["metrics"]["drill"]["score"] == result["score"]
    debrief = (drill_report / "debrief.md").read_text()
    assert "## The drill" in debrief and f"Score {result['score']}/100" in debrief
    steps = debrief.split("### What the responders did", 1)[1].split("###", 1)[0]
    order = ["ack: acknowledged", "hint: hint 1:", "responder-note: broker nodes down",
             "outage act broker-start rabbit3", "outage act broker-start rabbit1",
             "outage act broker-start rabbit2"]  # fmt: skip
    positions = [steps.find(step) for step in order]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), steps
    for name in ("summary.json", "timeline.jsonl", "history.jsonl", "debrief.md", "report.html"):
        assert (drill_report / name).exists(), name
    assert outage("status").returncode == 0


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def _board_in_browser(board: str, screenshot: Path) -> None:
    """Charts draw, an alert appears when it fires, ack and hint work; a screenshot is kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser, driver_path = _chromium()  # type: ignore[misc]
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get(board)
        wait = WebDriverWait(driver, 300, poll_frequency=1)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#charts .main-svg")) >= 4)
        # A drawn line is a path with points in it.
        line = "document.querySelector('#chart-traffic .scatterlayer path.js-line')"
        wait.until(
            lambda d: d.execute_script(f"return {line} !== null && {line}.getAttribute('d').length > 20")
        )
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#alerts li"))
        assert "alert" in driver.find_element(By.CSS_SELECTOR, "#alerts li").text
        driver.find_element(By.ID, "ack").click()
        wait.until(lambda d: not d.find_element(By.ID, "ack").is_enabled())
        driver.find_element(By.ID, "hint-button").click()
        wait.until(lambda d: d.find_element(By.ID, "hint").text.startswith("Hint 1:"))
        wait.until(
            lambda d: any(
                "acknowledged by board" in e.text for e in d.find_elements(By.CSS_SELECTOR, "#entries li")
            )
        )
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(screenshot))
    finally:
        driver.quit()


def test_a_drill_nobody_repairs_ends_at_its_time_limit_healed_and_not_recovered_and_its_board_works(
    drill_report,
):
    board = start_drill(
        "worker-crash", "--seed", "3", "--time-limit", "75s", "--hold", "10s",
        "--min-delay", "3s", "--max-delay", "5s", "--report-dir", str(drill_report),
    )  # fmt: skip
    screenshot = drill_report / "board.png"
    if _chromium() is None:
        board_checked = "skipped: Debian's chromium and chromium-driver are not installed (make setup)"
    else:
        _board_in_browser(board, screenshot)
        board_checked = str(screenshot)

    state = wait_until_finished()
    result = state["result"]
    assert result["ended"] == "time-limit", state
    assert result["score"] == 0
    assert result["durations"]["time_to_recover_s"] is None
    debrief = (drill_report / "debrief.md").read_text()
    assert "**not recovered**: the time limit was reached and the harness healed the stack" in debrief
    repairs = debrief.split("What the harness had to do after the responders", 1)[1].split("###", 1)[0]
    assert "- the harness reverted" in repairs or "- the harness repaired" in repairs, repairs
    assert outage("status").returncode == 0, "the harness healed the stack"
    assert (drill_report / "report.html").exists()
    if _chromium() is None:
        pytest.skip(f"the board's browser check was {board_checked}")
    assert screenshot.exists() and screenshot.stat().st_size > 10_000
