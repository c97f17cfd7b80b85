#!/usr/bin/env python3
"""A symlink view of the ``agentwatch`` package for mypy: ``build/typecheck/agentwatch``.

mypy cannot follow setuptools' editable-install finder, and ``package-dir`` maps three folders
(``monitor/`` → ``agentwatch``, ``detectors/`` and ``playbooks/`` inside it) that no single
path holds. This builds the tree the wheel would install, out of symlinks, from
``[tool.setuptools] package-dir`` in pyproject.toml; ``make check`` runs mypy on it.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "typecheck"


def main() -> None:
    package_dir: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    shutil.rmtree(OUT, ignore_errors=True)
    for name, folder in sorted(package_dir.items()):  # parents before children
        target = OUT.joinpath(*name.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for entry in sorted((ROOT / folder).iterdir()):
            if entry.name == "__pycache__" or (target / entry.name).exists():
                continue
            (target / entry.name).symlink_to(entry)
    print(OUT.relative_to(ROOT))


if __name__ == "__main__":
    main()
