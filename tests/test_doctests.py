"""The docstring examples of every installed ``agentwatch`` module, run as tests.

They run through the installed names (``agentwatch.detect.pipeline``), never by file path:
``pytest --doctest-modules`` would import ``monitor/detect/pipeline.py`` a second time as
``monitor.detect.pipeline`` and register its Prometheus metrics twice.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import tomllib
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def installed_packages() -> list[str]:
    """The packages ``pyproject.toml`` installs (tests/test_packaging.py checks them against the tree)."""
    return list(tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["packages"])


def installed_modules() -> list[str]:
    names = []
    for package in installed_packages():
        names.append(package)
        module = importlib.import_module(package)
        for info in pkgutil.iter_modules(module.__path__, package + "."):
            if not info.ispkg and info.name.rsplit(".", 1)[-1] != "__main__" and not _alembic_script(info.name):
                names.append(info.name)
    return sorted(names)


def _alembic_script(name: str) -> bool:
    """Alembic runs ``migrations/env.py`` and the version files itself; importing them is not their use."""
    return name == "agentwatch.migrations.env" or name.startswith("agentwatch.migrations.versions.")


def collect() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = []
    for name in installed_modules():
        module = importlib.import_module(name)
        tests += [t for t in finder.find(module, name) if t.examples]
    return sorted(tests, key=lambda t: t.name)


@pytest.mark.parametrize("test", collect(), ids=lambda t: t.name)
def test_docstring_examples(test: doctest.DocTest) -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    out: list[str] = []
    result = runner.run(test, out=out.append, clear_globs=True)
    assert result.failed == 0, "".join(out)
