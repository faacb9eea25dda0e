"""The mkosi configuration reader: mkosi v26's syntax and precedence, with exact locations."""

from __future__ import annotations

from pathlib import Path

import pytest

from cvmlint.errors import InputError
from cvmlint.facts import Boot, Items, Unknown
from cvmlint.recipe import ini
from cvmlint.recipe.mkosi import MkosiConfig, read_recipe
from tests.recipe.conftest import Maker


def texts(config: MkosiConfig, name: str) -> list[str]:
    return [v.text for v in config.items(name)]


def places(config: MkosiConfig, name: str) -> list[str]:
    return [str(v.where) for v in config.items(name)]


def test_multi_line_values_keep_going_across_comments_and_blank_lines(make_tree: Maker) -> None:
    make_tree(
        {
            "r/mkosi.conf": """
        [Content]
        Packages=
                systemd
                # a comment line inside the list

                udev   # a comment after a value
                dbus,kmod
        KernelCommandLine=console=ttyS0 lockdown=integrity#cut here
        """
        }
    )
    config = read_recipe(Path("r"))
    assert texts(config, "Packages") == ["systemd", "udev", "dbus", "kmod"]
    assert places(config, "Packages") == ["r/mkosi.conf:3", "r/mkosi.conf:6", "r/mkosi.conf:7", "r/mkosi.conf:7"]
    assert texts(config, "KernelCommandLine") == ["console=ttyS0", "lockdown=integrity"]


def test_lists_accumulate_scalars_override_and_empty_resets(make_tree: Maker) -> None:
    make_tree(
        {
            "r/mkosi.conf": """
            [Distribution]
            Distribution=debian
            [Content]
            Packages=a
            RemoveFiles=/x
            """,
            "r/mkosi.conf.d/20-late.conf": """
            [Distribution]
            Distribution=ubuntu
            [Content]
            Packages=c
            RemoveFiles=
            """,
            "r/mkosi.conf.d/10-early.conf": "[Content]\nPackages=b\n",
            "r/mkosi.conf.d/README": "not a .conf: ignored [[[",
        }
    )
    config = read_recipe(Path("r"))
    assert texts(config, "Packages") == ["a", "b", "c"]  # mkosi.conf, then drop-ins in name order
    assert config.scalar("Distribution") == "ubuntu"
    assert str(config.scalars["Distribution"].where) == "r/mkosi.conf.d/20-late.conf:2"
    assert texts(config, "RemoveFiles") == []


def test_match_profiles_and_triggers(make_tree: Maker) -> None:
    make_tree(
        {
            "r/mkosi.conf": "[Distribution]\nDistribution=ubuntu\n[Content]\nPackages=base\n",
            "r/mkosi.conf.d/10-ubuntu.conf": "[Match]\nDistribution=ubuntu\n[Content]\nPackages=for-ubuntu\n",
            "r/mkosi.conf.d/11-not-debian.conf": "[Match]\nDistribution=!debian\n[Content]\nPackages=not-debian\n",
            "r/mkosi.conf.d/12-fedora.conf": "[Match]\nDistribution=fedora\n[Content]\nPackages=for-fedora\n",
            "r/mkosi.conf.d/13-either.conf": """
            [TriggerMatch]
            Distribution=fedora
            [TriggerMatch]
            Profiles=dev
            [Content]
            Packages=fedora-or-dev
            """,
            "r/mkosi.profiles/dev.conf": "[Content]\nPackages=gdb\n",
        }
    )
    assert texts(read_recipe(Path("r")), "Packages") == ["base", "for-ubuntu", "not-debian"]
    with_dev = read_recipe(Path("r"), ["dev"])
    assert texts(with_dev, "Packages") == ["base", "for-ubuntu", "not-debian", "fedora-or-dev", "gdb"]
    assert places(with_dev, "Packages")[-1] == "r/mkosi.profiles/dev.conf:2"


