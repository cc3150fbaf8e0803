"""What a caller may learn about what they may not download (the rule: app/refusals.py's
docstring): how to answer a request for one existing file."""

from __future__ import annotations

from typing import Literal

FileDisclosure = Literal["download", "not_found", "closed"]


def file_disclosure(
    *, downloadable: bool, component_visible: bool, covered_by_token: bool = False
) -> FileDisclosure:
    """How to answer a request for an existing file (a missing one is ``not_found``):

    - ``download``: the caller may download it now;
    - ``closed``: refuse, saying why and when it opens (the file is covered by a token the
      caller holds, and its component is one they may know about);
    - ``not_found``: refuse exactly as if the file did not exist.
    """
    if downloadable:
        return "download"
    if covered_by_token and component_visible:
        return "closed"
    return "not_found"
