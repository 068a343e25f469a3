"""JUnit XML for a suite of scenario runs, the format every CI server reads.

One <testsuite> per scenario and profile, one <testcase> per check. A failed check is a <failure>
that carries what was observed against what was expected; a run whose harness failed has no checks
to judge, so it is one <testcase> with an <error>.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.record.report import RunResult


def _testsuite(result: RunResult, report_dir: Path) -> ET.Element:
    name = f"{result.scenario}[{result.profile}]"
    checks = result.checks
    suite = ET.Element(
        "testsuite",
        name=name,
        tests=str(len(checks) + (1 if result.error else 0)),
        failures=str(len(result.failed_checks)),
        errors="1" if result.error else "0",
        skipped="0",
        time=f"{result.wall_s:.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("scenario", result.scenario),
        ("profile", result.profile),
        ("seed", str(result.seed)),
        ("verdict", result.verdict),
        ("lost", str(result.messages.get("lost", 0))),
        ("report_dir", str(report_dir)),
    ):
        ET.SubElement(properties, "property", name=key, value=value)
    for check in checks:
        case = ET.SubElement(suite, "testcase", classname=name, name=check.name, time="0")
        if not check.passed:
            failure = ET.SubElement(
                case, "failure", message=f"observed {check.observed}, expected {check.expected}"
            )
            failure.text = f"observed: {check.observed}\nexpected: {check.expected}\n"
    if result.error:
        case = ET.SubElement(suite, "testcase", classname=name, name="harness", time=f"{result.wall_s:.3f}")
        error = ET.SubElement(case, "error", message=result.error)
        error.text = f"the harness itself failed: {result.error}\nreport: {report_dir}\n"
    return suite


def junit_xml(results: list[RunResult], report_dirs: list[Path]) -> str:
    """The whole suite as one <testsuites> document."""
    root = ET.Element("testsuites", name="outage")
    for result, report_dir in zip(results, report_dirs, strict=True):
        root.append(_testsuite(result, report_dir))
    root.set("tests", str(sum(int(s.get("tests", "0")) for s in root)))
    root.set("failures", str(sum(int(s.get("failures", "0")) for s in root)))
    root.set("errors", str(sum(int(s.get("errors", "0")) for s in root)))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit_xml(path: Path, results: list[RunResult], report_dirs: list[Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(results, report_dirs), encoding="utf-8")
