"""The Docker Compose command line: `docker compose` (v2) when present, else `docker-compose` (v1.29)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

# Shipped inside the package, so an installed wheel runs the stack without a source checkout.
COMPOSE_FILE = Path(__file__).resolve().parent / "recipes" / "docker-compose.yml"
DEFAULT_PROJECT = "outage-lab"


class ComposeError(RuntimeError):
    """The compose tool is missing or a compose command failed."""


@functools.cache
def compose_command() -> tuple[str, ...]:
    """The compose tool this machine has, v2 first."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return (docker, "compose")
    legacy = shutil.which("docker-compose")
    if legacy:
        return (legacy,)
    raise ComposeError("neither `docker compose` (v2) nor `docker-compose` (v1) is installed")


def project_name() -> str:
    return os.environ.get("OUTAGE_PROJECT", DEFAULT_PROJECT)


def run_compose(
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    capture: bool = False,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one compose command for this project, with its secrets; raise ComposeError when it fails."""
    from harness.stack.credentials import stack_secrets

    project = project_name()
    command = [*compose_command(), "-p", project, "-f", str(COMPOSE_FILE), *args]
    full_env = {**os.environ, **stack_secrets(project).compose_env(), **(env or {})}
    try:
        result = subprocess.run(
            command, env=full_env, text=True, capture_output=capture, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise ComposeError(f"`{' '.join(args)}` did not finish within {timeout:.0f} s") from None
    if result.returncode != 0:
        detail = (result.stderr or "").strip()[-2000:] if capture else "see the output above"
        raise ComposeError(f"`compose {' '.join(args)}` failed (exit {result.returncode}): {detail}")
    return result
