"""bench/RESULTS.md is shared: each bench owns one section between
``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` and rewrites only that.

    from bench.results import write_section
    write_section("upload", markdown_text)

Sections not yet present are appended; the rest of the file is left byte for byte.
"""

from __future__ import annotations

import fcntl
import os
import platform
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = (
    "# Benchmark results\n\n"
    "Each section is written by the script named in its heading (`python bench/<name>.py`);\n"
    "re-running a script replaces its own section only.\n"
)
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def machine() -> str:
    """One line saying where the numbers come from."""
    cpu = platform.processor() or platform.machine()
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {os.cpu_count()} CPU ({cpu}) · "
        f"Python {platform.python_version()} · {platform.system()} {platform.release()}"
    )


def replace_section(document: str, name: str, body: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"bench section names are lowercase words, not {name!r}")
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(document):
        return pattern.sub(lambda _: block, document, count=1)
    return document.rstrip("\n") + "\n\n" + block + "\n"


def write_section(name: str, body: str, path: Path = RESULTS) -> None:
    """Replace (or append) section ``name`` of ``path``.

    Benches may finish at the same moment: the read-modify-write runs under an exclusive
    lock on the file's directory, and the new text is renamed into place, so no section is
    lost and no reader sees half a file.
    """
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(dir_fd, fcntl.LOCK_EX)
        document = path.read_text("utf-8") if path.exists() else HEADER
        updated = replace_section(document, name, body)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".RESULTS-", suffix=".md")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(updated)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        os.close(dir_fd)  # releases the lock
