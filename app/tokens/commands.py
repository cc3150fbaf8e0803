"""Ready-to-paste shell commands for an issued download token: ``curl`` with the token as a
Bearer header, ``hf download`` against this server, and ``weightgate download``, each
followed by the ``sha256sum -c`` check of the files it fetched.

Pure text from a :class:`~app.tokens.schemas.TokenOut` (no I/O), so the console shows
exactly what a test can run. Every value that reaches the shell is quoted with
:func:`shlex.quote`: paths are publishers' choices and must never become shell syntax.

``curl`` uses the download token itself. ``hf download`` and ``weightgate download`` need
an API key instead (download tokens only open ``/v1/files``; the Hub routes and
``POST /v1/tokens`` authenticate the user), read from ``$WEIGHTGATE_TOKEN`` — the variable
the ``weightgate`` command already reads — so no key is ever printed on a page.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from app.tokens.schemas import TokenOut

API_KEY_VARIABLE = "WEIGHTGATE_TOKEN"
TOKEN_VARIABLE = "WG_DOWNLOAD_TOKEN"  # noqa: S105 - a variable name, not a secret


@dataclass(frozen=True)
class DownloadCommands:
    directory: str  # where each command puts the files (relative to the current directory)
    sha256sums: str  # "<hex>  <path>" lines, as `sha256sum -c` reads them
    curl: str
    hf: str
    weightgate: str


def sha256sums(token: TokenOut) -> str:
    # sha256sum's format for a name holding a newline or backslash is an escape we cannot
    # express safely in a heredoc; no such path is accepted at upload (app/catalogue/names).
    return "".join(f"{f.sha256}  {f.path}\n" for f in token.files)


def _check(directory: str, sums: str) -> str:
    # A quoted heredoc delimiter: nothing inside is expanded by the shell.
    return f"(cd {shlex.quote(directory)} && sha256sum -c - <<'SHA256SUMS'\n{sums}SHA256SUMS\n)"


def render(token: TokenOut, *, base_url: str, directory: str | None = None) -> DownloadCommands:
    """The three ways to fetch the files ``token`` covers into ``directory`` (default: the
    model's name), each ending with the SHA-256 check."""
    scope = token.scope
    folder = directory or scope.model.rsplit("/", 1)[-1]
    sums = sha256sums(token)
    check = _check(folder, sums)
    q = shlex.quote

    curl_lines = [f"{TOKEN_VARIABLE}={q(token.token)}"]
    for f in token.files:
        target = f"{folder}/{f.path}"
        curl_lines.append(
            f'curl --fail --location --create-dirs -H "Authorization: Bearer ${TOKEN_VARIABLE}"'
            f" -o {q(target)} {q(f.url)}"
        )
    curl = "\n".join(curl_lines) + "\n" + check

    hf_parts = [
        f"HF_ENDPOINT={q(base_url.rstrip('/'))}",
        f'HF_TOKEN="${API_KEY_VARIABLE}"',
        "hf download",
        q(scope.model),
        *(q(f.path) for f in token.files),
        f"--revision {q(scope.revision)}",
        f"--local-dir {q(folder)}",
    ]
    hf = " ".join(hf_parts) + "\n" + check

    wg_parts = [
        f"WEIGHTGATE_URL={q(base_url.rstrip('/'))}",
        "weightgate download",
        q(f"{scope.model}@{scope.version}"),
    ]
    if scope.paths:
        # The token was narrowed to files: fetch exactly those.
        wg_parts += [f"--include {q(_glob_literal(p))}" for p in scope.paths]
    else:
        wg_parts += [f"--component {q(c)}" for c in scope.components]
    wg_parts.append(f"--to {q(folder)}")
    weightgate = " ".join(wg_parts) + "\n" + check

    return DownloadCommands(
        directory=folder, sha256sums=sums, curl=curl, hf=hf, weightgate=weightgate
    )


def _glob_literal(path: str) -> str:
    """``path`` as a shell-style glob that matches only itself (``--include`` takes globs)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in path)
