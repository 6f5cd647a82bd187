"""TOTP second factor: secrets encrypted at rest, codes never accepted twice, one-time recovery codes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from controlplane.accounts.models import MfaRecoveryCode, Role, User
from controlplane.errors import Conflict, ControlPlaneError, NotFound
from controlplane.storage import utcnow

ISSUER = "National Data Center"
MFA_REQUIRED_ROLES = frozenset({Role.OPERATOR, Role.AUDITOR})
STEP_SECONDS = 30
VALID_WINDOW = 1  # steps either side of now: tolerates ±30 s of clock skew
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l: read off paper
_TOTP_RE = re.compile(r"^[0-9]{6}$")
_HKDF_INFO = b"controlplane:mfa-secret:v1"


class MfaSecretUnreadable(ControlPlaneError):
    """The stored secret does not decrypt: the app's SECRET_KEY changed since enrolment."""

    status = 500
    title = "MFA secret unreadable"


class SecretBox:
    """Fernet encryption of TOTP secrets under a key derived (HKDF-SHA256) from the app secret key."""

    def __init__(self, app_secret_key: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
            app_secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise MfaSecretUnreadable(
                "the stored MFA secret cannot be decrypted",
                hint="the SECRET_KEY changed since enrolment; reset this user's MFA",
            ) from None


@dataclass(frozen=True)
class MfaEnrolment:
    """What the enrolment page shows: the secret as text and as an otpauth:// URI for the QR code."""

    secret: str
    uri: str


def mfa_required(user: User) -> bool:
    return Role(user.role) in MFA_REQUIRED_ROLES


def mfa_enrolled(user: User) -> bool:
    return user.mfa_enrolled_at is not None and user.mfa_secret_encrypted is not None


def begin_enrolment(session: Session, user_id: int, box: SecretBox) -> tuple[MfaEnrolment, bool]:
    """The user's unconfirmed TOTP secret, made on first call; (enrolment, newly made)."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    if mfa_enrolled(user):
        raise Conflict("this account already has an authenticator")
    created = user.mfa_secret_encrypted is None
    if created:
        user.mfa_secret_encrypted = box.seal(pyotp.random_base32())
        user.mfa_last_step = None
    secret = box.open(user.mfa_secret_encrypted or "")
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)
    return MfaEnrolment(secret, uri), created


def read_secret(session: Session, user_id: int, box: SecretBox) -> str:
    """The user's TOTP secret in clear (enrolment display and tests); never log it."""
    user = session.get(User, user_id)
    if user is None or user.mfa_secret_encrypted is None:
        raise NotFound("this account has no authenticator")
    return box.open(user.mfa_secret_encrypted)


def check_totp(user: User, code: str, box: SecretBox, *, now: datetime | None = None) -> bool:
    """True (and the step remembered) for a valid code of a step later than the last one used."""
    code = code.replace(" ", "")
    if user.mfa_secret_encrypted is None or not _TOTP_RE.match(code):
        return False
    totp = pyotp.TOTP(box.open(user.mfa_secret_encrypted))
    current = int((now or utcnow()).timestamp()) // STEP_SECONDS
    last = user.mfa_last_step if user.mfa_last_step is not None else -1
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if step > last and hmac.compare_digest(totp.generate_otp(step), code):
            user.mfa_last_step = step
            return True
    return False


def confirm_enrolment(user: User, *, now: datetime | None = None) -> None:
    user.mfa_enrolled_at = now or utcnow()


# ------------------------------------------------------------------------------ recovery codes
def _normalise_recovery(code: str) -> str:
    return code.replace("-", "").replace(" ", "").lower()


def _recovery_hash(code: str) -> str:
    return hashlib.sha256(_normalise_recovery(code).encode()).hexdigest()


def replace_recovery_codes(session: Session, user_id: int) -> list[str]:
    """Fresh recovery codes (shown once); the previous ones stop working."""
    session.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user_id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
    session.add_all(MfaRecoveryCode(user_id=user_id, code_hash=_recovery_hash(c)) for c in codes)
    return codes


def looks_like_recovery_code(code: str) -> bool:
    return len(_normalise_recovery(code)) == 16


def use_recovery_code(session: Session, user_id: int, code: str, *, now: datetime | None = None) -> bool:
    """True if `code` is an unused recovery code of the user; it is then spent."""
    digest = _recovery_hash(code)
    rows = session.scalars(select(MfaRecoveryCode).where(
        MfaRecoveryCode.user_id == user_id, MfaRecoveryCode.used_at.is_(None))).all()
    for row in rows:
        if hmac.compare_digest(row.code_hash, digest):
            row.used_at = now or utcnow()
            return True
    return False


def unused_recovery_codes(session: Session, user_id: int) -> int:
    return len(session.scalars(select(MfaRecoveryCode.id).where(
        MfaRecoveryCode.user_id == user_id, MfaRecoveryCode.used_at.is_(None))).all())
