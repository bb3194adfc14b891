"""Load and validate profiles: YAML -> pydantic, once, with errors that name file and field."""

from __future__ import annotations

import hashlib
import json
import math
import os
import pwd
import stat
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from stackwarden.basics import BUNDLED_PROFILE, bundled_profile_path, default_profile_path
from stackwarden.errors import ProfileChoiceError, ProfileError
from stackwarden.model.profile import Profile

# where the default profile is, and the refusal of a profile choice, live in light modules (the
# CLI needs them before it loads pydantic): re-exported here, where they always were
__all__ = [
    "BUNDLED_PROFILE",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "SERVED_PROFILES_ENV",
    "ProfileChoiceError",
    "bundled_profile_path",
    "choose_profile",
    "default_profile_path",
    "load_profile",
    "parse_profile",
    "profile_json_schema",
    "read_profile",
    "read_profile_bytes",
    "read_profile_text",
    "served_profile_paths",
    "strict_modes",
    "untrusted_path",
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


def _owner(uid: int) -> str:
    """A user name for messages (the uid when it has none)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _untrusted(info: os.stat_result, *, directory: bool, may_be_created_in: bool = False) -> str | None:
    """Why root must not trust a file or directory with this status, or None.

    As sshd's StrictModes: owned by root, writable by nobody else. A directory others may write
    to is untrusted unless it is sticky (``/tmp``: nobody may replace root's entries there), and
    never where a missing file could be created (``may_be_created_in``)."""
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != 0:
        return f"owned by {_owner(info.st_uid)}, not root (mode {mode:04o})"
    if mode & 0o022:
        sticky_ok = directory and mode & stat.S_ISVTX and not may_be_created_in
        if not sticky_ok:
            who = " and ".join(w for w, bit in (("group", 0o020), ("others", 0o002)) if mode & bit)
            missing = ", where the missing file could be created by them" if may_be_created_in else ""
            return f"writable by {who} (mode {mode:04o}, owner {_owner(info.st_uid)}){missing}"
    return None


def untrusted_path(path: str | Path, *, leaf: os.stat_result | None = None) -> str | None:
    """Why a root run must not act on ``path``, or None: the file (``leaf``: the status of what was
    actually opened) and every directory above it, along the path as written and along the path
    its links resolve to, must be root's and writable by root alone. Otherwise whoever may
    write there chooses what root reads: another profile, a compose file, a kubeconfig whose
    ``exec`` plugin root would run. A missing file is judged by the directories it would be in."""
    written = Path(os.path.abspath(path))
    for component in (written, *written.parents):
        try:
            link = os.lstat(component)
        except OSError:
            continue
        if stat.S_ISLNK(link.st_mode) and link.st_uid != 0:  # its owner may point it elsewhere at any time
            return f"reached through the link {component} owned by {_owner(link.st_uid)}, not root"
    chains = [written, Path(os.path.realpath(written))]
    for chain in chains:
        try:
            info = leaf if leaf is not None and chain == chains[-1] else os.stat(chain)
        except FileNotFoundError:
            info = None
        except OSError as exc:
            return f"cannot be checked: {exc.strerror or exc}"
        if info is not None:
            reason = _untrusted(info, directory=stat.S_ISDIR(info.st_mode))
            if reason:
                return reason
        missing_below = info is None  # what is missing could be created by whoever may write here
        for directory in chain.parents:
            try:
                dir_info = os.stat(directory)
            except FileNotFoundError:
                continue
            except OSError as exc:
                return f"its directory {directory} cannot be checked: {exc.strerror or exc}"
            reason = _untrusted(dir_info, directory=True, may_be_created_in=missing_below)
            missing_below = False
            if reason:
                return f"its directory {directory} is {reason}"
    return None


def strict_modes() -> bool:
    """Whether this process is root, and so reads only files that only root can change."""
    return os.geteuid() == 0


def read_profile_bytes(file: Path) -> bytes:
    """The file's bytes, read safely: only a regular file (a FIFO would block, ``/dev/zero``
    never ends), at most ``MAX_BYTES``, and for a root run only a file that only root can
    change (``untrusted_path``). Every failure is a ``ProfileError``."""
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
        if strict_modes() and (reason := untrusted_path(file, leaf=info)):
            raise ProfileError(str(file), [("", f"{reason}; a root run reads only files only root can change")])
        with os.fdopen(fd, "rb", closefd=False) as stream:
            raw = stream.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ProfileError(str(file), [("", f"cannot read: {exc.strerror or exc}")]) from None
    finally:
        os.close(fd)
    if len(raw) > MAX_BYTES:
        raise ProfileError(str(file), [("", f"too large: more than {MAX_BYTES} bytes")])
    return raw


def read_profile_text(file: Path) -> str:
    """The file's text (``read_profile_bytes``), UTF-8."""
    return _decode(read_profile_bytes(file), file)


def _decode(raw: bytes, file: Path) -> str:
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
        merges: int | None = None
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == "tag:yaml.org,2002:merge":
                # two ``<<`` in one mapping: YAML keeps one of them, silently dropping the other's keys
                line = key_node.start_mark.line + 1
                if merges is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate merge key '<<' (first at line {merges})", key_node.start_mark
                    )
                merges = line
                continue
            if not isinstance(key_node, yaml.ScalarNode):
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


