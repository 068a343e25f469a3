"""Start the api: `python -m services.api` serves on 0.0.0.0:8000."""

from __future__ import annotations

import sys

import uvicorn

from services.api.app import create_app
from services.api.serving import DrainingServer
from services.common.config import Settings, SettingsError

HOST = "0.0.0.0"
PORT = 8000


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"api: cannot start, bad configuration: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings)
    deadline = settings.api_request_deadline_s
    # No access log: load runs send tens of thousands of requests; /metrics counts them instead.
    config = uvicorn.Config(
        app,
        host=HOST,
        port=PORT,
        access_log=False,
        log_level="info",
        # With a deadline, nothing in flight is worth waiting for longer than the deadline.
        timeout_graceful_shutdown=int(deadline + 1) if deadline > 0 else None,
    )
    DrainingServer(config, app.state.context.admission, settings.api_drain_s).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
