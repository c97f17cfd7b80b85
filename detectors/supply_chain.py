"""Supply chain: running code from the network, untrusted package indexes, typosquats.

* A remote script piped into a shell or interpreter (``curl … | sh``, ``bash <(curl …)``,
  ``sh -c "$(wget -qO- …)"``, ``iex (iwr …)``).
* Installs from a non-default index or registry (``pip install --index-url``,
  ``--extra-index-url``, ``npm install --registry``, ``PIP_INDEX_URL=``), from plain
  ``http://`` or ``git+http://`` URLs, and chart repositories on bare IPs or plain HTTP.
* Typosquats: an installed package name within Damerau-Levenshtein distance 1 (2 for
  names of 8+ characters) of a popular PyPI or npm package that is not popular itself
  (``reqeusts``, ``colourama``, ``lodahs``). The look-up uses a precomputed deletion
  index (SymSpell), so checking a name costs a few dozen set look-ups, and only
  install commands are parsed at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Final
from urllib.parse import urlsplit

from agentwatch.detect.detector_spec import Detector, DetectorConfig, Finding, supporting
from agentwatch.detect.session_state import SessionState
from agentwatch.detectors._rulekit import (
    CMD,
    RULE_SCORE,
    Hit,
    Rule,
    Verdict,
    best_hit,
    candidates,
    clip,
    command_words,
    gated,
    report,
    surface,
    window,
)
from agentwatch.events.audit_event import AuditEvent

__all__ = ["SupplyChain", "SupplyChainConfig", "damerau_levenshtein", "PopularIndex"]

#: Popular PyPI projects (normalised: lower case, runs of ``-_.`` as ``-``) plus real
#: near-neighbours of them that must not be mistaken for typosquats.
POPULAR_PYPI: Final = frozenset(
    """
    requests numpy pandas django flask boto3 botocore urllib3 setuptools wheel pip six certifi idna
    charset-normalizer python-dateutil pyyaml typing-extensions s3transfer packaging cryptography jmespath
    pyasn1 rsa attrs attr pytz click jinja2 markupsafe colorama protobuf awscli pydantic
    pydantic-core pyjwt cffi
    pycparser wrapt pytest tomli platformdirs importlib-metadata zipp filelock virtualenv psutil pillow scipy
    matplotlib scikit-learn sklearn tensorflow tensorboard torch torchvision keras sqlalchemy psycopg2
    psycopg2-binary psycopg pymysql redis celery fastapi uvicorn unicorn gunicorn starlette httpx httpcore
    aiohttp beautifulsoup4 bs4 lxml selenium openai anthropic langchain transformers tokenizers tqdm rich
    docutils pygments tabulate openpyxl xlrd networkx sympy seaborn plotly boto google-api-core google-auth
    grpcio oauthlib requests-oauthlib paramiko pyopenssl decorator simplejson toml black flake8 mypy isort
    ruff coverage tox nose mock jupyter notebook ipython ipykernel opencv-python nltk spacy pyarrow dask
    numba msgpack ujson orjson pytest-cov sentry-sdk docker kubernetes python-dotenv colorlog termcolor
    arrow pendulum marshmallow werkzeug itsdangerous greenlet gevent twisted scrapy scapy pyserial pygame
    web3 tweepy pymongo elasticsearch kafka-python msgspec httplib2 markdown pyparsing chardet asn1crypto
    multidict yarl frozenlist aiosignal async-timeout distlib pyzmq tornado websocket-client websockets
    jsonschema pyrsistent regex joblib threadpoolctl tzdata polars xgboost lightgbm catboost statsmodels
    pytest-mock pytest-asyncio hypothesis faker factory-boy alembic peewee pyodbc cx-oracle
    snowflake-connector-python
    google-cloud-storage google-cloud-bigquery azure-storage-blob azure-identity grpcio-tools h5py
    imageio scikit-image shapely geopandas folium dash streamlit gradio huggingface-hub datasets accelerate
    sentencepiece safetensors onnx onnxruntime jax jaxlib flax optax einops wandb mlflow optuna ray
    prefect airflow apache-airflow great-expectations pyspark findspark pyinstaller cython pybind11 nuitka
    poetry pipenv pdm hatch hatchling flit build twine keyring cachetools more-itertools tenacity backoff
    retrying schedule apscheduler croniter humanize python-slugify unidecode emoji pyfiglet pyperclip
    pyautogui pynput keyboard mouse discord-py python-telegram-bot slack-sdk slack-bolt twilio stripe
    sendgrid boto3-stubs types-requests types-pyyaml pre-commit bandit safety pylint autopep8 yapf
    sphinx mkdocs mkdocs-material pdoc nbconvert nbformat jupyterlab voila pyqt5 pyside6 kivy
    wxpython tk customtkinter pywin32 comtypes pyobjc django-rest-framework djangorestframework djongo
    flask-cors flask-sqlalchemy flask-login flask-wtf wtforms graphene strawberry-graphql ariadne grequests
    pyaml ruamel-yaml jsonpickle dill cloudpickle fsspec s3fs gcsfs adlfs smart-open
    """.split()
)
POPULAR_NPM: Final = frozenset(
    """
    lodash lodash-es express react react-dom axios chalk commander debug moment request async underscore vue
    jquery webpack webpack-cli typescript eslint tslint prettier jest mocha chai next uuid dotenv dotenvx
    body-parser cors mongoose socket.io yargs args minimist glob rimraf mkdirp fs-extra semver colors color
    inquirer bluebird redux react-redux styled-components tslib rxjs classnames prop-types core-js node-fetch
    ws cheerio nodemon esbuild vite rollup electron puppeteer playwright sharp bcrypt bcryptjs jsonwebtoken
    passport dayjs date-fns zod cross-env ethers web3 graphql apollo-server sequelize knex pg mysql mysql2
    redis ioredis nanoid qs marked handlebars ejs pug winston morgan helmet cookie-parser multer nodemailer
    aws-sdk firebase discord.js mongodb typeorm prisma tailwindcss postcss autoprefixer sass less gulp grunt
    karma cypress vitest husky lint-staged concurrently ora boxen figlet ramda immutable mobx svelte preact
    d3 three chart.js babel-cli babel-core babel-loader babel-preset-env babel-eslint ts-node ts-jest
    nodemailer react-router react-router-dom react-scripts create-react-app vue-router vuex pinia nuxt
    angular rxjs-compat zone.js jsdom supertest sinon nock msw faker chance uuidv4 shortid
    react-native expo react-query swr formik yup joi ajv superagent got ky cross-fetch isomorphic-fetch
    form-data busboy formidable koa hapi fastify nest restify serve http-server live-server browser-sync
    pm2 forever dotenv-expand config convict yaml js-yaml xml2js fast-xml-parser csv-parser papaparse
    xlsx pdfkit jspdf canvas jimp chokidar debounce throttle-debounce lru-cache node-cache keyv
    react-dnd react-icons react-select react-table framer-motion gsap animejs socket.io-client
    """.split()
)
#: Established packages that sit one or two edits from a popular name (real neighbours, not
#: typosquats): the PyPI names are those among the 15,000 most downloaded projects, the npm
#: names those with over a million downloads a month, that the check below would flag.
KNOWN_NEIGHBOURS_PYPI: Final = frozenset(
    """
    authlib beautifulsoup botostubs bpython bx-python cattrs cchardet crick cronitor ctransformers dataset
    datasette datazets dbutils demoji dmpython dydantic ecoji elasticsearch5 elasticsearch6 elasticsearch7
    elasticsearch8 elasticsearch9 encutils fastai fifolock frozendict google-oauth google-reauth grapheme
    graphemeu graphyte gsutil hjson httpr ijson installer ipytest jaxlie jupyter-ai jupyterhub kanboard
    lightfm logutils markdown2 markitdown match mdformat mocker moocore motor-stubs myjwt networkit ngboost
    niquests openapi oyaml p4python panda patch pathlib pbspark persistent psycopg-binary psycopg-c
    psycopgbinary ptpython pyamg pyasn pyautogen pygam pyglet pyjdbc pyjsparser pykml pylink pymantic
    pymssql pyopencl pyopengl pyopenms pyqt6 pyserini pyshark pyside2 pytest-async pytest-cover pytest-cpp
    pytest-csv pytest-env pyyml quests retworkx scanpy schedula scheduler scipp segments serial simpy slack
    spython streamlink sumtypes tabulator tensorboardx tensorflowjs tgscheduler tokenize-rt tombi torchx
    types-pysaml2 unicon usort vbuild wand websocket willow x-transformers xoto3
    """.split()
)
KNOWN_NEIGHBOURS_NPM: Final = frozenset(
    """
    aws-cdk colord commondir commoner crossvent crypt css-parse csv-parse dargs electrodb enquirer fast-url-
    parser gaxios grant graphiql isomorphic-unfetch jsdoc lodash-id minimisted mquery mssql node-watch
    p-debounce rambda react-rnd react-selecto react-tabs react-uid rss-parser scriptjs scrypt-js smtp-server
    svg-parser useragent uuidv7 vasync xml-js
    """.split()
)
#: Package managers' default registries (hosts); installing from anything else is reported.
DEFAULT_PYPI_HOSTS: Final = ("pypi.org", "files.pythonhosted.org", "pypi.python.org", "download.pytorch.org")
DEFAULT_NPM_HOSTS: Final = ("registry.npmjs.org", "registry.yarnpkg.com", "registry.npmmirror.com")
#: Well-known installers whose ``curl | sh`` is routine (lower score, not silence).
DEFAULT_TRUSTED_SCRIPT_HOSTS: Final = tuple(
    """
    sh.rustup.rs astral.sh install.python-poetry.org bun.sh deno.land get.pnpm.io
    raw.githubusercontent.com/homebrew/ raw.githubusercontent.com/nvm-sh/ get.docker.com
    cli.github.com starship.rs foundry.paradigm.xyz
    """.split()
)


# -- typosquat distance ------------------------------------------------------------
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
            if value < row_min:
                row_min = value
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
    """Popular package names and a deletion index to find near-misses of them fast.

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


