"""Crash classification: exit code + the decisive log line -> cause, category, confidence.

The category decides what to do: a Rust panic in ``spawn_local`` is a code
issue that no deployment switch fixes, while "address already in use" or "connection refused"
to a port the profile declares is a deployment conflict that names the port's owner.

A crash log is read the way a person reads it: first find the line that says what happened
(a traceback's final exception with the frame before it, a panic's message and location, Java's
last ``Caused by:``, Node's ``Error:`` line, PostgreSQL's ``could not bind``/``FATAL``, Redis's
and nginx's fatal lines), then classify from that line and the few lines after it. A missing
environment variable or config key is ``configuration`` (with ``code-issue`` as the
alternative), whatever language raised it. Only when no decisive line exists is the whole log
scanned, and the exit code alone is the fallback with lower confidence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from stackwarden.model.base import CrashCategory
from stackwarden.model.finding import CrashCause, DependencyFailure, LinkFailure

_PORT_IN_TEXT = re.compile(
    r"(?:(?:\d{1,3}\.){3}\d{1,3}|\[[0-9a-f:.]*\]|localhost|::1?|\*):(\d{1,5})\b|\bport\s+(\d{1,5})\b",
    re.IGNORECASE,
)
_MAX_LINE = 300
_CONTEXT_AFTER = 2


def ports_in_line(line: str) -> tuple[int, ...]:
    """Ports named in a log line (``127.0.0.1:5432``, ``[::1]:6379``, ``port 2000``)."""
    found = (int(m.group(1) or m.group(2)) for m in _PORT_IN_TEXT.finditer(line))
    return tuple(p for p in found if 0 < p < 65536)


# ------------------------------------------------------------------------ the decisive line
@dataclass(frozen=True)
class Decisive:
    """The line that says what happened, where it sits, and the lines shown with it."""

    family: str
    index: int
    text: str
    shown: tuple[int, ...]
    related: tuple[int, ...] = ()
    """Other lines that belong to the same failure (a chained traceback's exceptions)."""


def _last(lines: Sequence[str], pattern: re.Pattern[str], start: int = 0) -> int | None:
    return next((i for i in range(len(lines) - 1, start - 1, -1) if pattern.search(lines[i])), None)


def _after(lines: Sequence[str], index: int, count: int = _CONTEXT_AFTER, *, skip_blank: bool = True) -> list[int]:
    """Up to ``count`` non-empty lines after ``index``: the short context that follows."""
    out: list[int] = []
    for i in range(index + 1, len(lines)):
        if len(out) >= count:
            break
        if lines[i].strip():
            out.append(i)
        elif not skip_blank:
            break
    return out


_TRACEBACK = re.compile(r"^Traceback \(most recent call last\):")
_CHAIN = re.compile(r"^(During handling of the above exception|The above exception was the direct cause)")
_PY_FRAME = re.compile(r'^\s+File "')


def _python(lines: Sequence[str]) -> Decisive | None:
    """The last traceback's final exception line, with the frame (and code line) before it."""
    start = _last(lines, _TRACEBACK)
    if start is None:
        return None
    exc = next((i for i in range(start + 1, len(lines)) if lines[i].strip() and not lines[i][0].isspace()), None)
    if exc is None:
        return None
    frame = next((i for i in range(exc - 1, start, -1) if _PY_FRAME.match(lines[i])), None)
    shown = [] if frame is None else [i for i in (frame, frame + 1) if i < exc and lines[i].strip()]
    # the exceptions of the chain that led here (the root cause is often the first one)
    related = []
    cursor = start
    while True:
        chain = next((i for i in range(cursor - 1, -1, -1) if lines[i].strip()), None)
        if chain is None or not _CHAIN.match(lines[chain]):
            break
        previous = next((i for i in range(chain - 1, -1, -1) if _TRACEBACK.match(lines[i])), None)
        if previous is None:
            break
        first = next((i for i in range(previous + 1, chain) if lines[i].strip() and not lines[i][0].isspace()), None)
        if first is not None:
            related.append(first)
        cursor = previous
    return Decisive("python", exc, lines[exc].strip(), (*shown, exc, *_after(lines, exc)), tuple(related))


_RUST_PANIC = re.compile(r"panicked at")


def _rust(lines: Sequence[str]) -> Decisive | None:
    """A panic's message and location; Rust >= 1.73 prints the message on the next line."""
    index = _last(lines, _RUST_PANIC)
    if index is None:
        return None
    line = lines[index].rstrip()
    if line.endswith(":") and index + 1 < len(lines) and lines[index + 1].strip():
        text = f"{line} {lines[index + 1].strip()}"
        return Decisive("rust", index, text, (index, index + 1, *_after(lines, index + 1, 1)))
    return Decisive("rust", index, line.strip(), (index, *_after(lines, index, 1)))


_GO_PANIC = re.compile(r"^(panic: |fatal error: )")


def _go(lines: Sequence[str]) -> Decisive | None:
    """``panic: ...``/``fatal error: ...`` and the first frames of the panicking goroutine."""
    index = _last(lines, _GO_PANIC)
    if index is None:
        return None
    return Decisive("go", index, lines[index].strip(), (index, *_after(lines, index, 3)))


_JAVA_CAUSED = re.compile(r"^\s*Caused by: ")
_JAVA_THREAD = re.compile(r'^Exception in thread "[^"]*" ')
_SPRING_REPORT = re.compile(r"^APPLICATION FAILED TO START")
_JAVA_HEADER = re.compile(
    r"^(?:Caused by: |Exception in thread \"[^\"]*\" )?(?:[a-z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error)\b"
)


def _java(lines: Sequence[str]) -> Decisive | None:
    """Spring Boot's failure report (its Description), else the last ``Caused by:`` (the root
    cause), else ``Exception in thread``."""
    report = _last(lines, _SPRING_REPORT)
    if report is not None:
        description = next((i for i in range(report, len(lines)) if lines[i].strip() == "Description:"), None)
        if description is not None:
            body = _after(lines, description, 1)
            if body:
                first = body[0]
                action = next((i for i in range(first, len(lines)) if lines[i].strip() == "Action:"), None)
                shown = (first, *_after(lines, first, 1, skip_blank=False))
                if action is not None:
                    shown += tuple(_after(lines, action, 1))
                return Decisive("spring", first, lines[first].strip(), shown)
    caused = _last(lines, _JAVA_CAUSED)
    index = caused if caused is not None else _last(lines, _JAVA_THREAD)
    if index is None:
        return None
    # the exceptions it wrapped or that wrapped it (one may name the host and port)
    related = tuple(i for i, line in enumerate(lines) if i != index and _JAVA_HEADER.match(line))
    return Decisive("java", index, lines[index].strip(), (index, *_after(lines, index, 2)), related)


_DOTNET_TYPE = r"(?:[A-Za-z_][\w`]*\.)*[A-Za-z_][\w`]*(?:Exception|Error)\b"
_DOTNET_UNHANDLED = re.compile(r"^Unhandled [eE]xception\.\s+" + _DOTNET_TYPE)
_DOTNET_INNER = re.compile(r"^\s*---> " + _DOTNET_TYPE)


def _dotnet(lines: Sequence[str]) -> Decisive | None:
    """.NET's ``Unhandled exception. Type: message``, with the exceptions it wraps (`` ---> ``
    lines: ``System.Net.Sockets.SocketException (111): Connection refused``) as related lines."""
    index = _last(lines, _DOTNET_UNHANDLED)
    if index is None:
        return None
    inner = tuple(i for i in range(index + 1, len(lines)) if _DOTNET_INNER.match(lines[i]))
    return Decisive("dotnet", index, lines[index].strip(), (index, *inner[:2]), inner)


_PHP_FATAL = re.compile(r"^(?:\[[^\]]*\]\s+)?(?:PHP )?(?:Fatal error|Parse error):\s+\S")


def _php(lines: Sequence[str]) -> Decisive | None:
    """PHP's ``PHP Fatal error:  Uncaught PDOException: ... in /app/Db.php:14`` (its stack trace
    follows as ``#0 ...`` lines)."""
    index = _last(lines, _PHP_FATAL)
    if index is None:
        return None
    return Decisive("php", index, lines[index].strip(), (index,))


_RUBY_CLASS = r"(?:[A-Z]\w*::)*[A-Z]\w*"
_RUBY_RAISE = re.compile(
    r"^(?:\S+\.rb:\d+:in [`'][^']*'|" + _RUBY_CLASS + r"): .* \(" + _RUBY_CLASS + r"\)\s*$"
)  # ``file.rb:12:in `m': message (Class)``, or rake's ``Class: message (Class)``


def _ruby(lines: Sequence[str]) -> Decisive | None:
    """Ruby's uncaught exception, the last one printed: ``/app/models/order.rb:12:in `total':
    undefined method `sum' for nil (NoMethodError)`` (its ``from ...`` frames after it)."""
    index = _last(lines, _RUBY_RAISE)
    if index is None:
        return None
    return Decisive("ruby", index, lines[index].strip(), (index, *_after(lines, index, 1)))


_NODE_ERROR = re.compile(
    r"^(?:Uncaught )?(?:[A-Za-z_$][\w$]*\.)*(?:[A-Z]\w*)?(?:Error|Exception)(?: \[[A-Z_]+\])?: \S"
    r"|^FATAL ERROR: "
)


def _node(lines: Sequence[str]) -> Decisive | None:
    """Node's ``Error: ...`` (or ``TypeError: ...``, ``FATAL ERROR: ...``) line at column 0."""
    index = _last(lines, _NODE_ERROR)
    if index is None:
        return None
    return Decisive("error-line", index, lines[index].strip(), (index, *_after(lines, index, 2)))


_PG_BIND = re.compile(r"could not bind .* address", re.IGNORECASE)
_PG_LISTEN = re.compile(r"could not create listen socket", re.IGNORECASE)
_PG_FATAL = re.compile(r"\b(FATAL|PANIC):\s")


def _postgres(lines: Sequence[str]) -> Decisive | None:
    """``could not bind ...`` beats the generic ``FATAL: could not create any TCP/IP sockets``."""
    index = _last(lines, _PG_BIND)
    if index is None:
        index = _last(lines, _PG_LISTEN)
    if index is None:
        index = _last(lines, _PG_FATAL)
    if index is None:
        return None
    return Decisive("postgres", index, lines[index].strip(), (index, *_after(lines, index, 2)))


_REDIS = re.compile(
    r"Could not create server TCP listening socket|FATAL CONFIG FILE ERROR|Fatal error loading"
    r"|Can't handle RDB format|Bad file format reading|# Failed listening on port|Can't open the (log|append)"
)


def _redis(lines: Sequence[str]) -> Decisive | None:
    """Redis's own fatal lines (bind failure, config file error, unreadable RDB/AOF)."""
    index = next((i for i, line in enumerate(lines) if _REDIS.search(line)), None)
    if index is None:
        return None
    # the bind failure comes first, "Failed listening ... aborting" repeats it: keep the first
    last = _last(lines, _REDIS)
    if last is not None and "Failed listening" not in lines[last]:
        return Decisive("redis", last, lines[last].strip(), (last, *_after(lines, last, 3)))
    return Decisive("redis", index, lines[index].strip(), (index, *_after(lines, index, 3)))


_NGINX = re.compile(r"\[(emerg|alert|crit)\]")


def _nginx(lines: Sequence[str]) -> Decisive | None:
    """nginx's last ``[emerg]`` line (not its generic "still could not bind()")."""
    candidates = [i for i, line in enumerate(lines) if _NGINX.search(line) and "still could not bind" not in line]
    if not candidates:
        return None
    index = candidates[-1]
    # nginx prints an error to its log and again as "nginx: [emerg] ...": take the first of the run
    while index - 1 in candidates:
        index -= 1
    return Decisive("nginx", index, lines[index].strip(), (index, *_after(lines, index, 1)))


_GENERIC = re.compile(
    r"\b(fatal|error|exception|panic|failed|failure|refused|denied|cannot|can't|unable|invalid|missing|"
    r"not set|required|no such file|no such host|not known|out of memory|segmentation fault|killed|timed out|"
    r"timeout|bad address|no response|unreachable|could not resolve)\b",
    re.IGNORECASE,
)
_NOISE = re.compile(r"\b(0 errors?|no errors?|error_log|errors?=0)\b", re.IGNORECASE)


def _generic(lines: Sequence[str]) -> Decisive | None:
    """The last line that sounds like a failure, for programs with no known format; never a
    stack frame (``at Npgsql.Connect(NpgsqlTimeout timeout)`` only names a parameter)."""
    index = next(
        (
            i
            for i in range(len(lines) - 1, -1, -1)
            if _GENERIC.search(lines[i]) and not _NOISE.search(lines[i]) and not _FRAME.match(lines[i])
        ),
        None,
    )
    if index is None:
        return None
    return Decisive("generic", index, lines[index].strip(), (index, *_after(lines, index, 1)))


_WAIT_LINE = re.compile(
    r"\bwaiting\b.{0,40}\bfor\b|timeout occurred after waiting|waiting on dependencies|\s-\sno response\s*$"
    r"|is unavailable\W+sleeping|still waiting|\bwait(?:ing)? for (?:the )?(?:database|db|dependenc)",
    re.IGNORECASE,
)


def _wait(lines: Sequence[str]) -> Decisive | None:
    """A wait that never ends: the log ends while it still waits for a dependency
    (``wait-for-it.sh: waiting 15 seconds for db:5432``, ``db:5432 - no response``, a shell loop's
    ``waiting for orders-db...``), or a wait tool gave up (``timeout occurred after waiting``)."""
    last = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].strip()), None)
    if last is None or not _WAIT_LINE.search(lines[last]):
        return None
    return Decisive("wait", last, lines[last].strip(), (last,))


