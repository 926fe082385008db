"""Writing settings into a dotenv file without disturbing the rest of it."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def _quoted(value: str) -> str:
    """As python-dotenv reads it back; plain SIDs and secrets need no quotes."""
    if not re.search(r"[\s#'\"\\$]", value):
        return value
    if "'" not in value:
        return f"'{value}'"  # literal: no escapes, no ${…} expansion
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def update_env_file(path: Path, values: Mapping[str, str]) -> None:
    """Set `values` in the file: an existing assignment is replaced in place, a new one is
    appended; every other line is kept as it was. The file holds secrets: it is written
    atomically and left readable by its owner only (0600)."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.exists() else []
    pending = dict(values)
    for index, line in enumerate(lines):
        match = _ASSIGNMENT.match(line)
        if match and match.group(1) in pending:
            lines[index] = f"{match.group(1)}={_quoted(pending.pop(match.group(1)))}\n"
    if pending and lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines += [f"{name}={_quoted(value)}\n" for name, value in pending.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.writelines(lines)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
