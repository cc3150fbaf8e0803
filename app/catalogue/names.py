"""Validation of every user-supplied name: model ids, versions, components and file paths.

File paths become keys in manifests and names on researchers' disks, never storage keys,
but a path like ``../../.bashrc`` would still be written by a careless client. So paths are
refused unless each segment is a plain, NFC-normalised, printable name.
"""

from __future__ import annotations

import re
import unicodedata

from app.errors import Unprocessable

# Always used with fullmatch(): "$" would also match before a trailing newline, letting
# "acme/x\n" through.
_ID_SEGMENT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_-])?")
_VERSION = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9_-])?")
_COMPONENT = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9_-])?")
_HEX40 = re.compile(r"[0-9a-f]{40}")
_DRIVE = re.compile(r"[A-Za-z]:")

# First path segments the server itself routes; a model namespace cannot take them.
RESERVED_NAMESPACES = frozenset(
    {
        "api",
        "v1",
        "v2",
        "healthz",
        "readyz",
        "metrics",
        "docs",
        "redoc",
        "openapi.json",
        "static",
        "well-known",
        "resolve",
        "datasets",
        "spaces",
    }
)
MAX_PATH_BYTES = 1024
MAX_SEGMENT_BYTES = 255


def _refuse(what: str, value: str, why: str, code: str = "invalid_name") -> Unprocessable:
    shown = value if len(value) <= 80 and value.isprintable() else repr(value[:80])
    return Unprocessable(f"invalid {what} {shown}: {why}", code=code)


def check_model_id(namespace: str, name: str) -> None:
    for what, part in (("namespace", namespace), ("model name", name)):
        if not _ID_SEGMENT.fullmatch(part) or ".." in part:
            raise _refuse(
                what,
                part,
                "use 1-96 letters, digits, '-', '_' or '.', starting and "
                "ending with a letter or digit",
            )
    if namespace.lower() in RESERVED_NAMESPACES:
        raise _refuse("namespace", namespace, "this name is reserved")


def split_model_id(model_id: str) -> tuple[str, str]:
    namespace, sep, name = model_id.partition("/")
    if not sep or "/" in name:
        raise _refuse("model id", model_id, "expected 'namespace/name'")
    check_model_id(namespace, name)
    return namespace, name


def check_version(version: str) -> None:
    if not _VERSION.fullmatch(version) or ".." in version:
        raise _refuse("version", version, "use 1-64 letters, digits, '-', '_' or '.'")
    if version == "main" or _HEX40.fullmatch(version):
        # 'main' and 40-hex strings are how Hugging Face clients name revisions.
        raise _refuse("version", version, "'main' and 40-hex strings are reserved for revisions")


def check_component(name: str) -> None:
    if not _COMPONENT.fullmatch(name):
        raise _refuse("component name", name, "use 1-64 lowercase letters, digits, '-', '_' or '.'")


def check_file_path(path: str, *, max_bytes: int = MAX_PATH_BYTES) -> str:
    """Return ``path`` if it is a safe relative path, else raise 422 saying what is wrong.

    ``max_bytes`` (``WEIGHTGATE_MAX_PATH_BYTES``) can only lower the limit: the column
    holds :data:`MAX_PATH_BYTES`.
    """
    max_bytes = min(max_bytes, MAX_PATH_BYTES)
    if not path:
        raise _refuse("file path", path, "it is empty", "invalid_path")
    if "\ufffd" in path:
        # The server decodes percent-escapes with errors="replace", so invalid UTF-8 arrives
        # as U+FFFD; a real U+FFFD in a name is mojibake as well and is refused alike.
        raise _refuse(
            "file path", path, "it is not valid UTF-8 (or contains U+FFFD)", "invalid_path"
        )
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError as e:  # lone surrogates
        raise _refuse("file path", path, "it is not valid UTF-8", "invalid_path") from e
    if len(encoded) > max_bytes:
        raise _refuse("file path", path, f"longer than {max_bytes} bytes", "invalid_path")
    if "\\" in path:
        raise _refuse("file path", path, "backslashes are not allowed", "invalid_path")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in path):
        raise _refuse(
            "file path", path, "control or format characters are not allowed", "invalid_path"
        )
    if path.startswith("/") or _DRIVE.match(path):
        raise _refuse("file path", path, "absolute paths are not allowed", "invalid_path")
    if unicodedata.normalize("NFC", path) != path:
        raise _refuse("file path", path, "must be in Unicode NFC form", "invalid_path")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise _refuse(
                "file path", path, "empty, '.' and '..' segments are not allowed", "invalid_path"
            )
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise _refuse(
                "file path",
                path,
                f"a segment is longer than {MAX_SEGMENT_BYTES} bytes",
                "invalid_path",
            )
        if segment != segment.strip():
            raise _refuse(
                "file path", path, "segments cannot start or end with whitespace", "invalid_path"
            )
    return path


def routed_file_path(request_path: str, routed: str) -> str:
    """The file path the client really sent, given the one the router extracted.

    Starlette matches ``{path:path}`` with ``.*$``, and ``$`` also matches before a final
    newline, so ``files/a%0A`` routes with ``path="a"``: the upload would land on (and the
    delete would remove) a different file than the one named. Put the newline back so
    :func:`check_file_path` refuses it.
    """
    if request_path.endswith("\n") and not routed.endswith("\n"):
        return routed + "\n"
    return routed
