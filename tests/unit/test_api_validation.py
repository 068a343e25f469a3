"""Bad input gets a 4xx with a JSON body that says what is wrong, never a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.common.config import Settings
from services.common.tokens import agent_token
from tests.unit.refusing_redis import RefusingRedis

SETTINGS = Settings(admin_token="the-admin-token", token_secret="the-secret")
ALICE = {"Authorization": f"Bearer {agent_token('alice', SETTINGS.token_secret)}"}
ADMIN = {"Authorization": f"Bearer {SETTINGS.admin_token}"}


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(SETTINGS, redis_client=RefusingRedis()))


def assert_error_body(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def named_fields(body: dict[str, Any]) -> set[str]:
    return {problem["field"] for problem in body["fields"]}


@pytest.mark.parametrize("raw", [b"{", b'{"body": "hi",}', b"not json at all", b'{"body": "hi"'])
def test_malformed_json_is_a_400(client: TestClient, raw: bytes) -> None:
    response = client.post(
        "/tickets/1/messages", content=raw, headers={**ALICE, "Content-Type": "application/json"}
    )
    body = assert_error_body(response, 400, "malformed_json")
    assert "not valid JSON" in body["detail"]


@pytest.mark.parametrize(
    ("path", "payload", "fields"),
    [
        ("/tickets", {}, {"subject", "customer"}),
        ("/tickets", {"subject": "Hi"}, {"customer"}),
        ("/tickets/1/messages", {"id": "k1"}, {"body"}),
        ("/views/inbox/bulk", {}, {"action"}),
    ],
)
def test_missing_fields_are_a_422_naming_each(
    client: TestClient, path: str, payload: dict[str, Any], fields: set[str]
) -> None:
    body = assert_error_body(client.post(path, json=payload, headers=ALICE), 422, "invalid_request")
    assert named_fields(body) == fields
    for field in fields:
        assert field in body["detail"]


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/tickets", {"subject": 5, "customer": "bob@example.com"}, "subject"),
        ("/tickets", {"subject": "Hi", "customer": "bob@example.com", "bot": "yes"}, "bot"),
        ("/tickets", {"subject": "Hi", "customer": "bob@example.com", "bot": 1}, "bot"),
        ("/tickets", {"subject": "Hi", "customer": ["bob@example.com"]}, "customer"),
        ("/tickets/1/messages", {"body": 42}, "body"),
        ("/tickets/1/messages", {"body": "hi", "id": 7}, "id"),
        ("/tickets/1/messages", {"body": None}, "body"),
    ],
)
def test_wrong_types_are_a_422_naming_the_field(
    client: TestClient, path: str, payload: dict[str, Any], field: str
) -> None:
    body = assert_error_body(client.post(path, json=payload, headers=ALICE), 422, "invalid_request")
    assert named_fields(body) == {field}


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/tickets", {"subject": "", "customer": "bob@example.com"}, "subject"),
        ("/tickets", {"subject": "x" * 201, "customer": "bob@example.com"}, "subject"),
        ("/tickets", {"subject": "Hi", "customer": "not an address"}, "customer"),
        ("/tickets", {"subject": "Hi", "customer": "bob@example.com", "view": "in box"}, "view"),
        ("/tickets", {"subject": "Hi", "customer": "bob@example.com", "assignee": "al ice"}, "assignee"),
        ("/tickets/1/messages", {"body": ""}, "body"),
        ("/tickets/1/messages", {"body": "x" * 10_001}, "body"),
        ("/tickets/1/messages", {"body": "hi", "id": ""}, "id"),
        ("/tickets/1/messages", {"body": "hi", "id": "k" * 101}, "id"),
        ("/tickets/1/messages", {"body": "hi", "author": "robot"}, "author"),
        ("/tickets/1/presence", {"action": "peek"}, "action"),
        ("/views/inbox/bulk", {"action": "delete"}, "action"),
        ("/views/inbox/bulk", {"action": "tag"}, "tag"),
    ],
)
def test_out_of_range_values_are_a_422_naming_the_field(
    client: TestClient, path: str, payload: dict[str, Any], field: str
) -> None:
    body = assert_error_body(client.post(path, json=payload, headers=ALICE), 422, "invalid_request")
    assert named_fields(body) == {field}


def test_put_bodies_are_validated_too(client: TestClient) -> None:
    status = client.put("/agents/alice/availability", json={"status": "asleep"}, headers=ALICE)
    assert named_fields(assert_error_body(status, 422, "invalid_request")) == {"status"}
    assignee = client.put("/tickets/1/assignee", json={"agent": ""}, headers=ALICE)
    assert named_fields(assert_error_body(assignee, 422, "invalid_request")) == {"agent"}
    failpoint = client.put("/admin/failpoints/api.latency_ms", json={}, headers=ADMIN)
    assert named_fields(assert_error_body(failpoint, 422, "invalid_request")) == {"value"}


@pytest.mark.parametrize("tickets", [0, 500_001, "100", 10.5])
def test_seeding_asks_for_a_sensible_whole_number_of_tickets(client: TestClient, tickets: Any) -> None:
    response = client.post("/views/inbox/seed", json={"tickets": tickets}, headers=ADMIN)
    assert named_fields(assert_error_body(response, 422, "invalid_request")) == {"tickets"}


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"a message"', b"42"])
def test_a_body_that_is_not_an_object_is_a_422(client: TestClient, raw: bytes) -> None:
    response = client.post(
        "/tickets/1/messages", content=raw, headers={**ALICE, "Content-Type": "application/json"}
    )
    body = assert_error_body(response, 422, "invalid_request")
    assert "JSON object" in body["detail"]


def test_a_missing_body_is_a_422_that_says_so(client: TestClient) -> None:
    response = client.post("/tickets", headers={**ALICE, "Content-Type": "application/json"})
    assert "missing" in assert_error_body(response, 422, "invalid_request")["detail"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/tickets/abc", "ticket_id"),
        ("/tickets/0", "ticket_id"),
        ("/views/no%20spaces/count", "name"),
        ("/agents/alice/conversations?limit=0", "limit"),
        ("/agents/alice/conversations?limit=101", "limit"),
        ("/agents/alice/conversations?cursor=-1", "cursor"),
        ("/agents/alice/conversations?cursor=next", "cursor"),
    ],
)
def test_bad_path_and_query_values_are_a_422_naming_them(client: TestClient, path: str, field: str) -> None:
    body = assert_error_body(client.get(path, headers=ALICE), 422, "invalid_request")
    assert named_fields(body) == {field}


def test_an_unknown_route_is_a_json_404(client: TestClient) -> None:
    body = assert_error_body(client.get("/no/such/route", headers=ALICE), 404, "not_found")
    assert "/no/such/route" in body["detail"]


def test_a_wrong_method_is_a_json_405(client: TestClient) -> None:
    assert_error_body(client.delete("/tickets/1", headers=ALICE), 405, "method_not_allowed")
