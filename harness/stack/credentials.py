"""The tokens the harness uses against the api and the live server (same secrets as compose)."""

from __future__ import annotations

import os

from services.common.tokens import agent_token as _sign


def admin_token() -> str:
    return os.environ.get("OUTAGE_ADMIN_TOKEN", "outage-admin-token")


def token_secret() -> str:
    return os.environ.get("OUTAGE_TOKEN_SECRET", "outage-lab-secret")


def agent_token(agent: str) -> str:
    return _sign(agent, token_secret())