_FINDERS: tuple[Callable[[Sequence[str]], Decisive | None], ...] = (
    _java,
    _dotnet,
    _php,
    _ruby,
    _python,
    _rust,
    _go,
    _postgres,
    _redis,
    _nginx,
    _node,
    _wait,
    _generic,
)


def decisive_line(lines: Sequence[str]) -> Decisive | None:
    """The line that says what happened, by the most specific format that matches."""
    clean = [line.rstrip("\n") for line in lines]
    for finder in _FINDERS:
        found = finder(clean)
        if found is not None:
            return found
    return None


# ------------------------------------------------------------------------ dependency failures
_LINK_KINDS: tuple[tuple[LinkFailure, re.Pattern[str]], ...] = (
    (
        "unresolved",
        re.compile(
            r"Name or service not known|Temporary failure in name resolution|getaddrinfo (?:ENOTFOUND|EAI_AGAIN)"
            r"|no such host|could not translate host name|UnknownHostException|nodename nor servname"
            r"|Could not resolve host|Name does not resolve|failed to lookup address information|bad address '"
            r"|Unknown host|getaddrinfo failed|server misbehaving|NXDOMAIN|No address associated with hostname",
            re.IGNORECASE,
        ),
    ),
    (
        "refused",
        re.compile(
            r"connection refused|ECONNREFUSED|ConnectionRefused|Connection to \S+ refused|actively refused"
            r"|can't connect to remote host|Couldn't connect to server|Errno 111\b|Communications link failure"
            r"|No connection could be made|It was not possible to connect|UnableToConnect",
            re.IGNORECASE,
        ),
    ),
    ("reset", re.compile(r"connection reset|ECONNRESET|ConnectionResetError|Errno 104\b", re.IGNORECASE)),
    (
        "timeout",
        re.compile(
            r"connect(?:ion)? timed out|ETIMEDOUT|i/o timeout|SocketTimeoutException|ConnectTimeout|timeout expired"
            r"|Operation timed out|ServerSelectionTimeoutError|EHOSTUNREACH|No route to host|Connection timed out"
            r"|timed out (?:after \S+ )?(?:while )?(?:connecting|waiting for connection)",
            re.IGNORECASE,
        ),
    ),
    ("wait", _WAIT_LINE),
)
_ADDR = r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9._\-]*)"
_TARGETS: tuple[re.Pattern[str], ...] = (
    re.compile(r"lookup " + _ADDR + r"(?: on \S+)?: (?:no such host|server misbehaving|i/o timeout)"),
    re.compile(r"getaddrinfo (?:ENOTFOUND|EAI_AGAIN) " + _ADDR),
    re.compile(r"getaddrinfo for " + _ADDR + r" failed"),  # PHP's php_network_getaddresses
    re.compile(r"could not translate host name \"([^\"]+)\""),
    re.compile(r"UnknownHostException: " + _ADDR),
    re.compile(r"bad address '" + _ADDR + r"(?::(\d+))?'"),
    re.compile(r"Could not resolve host: " + _ADDR),
    re.compile(r"Error -?\d+ connecting to " + _ADDR + r":(\d+)"),
    re.compile(r"connection to server at \"([^\"]+)\"(?: \([^)]*\))?, port (\d+)"),
    re.compile(r"server (?:running )?on host \"([^\"]+)\"(?: \([^)]*\))?.*?port (\d+)", re.DOTALL),
    re.compile(r"Connection to " + _ADDR + r":(\d+) refused"),
    re.compile(r"HTTP(?:S)?ConnectionPool\(host='([^']+)', port=(\d+)\)"),
    re.compile(r"failed to connect to server \[" + _ADDR + r":(\d+)\]"),
    re.compile(r"connect to " + _ADDR + r" port (\d+)"),
    re.compile(r"Failed to connect to " + _ADDR + r" port (\d+)"),
    re.compile(r"dial tcp " + _ADDR + r":(\d+)"),
    # Node prints an IPv6 address unbracketed: ``ECONNREFUSED ::1:5432`` (the last colon is the port's)
    re.compile(r"(?:ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ECONNRESET) ([0-9A-Fa-f]*:[0-9A-Fa-f:.]*[0-9A-Fa-f]):(\d+)"),
    re.compile(r"(?:ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ECONNRESET) " + _ADDR + r":(\d+)"),
    re.compile(r"tcp://" + _ADDR + r":(\d+)"),
    re.compile(r"waiting (?:\d+ seconds )?for " + _ADDR + r":(\d+)", re.IGNORECASE),
    re.compile(r"^\s*" + _ADDR + r":(\d+) - no response"),
    re.compile(r"://(?:[^@/\s]*@)?" + _ADDR + r"(?::(\d+))?"),
    re.compile(r"(?:to|at|for|host) [\"'`]?" + _ADDR + r"[\"'`]?:(\d+)\b", re.IGNORECASE),
    re.compile(r"\b((?:\d{1,3}\.){3}\d{1,3}|[A-Za-z][A-Za-z0-9\-]*(?:\.[A-Za-z0-9\-]+)*):(\d{2,5})\b"),
)
_NOT_TARGETS = re.compile(r"^(?:\d+|https?|tcp|udp|[A-Z][a-z]+Error|Error|Caused|at|line|thread)$", re.IGNORECASE)
_SOURCE_FILE = re.compile(r"\.(?:java|kt|scala|py|rs|go|js|mjs|cjs|ts|rb|php|cs|c|cc|cpp|h)$", re.IGNORECASE)
_FRAME = re.compile(r"^\s*(?:at |File \"|\d+: |\S+\.go:\d+|from \S+:\d+:in )")


