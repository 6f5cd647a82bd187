"""TOTP second factor: secrets encrypted at rest under their own key file, codes and recovery codes
accepted once (a conditional UPDATE, so two parallel posts cannot both win)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session, object_session

from controlplane.accounts.models import MfaRecoveryCode, Role, User
from controlplane.audit import AuditAction, record_event
from controlplane.errors import Conflict, ControlPlaneError, InvalidSettings, NotFound
from controlplane.storage import utcnow

ISSUER = "National Data Center"
MFA_REQUIRED_ROLES = frozenset({Role.OPERATOR, Role.AUDITOR})
STEP_SECONDS = 30
VALID_WINDOW = 1  # steps either side of now: tolerates ±30 s of clock skew
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l: read off paper
_TOTP_RE = re.compile(r"^[0-9]{6}$")
_LEGACY_HKDF_INFO = b"controlplane:mfa-secret:v1"
SEALED_PREFIX = "k1:"  # AES-256-GCM under the MFA key file; older values are legacy Fernet tokens
KEY_BYTES = 32
_NONCE_BYTES = 12


class MfaSecretUnreadable(ControlPlaneError):
    """The stored secret does not decrypt: the MFA key file changed (or was lost) since enrolment."""

    status = 500
    title = "MFA secret unreadable"


def _unreadable() -> MfaSecretUnreadable:
    return MfaSecretUnreadable(
        "the stored MFA secret cannot be decrypted",
        hint="the MFA key file (setting mfa_key_file) is not the one used at enrolment; restore it, "
             "or reset this person's MFA",
    )


def load_or_create_key(path: Path) -> bytes:
    """The MFA key: 32 random bytes, base64 in a 0600 file made on first use (O_EXCL, so two
    workers starting together agree). A file others may read is refused, as ssh refuses such a key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode() + "\n")
    if path.stat().st_mode & 0o077:
        raise InvalidSettings([f"mfa_key_file: {path} may be read by other users; chmod 600 it"])
    try:
        key = base64.b64decode(path.read_text(encoding="ascii").strip(), validate=True)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise InvalidSettings([f"mfa_key_file: {path} does not hold a base64 32-byte key"])
    return key


class SecretBox:
    """Encryption of TOTP secrets: AES-256-GCM under the MFA key, bound to the user's id (a sealed
    secret copied onto another account does not open). `legacy_secret_key` only reads secrets
    sealed by earlier releases under a SECRET_KEY-derived key, so they can be re-sealed."""

    def __init__(self, key: bytes, *, legacy_secret_key: str = "") -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("the MFA key must be 32 bytes")
        self._aead = AESGCM(key)
        self._legacy = _legacy_fernet(legacy_secret_key) if legacy_secret_key else None

    @classmethod
    def from_key_file(cls, path: Path, *, legacy_secret_key: str = "") -> SecretBox:
        return cls(load_or_create_key(path), legacy_secret_key=legacy_secret_key)

    @staticmethod
    def _aad(user_id: int) -> bytes:
        return f"controlplane:mfa-secret:user:{user_id}".encode()

    def seal(self, plaintext: str, *, user_id: int) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, plaintext.encode(), self._aad(user_id))
        return SEALED_PREFIX + base64.urlsafe_b64encode(sealed).decode()

    @staticmethod
    def is_current(sealed: str) -> bool:
        return sealed.startswith(SEALED_PREFIX)

    def open(self, sealed: str, *, user_id: int) -> str:
        if not self.is_current(sealed):
            return self._open_legacy(sealed)
        try:
            raw = base64.urlsafe_b64decode(sealed[len(SEALED_PREFIX):].encode())
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], self._aad(user_id)).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise _unreadable() from None

    def _open_legacy(self, sealed: str) -> str:
        if self._legacy is None:
            raise _unreadable()
        try:
            return self._legacy.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise _unreadable() from None


