"""Signed download tokens and partner access tokens (ES256 JWTs), their keys and rows."""
