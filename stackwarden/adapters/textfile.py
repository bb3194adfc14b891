"""Write a metrics file for node_exporter's textfile collector, atomically.

node_exporter may read the directory at any moment; a half-written file would be a scrape error
or, worse, a partial set of series. So the text goes to a temporary file in the same directory
and is renamed over the target (rename is atomic within one filesystem).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_textfile(path: str | Path, text: str) -> Path:
    """Replace ``path`` with ``text`` atomically; the directory must exist. Returns the path."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # node_exporter usually runs as another user
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
