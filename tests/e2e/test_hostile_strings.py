"""Hostile strings in what stackwarden observes, end to end: a real crash-looping container whose
labels, name and log lines and a real host process whose name and command line carry ANSI/OSC
escapes, code fences, table pipes, HTML, markdown images, rich markup, a secret and 100 kB lines.

The same scenario runs twice, once with benign text of the same shape. The hostile report must
parse (markdown-it, CommonMark + GFM tables) into the same headings and table rows as the benign
one, no raw control character may reach stdout (markdown, JSON, or rich on a terminal), no line
may be 100 kB long, and the secret must appear nowhere, the Prefect artifacts included.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from markdown_it import MarkdownIt

from tests.support.compose import compose_project, unique_name, wait_restarts
from tests.support.realparts import IMAGE, free_ports, listening, stop, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.prefect]

BIG = 100_000
SECRET = "hunter2-hostile-secret"  # noqa: S105 - the secret the test makes sure never leaks
HOSTILE = (
    "\x1b]0;pwned-title\x07\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\\x1b[2J\x1b[31mred\x1b[0m"
    " ```bash | a | b | <img src=x onerror=alert(1)> <script>alert(1)</script> ![img](http://evil.example/x.png)"
    " [link](http://evil.example) [bold red]rich[/] [/] [link=http://evil.example]x[/link] **bold** _em_"
    f" # not a heading\r\x08\x7f\x9b31m password={SECRET}"
)
BENIGN = "plain observed text " + "x" * (len(HOSTILE) - 20)
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

LISTENER = """
import ctypes, socket, sys, time
ctypes.CDLL(None).prctl(15, sys.argv[1].encode()[:15], 0, 0, 0)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[2])))
s.listen(8)
print("ready", flush=True)
time.sleep(3600)
"""


@contextlib.contextmanager
def _stack(tmp: Path, text: str, filler: str) -> Iterator[Path]:
    """A compose project whose backend crash-loops printing ``text`` and a 100 kB line, labelled
    with both, plus a host process on the profile's redis port named and invoked with them."""
    backend_port, redis_port = free_ports(2)
    name = unique_name("swtest-hostile")
    big_line = (text + " ") * (BIG // (len(text) + 1)) + filler * 10
    script = 'echo starting; printf "%s\\n" "$1"; printf "%s\\n" "$2"; exit 1'
    services: dict[str, Any] = {
        "backend": {
            "image": IMAGE,
            "command": ["sh", "-c", script, "sh", text.replace("\x00", ""), big_line],
            "restart": "always",
            "labels": {"note": text, "big": big_line},
            # Docker allows only [a-zA-Z0-9_.-] in names: emphasis markers and length are what fits
            "container_name": f"{name}.{'__em__' if text is HOSTILE else 'plain_'}.{'n' * 150}",
        }
    }
    tmp.mkdir(parents=True, exist_ok=True)
    listener = tmp / "listener.py"
    listener.write_text(LISTENER)
    with compose_project(tmp, name, services) as project:
        proc = subprocess.Popen(
            [sys.executable, str(listener), text, str(redis_port), big_line], stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            wait_for(lambda: listening(redis_port, "127.0.0.1"), 10, "the hostile listener")
            wait_restarts(project, "backend", at_least=1)
            profile = {
                "name": name,
                "compose": {"project": name, "files": [str(project.file)]},
                "services": {
                    "backend": {"ports": [backend_port], "host": {"executables": ["reconciliation-backend"]}},
                    "redis": {"ports": [redis_port], "stateful": True, "host": {"executables": ["redis-server"]}},
                },
            }
            path = tmp / "profile.yaml"
            path.write_text(yaml.safe_dump(profile))
            yield path
        finally:
            stop(proc)


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], capture_output=True, env=env, timeout=300, check=False
    )


