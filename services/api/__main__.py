"""Start the api: `python -m services.api` serves on 0.0.0.0:8000."""

from __future__ import annotations

import sys

import uvicorn

from services.api.app import create_app
from services.common.config import Settings, SettingsError

HOST = "0.0.0.0"
PORT = 8000


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"api: cannot start, bad configuration: {exc}", file=sys.stderr)
        return 2
    # No access log: load runs send tens of thousands of requests; /metrics counts them instead.
    uvicorn.run(create_app(settings), host=HOST, port=PORT, access_log=False, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
