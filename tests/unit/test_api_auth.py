"""Who may call what: agent tokens, the admin token, and refusals that happen before any work."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.common.config import Settings
from services.common.tokens import agent_token
from tests.unit.refusing_redis import RefusingRedis

SETTINGS = Settings(admin_token="the-admin-token", token_secret="the-secret")


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(SETTINGS, redis_client=RefusingRedis()))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ALICE = bearer(agent_token("alice", SETTINGS.token_secret))
ADMIN = bearer(SETTINGS.admin_token)


def test_health_needs_no_token_and_reports_the_switches(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "alive", "service": "api", "switches": SETTINGS.switches()}


def test_a_request_without_a_token_is_refused_with_401(client: TestClient) -> None:
    response = client.post("/tickets", json={"subject": "Hi", "customer": "bob@example.com"})
    assert response.status_code == 401
    assert response.json()["error"] == "missing_token"
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {agent_token('alice', 'another-secret')}",  # signed with someone else's secret
        f"Bearer {agent_token('alice', SETTINGS.token_secret)[:-1]}0",  # tampered signature
        "Bearer agent.alice",
        "Bearer not-a-token",
        f"Basic {SETTINGS.admin_token}",  # right secret, wrong scheme
        "Bearer",
    ],
)
def test_a_wrong_token_is_refused_with_401(client: TestClient, header: str) -> None:
    response = client.get("/tickets/1", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_authentication_comes_before_reading_the_body(client: TestClient) -> None:
    # An unauthenticated caller learns nothing about what the body should look like.
    response = client.post(
        "/tickets/1/messages", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401


@pytest.mark.parametrize("headers", [ALICE, ADMIN], ids=["agent", "admin"])
def test_agent_routes_accept_agent_and_admin_tokens(client: TestClient, headers: dict[str, str]) -> None:
    # Past authentication, the request reaches validation (and is refused there, before Redis).
    response = client.post("/tickets", json={"subject": ""}, headers=headers)
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/admin/failpoints", None),
        ("PUT", "/admin/failpoints/api.latency_ms", {"value": 100}),
        ("DELETE", "/admin/failpoints/api.latency_ms", None),
        ("POST", "/views/inbox/seed", {"tickets": 10}),
    ],
)
def test_admin_routes_refuse_agents_with_403_and_strangers_with_401(
    client: TestClient, method: str, path: str, body: dict | None
) -> None:
    as_agent = client.request(method, path, json=body, headers=ALICE)
    assert as_agent.status_code == 403
    assert as_agent.json()["error"] == "forbidden"
    anonymous = client.request(method, path, json=body)
    assert anonymous.status_code == 401


def test_an_agent_cannot_set_another_agents_availability(client: TestClient) -> None:
    response = client.put("/agents/bob/availability", json={"status": "away"}, headers=ALICE)
    assert response.status_code == 403
    assert "bob" in response.json()["detail"]


def test_openapi_documents_bearer_auth(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "/tickets/{ticket_id}/messages" in schema["paths"]
