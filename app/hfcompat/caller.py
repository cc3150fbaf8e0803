"""Who calls the Hub routes: the API's principal, with the 401 the Hub's client understands."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.auth.dependencies import BearerSchemeDep, get_principal
from app.context import ClockDep
from app.db import SessionDep
from app.errors import Unauthorized
from app.hfcompat import errors
from app.policy.principals import Principal


def hf_principal(
    request: Request, session: SessionDep, clock: ClockDep, _scheme: BearerSchemeDep = None
) -> Principal:
    """The caller; an API key (``wg_…``) is accepted as the Hugging Face token."""
    try:
        return get_principal(request, session, clock)
    except Unauthorized as e:
        raise errors.with_invalid_credentials(e) from e


HfPrincipalDep = Annotated[Principal, Depends(hf_principal)]
