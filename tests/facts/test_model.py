"""The fact model: immutability, unknowns, JSON round trip, decode errors."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cvmlint.errors import InputError
from cvmlint.facts import (
    Facts,
    File,
    Items,
    Kernel,
    KernelStrings,
    Package,
    Param,
    Provenance,
    RootFs,
    Target,
    Unknown,
    dump_facts,
    facts_from_json,
    load_facts_file,
)
from cvmlint.facts.model import DebVersion
from tests.conftest import ROOT


def sample() -> Facts:
    status = Provenance(partition="root", file="/var/lib/dpkg/status", line=3, sha256="ab" * 32)
    return Facts(
        target=Target(kind="image", name="img.raw", digest="sha256:00"),
        packages=Items([Package(name="bash", version=DebVersion("5.2.15-2"), origin="dpkg", where=status)], status),
        files=Unknown("root file system is encrypted", Provenance(partition="root", offset=4096)),
        rootfs=RootFs(format="erofs", read_only=True, field_where={"format": Provenance(partition="root")}),
        verity=Unknown("not computed: --no-verity"),
        cmdline=Items([Param(name="ro"), Param(name="roothash", value=Unknown("computed at build"))]),
        boot=Unknown("no ESP"),
        kernel=Kernel(version="6.1.0", strings=KernelStrings(["SANDBOX: Enabled"], ["SANDBOX: Enabled", "x"])),
        patches=Unknown("images carry no patch series"),
        mounts=Items(),
        partitions=Items(),
    )


def test_records_are_immutable() -> None:
    p = Package(name="bash", version=DebVersion("1"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.name = "zsh"  # type: ignore[misc]


def test_unknown_has_no_truth_value() -> None:
    with pytest.raises(TypeError, match="three-valued"):
        bool(Unknown("no database"))


def test_json_round_trip_keeps_values_unknowns_and_provenance() -> None:
    facts = sample()
    text = dump_facts(facts)
    again = facts_from_json(json.loads(text))
    assert again == facts
    assert dump_facts(again) == text
    assert isinstance(again.packages, Items)
    pkg = next(iter(again.packages))
    assert str(pkg.where) == "root:/var/lib/dpkg/status:3"
    assert isinstance(again.files, Unknown) and again.files.where == Provenance(partition="root", offset=4096)
    assert again.rootfs.located("format") == Provenance(partition="root")  # type: ignore[union-attr]


def test_kernel_strings_answers_only_what_was_searched() -> None:
    strings = KernelStrings(["a"], ["a", "b"])
    assert strings.contains("a") is True
    assert strings.contains("b") is False
    assert isinstance(strings.contains("c"), Unknown)
    assert KernelStrings(["a"]).contains("zzz") is False  # searched=None: complete knowledge


def test_missing_fact_in_json_is_unknown_with_reason() -> None:
    doc = json.loads(dump_facts(sample()))
    del doc["facts"]["rootfs"]
    facts = facts_from_json(doc, "saved.json")
    assert isinstance(facts.rootfs, Unknown)
    assert facts.rootfs.reason == "not recorded in saved.json"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(schema="other/1"), "not a cvmlint facts document"),
        (lambda d: d["facts"].update(bogus=1), "unknown fact"),
        (lambda d: d["facts"]["packages"]["items"][0].update(name=5), r"packages\[0\]\.name: expected str"),
        (lambda d: d["facts"]["packages"]["items"][0].pop("name"), "missing field 'name' of Package"),
        (lambda d: d["facts"]["rootfs"].update(colour="red"), "unknown field"),
        (lambda d: d["facts"]["packages"].update(where={"flie": "x"}), "location object"),
    ],
)
def test_malformed_facts_documents_are_input_errors(mutate, message) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(dump_facts(sample()))
    mutate(doc)
    with pytest.raises(InputError, match=message):
        facts_from_json(doc, "f.json")


def test_load_facts_file_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="cannot read"):
        load_facts_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\x00\xff not json")
    with pytest.raises(InputError, match="not a JSON facts file"):
        load_facts_file(bad)


def test_shipped_fixture_facts_load() -> None:
    facts = load_facts_file(ROOT / "policies/tests/facts/hardened-image.json")
    assert facts.target.kind == "image"
    assert any(p.name == "systemd" for p in facts.packages)  # type: ignore[union-attr]


def test_lazy_items_are_reread_each_time() -> None:
    calls = []

    def factory():  # type: ignore[no-untyped-def]
        calls.append(1)
        yield File(path="/a", name="a", type="file")

    items = Items(factory=factory)
    assert items.lazy
    assert [f.path for f in items] == ["/a"]
    assert [f.path for f in items] == ["/a"]
    assert len(calls) == 2
