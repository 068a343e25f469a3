"""Container health check: exit 0 when the URL answers 200 within the timeout."""

import sys
import urllib.request


def main() -> int:
    url = sys.argv[1]
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 0 if response.status == 200 else 1
    except Exception:  # any failure means unhealthy
        return 1


if __name__ == "__main__":
    sys.exit(main())
