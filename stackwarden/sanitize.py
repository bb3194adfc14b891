"""The one sanitizer: every string that leaves the process passes through here.

Observed text (process names and command lines, container names and labels, log lines, error
messages) is written by whoever controls the thing observed; profile text is written by whoever
wrote the profile. Neither may reach a terminal, a report, a Prefect artifact, a log record or an
event as anything but inert text, and neither may carry a secret out. So, in this order:

1. ``strip_controls``: ANSI CSI/OSC escape sequences and every other control character
   (C0, DEL, C1, bidi overrides) are removed; a terminal never sees a raw control byte.
2. ``redact``: secrets are masked (after 1, so ``pass\\x1b[0mword=x`` is caught).
3. escaping for the way out: ``md_inline``/``md_cell``/``md_code``/``md_fence`` for markdown,
   ``escape_rich`` for rich markup. JSON needs no escaping beyond 1 and 2 (``deep``).
4. ``cap_lines``: no line is longer than ``LINE_MAX``; a cut is marked visibly.

The module is pure (no I/O), so every renderer and every task can use it.
"""

from __future__ import annotations

import logging
import re
import shlex
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

MASK = "***"
LINE_MAX = 2000  # a whole output line (a table row, a list item, a command)
FIELD_MAX = 500  # one observed value inside a line

# --- 1. control characters --------------------------------------------------------------------

_ANSI = re.compile(
    r"""
      \x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?   # OSC ... BEL | ST   (titles, hyperlinks)
    | \x9d[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?     # 8-bit OSC
    | \x1b[P^_X][^\x1b\x9c]*(?:\x1b\\|\x9c)?        # DCS, PM, APC, SOS strings
    | \x1b\[[0-?]*[ -/]*[@-~]?                      # CSI (colours, cursor moves, clears)
    | \x9b[0-?]*[ -/]*[@-~]?                        # 8-bit CSI
    | \x1b[ -/]*[0-~]?                              # any other escape (charset, reset ...)
    """,
    re.VERBOSE,
)
# C0 except \t and \n, DEL, C1, and the Unicode bidi/line controls that reorder what a reader sees.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\ufeff]")


