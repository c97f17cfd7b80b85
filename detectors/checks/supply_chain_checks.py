"""Checks for the ``supply_chain`` rule pack: the judgements its YAML cannot make alone.

* ``typosquat`` — an installed package's name is one or two edits from a popular PyPI or npm
  package and is neither popular nor known itself (``reqeusts``, ``lodahs``). The popular and
  known names are data tables of ``detectors/rules/supply_chain.yaml``; the operator's
  ``extra_popular_*`` / ``known_packages`` come from the detector's configuration.
* ``typosquat_manifest`` — the same judgement over the dependencies written into a
  ``requirements*.txt`` or ``package.json``.
* ``package_source`` — a package index, registry or package URL a Python or npm package manager
  is pointed at is not one of the allowed hosts (``allowed_pypi_hosts`` / ``allowed_npm_hosts``),
  optionally only over plain HTTP or a bare IP (``transport: insecure``) or only otherwise.
* ``script_host`` — a downloaded script that is run comes (or does not come) from one of the
  ``trusted_script_hosts``.
* ``apt_source_plain_http`` — an APT source list is written with a ``deb http://`` line.

Every check reads the action's effects (computed once by the effects layer) and only the
``apt_source_plain_http`` and ``typosquat_manifest`` checks read event text, bounded.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from agentwatch.detect.effects.model import Effect, make
from agentwatch.detect.rules.checks import CheckContext, bounded_text, check

__all__ = ["PopularIndex", "damerau_levenshtein", "listed", "normalise_pypi", "package_name", "prepared"]


# -- edit distance and the popular-name index --------------------------------------------------
def damerau_levenshtein(a: str, b: str, limit: int = 2) -> int:
    """Optimal-string-alignment distance between ``a`` and ``b``, capped at ``limit + 1``.

    Counts insertions, deletions, substitutions and transpositions of adjacent letters.

    >>> damerau_levenshtein("requests", "reqeusts")
    1
    >>> damerau_levenshtein("lodash", "lodahs"), damerau_levenshtein("colorama", "colourama")
    (1, 1)
    >>> damerau_levenshtein("numpy", "pandas")
    3
    """
    if a == b:
        return 0
    la, lb = len(a), len(b)
    if abs(la - lb) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(lb + 1))
    for i in range(1, la + 1):
        cur = [i] + [0] * lb
        ca = a[i - 1]
        row_min = i
        for j in range(1, lb + 1):
            cost = 0 if ca == b[j - 1] else 1
            value = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, prev2[j - 2] + 1)
            cur[j] = value
            row_min = min(row_min, value)
        if row_min > limit:
            return limit + 1
        prev2, prev = prev, cur
    return min(prev[lb], limit + 1)


def _deletions(word: str, depth: int) -> set[str]:
    """``word`` with up to ``depth`` characters deleted (including ``word`` itself)."""
    out = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


class PopularIndex:
    """Popular package names and a deletion index (SymSpell) to find near-misses of them fast.

    A name is a typosquat candidate when it is neither popular nor known and lies within distance 1
    of a popular name of 5–7 characters, or within 2 of one of 8 or more (shorter popular
    names have too many legitimate neighbours to judge).

    >>> index = PopularIndex(["requests", "lodash", "six"])
    >>> index.nearest("reqeusts"), index.nearest("requests"), index.nearest("sux")
    (('requests', 1), None, None)
    """

    def __init__(self, names: Iterable[str], known: Iterable[str] = (), min_len: int = 5, long_len: int = 8) -> None:
        self.names = frozenset(names)
        self._max_len = max((len(n) for n in self.names), default=0) + 2
        #: Legitimate names that are never reported (popular ones are never reported either).
        self.known = frozenset(known)
        self._long_len = long_len
        self._by_deletion: dict[str, list[str]] = {}
        for name in self.names:
            if len(name) < min_len:
                continue
            for variant in _deletions(name, 2 if len(name) >= long_len else 1):
                self._by_deletion.setdefault(variant, []).append(name)

    def nearest(self, name: str) -> tuple[str, int] | None:
        """The closest popular name ``name`` imitates and the distance, or None."""
        if name in self.names or name in self.known or not 4 <= len(name) <= self._max_len:
            return None
        best: tuple[str, int] | None = None
        seen: set[str] = set()
        for variant in _deletions(name, 2 if len(name) >= self._long_len - 1 else 1):
            for popular in self._by_deletion.get(variant, ()):
                if popular in seen:
                    continue
                seen.add(popular)
                allowed = 2 if len(popular) >= self._long_len else 1
                distance = damerau_levenshtein(name, popular, allowed)
                if distance <= allowed and (best is None or distance < best[1]):
                    best = (popular, distance)
        return best


def normalise_pypi(name: str) -> str:
    """PEP 503 normalisation: ``Scikit_Learn`` → ``scikit-learn``.

    >>> normalise_pypi("Python_Dateutil")
    'python-dateutil'
    """
    return re.sub(r"[-_.]+", "-", name).lower()


_NAME_END: Final = re.compile(r"[\[=<>!~;@\s,(]")
_FILE_SUFFIXES: Final = (".txt", ".whl", ".gz", ".zip", ".tgz", ".toml", ".cfg", ".lock", ".json")


def package_name(resource: str, ecosystem: str) -> str:
    """The registry name an install effect's resource names, or ``""`` for a path, URL, file or
    scoped/aliased npm reference (those are not judged as typosquats).

    >>> package_name("pydantic[email]>=2", "pypi"), package_name("axios@1.7.9", "npm")
    ('pydantic', 'axios')
    >>> package_name("@types/node", "npm"), package_name("-r requirements.txt", "pypi"), package_name(".[dev]", "pypi")
    ('', '', '')
    """
    word = resource.strip().strip("'\"")
    if not word or word.startswith((".", "/", "~", "$", "-")) or "://" in word or word.lower().endswith(_FILE_SUFFIXES):
        return ""
    if ecosystem == "npm":
        if word.startswith("@"):
            return ""  # scoped packages live in their owner's namespace
        name = word.split("@", 1)[0].lower()
        return "" if "/" in name or ":" in name else name
    if "/" in word or "@" in word or ":" in word:
        return ""  # direct references and paths
    return normalise_pypi(_NAME_END.split(word, 1)[0])


# -- hosts ----------------------------------------------------------------------------------------
def host_path(url: str) -> str:
    """``host/path`` of ``url`` in lower case (no port, user or ``git+``), or ``""`` when it does not parse.

    >>> host_path("git+https://User@GitHub.com:443/psf/requests.git")
    'github.com/psf/requests.git'
    """
    try:
        parts = urlsplit(url.strip("'\"").removeprefix("git+"))
        host = parts.hostname or ""
    except ValueError:
        return ""
    return (host + (parts.path or "")).lower()


def listed(hp: str, entries: Iterable[str]) -> bool:
    """Whether ``host/path`` is one of ``entries``: an exact host, or a ``host/path`` prefix.

    >>> listed("pypi.org/simple", ("pypi.org",)), listed("pypi.org.evil.example/simple", ("pypi.org",))
    (True, False)
    """
    host = hp.split("/", 1)[0]
    for entry in entries:
        if "/" in entry:
            if hp.startswith(entry):
                return True
        elif host == entry:
            return True
    return False


def insecure(url: str) -> bool:
    """Plain HTTP, or an endpoint written as a bare IP address.

    >>> insecure("http://pypi.example/simple"), insecure("https://45.77.10.3/simple"), insecure("https://x.example")
    (True, True, False)
    """
    low = url.strip("'\"").lower().removeprefix("git+")
    if low.startswith("http://"):
        return True
    host = host_path(low).split("/", 1)[0].strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# -- tables ---------------------------------------------------------------------------------------
def _strings(value: Any) -> tuple[str, ...]:
    """A table as a tuple of lower-case strings (a YAML list, or one whitespace-separated string)."""
    if isinstance(value, str):
        return tuple(value.lower().split())
    if isinstance(value, (list, tuple, frozenset, set)):
        return tuple(str(v).lower() for v in value if isinstance(v, str))
    return ()


#: Built indexes and host lists per data mapping (the engine keeps one mapping for its lifetime).
_BUILT: dict[int, tuple[Mapping[str, Any], dict[str, Any]]] = {}
_MAX_BUILT: Final = 16


def prepared(data: Mapping[str, Any]) -> dict[str, Any]:
    """The popular-name indexes, the manager → ecosystem map and the host lists, built once per data mapping."""
    got = _BUILT.get(id(data))
    if got is not None and got[0] is data:
        return got[1]
    known = {normalise_pypi(n) for n in _strings(data.get("known_packages"))}
    pypi = {normalise_pypi(n) for n in (*_strings(data.get("popular_pypi")), *_strings(data.get("extra_popular_pypi")))}
    npm = {*_strings(data.get("popular_npm")), *_strings(data.get("extra_popular_npm"))}
    managers = data.get("package_managers") or {}
    built: dict[str, Any] = {
        "pypi": _index(
            frozenset(pypi), frozenset({normalise_pypi(n) for n in _strings(data.get("known_pypi"))} | known)
        ),
        "npm": _index(frozenset(npm), frozenset({*_strings(data.get("known_npm")), *known})),
        "managers": {str(k).lower(): str(v) for k, v in managers.items()} if isinstance(managers, Mapping) else {},
        "hosts": {
            "pypi": _strings(data.get("allowed_pypi_hosts")),
            "npm": _strings(data.get("allowed_npm_hosts")),
            "scripts": _strings(data.get("trusted_script_hosts")),
        },
    }
    if len(_BUILT) >= _MAX_BUILT:
        _BUILT.clear()
    _BUILT[id(data)] = (data, built)
    return built


@functools.lru_cache(maxsize=8)
def _index(names: frozenset[str], known: frozenset[str]) -> PopularIndex:
    """One index per distinct set of names (building one takes tens of milliseconds; detectors share it)."""
    return PopularIndex(names, known)


def _ecosystem(effect: Effect, built: Mapping[str, Any]) -> str | None:
    """``pypi`` / ``npm`` for an effect whose detail names a Python or npm package manager (``pip``,
    ``npm index`` …), else None."""
    manager = (effect.detail or "").split(" ", 1)[0].lower()
    eco = built["managers"].get(manager)
    return eco if eco in ("pypi", "npm") else None


_ARGS: Final = {
    "distance": (1, 2),
    "transport": ("any", "insecure", "secure"),
    "listed": (True, False),
    "op": ("connect", "change_settings", "install"),
}


def _validator(
    tables: tuple[str, ...], args: tuple[str, ...]
) -> Callable[[Mapping[str, Any], Mapping[str, Any]], None]:
    """A load-time check that the rule files define ``tables`` and that the rule gives only ``args``, with
    values from :data:`_ARGS` (``op``: a list of them)."""

    def validate(given: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        missing = [n for n in tables if n not in data]
        if missing:
            raise KeyError(f"the rule files define no data table(s) {missing}")
        for key, value in given.items():
            if key not in args:
                raise ValueError(f"unknown arg {key!r}; known: {', '.join(args) or 'none'}")
            values = value if key == "op" and isinstance(value, list) else [value]
            if not values or any(v not in _ARGS[key] for v in values):
                raise ValueError(f"{key} must be {'a list of ' if key == 'op' else 'one of '}{list(_ARGS[key])}")

    return validate


_INDEX_TABLES: Final = (
    "popular_pypi",
    "popular_npm",
    "known_pypi",
    "known_npm",
    "extra_popular_pypi",
    "extra_popular_npm",
    "known_packages",
    "package_managers",
)


# -- checks ---------------------------------------------------------------------------------------
@check("typosquat", validate=_validator(_INDEX_TABLES, ("distance",)))
def typosquat(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """An installed PyPI or npm package's name is ``distance`` edits from a popular one (args: distance 1 or 2)."""
    if not any(e.op == "install" for e in ctx.effects):
        return None
    near = ctx.memo.get(_NEAR_KEY)
    if near is None:  # both typosquat rules read one look-up per action
        near = ctx.memo[_NEAR_KEY] = _near_misses(ctx)
    want = ctx.args.get("distance", 1)
    return tuple(e for e, distance in near if distance == want) or None


