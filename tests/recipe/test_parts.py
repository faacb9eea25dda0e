"""repart definitions, build-script installs and kernel patches, each with exact locations."""

from __future__ import annotations

from pathlib import Path

import pytest

from cvmlint.errors import InputError
from cvmlint.facts import Unknown
from cvmlint.recipe.patches import parse_patch
from cvmlint.recipe.repart import read_definitions, verity_pairs
from cvmlint.recipe.scripts import installed_packages
from tests.conftest import ROOT
from tests.recipe.conftest import Maker

PATCH = ROOT / "patches/0001-acpi-deny-aml-access-to-cvm-private-memory.patch"


def test_repart_verity_pairs_and_implied_values(make_tree: Maker) -> None:
    base = make_tree(
        {
            "d/10-root.conf": """
            # comment
            ; another comment
            [Partition]
            Type=root
            Format=erofs
            Verity=data
            VerityMatchKey=root
            CopyFiles=/usr:/usr \\
                      /etc:/etc
            """,
            "d/11-root-verity.conf": "[Partition]\nType=root-verity\nVerity=hash\nVerityMatchKey=root\n",
            "d/20-var.conf": "[Partition]\nType=var\nEncrypt=yes\nCopyFiles=/var:/\nVerty=data\n",
            "d/30-lonely.conf": "[Partition]\nType=usr\nVerity=data\nVerityMatchKey=usr\n",
        }
    )
    warnings: list[str] = []
    parts = read_definitions([base / "d"], base, warnings)
    assert [p.name for p in parts] == ["10-root", "11-root-verity", "20-var", "30-lonely"]
    root, hashes, var, _ = parts
    assert (root.type, root.format, root.read_only) == ("root", "erofs", True)
    assert str(root.where("Verity")) == "d/10-root.conf:6"
    [(value, line, shown)] = root.lists["CopyFiles"]  # systemd keeps the continued line's indentation
    assert (value.split(), line, shown) == (["/usr:/usr", "/etc:/etc"], 8, "d/10-root.conf")
    assert (var.format, var.encrypt, var.read_only) == ("ext4", "key-file", False)  # implied by CopyFiles/Encrypt
    pairs = verity_pairs(parts, warnings)
    assert pairs == {"root": (root, hashes)}
    assert warnings == [
        "d/20-var.conf:5: warning: unknown repart setting Verty=: systemd-repart ignores it",
        "d/30-lonely.conf:3: warning: VerityMatchKey=usr has 1 Verity=data and 0 Verity=hash "
        "partitions: systemd-repart refuses the layout (it needs one each)",
    ]


def test_repart_precedence_masking_and_dropins(make_tree: Maker) -> None:
    base = make_tree(
        {
            "own/10-root.conf": "[Partition]\nType=root\nFormat=ext4\n",
            "own/11-root-verity.conf": None,
            "own/00-esp.conf": "",
            "own/10-root.conf.d/50-ro.conf": "[Partition]\nReadOnly=yes\nMountPoint=/\n",
            "shared/00-esp.conf": "[Partition]\nType=esp\n",
            "shared/10-root.conf": "[Partition]\nType=root\nFormat=erofs\nVerity=data\nVerityMatchKey=root\n",
            "shared/10-root.conf.d/50-ro.conf": "[Partition]\nReadOnly=no\n",
            "shared/10-root.conf.d/60-fmt.conf": "[Partition]\nFormat=btrfs\n",
            "shared/11-root-verity.conf": "[Partition]\nType=root-verity\nVerity=hash\nVerityMatchKey=root\n",
        }
    )
    (base / "own/11-root-verity.conf").rmdir()
    (base / "own/11-root-verity.conf").symlink_to("/dev/null")
    parts = read_definitions([base / "own", base / "shared"], base, [])
    assert [p.name for p in parts] == ["10-root"]  # 00-esp (empty) and 11-root-verity (/dev/null) are masked
    root = parts[0]
    assert (root.format, root.read_only, root.verity) == ("btrfs", True, "off")  # own file, own 50-ro, shared 60
    assert str(root.where("Format")) == "shared/10-root.conf.d/60-fmt.conf:2"
    assert root.lists["MountPoint"] == [("/", 3, "own/10-root.conf.d/50-ro.conf")]


