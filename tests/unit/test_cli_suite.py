"""What a CI job reads from `outage run ID... | --all`: where each report goes, one suite verdict,
one JSON document, a JUnit file; and the exit codes that never confuse a usage error with a failure."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.checks.check import Check
from harness.interfaces import cli
from harness.interfaces.junit import junit_xml
from harness.interfaces.suite import plan_runs, suite_document, suite_exit_code, suite_verdict
from harness.record.report import RunResult

LOST = Check("messages.lost", False, "12 acknowledged never observed", "0 acknowledged lost")
NOTHING_LOST = Check("messages.lost", True, "0", "0 acknowledged lost")
NO_DUPLICATES = Check("messages.duplicated", True, "0", "0 applied twice")


def _result(profile: str, verdict: str, checks: list[Check], error: str | None = None) -> RunResult:
    lost = 12 if verdict == "deviated" else 0
    return RunResult(
        scenario="worker-crash",
        title="The worker is killed mid-stream and restarted",
        profile=profile,
        seed=1,
        verdict=verdict,
        messages={"attempted": 100, "acked": 100, "lost": lost},
        checks=checks,
        timings={"time_to_detect_s": None, "time_to_recover_s": 16.2, "replay_s": 5.0},
        metrics={"load_rate_per_s": 40},
        wall_s=33.4,
        error=error,
    )


HELD = _result("hardened", "held", [NOTHING_LOST, NO_DUPLICATES])
DEVIATED = _result("vulnerable", "deviated", [LOST, NO_DUPLICATES])
BROKEN = _result("hardened", "error", [], error="HarnessError: injecting kill(worker) failed: no container")


def test_a_single_run_keeps_its_report_dir_as_given_or_the_historical_default():
    assert [p.report_dir for p in plan_runs(["worker-crash"], ["hardened"], "out", 1)] == [Path("out")]
    assert plan_runs(["worker-crash"], ["vulnerable"], None, 1)[0].report_dir == Path(
        "reports/worker-crash-vulnerable"
    )


def test_several_runs_each_get_a_scenario_and_profile_subdirectory():
    planned = plan_runs(["worker-crash", "proto"], ["hardened", "vulnerable"], "ci", 1)
    assert [(p.scenario, p.profile, p.report_dir) for p in planned] == [
        ("worker-crash", "hardened", Path("ci/worker-crash/hardened")),
        ("worker-crash", "vulnerable", Path("ci/worker-crash/vulnerable")),
        ("proto", "hardened", Path("ci/proto/hardened")),
        ("proto", "vulnerable", Path("ci/proto/vulnerable")),
    ]
    assert plan_runs(["a", "b"], ["hardened"], None, 1)[1].report_dir == Path("reports/b/hardened")


@pytest.mark.parametrize(
    ("results", "verdict", "code"),
    [
        ([HELD, HELD], "held", 0),
        ([HELD, DEVIATED], "deviated", 1),
        ([DEVIATED, BROKEN, HELD], "error", 2),
    ],
)
def test_the_suite_verdict_is_its_worst_run(results, verdict, code):
    assert suite_verdict(results) == verdict
    assert suite_exit_code(results) == code


def test_the_json_document_carries_each_runs_summary_fields_and_its_report_dir():
    document = suite_document([HELD, DEVIATED], [Path("r/h"), Path("r/v")])
    suite = document["suite"]
    assert (suite["verdict"], suite["exit_code"]) == ("deviated", 1)
    assert suite["counts"] == {"held": 1, "deviated": 1, "unknown": 0, "error": 0}
    assert [run["report_dir"] for run in suite["runs"]] == ["r/h", "r/v"]
    for run, result in zip(suite["runs"], (HELD, DEVIATED), strict=True):
        assert {k: v for k, v in run.items() if k != "report_dir"} == result.summary()
    json.dumps(document)  # JSON-ready as it is


def test_junit_has_a_testsuite_per_run_and_a_testcase_per_check_with_observed_vs_expected():
    root = ET.fromstring(junit_xml([HELD, DEVIATED, BROKEN], [Path("a"), Path("b"), Path("c")]))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [
        "worker-crash[hardened]",
        "worker-crash[vulnerable]",
        "worker-crash[hardened]",
    ]
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "1", "1")

    held, deviated, broken = suites
    assert [c.get("name") for c in held.findall("testcase")] == ["messages.lost", "messages.duplicated"]
    assert held.find("testcase/failure") is None
    failure = deviated.find("testcase[@name='messages.lost']/failure")
    assert failure is not None
    assert "12 acknowledged never observed" in failure.get("message")
    assert "expected: 0 acknowledged lost" in failure.text
    properties = {p.get("name"): p.get("value") for p in deviated.find("properties")}
    assert properties["verdict"] == "deviated" and properties["lost"] == "12"
    assert properties["report_dir"] == "b"

    error = broken.find("testcase/error")
    assert error is not None and "injecting kill(worker) failed" in error.get("message")
    assert (broken.get("tests"), broken.get("errors")) == ("1", "1")


@pytest.mark.parametrize(
    "argv",
    [
        ["run"],  # neither ids nor --all
        ["run", "worker-crash", "--all"],
        ["run", "no-such-outage"],
        ["run", "worker-crash", "--profile", "sturdy"],
        ["frobnicate"],
        ["status", "--bogus"],
    ],
)
def test_usage_errors_exit_64_not_the_harness_failure_code(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == cli.EXIT_USAGE == 64
    assert "usage: outage" in capsys.readouterr().err


def test_version_is_printed_and_exits_0(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("outage ")


def test_an_interrupt_exits_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_list", interrupted)
    assert cli.main(["list"]) == cli.EXIT_INTERRUPTED == 130
    assert "interrupted" in capsys.readouterr().err


def test_list_aligns_titles_after_the_longest_id(capsys):
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    title_columns = {len(line) - len(line.split(maxsplit=1)[1]) for line in lines}
    longest_id = max(len(line.split()[0]) for line in lines)
    assert title_columns == {longest_id + 2}, lines
