"""`python -m services.relay`: run the outbox relay with its status server on :9100."""

from __future__ import annotations

import logging
import signal

import redis

from services.common.config import Settings
from services.common.http_status import start_status_server
from services.relay.relay import Relay


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    client = redis.Redis.from_url(
        settings.redis_url, decode_responses=True, socket_timeout=5, socket_connect_timeout=3
    )
    relay = Relay(settings, client)
    start_status_server("relay", settings, relay.status)
    signal.signal(signal.SIGTERM, lambda *_: relay.stop())
    relay.run()


if __name__ == "__main__":
    main()