def _target_in(text: str) -> tuple[str, int | None] | None:
    """The host (and port) a failure line names, by the wording of the library that printed it;
    never the DNS server a lookup asked (``lookup db on 127.0.0.11:53``)."""
    if _FRAME.match(text):
        return None
    for pattern in _TARGETS:
        for match in pattern.finditer(text):
            host = match.group(1).strip("[]")
            if _NOT_TARGETS.match(host) or _SOURCE_FILE.search(host) or host.isdigit():
                continue
            port_text = match.group(2) if (match.lastindex or 0) >= 2 else None
            port = int(port_text) if port_text and port_text.isdigit() and 0 < int(port_text) < 65536 else None
            if port == 53 and " on " in text[max(0, match.start() - 4) : match.start()]:
                continue
            return host, port
    return None


_OWN_ADDRESS = re.compile(
    r"\blisten(?:s|ing)?\b|(?<!server )\brunning on\b|\bbound to\b|\bbind(?:ing)? (?:to|on)\b|\bserving (?:on|at)\b"
    r"|\bstarted (?:on|at)\b|\bListening at\b",
    re.IGNORECASE,
)
_CONNECTING = re.compile(r"\bconnect(?:s|ing|ion)?\b|\bdial(?:ing)?\b|\bupstream\b", re.IGNORECASE)


