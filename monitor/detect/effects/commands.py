"""What common programs do with their arguments.

The command table behind :func:`agentwatch.detect.effects.shell.run_argv`.

Each handler gets the collector, the program's base name, its arguments (already evaluated) and
the stream on its stdin, adds effects, and returns what it writes to stdout (a
:class:`~agentwatch.detect.effects.shell.Stream`) or None. Options are read the way the program reads them
only as far as the effect needs (which argument is a file, a URL, an output); anything else is
left alone rather than guessed.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable
from typing import Final

from agentwatch.detect.effects import infra
from agentwatch.detect.effects.classify import endpoint_classes, is_secret_name, path_classes
from agentwatch.detect.effects.shell import (
    _DL_MARK,
    Collector,
    Stream,
    Written,
    decode_base64,
    env_assignment,
    is_shell_setup,
    run_argv,
    run_shell,
    write_path,
)

Handler = Callable[[Collector, str, list[str], Stream | None], Stream | None]
HANDLERS: dict[str, Handler] = dict(infra.HANDLERS)  # database clients and IaC tools (effects/infra.py)


def handles(*names: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for name in names:
            HANDLERS[name] = fn
        return fn

    return register


def split_opts(
    args: list[str], short_val: str = "", long_val: Iterable[str] = ()
) -> tuple[list[tuple[str, str]], list[str]]:
    """Options as ``(name, value)`` pairs (value ``""`` for flags) and operands, getopt style.

    >>> split_opts(["-rf", "a", "-o", "out", "--data=@k", "--", "-x"], "o", {"--data"})
    ([('-r', ''), ('-f', ''), ('-o', 'out'), ('--data', '@k')], ['a', '-x'])
    """
    long_set = frozenset(long_val)
    opts: list[tuple[str, str]] = []
    operands: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            operands.extend(args[i + 1 :])
            break
        if a.startswith("--") and len(a) > 2:
            name, eq, val = a.partition("=")
            if not eq and name in long_set and i + 1 < len(args):
                val = args[i + 1]
                i += 1
            opts.append((name, val))
        elif a.startswith("-") and len(a) > 1 and a != "-":
            for j, ch in enumerate(a[1:], start=1):
                if ch in short_val:
                    val = a[j + 1 :]
                    if not val and i + 1 < len(args):
                        val = args[i + 1]
                        i += 1
                    opts.append((f"-{ch}", val))
                    break
                opts.append((f"-{ch}", ""))
        else:
            operands.append(a)
        i += 1
    return opts, operands


def has(opts: list[tuple[str, str]], *names: str) -> bool:
    return any(n in names for n, _ in opts)


def values(opts: list[tuple[str, str]], *names: str) -> list[str]:
    return [v for n, v in opts if n in names]


def _is_url(arg: str) -> bool:
    return "://" in arg[:16]


def _looks_path(arg: str) -> bool:
    return bool(arg) and not arg.startswith("-") and not _is_url(arg)


def _sources(stdin: Stream | None) -> tuple[str, ...]:
    return stdin.sources if stdin else ()


def _upload(col: Collector, path: str, endpoint: str, via: str = "shell") -> None:
    col.path("read", path)
    p = path
    col.add("upload", p, path_classes(p) | endpoint_classes(endpoint), via, f"to {endpoint}")


def _send_stdin(col: Collector, stdin: Stream | None, endpoint: str, send: bool = True) -> None:
    """Data piped into a network client goes to ``endpoint``: files named upstream are uploaded."""
    if stdin is None or (stdin.text == "" and not stdin.sources and stdin.flavour is None):
        return  # nothing flows (`</dev/null`): a connection, not a send
    if send:
        col.endpoint("send", endpoint, "stdin")
    for src in stdin.sources:
        col.add("upload", src, path_classes(src) | endpoint_classes(endpoint), "shell", f"to {endpoint}")


# -- wrappers ------------------------------------------------------------------------------------
_SUDO_VAL: Final = "ugpChDrRT"


#: Programs that, run through sudo or doas, are a shell as the target user.
_SHELL_PROGRAMS: Final = frozenset({"sh", "bash", "zsh", "dash", "ksh", "fish", "csh", "tcsh", "su"})


@handles("sudo", "doas", "pkexec")
def _sudo(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    """``elevate`` to the target user; detail ``<name> shell`` for a shell as that user (``-i``, ``-s``,
    ``sudo bash``, ``sudo su``), ``<name> password on stdin`` when ``-S`` reads a password piped in."""
    i, user = 0, "root"
    flags: set[str] = set()
    while i < len(args) and args[i].startswith("-"):
        a = args[i]
        if a in ("-l", "--list", "-ll"):
            col.add("elevate", user, detail="list")
            return None
        if a in ("-v", "-k", "-K"):
            return None
        if len(a) == 2 and a[1] in _SUDO_VAL and i + 1 < len(args):
            if a == "-u":
                user = args[i + 1]
            i += 2
            continue
        if a.startswith("--user="):
            user = a.split("=", 1)[1]
        flags.update([a.split("=", 1)[0]] if a.startswith("--") else a[1:])
        i += 1
    rest = args[i:]
    detail = name
    if ("S" in flags or "--stdin" in flags) and stdin is not None and (stdin.text or stdin.sources):
        detail = f"{name} password on stdin"
        if "$(…)" in (stdin.text or "")[:200]:  # computed from data: a list of passwords being tried
            col.add("execute", name, detail="password from data")
    elif flags & {"i", "s", "--login", "--shell"} or (rest and rest[0].rsplit("/", 1)[-1] in _SHELL_PROGRAMS):
        detail = f"{name} shell"
    col.add("elevate", user, detail=detail)
    if not rest:
        return None
    if rest and "=" in rest[0] and not rest[0].startswith("="):  # sudo VAR=x cmd
        return _env(col, "env", rest, stdin)
    return run_argv(col, rest, stdin, {})


@handles("su", "runuser")
def _su(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    opts, operands = split_opts(args, "cgs", {"--command", "--group", "--shell"})
    if has(opts, "-h", "--help", "-V", "--version"):
        return None
    user = next((o for o in operands if o != "-"), "root")
    col.add("elevate", user, detail=name)
    if stdin is not None and "$(…)" in (stdin.text or "")[:200]:  # a password computed from data, piped in
        col.add("execute", name, detail="password from data")
    for cmd in values(opts, "-c", "--command"):
        run_shell(col, cmd)
    return None


@handles("env")
def _env(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    i = 0
    local: dict[str, str] = {}
    while i < len(args):
        a = args[i]
        if a in ("-u", "--unset", "-C", "--chdir", "-S"):
            if a == "-S" and i + 1 < len(args):
                return run_shell(col, " ".join(args[i + 1 :]), stdin)
            if a in ("-u", "--unset") and i + 1 < len(args) and args[i + 1] in ("HISTFILE",):
                col.add("tamper", "shell_history", detail=f"unset {args[i + 1]}")
            i += 2
            continue
        if a.startswith("-"):
            i += 1
            continue
        if "=" in a and not a.startswith("="):
            k, _, v = a.partition("=")
            local[k] = v
            env_assignment(col, k, v)
            i += 1
            continue
        break
    rest = args[i:]
    if name == "env":
        note_shell_escape(col, rest, stdin)
    if not rest:
        if name in ("env", "printenv"):
            col.add("env", "*", frozenset({"credential_store"}), detail="read")
        return Stream()
    return run_argv(col, rest, stdin, local)


@handles("printenv")
def _printenv(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    names = [a for a in args if not a.startswith("-")]
    if not names:
        col.add("env", "*", frozenset({"credential_store"}), detail="read")
    for n in names:
        col.add("env", n, frozenset({"credential_store"}) if is_secret_name(n) else frozenset(), detail="read")
    return Stream()


@handles(
    "nohup",
    "time",
    "command",
    "builtin",
    "exec",
    "setsid",
    "unbuffer",
    "caffeinate",
    "chronic",
    "torsocks",
    "proxychains",
    "proxychains4",
    "stdbuf",
    "nice",
    "ionice",
    "taskset",
    "chrt",
    "timeout",
    "flock",
    "strace",
    "ltrace",
    "script",
    "watch",
    "busybox",
    "firejail",
    "chroot",
    "arch",
    "xvfb-run",
)
def _wrapper(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    i = 0
    with_value = {
        "nice": {"-n", "--adjustment"},
        "ionice": {"-c", "-n", "-p"},
        "timeout": {"-s", "-k", "--signal"},
        "stdbuf": set(),
        "taskset": set(),
        "watch": {"-n", "-d", "--interval"},
        "strace": {"-o", "-e", "-p"},
        "ltrace": {"-o", "-e"},
        "script": {"-c"},
        "flock": {"-w", "-c"},
        "firejail": set(),
    }.get(name, set())
    if name == "command" and args[:1] in (["-v"], ["-V"]):
        return None
    if name == "script" and "-c" in args:
        j = args.index("-c")
        return run_shell(col, args[j + 1], stdin) if j + 1 < len(args) else None
    while i < len(args) and args[i].startswith("-") and args[i] != "-":
        i += 2 if args[i] in with_value else 1
    if name in ("timeout", "taskset", "chrt", "flock") and i < len(args):
        i += 1  # the duration, mask, priority or lock file
    if name == "chroot" and i < len(args):
        col.add("elevate", args[i], detail="chroot")
        i += 1
    if name == "watch":
        return run_shell(col, " ".join(args[i:]), stdin)
    rest = args[i:]
    note_shell_escape(col, rest, stdin)
    if name in ("nohup", "setsid", "daemonize") and rest:  # the command outlives the session that started it
        col.detached += 1
        try:
            return run_argv(col, rest, stdin, {})
        finally:
            col.detached -= 1
    return run_argv(col, rest, stdin, {}) if rest else None


def note_shell_escape(col: Collector, argv: list[str], stdin: Stream | None) -> None:
    """An interactive shell (no script, no ``-c``, nothing on stdin) started by another program.

    ``find . -exec /bin/sh \\;``, ``env /bin/sh``, ``busybox sh``, ``nice bash -p``: the GTFOBins way
    out of a restricted command, or into a root shell when the wrapper runs under sudo.
    """
    if not argv or stdin is not None or argv[0].rsplit("/", 1)[-1] not in _SHELLS:
        return
    if all(a.startswith("-") and "c" not in a.lstrip("-") for a in argv[1:]):
        col.add("execute", argv[0].rsplit("/", 1)[-1], detail="shell escape")


#: Editor commands given on the command line that start a shell: vim ``-c ':!sh'``/``:shell``/``:terminal``,
#: ``:py``/``:lua`` calls to os.system/os.execute; emacs ``--eval '(term "/bin/sh")'``/``(shell)``.
_EDITOR_SHELL: Final = re.compile(
    r"^\s*:?\s*(?:!|sh(?:ell)?\b|term(?:inal)?\b)|\b(?:os\.system|os\.execute|subprocess|pty\.spawn)\b"
    r"|\((?:ansi-)?term\b|\(shell(?:-command)?\b|\(eshell\b|\bcall-process\b|\bstart-process\b"
)


def _editor_shell_escape(col: Collector, args: list[str]) -> list[str]:
    """Editor commands in ``args`` (``-c``, ``+cmd``, ``--eval``, ``-e``) that run a shell: noted; returns them."""
    commands = [
        args[k + 1] for k, a in enumerate(args[:-1]) if a in ("-c", "--cmd", "--eval", "-eval", "--execute", "-e")
    ] + [a[1:] for a in args if a.startswith("+") and len(a) > 1]
    if any(_EDITOR_SHELL.search(c[:2000]) for c in commands):
        col.add("execute", "shell", detail="shell escape")
    return commands


@handles("xargs", "parallel")
def _xargs(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    i = 0
    placeholder = None
    while i < len(args) and args[i].startswith("-"):
        a = args[i]
        if a in ("-I", "-i", "-n", "-P", "-L", "-d", "-E", "-s", "-a", "-j"):
            if a in ("-I", "-i"):
                placeholder = args[i + 1] if i + 1 < len(args) else "{}"
            i += 2
        else:
            if a.startswith("-I") and len(a) > 2:
                placeholder = a[2:]
            i += 1
    rest = args[i:] or ["echo"]
    items = (stdin.text.split() if stdin and stdin.text else []) or list(_sources(stdin)) or ["{stdin}"]
    out = None
    for item in items[:4]:
        argv = [a.replace(placeholder, item) for a in rest] if placeholder else [*rest, item]
        out = run_argv(col, argv, None, {})
    return out


@handles("eval")
def _eval(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    text = " ".join(args)
    if text.startswith(_DL_MARK):
        col.endpoint("execute", text[len(_DL_MARK) :].split("\x00", 1)[0], "downloaded")
        return None
    if col.was_decoded(text):
        col.add("execute", "eval", detail="decoded")
    return run_shell(col, text, stdin)


# -- interpreters ----------------------------------------------------------------------------------
_SHELLS: Final = ("sh", "bash", "zsh", "dash", "ksh", "ash", "mksh", "fish", "csh", "tcsh", "rbash")


def run_program(col: Collector, path: str, args: list[str], stdin: Stream | None) -> Stream | None:
    """A program given by path (``./x.sh``, ``/tmp/payload``): execute it and remember it ran."""
    p = col.path("execute", path)
    col.runs.append(p)
    return None


def _stdin_code(col: Collector, stdin: Stream | None, analyse: Callable[[Collector, str], object], lang: str) -> None:
    """Code arriving on an interpreter's stdin: analyse it when known, else say where it came from."""
    if stdin is None:
        return
    if stdin.flavour == "downloaded" and stdin.origin:
        col.endpoint("execute", stdin.origin, "downloaded")
    if stdin.text is not None:
        if stdin.flavour == "decoded" or col.was_decoded(stdin.text):
            col.add("execute", lang, detail="decoded")
        analyse(col, stdin.text)
    elif stdin.flavour == "decoded":
        col.add("execute", lang, detail="decoded")
    for src in stdin.sources:
        col.path("execute", src)
        col.runs.append(src)


def _code_arg(col: Collector, code: str, analyse: Callable[[Collector, str], object], lang: str) -> None:
    if code.startswith(_DL_MARK):
        col.endpoint("execute", code[len(_DL_MARK) :].split("\x00", 1)[0], "downloaded")
        return
    if col.was_decoded(code):
        col.add("execute", lang, detail="decoded")
    analyse(col, code)


def _shell_code(col: Collector, code: str) -> None:
    run_shell(col, code)


