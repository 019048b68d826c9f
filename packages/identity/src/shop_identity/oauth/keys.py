"""Signing keys for id_tokens: the current RSA key signs, retired keys stay in the JWKS for verification."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import RSAKey

__all__ = ("SigningKeys", "generate_private_key_pem", "load_or_create_private_key_pem")

KEY_SIZE = 2048


def generate_private_key_pem() -> str:
    return RSAKey.generate_key(KEY_SIZE, private=True).as_pem(private=True).decode()


def load_or_create_private_key_pem(path: Path) -> str:
    """Read the PEM at `path`, creating it (mode 0600) first if it does not exist. Development only."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = generate_private_key_pem()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first
            pass
        else:
            with os.fdopen(fd, "w") as file:
                file.write(pem)
    return path.read_text()


@dataclass(frozen=True)
class SigningKeys:
    """The signing key (first) and the retired keys still published. `kid` is the RFC 7638 thumbprint."""

    current: RSAKey
    retired: tuple[RSAKey, ...] = ()

    @classmethod
    def from_pems(cls, current: str, retired: tuple[str, ...] = ()) -> SigningKeys:
        signing = RSAKey.import_key(current)
        if not signing.is_private:
            raise ValueError("the OAuth signing key must be an RSA private key")
        return cls(current=signing, retired=tuple(RSAKey.import_key(pem) for pem in retired))

    @property
    def kid(self) -> str:
        return self.current.thumbprint()

    def jwks(self) -> dict[str, Any]:
        keys = []
        for key in (self.current, *self.retired):
            public = dict(key.as_dict(private=False))
            public.update({"kid": key.thumbprint(), "use": "sig", "alg": "RS256"})
            keys.append(public)
        return {"keys": keys}