def names_a_dependency(line: str) -> bool:
    """A log line that may name the address a failure was about: a failure or a connection
    attempt, never the service's own listen banner (``Uvicorn running on http://0.0.0.0:8000``),
    a stack frame or a file position (``node:internal/process/promises:289``)."""
    if _OWN_ADDRESS.search(line) or _FRAME.match(line):
        return False
    return bool(_CONNECTING.search(line)) or any(pattern.search(line) for _, pattern in _LINK_KINDS)


def dependency_failure(texts: Sequence[str], context: Sequence[str] = ()) -> DependencyFailure | None:
    """What the failure says about a dependency (refused, reset, timed out, unresolved, waited
    for) and the address it names, from the decisive text first, then the lines around it, then
    ``context`` (the failure's own lines in log order) read as one text: libpq names the host on
    one line and the port on the next. Never from a listen banner (``Uvicorn running on
    http://0.0.0.0:8000``): that address is the service's own."""
    hit = next(((kind, t) for t in texts for kind, pattern in _LINK_KINDS if pattern.search(t)), None)
    if hit is None:
        return None
    kind, line = hit
    candidates = [t for t in texts if not _OWN_ADDRESS.search(t)]
    joined = " ".join(t.strip() for t in context if not _OWN_ADDRESS.search(t) and not _FRAME.match(t))
    target = (
        _target_in(line)
        or next((found for t in candidates if (found := _target_in(t)) is not None), None)
        or (_target_in(joined) if joined else None)
    )
    host, port = target if target is not None else (None, None)
    return DependencyFailure(kind=kind, host=host, port=port, line=_trim(line))