@dataclass(frozen=True)
class LoadedProfile:
    """A profile and the exact file it came from: the path and the sha256 of the bytes read (what
    an approval form shows, so a person knows which file, in which version, a switch acts on)."""

    profile: Profile
    path: Path
    sha256: str


def load_profile(path: str | Path) -> Profile:
    """Read, parse and validate a profile file; every failure is a ``ProfileError``."""
    return read_profile(path).profile


def read_profile(path: str | Path) -> LoadedProfile:
    """``load_profile``, with the file's path and the sha256 of its bytes. For a root run the
    profile and the files it names (compose files, their project directory, the kubeconfig) must
    be root's and writable by root alone."""
    file = Path(path)
    raw = read_profile_bytes(file)
    profile = _parse_profile_text(_decode(raw, file), file)
    if strict_modes():
        _check_named_files(profile, file)
    return LoadedProfile(profile=profile, path=file, sha256=hashlib.sha256(raw).hexdigest())


def _check_named_files(profile: Profile, file: Path) -> None:
    """Every file the profile makes root read or run, as ``untrusted_path`` wants it: the compose
    files and their project directories, the kubeconfig, and what those pull in (files Compose
    reads besides them, a kubeconfig's exec plugins); one problem each."""
    named: list[tuple[str, str, str]] = []  # (field, path, what the path is, if not named itself)
    for index, spec in enumerate(profile.compose_projects):
        where = "compose" if index == 0 else f"more_compose[{index - 1}]"
        named += [(f"{where}.files", f, "") for f in spec.files]
        if spec.working_dir:
            named.append((f"{where}.working_dir", spec.working_dir, ""))
        pulled = compose_pulled_files(tuple(Path(f) for f in spec.files), Path(spec.working_dir or "."))
        named += [(f"{where}.files", path, f" ({what})") for what, path in pulled]
    if profile.kubernetes is not None and profile.kubernetes.kubeconfig:
        for kubeconfig in (p for p in profile.kubernetes.kubeconfig.split(os.pathsep) if p):
            named.append(("kubernetes.kubeconfig", kubeconfig, ""))
            named += [
                ("kubernetes.kubeconfig", path, f" (run by {kubeconfig}: {what})")
                for what, path in exec_plugin_files(Path(kubeconfig))
            ]
    for name, service in profile.services.items():
        command = service.host.start_command if service.host is not None else None
        if command:
            named += [
                (f"services.{name}.host.start_command", path, f" ({what})")
                for what, path in start_command_files(command)
            ]
    problems = [
        (field, f"{path}{what} is {reason}; a root run reads and runs only files only root can change")
        for field, path, what in named
        if (reason := untrusted_path(path))
    ]
    if problems:
        raise ProfileError(str(file), problems)


class _ComposeLoader(yaml.SafeLoader):
    """SafeLoader that reads Compose's own tags (``!reset``, ``!override``) as plain values."""


_ComposeLoader.add_multi_constructor(
    "!",
    lambda loader, suffix, node: (
        loader.construct_mapping(node)
        if isinstance(node, yaml.MappingNode)
        else loader.construct_sequence(node)
        if isinstance(node, yaml.SequenceNode)
        else loader.construct_scalar(node)
    ),
)

MAX_COMPOSE_FILES = 100
"""Compose files followed through include/extends before giving up (a cycle, or an attack)."""
MAX_NAMED_FILE_BYTES = 64 * 1024 * 1024
"""What is read of a compose file or kubeconfig to find the files it pulls in (far above any real one)."""


