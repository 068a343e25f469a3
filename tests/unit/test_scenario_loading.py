"""Scenarios are found by id, users add their own by folder, and a broken file names its line."""

from __future__ import annotations

import textwrap

import pytest

from harness.engine.scenario import ScenarioError, all_scenarios, scenario_class

_USER_SCENARIO = textwrap.dedent(
    """
    from faults.containers import Partition
    from harness.engine.scenario import Drill, Scenario


    class RelayPartition(Scenario):
        id = "user-relay-partition"
        title = "The relay is cut off"
        source = "a game day"
        drill = Drill(briefing="b", symptoms=("s",), hints=(), runbook=("r",))

        async def inject(self, run):
            await run.inject(Partition("relay"))
    """
)


def test_the_demonstration_scenario_is_built_in():
    assert scenario_class("worker-crash").title
    assert "worker-crash" in {s.id for s in all_scenarios()}


def test_an_unknown_id_lists_the_known_ones():
    with pytest.raises(ScenarioError, match="known scenarios: .*worker-crash"):
        scenario_class("no-such-outage")


def test_a_users_scenario_folder_is_discovered(tmp_path, monkeypatch):
    (tmp_path / "relay_partition.py").write_text(_USER_SCENARIO)
    monkeypatch.setenv("OUTAGE_SCENARIO_PATH", str(tmp_path))
    assert scenario_class("user-relay-partition").source == "a game day"


def test_a_scenario_file_with_a_syntax_error_names_its_line(tmp_path, monkeypatch):
    (tmp_path / "broken_syntax.py").write_text("x = 1\n\ndef oops(:\n    pass\n")
    monkeypatch.setenv("OUTAGE_SCENARIO_PATH", str(tmp_path))
    with pytest.raises(ScenarioError, match=r"broken_syntax\.py:3: "):
        scenario_class("anything")


def test_a_scenario_without_drill_material_is_refused_with_its_line(tmp_path, monkeypatch):
    source = _USER_SCENARIO.replace(
        '    drill = Drill(briefing="b", symptoms=("s",), hints=(), runbook=("r",))\n', ""
    )
    source = source.replace("user-relay-partition", "user-no-drill")
    (tmp_path / "no_drill.py").write_text(source)
    monkeypatch.setenv("OUTAGE_SCENARIO_PATH", str(tmp_path))
    with pytest.raises(ScenarioError, match="lacks `drill`"):
        scenario_class("user-no-drill")


def test_profiles_switch_the_mechanisms_the_incident_lacked():
    scenario = scenario_class("worker-crash")()
    assert scenario.settings("hardened")["ACK_AFTER_WORK"] == "on"
    assert scenario.settings("vulnerable")["ACK_AFTER_WORK"] == "off"
    with pytest.raises(ScenarioError, match="unknown profile"):
        scenario.settings("reckless")
