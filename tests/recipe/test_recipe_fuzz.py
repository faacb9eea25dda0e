"""A short run of the recipe differential fuzzer (fuzz/recipe_diff.py) in CI: a few random trees, each read by
cvmlint and by mkosi 25.3 and 27.1, systemd-repart, the kernel's own parser and apt. No difference may
be a false pass of a critical rule, and none may crash the comparison; the long run is
`python3 fuzz/recipe_diff.py --seconds 3600`."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "fuzz"))

pytestmark = pytest.mark.slow
TREES = 6
SEED = 20261207


def test_random_recipes_agree_with_the_real_programs(tmp_path: Path) -> None:
    from recipe_diff import Tree, check

    from tests.recipe.test_differential import VERSIONS
    from tests.recipe.truth import kernel_splitter
    from tests.tools import tool_root

    versions = {v: tool_root(r) for v, r in VERSIONS.items()}
    splitter = kernel_splitter()
    rng = random.Random(SEED)
    differences = []
    for n in range(TREES):
        directory = tmp_path / f"tree-{n}"
        tree = Tree(rng, directory)
        tree.write()
        work = tmp_path / f"work-{n}"
        work.mkdir()
        differences += [f"tree {n}: {d}" for d in check(directory, tree.profiles, versions, splitter, work)]
    assert not [d for d in differences if "invariant/" in d], differences
    assert not differences, differences