_NEAR_KEY: Final = "supply_chain.near_misses"


def _near_misses(ctx: CheckContext) -> list[tuple[Effect, int]]:
    """The action's installs whose names imitate a popular package: (evidence effect, distance)."""
    built = prepared(ctx.data)
    found: list[tuple[Effect, int]] = []
    for effect in ctx.effects:
        if effect.op != "install":
            continue
        eco = _ecosystem(effect, built)
        name = package_name(effect.resource, eco) if eco else ""
        near = built[eco].nearest(name) if eco and name else None
        if near is not None:
            label = "PyPI" if eco == "pypi" else "npm"
            detail = f"{effect.detail}; {near[1]} edit(s) from the popular {label} package {near[0]}"
            found.append((make("install", name, effect.classes, effect.via, detail), near[1]))
    return found


_PACKAGE_JSON_DEP: Final = re.compile(r"\"(@?[\w./-]{1,214})\"\s*:\s*\"[\^~<>=*\d]")
_MANIFEST_KEYS: Final = ("content", "new_string")


@check("typosquat_manifest", validate=_validator(_INDEX_TABLES, ()))
def typosquat_manifest(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """A ``requirements*.txt`` or ``package.json`` is written with a dependency one edit from a popular name."""
    manifests = [e for e in ctx.effects if e.op == "write" and _manifest_kind(e.resource)]
    if not manifests:
        return None
    args = ctx.event.args if isinstance(ctx.event.args, dict) else {}
    text = "\n".join(bounded_text(args.get(k)) for k in _MANIFEST_KEYS)
    if not text.strip():
        return None
    built = prepared(ctx.data)
    for effect in manifests:
        npm = _manifest_kind(effect.resource) == "npm"
        if npm:
            names = [n.lower() for n in _PACKAGE_JSON_DEP.findall(text)[:200] if not n.startswith("@")]
        else:
            lines = (line.split("#", 1)[0].strip() for line in text.splitlines()[:500])
            names = [package_name(line, "pypi") for line in lines if line]
        index: PopularIndex = built["npm" if npm else "pypi"]
        for name in names:
            near = index.nearest(name) if name else None
            if near is not None and near[1] == 1:
                detail = f"dependency {name}, 1 edit from the popular package {near[0]}"
                return (make("write", effect.resource, effect.classes, effect.via, detail),)
    return None


def _manifest_kind(path: str) -> str:
    base = path.rstrip("/").rpartition("/")[2].lower()
    if base == "package.json":
        return "npm"
    return "pypi" if base.startswith("requirements") and base.endswith(".txt") else ""


@check(
    "package_source",
    validate=_validator(("allowed_pypi_hosts", "allowed_npm_hosts", "package_managers"), ("op", "transport")),
)
def package_source(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """A Python or npm package manager is pointed at an index, registry or package URL off the allowed hosts
    (args: op — which effects; transport — insecure: only plain HTTP or a bare IP, secure: only otherwise)."""
    ops = ctx.args.get("op") or ["connect", "change_settings", "install"]
    transport = ctx.args.get("transport", "any")
    built = prepared(ctx.data)
    found = []
    for effect in ctx.effects:
        if effect.op not in ops or "net_loopback" in effect.classes or "://" not in effect.resource:
            continue  # a registry on this machine (verdaccio, devpi) is the developer's own
        if effect.op == "install" and effect.resource.startswith("git+https://"):
            continue  # a dependency pinned to a repository on a code host: ordinary
        if effect.op != "install" and not (effect.detail or "").endswith(" index"):
            continue
        eco = _ecosystem(effect, built)
        if eco is None or listed(host_path(effect.resource), built["hosts"][eco]):
            continue
        plain = insecure(effect.resource)
        if transport == "any" or (transport == "insecure") == plain:
            found.append(effect)
    return tuple(found) or None


@check("script_host", validate=_validator(("trusted_script_hosts",), ("listed",)))
def script_host(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """A downloaded script that is run comes from a trusted installer host (args: listed true) or not (false)."""
    want = bool(ctx.args.get("listed", False))
    hosts = prepared(ctx.data)["hosts"]["scripts"]
    found = [
        e
        for e in ctx.effects
        if e.op == "execute"
        and (e.detail or "").startswith("downloaded")
        and listed(host_path(e.resource), hosts) == want
    ]
    return tuple(found) or None


_DEB_HTTP: Final = re.compile(r"(?m)(?:^|[\s'\"])deb(?:-src)?\s+(?:\[[^\]\n]{0,200}\]\s+)?http://")


@check("apt_source_plain_http")
def apt_source_plain_http(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """An APT source list written by this action holds a ``deb http://`` line (packages over plain HTTP)."""
    writes = [e for e in ctx.effects if e.op == "write" and "sources.list" in e.resource]
    if not writes:
        return None
    args = ctx.event.args if isinstance(ctx.event.args, dict) else {}
    for key in ("command", "content", "new_string", "cmd", "script"):
        text = bounded_text(args.get(key))
        if "deb" in text and "http://" in text and _DEB_HTTP.search(text):
            return tuple(writes)
    return None