def _read_yaml(path: Path, loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> object:
    """A regular file's YAML, or None when it is missing, not a regular file (a FIFO must not
    block) or not YAML: whoever reads it for real reports that."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as stream:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            return yaml.load(stream.read(MAX_NAMED_FILE_BYTES), Loader=loader)  # noqa: S506 - a SafeLoader
    except (OSError, yaml.YAMLError):
        return None


def _paths(value: object) -> list[str]:
    """A Compose path field: a string, or a list of strings or of ``{path: ...}`` (whose path may
    itself be a list)."""
    out: list[str] = []
    for item in value if isinstance(value, list) else [value]:
        path = item.get("path") if isinstance(item, dict) else item
        for one in path if isinstance(path, list) else [path]:
            if isinstance(one, str):
                out.append(one)
    return out


def compose_pulled_files(files: tuple[Path, ...], working_dir: Path) -> list[tuple[str, str]]:
    """The files Compose reads besides the named compose files, as ``(what, path)``: ``.env`` of
    the project (the first file's directory, and the working directory), and, in every compose
    file and every file it pulls in, ``include`` (its files and env files), ``extends.file`` and
    ``env_file``. An included or extended file defines services as the named file does (an
    extended service can be made privileged with the host mounted), ``.env`` fills the file's
    variables (the image to run): whoever may change one chooses what root's ``compose up`` starts."""
    out: list[tuple[str, str]] = []
    seen: set[Path] = set()
    todo = list(files)
    project_dirs = {files[0].parent, working_dir} if files else {working_dir}
    out += [("the project's .env", str(d / ".env")) for d in sorted(project_dirs)]
    while todo and len(seen) < MAX_COMPOSE_FILES:
        compose = todo.pop(0)
        if compose in seen:
            continue
        seen.add(compose)
        doc = _read_yaml(compose, _ComposeLoader)
        if not isinstance(doc, dict):
            continue
        base = compose.parent
        for entry in doc.get("include") or [] if isinstance(doc.get("include"), list) else []:
            for path in _paths(entry.get("path") if isinstance(entry, dict) else entry):
                included = base / path
                out.append((f"include of {compose}", str(included)))
                out.append((f"the .env of an include of {compose}", str(included.parent / ".env")))
                todo.append(included)
            if isinstance(entry, dict):
                out += [(f"include env_file of {compose}", str(base / p)) for p in _paths(entry.get("env_file"))]
        services = doc.get("services")
        for service in services.values() if isinstance(services, dict) else []:
            if not isinstance(service, dict):
                continue
            extends = service.get("extends")
            if isinstance(extends, dict) and isinstance(extends.get("file"), str):
                extended = base / extends["file"]
                out.append((f"extends.file of {compose}", str(extended)))
                todo.append(extended)
            out += [(f"env_file of {compose}", str(base / p)) for p in _paths(service.get("env_file"))]
    return list(dict.fromkeys(out))


def exec_plugin_files(kubeconfig: Path) -> list[tuple[str, str]]:
    """The files a kubeconfig's ``exec`` credential plugins make the Kubernetes client run, as
    ``(what, path)``: each plugin's command, resolved as the client resolves it (a path with a
    slash from the kubeconfig's directory, a bare name along the ``PATH`` the plugin runs with: each
    directory up to the one that has it, where an earlier one could get a file of that name), and
    each argument that is an absolute path (a script handed to an interpreter). A kubeconfig that
    cannot be read or parsed names none here: the observation reports it."""
    doc = _read_yaml(kubeconfig)
    users = doc.get("users") if isinstance(doc, dict) else None
    out: list[tuple[str, str]] = []
    for index, entry in enumerate(users if isinstance(users, list) else []):
        user = entry.get("user") if isinstance(entry, dict) else None
        plugin = user.get("exec") if isinstance(user, dict) else None
        if not isinstance(plugin, dict) or not isinstance(plugin.get("command"), str):
            continue
        where = f"users[{index}].user.exec"
        command = plugin["command"]
        out += [(f"{where}.command", path) for path in _command_candidates(command, plugin, kubeconfig)]
        args = plugin.get("args")
        out += [
            (f"{where}.args", arg)
            for arg in (args if isinstance(args, list) else [])
            if isinstance(arg, str) and arg.startswith("/")
        ]
    return out


def start_command_files(command: tuple[str, ...]) -> list[tuple[str, str]]:
    """The files a host service's ``start_command`` makes root run when a rollback or a repair
    starts it again (as the user its stopped process ran as, root by default): the program as
    ``subprocess`` finds it (a path with a slash as given; a bare name along this process's
    ``PATH``, each directory up to the one that has it) and every argument that is an absolute
    path (a script handed to an interpreter)."""
    program = command[0]
    if "/" in program:
        found = [program]
    else:
        found = []
        for directory in os.get_exec_path():
            candidate = os.path.join(directory or ".", program)
            found.append(candidate)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                break
    out = [("the program", path) for path in found]
    out += [(f"argument {index}", arg) for index, arg in enumerate(command[1:], start=1) if arg.startswith("/")]
    return out


def _command_candidates(command: str, plugin: dict[str, Any], kubeconfig: Path) -> list[str]:
    """Where the client would find ``command``: one path when it has a slash (relative to the
    kubeconfig's directory, the plugin's working directory); else every ``PATH`` directory of the
    plugin's environment in order, up to and including the first that holds an executable file
    of that name."""
    if "/" in command:
        return [str(kubeconfig.parent / command)]
    env = dict(os.environ)
    items = plugin.get("env")
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("value"), str):
            env[item["name"]] = item["value"]
    out = []
    for directory in os.get_exec_path(env):
        candidate = os.path.join(kubeconfig.parent, directory or ".", command)
        out.append(candidate)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            break
    return out


def _parse_profile_text(text: str, file: Path) -> Profile:
    """YAML text -> a validated profile with absolute paths; every failure a ``ProfileError``."""
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


SERVED_PROFILES_ENV = "STACKWARDEN_PROFILES"
"""The profiles served or deployed runs may act on: absolute paths separated by ``:``. ``serve``
sets it for its runs from its ``--profile`` options; a worker's operator sets it (or
``STACKWARDEN_PROFILE`` for one) in the worker's environment. Never a run parameter."""


def served_profile_paths() -> tuple[Path, ...]:
    """The fixed set a served or deployed run chooses from: ``$STACKWARDEN_PROFILES``, else
    ``$STACKWARDEN_PROFILE`` or the bundled profile alone."""
    listed = os.environ.get(SERVED_PROFILES_ENV, "")
    paths = tuple(Path(p) for p in listed.split(os.pathsep) if p)
    return paths or (default_profile_path(),)


def choose_profile(name: str | None, path: str | None, *, deployment_run: bool) -> Path:
    """The profile file a run acts on.

    A run of a deployment (served or on a worker) names its profile, ``name``, from
    ``served_profile_paths()``: whoever may create a run never chooses a file that root reads (a
    kubeconfig's ``exec`` plugin is a command, a compose file says what root starts). Only a run
    started at a terminal, in an environment where no served set is configured, takes ``path``.
    Without either, a terminal run takes the default profile, a deployment run its one served
    profile (several: it must name one)."""
    served_env = bool(os.environ.get(SERVED_PROFILES_ENV))
    if path:
        if deployment_run or served_env:
            raise ProfileChoiceError(
                f"profile_path={path!r} refused: a served or deployed run chooses its profile by name "
                f"(parameter 'profile'), one of: {', '.join(_names(served_profile_paths()))}"
            )
        return Path(path)
    if not name and not deployment_run and not served_env:
        return default_profile_path()
    candidates = served_profile_paths()
    if not name:
        if len(candidates) == 1:
            return candidates[0]
        raise ProfileChoiceError(
            f"{len(candidates)} profiles are served here; name one with the parameter 'profile': "
            + ", ".join(_names(candidates))
        )
    for candidate in candidates:
        try:
            if load_profile(candidate).name == name:
                return candidate
        except ProfileError:
            continue  # a broken file is reported when it is the one asked for by its own name
    raise ProfileChoiceError(f"profile {name!r} is not served here; served: {', '.join(_names(candidates))}")


def _names(paths: tuple[Path, ...]) -> list[str]:
    """Each served profile's name, or its file's stem when it cannot be read (for messages)."""
    names = []
    for path in paths:
        try:
            names.append(load_profile(path).name)
        except ProfileError:
            names.append(f"{path.stem} (unreadable: {path})")
    return names
