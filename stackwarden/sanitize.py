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


def strip_controls(text: str) -> str:
    """Remove escape sequences and control characters; keep newlines, turn tabs into spaces.

    Sequences go first (whole), so their printable tails (``[31m``) do not survive either.
    ``\\r`` is removed: alone it lets a line overwrite itself on a terminal.
    """
    return _CONTROLS.sub("", _ANSI.sub("", text)).replace("\t", " ")


# --- 2. secrets ---------------------------------------------------------------------------------

# Names that mark a value as secret, in any case: password/passwd/pwd/pass, secret, token,
# api key, access/private/secret key, credentials, redis' requirepass/masterauth, auth tokens.
_WORDS = (
    r"(?:pass(?:word|wd|phrase)?(?![a-z])|pwd|secret|token|api[-_.]?key|access[-_.]?key|private[-_.]?key|"
    r"secret[-_.]?key|client[-_.]?secret|credentials?|requirepass|masterauth|auth[-_.]?token|"
    r"session[-_.]?key|signing[-_.]?key|encryption[-_.]?key|master[-_.]?key|cookie|dsn)"
)
# A key: word characters, with dots and dashes before the secret word (``--elasticsearch.password``,
# ``spring.datasource.password``) but not after it (``secret_manager.rs:42`` is a file, not a key).
_KEY = rf"[\w.-]{{0,64}}{_WORDS}[\w-]{{0,64}}"  # bounded: a long word costs linear time
_QUOTED_OR_BARE = r"(?:\"(?:[^\"\\]|\\.)*\"|'[^']*'|[\"'][^\s,;&\"'}\])]+|[^\s,;&\"'}\])]+)"  # ... or an unclosed quote
# key=value, key: value, key:value, "key": "value", key => value
_KEY_VALUE = re.compile(
    rf"(?P<key>(?<![\w.-]){_KEY}[\"']?\s*(?:=>|:=|=|:)\s*)(?P<value>{_QUOTED_OR_BARE})",
    re.IGNORECASE,
)
# --flag value (a dashed or dotted flag followed by a separate value), as in command lines
_FLAG_SPACE = re.compile(
    rf"(?P<key>(?<![\w.-])--?{_KEY}\s+)(?P<value>(?!-)\"(?:[^\"\\]|\\.)*\"|(?!-)'[^']*'|(?!-)\S+)",
    re.IGNORECASE,
)
# A scheme starts where a token starts (not at every "." of a long dotted word: that is quadratic).
_URL_USERINFO = re.compile(
    r"(?P<scheme>(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{0,30}://)(?P<userinfo>[^/@\s:]{0,256}:[^@\s/]{0,512}|[^/@\s:]{1,512})@",
    re.I,
)
_AUTH_HEADER = re.compile(
    r"(?P<key>\b(?:authorization|proxy-authorization|x-api-key|x-auth-token)\s*[:=]\s*)(?P<value>[^\r\n]+)",
    re.IGNORECASE,
)
_AUTH_SCHEME = re.compile(r"(?P<key>\b(?:Bearer|Basic|Token|Digest|Negotiate)\s+)(?P<value>[\w.~+/=-]{8,})", re.I)
_JWT = re.compile(r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*")
_PEM = re.compile(
    r"-----BEGIN (?P<kind>[A-Z0-9 ]*(?:PRIVATE KEY|SECRET|PGP PRIVATE KEY BLOCK|ENCRYPTED PRIVATE KEY)[A-Z0-9 ]*)-----"
    r"(?:.*?-----END [A-Z0-9 ]*-----|.*)",
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
)
_BARE_FLAG = re.compile(rf"^--?{_KEY}$", re.IGNORECASE)
# One argument that is only a key (``password:``, ``"token":``, ``{'secret':``): the next is its value.
_KEY_ONLY = re.compile(rf"^[\"'{{(\[]*{_KEY}[\"']?\s*(?:=>|:=|=|:)$", re.IGNORECASE)
_AUTH_KEY_ONLY = re.compile(r"^(?:proxy-)?authorization:?$|^x-api-key:?$|^x-auth-token:?$", re.IGNORECASE)
_AUTH_SCHEME_ONLY = re.compile(r"^(?:Bearer|Basic|Token|Digest|Negotiate)$", re.IGNORECASE)
_SHORT_SECRET_FLAGS = frozenset({"-a", "-p", "--pass"})  # redis-cli -a, mysql -p
_SHORT_FLAG_TOOLS = ("redis-cli", "mysql", "mysqladmin", "mariadb", "keydb-cli")


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


def _mask_cli(match: re.Match[str]) -> str:
    key = match.group("key") or match.group("key2")
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
    text = _PEM.sub(lambda m: f"-----BEGIN {m.group('kind')}----- {MASK}", text)
    text = _URL_USERINFO.sub(_mask_userinfo, text)
    text = _AUTH_HEADER.sub(_mask_value, text)
    text = _AUTH_SCHEME.sub(_mask_value, text)
    text = _JWT.sub(MASK, text)
    text = _TOKEN_SHAPES.sub(MASK, text)
    text = _FLAG_SPACE.sub(_mask_value, text)
    return _KEY_VALUE.sub(_mask_value, text)


def redact_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """Mask secret-looking arguments of one command line.

    A secret is often split over arguments (``--requirepass X``, ``password = X``,
    ``Authorization: Bearer X``, a PEM block passed word by word), so each argument is redacted
    alone, arguments that announce a value mask the next one, and then the line joined by
    newlines is redacted once more to catch what spans arguments.
    """
    out: list[str] = []
    mask_next = pending_auth = in_pem = False
    tool = False  # seen redis-cli/mysql (also after sudo, docker exec ...): its -a/-p take a password
    for raw in argv:
        arg = strip_controls(raw)
        tool = tool or arg.rsplit("/", 1)[-1] in _SHORT_FLAG_TOOLS
        if in_pem:
            in_pem = not arg.startswith("-----END")
            out.append(arg if not in_pem else MASK)
            continue
        if mask_next or pending_auth:
            pending_auth = pending_auth and bool(_AUTH_SCHEME_ONLY.match(arg))
            mask_next = pending_auth
            out.append(arg if pending_auth else MASK)
            continue
        header = " ".join([*out[-4:], arg])
        if arg.endswith("-----") and ("PRIVATE" in header or "SECRET" in header):
            in_pem = "-----BEGIN" in header
            out.append(arg)
        elif _AUTH_KEY_ONLY.match(arg):
            out.append(arg)
            pending_auth = True  # the credential follows, maybe after its scheme word
        elif _AUTH_SCHEME_ONLY.match(arg):
            out.append(arg)
            mask_next = True
        elif len(arg) > 2 and arg[:2] == "-p" and arg[2] != "-" and tool:
            out.append(f"-p{MASK}")  # mysql -pSECRET
        elif _BARE_FLAG.match(arg) or _KEY_ONLY.match(arg) or (arg in _SHORT_SECRET_FLAGS and tool):
            out.append(arg)
            mask_next = True
        else:
            out.append(redact(arg))
    joined = redact("\n".join(out)).split("\n")
    return tuple(joined) if len(joined) == len(out) else tuple(out)


def redact_text(line: str) -> str:
    """Controls stripped, then secrets masked: the form observed text is stored in."""
    return redact(strip_controls(line))


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
    body = [cap(redact(strip_controls(line).replace("\n", " ")), LINE_MAX - 40) for line in lines]
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
