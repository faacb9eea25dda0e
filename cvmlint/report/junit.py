"""JUnit XML: a test suite per target, a test case per rule. A failing rule is a `<failure>` listing its
findings, an unknown one an `<error>` with the reason (the check could not be made), a skipped or
waived one `<skipped>` with why."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree import ElementTree as ET

from cvmlint.policy.results import Report, Status


class JunitReporter:
    """One `<testsuites>` document."""

    def render(self, report: Report, exit_code: int) -> str:
        return self.render_all([(report, exit_code)])

    def render_all(self, reports: Sequence[tuple[Report, int]]) -> str:
        suites = ET.Element("testsuites", name="cvmlint")
        for report, _ in reports:
            counts = report.summary()
            suite = ET.SubElement(
                suites,
                "testsuite",
                name=f"{report.target.kind} {report.target.name}",
                tests=str(len(report.results)),
                failures=str(counts["fail"]),
                errors=str(counts["unknown"] + counts["error"]),
                skipped=str(counts["skipped"] + counts["waived"]),
            )
            for r in report.results:
                case = ET.SubElement(
                    suite,
                    "testcase",
                    classname=f"cvmlint.{report.target.kind}.{report.target.name}",
                    name=f"{r.rule_id} {r.title}",
                )
                findings = "\n".join(f"{f.message} at {f.location}" if f.location else f.message for f in r.findings)
                if r.status is Status.FAIL:
                    first = r.findings[0].message if r.findings else r.title
                    ET.SubElement(case, "failure", message=first, type=r.severity).text = findings
                elif r.status in (Status.UNKNOWN, Status.ERROR):
                    ET.SubElement(
                        case, "error", message="; ".join(r.reasons) or r.status.value, type=r.status.value
                    ).text = "\n".join(r.reasons)
                elif r.status in (Status.SKIPPED, Status.WAIVED):
                    why = "; ".join(r.reasons) or (f"waived: {findings}" if r.status is Status.WAIVED else r.note)
                    ET.SubElement(case, "skipped", message=why or r.status.value)
        ET.indent(suites)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