# ------------------------------------------------------------------------ classification
@dataclass(frozen=True)
class _Rule:
    """A pattern on the decisive text, what it means, and how sure a match makes us."""

    name: str
    pattern: re.Pattern[str]
    category: CrashCategory
    explanation: str
    confidence: float
    alternative: CrashCategory | None = None


_SPAWN_LOCAL = _Rule(
    "rust-panic-spawn-local",
    re.compile(r"spawn_local.*(LocalSet|outside)|LocalSet.*spawn_local", re.IGNORECASE),
    CrashCategory.CODE_ISSUE,
    "Rust panic: `spawn_local` called outside a `tokio::task::LocalSet`; a code bug that no deployment switch fixes.",
    0.95,
)
_ADDRESS_IN_USE = _Rule(
    "address-in-use",
    re.compile(
        r"address already in use|EADDRINUSE|port is already allocated|bind.*in use|could not bind|already in use"
        r"|Could not create server TCP listening socket|bind\(\) to \S+ failed",
        re.IGNORECASE,
    ),
    CrashCategory.DEPLOYMENT_CONFLICT,
    "The process could not bind its port because another owner holds it.",
    0.9,
)
_REFUSED = re.compile(
    r"connection refused|ECONNREFUSED|could not connect to server|Connection reset by peer|connection to \S+ refused",
    re.IGNORECASE,
)
_OOM = _Rule(
    "out-of-memory",
    re.compile(
        r"out of memory|OOMKilled|Cannot allocate memory|MemoryError|OutOfMemoryError|heap limit"
        r"|Allowed memory size of \d+ bytes exhausted"
        r"|memory allocation of \d+ bytes failed",
        re.IGNORECASE,
    ),
    CrashCategory.RESOURCES,
    "The process ran out of memory.",
    0.85,
)
_NAME = r"([A-Z][A-Z0-9]*_[A-Z0-9_]+|[A-Z]{3,}[A-Z0-9]*)"  # an environment variable: DATABASE_URL, PORT
_SETTING_PATTERNS = (
    re.compile(r"KeyError: '" + _NAME + r"'"),
    re.compile(r"(?i:set the) " + _NAME + r" (?i:environment variable|env var)"),
    re.compile(r"(?i:must|please) (?i:specify|set|provide) " + _NAME),
    re.compile(r"(?i:environment variables?|env vars?):? [`'\"]?([A-Za-z_][A-Za-z0-9_]*)"),
    re.compile(
        r"[`'\"]?\b" + _NAME + r"\b[`'\"]? (?i:environment variable |env var )?"
        r"(?i:is |was )?(?i:not set|must be set|is required|required|missing|not defined|undefined|not present|"
        r"not found in environment)"
    ),
    re.compile(r"Could not resolve placeholder '([\w.\-]+)'"),
    re.compile(r"required key ([A-Za-z_]\w*) missing value"),
    re.compile(
        r"(?i:missing (?:required )?(?:config(?:uration)? )?(?:key|setting|field|option|property|variable)s?):? "
        r"[`'\"]?([\w.\-]+)"
    ),
    re.compile(r"^([a-z_][a-z0-9_.]*)\s*$"),  # pydantic-settings: the field's name, "Field required" after it
)
_MISSING_SETTING = _Rule(
    "missing-setting",
    re.compile(
        r"KeyError: '" + _NAME + r"'|(?i:environment variables?\b(?! to display))|(?i:\benv var)|\bNotPresent\b|"
        r"\b" + _NAME + r"\b[`'\"]? (?i:is |was )?(?i:not set|must be set|is required|missing|not defined|undefined)|"
        r"(?i:\b(?:is not set|must be set|not configured|is not specified|must specify)\b)|"
        r"Could not resolve placeholder|Failed to bind properties|"
        r"attribute is not specified|required key \S+ missing value|Field required \[type=missing|"
        r"(?i:missing (?:required )?(?:config(?:uration)? )?(?:key|setting|field|option|property|variable))|"
        r"ImproperlyConfigured|(?i:no configuration (?:file|found))|"
        r"(?i:config(?:uration)? (?:key|value) .*(?:missing|not found))"
    ),
    CrashCategory.CONFIGURATION,
    "A required setting (environment variable or config key) is missing.",
    0.85,
    alternative=CrashCategory.CODE_ISSUE,
)
_CONFIGURATION = _Rule(
    "configuration",
    re.compile(
        r"no such file or directory|permission denied|wrong ownership|invalid config|configuration error|"
        r"missing required|exec format error|executable file not found|unknown directive|"
        r"host not found in upstream|FATAL CONFIG FILE ERROR|Bad directive|"
        r"Cannot find module|ModuleNotFoundError|No module named|cannot load such file|"
        r"invalid value for|unknown (flag|option)|"
        r"could not open (file|configuration)|certificate|x509|role \"[^\"]+\" does not exist",
        re.IGNORECASE,
    ),
    CrashCategory.CONFIGURATION,
    "The process could not start with its configuration (file, setting, permission or dependency).",
    0.75,
    alternative=CrashCategory.CODE_ISSUE,
)
_CREDENTIALS = _Rule(
    "credentials-rejected",
    re.compile(
        r"\bNOAUTH\b|\bWRONGPASS\b|invalid username-password pair|AuthenticationError|Authentication failed|"
        r"password authentication failed|Access denied for user|ACCESS_REFUSED|Login failed for user",
        re.IGNORECASE,
    ),
    CrashCategory.CONFIGURATION,
    "The dependency answered and refused the credentials it was sent (password, user): the client and the "
    "dependency disagree on them.",
    0.85,
)
_UNRESOLVED = _Rule(
    "dependency-name-unresolved",
    next(p for kind, p in _LINK_KINDS if kind == "unresolved"),
    CrashCategory.CONFIGURATION,
    "A host name it connects to does not resolve: the dependency is not running on the service's "
    "network (no container or Service answers to that name), or the name is wrong.",
    0.8,
)
_UNREACHABLE = _Rule(
    "dependency-unreachable",
    re.compile(
        "|".join(p.pattern for kind, p in _LINK_KINDS if kind in {"refused", "reset", "timeout"}), re.IGNORECASE
    ),
    CrashCategory.CONFIGURATION,
    "It could not reach a dependency (the connection was refused, reset or timed out): the dependency is down, or "
    "the address it is configured with is wrong.",
    0.75,
)
_WAITING = _Rule(
    "dependency-wait",
    _WAIT_LINE,
    CrashCategory.CONFIGURATION,
    "It waits for a dependency that never answers: the dependency is down, or the address it waits for is wrong.",
    0.7,
)
_DEPENDENCY_SIGNATURES = frozenset(
    {"connection-refused-profile-port", "dependency-name-unresolved", "dependency-unreachable", "dependency-wait"}
)
_SEGFAULT = _Rule(
    "segfault",
    re.compile(r"segmentation fault|SIGSEGV", re.IGNORECASE),
    CrashCategory.CODE_ISSUE,
    "Segmentation fault: memory-safety bug in the program or a native library.",
    0.8,
)

