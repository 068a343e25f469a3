"""Each stack's own secrets: the admin token, the agent-token secret, the broker login, the Erlang cookie.

They are generated for a compose project the first time it is brought up and kept in
`<state dir>/<project>/secrets.json` (harness/stack/state_dir.py), owner-only. The CLI, the pytest
plugin and the faults read them from there; the services get them through the compose environment.
They are forgotten with the stack's volumes (`outage down --volumes`), since the broker keeps its
login in its volumes.

A stack whose volumes predate per-stack secrets keeps the well-known values it was created with, so
it keeps working; `outage up` says how to recreate it with its own.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.stack.state_dir import project_state_dir
from services.common.tokens import agent_token as _sign

OWNER_ONLY_FILE = 0o600
SECRETS_FILE = "secrets.json"


@dataclass(frozen=True)
class StackSecrets:
    admin_token: str
    token_secret: str
    broker_user: str
    broker_password: str
    erlang_cookie: str
    legacy: bool = False  # the well-known values of a stack created before per-stack secrets

    def compose_env(self) -> dict[str, str]:
        """The variables compose/docker-compose.yml hands to the services."""
        return {
            "OUTAGE_ADMIN_TOKEN": self.admin_token,
            "OUTAGE_TOKEN_SECRET": self.token_secret,
            "OUTAGE_BROKER_USER": self.broker_user,
            "OUTAGE_BROKER_PASSWORD": self.broker_password,
            "OUTAGE_ERLANG_COOKIE": self.erlang_cookie,
        }


# What every stack shared before secrets were generated per project.
LEGACY_SECRETS = StackSecrets(
    admin_token="outage-admin-token",
    token_secret="outage-lab-secret",
    broker_user="outage",
    broker_password="outage",
    erlang_cookie="outage-lab-cookie",
    legacy=True,
)


def generate_secrets() -> StackSecrets:
    # Hex only: the values go through sed into rabbitmq.conf and into HTTP headers unquoted.
    return StackSecrets(
        admin_token=secrets.token_hex(32),
        token_secret=secrets.token_hex(32),
        broker_user=f"outage-{secrets.token_hex(4)}",
        broker_password=secrets.token_hex(24),
        erlang_cookie=secrets.token_hex(32).upper(),
    )


class SecretsFileError(RuntimeError):
    """The secrets file is unreadable, malformed or readable by others."""


def read_secrets(path: Path) -> StackSecrets:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SecretsFileError(
            f"{path} is readable by others (mode {mode:o}): `chmod 600 {path}` or delete it and recreate "
            "the stack (`outage down --volumes && outage up`)"
        )
    try:
        return StackSecrets(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise SecretsFileError(f"{path} is not a secrets file this version understands: {exc}") from None


def _write_new(path: Path, values: StackSecrets) -> bool:
    """Create the file owner-only with these values; False when another process created it first."""
    fd, staging = tempfile.mkstemp(dir=path.parent, prefix=".secrets-")  # mkstemp makes it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(values), handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(staging, path)  # atomic and never overwrites: the first writer wins
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(staging)


def load_or_create(path: Path, predates_secrets: Callable[[], bool] = lambda: False) -> StackSecrets:
    """The secrets in `path`, created on first use: generated, or the legacy values for an old stack."""
    if not path.exists():
        fresh = LEGACY_SECRETS if predates_secrets() else generate_secrets()
        _write_new(path, fresh)
    return read_secrets(path)


def _volumes_predate_secrets(project: str) -> bool:
    """Does this project already have broker volumes (made before it had a secrets file)?"""
    import docker
    import docker.errors

    try:
        client = docker.from_env()
        client.volumes.get(f"{project}_rabbit1-data")
    except docker.errors.NotFound:
        return False
    except docker.errors.DockerException:
        return False  # no engine: nothing can predate anything
    return True


def secrets_path(project: str | None = None) -> Path:
    return project_state_dir(project) / SECRETS_FILE


def stack_secrets(project: str | None = None) -> StackSecrets:
    """This project's secrets, generated on first use."""
    from harness.stack.compose import project_name

    name = project or project_name()
    return load_or_create(secrets_path(name), lambda: _volumes_predate_secrets(name))


def forget_secrets(project: str | None = None) -> None:
    """Called with the volumes' removal: the next `up` generates new secrets."""
    secrets_path(project).unlink(missing_ok=True)


def warn_if_legacy(values: StackSecrets, project: str) -> None:
    if values.legacy:
        print(
            f"outage: stack {project} was created before per-stack secrets and keeps the well-known "
            f"admin token and broker login; `outage down --volumes && outage up` recreates it with its "
            f"own (its data is lost)",
            file=sys.stderr,
        )


def admin_token() -> str:
    return stack_secrets().admin_token


def token_secret() -> str:
    return stack_secrets().token_secret


def broker_login() -> tuple[str, str]:
    """User and password for the broker's AMQP and management API."""
    values = stack_secrets()
    return values.broker_user, values.broker_password


def agent_token(agent: str) -> str:
    return _sign(agent, token_secret())