def test_repart_file_without_type_is_refused(make_tree: Maker) -> None:
    base = make_tree({"d/10.conf": "[Partition]\nFormat=ext4\n"})
    with pytest.raises(InputError, match=r"d/10.conf:2: no Type="):
        read_definitions([base / "d"], base, [])


def test_build_scripts_that_install_packages() -> None:
    script = """#!/bin/sh
set -e
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
    gcc make   # to build the module
echo done && pip3 install --break-system-packages requests; mkosi-install vim
dnf -y install clang
apt-get remove -y foo
"""
    found = [(p.name, p.tool, p.line) for p in installed_packages(script)]
    assert found == [
        ("gcc", "apt-get", 4),
        ("make", "apt-get", 4),
        ("requests", "pip3", 6),
        ("vim", "mkosi-install", 6),
        ("clang", "dnf", 7),
    ]


def test_our_patch_is_well_formed_and_touches_the_handler() -> None:
    patch = parse_patch(PATCH, "patches/x.patch")
    assert patch.subject == "ACPI: deny AML access to confidential VM private memory"
    assert patch.files == ("drivers/acpi/acpica/exregion.c",)
    assert patch.functions == ("acpi_ex_system_memory_space_handler",)
    assert patch.well_formed and patch.problem == ""


def test_a_hunk_whose_counts_do_not_add_up_is_not_well_formed(tmp_path: Path) -> None:
    text = PATCH.read_text().splitlines(keepends=True)
    first_added = next(i for i, line in enumerate(text) if line.startswith("+") and not line.startswith("+++"))
    del text[first_added]  # a hand-edited patch: one added line fewer than its header says
    broken = tmp_path / "broken.patch"
    broken.write_text("".join(text))
    patch = parse_patch(broken, "broken.patch")
    assert not patch.well_formed
    assert patch.problem.startswith("the hunk at line 52 ")


def test_a_plain_unified_diff(tmp_path: Path) -> None:
    diff = tmp_path / "plain.diff"
    diff.write_text("--- a/x.c\n+++ b/x.c\n@@ -1,2 +1,3 @@ int main(void)\n a\n+b\n c\n")
    patch = parse_patch(diff, "plain.diff")
    assert (patch.subject, patch.files, patch.functions, patch.well_formed) == ("", ("x.c",), ("main",), True)


def test_the_recipe_digest_covers_every_input_whichever_facts_were_made(make_tree: Maker) -> None:
    """A build script counts in the digest even when the fact that reads it is undecided (the packages
    depend on the build host here), and the inputs come in one fixed order."""
    from cvmlint.recipe.facts import recipe_facts

    recipe = (
        make_tree(
            {
                "r/mkosi.conf": "[Build]\nBuildScripts=build.sh\n",
                # no Distribution=: whether this applies depends on the build host, so the packages are undecided
                "r/mkosi.conf.d/vim.conf": "[Match]\nDistribution=debian\n\n[Content]\nPackages=vim\n",
                "r/build.sh": "#!/bin/sh\napt-get install -y gcc\n",
            }
        )
        / "r"
    )
    read: list[Path] = []
    facts, _ = recipe_facts(recipe, read_files=read)
    assert isinstance(facts.packages, Unknown)
    assert [str(p.relative_to(recipe)) for p in read] == ["build.sh", "mkosi.conf", "mkosi.conf.d/vim.conf"]
    (recipe / "build.sh").write_text("#!/bin/sh\napt-get install -y clang\n")
    again, _ = recipe_facts(recipe)
    assert again.target.digest != facts.target.digest
