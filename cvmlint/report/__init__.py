"""Reporters: each turns a Report into text (table, json)."""

from cvmlint.report.interface import Reporter
from cvmlint.report.json import JsonReporter, report_to_json
from cvmlint.report.table import TableReporter

__all__ = ["JsonReporter", "Reporter", "TableReporter", "report_to_json"]