@handles(*_SHELLS)
def _shell(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-c" or (a.startswith("-") and not a.startswith("--") and "c" in a[1:] and len(a) <= 5):
            if i + 1 < len(args):
                _code_arg(col, args[i + 1], _shell_code, name)
            return None
        if a in ("-s", "-"):
            break
        if a in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            i += 2
            continue
        if a.startswith(("-", "+")):
            i += 1
            continue
        if a.startswith(_DL_MARK):  # bash <(curl …)
            col.endpoint("execute", a[len(_DL_MARK) :].split("\x00", 1)[0], "downloaded")
            return None
        p = col.path("execute", a, "script")
        col.runs.append(p)
        return None
    if stdin is None and col.depth > 1:  # a bare shell started from code (os.system("/bin/sh"), sh -c bash)
        col.add("execute", name, detail="shell escape")
    _stdin_code(col, stdin, _shell_code, name)
    return None


@handles("source", ".")
def _source(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if not args:
        return None
    a = args[0]
    if a.startswith(_DL_MARK):
        col.endpoint("execute", a[len(_DL_MARK) :].split("\x00", 1)[0], "downloaded")
        return None
    if a in ("/dev/stdin", "-"):
        _stdin_code(col, stdin, _shell_code, "source")
        return None
    p = col.path("execute", a, "source")
    col.runs.append(p)
    return None


def _python_code(col: Collector, code: str) -> None:
    from agentwatch.detect.effects.python_code import run_python

    run_python(col, code)


@handles("python", "python2", "python3", "pypy", "pypy3", "ipython", "uv", "poetry", "pipenv")
def _python(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if name in ("uv", "poetry", "pipenv"):
        if args[:1] == ["run"]:
            return run_argv(col, args[1:], stdin, {})
        if args[:2] in (["pip", "install"], ["pip", "download"], ["tool", "install"]):
            return _install(col, "pip", args[1:], stdin)  # the verb stays: _install looks for it
        if args[:1] == ["add"] or (name == "pipenv" and args[:1] == ["install"]):
            return _install(col, "pip", ["install", *args[1:]], stdin)
        if name == "poetry" and args[:2] == ["source", "add"]:
            url = next((a for a in args[3:] if "://" in a), "")
            if url:
                col.endpoint("change_settings", url, "poetry index")
        return None
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-c" and i + 1 < len(args):
            col.add("execute", "python", detail="inline")
            _code_arg(col, args[i + 1], _python_code, "python")
            return None
        if a == "-m" and i + 1 < len(args):
            return _python_module(col, args[i + 1], args[i + 2 :], stdin)
        if a in ("-W", "-X", "-Q"):
            i += 2
            continue
        if a == "-":
            break
        if a.startswith("-"):
            i += 1
            continue
        if a.startswith(_DL_MARK):
            col.endpoint("execute", a[len(_DL_MARK) :].split("\x00", 1)[0], "downloaded")
            return None
        p = col.path("execute", a, "script")
        col.runs.append(p)
        return None
    _stdin_code(col, stdin, _python_code, "python")
    return None


def _python_module(col: Collector, module: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if module == "pip":
        return _install(col, "pip", args, stdin)
    if module in ("http.server", "SimpleHTTPServer", "smtpd", "pyftpdlib", "uploadserver"):
        port = next((a for a in args if a.isdigit()), "8000")
        col.add("listen", port, detail=f"python -m {module}")
        if module != "smtpd":  # the files it serves: --directory/-d, else the working directory
            opts, _ = split_opts(args, "dpbiw", {"--directory", "--bind", "--port"})
            served = next(iter(values(opts, "-d", "--directory")), None) or col.cwd or "."
            col.path("read", served, "served over the network")
        return None
    if module in ("base64",) and "-d" in args:
        return Stream(flavour="decoded", text=decode_base64(stdin.text) if stdin and stdin.text else None)
    col.add("execute", module, detail="python module")
    return None


_INLINE_FLAGS: Final = {
    "perl": ("-e", "-E"),
    "ruby": ("-e",),
    "node": ("-e", "--eval", "-p"),
    "php": ("-r",),
    "lua": ("-e",),
    "osascript": ("-e",),
    "pwsh": ("-c", "-Command", "-command", "-EncodedCommand", "-enc", "-e"),
    "powershell": ("-c", "-Command", "-command", "-EncodedCommand", "-enc", "-e"),
    "awk": (),
    "deno": ("eval",),
    "bun": ("-e", "--eval"),
}

#: Options of these interpreters that take a value (``osascript -l JavaScript -e …``): not a script path.
_INLINE_VALUE_OPTS: Final = {"osascript": ("-l", "-s"), "node": ("-r", "--require", "--import")}


@handles(*_INLINE_FLAGS)
def _script_lang(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    flags = _INLINE_FLAGS[name]
    if name == "php" and "-S" in args:
        col.add("listen", args[args.index("-S") + 1] if args.index("-S") + 1 < len(args) else "", detail="php -S")
        return None
    if name == "awk":
        return _awk(col, args, stdin)
    value_opts = _INLINE_VALUE_OPTS.get(name, ())
    for i, a in enumerate(args):
        if i > 0 and args[i - 1] in value_opts:
            continue
        if a in flags and i + 1 < len(args):
            code = args[i + 1]
            if a.lower() in ("-encodedcommand", "-enc", "-e") and name in ("pwsh", "powershell"):
                decoded = _decode_utf16(code)
                if decoded:
                    col.add("execute", name, detail="decoded")
                    code = decoded
            if name == "osascript":  # each -e is one line of the same script
                code = "\n".join(args[k + 1] for k in range(i, len(args) - 1) if args[k] == "-e")
            col.add("execute", name, detail="inline")
            sniff(col, code)
            if name == "osascript":
                _applescript(col, code)
            return None
        if not a.startswith("-") and a not in flags:
            p = col.path("execute", a, "script")
            col.runs.append(p)
            return None
    if stdin is not None:
        _stdin_code(col, stdin, sniff, name)
    return None


#: AppleScript that runs shell code (``do shell script "…"``, Terminal's ``do script "…"``), and a dialog
#: that asks for a hidden answer (a password prompt).
_AS_SHELL: Final = re.compile(r'(?i)\bdo\s+(shell\s+)?script\s+"((?:[^"\\]|\\.){1,2000})"')
_AS_HIDDEN_ANSWER: Final = re.compile(r"(?i)\bdisplay\s+dialog\b[^\n]{0,2000}\bhidden\s+answer\b")


def _applescript(col: Collector, code: str) -> None:
    """What AppleScript does beyond :func:`sniff`: the shell code it runs, a password prompt it shows."""
    for shell, inner in _AS_SHELL.findall(code[:20000])[:4]:
        detached = not shell  # Terminal's `do script` runs it in a window of its own, outliving this one
        col.detached += detached
        try:
            run_shell(col, inner.replace('\\"', '"'))
        finally:
            col.detached -= detached
    if _AS_HIDDEN_ANSWER.search(code[:20000]):
        col.add("execute", "osascript", detail="password prompt")


def _decode_utf16(text: str) -> str | None:
    import base64
    import binascii

    try:
        return base64.b64decode(text + "=" * (-len(text) % 4)).decode("utf-16-le")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def _awk(col: Collector, args: list[str], stdin: Stream | None) -> Stream | None:
    opts, operands = split_opts(args, "Ffv")
    program = operands[0] if operands else ""
    if "system(" in program or "|&" in program or "/inet/" in program:
        col.add("execute", "awk", detail="inline")
        sniff(col, program)
    files = operands[1:]
    for f in files:
        col.path("read", f)
    return Stream(sources=tuple(files) or _sources(stdin))


#: PowerShell that evaluates what it downloads: ``iex (iwr URL)``, ``iwr URL | iex``, ``IEX(New-Object Net.WebClient)…``
_PS_RUN_DOWNLOAD: Final = re.compile(
    r"(?i)\b(?:iex|invoke-expression)\b[\s(]*(?:\(|\$\()?\s*(?:iwr|irm|invoke-webrequest|invoke-restmethod|"
    r"new-object\s+(?:system\.)?net\.webclient)\b|\b(?:iwr|irm|invoke-webrequest|invoke-restmethod)\b[^|;\n]{0,300}"
    r"\|\s*(?:iex|invoke-expression)\b"
)
_URL_IN_TEXT: Final = re.compile(r"""(?i)\b(?:https?|ftp|wss?|tcp|udp)://[^\s'"`<>)\]]+""")
_PATH_IN_TEXT: Final = re.compile(r"""(?:(?<=['"\s(=,])|^)((?:~|/)[\w.@%+~/-]*[\w~])""")
_INET: Final = re.compile(
    r"/inet/tcp/\d+/([\w.-]+)/(\d+)|TCPSocket\.(?:new|open)\(\s*['\"]([\w.-]+)['\"]\s*,\s*(\d+)"
    r"|IO::Socket::INET[^;]*PeerAddr\s*=>\s*['\"]([\w.-]+)(?::(\d+))?"
    r"|\bconnect\(\s*(\d+)\s*,\s*['\"]([\w.-]+)['\"]|\bsocket\.connect\(\s*(\d+)\s*,\s*['\"]"
    r"([\w.-]+)['\"]"
)


def sniff(col: Collector, code: str) -> None:
    """Best effort over code no analyser reads (perl, ruby, node, awk, PowerShell): URLs, sockets, absolute paths."""
    urls = _URL_IN_TEXT.findall(code)[:8]
    for url in urls:
        col.endpoint("connect", url, "in code")
    if urls and ("iex" in (low := code.lower()) or "invoke-" in low) and _PS_RUN_DOWNLOAD.search(code):
        col.endpoint("execute", urls[0], "downloaded")  # PowerShell: iex (iwr URL), iex (New-Object Net.WebClient)…
    for m in _INET.finditer(code):
        groups = [g for g in m.groups() if g]
        host = next((g for g in groups if not g.isdigit()), "")
        port = next((g for g in groups if g.isdigit()), "")
        if host:
            col.endpoint("connect", f"{host}:{port}" if port else host, "socket in code")
    for path in _PATH_IN_TEXT.findall(code)[:16]:
        classes = path_classes(path)
        if classes - {"system_path", "home", "repo", "temp"}:
            col.path("read", path, "in code")
    if _SHELL_FROM_CODE.search(code):
        col.add("execute", "shell", detail="remote_shell" if _SOCKET_IN_CODE.search(code) else "from code")


#: Code that runs a shell command: exec/system/spawn…, AppleScript's ``do shell script`` (and Terminal's
#: ``do script``), JXA's ``doShellScript``/``doScript`` and Cocoa's ``NSTask`` (through the ObjC bridge).
_SHELL_FROM_CODE: Final = re.compile(
    r"\b(system|exec|spawn|popen|`|shell_exec|passthru|child_process)|(?i:do\s+(?:shell\s+)?script|doShellScript)"
    r"|\bdoScript\b"
    r"|\bNSTask\b"
)
#: Code that opens a network socket itself (perl/ruby/php/node/awk): with a shell in the same code, a
#: reverse or bind shell.
_SOCKET_IN_CODE: Final = re.compile(
    r"\b(?:socket\s*\(|IO::Socket|TCPSocket|TCPServer|fsockopen|net\.(?:connect|createConnection|Socket))"
    r"|/inet/tcp/|/dev/tcp/"
)


# -- files -----------------------------------------------------------------------------------------
_READ_VALUE_OPTS: Final = {
    "head": "nc",
    "tail": "ncs",
    "grep": "efABCmd",
    "egrep": "efABCm",
    "fgrep": "efABCm",
    "rg": "egtgTmAB",
    "sort": "ktoS",
    "cut": "dfcb",
    "uniq": "fs",
    "nl": "bdfhilnsvw",
    "od": "AjNtw",
    "hexdump": "ensC",
    "strings": "ent",
    "less": "bhjkoOpPtTxyz",
    "more": "n",
    "jq": "",
    "sed": "ef",
    "diff": "",
    "cmp": "in",
    "wc": "",
    "tac": "s",
    "md5sum": "",
    "sha1sum": "",
    "sha256sum": "",
    "sha512sum": "",
    "shasum": "a",
    "file": "fmF",
    "stat": "fc",
    "cat": "",
    "bat": "lmr",
    "column": "ctos",
    "fold": "w",
    "iconv": "ftc",
    "tr": "",
    "xxd": "cglos",
    "base32": "w",
    "base64": "bw",
    "b64decode": "",
    "b64encode": "",
    "split": "abln",
    "zcat": "",
    "zgrep": "e",
    "bzcat": "",
    "xzcat": "",
    "view": "",
    "vim": "cS",
    "vi": "c",
    "nano": "",
    "emacs": "",
    "code": "",
    "pico": "",
    "ed": "",
    "yq": "",
    "md5": "s",
    "cksum": "",
    "b2sum": "",
    "tee": "",
    "look": "",
    "paste": "d",
    "join": "12jot",
    "expand": "t",
    "readlink": "",
    "realpath": "",
    "dirname": "",
    "basename": "",
    "lsattr": "",
    "getfacl": "",
    "exiftool": "",
}
#: Programs that search text for a pattern (their pattern is judged by :data:`_CREDENTIAL_WORDS`).
_SEARCHERS: Final = frozenset({"grep", "egrep", "fgrep", "rg", "ag", "zgrep"})
#: A search pattern that hunts for secrets: passwords, private keys, tokens, credentials.
_CREDENTIAL_WORDS: Final = re.compile(
    r"(?i)pass(?:w(?:or)?d|phrase)?s?\b|secret|private.?key|api.?key|access.?key|auth.?token|credential"
)
#: Names of credential stores a file search looks for (`find / -name .netrc`, `-path "*/.kube/*"`).
_CREDENTIAL_FILE_NAMES: Final = re.compile(
    r"(?i)\.(?:aws|azure|kube|docker|gnupg|ssh|netrc|pgpass|git-credentials|vault-token|kdbx|ppk|pem|pfx|p12|oci)\b"
    r"|gcloud|\bid_(?:rsa|dsa|ecdsa|ed25519)|keychain|wallet|shadow|htpasswd|\.env\b|login\s?data|cookies|key[34]\.db"
)
#: ed commands that read a file into the buffer (``e file``, ``E file``, ``r file``).
_ED_READS: Final = re.compile(r"(?m)^\s*[erE]\s+(/\S+|~\S*)")
_EDITORS: Final = frozenset({"vim", "vi", "nano", "emacs", "code", "pico", "ed"})
_PATTERN_FIRST: Final = frozenset({"grep", "egrep", "fgrep", "rg", "zgrep", "jq", "yq", "look", "tr", "sed", "ag"})
_NAME_ONLY: Final = frozenset({"readlink", "realpath", "dirname", "basename", "stat", "file", "lsattr", "getfacl"})


@handles(*_READ_VALUE_OPTS, "ag")
def _reader(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    opts, operands = split_opts(
        args,
        _READ_VALUE_OPTS.get(name, ""),
        {
            "--regexp",
            "--file",
            "--max-count",
            "--output",
            "--include",
            "--exclude",
            "--glob",
            "--type",
            "--key",
            "--field-separator",
            "--delimiter",
            "--arg",
            "--argjson",
            "--slurpfile",
            "--rawfile",
            "--expression",
        },
    )
    patterns = values(opts, "-e", "--regexp") or (operands[:1] if name in _SEARCHERS else [])
    if name in _PATTERN_FIRST and operands and not has(opts, "-e", "-f", "--regexp", "--file", "--expression"):
        operands = operands[1:] if name != "tr" else []
    if name == "tr":
        operands = []
    if name in ("jq",) and operands:
        pass
    if name in _NAME_ONLY:
        for f in operands:
            if _looks_path(f):
                col.path("read", f, "metadata")
        return Stream()
    detail = None
    if name in ("grep", "egrep", "fgrep", "rg", "ag", "zgrep") and (
        has(opts, "-r", "-R", "--recursive") or name in ("rg", "ag")
    ):
        detail = "recursive"
    if name in _SEARCHERS and any(_CREDENTIAL_WORDS.search(p[:200]) for p in patterns):
        detail = "credential search" if detail is None else f"{detail} credential search"
    files = [f for f in operands if _looks_path(f) or f == "-"]
    if detail and detail.endswith("credential search") and not files:
        for src in _sources(stdin):  # `cat ~/.history | grep -i pass`: the piped file is searched
            col.path("read", src, detail)
        if stdin is not None and not stdin.sources:  # `env | grep -i secret`: a program's output is searched
            col.add("read", "-", frozenset(), "shell", detail)
    if name in _EDITORS:
        commands = set(_editor_shell_escape(col, args))
        for f in files:
            if f not in commands and not f.startswith("+"):  # `vim +10 f`: a line number, not a file
                write_path(col, f, name)
        if name == "ed" and stdin is not None and stdin.text:  # `echo 'e /etc/shadow' | ed`: ed's own commands
            read = [col.path("read", f, "ed") for f in _ED_READS.findall(stdin.text.replace("\\n", "\n")[:4000])]
            return Stream(sources=tuple(read[:8])) if read else None
        return None
    if name == "sed" and has(opts, "-i", "--in-place") or any(n.startswith("--in-place") for n, _ in opts):
        for f in files:
            write_path(col, f, "sed -i")
        return None
    if name == "tee":
        for f in files:
            if f == "-":
                continue
            p = write_path(col, f, "append" if has(opts, "-a", "--append") else "tee", content=stdin)
            col.writes.append(
                Written(
                    p, stdin.text if stdin else None, stdin.origin if stdin and stdin.flavour == "downloaded" else None
                )
            )
        return stdin
    if name == "split":  # `split -b 5M data`: the file is cut into chunks (the second operand is their prefix)
        files, detail = files[:1], "chunked"
    if name == "xxd" and has(opts, "-r"):
        for f in files[:1]:
            col.path("read", f)
        return Stream(flavour="decoded", sources=tuple(files[:1]) or _sources(stdin))
    for f in files:
        if f != "-":
            col.path("read", f, detail)
    if name in ("grep", "egrep", "rg") and not files and detail and detail.startswith("recursive"):
        col.path("read", ".", detail)
    if name == "b64decode" or name in ("base64", "base32") and has(opts, "-d", "--decode", "-D"):
        text = stdin.text if stdin and stdin.text is not None else None
        decoded = decode_base64(text) if text and name != "base32" else None
        return Stream(text=decoded, flavour="decoded", sources=tuple(files) or _sources(stdin))
    if name in (
        "cat",
        "tac",
        "head",
        "tail",
        "base64",
        "base32",
        "xxd",
        "od",
        "hexdump",
        "strings",
        "zcat",
        "bzcat",
        "xzcat",
        "sort",
        "uniq",
        "cut",
        "less",
        "more",
        "nl",
        "iconv",
        "column",
        "fold",
        "bat",
        "tr",
        "sed",
        "paste",
        "expand",
    ):
        if name == "cat" and not files and stdin is not None:
            return stdin
        if stdin is not None and not files and name in ("tr", "sed", "cut", "sort", "uniq", "head", "tail"):
            return Stream(sources=stdin.sources, flavour=stdin.flavour, origin=stdin.origin)
        return Stream(sources=tuple(f for f in files if f != "-") or _sources(stdin))
    return Stream(sources=tuple(files)) if files else Stream(sources=_sources(stdin))


@handles("echo", "printf")
def _echo(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if name == "echo":
        while args and args[0] in ("-n", "-e", "-E", "-ne", "-en"):
            args = args[1:]
        return Stream(text=" ".join(args) + "\n")
    if args and args[0] == "-v":
        args = args[2:]
    if not args:
        return Stream(text="")
    fmt = args[0]
    text = fmt.replace("%s", " ".join(args[1:])) if "%s" in fmt else " ".join(args)
    if "\\x" in text or "\\0" in text:
        from agentwatch.detect.effects.shell import _ansi_c

        text = _ansi_c(text)
    return Stream(text=text.replace("\\n", "\n"))


@handles("cp", "install", "ditto", "rsync", "scp", "ln", "mv", "rclone", "sftp", "ftp", "gsutil", "azcopy")
def _copy(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if name == "gsutil" and infra.cloud_effects(col, name, args):  # gsutil rm -r, gsutil rb
        return None
    short = {
        "cp": "tS",
        "mv": "tS",
        "install": "mgoStT",
        "ln": "tS",
        "rsync": "eBfT",
        "scp": "cFiJlopPS",
        "sftp": "bBcDFiloPRsS",
        "ftp": "P",
        "ditto": "",
        "rclone": "",
        "gsutil": "",
        "azcopy": "",
    }[name]
    opts, operands = split_opts(
        args,
        short,
        {
            "--target-directory",
            "--suffix",
            "--rsh",
            "--exclude",
            "--include",
            "--files-from",
            "--mode",
            "--owner",
            "--group",
            "--config",
        },
    )
    if name in ("rclone", "gsutil") and operands:
        operands = operands[1:]  # the subcommand (copy, sync, cp)
    for key in values(opts, "-i"):
        if name in ("scp", "sftp", "rsync"):
            col.path("read", key, "identity")
    target = next(iter(values(opts, "-t", "--target-directory")), None)
    if name in ("sftp", "ftp"):
        for op in operands[:1]:
            col.endpoint("connect", op)
            _batch_transfer(col, op, operands[1:2], stdin)
        return None
    if target is None and operands:
        target, operands = operands[-1], operands[:-1]
    if target is None:
        return None
    remote = _is_remote(target)
    if name == "ln":
        if operands:
            p = write_path(
                col,
                target if not target.endswith("/") else target + posixpath.basename(operands[0]),
                f"symlink to {operands[0]}" if has(opts, "-s", "--symbolic") else "link",
            )
            return None
        return None
    for src in operands:
        if _is_remote(src):
            host = _remote_host(src)
            col.endpoint("connect", host)
            col.endpoint("download", src, f"to {target}")
            if not remote:
                write_path(col, target, name)
        elif remote:
            host = _remote_host(target)
            col.endpoint("connect", host)
            col.path("read", src, "recursive" if has(opts, "-r", "-R", "-a", "--recursive", "--archive") else None)
            col.add("upload", src, path_classes(src) | endpoint_classes(target), "shell", f"to {target}")
            col.endpoint("send", target, name)
        else:
            if name == "mv":
                col.path("move", src, f"to {target}")
            else:
                col.path("read", src, "recursive" if has(opts, "-r", "-R", "-a", "--recursive", "--archive") else None)
            dest = target
            if target.endswith("/") or len(operands) > 1:
                dest = posixpath.join(target, posixpath.basename(src.rstrip("/")))
            p = write_path(col, dest, "move" if name == "mv" else "copy")
            col.writes.append(Written(p, None, f"copy:{col_norm(col, src)}"))
            if name == "install":
                mode = next(iter(values(opts, "-m", "--mode")), "")
                if mode:
                    _mode_effect(col, p, mode)
    return None


#: sftp/ftp batch commands that move a file: ``put local [remote]``, ``get remote [local]``.
_BATCH_TRANSFER: Final = re.compile(r"(?m)^\s*(put|mput|send|get|mget|recv)\s+(\S+)(?:\s+(\S+))?")


def _batch_transfer(col: Collector, endpoint: str, local: list[str], stdin: Stream | None) -> None:
    """An sftp/ftp session's transfers: ``sftp host:/remote [local]`` fetches; ``put``/``get`` on stdin move files."""
    if _is_remote(endpoint) and ":" in endpoint.split("@", 1)[-1] and not (stdin and stdin.text):
        dest = local[0] if local else "."
        col.endpoint("download", endpoint, f"to {dest}")
        write_path(col, dest, "sftp")
    for verb, first, second in _BATCH_TRANSFER.findall((stdin.text or "")[:4000] if stdin else "")[:8]:
        if verb in ("put", "mput", "send"):
            col.path("read", first)
            col.add("upload", first, path_classes(first) | endpoint_classes(endpoint), "shell", f"to {endpoint}")
            col.endpoint("send", endpoint, "sftp")
        else:
            col.endpoint("download", endpoint, f"to {second or posixpath.basename(first)}")
            write_path(col, second or posixpath.basename(first), "sftp")


def col_norm(col: Collector, path: str) -> str:
    from agentwatch.detect.effects.classify import normalise_path

    return normalise_path(path, col.cwd)


_REMOTE: Final = re.compile(r"^(?:[\w.+-]+@)?[\w.-]+:(?!//)|^(?:s3|gs|az|rsync|scp|sftp|ftp|https?)://|^[\w-]+:[\w/]")


def _is_remote(arg: str) -> bool:
    return bool(_REMOTE.match(arg)) and not arg.startswith(("/", "./", "~"))


def _remote_host(arg: str) -> str:
    if "://" in arg:
        return arg
    return arg.split(":", 1)[0]


@handles("rm", "unlink", "rmdir", "shred", "srm", "wipe", "trash", "trash-put")
def _rm(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    opts, operands = split_opts(args, "nsx" if name == "shred" else "")
    recursive = has(opts, "-r", "-R", "--recursive") or name == "rmdir"
    detail = "secure" if name in ("shred", "srm", "wipe") else ("recursive" if recursive and name == "rm" else None)
    if name == "shred" and not has(opts, "-u", "--remove") and not any(n.startswith("--remove") for n, _ in opts):
        detail = "overwrite"
    for f in operands:
        col.path("delete", f, detail)
    for f in _sources(stdin) if not operands else ():
        col.path("delete", f, detail)
    return None


@handles("truncate")
def _truncate(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    opts, operands = split_opts(args, "sr", {"--size", "--reference"})
    grow = any(v.startswith("+") for v in values(opts, "-s", "--size"))  # `-s +N` adds N bytes to the end
    for f in operands:
        write_path(col, f, "truncate grow" if grow else "truncate")
    return None


@handles("touch")
def _touch(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    opts, operands = split_opts(args, "dtr", {"--date", "--reference"})
    detail = "timestamp" if has(opts, "-d", "-t", "-r", "--date", "--reference") else "touch"
    for f in operands:
        write_path(col, f, detail)
    return None


@handles("which", "whereis", "type")
def _which(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    """``$(which python3)`` evaluates to the program's path (``/usr/bin/python3``: where a system program lives on
    a merged-/usr system), so ``$py -c …`` is analysed as Python and ``cp $(which sh) …`` copies the system shell."""
    names = [a for a in args if not a.startswith("-")]
    if not names:
        return None
    return Stream(text=names[0] if "/" in names[0] or name != "which" else f"/usr/bin/{names[0]}")


@handles("trap")
def _trap(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if args[:1] and args[0] in ("-", "-p", "-l", "-P"):  # reset to the default, or list: nothing will run
        return None
    ops = args[1:] if args[:1] == ["--"] else args
    if len(ops) >= 2 and ops[0]:
        setup = " (setup only)" if is_shell_setup(Stream(text=ops[0])) else ""
        col.add("persist", f"trap {' '.join(ops[1:])}"[:60], frozenset(), "shell", f"shell trap{setup}")
        run_shell(col, ops[0])
    return None


@handles("shutdown", "reboot", "halt", "poweroff", "init", "telinit", "systemctl-poweroff")
def _shutdown(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if name in ("init", "telinit") and not (args[:1] and args[0] in ("0", "6")):
        return None
    if name == "shutdown" and any(a in ("-c", "-k", "--help", "--show") for a in args):  # cancel, warn, help, show
        return None
    if any(a in ("-w", "--wtmp-only", "--help") for a in args):  # only writes the wtmp record, or help
        return None
    col.add(
        "kill",
        "system",
        frozenset(),
        "shell",
        "reboot" if name == "reboot" or "-r" in args or "--reboot" in args else "shutdown",
    )
    return None


@handles(
    "screencapture",
    "xwd",
    "import",
    "scrot",
    "gnome-screenshot",
    "pbpaste",
    "xclip",
    "xsel",
    "wl-paste",
    "xdotool",
    "logkeys",
    "xinput",
    "arecord",
    "ffmpeg",
    "imagesnap",
)
def _capture(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if name == "ffmpeg" and not any(a in ("x11grab", "avfoundation", "alsa", "pulse", "v4l2") for a in args):
        return _reader(col, "file", [a for i, a in enumerate(args) if i > 0 and args[i - 1] == "-i"], stdin)
    if name in ("xclip", "xsel") and not any(a in ("-o", "--output", "-out") for a in args):
        return None
    if name == "import" and "-window" not in args:
        return None
    if name == "xinput" and not {"test", "test-xi2"}.intersection(args[:2]):  # list, enable, set-prop …
        return None
    what = {
        "pbpaste": "clipboard",
        "xclip": "clipboard",
        "xsel": "clipboard",
        "wl-paste": "clipboard",
        "logkeys": "keyboard",
        "xinput": "keyboard",
        "xdotool": "keyboard",
        "arecord": "microphone",
        "imagesnap": "camera",
    }.get(name, "screen")
    col.add("read", what, frozenset(), "shell", name)
    outs = [a for a in args if a.startswith(("/", "~", ".")) or "." in a[-5:]]
    for o in outs[-1:]:
        col.path("write", o, name)
    return Stream()


@handles("SetFile", "setfile", "GetFileInfo")
def _setfile(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    opts, operands = split_opts(args, "acdmt")
    if name != "GetFileInfo":
        for f in operands:
            hide = any("V" in v for v in values(opts, "-a"))  # `SetFile -a V`: the Finder hides the file
            col.path("write", f, "timestamp" if has(opts, "-d", "-m") else "hidden" if hide else "attributes")
    return None


@handles("pw")
def _pw(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if args and args[0] in ("useradd", "usermod", "userdel", "groupadd", "groupmod", "lock", "unlock"):
        user = next((a for a in args[1:] if not a.startswith("-")), "")
        col.add("account", user, frozenset({"access_control"}), "shell", f"pw {args[0]}")
        if (
            ("-g" in args and args[args.index("-g") + 1 : args.index("-g") + 2] in (["0"], ["wheel"]))
            or "-u" in args
            and args[args.index("-u") + 1 : args.index("-u") + 2] == ["0"]
        ):
            col.add("elevate", user, frozenset({"access_control"}), "shell", "uid/gid 0")
    return None


@handles("dsenableroot")
def _dsenableroot(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    col.add("account", "root", frozenset({"access_control"}), "shell", name)
    col.add("elevate", "root", frozenset({"access_control"}), "shell", name)
    return None


@handles("systemd-run", "run0")
def _systemd_run(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += (
            2
            if args[i]
            in (
                "-u",
                "-p",
                "-E",
                "--setenv",
                "--property",
                "--on-calendar",
                "--on-active",
                "--uid",
                "--gid",
                "--slice",
                "--description",
            )
            else 1
        )
    timed = any(a.startswith(("--on-", "--timer")) for a in args[:i])
    col.add(
        "persist" if timed else "execute",
        "systemd-run",
        frozenset({"persistence"}) if timed else frozenset(),
        "shell",
        "transient unit",
    )
    return run_argv(col, args[i:], stdin, {}) if i < len(args) else None


@handles("cpan", "cpanm")
def _cpan(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    pkgs = [a for a in args if not a.startswith("-")]
    for p in pkgs[:8]:
        col.add("install", p, frozenset(), "shell", name)
    if stdin is not None and stdin.text and "!" in stdin.text:
        col.add("execute", name, frozenset(), "shell", "shell escape")
        run_shell(col, stdin.text.split("!", 1)[1])
    return None


_IMPACKET: Final = (
    "psexec.py",
    "wmiexec.py",
    "smbexec.py",
    "atexec.py",
    "dcomexec.py",
    "secretsdump.py",
    "GetUserSPNs.py",
    "GetNPUsers.py",
    "smbclient.py",
    "ntlmrelayx.py",
    "mimikatz.py",
    "lookupsid.py",
    "ldapdomaindump",
    "bloodhound-python",
    "evil-winrm",
    "kerbrute",
    "impacket-psexec",
    "impacket-secretsdump",
    "impacket-wmiexec",
    "responder",
    "Responder.py",
)


_HOST_ARG: Final = re.compile(r"^\d+\.\d+\.\d+\.\d+$|^[\w-]+\.[\w.-]+$")


@handles(*_IMPACKET)
def _impacket(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    for a in args:
        host = a.rsplit("@", 1)[1] if "@" in a else a if _HOST_ARG.match(a) else None
        if host and not a.startswith("-"):
            col.endpoint("connect", host, name)
            break
    if any(k in name.lower() for k in ("secretsdump", "mimikatz", "spn", "npusers", "kerbrute", "responder")):
        col.add("read", "remote credentials", frozenset({"credential_store"}), "shell", name)
    elif "exec" in name.lower() or "winrm" in name.lower():
        col.add("execute", name, frozenset(), "shell", "remote")
    return None


@handles(
    "mkdir",
    "mkfifo",
    "mktemp",
    "cd",
    "pushd",
    "popd",
    "pwd",
    "true",
    "false",
    "sleep",
    "test",
    "[",
    "[[",
    "exit",
    "return",
    "set",
    "shopt",
    "read",
    "wait",
    "alias",
    "hash",
    "declare",
    "local",
    "export",
    "shift",
    "umask",
    "clear",
    "reset",
    "yes",
    "seq",
    "date",
    "cal",
    "man",
    "help",
    "tldr",
    "info",
    "apropos",
)
def _shell_builtin(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if name in ("cd", "pushd") and args:
        col.cwd = col_norm(col, args[-1]) if args[-1] != "-" else col.cwd
    if name == "set" and args[:2] in (["+o", "history"],):
        col.add("tamper", "shell_history", detail="set +o history")
    if name == "set" and not args:  # prints every shell and environment variable
        col.add("env", "*", frozenset({"credential_store"}), detail="read")
    if name == "yes" and col.detached:  # `yes > /dev/null &`: a process that only burns a CPU, left running
        col.add("execute", "yes", detail="busy loop, detached")
    if name == "mkdir":
        opts, operands = split_opts(args, "m")
        for d in operands:
            if path_classes(d) & {"persistence", "agent_settings", "agent_instructions", "credential_store"}:
                write_path(col, d, "mkdir")
    return None


#: ``find -perm`` values that select setuid or setgid files: -4000, /2000, -u=s, /g=s, 6000 …
_SETID_PERM: Final = re.compile(r"^[-/+]?(?:[2467][0-7]{3}|[ug]=s|[ug]\+s)$")


@handles("find")
def _find(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    i = 0
    while i < len(args) and args[i] in ("-H", "-L", "-P") or (i < len(args) and args[i].startswith("-O")):
        i += 1
    roots: list[str] = []
    while i < len(args) and not args[i].startswith(("-", "(", "!")):
        roots.append(args[i])
        i += 1
    expr = args[i:]
    roots = roots or ["."]
    pattern = None
    for j, a in enumerate(expr):
        if a in ("-name", "-iname", "-path", "-ipath", "-regex") and j + 1 < len(expr):
            pattern = expr[j + 1]
    patterns = [expr[j + 1] for j, a in enumerate(expr[:-1]) if a in ("-name", "-iname", "-path", "-ipath", "-regex")]
    if any(_CREDENTIAL_WORDS.search(p[:200]) or _CREDENTIAL_FILE_NAMES.search(p[:200]) for p in patterns):
        for r in roots:
            col.path("read", r, "credential search")
    if any(a == "-perm" and _SETID_PERM.match(expr[j + 1]) for j, a in enumerate(expr[:-1])):
        for r in roots:  # `find / -perm -4000`: looking for setuid/setgid programs to escalate through
            col.path("read", r, "setuid search")
    found = roots[0]
    for r in roots:
        target = (
            posixpath.join(r, pattern.lstrip("*/") if pattern and "/" in pattern else (pattern or ""))
            if pattern and not pattern.startswith("*.") and "*" not in pattern.rstrip("*")
            else r
        )
        col.path("read", target, "find")
        if pattern and target == r:
            classes = path_classes(posixpath.join(r, pattern.replace("*", "x")))
            if "credential_store" in classes:
                target = col.path("read", posixpath.join(r, pattern), "find")
        if r == roots[0]:
            found = target
    for j, a in enumerate(expr):
        if a == "-delete":
            for r in roots:
                col.path("delete", posixpath.join(r, pattern) if pattern else r, "recursive")
        elif a in ("-exec", "-execdir", "-ok", "-okdir"):
            end = next((k for k in range(j + 1, len(expr)) if expr[k] in (";", "\\;", "+")), len(expr))
            cmd = [found if w == "{}" else w.replace("{}", found) for w in expr[j + 1 : end]]
            if cmd:
                note_shell_escape(col, cmd, None)
                run_argv(col, cmd, None, {})
        elif a in ("-fprint", "-fprintf", "-fls") and j + 1 < len(expr):
            write_path(col, expr[j + 1], "find")
    return Stream(sources=(found,))


@handles("ls", "dir", "tree", "du", "locate", "mdfind", "exa", "eza", "lsof", "fd")
def _list(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    opts, operands = split_opts(args, "IwTd" if name in ("ls", "tree") else "")
    if name in ("locate", "mdfind", "fd"):
        for p in operands[:1]:
            if "credential_store" in path_classes(p.replace("*", "x")) or p.lstrip(".").lower() in (
                "id_rsa",
                "ssh",
                "aws",
                "env",
                "pem",
                "key",
                "kdbx",
            ):
                col.add("read", p, frozenset({"credential_store"}), "shell", name)
        return Stream()
    if name == "lsof":
        return Stream()
    for d in operands or ["."]:
        col.path("read", d, "list")
    return Stream()


@handles(
    "tar",
    "zip",
    "7z",
    "7za",
    "rar",
    "unzip",
    "gzip",
    "gunzip",
    "bzip2",
    "bunzip2",
    "xz",
    "unxz",
    "zstd",
    "cpio",
    "ar",
    "jar",
    "openssl",
    "gpg",
    "gpg2",
    "age",
    "ccrypt",
    "ccencrypt",
    "zipcloak",
    "hdiutil",
)
def _archive(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if name == "tar":
        return _tar(col, args, stdin)
    if name in ("zip", "7z", "7za", "rar", "jar"):
        opts, operands = split_opts(args, "PpxiDbtn" if name == "zip" else "")
        if name in ("7z", "7za", "rar", "jar") and operands:
            mode, operands = operands[0], operands[1:]
            if mode in ("x", "e", "l", "t") or mode.startswith(("x", "e")):
                for f in operands[:1]:
                    col.path("read", f)
                return None
        if not operands:
            return None
        archive, files = operands[0], operands[1:]
        for f in files:
            col.path("read", f, "recursive" if has(opts, "-r") else "archive")
        if has(opts, "-P") or has(opts, "-e") or any(n.startswith("-p") for n, _ in opts):
            col.add("execute", name, detail="encrypted archive")
        if archive != "-":
            p = col.path("write", archive, "archive")
            col.writes.append(Written(p))
            return None
        return Stream(sources=tuple(files))
    if name == "unzip":
        opts, operands = split_opts(args, "dPx")
        for f in operands[:1]:
            col.path("read", f)
        dest = next(iter(values(opts, "-d")), None)
        if dest:
            write_path(col, dest, "extract")
        return None
    if name in ("openssl",):
        return _openssl(col, args, stdin)
    if name in ("gpg", "gpg2", "age", "ccrypt", "ccencrypt"):
        opts, operands = split_opts(args, "Kk" if name.startswith("cc") else "ourRf", _GPG_VALUE_OPTS)
        if has(opts, "--export-secret-keys", "--export-secret-subkeys"):
            col.add("read", "~/.gnupg", path_classes("~/.gnupg"), "shell", "export secret keys")
        for f in operands:
            col.path("read", f, name)
        for out in values(opts, "-o", "--output"):
            col.path("write", out, name)
        if name == "ccencrypt" or (has(opts, "-c", "--symmetric", "-e", "--encrypt") and name != "age"):
            col.add("execute", name, detail="encrypt")
        return Stream(
            sources=tuple(operands) or _sources(stdin), flavour="decoded" if has(opts, "-d", "--decrypt") else None
        )
    # gzip family: compress or decompress in place, or to stdout with -c
    opts, operands = split_opts(args, "S")
    for f in operands:
        col.path("read", f)
    if has(opts, "-c", "--stdout") or not operands:
        return Stream(sources=tuple(operands) or _sources(stdin))
    for f in operands:
        col.path("write", f, name)
    return None


#: gpg's long options that take a value (the value is not a file to read).
_GPG_VALUE_OPTS: Final = frozenset(
    {
        "--output",
        "--recipient",
        "--export-secret-keys",
        "--passphrase",
        "--passphrase-fd",
        "--passphrase-file",
        "--cipher-algo",
        "--digest-algo",
        "--compress-algo",
        "--s2k-cipher-algo",
        "--s2k-digest-algo",
        "--homedir",
        "--local-user",
        "--default-key",
        "--pinentry-mode",
        "--trust-model",
        "--keyserver",
    }
)


def _tar(col: Collector, args: list[str], stdin: Stream | None) -> Stream | None:
    if args and not args[0].startswith("-"):
        args = ["-" + args[0], *args[1:]]
    opts, operands = split_opts(
        args,
        "fCTXbIKLNVg",
        {"--file", "--directory", "--exclude", "--files-from", "--use-compress-program", "--transform"},
    )
    archive = next(iter(values(opts, "-f", "--file")), None)
    create = has(opts, "-c", "--create", "-r", "--append", "-u")
    detail = "archive"
    if create:
        for f in operands:
            col.path("read", f, detail)
        if archive and archive != "-":
            if _is_remote(archive):
                col.endpoint("send", archive, "tar")
            else:
                p = col.path("write", archive, "archive")
                col.writes.append(Written(p))
            return None
        return Stream(sources=tuple(operands))
    if has(opts, "-x", "--extract", "--get"):
        if archive and archive != "-":
            col.path("read", archive)
        dest = next(iter(values(opts, "-C", "--directory")), ".")
        write_path(col, dest, "extract")
        return None
    if archive:
        col.path("read", archive, "list")
    return Stream()


def _openssl(col: Collector, args: list[str], stdin: Stream | None) -> Stream | None:
    if not args:
        return None
    sub, rest = args[0], args[1:]
    vals: dict[str, str] = {}
    flags: set[str] = set()
    i = 0
    while i < len(rest):
        a = rest[i]
        if a in (
            "-in",
            "-out",
            "-connect",
            "-k",
            "-pass",
            "-key",
            "-inkey",
            "-accept",
            "-port",
            "-K",
            "-iv",
            "-kfile",
            "-passin",
            "-passout",
            "-CAfile",
            "-cert",
            "-servername",
            "-signkey",
        ):
            vals[a] = rest[i + 1] if i + 1 < len(rest) else ""
            i += 2
        else:
            flags.add(a)
            i += 1
    if sub in ("s_client",):
        host = vals.get("-connect", "")
        if host:
            col.endpoint("connect", host, "tls")
            _send_stdin(col, stdin, host)
        return Stream(flavour="downloaded", origin=host or None)
    if sub in ("s_server",):
        col.add("listen", vals.get("-accept", vals.get("-port", "4433")), detail="openssl s_server")
        return None
    for key in ("-in", "-key", "-inkey", "-kfile", "-signkey"):
        if key in vals:
            col.path("read", vals[key], f"openssl {sub}")
    if "-out" in vals:
        p = col.path("write", vals["-out"], f"openssl {sub}")
        col.writes.append(Written(p))
    decoded = "-d" in flags or sub in ("base64",) and "-d" in flags
    if sub in ("enc", "aes-256-cbc", "des3", "bf") or sub.startswith(("aes", "des", "rc4", "chacha")):
        col.add("execute", "openssl", detail="decrypt" if "-d" in flags else "encrypt")
    elif sub in ("rsautl", "pkeyutl", "smime", "cms") and "-encrypt" in flags:  # public-key encryption of a file
        col.add("execute", "openssl", detail="encrypt")
    text = None
    if decoded and sub in ("base64", "enc") and "-a" in flags | {"-base64"} and stdin and stdin.text:
        text = decode_base64(stdin.text)
    if sub == "base64" and "-d" in flags and stdin and stdin.text:
        text = decode_base64(stdin.text)
    if "-out" in vals:
        return None
    srcs = (vals["-in"],) if "-in" in vals else _sources(stdin)
    return Stream(text=text, sources=srcs, flavour="decoded" if decoded else None)


@handles("dd")
def _dd(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    kv = dict(a.split("=", 1) for a in args if "=" in a)
    if "if" in kv:
        col.path("read", kv["if"], "dd")
    if "of" in kv:
        p = col.path("write", kv["of"], "dd")
        if "device" in path_classes(p) and kv.get("if", "").startswith(("/dev/zero", "/dev/urandom", "/dev/random")):
            col.add("delete", p, path_classes(p), "shell", "overwrite")
        return None
    return Stream(sources=(kv["if"],) if "if" in kv else _sources(stdin))


@handles(
    "mkfs",
    "mke2fs",
    "mkswap",
    "wipefs",
    "fdisk",
    "sfdisk",
    "parted",
    "sgdisk",
    "diskutil",
    "mkfs.ext4",
    "mkfs.ext3",
    "mkfs.ext2",
    "mkfs.xfs",
    "mkfs.vfat",
    "mkfs.fat",
    "mkfs.btrfs",
    "mkfs.ntfs",
    "newfs",
    "blkdiscard",
)
def _format(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    devices = [a for a in args if a.startswith("/dev/")]
    if name == "diskutil":
        if args and args[0].lower() in ("erasedisk", "erasevolume", "secureerase", "zerodisk", "partitiondisk"):
            devices = devices or [args[-1]]
        else:
            return None
    if name in ("fdisk", "sfdisk", "parted") and (not devices or "-l" in args or "--list" in args or "print" in args):
        for d in devices:
            col.path("read", d, "list")
        return None
    if devices and _inspects_only(name, args, stdin):
        for d in devices:
            col.path("read", d, "inspect")
        return None
    for d in devices or [a for a in args if not a.startswith("-")][-1:]:
        col.path("delete", d, "format")
    return None


#: Options with which a partitioning or signature tool only reports (print, verify, dump, back up to a file).
_DISK_REPORT_OPTIONS: Final = {
    "sgdisk": frozenset(
        {
            "-p",
            "--print",
            "-v",
            "--verify",
            "-b",
            "--backup",
            "-i",
            "--info",
            "-O",
            "--print-mbr",
            "-L",
            "--list-types",
            "-D",
            "--display-alignment",
            "-P",
            "--pretend",
        }
    ),
    "sfdisk": frozenset(
        {
            "-d",
            "--dump",
            "-s",
            "--show-size",
            "-V",
            "--verify",
            "-J",
            "--json",
            "-F",
            "--list-free",
            "-g",
            "--show-geometry",
            "-n",
            "--no-act",
        }
    ),
}
#: parted commands that change nothing on the disk.
_PARTED_READ_ONLY: Final = frozenset({"print", "help", "version", "quit", "unit", "select", "align-check"})


def _inspects_only(name: str, args: list[str], stdin: Stream | None) -> bool:
    """Whether a disk tool invocation only reads the device (so it is not a format or wipe)."""
    if name in _DISK_REPORT_OPTIONS:
        report = _DISK_REPORT_OPTIONS[name]
        if name == "sfdisk" and any(a in ("-n", "--no-act") for a in args):
            return True
        if name == "sgdisk" and any(a in ("-P", "--pretend") for a in args):
            return True
        opts = [a.split("=", 1)[0] for a in args if a.startswith("-")]
        return bool(opts) and all(o in report for o in opts)
    if name == "wipefs":  # without --all/--offset it only lists signatures; --no-act changes nothing
        short = "".join(a[1:] for a in args if a.startswith("-") and not a.startswith("--"))
        if "n" in short or "--no-act" in args:
            return True
        return "a" not in short and "o" not in short and not any(a.startswith(("--all", "--offset")) for a in args)
    if name == "fdisk":  # interactive: with nothing on stdin it changes nothing
        return stdin is None
    if name == "parted":  # no commands (interactive) or only read-only ones
        words = [a for a in args if not a.startswith("-") and not a.startswith("/dev/")]
        return stdin is None and all(w in _PARTED_READ_ONLY for w in words[:1])
    return False


@handles("mount", "umount", "swapon", "swapoff", "losetup", "cryptsetup")
def _mount(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    opts, operands = split_opts(args, "toOL")
    if name == "swapoff":
        col.add("change_settings", "swap", frozenset(), "shell", " ".join(args)[:40] or name)
        return None
    if not operands:
        return None
    col.add(
        "change_settings",
        operands[-1],
        path_classes(operands[-1]),
        "shell",
        f"{name} {operands[0]}" if len(operands) > 1 else name,
    )
    return None


# -- permissions, accounts, privileges --------------------------------------------------------------
def _mode_effect(col: Collector, path: str, mode: str) -> None:
    detail = mode
    if re.match(r"^[0-7]?[4-7][0-7]{3}$", mode) or re.search(r"[ugoa]*\+[rwxXt]*s", mode):
        detail = f"{mode} setuid"
    col.path("chmod", path, detail)


@handles("chmod", "chflags", "chattr", "setfacl", "setcap", "xattr")
def _chmod(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if name == "setcap":
        ops = [a for a in args if not a.startswith("-")]
        if len(ops) >= 2:
            col.path("chmod", ops[-1], f"capabilities {ops[0]}")
            if "setuid" in ops[0] or "sys_admin" in ops[0] or "dac_" in ops[0]:
                col.add("elevate", ops[-1], path_classes(ops[-1]), "shell", "capability")
        return None
    if name == "xattr":
        if "-d" in args or "-c" in args or "-dr" in args or "-rd" in args:
            target = args[-1]
            if "com.apple.quarantine" in args or "-c" in args:
                col.add("tamper", "quarantine", path_classes(target), "shell", f"xattr {target}")
        return None
    if name == "chflags":
        mode_arg = next((a for a in args if not a.startswith("-")), None)
    elif name == "chattr":
        mode_arg = next((a for a in args if re.match(r"^[-+=][a-zA-Z]+$", a)), None)
    else:
        mode_arg = next((a for a in args if _is_mode(a)), None)
    opts, operands = split_opts([a for a in args if a != mode_arg], "mMx" if name == "setfacl" else "")
    if name == "setfacl":
        specs = values(opts, "-m", "-M", "-x")
        for f in operands:
            col.path("chmod", f, f"acl {specs[0] if specs else ''}".strip())
        return None
    for f in operands:
        if name == "chattr":
            col.path("chmod", f, f"chattr {mode_arg or ''}".strip())
            if mode_arg and mode_arg.startswith("-") and "i" in mode_arg:
                col.add("tamper", "immutable", path_classes(f), "shell", f"chattr {mode_arg} {f}")
        else:
            _mode_effect(col, f, mode_arg or "")
    return None


def _is_mode(a: str) -> bool:
    return bool(re.match(r"^([0-7]{3,4}|[ugoa]*[-+=][rwxXstugoi]*(,[ugoa]*[-+=][rwxXstugo]*)*)$", a))


@handles("chown", "chgrp", "lchown")
def _chown(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    opts, operands = split_opts(args)
    if len(operands) < 2:
        return None
    owner = operands[0]
    for f in operands[1:]:
        col.path("chown", f, owner)
    return None


_ADMIN_GROUPS: Final = frozenset({"sudo", "wheel", "admin", "root", "docker", "adm", "lxd", "disk", "shadow"})


@handles(
    "useradd",
    "adduser",
    "usermod",
    "userdel",
    "deluser",
    "groupadd",
    "groupmod",
    "gpasswd",
    "passwd",
    "chpasswd",
    "chage",
    "dscl",
    "sysadminctl",
    "dseditgroup",
    "pwpolicy",
    "newusers",
    "vipw",
    "visudo",
    "addgroup",
    "chsh",
)
def _account(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if name == "chsh" and any(a in ("-l", "--list-shells", "-h", "--help") for a in args):
        return None  # lists the allowed shells: no account changes
    if name == "dscl":
        verb = next((a for a in args if a.startswith("-")), "")
        target = next((a for a in args[args.index(verb) + 1 :] if not a.startswith("-")), "") if verb else ""
        if verb in ("-read", "-list", "-search", "-readall"):
            col.add("read", target or ".", frozenset({"access_control"}), "shell", "dscl")
            return Stream()
        col.add("account", target, frozenset({"access_control"}), "shell", f"dscl {verb}")
        if "admin" in args:
            col.add("elevate", target, detail="group admin")
        return None
    if name == "visudo":
        if any(a in ("-c", "--check", "-V", "--version", "-h", "--help") for a in args):
            for f in values(split_opts(args, "f")[0], "-f") or ["/etc/sudoers"]:
                col.path("read", f, "visudo check")
            return None
        col.add("account", "/etc/sudoers", path_classes("/etc/sudoers"), "shell", "visudo")
        return None
    operands = [a for a in args if not a.startswith("-")]
    user = operands[-1] if operands else ("<stdin>" if name in ("chpasswd", "newusers") else "self")
    detail = name
    groups = [
        g
        for i, a in enumerate(args)
        if a in ("-G", "-aG", "-g", "--groups", "-a") and i + 1 < len(args)
        for g in args[i + 1].split(",")
    ]
    if name in ("gpasswd", "dseditgroup", "adduser") and len(operands) >= 2:
        groups.append(operands[-1])
    col.add("account", user, frozenset({"access_control"}), "shell", detail)
    for g in groups:
        if g in _ADMIN_GROUPS:
            col.add("elevate", user, frozenset({"access_control"}), "shell", f"group {g}")
    if name == "useradd" and ("-o" in args and "0" in args):
        col.add("elevate", user, frozenset({"access_control"}), "shell", "uid 0")
    return None


# -- network ---------------------------------------------------------------------------------------
_HOSTLIKE: Final = re.compile(r"^(?:[\w.=+-]+\.[a-zA-Z]{2,}|\d+\.\d+\.\d+\.\d+|localhost)(?::\d+)?(?:/|$)")
_CURL_VAL: Final = "dFTXHoxuAbcCeEKmrUwYyzQ"
_CURL_LONG: Final = {
    "--data",
    "--data-binary",
    "--data-raw",
    "--data-urlencode",
    "--data-ascii",
    "--json",
    "--form",
    "--form-string",
    "--upload-file",
    "--request",
    "--header",
    "--output",
    "--proxy",
    "--user",
    "--user-agent",
    "--cookie",
    "--cookie-jar",
    "--referer",
    "--url",
    "--config",
    "--max-time",
    "--connect-timeout",
    "--retry",
    "--cert",
    "--key",
    "--cacert",
    "--resolve",
    "--output-dir",
    "--write-out",
    "--range",
    "--interface",
    "--socks5",
    "--socks5-hostname",
    "--socks4",
    "--socks4a",
    "--preproxy",
    "--unix-socket",
    "-x",
}


@handles("curl", "http", "https", "xh", "curlie", "nscurl")
def _curl(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    opts, operands = split_opts(args, _CURL_VAL if name in ("curl", "nscurl") else "ohbaAf", _CURL_LONG)
    urls = [o for o in operands if _is_url(o) or _HOSTLIKE.match(o)]
    urls += values(opts, "--url")
    if name not in ("curl", "nscurl"):
        urls = urls or [o for o in operands if not re.match(r"^[A-Z]+$", o)][:1]
    if not urls:
        return None
    url = urls[0]
    for u in urls:
        col.endpoint("connect", u)
    data = values(opts, "-d", "--data", "--data-binary", "--data-raw", "--data-urlencode", "--data-ascii", "--json")
    forms = values(opts, "-F", "--form")
    uploads = values(opts, "-T", "--upload-file")
    method = next(iter(values(opts, "-X", "--request")), "").upper()
    sent = False
    for d in data:
        sent = True
        src = d.split("@", 1)[1] if d.startswith("@") or "=@" in d else None
        if src in ("-", "/dev/stdin"):
            _send_stdin(col, stdin, url, send=False)
        elif src:
            _upload(col, src, url)
    for f in forms:
        sent = True
        _, _, v = f.partition("=")
        if v.startswith(("@", "<")):
            src = v[1:].split(";", 1)[0]
            if src in ("-", "/dev/stdin"):
                _send_stdin(col, stdin, url, send=False)
            else:
                _upload(col, src, url)
    for u in uploads:
        sent = True
        if u in ("-", "."):
            _send_stdin(col, stdin, url, send=False)
        else:
            _upload(col, u, url)
    if name not in ("curl", "nscurl"):  # httpie: key=value / key@file items
        for o in operands[1:]:
            if "@" in o and "=" not in o.split("@", 1)[0]:
                sent = True
                _upload(col, o.split("@", 1)[1], url)
            elif "=" in o:
                sent = True
    for proxy in values(opts, "-x", "--proxy", "--socks5", "--socks5-hostname", "--socks4", "--socks4a", "--preproxy"):
        col.endpoint("connect", proxy, "proxy")  # the traffic goes through this endpoint first
    for h in values(opts, "-H", "--header"):
        if "@" in h and h.startswith("@"):
            col.path("read", h[1:], "headers")
    for c in values(opts, "-K", "--config", "-E", "--cert", "--key", "-b", "--cookie"):
        if "/" in c or c.startswith((".", "~")):
            col.path("read", c, "curl")
    if sent or method in ("POST", "PUT", "PATCH", "DELETE"):
        col.endpoint("send", url, "data" if sent else method.lower())
    outputs = values(opts, "-o", "--output")
    if has(opts, "-O", "--remote-name", "--remote-name-all"):
        outputs.append(posixpath.basename(url.split("?", 1)[0].rstrip("/")) or "index.html")
    if outputs and outputs[0] not in ("-", "/dev/stdout"):
        if outputs[0] == "/dev/null":
            return None
        col.endpoint("download", url, f"to {outputs[0]}")
        p = write_path(col, outputs[0], "download")
        col.writes.append(Written(p, None, url))
        return None
    if not sent or method == "GET":
        col.endpoint("download", url)
    return Stream(flavour="downloaded", origin=url)


@handles("wget", "aria2c", "axel", "fetch", "lwp-download", "lynx", "links", "w3m")
def _wget(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    opts, operands = split_opts(
        args,
        "OoaPeiTtUdw" if name == "wget" else "odD",
        {
            "--output-document",
            "--post-file",
            "--post-data",
            "--body-file",
            "--body-data",
            "--method",
            "--directory-prefix",
            "--input-file",
            "--header",
            "--user-agent",
            "--user",
            "--password",
            "--dir",
            "--out",
        },
    )
    urls = [o for o in operands if _is_url(o) or "." in o and "/" in o or re.match(r"^\d+\.\d+\.\d+\.\d+", o)]
    if not urls:
        return None
    url = urls[0]
    for u in urls:
        col.endpoint("connect", u)
    posted = values(opts, "--post-file", "--body-file")
    for f in posted:
        _upload(col, f, url)
    if posted or values(opts, "--post-data", "--body-data"):
        col.endpoint("send", url, "data")
        return None
    out = next(iter(values(opts, "-O", "--output-document", "-o", "--out")), None)
    if name == "wget" and has(opts, "-o"):
        out = next(iter(values(opts, "-O", "--output-document")), None)
    if out in ("-", "/dev/stdout"):
        col.endpoint("download", url)
        return Stream(flavour="downloaded", origin=url)
    if out == "/dev/null":
        col.endpoint("download", url, "discarded")
        return None
    if name in ("lynx", "links", "w3m"):
        col.endpoint("download", url)
        return Stream(flavour="downloaded", origin=url)
    dest = out or posixpath.basename(url.split("?", 1)[0].rstrip("/")) or "index.html"
    prefix = next(iter(values(opts, "-P", "--directory-prefix", "-d", "--dir")), None)
    if prefix and not out:
        dest = posixpath.join(prefix, dest)
    col.endpoint("download", url, f"to {dest}")
    p = write_path(col, dest, "download")
    col.writes.append(Written(p, None, url))
    return None


@handles("nc", "ncat", "netcat", "nc.traditional", "nc.openbsd", "telnet", "socat", "cryptcat", "pwncat", "sbd")
def _netcat(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if name == "socat":
        return _socat(col, args, stdin)
    opts, operands = split_opts(args, "pseciwqIOPTxXmMgG" if name != "telnet" else "bel")
    for prog in values(opts, "-e", "-c", "--exec", "--sh-exec"):
        col.add(
            "execute",
            prog.split()[0] if prog else "sh",
            path_classes(prog) if prog.startswith("/") else frozenset(),
            "shell",
            "remote_shell",
        )
    if has(opts, "-l", "--listen") or (name == "ncat" and has(opts, "-k")):
        port = next(iter(values(opts, "-p")), None) or next((o for o in operands if o.isdigit()), "")
        col.add("listen", port, detail=name)
        if stdin is not None:
            for src in stdin.sources:
                col.add("upload", src, path_classes(src), "shell", f"served on {port}")
        return Stream(flavour="downloaded", origin=f"listen:{port}")
    hosts = [o for o in operands if not o.isdigit() and not re.match(r"^\d+-\d+$", o)]
    ports = [o for o in operands if o.isdigit() or re.match(r"^\d+-\d+$", o)]
    if not hosts:
        return None
    endpoint = f"{hosts[0]}:{ports[0]}" if ports else hosts[0]
    col.endpoint("connect", endpoint, _probe_kind(ports) if has(opts, "-z") else name)
    if stdin is not None:
        _send_stdin(col, stdin, endpoint)
    return Stream(flavour="downloaded", origin=endpoint)


def _socat(col: Collector, args: list[str], stdin: Stream | None) -> Stream | None:
    addrs = [a for a in args if not a.startswith("-") or a == "-"]
    out = None
    remote = None
    for a in addrs:
        kind, _, rest = a.partition(":")
        k = kind.upper()
        if k in ("TCP", "TCP4", "TCP6", "UDP", "UDP4", "OPENSSL", "SSL", "SCTP", "SOCKS4", "SOCKS4A", "PROXY"):
            remote = rest.split(",", 1)[0]
            col.endpoint("connect", remote, "socat")
        elif k.endswith("-LISTEN") or k.endswith("-L"):
            col.add("listen", rest.split(",", 1)[0], detail="socat")
        elif k in ("EXEC", "SYSTEM"):
            col.add("execute", rest.split(",", 1)[0].split()[0] if rest else "sh", detail="remote_shell")
        elif k in ("FILE", "OPEN", "GOPEN", "CREATE"):
            col.path("read", rest.split(",", 1)[0], "socat")
            out = rest.split(",", 1)[0]
    if remote and (out or stdin is not None):
        if out:
            col.add("upload", out, path_classes(out) | endpoint_classes(remote), "shell", f"to {remote}")
        _send_stdin(col, stdin, remote)
    return Stream(flavour="downloaded", origin=remote) if remote else None


@handles("ssh", "autossh", "mosh", "sshpass", "dbclient")
def _ssh(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if name == "sshpass":
        i = 0
        while i < len(args) and args[i].startswith("-"):
            password = args[i][2:] if len(args[i]) > 2 else (args[i + 1] if i + 1 < len(args) else "")
            if args[i].startswith("-p") and "$(…)" in password:  # computed from data: a list being tried
                col.add("execute", "sshpass", detail="password from data")
            i += 1 if len(args[i]) > 2 else 2
        return run_argv(col, args[i:], stdin, {}) if i < len(args) else None
    opts, operands = split_opts(args, "bcDEeFIiJLlmOopQRSWw" + ("M" if name == "autossh" else ""))
    for key in values(opts, "-i"):
        col.path("read", key, "identity")
    if not operands:
        return None
    host = operands[0]
    col.endpoint("connect", host, "ssh")
    for spec in values(opts, "-R"):
        col.add("listen", spec, endpoint_classes(host), "shell", f"remote forward via {host}")
    for spec in values(opts, "-D"):
        col.add("listen", spec, detail="socks proxy")
    if len(operands) > 1:
        col.add("execute", " ".join(operands[1:])[:120], endpoint_classes(host), "shell", f"remote on {host}")
    if stdin is not None:
        _send_stdin(col, stdin, host)
    return Stream(flavour="downloaded", origin=host)


@handles(
    "ping",
    "ping6",
    "traceroute",
    "tracepath",
    "mtr",
    "dig",
    "nslookup",
    "host",
    "whois",
    "nmap",
    "masscan",
    "zmap",
    "hping3",
    "arping",
    "fping",
    "nping",
    "nikto",
    "sqlmap",
    "hydra",
    "medusa",
    "gobuster",
    "ffuf",
    "dirb",
    "wfuzz",
    "rustscan",
    "unicornscan",
    "enum4linux",
    "smbclient",
    "rpcclient",
    "crackmapexec",
    "nxc",
    "ldapsearch",
    "snmpwalk",
    "tcptraceroute",
)
def _probe(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    opts, operands = split_opts(args, "cfiIlmnopstwWuUPe" if name != "nmap" else "poOiSe")
    targets = [o for o in operands if re.match(r"^[\w.:/-]+$", o) and ("." in o or ":" in o or o == "localhost")]
    for t in targets[:4]:
        if name in ("dig", "nslookup", "host", "whois"):  # the name or address is looked up, not connected to
            col.endpoint("connect", t, f"{name} lookup")
            continue
        col.endpoint("connect", t, "scan" if name in ("nmap", "masscan", "zmap", "rustscan", "unicornscan") else name)
    port = next(iter(values(opts, "-p")), "")
    if name == "whois" and targets and port.isdigit() and port != "43":  # a raw TCP client in disguise
        col.endpoint("connect", f"{targets[0]}:{port}", "whois query to a custom port")
    if name in ("ping", "ping6") and targets and port:  # `ping -p <hex>`: data carried in the ICMP padding
        col.endpoint("send", targets[0], "icmp payload")
    if name in ("dig", "nslookup", "host"):  # a name built at run time (`dig $(… | base64).example.com`)
        for o in operands[:4]:
            if "$(…)" in o and "." in o.replace("$(…)", ""):
                col.endpoint("send", o, "dns")
    if name in ("dig", "nslookup", "host") and targets:
        # DNS tunnelling and exfiltration hide data in long labels
        label = max((t for t in targets), key=len)
        if len(label) > 60:
            col.endpoint("send", label, "dns")
    for o in values(opts, "-oN", "-oX", "-oG", "-oA", "-o"):
        col.path("write", o, name)
    if name in ("dig", "nslookup", "host") and targets:  # the answer (a TXT record, say) is remote content
        return Stream(flavour="downloaded", origin=targets[-1])
    return Stream()


def _probe_kind(ports: list[str]) -> str:
    """``nc -z``: ``scan`` over several ports (a range, or more than one), ``port check`` for one port."""
    spans = [p.split("-", 1) for p in ports]
    if len(ports) == 1 and (len(spans[0]) == 1 or spans[0][0] == spans[0][1]):
        return "port check"
    return "scan"


#: swaks options that take a value (``-a``/``--auth`` is the SMTP auth type, not an attachment).
_SWAKS_VALUE_OPTS: Final = frozenset(
    "-t --to -f --from -s --server -a --auth -au --auth-user -ap --auth-password -p --port -h --helo --header "
    "--body -d --data --attach --attach-body --attach-type --attach-name -q --quit-after --protocol --timeout".split()
)


def _swaks(col: Collector, args: list[str], stdin: Stream | None) -> None:
    """swaks: mail to ``--to`` recipients; ``--attach FILE`` uploads FILE (``-`` is standard input)."""
    recipients: list[str] = []
    attachments: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        value = args[i + 1] if a in _SWAKS_VALUE_OPTS and i + 1 < len(args) else None
        if a in ("-t", "--to") and value:
            recipients.extend(r for r in value.split(",") if r)
        elif a in ("--attach", "--attach-body") and value:
            attachments.append(value.lstrip("@"))
        elif a.startswith("--header-") and i + 1 < len(args):
            i += 1  # --header-X-Name VALUE
        i += 2 if value is not None else 1
    recipients = recipients or ["<recipient>"]
    for r in recipients:
        col.add("send", r, _mail_classes(r), "shell", "swaks")
    for att in attachments:
        if att == "-":
            att_sources = stdin.sources if stdin is not None else ()
        else:
            att_sources = (att,)
        for src in att_sources:
            col.add("upload", src, path_classes(src) | _mail_classes(recipients[0]), "shell", f"to {recipients[0]}")
            col.path("read", src)


@handles("mail", "mailx", "sendmail", "mutt", "swaks", "msmtp", "s-nail")
def _mail(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if name == "swaks":
        _swaks(col, args, stdin)
        return None
    opts, operands = split_opts(args, "sabcrAfF")
    recipients = [o for o in operands if "@" in o] or ["<recipient>"]
    for r in recipients:
        col.add("send", r, _mail_classes(r), "shell", name)
    for att in values(opts, "-a", "-A", "--attach"):
        col.add("upload", att, path_classes(att) | _mail_classes(recipients[0]), "shell", f"to {recipients[0]}")
        col.path("read", att)
    if stdin is not None:
        for src in stdin.sources:
            col.add("upload", src, path_classes(src) | _mail_classes(recipients[0]), "shell", f"to {recipients[0]}")
    return None


def _mail_classes(address: str) -> frozenset[str]:
    return endpoint_classes(address.rsplit("@", 1)[-1]) if "@" in address else frozenset({"net_external"})


@handles("git")
def _git(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        if args[i] in ("-C", "-c", "--git-dir", "--work-tree"):
            if args[i] == "-c" and i + 1 < len(args) and "hookspath" in args[i + 1].lower():
                col.add("persist", args[i + 1], frozenset({"persistence"}), "shell", "git hooksPath")
            i += 2
        else:
            i += 1
    if i >= len(args):
        return None
    sub, rest = args[i], args[i + 1 :]
    operands = [a for a in rest if not a.startswith("-")]
    if sub == "push":
        remote = operands[0] if operands else "origin"
        col.endpoint("send", remote, "git push") if _is_url(remote) or "@" in remote else col.add(
            "send", f"git remote {remote}", frozenset(), "shell", "git push"
        )
        infra.push_effects(col, rest)  # force-push, branch deletion, mirror: the remote refs it destroys
    elif sub in ("clone", "fetch", "pull", "submodule", "ls-remote"):
        url = next((o for o in operands if _is_url(o) or "@" in o), None)
        if url:
            col.endpoint("connect", url, f"git {sub}")
            col.endpoint("download", url, f"git {sub}")
        if sub == "clone" and len(operands) >= 2:
            write_path(col, operands[1], "git clone")
    elif sub == "config":
        joined = " ".join(rest).lower()
        if (
            "core.hookspath" in joined
            or "core.fsmonitor" in joined
            or "core.sshcommand" in joined
            or ("alias." in joined and "!" in joined)
            or "core.pager" in joined
        ):
            col.add("persist", "git config", frozenset({"persistence"}), "shell", " ".join(rest)[:80])
        elif "credential.helper" in joined:
            col.add("change_settings", "git credential.helper", frozenset({"credential_store"}), "shell", "git config")
        elif "--get" not in joined and "--list" not in joined and "-l" not in rest and len(operands) >= 2:
            col.add("change_settings", f"git {operands[0]}", frozenset(), "shell", "git config")
    elif sub == "credential" and operands[:1] == ["fill"]:  # approve/reject store or erase, print nothing
        col.add("read", "git-credentials", frozenset({"credential_store"}), "shell", "git credential")
    elif sub == "remote" and operands[:1] in (["add"], ["set-url"]) and len(operands) >= 3:
        col.add("change_settings", f"git remote {operands[1]}", endpoint_classes(operands[2]), "shell", operands[2])
    elif sub in ("rm", "clean"):
        for f in operands:
            col.path("delete", f, "git")
        if sub == "clean" and any("f" in a for a in rest if a.startswith("-") and not a.startswith("--")):
            col.path("delete", ".", "git clean")
    elif sub == "reset" and "--hard" in rest:
        col.path("write", ".", "git reset --hard")
    elif sub in (
        "add",
        "commit",
        "status",
        "log",
        "diff",
        "show",
        "branch",
        "checkout",
        "switch",
        "merge",
        "rebase",
        "stash",
        "tag",
        "init",
        "blame",
        "grep",
        "restore",
    ):
        return Stream()
    return None


@handles("gh", "glab")
def _gh(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if args[:2] in (["gist", "create"],):
        for f in args[2:]:
            if not f.startswith("-"):
                _upload(col, f, "https://gist.github.com")
        col.endpoint("send", "https://gist.github.com", "gist")
    elif (
        args[:2] == ["auth", "token"]
        or args[:2] == ["auth", "status"]
        and any(a in ("-t", "--show-token") for a in args)
    ):  # plain `auth status` prints the account and a masked token
        col.add("read", "gh auth token", frozenset({"credential_store"}), "shell", name)
    elif args[:1] in (["release"],) and args[1:2] == ["upload"]:
        for f in args[3:]:
            if not f.startswith("-"):
                _upload(col, f, "https://github.com")
    return None


@handles("aws", "gcloud", "az", "kubectl", "oc", "doctl", "s3cmd", "mc", "heroku", "vercel", "netlify", "terraform")
def _cloud(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if infra.cloud_effects(col, name, args):  # kubectl delete, terraform destroy, gcloud/az delete, aws s3 rm …
        return None
    words = [a for a in args if not a.startswith("-")]
    if name in ("aws", "s3cmd", "mc", "gcloud") and any(w in ("cp", "sync", "mv", "put") for w in words[:3]):
        idx = next(i for i, w in enumerate(words) if w in ("cp", "sync", "mv", "put"))
        paths = words[idx + 1 :]
        if len(paths) >= 2:
            src, dst = paths[0], paths[-1]
            if _is_remote(dst) or "://" in dst:
                _upload(col, src, dst)
                col.endpoint("send", dst, name)
            elif "://" in src:
                col.endpoint("download", src, f"to {dst}")
                write_path(col, dst, "download")
        return None
    joined = " ".join(words[:4])
    if name == "kubectl" and ("get secret" in joined or "describe secret" in joined):
        col.add("read", "kubernetes secrets", frozenset({"credential_store"}), "shell", joined)
    elif name in ("kubectl", "oc") and words[:1] in (["exec"], ["cp"], ["run"], ["debug"]):
        col.add("execute", f"kubectl {words[0]}", frozenset(), "shell", "container")
        if "--" in args:
            run_argv(col, args[args.index("--") + 1 :], stdin, {})
    elif name == "aws" and any(
        w
        in (
            "get-secret-value",
            "batch-get-secret-value",
            "get-parameter",
            "get-parameters",
            "get-parameters-by-path",
            "get-parameter-history",
            "get-session-token",
            "create-access-key",
            "get-login-password",
        )
        for w in words
    ):
        col.add("read", f"aws {joined}", frozenset({"credential_store"}), "shell", "cloud secret")
    elif name == "aws" and any(
        w.startswith(
            ("delete-", "stop-logging", "put-bucket-policy", "update-trail", "delete-trail", "delete-detector")
        )
        for w in words
    ):
        verb = next(w for w in words if w.startswith(("delete-", "stop-", "put-", "update-")))
        if verb in ("stop-logging", "delete-trail", "update-trail", "delete-detector", "delete-flow-logs"):
            col.add("tamper", f"aws {verb}", frozenset({"log"}), "shell", "cloud logging")
        else:
            col.add("delete", f"aws {joined}", frozenset(), "shell", "cloud")
    elif name == "aws" and any(
        w
        in (
            "create-user",
            "attach-user-policy",
            "create-login-profile",
            "put-user-policy",
            "attach-role-policy",
            "add-user-to-group",
        )
        for w in words
    ):
        col.add("account", f"aws {joined}", frozenset({"access_control"}), "shell", "cloud iam")
    elif name == "gcloud" and "print-access-token" in words:
        col.add("read", "gcloud access token", frozenset({"credential_store"}), "shell", "cloud token")
    elif name == "az" and "get-access-token" in words:
        col.add("read", "az access token", frozenset({"credential_store"}), "shell", "cloud token")
    elif name == "kubectl" and words[:2] == ["config", "view"] and "--raw" in args:
        col.add("read", "~/.kube/config", path_classes("~/.kube/config"), "shell", "kubectl config view --raw")
    elif (name == "gcloud" and words[:3] == ["secrets", "versions", "access"]) or (
        name == "az" and words[:2] == ["keyvault", "secret"] and words[2:3] in (["show"], ["download"])
    ):
        col.add("read", f"{name} {joined}", frozenset({"credential_store"}), "shell", "cloud secret")
    elif _lists_secrets(name, words):
        col.add("read", f"{name} {joined}", frozenset(), "shell", "secret list")
    return None


def _lists_secrets(name: str, words: list[str]) -> bool:
    """``aws secretsmanager list-secrets``, ``gcloud secrets list``, ``az keyvault secret list``: names, not values."""
    return (
        (name == "aws" and words[:2] == ["secretsmanager", "list-secrets"])
        or (name == "gcloud" and words[:2] == ["secrets", "list"])
        or (name == "az" and words[:3] == ["keyvault", "secret", "list"])
    )


@handles("vault", "op", "doppler")
def _secrets_cli(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    """Secrets-manager clients: ``vault kv get``, ``op read``/``op item get``, ``doppler secrets`` print secret
    values (a credential read); ``vault kv list`` lists names only."""
    words = [a for a in args if not a.startswith("-")]
    joined = " ".join(words[:4])
    if name == "vault" and words[:1] == ["kv"]:
        words = words[1:]
    verb = words[:1]
    if (
        (name == "vault" and verb in (["get"], ["read"]))
        or (name == "op" and (verb == ["read"] or words[:2] == ["item", "get"]))
        or (name == "doppler" and verb == ["secrets"] and words[1:2] in ([], ["get"], ["download"]))
    ):
        col.add("read", f"{name} {joined}", frozenset({"credential_store"}), "shell", "secrets manager")
    if name == "vault" and verb == ["list"]:
        col.add("read", f"{name} {joined}", frozenset(), "shell", "secret list")
    return Stream()


@handles("docker", "podman", "nerdctl")
def _docker(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    words = [a for a in args if not a.startswith("-")]
    if words[:1] in (["run"], ["create"]):
        if (
            "--privileged" in args
            or "--pid=host" in args
            or any(a.startswith(("-v", "--volume")) and ("/:/" in a or a.endswith("/:/host")) for a in args)
            or any(args[i] in ("-v", "--volume") and args[i + 1].startswith("/:") for i in range(len(args) - 1))
        ):
            col.add("elevate", "container host", frozenset(), "shell", f"{name} privileged")
    if words[:1] == ["login"]:
        col.add("write", "~/.docker/config.json", path_classes("~/.docker/config.json"), "shell", "docker login")
    if words[:1] in (["push"],):
        col.add(
            "send",
            f"registry {words[1] if len(words) > 1 else ''}".strip(),
            frozenset({"net_external"}),
            "shell",
            "docker push",
        )
    if words[:1] in (["pull"],):
        image = words[1] if len(words) > 1 else "image"
        col.add("download", image, frozenset({"net_external"}), "shell", "docker pull")
    return None


# -- packages --------------------------------------------------------------------------------------
_INSTALL_VERBS: Final = {
    "pip": ("install", "download"),
    "pip3": ("install", "download"),
    "pipx": ("install", "run", "inject"),
    "npm": ("install", "i", "add", "ci", "exec"),
    "pnpm": ("install", "i", "add", "dlx"),
    "yarn": ("add", "install", "dlx"),
    "bun": ("add", "install", "i", "x"),
    "gem": ("install",),
    "go": ("install", "get"),
    "cargo": ("install", "add"),
    "apt": ("install", "reinstall"),
    "apt-get": ("install", "reinstall"),
    "yum": ("install", "localinstall"),
    "dnf": ("install",),
    "zypper": ("install", "in"),
    "apk": ("add",),
    "pacman": ("-S", "-U", "-Sy", "-Syu"),
    "brew": ("install", "reinstall", "tap"),
    "port": ("install",),
    "snap": ("install",),
    "flatpak": ("install",),
    "conda": ("install",),
    "mamba": ("install",),
    "composer": ("require", "install"),
    "dpkg": ("-i", "--install"),
    "rpm": ("-i", "-ivh", "-Uvh", "-U", "--install"),
    "installer": ("-pkg",),
    "npx": (),
    "bunx": (),
    "pnpx": (),
    "luarocks": ("install",),
    "cpan": (),
    "cpanm": (),
    "nix-env": ("-i", "-iA"),
    "code": ("--install-extension",),
    "uvx": (),
    "easy_install": (),
    "helm": ("install", "upgrade"),
    "softwareupdate": ("-i", "--install"),
}
#: Package-manager subcommands whose own verbs (``add``, ``install``) install nothing: caches, tags, owners, hooks.
_OTHER_SUBCOMMANDS: Final = frozenset(
    {"cache", "hook", "dist-tag", "owner", "access", "team", "org", "profile", "token", "deprecate", "star", "tag"}
)
#: Flags that name a package index or registry (pip, uv, npm, gem …); their value is the index URL.
_INDEX_FLAGS: Final = (
    "-i",
    "--index-url",
    "--extra-index-url",
    "--index",
    "--default-index",
    "--registry",
    "--source",
    "-f",
    "--find-links",
)
_INDEX_FLAGS_EQ: Final = tuple(f + "=" for f in _INDEX_FLAGS if f.startswith("--"))
#: Options of an uninstall whose next word is their value, not a package (``helm uninstall app -n prod``).
_OPT_VALUE: Final = frozenset({"-n", "--namespace", "--kube-context", "--kubeconfig", "--timeout"})
_REMOVE_VERBS: Final = frozenset({"remove", "uninstall", "purge", "erase", "autoremove", "-R", "-r", "-e", "rm"})


@handles(*_INSTALL_VERBS)
def _install(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    verbs = _INSTALL_VERBS[name]
    words = [a for a in args if a]
    if name == "code" and words[:1] == ["tunnel"]:
        return _tunnel(col, name, args, stdin)
    if name == "code" and "--install-extension" not in words:
        return _reader(col, name, args, stdin)
    if name in ("npx", "bunx", "pnpx", "uvx", "cpan", "cpanm", "easy_install"):
        pkg = next((w for w in words if not w.startswith("-")), "")
        if pkg:
            col.add("install", pkg, _pkg_classes(pkg), "shell", name)
            if name in ("npx", "bunx", "pnpx", "uvx"):
                col.add("execute", pkg, frozenset(), "shell", name)
        return None
    idx = next((i for i, w in enumerate(words) if w in verbs), None)
    if idx is not None and next((w for w in words if not w.startswith("-")), "") in _OTHER_SUBCOMMANDS:
        idx = None  # `npm cache add x`, `npm dist-tag add x@1 tag`, `npm owner add user x`: nothing installed
    if idx is None and _package_source(col, name, [w for w in words if not w.startswith("-")]):
        return None
    if idx is None:
        rm = next((i for i, w in enumerate(words) if w in _REMOVE_VERBS), None)
        if rm is not None:
            removed = [
                w for j, w in enumerate(words[rm + 1 :], rm) if not w.startswith("-") and words[j] not in _OPT_VALUE
            ]
            for pkg in removed[:8]:
                col.add("delete", f"package:{pkg}", frozenset(), "shell", f"{name} uninstall")
        return None
    rest = words[idx + 1 :]
    pkgs: list[str] = []
    skip = False
    for j, w in enumerate(rest):
        if skip:
            skip = False
            continue
        if w in ("-r", "--requirement", "-c", "--constraint"):
            if j + 1 < len(rest):
                col.path("read", rest[j + 1], f"{name} requirements")
                pkgs.append(f"-r {rest[j + 1]}")
            skip = True
        elif w in _INDEX_FLAGS:
            if j + 1 < len(rest) and name not in ("dpkg", "rpm", "nix-env", "installer"):
                col.endpoint("connect", rest[j + 1], f"{name} index")
                skip = True
            elif name in ("dpkg", "rpm", "installer") and j + 1 < len(rest):
                pkgs.append(rest[j + 1])
                skip = True
        elif w.startswith(_INDEX_FLAGS_EQ) and w.split("=", 1)[0] in _INDEX_FLAGS:
            col.endpoint("connect", w.split("=", 1)[1], f"{name} index")
        elif w in ("-t", "--target", "--prefix", "-o", "--root"):
            skip = True
        elif not w.startswith("-"):
            pkgs.append(w)
    if not pkgs and name in ("npm", "pnpm", "yarn", "bun", "composer") and words[idx] in ("install", "i", "ci"):
        pkgs.append("package.json" if name != "composer" else "composer.json")
    if not pkgs and name in ("pip", "pip3"):
        return None
    for pkg in pkgs[:8]:
        col.add("install", pkg, _pkg_classes(pkg), "shell", name)
        if _is_url(pkg) or pkg.startswith("git+"):
            col.endpoint("download", pkg.removeprefix("git+"), name)
    if name in ("npm", "pnpm", "yarn", "bun") and words[idx] in ("exec", "dlx", "x"):
        col.add("execute", pkgs[0] if pkgs else "package", frozenset(), "shell", name)
    return None


def _package_source(col: Collector, name: str, words: list[str]) -> bool:
    """Where a package manager is told to fetch from: ``helm repo add NAME URL`` (a ``connect``, detail
    ``helm repo``), ``npm config set registry URL`` / ``pip config set global.index-url URL`` (a
    ``change_settings`` of the URL, detail ``<manager> index``). Whether ``words`` was such a command."""
    if name == "helm" and words[:2] == ["repo", "add"] and len(words) >= 4:
        col.endpoint("connect", words[3], "helm repo")
        return True
    if words[:1] == ["set"]:  # npm set registry URL
        words = ["config", *words]
    if words[:2] != ["config", "set"] or len(words) < 3:
        return False
    key, _, value = words[2].partition("=")
    value = value or (words[3] if len(words) > 3 else "")
    setting = key.lower().replace(":", ".").rpartition(".")[2]  # `@scope:registry`, `global.index-url`
    if "://" in value and setting in ("registry", "index-url", "extra-index-url", "find-links"):
        col.endpoint("change_settings", value, f"{name} index")
        return True
    return False


def _pkg_classes(pkg: str) -> frozenset[str]:
    if "://" in pkg or pkg.startswith("git+"):
        return endpoint_classes(pkg.removeprefix("git+"))
    if pkg.startswith(("/", "./", "~", "../")) or pkg.endswith((".whl", ".tar.gz", ".deb", ".rpm", ".pkg", ".tgz")):
        return path_classes(pkg)
    return frozenset()


# -- persistence, services, processes --------------------------------------------------------------
_SECURITY_SERVICES: Final = re.compile(
    r"(?i)(audit|syslog|journal|apparmor|selinux|firewall|ufw|iptables|nftables|falco|osquery|wazuh|ossec|crowdstrike"
    r"|falcon|sentinel|defender|mdatp|clamav|clamd|sysmon|auditbeat|filebeat|elastic-agent|splunk|carbonblack|cbagent"
    r"|tetragon|aide|fail2ban|snort|suricata|zeek|xagt|cylance|sophos|eset|tripwire|com\.apple\.(alf|xprotect)"
    r"|lulu|little.?snitch|santa|blockblock|oversight|knockknock"
    # more EDR/AV and DNS-security agents (Carbon Black's cbdaemon, Cisco Umbrella, Defender's wdavdaemon …),
    # and the BSD/macOS packet filter as a service (`service pf stop`)
    r"|cbdaemon|cbsensor|cb-psc|opendns|umbrella|wdavdaemon|sentinelone|cyserver|traps_pmd|kesl|bdsec|ds_agent"
    r"|mfetp|mcafee|symantec|trendmicro|qualys|ir_agent|tanium|lacework|sysdig|uptycs|\bpf(log)?\b)"
)


@handles("crontab")
def _crontab(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    opts, operands = split_opts(args, "u")
    if has(opts, "-l"):
        col.add("read", "crontab", frozenset({"persistence"}), "shell", "crontab -l")
        return Stream()
    if has(opts, "-r"):
        col.add("delete", "crontab", frozenset({"persistence"}), "shell", "crontab -r")
        return None
    src = operands[0] if operands else "-"
    if src != "-":
        col.path("read", src, "crontab")
    col.add("persist", "crontab", frozenset({"persistence"}), "shell", "crontab -e" if has(opts, "-e") else "crontab")
    if stdin is not None and stdin.text:
        for line in stdin.text.splitlines()[:8]:
            fields = line.split(None, 5)
            if len(fields) == 6 and not line.lstrip().startswith("#"):
                run_shell(col, fields[5])
    return None


@handles("at", "batch")
def _at(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if any(a in ("-l", "-r", "-d", "-c") for a in args):
        return None
    opts, operands = split_opts(args, "fqt")
    if stdin is None and not values(opts, "-f"):
        return None  # no job given: at/batch would prompt for one, nothing is scheduled
    col.add("persist", "at", frozenset({"persistence"}), "shell", " ".join(operands)[:40] or name)
    for f in values(opts, "-f"):
        col.path("read", f, "at")
        col.runs.append(col_norm(col, f))
    if stdin is not None and stdin.text:
        run_shell(col, stdin.text)
    return None


#: Words of update-rc.d/chkconfig that are not the service's name (``chkconfig off NAME`` is read too).
_RC_VERBS: Final = frozenset({"on", "off", "add", "del", "reset", "enable", "disable", "defaults", "remove", "-f"})


@handles("systemctl", "service", "launchctl", "update-rc.d", "chkconfig", "rc-update", "rc-service", "sv", "initctl")
def _service(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    words = [a for a in args if not a.startswith("-")]
    if not words:
        return None
    if name == "service" and len(words) >= 2:
        unit, verb = words[0], words[1]
        units = [unit]
    elif name in ("update-rc.d", "chkconfig", "rc-update") and len(words) >= 2:
        verb = "enable" if any(w in ("defaults", "enable", "add", "on") for w in words) else "disable"
        named = [w for w in words if w not in _RC_VERBS and not w.isdigit()] or words
        units = [words[1] if name == "rc-update" else named[0]]
    else:
        verb, units = words[0], words[1:]
    user = "--user" in args
    for unit in units or [""]:
        resource = f"service:{unit}" if name != "launchctl" else unit
        classes = (
            path_classes(unit)
            if "/" in unit
            else frozenset(
                {"persistence"}
                if verb in ("enable", "load", "bootstrap", "link", "submit", "reenable", "defaults", "add")
                else ()
            )
        )
        if verb in ("enable", "load", "bootstrap", "link", "submit", "reenable", "add", "defaults", "on"):
            detail = f"{name} {verb}" + (" --user" if user else "")
            col.add("persist", resource, classes | {"persistence"}, "shell", detail)
            if "/" in unit:
                col.runs.append(col_norm(col, unit))
        elif verb in ("stop", "disable", "mask", "unload", "bootout", "remove", "kill", "off", "setenv"):
            if _SECURITY_SERVICES.search(unit):
                col.add("tamper", resource, classes, "shell", f"{name} {verb}")
            else:
                col.add("kill", resource, classes, "shell", f"{name} {verb}")
        elif verb in ("start", "restart", "reload", "kickstart", "try-restart"):
            col.add("change_settings", resource, classes, "shell", f"{name} {verb}")
    return Stream()


@handles("kill", "pkill", "killall", "xkill", "skill", "fuser", "pkexec-kill")
def _kill(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if name == "fuser" and "-k" not in args:
        return None
    signal = next(
        (
            a
            for a in args
            if a.startswith("-") and a[1:].upper().lstrip("SIG") in _SIGNALS | {"9", "15", "1", "2", "19"}
        ),
        None,
    )
    targets = [a for a in args if not a.startswith("-")]
    if name == "kill" and args[:1] in (["-l"], ["-L"]):
        return None
    if signal in ("-0",):
        return None
    for t in targets[:8]:
        resource = t if t not in ("$$", "$PPID") else ("self" if t == "$$" else "parent shell")
        col.add(
            "tamper" if _SECURITY_SERVICES.search(t) else "kill",
            resource,
            frozenset(),
            "shell",
            f"{name} {signal}" if signal else name,
        )
    return None


_SIGNALS: Final = frozenset({"KILL", "TERM", "HUP", "INT", "STOP", "QUIT", "USR1", "USR2", "CONT", "9", "15"})


@handles("pgrep", "pidof")
def _pgrep(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    """``$(pgrep cron)`` / ``$(pidof sshd)`` stands for the processes named: ``kill $(pgrep cron)`` kills ``cron``."""
    opts, operands = split_opts(args, "uUgGPtFsoOn" if name == "pgrep" else "o")
    return Stream(text=operands[0]) if operands else Stream()


# -- defences, settings ----------------------------------------------------------------------------
@handles("history")
def _history(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if any(a in ("-c", "-d", "-cw") or a.startswith("-c") for a in args):
        col.add("tamper", "shell_history", frozenset({"log"}), "shell", f"history {' '.join(args)}"[:60])
    elif any(a in ("-w", "-a", "-r", "-n", "-s") for a in args):  # save, reload or add an entry: nothing is shown
        return Stream()
    else:
        col.add("read", "shell_history", frozenset({"credential_store", "log"}), "shell", "history")
    return Stream()


#: A journal retention under a day (``1s``, ``10min``, ``2h``), or a size under a megabyte (``1K``, ``500B``).
_SHORT_TIME: Final = re.compile(r"^\d+\s*(us|ms|s|sec|seconds?|m|min|minutes?|h|hours?)?$")
_SMALL_SIZE: Final = re.compile(r"^\d+\s*[BbKk]?$")


def _empties_journal(args: list[str]) -> bool:
    """``journalctl --vacuum-time=1s`` / ``--vacuum-size=1K`` / ``--vacuum-files=1`` delete (nearly) every journal
    file; ``--vacuum-time=2d`` or ``--rotate`` alone is routine housekeeping."""
    for i, a in enumerate(args[:16]):
        name, eq, value = a.partition("=")
        if not name.startswith("--vacuum-"):
            continue
        value = value if eq else (args[i + 1] if i + 1 < len(args) else "")
        value = value.strip()
        if (
            (name == "--vacuum-files" and value in ("0", "1"))
            or (name == "--vacuum-time" and _SHORT_TIME.match(value))
            or (name == "--vacuum-size" and _SMALL_SIZE.match(value))
        ):
            return True
    return False


@handles("iptables", "ip6tables", "nft", "ufw", "firewall-cmd", "pfctl", "socketfilterfw", "iptables-restore")
def _firewall(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    joined = " ".join(args)
    tamper = (
        any(
            a in ("-F", "--flush", "-X", "flush", "disable", "reset", "-d", "--setglobalstate", "--panic-off")
            for a in args
        )
        or re.search(
            r"-P \w+ ACCEPT|--policy \w+ ACCEPT|--set-default-zone=trusted|--add-service|setglobalstate off"
            r"|--setblockall off",
            joined,
        )
        is not None
    )
    if name == "iptables" and args[:1] in (["-L"], ["-S"], ["--list"]) or name == "ufw" and args[:1] == ["status"]:
        return Stream()
    if name == "ufw" and "--dry-run" in args:
        return Stream()
    col.add("tamper" if tamper else "change_settings", "firewall", frozenset(), "shell", f"{name} {joined}"[:80])
    return None


@handles(
    "setenforce",
    "auditctl",
    "spctl",
    "csrutil",
    "sysctl",
    "systemsetup",
    "defaults",
    "tmutil",
    "log",
    "journalctl",
    "wevtutil",
    "logrotate",
    "aa-disable",
    "aa-complain",
    "aa-teardown",
    "apparmor_parser",
    "modprobe",
    "insmod",
    "rmmod",
    "kextload",
    "kextunload",
    "hostnamectl",
    "timedatectl",
    "nvram",
    "pwpolicy",
    "networksetup",
    "scutil",
    "ip",
    "ifconfig",
    "route",
    "update-alternatives",
    "ldconfig",
    "sestatus",
    "getenforce",
)
def _settings(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    joined = " ".join(args)
    tamper_rules: dict[str, Callable[[list[str]], bool]] = {
        "setenforce": lambda a: a[:1] in (["0"], ["Permissive"], ["permissive"]),
        "auditctl": lambda a: "-D" in a or a[:2] == ["-e", "0"],
        "spctl": lambda a: "--master-disable" in a or "--disable" in a or "--global-disable" in a,
        "csrutil": lambda a: a[:1] == ["disable"],
        "sysctl": lambda a: bool(re.search(r"randomize_va_space=0|yama.ptrace_scope=0|kptr_restrict=0", " ".join(a))),
        "tmutil": lambda a: a[:1] in (["disable"], ["deletelocalsnapshots"], ["delete"]),
        "log": lambda a: a[:1] in (["erase"],) or "--disable" in a,
        "journalctl": _empties_journal,
        "aa-disable": lambda a: True,
        "aa-complain": lambda a: True,
        "aa-teardown": lambda a: not {"-h", "--help"} & set(a),
        "apparmor_parser": lambda a: "-R" in a,
        "defaults": lambda a: (
            bool(
                re.search(
                    r"(?i)write.*(com\.apple\.(alf|security|loginwindow|screensaver)|gatekeeper|quarantine|globalstate)",
                    " ".join(a),
                )
            )
            and not {"LoginHook", "LogoutHook"} & set(a)
        ),  # a login hook runs a script: persistence (below)
        "wevtutil": lambda a: a[:1] in (["cl"], ["clear-log"]),
    }
    check = tamper_rules.get(name)
    target = {
        "setenforce": "selinux",
        "auditctl": "audit",
        "spctl": "gatekeeper",
        "csrutil": "sip",
        "sysctl": "kernel",
        "tmutil": "backups",
        "log": "log",
        "journalctl": "log",
        "aa-disable": "apparmor",
        "aa-complain": "apparmor",
        "aa-teardown": "apparmor",
        "apparmor_parser": "apparmor",
        "wevtutil": "log",
    }.get(name, name)
    if check is not None and check(args):
        col.add(
            "tamper", target, frozenset({"log"}) if target == "log" else frozenset(), "shell", f"{name} {joined}"[:80]
        )
        return None
    if name in ("modprobe", "insmod", "kextload") and args and not any(a in ("-r", "-l", "--list") for a in args):
        module = next((a for a in args if not a.startswith("-")), "")
        col.add("execute", module, path_classes(module) if "/" in module else frozenset(), "shell", "kernel module")
        return None
    if name == "defaults" and args[:1] == ["write"]:
        domain = args[1] if len(args) > 1 else ""
        col.add(
            "persist"
            if "loginwindow" in domain and ("LoginHook" in joined or "LogoutHook" in joined)
            else "change_settings",
            f"defaults {domain}",
            frozenset({"persistence"}) if "Login" in joined else frozenset(),
            "shell",
            joined[:80],
        )
        return None
    mutating = {
        "sysctl": ("-w",),
        "ip": ("add", "del", "set", "flush", "replace"),
        "route": ("add", "del", "delete"),
        "ifconfig": ("up", "down", "promisc", "alias"),
        "hostnamectl": ("set-hostname",),
        "timedatectl": ("set-time", "set-timezone", "set-ntp"),
        "nvram": ("=",),
        "networksetup": ("-set",),
        "update-alternatives": ("--set", "--install"),
        "ldconfig": ("",),
    }
    keys = mutating.get(name)
    if keys is not None and any(
        k and (k in args or k.startswith(("-", "=")) and any(k in a for a in args)) for k in keys
    ):
        col.add("change_settings", name, frozenset(), "shell", joined[:80])
    return Stream()


@handles("upx")
def _upx(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    """An executable packer: ``upx FILE`` rewrites FILE packed (``-o OUT``: writes OUT); ``-d`` unpacks;
    ``-t``/``-l``/``-V`` only test, list or print the version."""
    opts, operands = split_opts(args, "o", {"--output"})
    if has(opts, "-t", "-l", "-V", "-h", "--test", "--list", "--version", "--help"):
        return Stream()
    detail = "unpacked" if has(opts, "-d", "--decompress") else "packed"
    for f in values(opts, "-o", "--output") or operands[:8]:
        col.path("write", f, detail)
    return None


@handles("mdatp", "falconctl", "sentinelctl")
def _edr_cli(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    """An endpoint-security agent's own CLI: turning a protection off, unloading or uninstalling the agent is
    ``tamper`` (``mdatp config real-time-protection --value disabled``, ``falconctl -d``, ``sentinelctl unload``)."""
    words = [a.lower() for a in args[:12]]
    off = (
        any(w in ("disabled", "off", "false") for w in words)
        or any(w in ("uninstall", "unload", "stop", "disable") for w in words)
        or (name == "falconctl" and any(w in ("-d", "--delete") for w in words))
    )
    if off:
        col.add("tamper", name, frozenset(), "shell", f"{name} {' '.join(args[:6])}"[:80])
    return Stream()


@handles("security")
def _security(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    """macOS ``security``: keychain reads are credential access."""
    if args and args[0] in (
        "find-generic-password",
        "find-internet-password",
        "dump-keychain",
        "export",
        "find-certificate",
        "unlock-keychain",
        "dump-trust-settings",
    ):
        col.add("read", "keychain", frozenset({"credential_store"}), "shell", f"security {args[0]}")
        return Stream(sources=("keychain",))
    if args and args[0] in (
        "add-trusted-cert",
        "delete-certificate",
        "set-keychain-settings",
        "authorizationdb",
        "import",
        "add-generic-password",
        "add-internet-password",
        "delete-keychain",
    ):
        col.add("change_settings", "keychain", frozenset({"credential_store"}), "shell", f"security {args[0]}")
    return None


@handles("ssh-keygen", "ssh-add", "ssh-copy-id", "ssh-keyscan")
def _sshkeys(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    opts, operands = split_opts(args, "fpTtO" if name == "ssh-keyscan" else "fitbCNPEmOrRsIVnDF")
    if name == "ssh-copy-id":
        for k in values(opts, "-i"):
            col.path("read", k, "identity")
        if operands:
            col.endpoint("connect", operands[-1], "ssh-copy-id")
            col.add(
                "persist",
                f"{operands[-1]}:~/.ssh/authorized_keys",
                frozenset({"persistence", "access_control"}),
                "shell",
                "ssh-copy-id",
            )
        return None
    if name == "ssh-keyscan":
        for h in operands[:4]:
            col.endpoint("connect", h, "ssh-keyscan")
        return Stream()
    for f in values(opts, "-f"):
        if name == "ssh-keygen" and not has(opts, "-l", "-y", "-e", "-p", "-R", "-F"):
            write_path(col, f, "ssh-keygen")
        elif name == "ssh-keygen" and has(opts, "-l", "-y", "-e", "-p"):
            col.path("read", f, "key management")
        else:
            col.path("read", f, name)
    # ssh-add hands keys to the agent process: managed, not disclosed (like ssh-keygen -l/-y)
    for f in operands:
        col.path("read", f, "key management" if name == "ssh-add" else name)
    if name == "ssh-add" and not operands and not has(opts, "-l", "-L", "-D", "-d"):
        col.add("read", "~/.ssh", path_classes("~/.ssh"), "shell", "key management")
    return Stream()


@handles("cmd", "cmd.exe", "powershell.exe", "pwsh.exe", "reg", "schtasks", "wmic", "certutil", "bitsadmin")
def _windows(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    joined = " ".join(args)
    if name in ("schtasks",) and "/create" in joined.lower():
        col.add("persist", "scheduled task", frozenset({"persistence"}), "shell", joined[:80])
    elif name in ("certutil", "bitsadmin"):
        for url in _URL_IN_TEXT.findall(joined)[:2]:
            col.endpoint("download", url, name)
    else:
        sniff(col, joined)
    return None


@handles("open", "xdg-open")
def _open(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    for a in args:
        if _is_url(a):
            col.endpoint("connect", a, name)
        elif not a.startswith("-"):
            col.path("execute", a, name)
    return None


@handles(
    "whoami",
    "id",
    "uname",
    "hostname",
    "ps",
    "netstat",
    "ss",
    "w",
    "who",
    "uptime",
    "last",
    "groups",
    "getent",
    "lscpu",
    "lsblk",
    "df",
    "free",
    "ifconfig",
    "arp",
    "env",
    "sw_vers",
    "system_profiler",
    "lsmod",
    "dmesg",
    "top",
    "htop",
    "users",
    "finger",
    "pinky",
    "lastlog",
    "ioreg",
    "kextstat",
    "csrutil",
    "sestatus",
)
def _discovery(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    if name in ("last", "lastlog"):
        col.add(
            "read",
            "/var/log/wtmp" if name == "last" else "/var/log/lastlog",
            frozenset({"log", "system_path"}),
            "shell",
            name,
        )
    if name == "getent" and args[:1] in (["shadow"], ["gshadow"]):
        col.add("read", "/etc/shadow", path_classes("/etc/shadow"), "shell", "getent")
    return Stream()


# -- tunnels ---------------------------------------------------------------------------------------
#: Programs that expose this machine to the internet or carry traffic inside another protocol, with the
#: first words that start a tunnel (empty: any use does).
_TUNNELS: Final = {
    "cloudflared": ("tunnel", "access"),  # and `run` or `--url` (login, create, list, route only manage)
    "ngrok": ("http", "tcp", "tls", "start", "tunnel"),
    "devtunnel": ("host",),
    "code": ("tunnel",),
    "lt": (),
    "localtunnel": (),
    "bore": ("local",),
    "frpc": (),
    "frps": (),
    "chisel": ("server", "client"),
    "rathole": (),
    "gost": (),
    "inlets": ("client", "server", "http", "tcp"),
    "iodine": (),
    "iodined": (),
    "dnscat": (),
    "dnscat2": (),
    "dns2tcpc": (),
    "ptunnel": (),
    "ptunnel-ng": (),
    "icmptunnel": (),
    "hans": (),
}
#: Tunnels that hide traffic in DNS or ICMP rather than expose a port.
_COVERT_TUNNELS: Final = frozenset(
    {"iodine", "iodined", "dnscat", "dnscat2", "dns2tcpc", "ptunnel", "ptunnel-ng", "icmptunnel", "hans"}
)
#: ``code tunnel`` subcommands that manage an existing tunnel rather than open one.
_TUNNEL_ADMIN: Final = frozenset({"status", "kill", "prune", "rename", "unregister", "user", "help", "--help"})


@handles(*(n for n in _TUNNELS if n != "code"))
def _tunnel(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    """A tunnel: a local port published on the internet (``listen``), or traffic carried over DNS/ICMP (``send``)."""
    words = [a for a in args if not a.startswith("-")]
    starts = _TUNNELS[name]
    if starts and not (words[:1] and words[0] in starts):
        return None
    if name == "code" and len(words) > 1 and words[1] in _TUNNEL_ADMIN:
        return None
    if name == "cloudflared" and "run" not in words and not any(a.startswith("--url") for a in args):
        return None
    if name in _COVERT_TUNNELS:
        server = next((w for w in reversed(words) if "." in w), name)
        col.endpoint("send", server, f"{name} tunnel")
        return None
    opts, operands = split_opts(args, "p", {"--url", "--port", "--local-port", "--to"})
    target = next(iter(values(opts, "--url", "--port", "-p", "--local-port")), "") or next(
        (o for o in operands if o.isdigit() or ":" in o), name
    )
    detached = ", detached" if col.detached else ""
    col.add("listen", target, frozenset({"net_external"}), "shell", f"public tunnel ({name}{detached})")
    return None


#: tor options that only inspect or configure, never join the network.
_TOR_OFFLINE: Final = frozenset(
    {
        "--help",
        "-h",
        "--version",
        "--verify-config",
        "--hash-password",
        "--list-torrc-options",
        "--keygen",
        "--list-modules",
        "--list-fingerprint",
        "--library-versions",
        "--dump-config",
    }
)


@handles("tor")
def _tor(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    """``tor``: this machine joins the Tor network (a local SOCKS proxy into it); ``detached`` when left running."""
    if _TOR_OFFLINE.intersection(args):
        return None
    daemon = col.detached or any(a.lower() == "--runasdaemon" for a in args) and "1" in args
    col.add("connect", "tor network", frozenset({"net_external"}), "shell", "tor, detached" if daemon else "tor")
    return None


_SNIFFER_INFO: Final = frozenset({"-D", "--list-interfaces", "-h", "--help", "-v", "--version", "-L", "-G"})


@handles("tcpdump", "tshark", "dumpcap", "tcpflow", "ngrep", "termshark")
def _sniffer(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    """A packet capture: live traffic is read (``-r file`` reads a saved capture instead; ``-w file`` saves one)."""
    if _SNIFFER_INFO.intersection(args[:16]):
        return None
    opts, _ = split_opts(args, "rwicfsCGWyEFMT" if name != "ngrep" else "dIOA")
    saved = values(opts, "-r", "-I") if name == "ngrep" else values(opts, "-r")
    for f in saved:
        col.path("read", f, name)
    if not saved:
        iface = next(iter(values(opts, "-i", "-d")), "") or "any"
        detached = ", detached" if col.detached else ""
        col.add("read", "network traffic", frozenset(), "shell", f"live capture on {iface}{detached}")
    for f in values(opts, "-w", "-O"):
        if f != "-":
            col.path("write", f, name)
    return Stream()


@handles("tftp", "atftp")
def _tftp(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    """``tftp -g -r file host`` (busybox) or ``tftp host -c get file``: a file fetched over TFTP (``-p``: sent)."""
    opts, operands = split_opts(args, "rlm", {"--remote-file", "--local-file"})
    words = [o for o in operands if o not in ("-c", "get", "put")]
    host = next((o for o in words if "." in o or ":" in o or o == "localhost"), "")
    if not host:
        return None
    remote = next(iter(values(opts, "-r", "--remote-file")), "") or next((o for o in words if o != host), "")
    local = next(iter(values(opts, "-l", "--local-file")), "") or posixpath.basename(remote)
    col.endpoint("connect", host, name)
    if has(opts, "-p", "--put") or "put" in operands:
        col.path("read", local)
        col.add("upload", local, path_classes(local) | endpoint_classes(host), "shell", f"to {host}")
    elif local:
        col.endpoint("download", f"tftp://{host}/{remote}", f"to {local}")
        write_path(col, local, "download")
    return None


# -- debuggers -------------------------------------------------------------------------------------
#: Debugger commands that copy a process's memory out (gdb's ``dump memory``, ``gcore``; lldb's ``memory read``).
_MEMORY_DUMP_CMDS: Final = re.compile(
    r"(?i)\b(?:dump\s+(?:memory|binary|value)|gcore|generate-core-file|memory\s+read)\b"
)


@handles("gdb", "lldb")
def _debugger(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    """``gdb -p PID -batch -ex 'dump memory …'``: another process's memory is read (attaching alone is debugging)."""
    pid, commands = "", [stdin.text] if stdin is not None and stdin.text else []
    for a, value in zip(args[:64], [*args[1:65], ""], strict=False):  # gdb's options are single-dash words
        if a in ("-p", "--pid", "--attach-pid"):
            pid = value
        elif a.startswith(("--pid=", "--attach-pid=")):
            pid = a.partition("=")[2]
        elif a in ("-ex", "-iex", "--eval-command", "-o", "--one-line"):
            commands.append(value)
    if pid and any(_MEMORY_DUMP_CMDS.search(c[:2000]) for c in commands):
        resource = f"/proc/{pid}/mem"
        col.add("read", resource, path_classes(resource), "shell", f"{name} memory dump")
    if pid and any(_INJECT_CMDS.search(c[:2000]) for c in commands):
        resource = f"/proc/{pid}/mem"
        col.add("write", resource, path_classes(resource), "shell", f"{name} code injection")
    return None


#: Debugger commands that make an attached process run or load code (ptrace injection): ``call dlopen(…)``,
#: ``print (void*)dlopen(…)``, ``set {int}0x… = …``, lldb's ``expression``/``memory write``.
_INJECT_CMDS: Final = re.compile(
    r"(?i)\b(?:call\s|dlopen|__libc_dlopen_mode|set\s+(?:var\s+)?[{*$]|\$pc\s*=|expression\s|memory\s+write)"
)


# names registered twice: the later, more specific table entries win
HANDLERS["env"] = _env
HANDLERS["ifconfig"] = _settings
HANDLERS["csrutil"] = _settings
HANDLERS["sestatus"] = _discovery
