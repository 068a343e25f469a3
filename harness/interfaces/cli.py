"""The `outage` command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from harness.stack import credentials

EXIT_OK, EXIT_DEVIATED, EXIT_HARNESS_ERROR = 0, 1, 2
EXIT_NOT_REPAIRED = 1  # `outage heal`: something it found could not be put back
EXIT_USAGE = 64  # sysexits' EX_USAGE: a bad command line (argparse's own 2 means "harness failed" here)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
PROFILES = ("hardened", "vulnerable")


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on exit 64 so that 2 keeps meaning "the harness failed"."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _say(text: str) -> None:
    """Human output that must never mix with a JSON document on stdout."""
    print(text, file=sys.stderr, flush=True)


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
    status = stack.status()
    message = f"stack {stack.project} healthy in {time.monotonic() - started:.0f} s"
    if args.json:  # the same document as `outage status --json`, alone on stdout
        _say(message)
        print(json.dumps(status.as_dict(), indent=2))
    else:
        print(message)
        _print_endpoints(status)
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
        _print_endpoints(status)
    return EXIT_OK if status.healthy else EXIT_DEVIATED


def _print_endpoints(status) -> None:
    if status.endpoints:
        print(f"api {status.endpoints.api}  live {status.endpoints.live}")


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
    if report.errors:
        print(f"healthy after {report.seconds:.1f} s, but {len(report.errors)} thing(s) were not repaired")
        return EXIT_NOT_REPAIRED
    print(f"healthy after {report.seconds:.1f} s")
    return EXIT_OK


def _cmd_list(args: argparse.Namespace) -> int:
    from harness.engine.scenario import all_scenarios

    scenarios = all_scenarios()
    width = max((len(scenario.id) for scenario in scenarios), default=0)
    for scenario in scenarios:
        print(f"{scenario.id:{width}}  {scenario.title}")
    return EXIT_OK


def _chosen_scenarios(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    """The ids to run, each known, or a usage error (exit 64) before anything starts."""
    from harness.engine.scenario import ScenarioError, all_scenarios, scenario_class

    if args.all == bool(args.scenarios):
        parser.error("name scenario ids or --all (not both)")
    if args.all:
        return [scenario.id for scenario in all_scenarios()]
    for scenario_id in args.scenarios:
        try:
            scenario_class(scenario_id)
        except ScenarioError as exc:
            parser.error(str(exc))
    return list(dict.fromkeys(args.scenarios))


def _cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from harness.engine.runner import run_scenario
    from harness.engine.scenario import scenario_class
    from harness.interfaces.console import print_result, progress_printer, results_table
    from harness.interfaces.junit import write_junit_xml
    from harness.interfaces.suite import plan_runs, suite_document, suite_exit_code

    profiles = list(dict.fromkeys(args.profile or ["hardened"]))
    chosen = _chosen_scenarios(args, args.parser)
    if args.dry_run:
        from harness.engine.plan import render

        for scenario_id in chosen:
            print(render(scenario_class(scenario_id)(), tuple(profiles)), end="")
        return EXIT_OK
    planned = plan_runs(chosen, profiles, args.report_dir, args.seed)
    # Whenever stdout carries the JSON document, everything meant for people goes to stderr.
    human = Console(width=120, stderr=args.json)
    stack = _stack()
    results = []
    for plan in planned:
        with progress_printer() as progress:
            result = run_scenario(
                scenario_class(plan.scenario)(),
                stack,
                profile=plan.profile,
                seed=args.seed,
                report_dir=plan.report_dir,
                progress=progress,
            )
        results.append(result)
        print_result(result, plan.report_dir, console=human)
    report_dirs = [plan.report_dir for plan in planned]
    if len(results) > 1:
        human.print(results_table(results))
    if args.junit_xml:
        write_junit_xml(Path(args.junit_xml), results, report_dirs)
        human.print(f"JUnit XML: {args.junit_xml}")
    if args.json:
        print(json.dumps(suite_document(results, report_dirs), indent=2, default=str))
    return suite_exit_code(results)


def _cmd_check(args: argparse.Namespace) -> int:
    from harness.checks.recheck import RecheckError, recheck
    from harness.interfaces.console import print_result

    codes, disagreements = [], []
    for report_dir in args.report_dirs:
        try:
            outcome = recheck(report_dir)
        except RecheckError as exc:
            print(f"outage check: {exc}", file=sys.stderr)
            codes.append(EXIT_HARNESS_ERROR)
            continue
        if outcome.partial:
            print(f"partial record ({report_dir}): " + "; ".join(outcome.problems), file=sys.stderr)
        print_result(outcome.result)
        live, again = outcome.live_verdict, outcome.result.verdict
        if live is not None and live != again:
            print(f"{report_dir}: the live run said {live}; the record says {again}")
            disagreements.append(report_dir)
        codes.append(outcome.result.exit_code)
    if args.against_live:
        return EXIT_DEVIATED if disagreements or EXIT_HARNESS_ERROR in codes else EXIT_OK
    return max(codes, default=EXIT_OK)


def build_parser() -> argparse.ArgumentParser:
    from harness.interfaces.suite import outage_version

    parser = _Parser(
        prog="outage",
        description="Replay real outages against a real stack.",
        epilog="exit codes: 0 ok/held, 1 deviated (or not healthy, not repaired), 2 the harness failed, "
        "64 usage error, 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {outage_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build the stack's images (no registry needed)")
    build.add_argument("--no-cache", action="store_true")
    build.set_defaults(handler=_cmd_build)

    up = commands.add_parser("up", help="build if needed, start, wait until healthy")
    up.add_argument("--no-build", action="store_true", help="use the images as they are")
    up.add_argument("--timeout", type=float, default=300)
    up.add_argument("--json", action="store_true", help="print the status document (as status --json) only")
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

    run = commands.add_parser(
        "run", help="run scenarios: exit 0 all held, 1 any deviated, 2 any harness error"
    )
    run.add_argument("scenarios", nargs="*", metavar="ID", help="scenario ids (see `outage list`)")
    run.add_argument("--all", action="store_true", help="run every installed scenario")
    run.add_argument(
        "--profile",
        action="append",
        choices=PROFILES,
        help="repeat to run both profiles (default: hardened)",
    )
    run.add_argument("--seed", type=int, default=1)
    run.add_argument(
        "--report-dir",
        help="where summary.json, timeline.jsonl, history.jsonl and debrief.md go; "
        "with several runs, one <scenario>/<profile>/ subdirectory each (default: reports)",
    )
    run.add_argument("--json", action="store_true", help="one JSON document on stdout; the rest on stderr")
    run.add_argument("--junit-xml", metavar="FILE", help="write a JUnit XML file: a testsuite per run")
    run.add_argument(
        "--dry-run", action="store_true", help="print the plan and the profiles' settings diff; touch nothing"
    )
    run.set_defaults(handler=_cmd_run, parser=run)

    check = commands.add_parser(
        "check",
        help="re-judge a recorded run from its files alone (no Docker): exit 0 held, 1 deviated, 2 unusable",
    )
    check.add_argument("report_dirs", nargs="+", metavar="REPORT_DIR", help="a run's report directory")
    check.add_argument(
        "--against-live",
        action="store_true",
        help="exit 0 only when every record gives the verdict its live run gave (for CI)",
    )
    check.set_defaults(handler=_cmd_check)

    from harness.interfaces import drill_cli

    drill_cli.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("outage: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # the harness itself failed: say what, exit 2
        print(f"outage: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_HARNESS_ERROR


if __name__ == "__main__":
    sys.exit(main())
