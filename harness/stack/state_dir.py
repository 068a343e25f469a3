"""Where the harness keeps a stack's state: its secrets and its fault ledger.

A fixed place per user, never relative to the current directory, so `outage` run from anywhere
and a pytest session in any checkout find the same stack's state: `$OUTAGE_STATE_DIR`, else
`$XDG_STATE_HOME/outage-lab`, else `~/.local/state/outage-lab`; one folder per compose project,
readable by its owner only.
"""

from __future__ import annotations

import os
from pathlib import Path

OWNER_ONLY_DIR = 0o700


def state_root() -> Path:
    configured = os.environ.get("OUTAGE_STATE_DIR")
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state"
    return base / "outage-lab"


def project_state_dir(project: str | None = None) -> Path:
    """The compose project's own folder (created owner-only on first use)."""
    from harness.stack.compose import project_name

    folder = state_root() / (project or project_name())
    folder.mkdir(parents=True, exist_ok=True, mode=OWNER_ONLY_DIR)
    os.chmod(folder, OWNER_ONLY_DIR)  # mkdir's mode is filtered by the umask
    return folder