_FAMILY_DEFAULT: dict[str, tuple[str, CrashCategory, str, float]] = {
    "python": (
        "python-traceback",
        CrashCategory.CODE_ISSUE,
        "Python traceback: an unhandled exception ended the process.",
        0.7,
    ),
    "rust": (
        "rust-panic",
        CrashCategory.CODE_ISSUE,
        "Rust panic: the program aborted on a bug or an unhandled error.",
        0.85,
    ),
    "go": ("go-panic", CrashCategory.CODE_ISSUE, "Go panic: the program aborted on a bug or an unhandled error.", 0.85),
    "java": (
        "java-exception",
        CrashCategory.CODE_ISSUE,
        "Java exception: an uncaught exception ended the program.",
        0.7,
    ),
    "spring": (
        "spring-startup-failure",
        CrashCategory.CONFIGURATION,
        "Spring Boot could not start the application.",
        0.7,
    ),
    "dotnet": (
        "dotnet-exception",
        CrashCategory.CODE_ISSUE,
        ".NET exception: an unhandled exception ended the program.",
        0.7,
    ),
    "ruby": (
        "ruby-exception",
        CrashCategory.CODE_ISSUE,
        "Ruby exception: an uncaught exception ended the program.",
        0.7,
    ),
    "php": (
        "php-fatal",
        CrashCategory.CODE_ISSUE,
        "PHP fatal error: an uncaught exception or error ended the script.",
        0.7,
    ),
    "error-line": ("uncaught-error", CrashCategory.CODE_ISSUE, "An uncaught error ended the process.", 0.65),
    "postgres": ("postgres-fatal", CrashCategory.CONFIGURATION, "PostgreSQL refused to start.", 0.7),
    "redis": ("redis-fatal", CrashCategory.CONFIGURATION, "Redis refused to start.", 0.7),
    "nginx": ("nginx-emerg", CrashCategory.CONFIGURATION, "nginx refused to start (an [emerg] error).", 0.7),
}

