"""The recipe reader against real mkosi (25.3 and 27.1) and real systemd-repart (257 and 262).

Every corpus case is read three ways (see tests/recipe/differential.py) and the views must agree.
A documented version difference names the mkosi version and the reason; everything else is a bug.
The corpus: our recipes (every mkosi profile), mkosi's own shipped configurations for several
distributions, and small trees in tests/recipe/corpus/, one per corner of mkosi's configuration
parser.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.recipe.differential import (
    RESOURCES,
    Case,
    cvmlint_layout,
    cvmlint_view,
    fresh_work,
    mkosi_summary,
    mkosi_view,
    prefetch_layouts,
    repart_layout,
    repart_view,
)
from tests.tools import SID, TRIXIE, tool_root

pytestmark = pytest.mark.slow
CORPUS = ROOT / "tests/recipe/corpus"
VERSIONS = {"25": TRIXIE, "27": SID}
SPACES = "mkosi 25 does not split list items on spaces (26 and later do); cvmlint follows 26+ and warns"
UKI_YES = "UnifiedKernelImages=yes is `enabled` (build one) in mkosi 25, `signed` (copy a prebuilt one) in 26+"
UKI_26 = "UnifiedKernelImages=signed/unsigned/none are new in mkosi 26: mkosi 25 refuses them; cvmlint warns"
LOCAL = "mkosi 25 reads mkosi.local/ or mkosi.local.conf, mkosi 26+ both; cvmlint follows 26+"
UEFI = "[Match] Architecture=uefi is new in mkosi 26: mkosi 25 refuses the value; cvmlint warns"
HOST = "decided on the build host (cvmlint: unknown, by design); the invariant test checks nothing passes"
CONFIGURE = "mkosi.configure rewrites the configuration at build time: cvmlint never runs it (unknown, by design)"


def our_cases() -> list[Case]:
    cases = []
    for name in ("tdx-base", "tdx-gpu", "sev-snp-base", "sev-snp-gpu"):
        for profiles in ((), ("dev",)):
            label = name + ("+" + "+".join(profiles) if profiles else "")
            cases.append(Case(label, ROOT / "recipes" / name, ROOT / "recipes", profiles=profiles))
    return cases


def corpus_cases() -> list[Case]:
    special: dict[str, dict[str, object]] = {
        "profiles+dev": {"profiles": ("dev",)},
        "profiles+both": {"profiles": ("both",)},
        "cli-distribution+debian": {"distribution": "debian", "release": "trixie", "architecture": "x86-64"},
        "cli-distribution+fedora": {"distribution": "fedora", "release": "42", "architecture": "arm64"},
        "lists-space": {"known": {"25": SPACES}},
        "uki-yes": {"known": {"25": UKI_YES}},
        "match-uefi": {"known": {"25": UEFI}},
        "uki-unsigned": {"known": {"25": UKI_26}},
        "local-both": {"known": {"25": LOCAL}},
        "profiles-twice+a": {"profiles": ("a",)},
        "attack-path-exists": {"known": {"25": HOST, "27": HOST}},
        "attack-environment": {"known": {"25": HOST, "27": HOST}},
        "attack-configure": {"known": {"25": CONFIGURE, "27": CONFIGURE}},
        "fuzz-08fb92ede4": {"known": {"25": UKI_26}},
        "fuzz-7cac7043dc": {"known": {"25": UKI_26}},
    }
    names = sorted(
        p.name
        for p in CORPUS.iterdir()
        if (p / "mkosi.conf").is_file() and p.name != "common" and not p.name.endswith("-lib")
    )
    cases = []
    for name in names:
        variants = [k for k in special if k.split("+")[0] == name] or [name]
        for label in variants:
            options = special.get(label, {})
            cases.append(Case(label, CORPUS / name, CORPUS, **options))  # type: ignore[arg-type]
    return cases


MKOSI_OWN = [
    (config, distribution, release)
    for config in ("mkosi-vm", "mkosi-tools", "mkosi-initrd")
    for distribution, release in (
        ("debian", "trixie"),
        ("ubuntu", "noble"),
        ("fedora", "42"),
        ("arch", "rolling"),
        ("opensuse", "tumbleweed"),
        ("centos", "10"),
    )
]


def mkosi_own_case(root: Path, config: str, distribution: str, release: str) -> Case:
    inside = Path("/") / RESOURCES / config
    return Case(
        f"{config}-{distribution}",
        root / RESOURCES / config,
        root / RESOURCES,
        inside=inside,
        distribution=distribution,
        release=release,
        architecture="x86-64",
        host_architecture=platform.machine().replace("_", "-"),
    )


@pytest.fixture(scope="module", params=sorted(VERSIONS))
def mkosi_root(request: pytest.FixtureRequest) -> tuple[str, Path]:
    return request.param, tool_root(VERSIONS[request.param])


def agree(case: Case, version: str, root: Path, work: Path) -> None:
    if version in case.known:
        pytest.skip(f"documented version difference: {case.known[version]}")
    os.environ["CVMLINT_MKOSI_RESOURCES"] = str(root / RESOURCES)  # Include=mkosi-vm reads this version's
    ours, _ = cvmlint_view(case)
    theirs = mkosi_view(mkosi_summary(root, case), case, work)
    unknown = {k for k, v in ours.items() if v == "unknown"}
    assert {k: v for k, v in ours.items() if k not in unknown} == {
        k: v for k, v in theirs.items() if k in ours and k not in unknown
    }
    needless = {k for k in unknown if theirs.get(k) != "unknown"}
    assert not needless, f"cvmlint leaves {sorted(needless)} unknown where mkosi knows them"


@pytest.mark.parametrize("case", our_cases() + corpus_cases(), ids=lambda c: c.name)
def test_settings_agree_with_mkosi(case: Case, mkosi_root: tuple[str, Path], tmp_path: Path) -> None:
    version, root = mkosi_root
    agree(case, version, root, tmp_path)


@pytest.mark.parametrize(("config", "distribution", "release"), MKOSI_OWN, ids=[f"{c}-{d}" for c, d, _ in MKOSI_OWN])
def test_mkosi_own_configurations_agree(
    config: str, distribution: str, release: str, mkosi_root: tuple[str, Path], tmp_path: Path
) -> None:
    version, root = mkosi_root
    agree(mkosi_own_case(root, config, distribution, release), version, root, tmp_path)


LAYOUT_CASES = [c for c in our_cases() + corpus_cases() if not c.profiles]


@pytest.fixture(scope="module")
def layouts_started(mkosi_root: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory) -> None:
    """systemd-repart started on every case's definitions at once (it runs in the tool root, the
    tests only wait for their own layout)."""
    version, root = mkosi_root
    lists = []
    for case in LAYOUT_CASES:
        if version not in case.known:
            summary = mkosi_summary(root, case)
            if summary["Format"] == "disk" and summary["RepartDirectories"]:
                lists.append(summary["RepartDirectories"])
    prefetch_layouts(root, lists, tmp_path_factory.mktemp(f"repart-{version}"))


@pytest.mark.parametrize("case", LAYOUT_CASES, ids=lambda c: c.name)
def test_partition_layout_agrees_with_systemd_repart(
    case: Case, mkosi_root: tuple[str, Path], layouts_started: None, tmp_path: Path
) -> None:
    version, root = mkosi_root
    if version in case.known:
        pytest.skip(f"documented version difference: {case.known[version]}")
    summary = mkosi_summary(root, case)
    if summary["Format"] != "disk" or not summary["RepartDirectories"]:
        pytest.skip("no repart definitions: mkosi's default layout (checked in test_default_layout)")
    layout = repart_layout(root, summary["RepartDirectories"], fresh_work(tmp_path))
    if layout.error:  # systemd-repart refuses the layout: cvmlint must say so
        _, warnings = cvmlint_view(case)
        assert any("systemd-repart refuses the layout" in w for w in warnings), (layout.error, warnings)
        return
    assert cvmlint_layout(case) == repart_view(layout, case, root)
