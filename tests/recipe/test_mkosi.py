"""The mkosi configuration reader: mkosi v26's syntax and precedence, with exact locations."""

from __future__ import annotations

from pathlib import Path

import pytest

from cvmlint.errors import InputError
from cvmlint.recipe import ini
from cvmlint.recipe.mkosi import read_recipe
from tests.recipe.conftest import Maker


def texts(config, name):  # type: ignore[no-untyped-def]
    return [v.text for v in config.items(name)]


def places(config, name):  # type: ignore[no-untyped-def]
    return [str(v.where) for v in config.items(name)]


def test_multi_line_values_keep_going_across_comments_and_blank_lines(make_tree: Maker) -> None:
    make_tree({"r/mkosi.conf": """
        [Content]
        Packages=
                systemd
                # a comment line inside the list

                udev   # a comment after a value
                dbus,kmod
        KernelCommandLine=console=ttyS0 lockdown=integrity#cut here
        """})
    config = read_recipe(Path("r"))
    assert texts(config, "Packages") == ["systemd", "udev", "dbus", "kmod"]
    assert places(config, "Packages") == ["r/mkosi.conf:3", "r/mkosi.conf:6", "r/mkosi.conf:7", "r/mkosi.conf:7"]
    assert texts(config, "KernelCommandLine") == ["console=ttyS0", "lockdown=integrity"]


def test_lists_accumulate_scalars_override_and_empty_resets(make_tree: Maker) -> None:
    make_tree({
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
    })
    config = read_recipe(Path("r"))
    assert texts(config, "Packages") == ["a", "b", "c"]  # mkosi.conf, then drop-ins in name order
    assert config.scalar("Distribution") == "ubuntu"
    assert str(config.scalars["Distribution"].where) == "r/mkosi.conf.d/20-late.conf:2"
    assert texts(config, "RemoveFiles") == []


def test_match_profiles_and_triggers(make_tree: Maker) -> None:
    make_tree({
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
    })
    assert texts(read_recipe(Path("r")), "Packages") == ["base", "for-ubuntu", "not-debian"]
    with_dev = read_recipe(Path("r"), ["dev"])
    assert texts(with_dev, "Packages") == ["base", "for-ubuntu", "not-debian", "fedora-or-dev", "gdb"]
    assert places(with_dev, "Packages")[-1] == "r/mkosi.profiles/dev.conf:2"


def test_a_false_match_in_mkosi_conf_skips_the_whole_directory(make_tree: Maker) -> None:
    make_tree({
        "r/mkosi.conf": "[Content]\nPackages=top\nInclude=sub\n",
        "r/sub/mkosi.conf": "[Match]\nProfiles=gpu\n[Content]\nPackages=cuda\n",
        "r/sub/mkosi.conf.d/10.conf": "[Content]\nPackages=more-cuda\n",
        "r/sub/mkosi.extra/etc/x": "x",
    })
    config = read_recipe(Path("r"))
    assert texts(config, "Packages") == ["top"] and texts(config, "ExtraTrees") == []
    assert texts(read_recipe(Path("r"), ["gpu"]), "Packages") == ["top", "cuda", "more-cuda"]


def test_include_relative_paths_and_implicit_trees(make_tree: Maker) -> None:
    make_tree({
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
    })
    config = read_recipe(Path("r"))
    assert texts(config, "Packages") == ["shared"]  # included once, though named twice
    assert texts(config, "ExtraTrees") == ["mkosi.extra", "../more:/opt"]
    assert config.path(config.items("ExtraTrees")[0]) == Path("common/mkosi.extra").resolve()
    assert places(config, "ExtraTrees") == ["common/mkosi.extra", "r/mkosi.conf:4"]
    assert [str(config.path(v)) for v in config.items("RepartDirectories")] == [
        str(Path("common/mkosi.repart").resolve())]


def test_empty_extra_trees_in_mkosi_conf_drops_the_implicit_mkosi_extra(make_tree: Maker) -> None:
    make_tree({"r/mkosi.conf": "[Content]\nExtraTrees=\n", "r/mkosi.extra/etc/x": "x"})
    assert texts(read_recipe(Path("r")), "ExtraTrees") == []


def test_unknown_settings_sections_and_old_names_are_warnings_with_their_line(make_tree: Maker) -> None:
    make_tree({"r/mkosi.conf": """
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
        """})
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


@pytest.mark.parametrize(("text", "error"), [
    ("Packages=a\n", "r/mkosi.conf:1: setting 'Packages=a' is outside of any section"),
    ("[Content\nPackages=a\n", "r/mkosi.conf:1: '[Content' is not a valid section header"),
    ("[Content]\nPackages\n", "r/mkosi.conf:2: 'Packages' is not a `Key=value` setting"),
    ("[Content]\nPackages=a\x00\n", "r/mkosi.conf:2: configuration file is binary (NUL byte)"),
    ("[Content]\nInclude=../missing\n", "r/mkosi.conf:2: Include=../missing: missing does not exist"),
    ("[Match]\nColour=blue\n", "r/mkosi.conf:2: unknown [Match] key Colour="),
])
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
