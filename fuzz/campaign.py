#!/usr/bin/env python3
"""The long fuzzing campaign: every target of one reader family, one after another, for a total time.

    python3 fuzz/campaign.py FAMILY [--minutes 60] [--log DIR]
    python3 fuzz/campaign.py --list

Each target gets an equal share of the time through `fuzz/run.py`. A run that stops on a finding
(a crash, the memory or the time cap) is restarted from the grown corpus for the rest of its share,
so one defect does not end the campaign; each finding stays in `fuzz/crashes/`. At the end a table
gives, per target: executions, coverage (libFuzzer's `cov` edges and `ft` features), corpus units
and findings. The logs of each run are kept in DIR (default `fuzz/logs/`).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent

FAMILIES: dict[str, tuple[str, ...]] = {
    "filesystems": ("erofs", "ext4", "fat", "squashfs"),
    "containers": ("gpt", "disk", "qcow2", "vhd", "tar", "luks", "verity"),
    "boot": ("bzimage", "module", "pe", "cpio"),
    "measure": ("grub", "uki", "eventlog"),
    "text": ("dpkg", "copyright", "recipe", "policy"),
    "evidence": ("bundle", "record"),
}

_STATUS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)")
_FINDING = re.compile(r"Test unit written to (\S+)")
_EXECS = re.compile(r"stat::number_of_executed_units: (\d+)")


@dataclass
class Tally:
    target: str
    seconds: float = 0.0
    executions: int = 0
    cov: int = 0
    ft: int = 0
    corpus: int = 0
    findings: list[str] = field(default_factory=list)

    def add_run(self, log: str) -> None:
        statuses = [m for m in map(_STATUS.match, log.splitlines()) if m]
        execs = _EXECS.findall(log)
        # a run stopped by a finding prints no final stats: its last status line counts
        self.executions += int(execs[-1]) if execs else int(statuses[-1].group(1)) if statuses else 0
        if statuses:
            last = statuses[-1]
            self.cov, self.ft, self.corpus = (
                max(self.cov, int(last.group(2))),
                max(self.ft, int(last.group(3))),
                int(last.group(4)),
            )
        self.findings += _FINDING.findall(log)


def run_target(target: str, seconds: int, logs: Path) -> Tally:
    tally = Tally(target)
    deadline = time.monotonic() + seconds
    attempt = 0
    while (left := int(deadline - time.monotonic())) > 10:
        attempt += 1
        started = time.monotonic()
        log_file = logs / f"{target}-{attempt}.log"
        with log_file.open("w") as log:
            subprocess.run(
                [sys.executable, str(HERE / "run.py"), target, "--seconds", str(left)],
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        tally.seconds += time.monotonic() - started
        tally.add_run(log_file.read_text(errors="replace"))
    return tally


def table(tallies: list[Tally]) -> str:
    rows = [
        "| target | seconds | executions | cov | ft | corpus | findings |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for t in tallies:
        found = ", ".join(Path(f).name for f in t.findings) or "none"
        rows.append(f"| {t.target} | {t.seconds:.0f} | {t.executions:,} | {t.cov} | {t.ft} | {t.corpus} | {found} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family", nargs="?", choices=sorted(FAMILIES))
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--log", type=Path, default=HERE / "logs")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    if args.list or not args.family:
        for name, targets in FAMILIES.items():
            print(f"{name}: {' '.join(targets)}")
        return
    args.log.mkdir(parents=True, exist_ok=True)
    targets = FAMILIES[args.family]
    share = int(args.minutes * 60 / len(targets))
    tallies = []
    for target in targets:
        tallies.append(run_target(target, share, args.log))
        print(table(tallies[-1:]).splitlines()[-1], flush=True)
    print(f"\n{args.family}, {args.minutes:g} minutes:\n{table(tallies)}")


if __name__ == "__main__":
    main()
