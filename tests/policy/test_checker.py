"""Load-time checks: unknown facts with suggestions, types, names, duplicates, profiles."""

from __future__ import annotations

import pytest

from cvmlint.errors import InputError, PolicyError


def errors(policy_of, text: str, files: dict[str, str] | None = None) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(PolicyError) as info:
        policy_of(text, files=files)
    return info.value.diagnostics()


RULE = 'rule R-1 "t" {{\n  severity high\n  require {}\n}}\n'


def test_misspelt_fact_field_suggests_the_right_one(policy_of) -> None:  # type: ignore[no-untyped-def]
    text = errors(policy_of, RULE.format('rootfs.fromat == "erofs"'))
    assert text.splitlines()[:3] == [
        "p.cvmp:4:18: error: unknown fact 'rootfs.fromat'; did you mean 'rootfs.format'?",
        '    4 |   require rootfs.fromat == "erofs"',
        "      |                  ^^^^^^",
    ]


def test_misspelt_top_level_fact(policy_of) -> None:  # type: ignore[no-untyped-def]
    assert "unknown name 'pakages'; did you mean 'packages'?" in errors(
        policy_of, RULE.format("all p in pakages: true")
    )


def test_comparing_a_list_to_a_string_is_a_type_error(policy_of) -> None:  # type: ignore[no-untyped-def]
    text = errors(policy_of, RULE.format('packages == "bash"'))
    assert "cannot compare list[Package] with str" in text


def test_field_access_on_a_collection_says_how_to_quantify(policy_of) -> None:  # type: ignore[no-untyped-def]
    assert "quantify over it (all x in packages: x.name" in errors(policy_of, RULE.format('packages.name == "x"'))


def test_undefined_names_and_variables(policy_of) -> None:  # type: ignore[no-untyped-def]
    text = errors(policy_of, RULE.format('all p in packages: q.name == "x"'))
    assert "unknown name 'q'" in text


def test_record_field_typo_on_a_variable(policy_of) -> None:  # type: ignore[no-untyped-def]
    assert "Package has no field 'nmae'; did you mean 'name'?" in errors(
        policy_of, RULE.format('all p in packages: p.nmae == "x"')
    )


def test_ordering_strings_is_refused_but_versions_are_ordered(policy_of) -> None:  # type: ignore[no-untyped-def]
    assert "'<' orders numbers or versions" in errors(policy_of, RULE.format('rootfs.format < "z"'))
    policy_of(RULE.format('all p in packages: p.version >= "1.0"'))


def test_condition_must_be_boolean(policy_of) -> None:  # type: ignore[no-untyped-def]
    assert "a requirement must be true or false, but 'rootfs.format' is a str" in errors(
        policy_of, RULE.format("rootfs.format")
    )


def test_invalid_regex_is_caught_at_load(policy_of) -> None:  # type: ignore[no-untyped-def]
    assert "invalid regular expression" in errors(policy_of, RULE.format('rootfs.format matches "(unclosed"'))


def test_a_backtracking_only_pattern_is_refused_at_its_line(policy_of) -> None:  # type: ignore[no-untyped-def]
    text = errors(policy_of, RULE.format(r'rootfs.format matches "^(a)\\1$"'))
    assert ":4:33:" in text and "invalid regular expression" in text and "no back-references" in text


def test_message_may_only_name_known_things(policy_of) -> None:  # type: ignore[no-untyped-def]
    text = errors(policy_of, 'rule R-1 "t" {\n  require all p in packages: true else "{p.nam} {x}"\n}\n')
    assert "Package has no field 'nam'" in text and "unknown name 'x'" in text


def test_duplicate_rule_ids_across_includes(policy_of) -> None:  # type: ignore[no-untyped-def]
    text = errors(
        policy_of,
        'include "b.cvmp"\n' + RULE.format("true"),
        {"b.cvmp": 'policy "b" version "1"\n' + RULE.format("true")},
    )
    assert "duplicate rule id 'R-1' (first defined at b.cvmp:2:6)" in text


def test_include_cycle_is_refused(policy_of) -> None:  # type: ignore[no-untyped-def]
    text = errors(policy_of, 'include "b.cvmp"\n', {"b.cvmp": 'policy "b" version "1"\ninclude "p.cvmp"\n'})
    assert "include cycle: p.cvmp -> b.cvmp -> p.cvmp" in text


def test_missing_include_names_the_line(policy_of) -> None:  # type: ignore[no-untyped-def]
    text = errors(policy_of, 'include "nope.cvmp"\n')
    assert text.startswith("p.cvmp:2:9: error: cannot read policy nope.cvmp")


def test_severity_and_target_names_are_checked(policy_of) -> None:  # type: ignore[no-untyped-def]
    text = errors(policy_of, 'rule R-1 "t" {\n  severity hihg\n  targets imgae\n  require true\n}\n')
    assert "unknown severity 'hihg'; did you mean 'high'?" in text
    assert "unknown target 'imgae'; did you mean 'image'?" in text


def test_rule_without_a_requirement_for_a_target(policy_of) -> None:  # type: ignore[no-untyped-def]
    text = errors(policy_of, 'rule R-1 "t" {\n  on image: require true\n}\n')
    assert "rule R-1 applies to recipe but has no requirement for it" in text


def test_let_must_be_constant(policy_of) -> None:  # type: ignore[no-untyped-def]
    assert "let values are constants, but 'rootfs' is a fact" in errors(policy_of, "let x = rootfs.format\n")


def test_duplicate_let(policy_of) -> None:  # type: ignore[no-untyped-def]
    assert "duplicate let 'x'" in errors(policy_of, "let x = 1\nlet x = 2\n")


def test_profile_checks(policy_of) -> None:  # type: ignore[no-untyped-def]
    text = errors(
        policy_of,
        'let names = ["a"]\n'
        + RULE.format("true")
        + 'profile dev {\n  let nmes = ["b"]\n  let names = 3\n  disable R-2 "x"\n  severity R-1 hgh\n}\n',
    )
    assert "profile dev overrides 'nmes', which is not a let of the policy; did you mean 'names'?" in text
    assert "profile dev gives 'names' a int; the policy's is a list[str]" in text
    assert "profile dev names unknown rule R-2; did you mean 'R-1'?" in text
    assert "unknown severity 'hgh'" in text


def test_unknown_profile_on_the_command_line(policy_of) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="has no profile 'dve'; did you mean 'dev'"):
        policy_of(RULE.format("true") + "profile dev {\n}\n", profiles=("dve",))


def test_allowlist_errors_point_at_the_line(policy_of) -> None:  # type: ignore[no-untyped-def]
    text = errors(policy_of, 'use list "a.txt" as allowed\n', {"a.txt": "bash\nfoo (< 1.0)\nBad!\n"})
    assert "a.txt:2:5: error: ambiguous operator '<'" in text


def test_all_errors_are_reported_at_once(policy_of) -> None:  # type: ignore[no-untyped-def]
    text = errors(
        policy_of, RULE.format('rootfs.fromat == "x"') + 'rule R-2 "t" {\n  require verity.rot_hash == "x"\n}\n'
    )
    assert "rootfs.fromat" in text and "verity.rot_hash" in text


def test_missing_rationale_is_a_warning(policy_of) -> None:  # type: ignore[no-untyped-def]
    policy = policy_of(RULE.format("true"))
    assert [w.message for w in policy.warnings] == ["rule R-1 has no rationale", "rule R-1 has no remediation"]
