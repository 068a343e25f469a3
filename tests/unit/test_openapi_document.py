"""/openapi.json documents every answer a route can give, and the constraints the api enforces."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.api.models import NewTicket
from services.api.routes.agents import MAX_CURSOR
from services.common.config import Settings
from services.common.tokens import agent_token
from tests.unit.refusing_redis import RefusingRedis

SETTINGS = Settings(admin_token="the-admin-token", token_secret="the-secret")
ALICE = {"Authorization": f"Bearer {agent_token('alice', SETTINGS.token_secret)}"}
ERROR_BODY = "#/components/schemas/ErrorBody"
PROBES = {"/health", "/ready", "/metrics"}


@pytest.fixture(scope="module")
def app():
    return create_app(SETTINGS, redis_client=RefusingRedis())


@pytest.fixture(scope="module")
def document(app):
    return app.openapi()


def operations(document):
    for path, by_method in document["paths"].items():
        for method, operation in by_method.items():
            yield path, method, operation


def error_schema(operation, status: str) -> str:
    return operation["responses"][status]["content"]["application/json"]["schema"]["$ref"]


def test_every_authenticated_route_documents_its_refusals_with_the_error_body(document):
    for path, method, operation in operations(document):
        if path in PROBES:
            continue
        assert operation["security"], f"{method} {path} does not say it needs a token"
        for status in ("401", "422", "500", "503"):
            assert error_schema(operation, status) == ERROR_BODY, f"{method} {path} {status}"


def test_routes_with_a_body_document_malformed_json_and_the_size_limit(document):
    for path, method, operation in operations(document):
        if "requestBody" in operation:
            assert {"400", "413"} <= set(operation["responses"]), f"{method} {path}"


def test_routes_that_look_a_ticket_up_document_404(document):
    for path, method, operation in operations(document):
        if "{ticket_id}" in path:
            assert error_schema(operation, "404") == ERROR_BODY, f"{method} {path}"


def test_no_route_documents_the_frameworks_validation_error(document):
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_the_customer_is_documented_as_an_email_address(document):
    customer = document["components"]["schemas"]["NewTicket"]["properties"]["customer"]
    assert customer["format"] == "email"
    assert customer["pattern"]


@pytest.mark.parametrize("address", ["bob@example.com", "a.b+c@mail.example.org", "x@localhost"])
def test_addresses_are_accepted(address):
    assert NewTicket(subject="Hi", customer=address).customer == address


@pytest.mark.parametrize(
    "address", ["not an address", "Þ¢@v", "a..b@example.com", "a@-example.com", "x" * 65 + "@example.com"]
)
def test_what_is_no_email_address_is_refused(address):
    with pytest.raises(ValueError, match="email address"):
        NewTicket(subject="Hi", customer=address)


def test_a_wrong_method_is_answered_with_every_method_the_path_serves(app):
    client = TestClient(app)
    response = client.options("/admin/failpoints/worker.pause", headers={"Authorization": "Bearer x"})
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, PUT"
    assert response.json()["error"] == "method_not_allowed"


def test_a_cursor_beyond_any_list_is_refused_before_it_reaches_the_store(app):
    client = TestClient(app)
    response = client.get(f"/agents/alice/conversations?cursor={MAX_CURSOR + 1}", headers=ALICE)
    assert response.status_code == 422
    assert response.json()["fields"][0]["field"] == "cursor"