def test_a_false_match_in_mkosi_conf_skips_the_whole_directory(make_tree: Maker) -> None:
    make_tree(
        {
            "r/mkosi.conf": "[Content]\nPackages=top\nInclude=sub\n",
            "r/sub/mkosi.conf": "[Match]\nProfiles=gpu\n[Content]\nPackages=cuda\n",
            "r/sub/mkosi.conf.d/10.conf": "[Content]\nPackages=more-cuda\n",
            "r/sub/mkosi.extra/etc/x": "x",
        }
    )
    config = read_recipe(Path("r"))
    assert texts(config, "Packages") == ["top"] and texts(config, "ExtraTrees") == []
    assert texts(read_recipe(Path("r"), ["gpu"]), "Packages") == ["top", "cuda", "more-cuda"]


def test_include_relative_paths_and_implicit_trees(make_tree: Maker) -> None:
    make_tree(
        {
            "common/mkosi.conf": "[Content]\nPackages=shared\n",
            "common/mkosi.extra/etc/motd": "hi\n",
            "common/mkosi.repart/10-root.conf": "[Partition]\nType=root\n",
            "r/mkosi.conf": """
            [Include]
            Include=../common
            [Content]
            ExtraTrees=../more:/opt
            Include=../common
            """,
            "more/file": "x",
        }
    )
    config = read_recipe(Path("r"))
    assert texts(config, "Packages") == ["shared"]  # included once, though named twice
    assert texts(config, "ExtraTrees") == ["mkosi.extra", "../more:/opt"]
    assert config.path(config.items("ExtraTrees")[0]) == Path("common/mkosi.extra").resolve()
    assert places(config, "ExtraTrees") == ["common/mkosi.extra", "r/mkosi.conf:4"]
    assert [str(config.path(v)) for v in config.items("RepartDirectories")] == [
        str(Path("common/mkosi.repart").resolve())
    ]


def test_empty_extra_trees_in_mkosi_conf_drops_the_implicit_mkosi_extra(make_tree: Maker) -> None:
    make_tree({"r/mkosi.conf": "[Content]\nExtraTrees=\n", "r/mkosi.extra/etc/x": "x"})
    assert texts(read_recipe(Path("r")), "ExtraTrees") == []


def test_unknown_settings_sections_and_old_names_are_warnings_with_their_line(make_tree: Maker) -> None:
    make_tree(
        {
            "r/mkosi.conf": """
        [Content]
        Pakages=vim
        [Validation]
        verity=signed
        [Packages]
        Packages=x
        [Output]
        Packages=late
        [Config]
        Profile=dev
        """
        }
    )
    config = read_recipe(Path("r"))
    assert config.warnings == [
        "r/mkosi.conf:2: warning: unknown setting Pakages=: mkosi 26+ ignores it, mkosi 25 refuses the recipe",
        "r/mkosi.conf:4: warning: unknown setting verity= (did you mean Verity=?): mkosi 26+ ignores it, "
        "mkosi 25 refuses the recipe",
        "r/mkosi.conf:5: warning: unknown section [Packages]: mkosi ignores everything in it",
        "r/mkosi.conf:8: warning: Packages= belongs in [Content], not [Output] (mkosi accepts it)",
        "r/mkosi.conf:10: warning: Profile= is an old name of Profiles=",
    ]
    assert texts(config, "Packages") == ["late"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("Packages=a\n", "r/mkosi.conf:1: setting 'Packages=a' is outside of any section"),
        ("[Content\nPackages=a\n", "r/mkosi.conf:1: '[Content' is not a valid section header"),
        ("[Content]\nPackages\n", "r/mkosi.conf:2: 'Packages' is not a `Key=value` setting"),
        ("[Content]\nPackages=a\x00\n", "r/mkosi.conf:2: configuration file is binary (NUL byte)"),
        ("[Content]\nInclude=../missing\n", "r/mkosi.conf:2: Include=../missing: missing does not exist"),
        ("[Match]\nColour=blue\n", "r/mkosi.conf:2: unknown [Match] key Colour="),
    ],
)
def test_malformed_files_are_input_errors_with_file_and_line(make_tree: Maker, text: str, error: str) -> None:
    make_tree({"r/mkosi.conf": "placeholder"})
    Path("r/mkosi.conf").write_text(text)
    with pytest.raises(InputError) as caught:
        read_recipe(Path("r"))
    assert str(caught.value) == error