_EXIT_CODES: dict[int, tuple[str, CrashCategory, str, float]] = {
    101: ("exit-101", CrashCategory.CODE_ISSUE, "Exit code 101 is how a Rust program ends on a panic.", 0.6),
    137: (
        "exit-137",
        CrashCategory.RESOURCES,
        "Exit code 137 (SIGKILL): usually the OOM killer or a memory limit.",
        0.6,
    ),
    139: ("exit-139", CrashCategory.CODE_ISSUE, "Exit code 139 (SIGSEGV): a segmentation fault.", 0.7),
    134: ("exit-134", CrashCategory.CODE_ISSUE, "Exit code 134 (SIGABRT): the program aborted itself.", 0.5),
    126: ("exit-126", CrashCategory.CONFIGURATION, "Exit code 126: the command is not executable.", 0.7),
    127: ("exit-127", CrashCategory.CONFIGURATION, "Exit code 127: the command was not found.", 0.7),
    78: ("exit-78", CrashCategory.CONFIGURATION, "Exit code 78 (EX_CONFIG): a configuration error.", 0.6),
}


def _trim(line: str) -> str:
    return line.rstrip()[:_MAX_LINE]


def _evidence(lines: Sequence[str], indices: Iterable[int]) -> tuple[str, ...]:
    """The chosen lines in log order, trimmed and each once (crash loops repeat themselves)."""
    return tuple(dict.fromkeys(_trim(lines[i]) for i in sorted(set(indices)) if lines[i].strip()))


def _setting_name(texts: Sequence[str]) -> str | None:
    """The missing variable or key the text names (``DATABASE_URL``, ``app.jwt.secret``)."""
    for i, text in enumerate(texts):
        for pattern in _SETTING_PATTERNS[:-1]:
            match = pattern.search(text)
            if match and match.group(1).lower() not in {"the", "is", "a", "an", "variable", "required", "not"}:
                return match.group(1)
        if "Field required" in text and i > 0:  # pydantic: the field name is on the line before
            match = _SETTING_PATTERNS[-1].match(texts[i - 1])
            if match:
                return match.group(1)
    return None


def _refused_port(texts: Sequence[str], ports: frozenset[int]) -> int | None:
    """A profile port that the text says refused a connection."""
    for text in texts:
        if _REFUSED.search(text):
            port = next((p for p in ports_in_line(text) if p in ports), None)
            if port is not None:
                return port
    joined = " ".join(texts)
    if _REFUSED.search(joined):
        return next((p for p in ports_in_line(joined) if p in ports), None)
    return None


def _agrees(exit_code: int | None, category: CrashCategory) -> bool:
    return exit_code is not None and exit_code in _EXIT_CODES and _EXIT_CODES[exit_code][1] is category


def _cause(
    rule: _Rule | tuple[str, CrashCategory, str, float],
    exit_code: int | None,
    evidence: tuple[str, ...],
    decisive: str | None,
    **extra: object,
) -> CrashCause:
    if isinstance(rule, _Rule):
        name, category, explanation, confidence, alternative = (
            rule.name,
            rule.category,
            rule.explanation,
            rule.confidence,
            rule.alternative,
        )
    else:
        (name, category, explanation, confidence), alternative = rule, None
    if _agrees(exit_code, category):
        confidence = min(1.0, confidence + 0.04)
    fields: dict[str, object] = {
        "category": category,
        "signature": name,
        "explanation": explanation,
        "confidence": round(confidence, 2),
        "evidence": evidence,
        "exit_code": exit_code,
        "decisive_line": _trim(decisive) if decisive else None,
        "alternative": alternative,
    }
    fields.update(extra)
    return CrashCause.model_validate(fields)


_NOTE = re.compile(r"RUST_BACKTRACE|^\s*\.\.\. \d+ (common )?frames omitted")


