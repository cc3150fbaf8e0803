"""Fixtures of the signing tests: the SoftHSM2 token (tests/signing/softhsm.py)."""

from tests.signing.softhsm import softhsm

__all__ = ["softhsm"]
