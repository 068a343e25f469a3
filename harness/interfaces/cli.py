"""The `outage` command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from harness.stack import credentials

EXIT_OK, EXIT_DEVIATED, EXIT_HARNESS_ERROR = 0, 1, 2


def _stack():  # imported lazily so `outage --help` and `outage token` need no Docker
    from harness.stack.compose_stack import ComposeStack

    return ComposeStack()


def _cmd_build(args: argparse.Namespace) -> int:
    from harness.stack.images import build_images

    started = time.monotonic()
    build_images(force=args.no_cache)
    print(f"images built in {time.monotonic() - started:.0f} s")
    return EXIT_OK


def _cmd_up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    stack = _stack()
    stack.up(build=not args.no_build, timeout=args.timeout)
    print(f"stack {stack.project} healthy in {time.monotonic() - started:.0f} s")
    print(json.dumps(stack.endpoints().as_dict(), indent=2))
    return EXIT_OK


def _cmd_down(args: argparse.Namespace) -> int:
    _stack().down(volumes=args.volumes)
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    status = _stack().status()
    if args.json:
        print(json.dumps(status.as_dict(), indent=2))
    else:
        for name, service in status.services.items():
            mark = "ok " if service.healthy else "BAD"
            print(f"{mark} {name:8} {service.state:10} {service.health}")
        print(f"rabbitmq one cluster: {status.cluster.one_cluster}  {status.cluster.running_nodes}")
        if status.endpoints:
            print(f"api {status.endpoints.api}  live {status.endpoints.live}")
    return EXIT_OK if status.healthy else EXIT_DEVIATED


def _cmd_token(args: argparse.Namespace) -> int:
    print(credentials.admin_token() if args.admin else credentials.agent_token(args.agent))
    return EXIT_OK


def _cmd_heal(args: argparse.Namespace) -> int:
    from harness.stack.heal import heal

    report = heal(_stack(), timeout=args.timeout)
    for line in report.reverted + report.repaired:
        print(f"- {line}")
    for line in report.errors:
        print(f"! {line}", file=sys.stderr)
    print(f"healthy after {report.seconds:.1f} s")
    return EXIT_OK


def _cmd_list(args: argparse.Namespace) -> int:
    from harness.engine.scenario import all_scenarios

    for scenario in all_scenarios():
        print(f"{scenario.id:40} {scenario.title}")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.engine.runner import run_scenario
    from harness.engine.scenario import scenario_class
    from harness.interfaces.console import print_result, progress_printer

    scenario = scenario_class(args.scenario)()
    report_dir = (
        Path(args.report_dir) if args.report_dir else Path("reports") / f"{scenario.id}-{args.profile}"
    )
    with progress_printer() as progress:
        result = run_scenario(
            scenario, _stack(), profile=args.profile, seed=args.seed, report_dir=report_dir, progress=progress
        )
    print_result(result, report_dir)
    return result.exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="outage", description="Replay real outages against a real stack.")
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build the stack's images (no registry needed)")
    build.add_argument("--no-cache", action="store_true")
    build.set_defaults(handler=_cmd_build)

    up = commands.add_parser("up", help="build if needed, start, wait until healthy")
    up.add_argument("--no-build", action="store_true", help="use the images as they are")
    up.add_argument("--timeout", type=float, default=300)
    up.set_defaults(handler=_cmd_up)

    down = commands.add_parser("down", help="stop and remove the stack")
    down.add_argument("--volumes", action="store_true", help="also delete the data volumes")
    down.set_defaults(handler=_cmd_down)

    status = commands.add_parser("status", help="health of every service; exit 0 only when all is healthy")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_cmd_status)

    token = commands.add_parser("token", help="print a bearer token for the api and the live server")
    who = token.add_mutually_exclusive_group()
    who.add_argument("--admin", action="store_true")
    who.add_argument("--agent", default="agent-1")
    token.set_defaults(handler=_cmd_token)

    heal = commands.add_parser("heal", help="revert every leftover fault, wait until healthy")
    heal.add_argument("--timeout", type=float, default=240)
    heal.set_defaults(handler=_cmd_heal)

    listing = commands.add_parser("list", help="scenario ids and titles")
    listing.set_defaults(handler=_cmd_list)

    run = commands.add_parser("run", help="run a scenario: exit 0 held, 1 deviated, 2 harness error")
    run.add_argument("scenario", help="a scenario id (see `outage list`)")
    run.add_argument("--profile", choices=("hardened", "vulnerable"), default="hardened")
    run.add_argument("--seed", type=int, default=1)
    run.add_argument("--report-dir", help="where summary.json, timeline.jsonl and debrief.md go")
    run.set_defaults(handler=_cmd_run)

    from harness.interfaces import drill_cli

    drill_cli.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return EXIT_HARNESS_ERROR
    except Exception as exc:  # the harness itself failed: say what, exit 2
        print(f"outage: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_HARNESS_ERROR


if __name__ == "__main__":
    sys.exit(main())
