"""Errors of the certificates package.

::

    CertificateError
    ├── InvalidNumber (ValueError)        a typed certificate number is malformed
    ├── KeyRingError                      key files or configured keys are unusable
    │   └── NoSigningKey                  no key may sign at the given time
    └── TokenError                        a token does not verify
        ├── MalformedToken (ValueError)   not a compact JWS of ours: parts, base64url, JSON,
        │                                 header members, ``typ``, claims
        ├── UnsupportedAlgorithm          ``alg`` is not EdDSA (``none``, HS256, ...)
        ├── UnknownKey                    no published key has the token's ``kid``
        ├── BadSignature                  the signature does not match header and payload
        ├── KeyNotValidAtIssue            the key could not sign at the token's issue time
        │                                 (before its ``created_at``, at or after ``not_after``)
        └── IssuedInFuture                issued after ``now`` (beyond the clock leeway)

Each ``TokenError`` has a stable ``code`` (``"bad_signature"``, ...) for APIs and logs.
"""

from __future__ import annotations


class CertificateError(Exception):
    """Base of the errors of this package."""


class InvalidNumber(CertificateError, ValueError):
    """A typed certificate number is malformed (prefix, length, alphabet, check symbol)."""


class KeyRingError(CertificateError):
    """A key file, its metadata or a configured key cannot be used."""


class NoSigningKey(KeyRingError):
    """No key of the ring may sign at the given time."""


class TokenError(CertificateError):
    """A token does not verify; ``code`` names the reason."""

    code = "invalid_token"


class MalformedToken(TokenError, ValueError):
    code = "malformed"


class UnsupportedAlgorithm(TokenError):
    code = "unsupported_algorithm"


class UnknownKey(TokenError):
    code = "unknown_key"


class BadSignature(TokenError):
    code = "bad_signature"


class KeyNotValidAtIssue(TokenError):
    code = "key_not_valid_at_issue"


class IssuedInFuture(TokenError):
    code = "issued_in_future"
