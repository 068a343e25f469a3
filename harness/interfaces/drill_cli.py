"""`outage drill ...` and `outage act ...`: the on-call drill's commands.

Kept apart from cli.py, which only calls `register`. The drill runs in a background daemon
(harness/drill/daemon.py); these commands read its state file and talk to it over HTTP.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from harness import control_http
from harness.drill import state

EXIT_OK, EXIT_FAILED, EXIT_HARNESS_ERROR = 0, 1, 2
EXIT_USAGE = 64  # sysexits' EX_USAGE: a refused command, distinct from a harness failure (2)
START_TIMEOUT_S = 660  # the daemon may have to bring the stack up first
STOP_TIMEOUT_S = 900  # healing and judging after a stop
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h)?$")


def parse_duration(text: str) -> float:
    """`90`, `90s`, `20m`, `1h` -> seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (examples: 90s, 20m, 1h)")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]


class Refused(RuntimeError):
    """The command cannot do what was asked; the message says why (exit EXIT_USAGE)."""


def _fail(message: str) -> int:
    print(f"outage: {message}", file=sys.stderr)
    return EXIT_USAGE


def _post(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    current = state.require_running()
    reply = control_http.post(current["url"].rstrip("/") + path, json=body or {}, timeout=30)
    content = reply.json()
    if reply.status_code >= 400:
        raise Refused(content.get("detail") or content.get("error") or f"HTTP {reply.status_code}")
    return content


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    return f"{int(seconds // 60):02d}:{int(seconds % 60):02d}"


# -- drill start -------------------------------------------------------------------------------------


def _cmd_start(args: argparse.Namespace) -> int:
    from harness.engine.scenario import ScenarioError, all_scenarios, scenario_class

    if state.running_state() is not None:
        return _fail("a drill is already running (`outage drill status`; end it with `outage drill stop`)")
    if bool(args.scenario) == bool(args.random):
        return _fail("name a scenario id or give --random (not both)")
    seed = args.seed if args.seed is not None else secrets.randbelow(1_000_000)
    if args.random:
        chooser = random.Random(seed) if args.seed is not None else random.SystemRandom()
        scenario_id = chooser.choice([s.id for s in all_scenarios()])
    else:
        try:
            scenario_id = scenario_class(args.scenario).id
        except ScenarioError as exc:
            return _fail(str(exc))
    report_dir = Path(args.report_dir or Path("reports") / time.strftime("drill-%Y%m%d-%H%M%S")).resolve()
    folder = state.drill_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / state.STATE_FILE).unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "harness.drill.daemon",
        "--scenario", scenario_id,
        "--profile", args.profile,
        "--seed", str(seed),
        "--time-limit", str(args.time_limit),
        "--hold", str(args.hold),
        "--min-delay", str(min(args.min_delay, args.max_delay)),
        "--max-delay", str(args.max_delay),
        "--report-dir", str(report_dir),
    ]  # fmt: skip
    with open(folder / state.LOG_FILE, "w", encoding="utf-8") as log:
        daemon = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    print("starting the drill (the stack comes up first if needed)...", file=sys.stderr)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        current = state.read_state() or {}
        if current.get("pid") == daemon.pid and current.get("url"):
            break
        if daemon.poll() is not None or current.get("error"):
            log_tail = (folder / state.LOG_FILE).read_text(encoding="utf-8")[-2000:]
            print(f"outage: the drill could not start:\n{log_tail}", file=sys.stderr)
            return EXIT_HARNESS_ERROR
        time.sleep(0.5)
    else:
        daemon.terminate()
        print(f"outage: the drill did not start within {START_TIMEOUT_S} s", file=sys.stderr)
        return EXIT_HARNESS_ERROR
    print(f"Drill started. Board: {current['url']}")
    print(f"Time limit: {_clock(args.time_limit)}. Report: {report_dir}")
    print()
    print("Briefing:")
    print(f"  {current['briefing']}")
    print()
    print("Respond with: outage drill ack | note TEXT | hint | status;  outage act --list")
    return EXIT_OK


# -- the responders' commands ------------------------------------------------------------------------


