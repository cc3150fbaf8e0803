"""Who calls the Hub routes: the API's principal, with the 401 the Hub's client understands."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.access.auth import BearerSchemeDep, get_principal
from app.access.principals import Principal
from app.context import ClockDep
from app.db import SessionDep
from app.errors import Unauthorized
from app.hfcompat import errors


def hf_principal(
    request: Request, session: SessionDep, clock: ClockDep, _scheme: BearerSchemeDep = None
) -> Principal:
    """The caller; an API key (``wg_…``) is accepted as the Hugging Face token."""
    try:
        return get_principal(request, session, clock)
    except Unauthorized as e:
        raise errors.with_invalid_credentials(e) from e


HfPrincipalDep = Annotated[Principal, Depends(hf_principal)]
