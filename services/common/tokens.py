"""Bearer tokens: agent tokens are signed with a shared secret, the admin token is separate."""

from __future__ import annotations

import hashlib
import hmac
import re

AGENT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def agent_token(agent: str, secret: str) -> str:
    if not AGENT_NAME.match(agent):
        raise ValueError(f"agent name {agent!r} must be 1-64 letters, digits, '_', '.' or '-'")
    signature = hmac.new(secret.encode(), f"agent:{agent}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"agent.{agent}.{signature}"


def agent_from_token(token: str, secret: str) -> str | None:
    """The agent a token belongs to, or None when the token is not valid."""
    parts = token.split(".")
    if len(parts) < 3 or parts[0] != "agent":
        return None
    agent = ".".join(parts[1:-1])
    try:
        expected = agent_token(agent, secret)
    except ValueError:
        return None
    return agent if hmac.compare_digest(expected, token) else None
