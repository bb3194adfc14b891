"""Load and validate profiles: YAML -> pydantic, once, with errors that name file and field."""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from stackwarden.basics import BUNDLED_PROFILE, bundled_profile_path, default_profile_path
from stackwarden.errors import ProfileError
from stackwarden.model.profile import Profile

__all__ = [
    "BUNDLED_PROFILE",
    "bundled_profile_path",
    "default_profile_path",
    "load_profile",
    "parse_profile",
    "profile_json_schema",
    "read_profile_text",
]


def _field_path(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as ``services.postgres.ports[0]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


MAX_BYTES = 1024 * 1024  # a profile is a page of YAML; a bigger file is a mistake or an attack
MAX_DEPTH = 32  # real profiles nest ~5 levels
MAX_NODES = 100_000  # bounds the expansion of YAML aliases ("billion laughs")


def _plain(data: object, where: str = "", depth: int = 0, budget: list[int] | None = None) -> None:
    """Reject what JSON cannot carry before strict validation: non-string keys (``1: x`` would
    become ``"1"``), timestamps, binary, sets, NaN/infinity; and bound depth and size.

    Raises ``ProfileError``-ready ``(field, reason)`` via ``_Problem``.
    """
    budget = budget if budget is not None else [MAX_NODES]
    budget[0] -= 1
    if budget[0] < 0:
        raise _Problem("", f"more than {MAX_NODES} values (YAML aliases expanding?)")
    if depth > MAX_DEPTH:
        raise _Problem(where, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(key, str):
                raise _Problem(where, f"key {key!r} must be a string, got {_yaml_type(key)}")
            _plain(value, f"{where}.{key}" if where else key, depth + 1, budget)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            _plain(value, f"{where}[{index}]", depth + 1, budget)
    elif isinstance(data, float) and not math.isfinite(data):
        raise _Problem(where, "must be a finite number")
    elif data is not None and not isinstance(data, str | int | float | bool):
        raise _Problem(where, f"unsupported value of type {_yaml_type(data)}; quote it if it is text")


def _tuples(data: Any) -> Any:
    """Lists -> tuples, all the way down (profile models hold tuples; strict mode wants them)."""
    if isinstance(data, dict):
        return {key: _tuples(value) for key, value in data.items()}
    if isinstance(data, list):
        return tuple(_tuples(value) for value in data)
    return data


class _Problem(Exception):
    """One problem found before validation: (field path, reason)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


def _yaml_type(value: object) -> str:
    """A YAML-ish name of a Python value's type for messages (``int``, ``bool``, ``timestamp``)."""
    names = {"datetime": "timestamp", "date": "timestamp", "NoneType": "null", "bytes": "binary"}
    name = type(value).__name__
    return names.get(name, name)


def parse_profile(data: object, source: str) -> Profile:
    """Validate already-parsed YAML strictly. ``source`` names the file in every error message.

    Strict (``ProfileModel``): ``true`` is not a port, ``5`` is not a string. YAML lists become
    tuples first, the only container type the strict models take.
    """
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise ProfileError(source, [("", f"expected a mapping at the top level, got {kind}")])
    try:
        _plain(data)
    except _Problem as problem:
        raise ProfileError(source, [(problem.field, problem.reason)]) from None
    try:
        return Profile.model_validate(_tuples(data))
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        locs = [err["loc"] for err in errors]
        problems = []
        for err in errors:
            # A length error on a list whose item was already reported is noise: skip it.
            if err["type"] == "too_short" and any(o[: len(err["loc"])] == err["loc"] and o != err["loc"] for o in locs):
                continue
            msg = err["msg"].removeprefix("Value error, ")
            problems.append((_field_path(err["loc"]), msg))
        raise ProfileError(source, problems) from None


def _absolute(path: str, base: Path) -> str:
    """``path`` made absolute against ``base`` (the profile's directory); ``~`` is the user's home."""
    expanded = Path(path).expanduser()
    return str(expanded if expanded.is_absolute() else (base / expanded).resolve())


def _resolve_paths(profile: Profile, base: Path) -> Profile:
    """Make every path in the profile absolute, relative to the profile's own directory.

    A profile is usually kept beside its compose files (and maybe its kubeconfig); resolving here
    means the same profile means the same files from any working directory, and commands printed
    in reports work from anywhere.
    """
    base = base.resolve()
    resolved = []
    for spec in profile.compose_projects:
        working_dir = Path(_absolute(spec.working_dir or ".", base))
        files = tuple(_absolute(f, working_dir) for f in spec.files)
        resolved.append(spec.model_copy(update={"files": files, "working_dir": str(working_dir)}))
    update: dict[str, Any] = {"compose": resolved[0], "more_compose": tuple(resolved[1:])}
    kube = profile.kubernetes
    if kube is not None and kube.kubeconfig:
        joined = os.pathsep.join(_absolute(p, base) for p in kube.kubeconfig.split(os.pathsep) if p)
        update["kubernetes"] = kube.model_copy(update={"kubeconfig": joined})
    return profile.model_copy(update=update)


def read_profile_text(file: Path) -> str:
    """The file's text, read safely: only a regular file (a FIFO would block, ``/dev/zero``
    never ends), at most ``MAX_BYTES``, UTF-8. Every failure is a ``ProfileError``."""
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ProfileError(str(file), [("", "no such file")]) from None
    except OSError as exc:
        raise ProfileError(str(file), [("", f"cannot open: {exc.strerror or exc}")]) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _FILE_KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise ProfileError(str(file), [("", f"not a regular file ({kind}); give a YAML file")])
        if info.st_size > MAX_BYTES:
            raise ProfileError(str(file), [("", f"too large: {info.st_size} bytes, the limit is {MAX_BYTES}")])
        with os.fdopen(fd, "rb", closefd=False) as stream:
            raw = stream.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ProfileError(str(file), [("", f"cannot read: {exc.strerror or exc}")]) from None
    finally:
        os.close(fd)
    if len(raw) > MAX_BYTES:
        raise ProfileError(str(file), [("", f"too large: more than {MAX_BYTES} bytes")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(str(file), [("", f"not UTF-8 text (byte {exc.start})")]) from None


_FILE_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: YAML's last-wins would silently turn
    ``stateful: true`` ... ``stateful: false`` into false."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key]})", key_node.start_mark
                )
            if isinstance(key, Hashable):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _check_depth(text: str) -> None:
    """Bound nesting before composing: PyYAML's parser is iterative but its composer recurses,
    so a 100 000-deep ``[[[[`` would cost a RecursionError's worth of time (or the stack)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
                raise _Problem(where, f"nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _load_yaml(text: str) -> object:
    """``yaml.safe_load`` with duplicate keys refused and nesting depth bounded."""
    _check_depth(text)
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_profile(path: str | Path) -> Profile:
    """Read, parse and validate a profile file; every failure is a ``ProfileError``."""
    file = Path(path)
    text = read_profile_text(file)
    try:
        data = _load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProfileError(str(file), [(where, f"invalid YAML: {problem}")]) from None
    except _Problem as problem:
        raise ProfileError(str(file), [(problem.field, problem.reason)]) from None
    except RecursionError:
        raise ProfileError(str(file), [("", f"nested deeper than {MAX_DEPTH} levels")]) from None
    return _resolve_paths(parse_profile(data, str(file)), file.parent)


def profile_json_schema() -> str:
    """The JSON Schema of profiles, for editors (``stackwarden profile schema``)."""
    schema: dict[str, Any] = Profile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "stackwarden profile"
    return json.dumps(schema, indent=2, sort_keys=True)
