"""The pytest plugin, as a project's own test suite sees it (run by pytester, no stack needed):
prefixed fixtures, typed options with their ini forms, a clear skip without Docker, the report
header, and the terminal summary of scenario runs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from harness.engine.waiting import wait_until_sync
from harness.interfaces.pytest_plugin import RUN_PROPERTIES, _machine_share

pytest_plugins = ["pytester"]

DEAD_DOCKER = "unix:///nonexistent/outage-lab-test/docker.sock"


def _ini(pytester: pytest.Pytester, lines: str = "") -> None:
    # pytest-asyncio, installed beside the plugin, warns about every session without this line.
    pytester.makeini(f"[pytest]\nasyncio_default_fixture_loop_scope = function\n{lines}\n")


@pytest.fixture(autouse=True)
def quiet_ini(pytester: pytest.Pytester) -> None:
    _ini(pytester)


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", DEAD_DOCKER)


def test_every_fixture_is_outage_prefixed_and_documented(pytester: pytest.Pytester):
    listed = pytester.runpytest("--fixtures", "-v").stdout.str()
    for name in ("outage_stack", "outage_fault", "outage_run", "outage_history"):
        assert f"\n{name}" in listed, name
    assert "\nstack " not in listed and "\nfault " not in listed
    # The docstrings name the real attributes.
    assert "result.details" in listed and "api_url" in listed


def test_outage_history_is_an_empty_history(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        def test_history(outage_history):
            assert outage_history.op_count == 0
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_stack_tests_are_skipped_with_the_reason_when_no_docker_engine_answers(
    pytester: pytest.Pytester, no_docker: None
):
    pytester.makepyfile(
        """
        import pytest

        def test_through_the_fixture(outage_stack):
            raise AssertionError("never reached")

        def test_a_fault(outage_fault):
            raise AssertionError("never reached")

        @pytest.mark.stack
        def test_marked_only():
            raise AssertionError("never reached")

        def test_without_the_stack():
            pass
        """
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=3)
    result.stdout.fnmatch_lines([f"SKIPPED*no Docker engine answers at {DEAD_DOCKER}*"])


def _header(pytester: pytest.Pytester, *args: str) -> str:
    return next(line for line in pytester.runpytest(*args).outlines if line.startswith("outage:"))


@pytest.mark.parametrize(
    ("ini", "args", "mode"),
    [
        ("", (), "start the stack if needed"),
        ("", ("--outage-use-running",), "use the running stack"),
        ("outage_use_running = true", (), "use the running stack"),
        ("outage_use_running = yes", (), "use the running stack"),
        ("outage_use_running = true", ("--no-outage-use-running",), "start the stack if needed"),
        ("outage_use_running = false", ("--outage-use-running",), "use the running stack"),
    ],
)
def test_use_running_takes_the_command_line_over_the_typed_ini_value(
    pytester: pytest.Pytester, ini: str, args: tuple[str, ...], mode: str
):
    _ini(pytester, ini)
    assert f"({mode})" in _header(pytester, *args)


@pytest.mark.parametrize(
    ("ini", "args", "kept"),
    [
        ("", (), False),
        ("outage_keep_stack = true", (), True),
        ("outage_keep_stack = true", ("--no-outage-keep-stack",), False),
        ("", ("--outage-keep-stack",), True),
    ],
)
def test_keep_stack_is_a_typed_ini_option_with_a_no_override(
    pytester: pytest.Pytester, ini: str, args: tuple[str, ...], kept: bool
):
    _ini(pytester, ini)
    pytester.makepyfile(
        f"""
        from harness.interfaces.pytest_plugin import _flag

        def test_keep(pytestconfig):
            assert isinstance(pytestconfig.getini("outage_keep_stack"), bool)
            assert _flag(pytestconfig, "outage_keep_stack") is {kept}
        """
    )
    pytester.runpytest(*args).assert_outcomes(passed=1)


def test_the_report_header_names_the_compose_project_and_where_reports_are_kept(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("OUTAGE_PROJECT", "plugin-header")
    assert "compose project plugin-header" in _header(pytester)
    assert "pytest's temporary folders" in _header(pytester)

    _ini(pytester, "outage_report_dir = reports/runs")
    assert f"scenario reports in {pytester.path / 'reports' / 'runs'}" in _header(pytester)
    chosen = pytester.path / "ci-reports"
    assert f"scenario reports in {chosen}" in _header(pytester, "--outage-report-dir", str(chosen))


def test_an_xdist_worker_with_a_stack_of_its_own_names_its_project_and_runs_alone_tests_first(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("OUTAGE_PROJECT", "plugin-workers")  # restored after the in-process run
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    pytester.makepyfile(
        """
        import os
        import pytest

        def test_shared(request):
            assert request.session.items[0].name == "test_alone"

        @pytest.mark.alone
        def test_alone():
            assert os.environ["OUTAGE_PROJECT"] == "plugin-workers-gw1"
        """
    )
    pytester.runpytest("--outage-stack-per-worker").assert_outcomes(passed=2)
    monkeypatch.setenv("OUTAGE_PROJECT", "plugin-workers")
    assert "compose project plugin-workers " in _header(pytester), "only with --outage-stack-per-worker"


def test_an_alone_test_waits_for_the_shared_holders_and_keeps_later_ones_out_until_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("OUTAGE_STATE_DIR", str(tmp_path))
    inside: list[str] = []
    leave = {name: threading.Event() for name in ("first", "second", "alone", "later")}

    def hold(name: str, alone: bool) -> None:
        with _machine_share(alone=alone):
            inside.append(name)
            leave[name].wait(10)
            inside.remove(name)

    def start(name: str, alone: bool) -> threading.Thread:
        thread = threading.Thread(target=hold, args=(name, alone))
        thread.start()
        time.sleep(0.3)  # time to reach the lock and block there
        return thread

    threads = [start("first", False), start("second", False)]
    assert sorted(inside) == ["first", "second"], "shared holders do not exclude each other"
    threads.append(start("alone", True))
    threads.append(start("later", False))
    assert sorted(inside) == ["first", "second"], "the alone test waits; a later shared one waits behind it"
    leave["first"].set()
    wait_until_sync(lambda: inside == ["second"], timeout=10, what="the first shared holder to leave")
    time.sleep(0.3)
    assert inside == ["second"], "nobody enters while a shared holder is left"
    leave["second"].set()
    wait_until_sync(lambda: inside == ["alone"], timeout=10, what="the alone test to enter")
    time.sleep(0.3)
    assert inside == ["alone"], "nobody enters beside the alone test"
    leave["alone"].set()
    wait_until_sync(lambda: inside == ["later"], timeout=10, what="the later shared holder to enter")
    leave["later"].set()
    for thread in threads:
        thread.join(5)


def test_the_terminal_summary_tabulates_every_scenario_run_of_the_session(pytester: pytest.Pytester):
    # The runs are recorded as outage_run records them: one property each, in this order.
    pytester.makepyfile(
        f"""
        import pytest

        NAMES = {RUN_PROPERTIES!r}

        def _record(record_property, *values):
            for name, value in zip(NAMES, values):
                record_property(name, value)

        def test_both_profiles(record_property):
            _record(record_property, "worker-crash", "hardened", "held", 0, 0.4, "reports/runs/wc-h")
            _record(record_property, "worker-crash", "vulnerable", "deviated", 95, 12.5, "reports/runs/wc-v")

        def test_no_scenario():
            pass
        """
    )
    result = pytester.runpytest("--junitxml=junit.xml")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*Outage Lab scenario runs*",
            "scenario*profile*verdict*lost*stolen_cpu_s*report_dir",
            "worker-crash*hardened*held*0*0.4*reports/runs/wc-h",
            "worker-crash*vulnerable*deviated*95*12.5*reports/runs/wc-v",
        ]
    )
    junit = (pytester.path / "junit.xml").read_text()
    assert '<property name="outage_verdict" value="deviated" />' in junit


def test_no_summary_when_no_scenario_ran(pytester: pytest.Pytester):
    pytester.makepyfile("def test_plain():\n    pass\n")
    assert "Outage Lab scenario runs" not in pytester.runpytest().stdout.str()