def _legacy_fernet(app_secret_key: str) -> Fernet:
    """The cipher of releases before the MFA key file: a key derived from SECRET_KEY (read only)."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_LEGACY_HKDF_INFO).derive(
        app_secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def user_secret(user: User, box: SecretBox) -> str:
    """The user's TOTP secret in clear; a legacy (SECRET_KEY-derived) value is re-sealed under the
    MFA key on this first use, in the caller's transaction. Never log the result."""
    if user.mfa_secret_encrypted is None:
        raise NotFound("this account has no authenticator")
    secret = box.open(user.mfa_secret_encrypted, user_id=user.id)
    if not box.is_current(user.mfa_secret_encrypted):
        user.mfa_secret_encrypted = box.seal(secret, user_id=user.id)
        session = object_session(user)
        if session is not None:
            record_event(session, action=AuditAction.ACCOUNT_MFA_RESEAL, initiator="system:mfa",
                         target=f"user:{user.id}", org=user.org)
    return secret


def reseal_legacy_secrets(session: Session, box: SecretBox) -> int:
    """Re-seal every secret still under the legacy key (at start, so none waits for its owner's
    next sign-in); returns how many."""
    users = session.scalars(select(User).where(
        User.mfa_secret_encrypted.is_not(None),
        User.mfa_secret_encrypted.not_like(SEALED_PREFIX + "%"))).all()
    for user in users:
        user_secret(user, box)
    return len(users)


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
        user.mfa_secret_encrypted = box.seal(pyotp.random_base32(), user_id=user.id)
        user.mfa_last_step = None
    secret = user_secret(user, box)
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)
    return MfaEnrolment(secret, uri), created


def read_secret(session: Session, user_id: int, box: SecretBox) -> str:
    """The user's TOTP secret in clear (enrolment display and tests); never log it."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("this account has no authenticator")
    return user_secret(user, box)


def check_totp(session: Session, user: User, code: str, box: SecretBox, *,
               now: datetime | None = None) -> bool:
    """True for a valid code of a time step later than the last one this user used; that step is
    claimed by a conditional UPDATE, so of two requests with one code exactly one wins (the
    other waits for the first's row lock, then finds the step taken)."""
    code = code.replace(" ", "")
    if user.mfa_secret_encrypted is None or not _TOTP_RE.match(code):
        return False
    totp = pyotp.TOTP(user_secret(user, box))
    current = int((now or utcnow()).timestamp()) // STEP_SECONDS
    for step in range(current + VALID_WINDOW, current - VALID_WINDOW - 1, -1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return _claim_step(session, user, step)
    return False


def _claim_step(session: Session, user: User, step: int) -> bool:
    result = session.execute(
        update(User)
        .where(User.id == user.id, or_(User.mfa_last_step.is_(None), User.mfa_last_step < step))
        .values(mfa_last_step=step)
        .execution_options(synchronize_session=False)
    )
    claimed = int(result.rowcount or 0) == 1  # type: ignore[attr-defined]
    session.expire(user, ["mfa_last_step"])
    return claimed


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
    """True if `code` is an unused recovery code of the user; it is then spent, by a conditional
    UPDATE (used_at still empty), so two parallel uses of one code cannot both succeed."""
    digest = _recovery_hash(code)
    rows = session.execute(select(MfaRecoveryCode.id, MfaRecoveryCode.code_hash).where(
        MfaRecoveryCode.user_id == user_id, MfaRecoveryCode.used_at.is_(None))).all()
    for row_id, code_hash in rows:
        if hmac.compare_digest(code_hash, digest):
            spent = session.execute(
                update(MfaRecoveryCode)
                .where(MfaRecoveryCode.id == row_id, MfaRecoveryCode.used_at.is_(None))
                .values(used_at=now or utcnow())
                .execution_options(synchronize_session=False)
            )
            return int(spent.rowcount or 0) == 1  # type: ignore[attr-defined]
    return False


def unused_recovery_codes(session: Session, user_id: int) -> int:
    return len(session.scalars(select(MfaRecoveryCode.id).where(
        MfaRecoveryCode.user_id == user_id, MfaRecoveryCode.used_at.is_(None))).all())