def valid_text(text: str) -> str:
    """Text that can be encoded as UTF-8: a byte that was not UTF-8 (psutil and ``os`` hand such
    bytes over as lone surrogates, e.g. a process started with a Latin-1 argument) becomes
    U+FFFD. Without this, writing the report, sending a log record or an artifact fails on it."""
    if not any("\ud800" <= ch <= "\udfff" for ch in text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace").encode("utf-8", "replace").decode()


def strip_controls(text: str) -> str:
    """Remove escape sequences and control characters; keep newlines, turn tabs into spaces.

    Sequences go first (whole), so their printable tails (``[31m``) do not survive either.
    ``\\r`` is removed: alone it lets a line overwrite itself on a terminal. Bytes that were not
    UTF-8 become U+FFFD (``valid_text``).
    """
    return _CONTROLS.sub("", _ANSI.sub("", valid_text(text))).replace("\t", " ")


# --- 2. secrets ---------------------------------------------------------------------------------

# Names that mark a value as secret, in any case: password/passwd/pwd/pass, secret, token,
# api key, access/private/secret key, credentials, redis' requirepass/masterauth, auth tokens.
_WORDS = (
    r"(?:pass(?:word|wd|phrase)?(?![a-z])|pwd|secret|token|api[-_.]?key|access[-_.]?key|private[-_.]?key|"
    r"secret[-_.]?key|client[-_.]?secret|credentials?|requirepass|masterauth|auth[-_.]?token|"
    r"session[-_.]?key|signing[-_.]?key|encryption[-_.]?key|master[-_.]?key|account[-_.]?key|"
    r"shared[-_.]?access[-_.]?key|cookie|dsn)"
)
# A key: word characters, with dots and dashes before the secret word (``--elasticsearch.password``,
# ``spring.datasource.password``) but not after it (``secret_manager.rs:42`` is a file, not a key).
_KEY = rf"[\w.-]{{0,64}}{_WORDS}[\w-]{{0,64}}"  # bounded: a long word costs linear time
_SHELL_QUOTED = r"'\"'\"'(?:(?!'\"'\"').){0,512}'\"'\"'"  # 'X' inside a single-quoted shell word
_QUOTED_OR_BARE = (  # shell-quoted, double-quoted, single-quoted, an unclosed quote, or bare
    rf"(?:{_SHELL_QUOTED}|\"(?:[^\"\\]|\\.)*\"|'[^']*'|[\"'][^\s,;&\"'}}\])]+|[^\s,;&\"'}}\])]+)"
)
# key=value, key: value, key:value, "key": "value", key => value
_KEY_VALUE = re.compile(
    rf"(?P<key>(?<![\w.-]){_KEY}[\"']?\s*(?:=>|:=|=|:)\s*)(?P<value>{_QUOTED_OR_BARE})",
    re.IGNORECASE,
)
# --flag value (a dashed or dotted flag followed by a separate value), as in command lines
_FLAG_SPACE = re.compile(
    rf"(?P<key>(?<![\w.-])--?{_KEY}\s+)(?P<value>{_SHELL_QUOTED}|(?!-)\"(?:[^\"\\]|\\.)*\"|(?!-)'[^']*'|(?!-)\S+)",
    re.IGNORECASE,
)
# A scheme starts where a token starts (not at every "." of a long dotted word: that is quadratic).
_URL_USERINFO = re.compile(
    r"(?P<scheme>(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{0,30}://)(?P<userinfo>[^/@\s:]{0,256}:[^\s/]{0,512}|[^/@\s:]{1,512})@",
    re.I,
)
_AUTH_HEADER = re.compile(
    r"(?P<key>\b(?:authorization|proxy-authorization|x-api-key|x-auth-token)\s*[:=]\s*)(?P<value>[^\r\n]+)",
    re.IGNORECASE,
)
_AUTH_SCHEME = re.compile(r"(?P<key>\b(?:Bearer|Basic|Token|Negotiate)\s+)(?P<value>[\w.~+/=-]{8,})", re.I)
# HTTP Digest credentials look like ``Digest username="bob", realm=..., response="..."``
_DIGEST_AUTH = re.compile(r"(?P<key>\bDigest\s+)(?P<value>(?:username|realm|nonce|response)\s*=[^\r\n]+)", re.I)
_JWT = re.compile(r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*")
_PEM_KINDS = r"[A-Z0-9 ]*(?:PRIVATE KEY|SECRET|PGP PRIVATE KEY BLOCK|ENCRYPTED PRIVATE KEY)[A-Z0-9 ]*"
# the body: base64 chunks (a line of a PEM is 64 characters; a word of prose is not 16 base64
# characters, nor ends with '='), and the Proc-Type/DEK-Info headers of an encrypted key
_PEM_BODY = (
    r"(?:\s*(?:[A-Za-z0-9+/]{16,}={0,2}|[A-Za-z0-9+/]{1,15}={1,2}"
    r"|(?:Proc-Type|DEK-Info|Version|Comment):[^\n]*))*"
)
_PEM = re.compile(
    rf"-----BEGIN (?P<kind>{_PEM_KINDS})-----(?:.{{0,20000}}?-----END [A-Z0-9 ]*-----|{_PEM_BODY})",
    re.DOTALL,
)
# Token shapes that are secret whatever they are called.
_TOKEN_SHAPES = re.compile(
    r"""\b(?:
        (?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}   # AWS access key id
      | gh[pousr]_[A-Za-z0-9]{30,}                                        # GitHub tokens
      | github_pat_[A-Za-z0-9_]{30,}
      | glpat-[A-Za-z0-9_-]{20,}                                          # GitLab
      | xox[abposr]-[A-Za-z0-9-]{10,}                                     # Slack
      | (?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}                       # Stripe
      | sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}                              # OpenAI / Anthropic style
      | AIza[0-9A-Za-z_-]{35}                                             # Google API key
      | npm_[A-Za-z0-9]{36}                                               # npm
      | SG\.[\w-]{16,}\.[\w-]{16,}                                        # SendGrid
      | hv[sb]\.[A-Za-z0-9_-]{20,}                                        # Vault
    )""",
    re.VERBOSE,
)
# Command-line tools whose password flag is short: redis-cli -a X, mysql -pX.
_CLI_PASSWORD = re.compile(
    r"(?P<key>\b(?:redis-cli|keydb-cli|valkey-cli)\b[^\n]{0,200}?\s(?:-a|--pass)\s+)(?P<value>[^\s]+)"
    r"|(?P<key2>\b(?:mysql|mysqladmin|mysqldump|mariadb)\b[^\n]{0,200}?\s-p)(?P<value2>[^\s-][^\s]*)"
    r"|(?P<key3>\b(?:docker|podman|nerdctl|helm)\b[^\n]{0,60}?\blogin\b[^\n]{0,200}?\s-p\s+)(?P<value3>[^\s]+)"
    r"|(?P<key4>\bsshpass\b[^\n]{0,60}?\s-p\s*)(?P<value4>[^\s]+)"
)
# curl/wget style ``-u user:password`` (and --user, --proxy-user): the user stays, the password goes
_USER_PASSWORD = re.compile(
    r"(?P<key>(?<![\w-])(?:-u|-U|--user|--proxy-user|--http-user)[\s=]+[\"']?[^\s:\"']{1,256}:)(?P<value>[^\s\"']+)"
)
# ``... set <secret-named key> VALUE`` (aws configure set, redis CONFIG SET, git config ...)
_SET_KEY_VALUE = re.compile(rf"(?P<key>\bset\s+{_KEY}\s+)(?P<value>\S+)", re.IGNORECASE)
# Slack incoming webhooks: the URL is the credential
_SLACK_WEBHOOK = re.compile(r"(?P<key>https://hooks\.slack\.com/(?:services|workflows|triggers)/)(?P<value>[\w/-]{8,})")
_BARE_FLAG = re.compile(rf"^--?{_KEY}$", re.IGNORECASE)
# One argument that is only a key (``password:``, ``"token":``, ``{'secret':``): the next is its value.
_KEY_ONLY = re.compile(rf"^[\"'{{(\[]*{_KEY}[\"']?\s*(?:=>|:=|=|:)$", re.IGNORECASE)
_AUTH_KEY_ONLY = re.compile(r"^(?:proxy-)?authorization:?$|^x-api-key:?$|^x-auth-token:?$", re.IGNORECASE)
_AUTH_SCHEME_ONLY = re.compile(r"^(?:Bearer|Basic|Token|Negotiate)$", re.IGNORECASE)
_SHORT_SECRET_FLAGS = frozenset({"-a", "-p", "--pass"})  # redis-cli -a, mysql -p, sshpass -p, docker login -p
_SHORT_FLAG_TOOLS = ("redis-cli", "mysql", "mysqladmin", "mariadb", "keydb-cli", "sshpass")
_LOGIN_TOOLS = ("docker", "podman", "nerdctl", "helm")  # their -p is a password only after ``login``
_USER_FLAGS = frozenset({"-u", "-U", "--user", "--proxy-user", "--http-user"})  # curl -u user:password
# one argument that is a whole assignment (``PGPASSWORD=a b``, ``--db-password=x y``): all of its value goes
_WHOLE_ASSIGNMENT = re.compile(rf"^(?P<key>(?:--?)?{_KEY}\s*=)(?P<value>.+)$", re.IGNORECASE | re.DOTALL)


def _mask_value(match: re.Match[str]) -> str:
    """Keep the key (it says what was hidden), mask the value, keep a quote style."""
    value = match.group("value")
    if value == MASK or value.strip("\"'") == MASK:
        return match.group(0)
    quote = value[0] if value[:1] in {'"', "'"} and len(value) > 1 and value[-1] == value[0] else ""
    return f"{match.group('key')}{quote}{MASK}{quote}"


def _mask_userinfo(match: re.Match[str]) -> str:
    user, sep, _ = match.group("userinfo").partition(":")
    return f"{match.group('scheme')}{user}:{MASK}@" if sep else f"{match.group('scheme')}{MASK}@"


def _mask_pem(match: re.Match[str]) -> str:
    """The key's kind stays; every line of the block becomes the mask (the line count is kept, so
    text redacted as a whole can be split into its lines again: ``redact_lines``)."""
    return f"-----BEGIN {match.group('kind')}----- {MASK}" + f"\n{MASK}" * match.group(0).count("\n")


def _mask_cli(match: re.Match[str]) -> str:
    key = match.group("key") or match.group("key2") or match.group("key3") or match.group("key4")
    return f"{key}{MASK}"


REDACT_SPAN = 4 * LINE_MAX  # no way out shows more of one line than this


def _bounded(text: str) -> str:
    """Lines longer than ``REDACT_SPAN`` are cut first (nothing past it is ever shown, and a
    secret cut there is past what is shown too): a hostile 100 kB log line costs little."""
    if len(text) <= REDACT_SPAN:
        return text
    return "\n".join(cap(line, REDACT_SPAN) for line in text.split("\n"))


def redact(text: str) -> str:
    """Mask every secret shape in free text. Run after ``strip_controls``."""
    text = _CLI_PASSWORD.sub(_mask_cli, _bounded(text))
    text = _PEM.sub(_mask_pem, text)
    text = _SLACK_WEBHOOK.sub(_mask_value, text)
    text = _URL_USERINFO.sub(_mask_userinfo, text)
    text = _USER_PASSWORD.sub(_mask_value, text)
    text = _AUTH_HEADER.sub(_mask_value, text)
    text = _DIGEST_AUTH.sub(_mask_value, text)
    text = _AUTH_SCHEME.sub(_mask_value, text)
    text = _SET_KEY_VALUE.sub(_mask_value, text)
    text = _JWT.sub(MASK, text)
    text = _TOKEN_SHAPES.sub(MASK, text)
    text = _FLAG_SPACE.sub(_mask_value, text)
    return _KEY_VALUE.sub(_mask_value, text)


def redact_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """Mask secret-looking arguments of one command line.

    A secret is often split over arguments (``--requirepass X``, ``password = X``,
    ``Authorization: Bearer X``, ``curl -u user:pw``, ``aws configure set KEY X``, a PEM block
    passed word by word), so each argument is redacted alone, arguments that announce a value
    mask the next one, and then the line joined by newlines is redacted once more to catch what
    spans arguments.
    """
    out: list[str] = []
    expect: str | None = None  # what the previous argument announced (see ``_announced``)
    in_pem = tool = False  # tool: seen redis-cli/mysql/sshpass/docker login, whose -a/-p take a password
    for raw in argv:
        arg = strip_controls(raw)
        base = arg.rsplit("/", 1)[-1]
        tool = tool or base in _SHORT_FLAG_TOOLS
        tool = tool or (arg == "login" and any(a.rsplit("/", 1)[-1] in _LOGIN_TOOLS for a in out))
        if in_pem:
            in_pem = not arg.startswith("-----END")
            out.append(arg if not in_pem else MASK)
        elif expect is not None:
            shown, expect = _announced(expect, arg)
            out.append(shown)
        else:
            shown, expect, in_pem = _one_argument(arg, out, tool)
            out.append(shown)
    joined = redact("\n".join(out)).split("\n")
    return tuple(joined) if len(joined) == len(out) else tuple(redact(a) for a in out)


def _announced(expect: str, arg: str) -> tuple[str, str | None]:
    """An argument that a previous one announced: (what is shown, what the next one is).
    ``auth``: an Authorization header's value, maybe after its scheme word; ``value``: a secret;
    ``user``: ``user:password``; ``set``: a key, whose value is secret if the key's name says so."""
    if expect == "auth":
        return (arg, "auth") if _AUTH_SCHEME_ONLY.match(arg) else (MASK, None)
    if expect == "user":
        user, sep, _ = arg.partition(":")
        return (f"{user}:{MASK}" if sep else arg), None
    if expect == "set":
        return arg, ("value" if re.fullmatch(_KEY, arg, re.IGNORECASE) else None)
    return MASK, None


def _one_argument(arg: str, before: list[str], tool: bool) -> tuple[str, str | None, bool]:
    """An argument on its own: (what is shown, what it announces, whether a PEM block starts)."""
    if whole := _WHOLE_ASSIGNMENT.match(arg):
        return f"{whole.group('key')}{MASK}", None, False
    if arg in _USER_FLAGS:
        return arg, "user", False
    if arg.lower() == "set":
        return arg, "set", False
    header = " ".join([*before[-4:], arg])
    if arg.endswith("-----") and "\n" not in arg and ("PRIVATE" in header or "SECRET" in header):
        return arg, None, "-----BEGIN" in header
    if _AUTH_KEY_ONLY.match(arg):
        return arg, "auth", False  # the credential follows, maybe after its scheme word
    if _AUTH_SCHEME_ONLY.match(arg):
        return arg, "value", False
    if len(arg) > 2 and arg[:2] == "-p" and arg[2] != "-" and tool:
        return f"-p{MASK}", None, False  # mysql -pSECRET
    if _BARE_FLAG.match(arg) or _KEY_ONLY.match(arg) or (arg in _SHORT_SECRET_FLAGS and tool):
        return arg, "value", False
    return redact(arg), None, False


def redact_text(line: str) -> str:
    """Controls stripped, then secrets masked: the form observed text is stored in."""
    return redact(strip_controls(line))


def redact_lines(lines: Iterable[str]) -> list[str]:
    """Lines (of a log, a fenced block) with controls stripped and secrets masked, judged together:
    a secret that spans lines (a PEM key's body) is masked on every line it covers. Falls back to
    line by line if a mask would merge lines."""
    cleaned = [strip_controls(line).replace("\n", " ") for line in lines]
    together = redact("\n".join(cleaned)).split("\n")
    return together if len(together) == len(cleaned) else [redact(line) for line in cleaned]


# --- 3. escaping for each way out -------------------------------------------------------------

# Characters with an inline meaning in CommonMark/GFM are backslash-escaped (a backslash escape
# always yields the literal character): code spans, emphasis, links and images (``[`` ``]``; with
# those gone ``!`` and ``(`` are inert), raw HTML and autolinks (``<``), strikethrough (``~``).
# ``_`` only where it could open or close emphasis (not inside ``spawn_local``), ``&`` only where it
# would start an entity. ``|`` matters only in a table row: ``md_cell`` escapes it.
_MD_SPECIAL = re.compile(r"([\\`*\[\]<~])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|&(?=#?\w+;)")
# Block syntax only counts at the start of a line: headings, quotes, lists, setext underlines.
_MD_LINE_START = re.compile(r"^(\s*)(?:([-+=>#])|(\d+)([.)]))")
_RICH_TAG = re.compile(r"(\\*)(\[[a-zA-Z#/@].*?\])")


_CUT = re.compile(r" …\(\+(\d+) chars cut\)$")


def cap(text: str, limit: int = FIELD_MAX) -> str:
    """At most ``limit`` characters, with a visible mark of how much was cut (counting what an
    earlier cut already removed)."""
    if len(text) <= limit:
        return text
    earlier = _CUT.search(text)
    removed = int(earlier.group(1)) if earlier else 0
    body = text[: earlier.start()] if earlier else text
    return f"{body[:limit]} …(+{len(body) - limit + removed} chars cut)"


def cap_lines(text: str, limit: int = LINE_MAX) -> str:
    """Cap every line of ``text`` (a 100 kB log line must not become a 100 kB report line)."""
    return "\n".join(cap(line, limit) for line in text.split("\n"))


def clean(text: object, limit: int = FIELD_MAX) -> str:
    """One observed value as a single safe line: controls gone, secrets masked, capped."""
    flat = " ".join(strip_controls(str(text)).split())
    return cap(redact(flat), limit)


def md_inline(text: object, limit: int = FIELD_MAX) -> str:
    """A value inside markdown prose, a heading or a list item: inert, one line."""
    escaped = _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), clean(text, limit))
    return _MD_LINE_START.sub(
        lambda m: f"{m.group(1)}\\{m.group(2)}" if m.group(2) else f"{m.group(1)}{m.group(3)}\\{m.group(4)}", escaped
    )


