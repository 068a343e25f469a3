"""`python -m services.relay`: run the outbox relay with its status server on :9100."""

from __future__ import annotations

import logging
import os
import signal

import redis

from services.common.config import Settings
from services.common.http_status import DEFAULT_PORT, start_status_server
from services.relay.relay import Relay


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # pika logs every connection step, and each refused attempt with a traceback; the service logs
    # every broker failure itself, once, in one line.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    settings = Settings.from_env()
    client = redis.Redis.from_url(
        settings.redis_url, decode_responses=True, socket_timeout=5, socket_connect_timeout=3
    )
    relay = Relay(settings, client)
    start_status_server("relay", settings, port=_status_port(), details=relay.status)
    signal.signal(signal.SIGTERM, lambda *_: relay.stop())
    relay.run()


def _status_port() -> int:
    return int(os.environ.get("STATUS_PORT") or DEFAULT_PORT)


if __name__ == "__main__":
    main()