def _cmd_ack(args: argparse.Namespace) -> int:
    reply = _post("/api/ack", {"who": args.who})
    when = _clock(reply["t"])
    print(f"already acknowledged at {when}" if reply["already"] else f"acknowledged at {when}")
    return EXIT_OK


def _cmd_note(args: argparse.Namespace) -> int:
    from harness.drill.engine import MAX_NOTE_BYTES

    text = " ".join(args.text)
    size = len(text.encode("utf-8"))
    if size > MAX_NOTE_BYTES:
        return _fail(f"a note is at most {MAX_NOTE_BYTES} bytes; this one is {size}")
    reply = _post("/api/note", {"text": text, "who": args.who})
    print(f"noted at {_clock(reply['t'])}")
    return EXIT_OK


def _cmd_hint(args: argparse.Namespace) -> int:
    reply = _post("/api/hint")
    if reply["hint"] is None:
        print("no more hints")
        return EXIT_OK
    print(f"Hint {reply['used']} (costs {reply['cost']} points; {reply['left']} left): {reply['hint']}")
    return EXIT_OK


def _print_result(current: dict[str, Any]) -> None:
    result = current.get("result") or {}
    print(f"drill finished: {result.get('ended', 'error')}, score {result.get('score', 0)}, "
          f"verdict {result.get('verdict', 'error')}")  # fmt: skip
    for name, value in (result.get("durations") or {}).items():
        print(f"  {name}: {'never' if value is None else f'{value:.1f} s'}")
    if current.get("error"):
        print(f"  harness error: {current['error']}")
    print(f"report: {current.get('report_dir')}")


def _cmd_status(args: argparse.Namespace) -> int:
    running = state.running_state()
    if running is None:
        last = state.read_state()
        if last and last.get("status") == "finished":
            _print_result(last)
            return EXIT_OK
        print("no drill is running")
        return EXIT_FAILED
    if not running.get("url"):
        print("the drill is starting")
        return EXIT_OK
    status = control_http.get(running["url"].rstrip("/") + "/api/status", timeout=10).json()
    if args.json:
        print(json.dumps(status, indent=2))
        return EXIT_OK
    print(f"clock {_clock(status['clock_s'])}, {_clock(status['remaining_s'])} left; board {running['url']}")
    print(
        f"steady state: {status['steady_state']}"
        + (f" ({', '.join(status['violations'])})" if status["violations"] else "")
    )
    acknowledged = "yes" if status["acknowledged"] else "no"
    print(f"acknowledged: {acknowledged}; hints used {status['hints_used']}/{status['hints_total']}")
    if status["ended"] != "running":
        print(f"ended: {status['ended']} (the harness is draining and judging)")
    return EXIT_OK


def _cmd_stop(args: argparse.Namespace) -> int:
    current = state.require_running()
    _post("/api/stop")
    print("stopping: the harness heals the stack, drains and judges...", file=sys.stderr)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        latest = state.read_state() or {}
        if latest.get("status") == "finished" or not state.process_alive(int(current["pid"])):
            _print_result(latest)
            return EXIT_OK
        time.sleep(1)
    return _fail(f"the drill did not end within {STOP_TIMEOUT_S} s; `outage heal` restores the stack")


def _cmd_reveal(args: argparse.Namespace) -> int:
    secret = state.read_facilitator()
    if secret is None:
        return _fail("no drill to reveal (none was started in this project)")
    print(f"scenario: {secret['scenario']} ({secret['title']})")
    print(f"profile {secret['profile']}, seed {secret['seed']}")
    print(f"source: {secret['source']}")
    print()
    print(secret["root_cause"])
    print()
    print("symptoms to find:")
    print("\n".join(f"  - {line}" for line in secret["symptoms"]))
    print("runbook:")
    print("\n".join(f"  {n}. {line}" for n, line in enumerate(secret["runbook"], 1)))
    return EXIT_OK


# -- outage act --------------------------------------------------------------------------------------


