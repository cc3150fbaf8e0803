"""A release's files seen as a git tree, the way the Hub lists them.

Every file is presented as a Git LFS file: the Hub's client then takes the LFS ``oid`` (our
SHA-256) as the file's identity and ETag, which is exactly what our content addressing and
``/resolve`` headers say. A file's own ``oid`` is the git blob id of its LFS pointer, the same
value a git-lfs repository holding that file would have.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.hfcompat.schemas import TreeDirectory, TreeEntry, TreeFile, TreeLfs


@dataclass(frozen=True)
class FileFacts:
    path: str
    size: int
    sha256: str


def lfs_pointer(sha256: str, size: int) -> bytes:
    spec = "https://git-lfs.github.com/spec/v1"
    return f"version {spec}\noid sha256:{sha256}\nsize {size}\n".encode()


def git_blob_id(data: bytes) -> str:
    # SHA-1 is git's object id; nothing here relies on it for security.
    return hashlib.sha1(b"blob %d\x00" % len(data) + data, usedforsecurity=False).hexdigest()


def file_entry(f: FileFacts) -> TreeFile:
    pointer = lfs_pointer(f.sha256, f.size)
    return TreeFile(
        path=f.path,
        size=f.size,
        oid=git_blob_id(pointer),
        lfs=TreeLfs(oid=f.sha256, size=f.size, pointerSize=len(pointer)),
    )


def directory_oid(revision: str, path: str) -> str:
    # Not a real git tree id (we keep no trees), but stable per revision and directory, which
    # is all a client can do with it.
    return hashlib.sha1(f"tree\x00{revision}\x00{path}".encode(), usedforsecurity=False).hexdigest()


def normalise_dir(path: str) -> str:
    return "/".join(p for p in path.split("/") if p not in ("", "."))


def under(files: Iterable[FileFacts], directory: str) -> list[FileFacts]:
    """The files inside ``directory`` (all files for the root)."""
    if not directory:
        return list(files)
    prefix = directory + "/"
    return [f for f in files if f.path.startswith(prefix)]


def list_tree(
    files: Sequence[FileFacts], *, revision: str, directory: str, recursive: bool
) -> list[TreeEntry]:
    """Entries of ``directory``: its files and sub-directories, or everything beneath it when
    ``recursive``, sorted by path."""
    prefix = directory + "/" if directory else ""
    dirs: set[str] = set()
    entries: list[TreeEntry] = []
    for f in under(files, directory):
        parts = f.path[len(prefix) :].split("/")
        if recursive:
            dirs.update(prefix + "/".join(parts[:i]) for i in range(1, len(parts)))
            entries.append(file_entry(f))
        elif len(parts) == 1:
            entries.append(file_entry(f))
        else:
            dirs.add(prefix + parts[0])
    entries.extend(TreeDirectory(path=d, oid=directory_oid(revision, d)) for d in dirs)
    entries.sort(key=lambda e: e.path)
    return entries
