"""Every shell and Python block a reader is told to run, in README.md and docs/**/*.md, runs here,
exactly as written, from the repository root, as root on Debian with no sudo.

The convention (docs/README.md repeats it for whoever writes docs):

- A fenced block whose language is ``bash``, ``sh``, ``shell``, ``console`` or ``python`` is run.
  ``bash``/``sh``/``shell``: the block is a script for ``bash -e -o pipefail`` (every command must
  succeed). ``console``: its lines that start with ``$ `` are the commands, the rest is output.
  ``python``: the block is a file run by ``.venv/bin/python``. Illustrations that are not
  commands use ``text``, ``ini``, ``yaml``, ``json``, ``nginx``...
- ``<!-- doc-test: skip: REASON -->`` on the line right before the opening fence: the block is not
  run. REASON is required, and the prose beside the block says why too (needs systemd, another
  machine, your own files, takes an hour).
- ``<!-- doc-test: background: READY -->`` on the line right before the opening fence: a command
  that runs until stopped (``stackwarden serve``, ``stackwarden server``, ``stackwarden worker``).
  It is started in its own process group and counts as started when the text READY appears in
  its output (within 300 s). The blocks after it run while it runs, until the next heading: there
  (or at the end of the file) it is stopped with SIGTERM, as systemd would, and must be gone
  within 360 s, having printed no traceback. So one section is one scenario: a server and the
  worker that needs it go under one heading.
- Each block runs in a fresh process (an ``export`` does not reach the next block), with this
  test's environment minus every ``PREFECT_*`` and ``STACKWARDEN_*`` variable and with ``HOME``
  a new empty directory (so ``~/.local/share/stackwarden/prefect`` is this run's). The blocks of a
  file run in order; after a failure the rest still run (a later block may clean up), and the
  failure names the file, the line of the block and its command.
- Blocks use fixed ports as the docs say (4200, 25432) and fixed paths: one doc test runs at a
  time on a machine (a lock in /tmp), and port 4200 must be free (under CI=true a busy port fails
  the test; elsewhere it skips).
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from flows.local_server import port_is_free
from tests.support.realparts import REPO, require

RUN_LANGUAGES = {"bash", "sh", "shell", "console", "python"}
MARKER = re.compile(r"^<!--\s*doc-test:\s*(?P<kind>[a-z-]+)\s*(?::\s*(?P<argument>.*?))?\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)[^`]*$")  # also in a list item
HEADING = re.compile(r"^#{1,6}\s")
READY_SECONDS = 300
STOP_SECONDS = 360
FOREGROUND_SECONDS = 900


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its text and the marker before it."""

    file: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    marker: str | None = None  # "skip" or "background"
    argument: str = ""
    section: int = 0  # how many headings come before it: a background block lives in its section

    @property
    def where(self) -> str:
        return f"{self.file.relative_to(REPO)}:{self.line}"

    @property
    def command(self) -> str:
        """The first lines of what runs, for a failure message."""
        lines = [line for line in self.script().splitlines() if line.strip() and not line.lstrip().startswith("#")]
        return " / ".join(lines[:3]) + (" ..." if len(lines) > 3 else "")

    def script(self) -> str:
        """What is run: the block as written (``console``: its ``$ `` lines)."""
        if self.language == "console":
            return "\n".join(line[2:] for line in self.text.splitlines() if line.startswith("$ ")) + "\n"
        return self.text


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def parse(file: Path) -> list[Block]:
    """Every fenced block of ``file``, with the marker on the line right before its fence."""
    blocks: list[Block] = []
    lines = file.read_text(encoding="utf-8").splitlines()
    section = 0
    index = 0
    while index < len(lines):
        line = lines[index]
        if HEADING.match(line):
            section += 1
        opening = FENCE.match(line)
        if not opening:
            index += 1
            continue
        fence, language, indent = opening.group("fence"), opening.group("info").lower(), len(opening.group("indent"))
        end = next(
            (j for j in range(index + 1, len(lines)) if lines[j].strip().startswith(fence[0] * len(fence))), len(lines)
        )
        body = [line[indent:] if not line[:indent].strip() else line.lstrip() for line in lines[index + 1 : end]]
        marker = MARKER.match(lines[index - 1].strip()) if index > 0 else None
        blocks.append(
            Block(
                file=file,
                line=index + 1,
                language=language,
                text="\n".join(body) + "\n",
                marker=marker.group("kind") if marker else None,
                argument=(marker.group("argument") or "") if marker else "",
                section=section,
            )
        )
        index = end + 1
    return blocks


def _argv(block: Block, script: Path) -> list[str]:
    if block.language == "python":
        return [str(REPO / ".venv" / "bin" / "python"), str(script)]
    return ["bash", "-e", "-o", "pipefail", str(script)]


@dataclass
class Background:
    """A background block while it runs."""

    block: Block
    process: subprocess.Popen[bytes]
    output: Path