def _classify_decisive(
    found: Decisive, lines: Sequence[str], exit_code: int | None, ports: frozenset[int]
) -> CrashCause | None:
    """Classify from the decisive line and its context; None when it says nothing we know."""
    shown = _evidence(lines, found.shown)
    texts = [
        found.text,
        *(lines[i] for i in found.shown if i != found.index and not _NOTE.search(lines[i])),
        *(lines[i] for i in found.related),
    ]
    joined = "\n".join(texts)
    if _SPAWN_LOCAL.pattern.search(joined):
        return _cause(_SPAWN_LOCAL, exit_code, shown, found.text)
    if _ADDRESS_IN_USE.pattern.search(joined):
        in_text = [p for t in texts for p in ports_in_line(t)]
        port = next((p for p in in_text if p in ports), in_text[0] if in_text else None)
        return _cause(_ADDRESS_IN_USE, exit_code, shown, found.text, port=port)
    refused = _refused_port(texts, ports)
    if refused is not None:
        rule = (
            "connection-refused-profile-port",
            CrashCategory.DEPLOYMENT_CONFLICT,
            "A dependency on a profile port refused the connection.",
            0.85,
        )
        return _cause(rule, exit_code, shown, found.text, port=refused)
    for named in (_OOM, _CREDENTIALS, _MISSING_SETTING, _UNRESOLVED, _UNREACHABLE, _WAITING, _CONFIGURATION, _SEGFAULT):
        if named.pattern.search(joined):
            setting = _setting_name(texts) if named is _MISSING_SETTING else None
            return _cause(named, exit_code, shown, found.text, setting=setting)
    default = _FAMILY_DEFAULT.get(found.family)
    if default is not None:
        return _cause(default, exit_code, shown, found.text)
    return None


def _scan(lines: Sequence[str], exit_code: int | None, ports: frozenset[int]) -> CrashCause | None:
    """No decisive line classified: the strongest deployment signals anywhere in the log, then
    the last failed connection or lookup (Ecto's ``tcp connect (orders-db:5432): connection
    refused`` logged before Elixir's generic ``Application app exited`` report)."""
    found = _scan_deployment(lines, exit_code, ports)
    if found is not None:
        return found
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if _FRAME.match(line) or _OWN_ADDRESS.search(line):
            continue
        for named in (_UNRESOLVED, _UNREACHABLE):
            if named.pattern.search(line):
                return _cause(named, exit_code, _evidence(lines, [index, *_after(lines, index, 1)]), line)
    return None


def _scan_deployment(lines: Sequence[str], exit_code: int | None, ports: frozenset[int]) -> CrashCause | None:
    """A bind failure, or a refusal on a profile port, anywhere in the log (the last one)."""
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if _ADDRESS_IN_USE.pattern.search(line):
            in_line = ports_in_line(line)
            port = next((p for p in in_line if p in ports), in_line[0] if in_line else None)
            return _cause(_ADDRESS_IN_USE, exit_code, _evidence(lines, [index]), line, port=port)
        port = _refused_port([line], ports)
        if port is not None:
            rule = (
                "connection-refused-profile-port",
                CrashCategory.DEPLOYMENT_CONFLICT,
                "A dependency on a profile port refused the connection.",
                0.8,
            )
            return _cause(rule, exit_code, _evidence(lines, [index]), line, port=port)
    return None


def _with_dependency(cause: CrashCause, lines: Sequence[str]) -> CrashCause:
    """A cause that is about a dependency carries what the log says of it: how the connection
    failed and the address, from the decisive line and its context first, then the most recent
    lines that are failures or connection attempts themselves (``names_a_dependency``)."""
    if cause.signature not in _DEPENDENCY_SIGNATURES:
        return cause
    elsewhere = (line for line in reversed(lines) if names_a_dependency(line))
    texts = [cause.decisive_line or "", *cause.evidence, *elsewhere]
    failure = dependency_failure([t for t in texts if t], context=cause.evidence)
    return cause.model_copy(update={"dependency": failure})


def classify_crash(
    exit_code: int | None,
    log_lines: Sequence[str],
    profile_ports: Iterable[int] = (),
    oom_killed: bool = False,
) -> CrashCause:
    """Classify one crash loop.

    ``profile_ports`` turns "connection refused" into a deployment conflict only when the
    refused port is one the profile declares; a refusal to some other port is not ours to fix.
    """
    ports = frozenset(profile_ports)
    lines = [line for line in log_lines if line is not None]
    found = decisive_line(lines)
    if oom_killed:
        # what it printed last is worth showing even when no line sounds like a failure
        tail = found.shown if found else range(max(0, len(lines) - 2), len(lines))
        evidence = ("State.OOMKilled=true", *_evidence(lines, tail))
        return CrashCause(
            category=CrashCategory.RESOURCES,
            signature="oom-killed",
            explanation="The engine reports the process was OOM-killed (it exceeded its memory limit).",
            confidence=0.95,
            evidence=evidence,
            exit_code=exit_code,
            decisive_line=_trim(found.text) if found else (evidence[-1] if len(evidence) > 1 else None),
        )
    cause = _classify_decisive(found, lines, exit_code, ports) if found is not None else None
    if cause is None:
        cause = _scan(lines, exit_code, ports)
    if cause is not None:
        return _with_dependency(cause, lines)
    shown = _evidence(lines, found.shown) if found else tuple(_trim(line) for line in lines[-3:] if line.strip())
    decisive = found.text if found else None
    if exit_code is not None and exit_code in _EXIT_CODES:
        name, category, explanation, confidence = _EXIT_CODES[exit_code]
        return _cause(
            (name, category, explanation + " No log line confirms it.", confidence), exit_code, shown, decisive
        )
    return _cause(
        (
            "unknown",
            CrashCategory.UNKNOWN,
            "Neither the exit code nor the logs match a known cause; read the logs.",
            0.2,
        ),
        exit_code,
        shown,
        decisive,
    )
