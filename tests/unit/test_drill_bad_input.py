"""Bad input to `outage drill` and `outage act`: a clear message, a non-zero exit, nothing left running.

These need no Docker: every refusal happens before a drill or the stack is touched. (A second
`drill start` while one runs needs a running drill: tests/stack/test_drill.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.interfaces.drill_cli import EXIT_USAGE, parse_duration

OUTAGE = os.path.join(os.path.dirname(sys.executable), "outage")


def outage(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OUTAGE_PROJECT": "drill-bad-input", "OUTAGE_STATE_DIR": str(tmp_path / "state")}
    return subprocess.run([OUTAGE, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


def nothing_started(tmp_path: Path) -> bool:
    """No drill daemon was launched: it would have left its state file and its log."""
    drill_dir = tmp_path / "state" / "drill-bad-input" / "drill"
    return not (drill_dir / "state.json").exists() and not (drill_dir / "daemon.log").exists()


def test_an_unknown_scenario_id_is_refused_with_the_known_ones_and_nothing_starts(tmp_path):
    finished = outage(tmp_path, "drill", "start", "no-such-incident")
    assert finished.returncode == EXIT_USAGE
    assert "no scenario 'no-such-incident'" in finished.stderr
    assert "gorgias-2021-queue-cluster-down" in finished.stderr
    assert nothing_started(tmp_path)


def test_a_scenario_id_and_random_together_are_refused(tmp_path):
    finished = outage(tmp_path, "drill", "start", "worker-crash", "--random")
    assert finished.returncode == EXIT_USAGE and "not both" in finished.stderr
    assert nothing_started(tmp_path)


@pytest.mark.parametrize("command", [["ack"], ["hint"], ["note", "the broker is down"], ["stop"]])
def test_responder_commands_without_a_drill_say_there_is_none(tmp_path, command):
    finished = outage(tmp_path, "drill", *command)
    assert finished.returncode == EXIT_USAGE
    assert "no drill is running" in finished.stderr


def test_status_without_a_drill_says_so_and_fails(tmp_path):
    finished = outage(tmp_path, "drill", "status")
    assert finished.returncode == 1 and "no drill is running" in finished.stdout


def test_reveal_without_any_drill_is_refused(tmp_path):
    finished = outage(tmp_path, "drill", "reveal")
    assert finished.returncode == EXIT_USAGE and "no drill to reveal" in finished.stderr


def test_a_note_over_4_kib_is_refused_with_its_size(tmp_path):
    finished = outage(tmp_path, "drill", "note", "x" * 4097)
    assert finished.returncode == EXIT_USAGE
    assert "at most 4096 bytes; this one is 4097" in finished.stderr


def test_a_bad_time_limit_is_a_usage_error(tmp_path):
    finished = outage(tmp_path, "drill", "start", "worker-crash", "--time-limit", "soon")
    assert finished.returncode != 0 and "not a duration: 'soon'" in finished.stderr
    assert nothing_started(tmp_path)


def test_durations_read_seconds_minutes_and_hours():
    assert parse_duration("90") == 90 and parse_duration("90s") == 90
    assert parse_duration("20m") == 1200 and parse_duration("1.5h") == 5400


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reboot-everything"], "no action 'reboot-everything'"),
        (["broker-start"], "usage: outage act broker-start NODE"),
        (["broker-start", "rabbit9"], "node must be one of rabbit1, rabbit2, rabbit3; got 'rabbit9'"),
        (["scale-jobs", "many"], "must be a whole number; got 'many'"),
    ],
)
def test_a_wrong_operator_action_is_refused_before_touching_the_stack(tmp_path, args, message):
    finished = outage(tmp_path, "act", *args)
    assert finished.returncode == EXIT_USAGE and message in finished.stderr


def test_the_toolbox_lists_every_action_with_its_arguments(tmp_path):
    finished = outage(tmp_path, "act", "--list")
    assert finished.returncode == 0
    for name in ("broker-start NODE", "broker-force-boot NODE", "rollback SERVICE", "scale-jobs N"):
        assert name in finished.stdout