def _on_a_terminal(args: list[str], env: dict[str, str]) -> bytes:
    """Run the CLI with stdout on a pseudo-terminal (rich's path) and return what it wrote."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", *args], stdout=slave, stderr=subprocess.DEVNULL, env=env
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(master)
    return b"".join(chunks)


def _neutral(markdown: str) -> str:
    """Project names and port numbers replaced by placeholders (they differ between the runs)."""
    return re.sub(r"\b\d{4,5}\b", "PORT", re.sub(r"swtest-hostile-[0-9a-f]{6}", "NAME", markdown))


def _structure(markdown: str) -> dict[str, Any]:
    """Headings (level and text) and table rows (cell counts and first cells) as markdown-it
    parses them, plus any raw HTML, images or links it found."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    headings, rows, inline_kinds = [], [], set()
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            headings.append((token.tag, tokens[index + 1].content))
        if token.type == "tr_open":
            cells = []
            for inner in tokens[index + 1 :]:
                if inner.type == "tr_close":
                    break
                if inner.type == "inline":
                    cells.append(inner.content)
            rows.append((len(cells), cells[0]))
        if token.type == "html_block":
            inline_kinds.add("html_block")
        for child in token.children or []:
            if child.type in {"html_inline", "image", "link_open"}:
                inline_kinds.add(child.type)
    return {"headings": headings, "rows": rows, "inline": inline_kinds}


@pytest.fixture(scope="module")
def api_env(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    return env


def _audit(tmp: Path, text: str, filler: str, env: dict[str, str]) -> dict[str, Any]:
    with _stack(tmp, text, filler) as profile:
        markdown = _cli(["audit", "--profile", str(profile)], env)
        as_json = _cli(["audit", "--profile", str(profile), "--json"], env)
        terminal = _on_a_terminal(["audit", "--profile", str(profile)], env)
    return {"markdown": markdown, "json": as_json, "terminal": terminal, "name": yaml.safe_load(profile.read_text())}


def test_hostile_observed_text_changes_nothing_but_the_words(
    tmp_path: Path, api_env: dict[str, str], docker_engine: None
) -> None:
    benign = _audit(tmp_path / "benign", BENIGN, "y", api_env)
    hostile = _audit(tmp_path / "hostile", HOSTILE, " ```| <b>", api_env)

    for run in (benign, hostile):
        assert run["markdown"].returncode in (0, 1), run["markdown"].stderr.decode()[-2000:]
        assert run["json"].returncode in (0, 1), run["json"].stderr.decode()[-2000:]
    out = hostile["markdown"].stdout.decode()
    # no raw control character on stdout, whichever way out
    assert not CONTROL.search(out), repr(CONTROL.search(out))
    assert not CONTROL.search(hostile["json"].stdout.decode())
    decoded = json.dumps(json.loads(hostile["json"].stdout), ensure_ascii=False)
    assert not CONTROL.search(decoded), "a control character survived inside a JSON string"
    # on a terminal rich adds its own styling, but no observed escape gets through
    tty = hostile["terminal"].decode("utf-8", errors="replace")
    assert "Conflict Resolution Status" in tty, tty[-2000:]
    for sequence in ("\x1b]", "\x1b[2J", "\x07", "\x9b", "\x08", "\r\x08", "pwned-title"):
        assert sequence not in tty, sequence
    # no 100 kB line, and the secret nowhere
    assert max(len(line) for line in out.splitlines()) < 4000
    for run in (hostile["markdown"], hostile["json"]):
        assert SECRET not in run.stdout.decode() and SECRET not in run.stderr.decode()
    assert SECRET not in tty
    # the hostile text really was observed and shown (escaped), not silently dropped
    assert "pwned-title" not in out and "onerror" in out and "rich" in out

    # the two runs differ in their project name and random ports, which the headings carry
    want, got = (_structure(_neutral(run["markdown"].stdout.decode())) for run in (benign, hostile))
    assert got["headings"] == want["headings"]
    assert got["rows"] == want["rows"]
    assert got["inline"] <= want["inline"], got["inline"] - want["inline"]

    # the Prefect artifacts of the hostile runs: same gate
    artifacts = _artifacts(api_env, hostile["name"]["name"])
    assert artifacts, "no artifact was published"
    for data in artifacts:
        assert SECRET not in data and not CONTROL.search(data) and "pwned-title" not in data


def _artifacts(env: dict[str, str], profile: str) -> list[str]:
    """Every artifact the server holds for this profile's runs, as text."""
    code = (
        "import asyncio, json, sys\n"
        "from prefect.client.orchestration import get_client\n"
        "async def main():\n"
        "    async with get_client() as c:\n"
        "        arts = await c.read_artifacts(limit=200)\n"
        "        print(json.dumps([str(a.data) for a in arts if a.key and sys.argv[1] in a.key]))\n"
        "asyncio.run(main())\n"
    )
    key = f"stackwarden-{profile}".replace(".", "-").replace("_", "-").lower()
    result = subprocess.run(
        [sys.executable, "-c", code, key], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    return list(json.loads(result.stdout))
