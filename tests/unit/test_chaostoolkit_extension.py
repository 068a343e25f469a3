"""The Chaos Toolkit extension: the example experiment names real activities, and sent messages are kept."""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path

import pytest

from harness.interfaces.chaostoolkit import sent_messages

EXPERIMENT = Path(__file__).resolve().parents[2] / "examples" / "chaostoolkit" / "worker-crash.json"


def activities(experiment: dict) -> list[dict]:
    hypothesis = experiment["steady-state-hypothesis"]["probes"]
    return [*hypothesis, *experiment["method"], *experiment["rollbacks"]]


@pytest.mark.parametrize("activity", activities(json.loads(EXPERIMENT.read_text())), ids=lambda a: a["name"])
def test_every_activity_of_the_example_calls_a_function_with_arguments_it_takes(activity):
    provider = activity["provider"]
    function = getattr(importlib.import_module(provider["module"]), provider["func"])
    inspect.signature(function).bind(**provider.get("arguments", {}))


def test_every_fault_the_example_injects_is_one_it_rolls_back_or_restores():
    experiment = json.loads(EXPERIMENT.read_text())
    injected = [
        a["provider"]["arguments"] for a in experiment["method"] if a["provider"]["func"] == "inject_fault"
    ]
    reverted = [
        a["provider"]["arguments"]
        for a in [*experiment["method"], *experiment["rollbacks"]]
        if a["provider"]["func"] == "revert_fault"
    ]
    assert injected and all(fault in reverted for fault in injected)
    assert experiment["rollbacks"][1]["provider"]["func"] == "heal"


def test_acknowledged_messages_are_kept_per_ticket_until_forgotten(tmp_path, monkeypatch):
    monkeypatch.setenv("OUTAGE_STATE_DIR", str(tmp_path))
    sent_messages.remember(1, "a")
    sent_messages.remember(1, "b")
    sent_messages.remember(2, "c")
    assert sent_messages.acknowledged() == {1: {"a", "b"}, 2: {"c"}}
    sent_messages.forget()
    assert sent_messages.acknowledged() == {}