def md_cell(text: object, limit: int = FIELD_MAX) -> str:
    """A value inside a table cell: ``|`` escaped too (GFM splits cells on it even inside code
    spans); empty becomes ``-``."""
    return md_inline(text, limit).replace("|", "\\|") or "-"


def md_code(text: object, limit: int = FIELD_MAX) -> str:
    """A value as an inline code span, delimited by more backticks than it contains."""
    body = clean(text, limit)
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if body.startswith("`") or body.endswith("`") or not body.strip() else ""
    return f"{ticks}{pad}{body}{pad}{ticks}"


def md_fence(lines: Iterable[str], info: str = "bash") -> list[str]:
    """A fenced code block whose fence is longer than any backtick run inside it, so no
    observed text can close it early. Each line is cleaned (controls, secrets, length)."""
    body = [cap(line, LINE_MAX - 40) for line in redact_lines(lines)]
    if not body:
        return []
    longest = max((len(run) for line in body for run in re.findall(r"`{3,}", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{info}", *body, fence]


def escape_rich(text: str) -> str:
    """Escape rich console markup (``[bold]``, ``[/]``, ``[link=...]``) so it prints literally."""

    def escape(match: re.Match[str]) -> str:
        backslashes, tag = match.groups()
        return f"{backslashes}{backslashes}\\{tag}"

    return _RICH_TAG.sub(escape, text)


# --- 4. whole outputs -------------------------------------------------------------------------


def document(text: str) -> str:
    """A whole rendered output (markdown report, plan, summary): controls, secrets, line caps.

    Structure is the renderer's job (it escapes each value it inserts); this is the last gate.
    """
    return cap_lines(redact(strip_controls(text)))


def terminal(text: str) -> str:
    """Text for stdout/stderr: like ``document``; callers must not let rich interpret markup."""
    return document(text)


def one_line(text: object) -> str:
    """An error message for stderr: one line, controls and secrets gone, capped."""
    return clean(text, LINE_MAX)


def deep(value: Any, limit: int = FIELD_MAX * 8) -> Any:
    """Sanitize every string in a JSON-like value (dict keys too); lists of strings are treated
    as command lines (``--requirepass X`` masks X). For JSON, artifacts and event payloads."""
    if isinstance(value, str):
        return cap(redact(strip_controls(value)), limit)
    if isinstance(value, Mapping):
        return {deep(k, limit) if isinstance(k, str) else k: deep(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, str) for v in value):
            return [cap(v, limit) for v in redact_argv(value)]
        return [deep(v, limit) for v in value]
    return value


def command(argv: Sequence[str]) -> str:
    """A printed command: arguments cleaned and redacted, then quoted for a POSIX shell."""
    return shlex.join(cap(arg, LINE_MAX // 4) for arg in redact_argv([" ".join(a.split("\n")) for a in argv]))


# --- log records ------------------------------------------------------------------------------

_INSTALLED: list[Callable[..., logging.LogRecord]] = []


def install_log_sanitizer() -> None:
    """Make every log record of this process sanitized when it is created (message formatted,
    controls stripped, secrets masked, lines capped), whichever logger or handler sends it on:
    Prefect's API handler, the console, a file. Idempotent."""
    if _INSTALLED:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw message, never raise from logging
            message = str(record.msg)
        record.msg = document(message)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            # formatters use exc_text when it is set: the traceback's messages are observed text too
            record.exc_text = document("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        return record

    logging.setLogRecordFactory(factory)
    _INSTALLED.append(previous)
