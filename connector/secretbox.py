"""Secrets at rest: what the connector stores encrypted in Redis (Shopify access tokens, keys
entered by merchants), under a key derived from ``CONNECTOR_SECRET_KEY``.

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) under a key derived with HKDF-SHA256,
one derived key per purpose. A fingerprint of the derived key is kept beside the data
(:meth:`SecretBox.check`): a process started with another ``CONNECTOR_SECRET_KEY`` stops at start-up
with a clear error instead of failing to decrypt later, silently or one record at a time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from redis import Redis

from connector.errors import ConfigError


class WrongSecretKeyError(ConfigError):
    """``CONNECTOR_SECRET_KEY`` is not the key the stored secrets were encrypted with."""


class SecretBox:
    """Encrypt and decrypt short texts for one ``purpose`` under ``CONNECTOR_SECRET_KEY``."""

    def __init__(self, secret_key: str, purpose: str) -> None:
        if not secret_key:
            raise ConfigError("CONNECTOR_SECRET_KEY is required to keep secrets at rest")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"loyalty-connector", info=purpose.encode()).derive(
            secret_key.encode()
        )
        self.purpose = purpose
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))
        # A fingerprint, not the key: an HMAC of a fixed text under the derived key.
        self.fingerprint = hmac.new(derived, b"key check", hashlib.sha256).hexdigest()[:32]

    def encrypt(self, text: str) -> str:
        """The ciphertext of ``text`` (URL-safe base64)."""
        return self._fernet.encrypt(text.encode()).decode()

    def decrypt(self, token: str) -> str:
        """The text of a ciphertext made by :meth:`encrypt`.

        Raises:
            WrongSecretKeyError: it was made under another key (or altered).
        """
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise WrongSecretKeyError(
                f"a stored {self.purpose} secret cannot be decrypted with this CONNECTOR_SECRET_KEY"
            ) from None

    def check(self, redis: Redis, key: str, *, record: bool = True) -> None:
        """Record the key's fingerprint at ``key`` the first time; afterwards it must match.
        ``record=False``: only compare with a fingerprint already there (a reader that writes
        nothing; the first write records it, see :meth:`record`).

        Raises:
            WrongSecretKeyError: the stored fingerprint is another key's.
        """
        if record:
            redis.set(key, self.fingerprint, nx=True)
        stored = redis.get(key)
        if stored is None and not record:
            return
        stored_text = stored.decode() if isinstance(stored, bytes) else str(stored)
        if not hmac.compare_digest(stored_text, self.fingerprint):
            raise WrongSecretKeyError(
                f"CONNECTOR_SECRET_KEY is not the key the stored {self.purpose} secrets were encrypted with; "
                "start with the original key (it must stay stable once the Shopify app is enabled)"
            )

    def record(self, pipe: Any, key: str) -> None:
        """Queue the recording of the key's fingerprint at ``key`` (when none is there yet) in
        ``pipe``, the transaction of a first write."""
        pipe.set(key, self.fingerprint, nx=True)
