"""Load and validate profiles: YAML -> pydantic, once, with errors that name file and field."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from stackwarden.errors import ProfileError
from stackwarden.model.profile import Profile

BUNDLED_PROFILE = "reconciliation-platform.yaml"


def _field_path(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as ``services.postgres.ports[0]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_profile(data: object, source: str) -> Profile:
    """Validate already-parsed YAML. ``source`` names the file in every error message."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise ProfileError(source, [("", f"expected a mapping at the top level, got {kind}")])
    try:
        return Profile.model_validate(data)
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


def _resolve_paths(profile: Profile, base: Path) -> Profile:
    """Make compose file paths absolute, relative to the profile's own directory.

    A profile is usually kept beside its compose files; resolving here means commands printed
    in reports work from any working directory.
    """
    working_dir = Path(profile.compose.working_dir) if profile.compose.working_dir else Path()
    if not working_dir.is_absolute():
        working_dir = (base / working_dir).resolve()
    files = tuple(str(f if Path(f).is_absolute() else (working_dir / f)) for f in profile.compose.files)
    compose = profile.compose.model_copy(update={"files": files, "working_dir": str(working_dir)})
    return profile.model_copy(update={"compose": compose})


def load_profile(path: str | Path) -> Profile:
    """Read, parse and validate a profile file; every failure is a ``ProfileError``."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(str(file), [("", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(str(file), [("", f"cannot read: {exc}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProfileError(str(file), [(where, f"invalid YAML: {problem}")]) from None
    return _resolve_paths(parse_profile(data, str(file)), file.parent)


def profile_json_schema() -> str:
    """The JSON Schema of profiles, for editors (``stackwarden profile schema``)."""
    schema: dict[str, Any] = Profile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "stackwarden profile"
    return json.dumps(schema, indent=2, sort_keys=True)


def bundled_profile_path() -> Path:
    """The bundled profile modelling the seed's stack.

    Found through the package (``stackwarden/bundled_profiles`` ships in the wheel; in a checkout
    it is a link to ``profiles/``), so it works from an installed package and from any working
    directory.
    """
    return (Path(__file__).parent / "bundled_profiles" / BUNDLED_PROFILE).resolve()


def default_profile_path() -> Path:
    """``$STACKWARDEN_PROFILE`` when set, else the bundled profile: the one default the CLI and
    every flow parameter share, so a scheduled run never depends on its working directory."""
    env = os.environ.get("STACKWARDEN_PROFILE")
    return Path(env) if env else bundled_profile_path()
