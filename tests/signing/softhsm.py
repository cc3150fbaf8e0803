"""A SoftHSM2 token for the PKCS #11 tests: initialised with Debian's ``softhsm2-util`` in a
temporary directory (``SOFTHSM2_CONF`` points at a config of our own), EC P-256 keys
generated inside it, non-extractable, as an operator would make them on an HSM.

The PKCS #11 module keeps its state per process (the configuration is read once, logins are
per process), so a worker has one token directory for its whole run: the fixture is
session-scoped and each test uses keys of its own labels.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import PyKCS11  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from app.signing.pkcs11 import P256_PARAMS

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
SOFTHSM_UTIL = "softhsm2-util"
TOKEN = "weightgate-release"
PIN = "4821-9373"
# A second token nobody logs into: a wrong PIN is only noticed on a token this process has
# not opened (PKCS #11 logins are per process, and the first token is in use).
UNOPENED = "weightgate-unopened"


@dataclass(frozen=True)
class SoftHsm:
    module: Path
    conf: Path

    def generate(self, label: str, *, token: str = TOKEN) -> ec.EllipticCurvePublicKey:
        """An EC P-256 key pair made inside the token; the private half can never leave."""
        lib = PyKCS11.PyKCS11Lib()
        lib.load(str(self.module))
        slot = next(s for s in lib.getSlotList(True) if lib.getTokenInfo(s).label.strip() == token)
        session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
        try:
            session.login(PIN)
        except PyKCS11.PyKCS11Error as e:
            if e.value != PyKCS11.CKR_USER_ALREADY_LOGGED_IN:
                raise
        common: list[tuple[int, Any]] = [
            (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC),
            (PyKCS11.CKA_TOKEN, True),
            (PyKCS11.CKA_LABEL, label),
            (PyKCS11.CKA_ID, tuple(label.encode())),
        ]
        public = [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY),
            (PyKCS11.CKA_VERIFY, True),
            (PyKCS11.CKA_EC_PARAMS, P256_PARAMS),
            *common,
        ]
        private = [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
            (PyKCS11.CKA_SIGN, True),
            (PyKCS11.CKA_PRIVATE, True),
            (PyKCS11.CKA_SENSITIVE, True),
            (PyKCS11.CKA_EXTRACTABLE, False),
            *common,
        ]
        handle, _ = session.generateKeyPair(
            public, private, mecha=PyKCS11.MechanismECGENERATEKEYPAIR
        )
        (point,) = session.getAttributeValue(handle, [PyKCS11.CKA_EC_POINT])
        session.closeSession()
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes(point)[2:])

    def uri(self, label: str) -> str:
        """The key's RFC 7512 URI, as upstream model-signing's ``sign pkcs11-key`` takes it."""
        return f"pkcs11:token={TOKEN};object={label}?module-path={self.module}&pin-value={PIN}"

    def close_all_sessions(self) -> None:
        """Every session of this process on the token ends, the server's included (as when
        a token is reset or an HSM restarts under it)."""
        lib = PyKCS11.PyKCS11Lib()
        lib.load(str(self.module))
        slot = next(s for s in lib.getSlotList(True) if lib.getTokenInfo(s).label.strip() == TOKEN)
        lib.closeAllSessions(slot)

    def private_value(self, label: str) -> Any:
        """What the token answers when asked for the private key's value (CKA_VALUE)."""
        lib = PyKCS11.PyKCS11Lib()
        lib.load(str(self.module))
        slot = next(s for s in lib.getSlotList(True) if lib.getTokenInfo(s).label.strip() == TOKEN)
        session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION)
        try:
            session.login(PIN)
        except PyKCS11.PyKCS11Error as e:
            if e.value != PyKCS11.CKR_USER_ALREADY_LOGGED_IN:
                raise
        (key,) = session.findObjects(
            [(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_LABEL, label)]
        )
        (value,) = session.getAttributeValue(key, [PyKCS11.CKA_VALUE])
        session.closeSession()
        return value


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\nslots.removable = false\n"
    )
    before = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    for label in (TOKEN, UNOPENED):
        subprocess.run(
            [SOFTHSM_UTIL, "--init-token", "--free", "--label", label,
             "--pin", PIN, "--so-pin", "so-" + PIN],
            check=True, capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        )  # fmt: skip
    yield SoftHsm(MODULE, conf)
    if before is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = before
