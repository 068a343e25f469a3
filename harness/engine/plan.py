"""The plan of a run, as data, without touching the stack: what `outage run ID --dry-run` prints.

A scenario's two profiles must be the same experiment: the same phases and timing, the same
fault, the same load, the same monitoring and runbook, differing only in the declared product
settings. `plan` builds everything but the settings; `settings_diff` is the only allowed
difference, and tests/unit/test_plans.py holds every scenario to it.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict
from typing import Any

from harness.engine.scenario import PROFILES, Scenario


def plan(scenario: Scenario, profile: str) -> dict[str, Any]:
    """Phases and timing, fault steps, load, monitoring, runbook and settings of one profile."""
    settings = scenario.settings(profile)
    timing = asdict(scenario.timing)
    kind = type(scenario)
    return {
        "scenario": scenario.id,
        "profile": profile,
        "phases": [
            {"phase": "setup", "does": f"apply the profile's settings; {timing['tickets']} tickets"},
            {"phase": "steady", "seconds": timing["steady_s"]},
            {"phase": "inject", "does": _first_paragraph(kind.inject)},
            {
                "phase": "outage",
                "seconds": timing["outage_s"],
                "does": _first_paragraph(kind.during_outage),
            },
            {"phase": "recover", "does": _first_paragraph(kind.recover)},
            {
                "phase": "settle",
                "seconds": timing["after_recovery_s"],
                "drain_timeout_s": timing["drain_timeout_s"],
            },
        ],
        "load": {
            "messages_per_s": timing["message_rate"],
            "tickets": timing["tickets"],
            "client_timeout_s": scenario.client_timeout_s,
            "retry_unknown": scenario.message_retry_unknown,
        },
        "monitoring": sorted(rule.name for rule in scenario.alert_rules(settings)),
        "runbook": list(scenario.drill.runbook),
        "checks": [e.name for e in scenario.expectations],
        "settings": settings,
    }


def settings_diff(scenario: Scenario) -> dict[str, dict[str, str]]:
    """Each setting whose value differs between the profiles: name -> {profile: value}."""
    by_profile = {profile: scenario.settings(profile) for profile in PROFILES}
    names = sorted(set().union(*by_profile.values()))
    return {
        name: {profile: by_profile[profile].get(name, "(default)") for profile in PROFILES}
        for name in names
        if len({by_profile[profile].get(name) for profile in PROFILES}) > 1
    }


def without_settings(planned: dict[str, Any]) -> dict[str, Any]:
    """The plan with what may differ between profiles set aside: the settings, what is derived from
    them alone (the monitoring rules), and the profile's name."""
    return {key: value for key, value in planned.items() if key not in ("settings", "monitoring", "profile")}


def render(scenario: Scenario, profiles: tuple[str, ...]) -> str:
    """The plan as a person reads it."""
    lines = [f"{scenario.id}: {scenario.title}", f"source: {scenario.source}", ""]
    first = plan(scenario, profiles[0])
    for step in first["phases"]:
        extra = ", ".join(f"{k} {v}" for k, v in step.items() if k not in ("phase", "does"))
        lines.append(f"  {step['phase']:8} {extra}".rstrip())
        if step.get("does"):
            lines.append(f"           {step['does']}")
    load = first["load"]
    retries = "; retried with the same key after a time-out or a 5xx" if load["retry_unknown"] else ""
    lines += [
        "",
        f"load: {load['messages_per_s']:g} messages/s open loop over {load['tickets']} tickets; "
        f"clients wait {load['client_timeout_s']:g} s for an answer{retries}",
    ]
    lines += [f"monitoring: {', '.join(first['monitoring']) or 'none'}", "runbook:"]
    lines += [f"  {n}. {step}" for n, step in enumerate(first["runbook"], 1)]
    lines += ["checks: " + (", ".join(first["checks"]) or "the message checks only"), ""]
    lines.append("settings that differ between the profiles (nothing else does):")
    for name, values in settings_diff(scenario).items():
        lines.append(f"  {name:28} " + "  ".join(f"{p}={v}" for p, v in values.items()))
    return "\n".join(lines) + "\n"


def _first_paragraph(function: object) -> str:
    doc = inspect.getdoc(function) or ""
    return " ".join(doc.split("\n\n", 1)[0].split())