# -- install command parsing -----------------------------------------------------------
_PIP_VALUE_FLAGS: Final = frozenset(
    """
    -r --requirement -c --constraint -e --editable -i --index-url --extra-index-url -f --find-links
    -t --target --prefix --root --python-version --platform --implementation --abi --only-binary
    --no-binary --progress-bar --src --upgrade-strategy --cache-dir --log --proxy --retries
    --timeout --trusted-host --cert --client-cert -C --config-settings --report --python -p --index
    --default-index --group -g --source --extra -E --with --optional
    """.split()
)
_NPM_VALUE_FLAGS: Final = frozenset(
    """
    --registry --prefix --tag --workspace -w --omit --include --save-prefix --cache --userconfig
    --cwd --filter -F --network-timeout --modules-folder --package -p
    """.split()
)
_PIP_INSTALL: Final = re.compile(
    r"(?:python[\d.]*\s+-m\s+)?(?:uv\s+)?pip[\d.]*\s+install\b|pipx\s+install\b|uv\s+add\b|poetry\s+add\b"
    r"|pdm\s+add\b|rye\s+add\b|easy_install\b"
)
_NPM_INSTALL: Final = re.compile(
    r"(?:npm|cnpm)\s+(?:install|i|add|in|isntall)\b|yarn\s+(?:global\s+)?add\b|pnpm\s+(?:add|install|i)\b"
    r"|bun\s+(?:add|install|i)\b|npx\s+(?:--yes\s+|-y\s+)?(?=[a-z@])"
)
_NAME_END: Final = re.compile(r"[\[=<>!~;@\s,]")
_BOUNDARY: Final = frozenset(" \t\n;&|(`'\"!%")