def test_ini_dedents_and_keeps_line_numbers(tmp_path: Path) -> None:
    items = ini.parse(tmp_path / "x.conf", "    [Content]\n    Packages=a\n        b\n")
    assert [(type(i).__name__, getattr(i, "line", None)) for i in items] == [("Section", 1), ("Setting", 2)]
    setting = items[1]
    assert isinstance(setting, ini.Setting) and setting.lines == (("a", 2), ("b", 3))


# ---- what the build host decides is unknown, with the reason, never guessed ------------------------------
def test_a_match_on_the_build_host_makes_what_it_gates_unknown(make_tree: Maker) -> None:
    make_tree(
        {
            "r/mkosi.conf": "[Distribution]\nDistribution=debian\nRelease=trixie\nArchitecture=x86-64\n"
            "[Content]\nPackages=base\nKernelCommandLine=quiet\n",
            "r/mkosi.conf.d/10-host.conf": "[Match]\nSystemdVersion=>=257\n[Content]\nPackages=openssh-server\n",
        }
    )
    from cvmlint.recipe.facts import recipe_facts

    facts, _ = recipe_facts(Path("r"))
    assert isinstance(facts.packages, Unknown)
    assert facts.packages.reason == (
        "depends on the build host: r/mkosi.conf.d/10-host.conf:2: [Match] "
        "SystemdVersion=>=257: it compares with the build host's systemd version"
    )
    assert isinstance(facts.cmdline, Items)  # the file sets nothing the command line is made of


def test_a_directory_gated_by_the_host_makes_every_fact_unknown(make_tree: Maker) -> None:
    make_tree(
        {
            "r/mkosi.conf": "[Content]\nPackages=base\n",
            "r/mkosi.conf.d/10-dir/mkosi.conf": "[Match]\nHostArchitecture=arm64\n[Content]\nBootable=no\n",
        }
    )
    from cvmlint.recipe.facts import recipe_facts
    from cvmlint.recipe.mkosi import CommandLine

    facts, _ = recipe_facts(Path("r"))
    assert isinstance(facts.boot, Unknown) and "HostArchitecture=arm64" in facts.boot.reason
    given, _ = recipe_facts(Path("r"), cli=CommandLine(host_architecture="x86-64"))
    assert isinstance(given.boot, Boot) and not isinstance(given.packages, Unknown)


def test_unset_distribution_is_the_hosts_until_given(make_tree: Maker) -> None:
    make_tree(
        {
            "r/mkosi.conf": "[Content]\nPackages=base,linux-image-%a\n",
            "r/mkosi.conf.d/10-debian.conf": "[Match]\nDistribution=debian\n[Content]\nPackages=deb\n",
        }
    )
    from cvmlint.recipe.facts import recipe_facts
    from cvmlint.recipe.mkosi import CommandLine

    facts, _ = recipe_facts(Path("r"))
    assert isinstance(facts.os, Unknown) or isinstance(facts.os.distribution, Unknown)
    assert isinstance(facts.packages, Unknown)
    assert "Distribution= is not set: mkosi uses the build host's distribution" in facts.packages.reason
    cli = CommandLine(distribution="debian", release="trixie", architecture="arm64")
    given, _ = recipe_facts(Path("r"), cli=cli)
    assert [p.name for p in given.packages] == ["base", "linux-image-arm64", "deb"]  # type: ignore[union-attr]
    assert given.os.distribution == "debian" and str(given.os.where) == "command line"  # type: ignore[union-attr]


