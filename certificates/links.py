"""Short verification links for the QR code: ``<base>/verify?n=<number>&s=<signature>``.

The QR code used to hold the whole signed token (``/verify?t=<token>``, about 700
characters: a version 22 code of 105 x 105 modules, most of a certificate's rendering
time). It now holds the certificate number and an Ed25519 signature of it, about 140
characters (version 8 at level M, 49 x 49 modules). The link does what the token link
did: it lands on the authoritative online record (status, holder, scores), and nobody
can make one for a number without a signing key, so it stands in for the date of birth
that a typed lookup needs. The full token stays in the PDF's metadata for offline
checks, and ``/verify?t=`` keeps working for certificates printed before.

The signature is over ``LINK_CONTEXT + number`` (ASCII): the context separates it from
every other use of the keys (a JWS signing input is base64url and a dot, never this
prefix), so a token's signature can never pass as a link's or the other way round.
The link carries no key id, to stay short: the verifier tries every published key of
the ring (a handful; an Ed25519 check takes some 50 microseconds). Any published key
is accepted, whatever its signing window, because a PDF re-rendered after a rotation
carries a link signed by the key in force then, and printed links must keep working for
as long as the certificate is published; a compromised key is withdrawn by deleting it
from the ring (``signing`` module), which also ends the tokens it signed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from cryptography.exceptions import InvalidSignature

from certificates import signing
from certificates.errors import BadSignature, KeyRingError, MalformedToken

LINK_CONTEXT = b"testing-center certificate link v1\x00"


def link_message(number: str) -> bytes:
    """The bytes a link signature covers: the context, then the printed number."""
    return LINK_CONTEXT + number.encode("ascii")


def sign_link(number: str, key: signing.Key) -> str:
    """The link signature of ``number`` (base64url, 86 characters; Ed25519 is
    deterministic, so one key always gives the same signature for one number)."""
    if key.private_key is None:
        raise KeyRingError(f"key {key.kid} cannot sign: no private part")
    return signing.b64url_encode(key.private_key.sign(link_message(number)))


def verification_link(base_url: str, number: str, signature: str) -> str:
    """``<base_url>/verify?n=<number>&s=<signature>`` (both are URL-safe as they are)."""
    query = urlencode({"n": number, "s": signature})
    return f"{base_url.rstrip('/')}/verify?{query}"


def verify_link(
    number: str,
    signature: str,
    keys: signing.KeyRing | Mapping[str, Any] | Iterable[signing.Key],
) -> signing.Key:
    """The published key whose signature ``signature`` is over ``number``.

    Raises ``MalformedToken`` for a signature that is not 64 bytes of base64url and
    ``BadSignature`` when no published key made it (a changed number, a changed
    signature, or a key that is not ours).
    """
    try:
        raw = signing.b64url_decode(signature)
        message = link_message(number)
    except (ValueError, UnicodeEncodeError) as error:
        raise MalformedToken("a link signature is base64url, its number ASCII") from error
    if len(raw) != signing.SIGNATURE_BYTES:
        raise MalformedToken("an Ed25519 signature has 64 bytes")
    for key in signing.as_key_ring(keys):
        try:
            key.public_key.verify(raw, message)
        except InvalidSignature:
            continue
        return key
    raise BadSignature("no published key signed this link")
