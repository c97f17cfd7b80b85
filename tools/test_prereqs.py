"""What `make test` needs beyond the virtualenv: Debian's `prometheus` package (`prometheus`
and `promtool`, for the alerting-rule and live-scrape tests).

Installed with apt-get where that is possible without asking (root, apt-get present);
elsewhere one line says what to run. Never fails `make test` itself: the tests that need the
binaries fail with the same hint until they are there. ``AGENTWATCH_TEST_NO_INSTALL=1``
turns the installation off.

>>> plan(found={"prometheus", "promtool"}, root=False, apt=False)
('ok', '')
>>> plan(found=set(), root=True, apt=True)[0]
'install'
>>> print(plan(found={"prometheus"}, root=False, apt=True)[1][:59])
make test: promtool is not on PATH (6 tests need prometheus
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

NEEDED = ("prometheus", "promtool")
PACKAGE = "prometheus"
HINT = (
    "run `sudo apt-get install prometheus` (Debian/Ubuntu) or `brew install prometheus` (macOS), then `make test` again"
)


def plan(found: set[str], root: bool, apt: bool, allowed: bool = True) -> tuple[str, str]:
    """``(what to do, the one line to print)``: ``ok``, ``install`` or ``hint``."""
    missing = [name for name in NEEDED if name not in found]
    if not missing:
        return "ok", ""
    what = f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not on PATH"
    if root and apt and allowed:
        return "install", f"make test: {what}; installing Debian's {PACKAGE} package with apt-get"
    return "hint", f"make test: {what} (6 tests need prometheus and promtool); {HINT}"


def main() -> int:
    found = {name for name in NEEDED if shutil.which(name)}
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    allowed = os.environ.get("AGENTWATCH_TEST_NO_INSTALL", "") not in ("1", "true", "yes")
    action, line = plan(found, root, shutil.which("apt-get") is not None, allowed)
    if action == "ok":
        return 0
    print(line, file=sys.stderr, flush=True)
    if action == "install":
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", PACKAGE],
        ):
            done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if done.returncode != 0:
                why = (done.stderr.strip().splitlines() or ["?"])[-1][:200]
                print(f"make test: `{' '.join(command)}` failed ({why}); {HINT}", file=sys.stderr)
                return 0
        if not all(shutil.which(name) for name in NEEDED):
            print(f"make test: the {PACKAGE} package did not bring {' and '.join(NEEDED)}; {HINT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