def _cmd_act(args: argparse.Namespace) -> int:
    from harness.drill.actions import ACTIONS, ActionError, perform

    if args.list or not args.action:
        for action in ACTIONS.values():
            print(f"{action.name + ' ' + action.usage:32} {action.description}")
        return EXIT_OK if args.list else _fail("name an action (`outage act --list`)")
    from harness.engine.scenario import HARDENED_SETTINGS
    from harness.stack.compose_stack import ComposeStack

    secret = state.read_facilitator() if state.running_state() else None
    baseline = (secret or {}).get("baseline_settings") or dict(HARDENED_SETTINGS)
    try:
        outcome, ok = perform(ComposeStack(), args.action, args.args, baseline), True
    except ActionError as exc:
        return _fail(str(exc))
    except Exception as exc:
        outcome, ok = f"failed: {type(exc).__name__}: {exc}", False
    if state.running_state() is not None:
        try:
            _post("/api/action", {"name": args.action, "args": args.args, "outcome": outcome, "ok": ok})
        except (Refused, state.NoDrill, httpx.HTTPError) as exc:
            print(f"(not recorded in the drill: {exc})", file=sys.stderr)
    print(outcome)
    return EXIT_OK if ok else EXIT_FAILED


def _guarded(handler):  # type: ignore[no-untyped-def]
    """Refusals (no drill, a refused input) are a message and EXIT_USAGE, not a harness failure."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (state.NoDrill, Refused) as exc:
            return _fail(str(exc))

    return run


def register(commands: argparse._SubParsersAction) -> None:
    """Add `drill` and `act` to the `outage` command's subcommands."""
    drill = commands.add_parser("drill", help="on-call drills: a hidden fault, a board, a clock, a debrief")
    steps = drill.add_subparsers(dest="drill_command", required=True)

    start = steps.add_parser(
        "start", help="start a drill in the background; prints the board and the briefing"
    )
    start.add_argument("scenario", nargs="?", help="a scenario id (see `outage list`)")
    start.add_argument("--random", action="store_true", help="a scenario drawn at random")
    start.add_argument("--profile", choices=("hardened", "vulnerable"), default="hardened")
    start.add_argument("--seed", type=int, help="the same seed, the same drill (default: random)")
    start.add_argument("--time-limit", type=parse_duration, default=20 * 60.0, help="e.g. 20m (default)")
    start.add_argument(
        "--hold", type=parse_duration, default=30.0, help="how long the steady state must hold again"
    )
    start.add_argument(
        "--min-delay", type=parse_duration, default=10.0, help="earliest fault after the steady load begins"
    )
    start.add_argument(
        "--max-delay", type=parse_duration, default=60.0, help="latest fault after the steady load begins"
    )
    start.add_argument("--report-dir", help="where the report goes (default reports/drill-<time>)")
    start.set_defaults(handler=_cmd_start)

    ack = steps.add_parser("ack", help="acknowledge: we see it")
    ack.add_argument("--who", default=os.environ.get("USER") or "responder")
    ack.set_defaults(handler=_guarded(_cmd_ack))
    note = steps.add_parser("note", help="a time-stamped note (a hypothesis, an action); at most 4 KiB")
    note.add_argument("text", nargs="+")
    note.add_argument("--who", default=os.environ.get("USER") or "responder")
    note.set_defaults(handler=_guarded(_cmd_note))
    steps.add_parser("hint", help="the next hint (each costs points; see the README)").set_defaults(
        handler=_guarded(_cmd_hint)
    )
    status = steps.add_parser("status", help="the clock, the steady state, acks and hints; or how it ended")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_guarded(_cmd_status))
    steps.add_parser("stop", help="end the drill now: heal, drain, judge").set_defaults(
        handler=_guarded(_cmd_stop)
    )
    steps.add_parser(
        "reveal", help="the facilitator's: the scenario, its root cause and runbook"
    ).set_defaults(handler=_guarded(_cmd_reveal))

    act = commands.add_parser("act", help="operator actions on the stack (recorded in a running drill)")
    act.add_argument("--list", action="store_true", help="list the actions")
    act.add_argument("action", nargs="?")
    act.add_argument("args", nargs="*")
    act.set_defaults(handler=_cmd_act)
