"""Each setting is declared once (services/common/config.py); everything else agrees with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.engine.scenario import HARDENED_SETTINGS
from services.common.config import Settings, SettingsError, declared_settings, hardened_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = (ROOT / "harness" / "stack" / "recipes" / "docker-compose.yml").read_text()
README = (ROOT / "README.md").read_text()
APP_ENV = dict(
    re.findall(
        r"^    ([A-Z_]+): \$\{\1:-([^}]*)\}$", COMPOSE.split("x-app:", 1)[1].split("services:", 1)[0], re.M
    )
)


def test_every_service_setting_is_passed_by_the_compose_file_with_its_declared_default():
    for declared in declared_settings():
        if declared.runs_in == "services":
            assert APP_ENV.get(declared.env) == declared.default, declared.env


def test_the_compose_file_passes_no_setting_that_is_not_declared():
    declared = {d.env for d in declared_settings()}
    assert set(APP_ENV) - declared == set()


def test_the_readme_table_lists_every_setting_a_profile_may_change_with_its_default():
    for declared in declared_settings():
        if declared.runs_in != "stack":
            assert f"| `{declared.env}` | `{declared.default}` |" in README, declared.env


def test_the_hardened_baseline_is_every_mitigation_at_its_declared_default():
    assert hardened_settings() == HARDENED_SETTINGS
    assert HARDENED_SETTINGS["OUTBOX"] == "on" and HARDENED_SETTINGS["JOB_ALERTS"] == "on"
    assert "WORKER_PREFETCH" not in HARDENED_SETTINGS  # a plain setting, not a mitigation


def test_the_environment_is_parsed_by_each_settings_declared_type():
    settings = Settings.from_env(
        {"OUTBOX": "off", "AMQP_NODES": "a, b", "JOB_RUNNERS": "8", "API_DRAIN_S": "0.5"}
    )
    assert (settings.outbox, settings.amqp_nodes, settings.job_runners, settings.api_drain_s) == (
        False,
        ("a", "b"),
        8,
        0.5,
    )
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize(
    ("env", "value", "says"),
    [
        ("OUTBOX", "maybe", "on/off"),
        ("WORKER_PREFETCH", "many", "a number"),
        ("WEB_POLL_RETRY", "x", "budgeted"),
    ],
)
def test_a_bad_value_names_the_setting_and_what_it_expects(env, value, says):
    with pytest.raises(SettingsError, match=f"{env}=.*{says}"):
        Settings.from_env({env: value})
