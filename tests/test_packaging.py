"""The install claims one import namespace, ``agentwatch``, and every package in the tree."""

from __future__ import annotations

import importlib
import tomllib
from importlib.metadata import distribution, entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def tree_packages() -> set[str]:
    """Every folder with an ``__init__.py`` under the mapped folders, by its ``agentwatch`` name."""
    found = set()
    for name, folder in SETUPTOOLS["package-dir"].items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base).parts
            found.add(".".join([name, *rel]))
    return found


def test_every_package_in_the_tree_is_installed() -> None:
    assert tree_packages() == set(SETUPTOOLS["packages"])


def test_one_top_level_import_namespace() -> None:
    assert {name.split(".")[0] for name in SETUPTOOLS["packages"]} == {"agentwatch"}


@pytest.mark.parametrize("group", ["console_scripts", "agentwatch.detectors", "agentwatch.actions"])
def test_entry_points_resolve_inside_agentwatch(group: str) -> None:
    eps = [ep for ep in entry_points(group=group) if ep.dist is not None and ep.dist.name == "agentwatch"]
    assert eps
    for ep in eps:
        assert ep.value.startswith("agentwatch."), ep
        assert ep.load() is not None


def test_installed_distribution_is_agentwatch() -> None:
    dist = distribution("agentwatch")
    assert dist.entry_points  # installed (editable or not), with its entry points
    assert importlib.import_module("agentwatch.playbooks").__file__


def test_the_built_wheel_holds_only_agentwatch_and_setuptools_has_nothing_to_warn(tmp_path: Path) -> None:
    """What `pip install .` installs: one top-level package, its data, no "package would be ignored"."""
    import subprocess
    import sys
    import zipfile

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-v",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "would be ignored" not in done.stdout + done.stderr
    (wheel,) = tmp_path.glob("agentwatch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["agentwatch"]
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"agentwatch"}
    assert "agentwatch/playbooks/templates/postmortem.md.j2" in names
    assert "agentwatch/defaults.toml" in names
    assert "agentwatch/lab/simulator/scenarios.yaml" in names  # the simulator's scenario table
