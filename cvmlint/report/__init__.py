"""Reporters: each turns a Report into one output format: text (the terminal view), table, json, html,
sarif, junit, github (workflow commands), gitlab (Code Quality); `build` renders a build's view and
record, `places` says where a finding is for the CI formats. Each is imported only when asked for."""

from cvmlint.report.interface import Reporter
from cvmlint.report.json import JsonReporter, report_to_json
from cvmlint.report.table import TableReporter

__all__ = ["JsonReporter", "Reporter", "TableReporter", "report_to_json"]
