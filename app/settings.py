"""All configuration, read once from ``WEIGHTGATE_*`` environment variables (and ``.env``).

Embedded defaults (SQLite + filesystem store under ``./var``) make ``make run`` work on a
fresh machine; :meth:`Settings.check_production` refuses them where data would vanish with
a container.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


def served_url(host: str, port: int) -> str:
    """The URL of ``serve --host --port`` as a client on this machine reaches it: the
    default public URL when ``WEIGHTGATE_PUBLIC_URL`` is not set. A wildcard address
    (all interfaces) is reached through the loopback one."""
    host = host.strip("[]")
    if host in ("", "0.0.0.0"):  # noqa: S104 - naming the wildcard, not binding it
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WEIGHTGATE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("./var")
    database_url: str = ""
    # file:///abs/path, a bare path, or s3://bucket/prefix
    storage_url: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_path_style: bool = False
    # Above this size uploads to S3 go through multipart upload.
    s3_multipart_threshold: int = 64 * 1024 * 1024
    s3_multipart_chunk: int = 16 * 1024 * 1024
    delivery_mode: Literal["redirect", "proxy"] = "redirect"
    # The URL clients use to reach this server (download URLs are built from it). Unset,
    # `weightgate serve` fills it in from the address it serves (see served_url).
    public_url: str | None = None
    issuer: str = "weightgate"

    # Upload limits: a single file may be large (weight shards), but never unbounded.
    max_upload_bytes: int = 200 * 1024**3
    max_path_bytes: int = 1024

    open_registration: bool = False
    keys_dir: Path | None = None
    signing_key_pem: str | None = Field(default=None, repr=False)
    # Release-signing keys (app/signing/keys.py, docs/signing.md): never the token keys.
    release_keys_dir: Path | None = None
    release_signing_key_pem: str | None = Field(default=None, repr=False)
    # A configured release key instead of generated ones (app/signing/configured.py): a PEM
    # private key file, or a key held in an HSM or token through PKCS #11. Rotation is
    # configuring a new one; each is recorded in the release keys directory when it first
    # signs, so earlier keys stay published. The PIN comes from the environment or a file.
    release_signing_key_file: Path | None = None
    release_pkcs11_module: Path | None = None
    release_pkcs11_token_label: str | None = None
    release_pkcs11_slot: int | None = None
    release_pkcs11_key_label: str | None = None
    release_pkcs11_key_id: str | None = None  # CKA_ID, hex
    release_pkcs11_pin: SecretStr | None = Field(default=None, repr=False)
    release_pkcs11_pin_file: Path | None = None
    # PEM: the configured key's certificate (issued by the lab's CA), then its intermediates.
    # Bundles then carry the chain (model-signing's `certificate` method).
    release_certificate_chain: Path | None = None
    token_default_ttl: int = 15 * 60
    token_max_ttl: int = 24 * 3600
    partner_token_ttl: int = 3600
    presign_max_seconds: int = 300
    # Allowed clock difference between replicas for a token's iat/nbf (not for exp).
    token_leeway_seconds: int = 5
    # How often a replica re-reads the keys directory for rotated keys.
    keys_reload_seconds: float = 10.0
    # How often a process looks for changes committed elsewhere to what it caches (API keys,
    # users, grants, agreements, the catalogue): the bound, plus one round trip, on how long
    # a revocation, a hold or a disabled user may still be honoured by a replica that did not
    # make it (app/freshness.py). Kept under a second.
    cache_check_seconds: float = Field(default=0.5, gt=0, le=0.9)
    # PostgreSQL only: commit download records without waiting for the WAL flush. Faster
    # redemptions; a database crash can lose the last ~0.6 s of them (docs/tokens.md).
    delivery_async_commit: bool = False
    # Downloads arriving together are decided in one transaction (app/delivery/group_commit.py);
    # at most this many per transaction.
    delivery_max_batch: int = Field(default=64, ge=1, le=1000)

    quota_tokens_per_minute: int = 120
    quota_bytes_per_day: int = 10 * 1024**4
    quota_anonymous_per_minute: int = 600
    # Sign-up attempts per client address (open registration only): bounds account spam and
    # probing which emails have accounts.
    quota_registrations_per_hour: int = 10
    # Safety reports filed per reporter per hour: keeps one account from flooding the
    # triage queue (it cannot sway a safety policy: a reporter counts once however many).
    quota_reports_per_hour: int = 20

    scheduler_enabled: bool = True
    scheduler_interval: float = 1.0
    reminder_before_seconds: int = 24 * 3600
    # How often each replica looks for components that came to meet their model's safety
    # policy without a new report (app/safety/sweep.py).
    safety_sweep_interval: float = Field(default=30.0, gt=0)
    webhook_horizon_seconds: int = 24 * 3600
    webhook_allow_private: bool = False
    # Background work across replicas (docs/operations.md).
    replica_name: str = ""  # recorded with each transition; default "<hostname>:<pid>"
    scheduler_batch: int = Field(default=100, ge=1, le=10_000)
    credentials_reminder_before_seconds: int = 7 * 24 * 3600
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # A claimed delivery is someone else's to retry once its lease runs out (crashed
    # replica); keep it well above the timeout.
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    webhook_retry_base_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_concurrency: int = Field(default=8, ge=1, le=256)
    webhook_batch: int = Field(default=50, ge=1, le=1000)

    # The web console (docs/console.md): a browser session ends after this long without a
    # request, and in any case this long after sign-in.
    console_session_idle_seconds: int = Field(default=30 * 60, ge=60, le=7 * 24 * 3600)
    console_session_max_seconds: int = Field(default=12 * 3600, ge=300, le=30 * 24 * 3600)

    # Console sign-in through the lab's identity provider (OpenID Connect, authorization code
    # + PKCE; docs/console.md). Enabled when the issuer and the client id are set.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = Field(default=None, repr=False)
    # Comma-separated email domains allowed to sign in this way ("" = any the provider vouches
    # for); users are matched by verified email.
    oidc_allowed_domains: str = ""
    # Whether a verified email with no account becomes a new researcher (else it is refused).
    oidc_create_users: bool = False
    oidc_scopes: str = "openid email profile"

    log_level: str = "INFO"
    log_json: bool = True
    # /readyz stays ready this long after a dependency that answered before starts failing,
    # and waits at most the timeout for a check (app/observability/readiness.py).
    ready_grace_seconds: float = Field(default=30.0, ge=0)
    ready_check_timeout_seconds: float = Field(default=2.0, gt=0)

    # Production in a container refuses SQLite and a filesystem store: unless data_dir is a
    # mounted volume they live on the container's own disk and vanish with it. An operator
    # who did mount one says so here.
    allow_local_state_in_container: bool = False

    @field_validator("database_url", mode="after")
    @classmethod
    def _normalise_db(cls, v: str) -> str:
        # Accept the URL forms operators paste from their provider.
        if v.startswith("postgres://"):
            v = "postgresql+psycopg://" + v[len("postgres://") :]
        elif v.startswith("postgresql://"):
            v = "postgresql+psycopg://" + v[len("postgresql://") :]
        return v

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'weightgate.db').as_posix()}"

    @property
    def effective_storage_url(self) -> str:
        return self.storage_url or (self.data_dir / "objects").resolve().as_uri()

    @property
    def effective_keys_dir(self) -> Path:
        return self.keys_dir or self.data_dir / "keys"

    @property
    def effective_release_keys_dir(self) -> Path:
        return self.release_keys_dir or self.data_dir / "release-keys"

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or DEFAULT_PUBLIC_URL).rstrip("/")

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    @property
    def oidc_domains(self) -> frozenset[str]:
        return frozenset(
            d.strip().lower() for d in self.oidc_allowed_domains.split(",") if d.strip()
        )

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def check_production(self, *, in_container: bool) -> None:
        """Refuse to serve production data from a container's own disk (see
        ``allow_local_state_in_container``). Raises :class:`UnsafeConfiguration`."""
        if self.environment != "production" or not in_container:
            return
        if self.allow_local_state_in_container:
            return
        local = []
        if self.is_sqlite:
            local.append("the database is a SQLite file (set WEIGHTGATE_DATABASE_URL)")
        if not self.effective_storage_url.startswith("s3://"):
            local.append("objects are stored in a directory (set WEIGHTGATE_STORAGE_URL)")
        if local:
            raise UnsafeConfiguration(
                "refusing to start in production inside a container: "
                + "; ".join(local)
                + f", under {self.data_dir}, which vanishes with the container unless it is "
                "a mounted volume. Use PostgreSQL and S3, or set "
                "WEIGHTGATE_ALLOW_LOCAL_STATE_IN_CONTAINER=true if a volume is mounted there."
            )


class UnsafeConfiguration(Exception):
    """The settings would lose data in this environment; the server does not start."""


def running_in_container() -> bool:
    """Docker and Podman leave a marker file in every container; Kubernetes sets
    ``KUBERNETES_SERVICE_HOST`` in every pod, whatever its runtime."""
    markers = (Path("/.dockerenv"), Path("/run/.containerenv"))
    return any(m.exists() for m in markers) or "KUBERNETES_SERVICE_HOST" in os.environ


@lru_cache
def get_settings() -> Settings:
    return Settings()
