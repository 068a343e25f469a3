"""A scenario's two profiles are one experiment: their plans differ only in declared settings."""

from __future__ import annotations

import pytest

from harness.engine.plan import plan, render, settings_diff, without_settings
from harness.engine.scenario import all_scenarios
from harness.interfaces.cli import main

SCENARIOS = all_scenarios()


@pytest.mark.parametrize("scenario_type", SCENARIOS, ids=lambda s: s.id)
def test_both_profiles_plan_the_same_run_once_the_declared_settings_are_set_aside(scenario_type):
    scenario = scenario_type()

    hardened, vulnerable = plan(scenario, "hardened"), plan(scenario, "vulnerable")

    assert without_settings(hardened) == without_settings(vulnerable)
    assert settings_diff(scenario), f"{scenario.id}: the profiles differ in nothing"


@pytest.mark.parametrize("scenario_type", SCENARIOS, ids=lambda s: s.id)
def test_the_settings_diff_names_each_differing_setting_with_both_values(scenario_type):
    scenario = scenario_type()
    hardened, vulnerable = scenario.settings("hardened"), scenario.settings("vulnerable")

    for name, values in settings_diff(scenario).items():
        assert values == {
            "hardened": hardened.get(name, "(default)"),
            "vulnerable": vulnerable.get(name, "(default)"),
        }
    assert {n for n in set(hardened) | set(vulnerable) if hardened.get(n) != vulnerable.get(n)} == set(
        settings_diff(scenario)
    )


def test_a_dry_run_prints_the_plan_and_the_diff_without_a_stack(capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # no engine may be needed

    code = main(["run", "worker-crash", "--dry-run"])

    out = capsys.readouterr().out
    assert code == 0
    assert "settings that differ between the profiles" in out
    assert "ACK_AFTER_WORK" in out and "vulnerable=off" in out
    assert out == render(next(s for s in SCENARIOS if s.id == "worker-crash")(), ("hardened",))


def test_no_scenario_branches_on_the_profile_name_only_on_declared_settings():
    import ast
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "faults" / "scenarios"
    readers = [
        f"{path.name}:{node.lineno}"
        for path in sorted(folder.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr == "profile" and isinstance(node.value, ast.Name)
    ]
    assert readers == [], "read run.settings, not run.profile"
