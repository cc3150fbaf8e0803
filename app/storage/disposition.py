"""The ``Content-Disposition`` a download carries, whoever serves it (us, or S3 via a
presigned URL's ``response-content-disposition``)."""

from __future__ import annotations

from urllib.parse import quote


def content_disposition(filename: str) -> str:
    """``attachment`` with the file's base name: an ASCII fallback for old clients and the
    exact UTF-8 name (RFC 6266 / RFC 8187 ``filename*``) for the rest."""
    name = filename.rsplit("/", 1)[-1]
    ascii_name = "".join(c if " " <= c <= "~" and c not in '"\\?' else "_" for c in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
