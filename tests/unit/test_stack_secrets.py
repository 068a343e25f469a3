"""Each stack gets its own secrets on first use, kept owner-only at a fixed place, and reused."""

from __future__ import annotations

import os
import stat

import pytest

from harness.stack import credentials
from harness.stack.credentials import (
    LEGACY_SECRETS,
    SecretsFileError,
    generate_secrets,
    load_or_create,
    secrets_path,
    stack_secrets,
)
from harness.stack.ledger import ledger_path


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("OUTAGE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("OUTAGE_LEDGER", raising=False)
    # No Docker engine is asked: these stacks have no volumes from before.
    monkeypatch.setattr(credentials, "_volumes_predate_secrets", lambda project: False)
    return tmp_path / "state"


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_two_generations_share_no_secret():
    first, second = generate_secrets(), generate_secrets()
    for name in ("admin_token", "token_secret", "broker_user", "broker_password", "erlang_cookie"):
        assert getattr(first, name) != getattr(second, name)
        assert getattr(first, name) != getattr(LEGACY_SECRETS, name)


def test_first_use_creates_the_file_owner_only_in_the_projects_folder(state_dir):
    values = stack_secrets("alpha")
    path = secrets_path("alpha")
    assert path == state_dir / "alpha" / "secrets.json"
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert not values.legacy


def test_the_place_does_not_depend_on_the_current_directory(tmp_path, monkeypatch, state_dir):
    monkeypatch.chdir(tmp_path)
    here = stack_secrets("alpha")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert stack_secrets("alpha") == here


def test_the_default_place_is_the_users_state_home(tmp_path, monkeypatch):
    monkeypatch.delenv("OUTAGE_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert secrets_path("alpha") == tmp_path / "xdg" / "outage-lab" / "alpha" / "secrets.json"


def test_later_uses_reuse_the_same_secrets():
    assert stack_secrets("alpha") == stack_secrets("alpha")


def test_each_project_has_its_own():
    assert stack_secrets("alpha").admin_token != stack_secrets("beta").admin_token


def test_the_compose_environment_carries_every_secret():
    values = stack_secrets("alpha")
    env = values.compose_env()
    assert env["OUTAGE_ADMIN_TOKEN"] == values.admin_token
    assert env["OUTAGE_TOKEN_SECRET"] == values.token_secret
    assert env["OUTAGE_BROKER_USER"] == values.broker_user
    assert env["OUTAGE_BROKER_PASSWORD"] == values.broker_password
    assert env["OUTAGE_ERLANG_COOKIE"] == values.erlang_cookie


def test_a_stack_whose_volumes_predate_secrets_keeps_its_well_known_values(tmp_path):
    path = tmp_path / "secrets.json"
    assert load_or_create(path, predates_secrets=lambda: True) == LEGACY_SECRETS
    assert mode(path) == 0o600


def test_a_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "secrets.json"
    load_or_create(path)
    os.chmod(path, 0o644)
    with pytest.raises(SecretsFileError, match="chmod 600"):
        load_or_create(path)


def test_the_file_written_first_wins(tmp_path):
    """Two processes bringing up one stack at once end with one set of secrets."""
    path = tmp_path / "secrets.json"
    winner = generate_secrets()
    assert credentials._write_new(path, winner)
    assert not credentials._write_new(path, generate_secrets())
    assert load_or_create(path) == winner


def test_forgetting_them_gives_the_next_stack_new_ones():
    before = stack_secrets("alpha")
    credentials.forget_secrets("alpha")
    assert stack_secrets("alpha").admin_token != before.admin_token


def test_the_fault_ledger_lives_in_the_same_folder(state_dir, monkeypatch):
    monkeypatch.setenv("OUTAGE_PROJECT", "alpha")
    assert ledger_path() == state_dir / "alpha" / "ledger.jsonl"