def normalise_pypi(name: str) -> str:
    """PEP 503 normalisation: ``Scikit_Learn`` → ``scikit-learn``.

    >>> normalise_pypi("Python_Dateutil")
    'python-dateutil'
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def install_targets(low: str, m: re.Match[str], npm: bool) -> list[str]:
    """Package names given to one install command (versions, extras, flags, paths dropped).

    At most the first ten names; a "command" with more than 25 positional words is
    prose that happens to follow an install verb, not an install, and yields none.

    >>> text = "pip install -q 'requests[socks]>=2' numpyy==1.2 -r req.txt ./local"
    >>> install_targets(text, _PIP_INSTALL.search(text), npm=False)
    ['requests', 'numpyy']
    """
    value_flags = _NPM_VALUE_FLAGS if npm else _PIP_VALUE_FLAGS
    names: list[str] = []
    positional = 0
    skip = False
    for word in command_words(low, m.end()):
        if skip:
            skip = False
            continue
        if word.startswith("-"):
            skip = word in value_flags
            continue
        positional += 1
        if positional > _MAX_POSITIONAL:
            return []
        if len(names) >= _MAX_NAMES or (npm and names and m.group().startswith("npx")):
            continue
        word = word.strip("'\"")
        if not word or word.startswith((".", "/", "~", "$")) or "://" in word or word.endswith(_FILE_SUFFIXES):
            continue
        if npm:
            if word.startswith("@"):
                continue  # scoped packages live in their owner's namespace
            name = word.split("@", 1)[0]
            if "/" in name or ":" in name:
                continue  # github:user/repo, file:…, aliases
        else:
            if "/" in word or "@" in word:
                continue  # direct references and paths
            name = normalise_pypi(_NAME_END.split(word, 1)[0])
        if name and name not in names:
            names.append(name)
    return names


_MAX_NAMES: Final = 10
_MAX_POSITIONAL: Final = 25
_FILE_SUFFIXES: Final = (".txt", ".whl", ".gz", ".zip", ".tgz", ".toml", ".cfg", ".lock")


# -- rules -----------------------------------------------------------------------------
#: ``check(low, match, detector)``, as :func:`agentwatch.detectors._rulekit.best_hit` calls it.
Check = Callable[[str, "re.Match[str]", "SupplyChain"], Verdict]
_rx = re.compile


def _url_host(url: str) -> str:
    """``host/path`` of ``url`` (lower-case host, no port), or ``""`` when it does not parse."""
    try:
        parts = urlsplit(url.strip("'\""))
    except ValueError:
        return ""
    return (parts.hostname or "") + (parts.path or "")


def _listed(host_path: str, entries: tuple[str, ...]) -> bool:
    """Whether ``host/path`` is one of ``entries``: an exact host, or a ``host/path`` prefix.

    >>> _listed("pypi.org/simple", ("pypi.org",)), _listed("pypi.org.evil.example/simple", ("pypi.org",))
    (True, False)
    """
    host = host_path.split("/", 1)[0]
    for entry in entries:
        if "/" in entry:
            if host_path.startswith(entry):
                return True
        elif host == entry:
            return True
    return False


def _check_pipe(low: str, m: re.Match[str], det: SupplyChain) -> Verdict:
    if m.start() and low[m.start() - 1] not in _BOUNDARY:
        return None
    found = _URL.search(m.group())
    host = _url_host(found.group()) if found else ""
    if host and _listed(host, det._trusted_scripts):
        return 0.45, "pipe_to_shell_trusted", "pipes a well-known installer into a shell"
    return RULE_SCORE


_URL: Final = re.compile(r"https?://[^\s'\")|]+")
_IP_URL: Final = re.compile(r"https?://\d{1,3}(?:\.\d{1,3}){3}(?:[:/]|$)")
_INSTALLERS: Final = tuple("pip uv npm yarn pnpm poetry pdm bun easy_install pipx .npmrc pip.conf".split())
#: Package-manager subcommands that query the index or manage the account there and install nothing.
_QUERY_ONLY: Final = re.compile(
    r"\b(?:npm|yarn|pnpm|bun)\s+(?:star|stars|unstar|ping|whoami|login|logout|adduser|search|view|info|owner"
    r"|access|profile)\b|\bpip3?\s+index\b"
)
#: Environment variables that point a package manager at an index, unambiguous on their own.
_INDEX_VARIABLES: Final = ("pip_", "uv_", "npm_config")


def _check_index(low: str, m: re.Match[str], det: SupplyChain) -> Verdict:
    url = m.group("url").strip("'\"")
    flag = m.group()[: m.start("url") - m.start()]
    if not flag.startswith(_INDEX_VARIABLES):  # a flag or a key: only a package manager's counts
        head = low[max(0, m.start() - 300) : m.start()]
        cut = max(head.rfind(";"), head.rfind("&"), head.rfind("|"), head.rfind("\n"))
        context = head[cut + 1 :] + " " + low[m.end() : m.end() + 120].split("\n", 1)[0]
        if not any(t in context for t in _INSTALLERS) or _QUERY_ONLY.search(context):
            return None
    allowed = det._npm_hosts if "registry" in flag else det._pypi_hosts
    if _listed(_url_host(url), allowed):
        return None
    if url.startswith("http://") or _IP_URL.match(url):
        return 0.85
    return RULE_SCORE


def _check_direct_url(low: str, m: re.Match[str], det: SupplyChain) -> Verdict:
    url = m.group("url").strip("'\"")
    if _listed(_url_host(url), det._pypi_hosts + det._npm_hosts):
        return None
    if url.startswith(("http://", "git+http://")):
        return RULE_SCORE
    if url.startswith("git+"):
        return None  # git+https from a code host is an ordinary pinned dependency
    return 0.6, "install_from_url", "installs a package archive from an unvetted host"


def _check_helm_repo(low: str, m: re.Match[str], det: SupplyChain) -> Verdict:
    url = m.group("url")
    if url.startswith("http://") or _IP_URL.match(url):
        return RULE_SCORE
    return None


_FETCH = r"(?:curl|wget|fetch|iwr|irm|invoke-webrequest|invoke-restmethod|http|aria2c)"
_RUNNER = r"(?:sudo\s+(?:-\S+\s+)*)?(?:(?:ba|z|da|k|fi)?sh|python[\d.]*|perl|ruby|node|php)"

_RULES: Final = (
    Rule(
        "pipe_to_shell",
        0.85,
        "pipes a downloaded script into a shell",
        ("curl", "wget", "fetch", "iwr", "irm", "invoke-", "http", "aria2c"),
        _rx(_FETCH + r"\b" + CMD + r"\|\s*" + _RUNNER + r"(?:\s+-s\b[^|;&\n]*|\s+-\s*)?(?=$|[\s;&|)])(?!\s*-[cme]\b)"),
        _check_pipe,
    ),
    Rule(
        "pipe_to_shell",
        0.85,
        "runs a downloaded script in a shell",
        ("<(", "$("),
        _rx(
            r"(?:(?:ba|z|da)?sh|source|\.|python[\d.]*)\s+(?:-c\s+)?[\"']?(?:<\(|\$\()\s*" + _FETCH + r"\b"
            r"(?P<url>[^)]*)"
        ),
        _check_pipe,
    ),
    Rule(
        "pipe_to_shell",
        0.85,
        "runs a downloaded script in PowerShell",
        ("iex", "invoke-expression"),
        _rx(
            r"(?:iex|invoke-expression)\b\s*\(?\s*(?:\(?\s*(?:iwr|irm|invoke-webrequest|invoke-restmethod)"
            r"|\(?\s*new-object\s+(?:system\.)?net\.webclient)"
        ),
    ),
    Rule(
        "untrusted_index",
        0.8,
        "installs from a non-default package index",
        ("index", "find-links", "registry", " -i ", " -f "),
        _rx(
            r"(?:--(?:extra-)?index-url|--index|--default-index|--find-links|--registry|(?<=\s)-[if])[\s=]+"
            r"(?P<url>['\"]?https?://[^\s'\"]+)"
        ),
        _check_index,
    ),
    Rule(
        "untrusted_index",
        0.8,
        "points the package manager at a non-default index",
        ("pip_", "npm_config", "config set", "registry=", "uv_index", "poetry source", "index-url"),
        _rx(
            r"(?:pip_(?:extra_)?index_url|uv_(?:extra_)?index_url|npm_config_registry|registry|index-url|index_url"
            r"|poetry\s+source\s+add\s+\S+)[\s=]+(?P<url>['\"]?https?://[^\s'\"]+)"
        ),
        _check_index,
    ),
    Rule(
        "insecure_install_url",
        0.8,
        "installs a package over plain HTTP",
        ("http",),
        _rx(
            r"(?:pip[\d.]*|uv\s+pip|npm|yarn|pnpm)\s+(?:install|i|add)\b"
            + CMD
            + r"\s(?P<url>['\"]?(?:git\+)?https?://[^\s'\"]+)"
        ),
        _check_direct_url,
    ),
    Rule(
        "untrusted_chart_repo",
        0.8,
        "adds a chart repository on a bare IP or plain HTTP",
        ("helm",),
        _rx(r"helm\s+repo\s+add\s+\S+\s+(?P<url>https?://\S+)"),
        _check_helm_repo,
    ),
    Rule(
        "untrusted_apt_source",
        0.7,
        "adds a package source over plain HTTP",
        ("sources.list", "apt-key"),
        _rx(
            r"deb\s+(?:\[[^]]*\]\s+)?http://\S+" + CMD + r"sources\.list|apt-key\s+adv\b|\|\s*(?:sudo\s+)?apt-key\s+add"
        ),
    ),
)
_TABLE: Final = gated(_RULES)
#: Install verbs; the typosquat parser runs only when one of these is present.
_INSTALL_GATES: Final = ("install", "add", " i ", "npx")
_MANIFESTS: Final = re.compile(r"(?:^|/)(?:requirements[\w.-]*\.txt|package\.json)$")
_PACKAGE_JSON_DEP: Final = re.compile(r"\"(@?[\w./-]+)\"\s*:\s*\"[\^~<>=*\d]")


class SupplyChainConfig(DetectorConfig):
    """Tunables of :class:`SupplyChain`.

    Parameters
    ----------
    allowed_pypi_hosts
        Hosts (optionally with a path prefix) accepted as Python package indexes.
    allowed_npm_hosts
        Hosts accepted as npm registries.
    trusted_script_hosts
        URL prefixes (host[/path]) of installers whose ``curl | sh`` scores low (0.45).
    extra_popular_pypi, extra_popular_npm
        More popular names to protect (and to accept as legitimate).
    known_packages
        Names that are never typosquats (internal packages close to a popular name).
    typosquat_score, typosquat_far_score
        Score of a name at distance 1, and at distance 2 (long names only).
    max_scan_chars
        Longer target/argument text is examined only in its first three quarters and last
        quarter of this many characters (bounds the cost of pathological events).
    """

    allowed_pypi_hosts: tuple[str, ...] = DEFAULT_PYPI_HOSTS
    allowed_npm_hosts: tuple[str, ...] = DEFAULT_NPM_HOSTS
    trusted_script_hosts: tuple[str, ...] = DEFAULT_TRUSTED_SCRIPT_HOSTS
    extra_popular_pypi: tuple[str, ...] = ()
    extra_popular_npm: tuple[str, ...] = ()
    known_packages: tuple[str, ...] = ()
    typosquat_score: float = 0.75
    typosquat_far_score: float = 0.65
    max_scan_chars: int = 2048


class SupplyChain(Detector):
    """Flags remote scripts run in a shell, untrusted package sources and typosquatted installs.

    Scores: ``curl | sh`` 0.85 (0.45 for a configured well-known installer), an index or
    registry on plain HTTP or a bare IP 0.85, another non-default index 0.8, plain-HTTP
    package URLs 0.8, a typosquat 0.75 (0.65 at distance 2).

    Examples
    --------
    >>> from agentwatch.events.audit_event import from_mapping
    >>> from agentwatch.detect.session_state import SessionTable
    >>> ev = from_mapping({"event_id": "e1", "ts": 1767225600000, "session_id": "s1",
    ...                    "agent_id": "coder", "kind": "tool_call", "tool": "Bash",
    ...                    "target": "pip install -q reqeusts pytest"})
    >>> [finding] = SupplyChain().observe(ev, SessionTable().touch(ev)[0])
    >>> finding.rule, finding.score, finding.category
    ('typosquat', 0.75, 'supply_chain')
    """

    name: ClassVar[str] = "supply_chain"
    categories: ClassVar[frozenset[str]] = frozenset({"supply_chain"})
    config_type: ClassVar[type[DetectorConfig]] = SupplyChainConfig
    cost_us: ClassVar[float] = 4.8  # measured: bench/detector_cost.py, 2-core reference machine
    summary: ClassVar[str] = "curl|sh, untrusted package indexes and typosquatted package installs."

    def __init__(self, config: SupplyChainConfig | None = None) -> None:
        super().__init__(config)
        cfg: SupplyChainConfig = self.config  # type: ignore[assignment]
        self._scan_cap = max(256, cfg.max_scan_chars)
        known = {normalise_pypi(n) for n in cfg.known_packages}
        self._pypi = PopularIndex(
            POPULAR_PYPI | {normalise_pypi(n) for n in cfg.extra_popular_pypi},
            known=KNOWN_NEIGHBOURS_PYPI | known,
        )
        self._npm = PopularIndex(
            POPULAR_NPM | {n.lower() for n in cfg.extra_popular_npm}, known=KNOWN_NEIGHBOURS_NPM | known
        )
        self._pypi_hosts = tuple(h.lower() for h in cfg.allowed_pypi_hosts)
        self._npm_hosts = tuple(h.lower() for h in cfg.allowed_npm_hosts)
        self._trusted_scripts = tuple(h.lower() for h in cfg.trusted_script_hosts)
        self._near = cfg.typosquat_score
        self._far = cfg.typosquat_far_score

    def checkpoint(self) -> bytes:
        return b""  # stateless: everything is rebuilt from the config

    def restore(self, state: bytes) -> None:
        return None

    def observe(self, event: AuditEvent, session: SessionState) -> Sequence[Finding]:
        kind = event.kind
        if kind != "tool_call" and (kind != "tool_result" or session.kind_counts.get("tool_call")):
            return ()
        text = clip(surface(event), self._scan_cap)
        best: Hit | None = None
        if text:
            low = text.lower()
            rules = candidates(_TABLE, low)
            if rules:
                best = best_hit(rules, low, text, self)
            if best is None or best[0] < self._near:
                for gate in _INSTALL_GATES:
                    if gate in low:
                        best = self._typosquats(low, text) or best
                        break
        if best is None and event.args:
            best = self._manifest(event)
        if best is None:
            return ()
        return report(best, supporting(event), "supply_chain")

    def _typosquats(self, low: str, surface: str) -> Hit | None:
        for rx, index, npm in ((_PIP_INSTALL, self._pypi, False), (_NPM_INSTALL, self._npm, True)):
            for m in rx.finditer(low):
                if m.start() and low[m.start() - 1] not in _BOUNDARY:
                    continue
                hit = self._squat_hit(install_targets(low, m, npm), index, "npm" if npm else "PyPI")
                if hit is not None:
                    return hit._replace(snippet=window(surface, low, m.start(), m.end() + 60))
        return None

    def _squat_hit(self, names: Iterable[str], index: PopularIndex, ecosystem: str) -> Hit | None:
        for name in names:
            near = index.nearest(name)
            if near is not None:
                popular, distance = near
                score = self._near if distance <= 1 else self._far
                return Hit(
                    score,
                    "typosquat",
                    f"installs {name!r}, {distance} edit(s) from the popular {ecosystem} package {popular!r}",
                    name,
                )
        return None

    def _manifest(self, event: AuditEvent) -> Hit | None:
        """A dependency manifest written with a typosquatted name in it."""
        target = (event.target or "").lower()
        if not _MANIFESTS.search(target):
            return None
        args: dict[str, Any] = event.args or {}
        text = "\n".join(v for k in ("content", "new_string") if isinstance(v := args.get(k), str))
        if not text:
            return None
        if target.endswith(".json"):
            names = [n.lower() for n in _PACKAGE_JSON_DEP.findall(text) if not n.startswith("@")]
            hit = self._squat_hit(names[:200], self._npm, "npm")
        else:
            names = []
            for line in text.splitlines()[:500]:
                line = line.split("#", 1)[0].strip()
                if line and not line.startswith("-") and "://" not in line:
                    names.append(normalise_pypi(_NAME_END.split(line, 1)[0]))
            hit = self._squat_hit(names, self._pypi, "PyPI")
        if hit is None:
            return None
        return Hit(0.7, "typosquat_manifest", hit.what.replace("installs", "adds a dependency on"), hit.snippet)
