"""The drill board's HTTP API, served for a drill that has not reached the stack yet (no Docker).

What responders send is recorded in the drill's timeline; what they are shown never names the
scenario; bad input is a 4xx with a JSON body that says why.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from faults.scenarios.gorgias_2021_queue_cluster_down import QueueClusterDown
from harness.drill.board import BoardServer
from harness.drill.engine import DrillOptions, DrillSession, fault_delay


@pytest.fixture
def board(tmp_path: Path) -> Iterator[tuple[str, DrillSession]]:
    session = DrillSession(QueueClusterDown(), None, DrillOptions(seed=7), tmp_path)  # type: ignore[arg-type]
    server = BoardServer(session)
    server.start()
    yield server.url, session
    server.close()


def test_the_board_page_and_its_bundled_charts_are_served_offline(board):
    url, _ = board
    page = httpx.get(url).text
    assert '<script src="/static/plotly.min.js">' in page and "http" not in page.split("<body>")[0]
    assert len(httpx.get(url + "static/plotly.min.js").content) > 1_000_000
    assert "class OutageCharts" in httpx.get(url + "static/charts.js").text


def test_the_status_shows_the_briefing_and_never_the_scenario(board):
    url, _ = board
    status = httpx.get(url + "api/status").json()
    assert status["briefing"] == QueueClusterDown.drill.briefing
    assert QueueClusterDown.id not in json.dumps(status) and "gorgias" not in json.dumps(status).lower()


def test_an_acknowledgement_is_recorded_once(board):
    url, session = board
    first = httpx.post(url + "api/ack", json={"who": "ana"}).json()
    again = httpx.post(url + "api/ack", json={"who": "bo"}).json()
    assert first["already"] is False and again["already"] is True and again["t"] == first["t"]
    assert [e.message for e in session.run.timeline.events("ack")] == ["acknowledged by ana"]


def test_hints_come_in_order_at_a_cost_until_none_is_left(board):
    url, session = board
    hints = QueueClusterDown.drill.hints
    replies = [httpx.post(url + "api/hint").json() for _ in range(len(hints) + 1)]
    assert [r["hint"] for r in replies] == [*hints, None]
    assert replies[0]["cost"] == 10 and replies[-1]["left"] == 0
    assert session.story.hints_used == len(hints)


def test_a_note_over_4_kib_or_empty_is_refused_and_not_recorded(board):
    url, session = board
    too_long = httpx.post(url + "api/note", json={"text": "é" * 2049})
    empty = httpx.post(url + "api/note", json={"text": "   "})
    assert too_long.status_code == 422 and "at most 4096 bytes; this one is 4098" in too_long.json()["detail"]
    assert empty.status_code == 422
    assert session.run.timeline.events("responder-note") == []
    assert httpx.post(url + "api/note", json={"text": "x" * 4096}).status_code == 200


def test_malformed_json_and_unknown_routes_are_4xx_with_a_reason(board):
    url, _ = board
    malformed = httpx.post(
        url + "api/note", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400 and malformed.json()["error"] == "malformed_json"
    assert httpx.post(url + "api/reboot").status_code == 404
    assert httpx.get(url + "api/secret").status_code == 404


def test_the_event_stream_sends_status_and_the_responders_entries(board):
    url, _ = board
    httpx.post(url + "api/note", json={"text": "checking the broker"})
    seen: list[str] = []
    with httpx.stream("GET", url + "events", timeout=10) as stream:
        for line in stream.iter_lines():
            seen.append(line)
            if "checking the broker" in line:
                break
    assert "event: status" in seen and "event: entry" in seen


def test_the_fault_delay_is_drawn_from_the_seed_within_its_bounds():
    options = DrillOptions(seed=11, min_delay_s=10, max_delay_s=60)
    assert fault_delay(options) == fault_delay(DrillOptions(seed=11, min_delay_s=10, max_delay_s=60))
    assert 10 <= fault_delay(options) <= 60
    assert len({fault_delay(DrillOptions(seed=s)) for s in range(20)}) > 1
