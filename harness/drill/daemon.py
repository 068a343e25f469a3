"""The drill's background process: `outage drill start` launches it and returns at once.

It brings the stack up if needed, serves the board and the control API on 127.0.0.1, follows
Docker's event stream, plays the drill to its end, writes the report, records how it ended in
the state file, and exits. SIGTERM ends the drill early the way `outage drill stop` does.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from harness.drill import state
from harness.drill.board import BoardServer
from harness.drill.docker_events import DockerEventWatch
from harness.drill.engine import DrillOptions, DrillSession
from harness.engine.scenario import Scenario, scenario_class
from harness.stack.compose_stack import ComposeStack

STACK_UP_TIMEOUT_S = 600
LINGER_S = 10.0  # the board stays up this long after the end, so its last status can be read


def root_cause(scenario: type[Scenario]) -> str:
    """The scenario module's docstring: where each scenario tells its incident and root cause."""
    module = inspect.getmodule(scenario)
    source = inspect.getsource(module) if module else ""
    return (ast.get_docstring(ast.parse(source)) or "").strip() if source else ""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m harness.drill.daemon")
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--profile", default="hardened")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--time-limit", type=float, required=True)
    parser.add_argument("--hold", type=float, required=True)
    parser.add_argument("--min-delay", type=float, required=True)
    parser.add_argument("--max-delay", type=float, required=True)
    parser.add_argument("--report-dir", required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    report_dir = Path(args.report_dir).resolve()
    public = {
        "pid": os.getpid(),
        "status": "starting",
        "started_at": time.time(),
        "time_limit_s": args.time_limit,
        "report_dir": str(report_dir),
        "url": None,
    }
    state.write_state(public)
    cls = scenario_class(args.scenario)
    scenario = cls()
    state.write_facilitator(
        {
            "scenario": cls.id,
            "title": cls.title,
            "source": cls.source,
            "profile": args.profile,
            "seed": args.seed,
            "root_cause": root_cause(cls),
            "symptoms": list(cls.drill.symptoms),
            "runbook": list(cls.drill.runbook),
            "baseline_settings": scenario.settings(args.profile),
        }
    )
    try:
        stack = ComposeStack()
        if not stack.status().healthy:
            print("the stack is not healthy: bringing it up", flush=True)
            stack.up(build=False, timeout=STACK_UP_TIMEOUT_S)
        options = DrillOptions(
            profile=args.profile,
            seed=args.seed,
            time_limit_s=args.time_limit,
            hold_s=args.hold,
            min_delay_s=args.min_delay,
            max_delay_s=args.max_delay,
        )
        session = DrillSession(scenario, stack, options, report_dir)
    except Exception as exc:
        state.write_state({**public, "status": "finished", "error": f"{type(exc).__name__}: {exc}"})
        traceback.print_exc()
        return 2
    board = BoardServer(session)
    board.start()
    events = DockerEventWatch(stack.project, session.docker_event)
    events.start()
    signal.signal(signal.SIGTERM, lambda *_: session.request_stop())
    state.write_state({**public, "status": "running", "url": board.url, "briefing": scenario.drill.briefing})
    print(f"board at {board.url}", flush=True)
    try:
        result = session.play()
        outcome = {
            "verdict": result.verdict,
            "ended": session.story.ended,
            "score": session.story.score(),
            "durations": session.story.durations(),
            "hints_used": session.story.hints_used,
            "lost": session.story.lost,
        }
        error = result.error
    except Exception as exc:
        traceback.print_exc()
        outcome, error = {"verdict": "error", "ended": "error", "score": 0}, f"{type(exc).__name__}: {exc}"
    finally:
        events.close()
    state.write_state({**public, "status": "finished", "url": board.url, "result": outcome, "error": error})
    print(f"drill finished: {outcome}", flush=True)
    time.sleep(LINGER_S)
    board.close()
    return 0 if error is None else 2


if __name__ == "__main__":
    sys.exit(main())