def test_a_specifier_of_an_unset_host_value_makes_the_list_unknown(make_tree: Maker) -> None:
    make_tree({"r/mkosi.conf": "[Distribution]\nDistribution=debian\n[Content]\nPackages=linux-image-%a\n"})
    from cvmlint.recipe.facts import recipe_facts

    facts, _ = recipe_facts(Path("r"))
    assert isinstance(facts.packages, Unknown)
    assert facts.packages.reason == (
        "Packages= value: %a in 'linux-image-%a': Architecture= is not set: mkosi "
        "builds for the build host's architecture"
    )
    assert str(facts.packages.where) == "r/mkosi.conf:4"


def test_host_environment_in_paths_is_unknown(make_tree: Maker) -> None:
    make_tree({"r/mkosi.conf": "[Content]\nExtraTrees=$HOME/tree\n"})
    config = read_recipe(Path("r"))
    assert config.items("ExtraTrees")[0].unknown == (
        "'$HOME/tree': mkosi expands $VARIABLES from the build host's environment"
    )


def test_a_failed_assert_is_refused_and_versions_are_warned_about(make_tree: Maker) -> None:
    make_tree(
        {
            "r/mkosi.conf": "[Distribution]\nDistribution=debian\n",
            "r/mkosi.conf.d/10.conf": "[Assert]\nDistribution=fedora\n",
        }
    )
    with pytest.raises(
        InputError,
        match=r"r/mkosi.conf.d/10.conf: its \[Assert\] conditions do not hold: mkosi 26 "
        r"and later refuse to build this recipe \(mkosi 25 ignores \[Assert\]\)",
    ):
        read_recipe(Path("r"))
    Path("r/mkosi.conf.d/10.conf").write_text(
        "[Assert]\nDistribution=debian\n[Content]\nUnifiedKernelImages=yes\nPackages=a b\nSplash=x.bmp\n"
    )
    assert read_recipe(Path("r")).warnings == [
        "r/mkosi.conf.d/10.conf:4: warning: UnifiedKernelImages=yes: mkosi 26+ reads it as signed (copy a prebuilt "
        "UKI), mkosi 25 as build a UKI",
        "r/mkosi.conf.d/10.conf:5: warning: Packages= item 'a b': mkosi 26+ splits items on spaces too, mkosi 25 keeps "
        "the spaces in the item (separate items with commas, no spaces)",
        "r/mkosi.conf.d/10.conf:6: warning: Splash= is new in mkosi 26: mkosi 25 refuses the recipe",
    ]


def test_an_invalid_match_value_is_refused_as_mkosi_refuses_it(make_tree: Maker) -> None:
    make_tree({"r/mkosi.conf": "[Match]\nDistribution=debain\n"})
    with pytest.raises(InputError, match=r"r/mkosi.conf:2: \[Match\] Distribution=debain: not a value mkosi knows"):
        read_recipe(Path("r"))


def test_a_builtin_include_without_an_installed_mkosi_makes_everything_unknown(
    make_tree: Maker, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree({"r/mkosi.conf": "[Include]\nInclude=mkosi-vm\n"})
    monkeypatch.setenv("CVMLINT_MKOSI_RESOURCES", str(Path("nowhere").resolve()))
    config = read_recipe(Path("r"))
    assert config.why_undecided("Packages") == (
        "r/mkosi.conf:2: Include=mkosi-vm is mkosi's built-in configuration, and no installed mkosi was found to "
        "read it from (give its resources with --mkosi-resources)"
    )


def test_free_text_in_an_unknown_section_is_no_error(make_tree: Maker) -> None:
    make_tree({"r/mkosi.conf": "[Notes]\njust words\n[Content]\nPackages=a\n"})
    assert texts(read_recipe(Path("r")), "Packages") == ["a"]
