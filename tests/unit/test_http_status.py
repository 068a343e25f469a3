"""The /health document of the relay and the worker."""

from services.common.config import Settings
from services.common.http_status import health_body


def test_health_names_the_service_its_switches_and_details():
    body = health_body("relay", Settings(), lambda: {"outbox_length": 3})
    assert body["status"] == "alive"
    assert body["service"] == "relay"
    assert body["switches"]["publisher_confirms"] is True
    assert body["details"] == {"outbox_length": 3}


def test_health_still_answers_when_the_details_fail():
    def broken() -> dict:
        raise ConnectionError("redis is down")

    body = health_body("worker", Settings(), broken)
    assert body["status"] == "alive"
    assert "redis is down" in body["details"]["error"]
