"""The terminal and printed commands: rich never interprets observed markup, nothing raw reaches
the stream, and no stop command is offered for a process the profile does not name."""

from __future__ import annotations

import io

from flows.cli import _summary
from stackwarden.model import Listener
from stackwarden.rules import diagnose
from tests.support.builders import PORTS, process, profile, snapshot, stop_and_wait

HOSTILE_TITLE = "[bold red]boom[/] [/] [link=http://evil]x[/link] \x1b]0;title\x07\x1b[2J password=s3cretZ"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_rich_tables_print_markup_literally_and_nothing_raw() -> None:
    out = _Terminal()
    _summary([("high", "x:1", HOSTILE_TITLE), ("low", "[/]", "[")], out)  # unbalanced [/] must not raise
    text = out.getvalue()
    assert "[bold red]boom[/]" in text.replace("\n", "").replace("│", "").replace(" ", "") or "boom[/]" in text
    assert "\x1b]" not in text and "\x07" not in text and "\x1b[2J" not in text
    assert "s3cretZ" not in text


def test_plain_summary_lines_are_sanitized() -> None:
    out = io.StringIO()
    _summary([("high", "x:1", HOSTILE_TITLE)], out)
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "s3cretZ" not in text
    assert "[bold red]boom[/]" in text


def test_no_stop_command_for_a_process_the_profile_does_not_name() -> None:
    port = PORTS["redis"]
    snap = snapshot(
        listeners=(Listener(address="0.0.0.0", port=port, pid=66), Listener(address="::", port=port, pid=10)),
        processes=(process(66, "nc'; kill -9 1 #", cmdline=("nc", "-l", str(port))), process(10, "redis-server")),
    )
    findings = [f for f in diagnose(snap, profile()) if str(port) in f.id]
    commands = [c for f in findings for c in f.commands]
    assert stop_and_wait(10) in commands, commands  # the profile's own redis-server may be stopped
    assert "ps -o pid,user,lstart,args -p 66" in commands
    assert not [c for c in commands if c.startswith(("kill", "systemctl stop")) and "66" in c], commands