@dataclass
class Run:
    """One file's blocks, run in order in one private environment."""

    workdir: Path
    env: dict[str, str]
    failures: list[str] = field(default_factory=list)
    running: list[Background] = field(default_factory=list)

    def fail(self, block: Block, why: str, output: str = "") -> None:
        tail = "\n    ".join(output.strip().splitlines()[-25:])
        self.failures.append(f"{block.where}: `{block.command}`: {why}" + (f"\n    {tail}" if tail else ""))

    def script_of(self, block: Block) -> Path:
        script = self.workdir / f"block-{block.line}.{'py' if block.language == 'python' else 'sh'}"
        script.write_text(block.script(), encoding="utf-8")
        return script

    def foreground(self, block: Block) -> None:
        done = subprocess.run(
            _argv(block, self.script_of(block)),
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=FOREGROUND_SECONDS,
            check=False,
        )
        if done.returncode != 0:
            self.fail(block, f"exited {done.returncode}", done.stdout + done.stderr)

    def background(self, block: Block) -> None:
        output = self.workdir / f"block-{block.line}.out"
        with open(output, "wb") as out:
            process = subprocess.Popen(
                _argv(block, self.script_of(block)),
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running.append(Background(block, process, output))
        deadline = time.monotonic() + READY_SECONDS
        while block.argument not in output.read_text(errors="replace"):
            if process.poll() is not None:
                self.fail(block, f"exited {process.returncode} before {block.argument!r}", output.read_text())
                return
            if time.monotonic() > deadline:
                self.fail(block, f"{block.argument!r} not printed within {READY_SECONDS} s", output.read_text())
                return
            time.sleep(1)

    def stop_background(self) -> None:
        """SIGTERM to each background block's process group, the last started first; each must be
        gone in time and must not have printed a traceback."""
        while self.running:
            item = self.running.pop()
            group = item.process.pid
            with _suppress_lookup():
                os.killpg(group, signal.SIGTERM)
            deadline = time.monotonic() + STOP_SECONDS
            while (item.process.poll() is None or _group_alive(group)) and time.monotonic() < deadline:
                time.sleep(0.5)  # poll() reaps our own child: a zombie still counts as in the group
            if _group_alive(group):
                with _suppress_lookup():
                    os.killpg(group, signal.SIGKILL)
                self.fail(item.block, f"still running {STOP_SECONDS} s after SIGTERM", item.output.read_text())
            item.process.wait(timeout=30)
            text = item.output.read_text(errors="replace")
            if "Traceback" in text:
                self.fail(item.block, "printed a traceback", text[text.index("Traceback") - 2000 :])


class _suppress_lookup:  # noqa: N801 - used like contextlib.suppress
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, value: object, traceback: object) -> bool:
        return kind is ProcessLookupError


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def one_doc_test_at_a_time() -> Iterator[None]:
    """The docs name fixed ports and paths: two runs of this test on one machine would collide."""
    with open(Path(tempfile.gettempdir()) / "stackwarden-doc-test.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        require(port_is_free("127.0.0.1", 4200), "port 4200, which the docs' servers use, is busy on this machine")
        yield


def test_every_marker_is_well_formed() -> None:
    """A skip says why; a background block says what it prints when it is ready; markers sit on
    the line right before a fence of a language that runs."""
    problems = []
    for file in doc_files():
        lines = file.read_text(encoding="utf-8").splitlines()
        starts = {block.line for block in parse(file) if block.language in RUN_LANGUAGES}
        inside = _fenced_lines(file)
        for number, line in enumerate(lines, 1):
            if number in inside:  # an example in a fenced block is no marker
                continue
            marker = MARKER.match(line.strip())
            if line.strip().startswith("<!--") and "doc-test" in line and not marker:
                problems.append(f"{file.relative_to(REPO)}:{number}: malformed marker: {line.strip()}")
            elif marker and number + 1 not in starts:
                problems.append(f"{file.relative_to(REPO)}:{number}: a marker must precede a fence of {RUN_LANGUAGES}")
            elif marker and marker.group("kind") not in {"skip", "background"}:
                problems.append(f"{file.relative_to(REPO)}:{number}: unknown marker {marker.group('kind')!r}")
            elif marker and not (marker.group("argument") or "").strip():
                problems.append(f"{file.relative_to(REPO)}:{number}: {marker.group('kind')} needs its reason or text")
    assert not problems, "\n".join(problems)


def _fenced_lines(file: Path) -> set[int]:
    """Line numbers (1-based) inside fenced blocks of any language, fences included."""
    inside: set[int] = set()
    for block in parse(file):
        inside.update(range(block.line, block.line + block.text.count("\n") + 2))
    return inside


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("file", doc_files(), ids=lambda f: str(f.relative_to(REPO)))
def test_the_blocks_of_a_doc_run_as_written(file: Path, one_doc_test_at_a_time: None, tmp_path: Path) -> None:
    blocks = [block for block in parse(file) if block.language in RUN_LANGUAGES and block.marker != "skip"]
    if not blocks:
        return
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "STACKWARDEN_"))}
    env.update(HOME=str(home), PYTHONUNBUFFERED="1")
    run = Run(tmp_path, env)
    section = None
    try:
        for block in blocks:
            if block.section != section:
                run.stop_background()
                section = block.section
            if block.marker == "background":
                run.background(block)
            else:
                run.foreground(block)
    finally:
        run.stop_background()
    assert not run.failures, "doc blocks that do not run as written:\n" + "\n".join(run.failures)
