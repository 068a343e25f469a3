"""The api's HTTP contract against the running stack.

Bad input is refused with the documented 4xx and a JSON body saying what is wrong, and it
changes nothing; an idempotency key makes a retried message land exactly once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.stack

MAX_BODY_BYTES = 64 * 1024


@pytest.fixture
def agent(outage_stack: Any) -> Iterator[httpx.Client]:
    token = outage_stack.agent_token("contract-agent")
    with httpx.Client(
        base_url=outage_stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as client:
        yield client


@pytest.fixture
def ticket_id(agent: httpx.Client) -> int:
    """A fresh ticket holding one message."""
    created = agent.post("/tickets", json={"subject": "Contract check", "customer": "contract@example.com"})
    assert created.status_code == 201, created.text
    ticket = created.json()
    assert agent.post(f"/tickets/{ticket['id']}/messages", json={"body": "first"}).status_code == 202
    return ticket["id"]


def messages_of(agent: httpx.Client, ticket_id: int) -> list[tuple[str, str]]:
    """The stored messages as (id, body); whether the worker processed them yet does not matter here."""
    response = agent.get(f"/tickets/{ticket_id}")
    assert response.status_code == 200, response.text
    return [(m["id"], m["body"]) for m in response.json()["messages"]]


def assert_refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code
    assert body["detail"]
    return body


def test_health_and_ready_need_no_token(outage_stack: Any) -> None:
    health = httpx.get(f"{outage_stack.api_url}/health", timeout=10)
    assert health.status_code == 200
    assert health.json()["status"] == "alive"
    assert isinstance(health.json()["switches"]["outbox"], bool)
    assert httpx.get(f"{outage_stack.api_url}/ready", timeout=10).status_code == 200
    assert "/tickets" in httpx.get(f"{outage_stack.api_url}/openapi.json", timeout=10).json()["paths"]


def test_a_ticket_round_trips(agent: httpx.Client, ticket_id: int) -> None:
    ticket = agent.get(f"/tickets/{ticket_id}").json()
    assert ticket["id"] == ticket_id
    assert ticket["subject"] == "Contract check"
    assert [m["body"] for m in ticket["messages"]] == ["first"]
    assert isinstance(ticket["messages"][0]["processed"], bool)


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b'{"body": "half', "application/json", 400, "malformed_json"),
        (b"not json", "application/json", 400, "malformed_json"),
        (b'{"body": 42}', "application/json", 422, "invalid_request"),
        (b'{"body": "hi", "id": 7}', "application/json", 422, "invalid_request"),
        (b'{"body": "hi", "author": "robot"}', "application/json", 422, "invalid_request"),
        (b"{}", "application/json", 422, "invalid_request"),
        (b"", "application/json", 422, "invalid_request"),
        (b'["hi"]', "application/json", 422, "invalid_request"),
        (b'{"body": "' + b"x" * MAX_BODY_BYTES + b'"}', "application/json", 413, "body_too_large"),
    ],
    ids=[
        "truncated-json",
        "not-json",
        "body-not-a-string",
        "key-not-a-string",
        "unknown-author",
        "body-missing",
        "no-body",
        "not-an-object",
        "oversized",
    ],
)
def test_a_bad_message_is_refused_and_stores_nothing(
    agent: httpx.Client, ticket_id: int, content: bytes, content_type: str, status: int, code: str
) -> None:
    before = messages_of(agent, ticket_id)
    response = agent.post(
        f"/tickets/{ticket_id}/messages", content=content, headers={"Content-Type": content_type}
    )
    assert_refused(response, status, code)
    assert messages_of(agent, ticket_id) == before


def test_validation_names_the_wrong_field(agent: httpx.Client, ticket_id: int) -> None:
    response = agent.post(f"/tickets/{ticket_id}/messages", json={"body": 42})
    body = assert_refused(response, 422, "invalid_request")
    assert [problem["field"] for problem in body["fields"]] == ["body"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer agent.contract-agent.0000"}, {"Authorization": "Basic abc"}],
    ids=["no-token", "forged-token", "wrong-scheme"],
)
def test_a_message_without_a_valid_token_is_refused_and_stores_nothing(
    outage_stack: Any, agent: httpx.Client, ticket_id: int, headers: dict[str, str]
) -> None:
    before = messages_of(agent, ticket_id)
    response = httpx.post(
        f"{outage_stack.api_url}/tickets/{ticket_id}/messages",
        json={"body": "sneaky"},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json()["error"] in {"missing_token", "invalid_token"}
    assert messages_of(agent, ticket_id) == before


def test_a_bad_ticket_is_refused_and_creates_nothing(agent: httpx.Client) -> None:
    before = agent.get("/views/contract-view/count").json()["count"]
    cases = [
        ({"subject": "Hi"}, 422),
        ({"subject": 5, "customer": "a@example.com", "view": "contract-view"}, 422),
        ({"subject": "Hi", "customer": "not-an-address", "view": "contract-view"}, 422),
        ({"subject": "Hi", "customer": "a@example.com", "view": "contract-view", "bot": "yes"}, 422),
    ]
    for payload, status in cases:
        assert_refused(agent.post("/tickets", json=payload), status, "invalid_request")
    assert agent.get("/views/contract-view/count").json()["count"] == before


def test_an_unknown_ticket_is_a_404(agent: httpx.Client) -> None:
    missing = 10**12
    assert_refused(agent.get(f"/tickets/{missing}"), 404, "not_found")
    assert_refused(agent.post(f"/tickets/{missing}/messages", json={"body": "hi"}), 404, "not_found")
    assert_refused(agent.get("/no/such/route"), 404, "not_found")


def test_admin_routes_refuse_agents(outage_stack: Any, agent: httpx.Client) -> None:
    assert_refused(agent.get("/admin/failpoints"), 403, "forbidden")
    admin = httpx.get(
        f"{outage_stack.api_url}/admin/failpoints",
        headers={"Authorization": f"Bearer {outage_stack.admin_token}"},
        timeout=10,
    )
    assert admin.status_code == 200
    assert "api.latency_ms" in admin.json()["known"]


def test_replaying_an_idempotency_key_returns_the_same_message_and_stores_one(
    agent: httpx.Client, ticket_id: int
) -> None:
    key = f"retry-{uuid.uuid4().hex}"
    first = agent.post(f"/tickets/{ticket_id}/messages", json={"body": "once", "id": key})
    again = agent.post(f"/tickets/{ticket_id}/messages", json={"body": "once, retried", "id": key})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"] == key
    assert first.json()["event_id"] == again.json()["event_id"]
    assert [body for id_, body in messages_of(agent, ticket_id) if id_ == key] == ["once"]


def test_concurrent_retries_of_one_key_store_one_message(agent: httpx.Client, ticket_id: int) -> None:
    key = f"storm-{uuid.uuid4().hex}"

    def send(attempt: int) -> httpx.Response:
        return agent.post(f"/tickets/{ticket_id}/messages", json={"body": f"attempt {attempt}", "id": key})

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, range(16)))
    assert {answer.status_code for answer in answers} == {202}
    assert {answer.json()["event_id"] for answer in answers} == {answers[0].json()["event_id"]}
    assert len([id_ for id_, _ in messages_of(agent, ticket_id) if id_ == key]) == 1
