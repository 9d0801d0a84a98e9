"""Ed25519 keys with key ids, a key ring kept in a folder, and compact JWS tokens.

Formats (all standard, so any JOSE library can check our tokens):

- Tokens are compact JWS (RFC 7515) with ``alg`` ``EdDSA`` (RFC 8037): header
  ``{"alg": "EdDSA", "kid": ..., "typ": ...}``, payload a JSON object, both serialised
  as sorted-key JSON without spaces in UTF-8 (so a payload always gives the same token)
  and base64url-encoded without padding.
- A key id (``kid``) is the RFC 7638 JWK thumbprint of the public key: base64url of the
  SHA-256 of ``{"crv":"Ed25519","kty":"OKP","x":...}``. Anyone holding the public key
  can recompute it; it changes with the key and with nothing else.
- Public keys are published as a JWKS (RFC 7517): ``{"keys": [{"kty": "OKP", "crv":
  "Ed25519", "x": ..., "kid": ..., "use": "sig", "alg": "EdDSA", "created_at": ...,
  "not_after": ...}]}``. ``created_at`` and ``not_after`` (ISO 8601 UTC) are extension
  members, which JOSE libraries ignore: a key may sign from ``created_at`` until
  ``not_after``; tokens it signed in that window stay verifiable for as long as the key
  is published.

Key ring on disk (``load_key_ring(folder, now)``; the app passes its instance folder):
``<kid>.pem`` (PKCS#8 private key, or a SubjectPublicKeyInfo public key for a key kept
for verification only) and ``<kid>.json`` (``{"kid", "created_at", "not_after"}``), both
mode 0600 in a folder of mode 0700. A key is generated on first use and whenever no key
may sign at ``now``; ``rotate_key`` adds a new active key and ends the signing window of
the old ones at once (they stay published). A lock file serialises these changes between
processes. ``key_ring_from_config`` reads keys given as PEM text instead.

``sign(payload, key)`` and ``verify(token, keys, now)``; the errors are drawn in
``certificates.errors``. The crypto is the ``cryptography`` package's; this module only
frames it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from certificates.errors import (
    BadSignature,
    IssuedInFuture,
    KeyNotValidAtIssue,
    KeyRingError,
    MalformedToken,
    NoSigningKey,
    UnknownKey,
    UnsupportedAlgorithm,
)

logger = logging.getLogger(__name__)

ALGORITHM = "EdDSA"
TOKEN_TYPE = "cert+jwt"  # noqa: S105 - JOSE typ (RFC 8725 3.11: explicit typing), no secret
DEFAULT_KEY_LIFETIME = dt.timedelta(days=365)  # how long a new key may sign
CLOCK_LEEWAY = dt.timedelta(minutes=5)  # issued_at may be this far after a verifier's now
MAX_TOKEN_LENGTH = 8192
HEADER_MEMBERS = frozenset({"alg", "kid", "typ"})  # anything else (``crit``, ``jku``) refused
SIGNATURE_BYTES = 64
LOCK_FILE = ".lock"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)


# ---- encodings -----------------------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url strictly: other characters, padding and non-canonical
    trailing bits are refused (``ValueError``), so one value has one encoding."""
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as error:
        raise ValueError("not base64url") from error
    if b64url_encode(data) != text:
        raise ValueError("non-canonical base64url")
    return data


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8 (not ``\\u`` escapes: shorter for names and kana)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member")
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_object(data: bytes) -> dict[str, Any]:
    """A JSON object, refusing duplicate members and NaN/Infinity (``ValueError``)."""
    value = json.loads(
        data.decode("utf-8"),
        object_pairs_hook=_refuse_duplicates,
        parse_constant=_refuse_constant,
    )
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def utc_iso(moment: dt.datetime) -> str:
    """``2026-12-10T09:30:00Z`` (seconds; the time must be aware)."""
    _require_aware(moment, "time")
    return moment.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    _require_aware(moment, "time")
    return moment.astimezone(dt.UTC)


def numeric_date(moment: dt.datetime) -> int:
    """JWT NumericDate: whole seconds since the epoch (RFC 7519 section 2)."""
    _require_aware(moment, "time")
    return int(moment.timestamp())


def from_numeric_date(value: Any) -> dt.datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("not a NumericDate")
    return dt.datetime.fromtimestamp(value, dt.UTC)


def _require_aware(moment: dt.datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC)")


# ---- keys ----------------------------------------------------------------------------


def raw_public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def thumbprint(public_key: Ed25519PublicKey) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256, base64url): our key id."""
    required = {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(raw_public_bytes(public_key))}
    return b64url_encode(hashlib.sha256(canonical_json(required)).digest())


@dataclass(frozen=True)
class Key:
    """An Ed25519 key of the ring; ``private_key`` is ``None`` for a verification-only key.

    The key may sign at times in ``[created_at, not_after)``; an unset bound is open.
    """

    kid: str
    public_key: Ed25519PublicKey = field(repr=False, compare=False)
    created_at: dt.datetime | None = None
    not_after: dt.datetime | None = None
    private_key: Ed25519PrivateKey | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_private(
        cls,
        private_key: Ed25519PrivateKey,
        created_at: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> Key:
        public_key = private_key.public_key()
        return cls(thumbprint(public_key), public_key, created_at, not_after, private_key)

    @classmethod
    def from_public(
        cls,
        public_key: Ed25519PublicKey,
        created_at: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> Key:
        return cls(thumbprint(public_key), public_key, created_at, not_after)

    @property
    def has_private_key(self) -> bool:
        return self.private_key is not None

    def is_valid_at(self, moment: dt.datetime) -> bool:
        """Whether the key may have signed at ``moment`` (its window, private key or not)."""
        if self.created_at is not None and moment < self.created_at:
            return False
        return self.not_after is None or moment < self.not_after

    def can_sign_at(self, moment: dt.datetime) -> bool:
        return self.has_private_key and self.is_valid_at(moment)

    def public(self) -> Key:
        """The same key without its private part (what a verifier holds)."""
        return dataclasses.replace(self, private_key=None)

    def jwk(self) -> dict[str, Any]:
        """The public JWK (never ``d``), with the signing window as extension members."""
        entry: dict[str, Any] = {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url_encode(raw_public_bytes(self.public_key)),
            "kid": self.kid,
            "use": "sig",
            "alg": ALGORITHM,
        }
        if self.created_at is not None:
            entry["created_at"] = utc_iso(self.created_at)
        if self.not_after is not None:
            entry["not_after"] = utc_iso(self.not_after)
        return entry

    def private_pem(self) -> bytes:
        if self.private_key is None:
            raise KeyRingError(f"key {self.kid} has no private part")
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def generate_key(now: dt.datetime, lifetime: dt.timedelta = DEFAULT_KEY_LIFETIME) -> Key:
    """A new key that may sign from ``now`` (the start of its second) for ``lifetime``.

    Tokens state their issue time in whole seconds (``iat``), so a key whose window
    began mid-second could not sign a token issued in that same second.
    """
    _require_aware(now, "now")
    start = now.replace(microsecond=0)
    return Key.from_private(Ed25519PrivateKey.generate(), start, start + lifetime)


def key_from_pem(
    pem: str | bytes,
    created_at: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Key:
    """Read one PEM block: a PKCS#8 Ed25519 private key, or a public key (verify only)."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        if b"PRIVATE KEY" in data:
            private_key = serialization.load_pem_private_key(data, password=None)
            if not isinstance(private_key, Ed25519PrivateKey):
                raise KeyRingError("not an Ed25519 private key")
            return Key.from_private(private_key, created_at, not_after)
        public_key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as error:
        raise KeyRingError(f"unreadable PEM key: {error}") from error
    if not isinstance(public_key, Ed25519PublicKey):
        raise KeyRingError("not an Ed25519 public key")
    return Key.from_public(public_key, created_at, not_after)


def key_from_jwk(entry: Mapping[str, Any]) -> Key:
    """Read a public Ed25519 JWK of a JWKS (its ``kid`` must be its thumbprint)."""
    try:
        if "d" in entry:
            raise KeyRingError("a published key must not contain its private part (d)")
        x = b64url_decode(entry["x"])
        if len(x) != 32:
            raise ValueError("x is not 32 bytes")
        key = Key.from_public(
            Ed25519PublicKey.from_public_bytes(x),
            parse_utc(entry["created_at"]) if "created_at" in entry else None,
            parse_utc(entry["not_after"]) if "not_after" in entry else None,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise KeyRingError(f"malformed Ed25519 JWK: {error}") from error
    if entry.get("kid") != key.kid:
        raise KeyRingError(f"JWK kid {entry.get('kid')!r} is not its thumbprint {key.kid}")
    return key


class KeyRing:
    """The keys a service signs with and publishes, oldest first.

    The signing key at a time is the newest key that may sign then; every key of the
    ring is published and verifies the tokens signed in its window.
    """

    def __init__(self, keys: Iterable[Key] = ()) -> None:
        by_kid: dict[str, Key] = {}  # insertion order kept for keys of equal age
        for key in keys:
            known = by_kid.get(key.kid)
            if known is None or (key.has_private_key and not known.has_private_key):
                by_kid[key.kid] = key
        self.keys: tuple[Key, ...] = tuple(sorted(by_kid.values(), key=_age))

    def __iter__(self) -> Iterator[Key]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"KeyRing({[key.kid for key in self.keys]!r})"

    def get(self, kid: str) -> Key | None:
        return next((key for key in self.keys if key.kid == kid), None)

    def signing_key(self, now: dt.datetime) -> Key:
        """The newest key that may sign at ``now``; ``NoSigningKey`` if there is none."""
        _require_aware(now, "now")
        for key in reversed(self.keys):
            if key.can_sign_at(now):
                return key
        raise NoSigningKey(f"no key may sign at {utc_iso(now)}")

    def jwks(self) -> dict[str, Any]:
        """The public keys as a JWK Set, oldest first (what ``/certificates/keys`` serves)."""
        return {"keys": [key.jwk() for key in self.keys]}

    def public(self) -> KeyRing:
        return KeyRing(key.public() for key in self.keys)

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any]) -> KeyRing:
        """Read a JWKS; keys of other types (RSA, EC, X25519) are ignored (RFC 7517 5)."""
        entries = jwks.get("keys") if isinstance(jwks, Mapping) else None
        if not isinstance(entries, list):
            raise KeyRingError('a JWKS is an object with a "keys" list')
        return cls(
            key_from_jwk(entry)
            for entry in entries
            if isinstance(entry, Mapping)
            and entry.get("kty") == "OKP"
            and entry.get("crv") == "Ed25519"
        )


def _age(key: Key) -> dt.datetime:
    """Sort key: undated keys first, in the order given (the sort is stable)."""
    return key.created_at or dt.datetime.min.replace(tzinfo=dt.UTC)


def as_key_ring(keys: KeyRing | Mapping[str, Any] | Iterable[Key]) -> KeyRing:
    """A ring from a ``KeyRing``, a JWKS (dict) or ``Key`` objects."""
    if isinstance(keys, KeyRing):
        return keys
    if isinstance(keys, Mapping):
        return KeyRing.from_jwks(keys)
    return KeyRing(keys)


# ---- keys from configuration ---------------------------------------------------------


def key_ring_from_config(value: str | Sequence[str | Mapping[str, Any]]) -> KeyRing:
    """Read keys given in configuration instead of the key folder.

    ``value`` is PEM text (one or more blocks, oldest first: the last private key
    signs), or a list of PEM strings or of mappings ``{"pem": ..., "created_at":
    "2026-01-01T00:00:00Z", "not_after": ...}`` (times optional, ISO 8601 with offset).
    Public-key blocks are kept for verification only.
    """
    if isinstance(value, str):
        blocks = [match.group(0) for match in _PEM_BLOCK.finditer(value)]
        if not blocks:
            raise KeyRingError("no PEM block in the configured key text")
        entries: Sequence[str | Mapping[str, Any]] = blocks
    else:
        entries = value
    keys = []
    for position, entry in enumerate(entries):
        if isinstance(entry, str):
            key = key_from_pem(entry)
        elif isinstance(entry, Mapping) and "pem" in entry:
            try:
                created = entry.get("created_at")
                ends = entry.get("not_after")
                key = key_from_pem(
                    entry["pem"],
                    _config_time(created) if created else None,
                    _config_time(ends) if ends else None,
                )
            except ValueError as error:
                raise KeyRingError(f"configured key {position}: {error}") from error
        else:
            raise KeyRingError(f"configured key {position}: a PEM string or a mapping with pem")
        keys.append(key)
    return KeyRing(keys)


def _config_time(value: str | dt.datetime) -> dt.datetime:
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    _require_aware(moment, "configured time")
    return moment.astimezone(dt.UTC)


# ---- the key folder ------------------------------------------------------------------


def load_key_ring(
    folder: str | os.PathLike[str],
    now: dt.datetime,
    *,
    lifetime: dt.timedelta = DEFAULT_KEY_LIFETIME,
    create: bool = True,
) -> KeyRing:
    """Read the keys in ``folder``; with ``create``, first make one if none may sign now.

    So the first use creates the folder (mode 0700) and a key, and a ring whose keys have
    all passed their ``not_after`` gets a new one. Without ``create`` the ring may have
    no signing key (a verify-only host).
    """
    _require_aware(now, "now")
    path = Path(folder)
    if not create:
        return _read_folder(path) if path.is_dir() else KeyRing()
    with _locked(path):
        ring = _read_folder(path)
        if not any(key.can_sign_at(now) for key in ring):
            key = generate_key(now, lifetime)
            _write_key(path, key)
            logger.info(
                "certificate signing key %s created, signs until %s", key.kid, key.not_after
            )
            ring = KeyRing([*ring, key])
        return ring


def rotate_key(
    folder: str | os.PathLike[str],
    now: dt.datetime,
    *,
    lifetime: dt.timedelta = DEFAULT_KEY_LIFETIME,
) -> KeyRing:
    """Add a new signing key and end the signing window of the others at ``now``.

    The old keys stay in the folder and in the JWKS, so what they signed before ``now``
    still verifies; a token an old key signs after ``now`` (a stolen key) does not.
    """
    _require_aware(now, "now")
    path = Path(folder)
    with _locked(path):
        ring = _read_folder(path)
        for key in ring:
            if key.not_after is None or key.not_after > now:
                _write_metadata(path, dataclasses.replace(key, not_after=now), replace=True)
        key = generate_key(now, lifetime)
        _write_key(path, key)
        logger.info("certificate signing key rotated: %s signs from now", key.kid)
        return _read_folder(path)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on the key folder (several worker processes start at once)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        logger.warning("the key folder %s is open to other users: chmod 700 it", folder)
    descriptor = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)


def _read_folder(folder: Path) -> KeyRing:
    keys = []
    for pem_path in sorted(folder.glob("*.pem")):
        metadata_path = pem_path.with_suffix(".json")
        try:
            metadata = parse_json_object(metadata_path.read_bytes())
            key = key_from_pem(
                pem_path.read_bytes(),
                parse_utc(metadata["created_at"]),
                parse_utc(metadata["not_after"]) if metadata.get("not_after") else None,
            )
        except (OSError, KeyError, ValueError) as error:
            raise KeyRingError(f"key file {pem_path.name}: {error}") from error
        if key.kid != pem_path.stem or metadata.get("kid") != key.kid:
            raise KeyRingError(f"key file {pem_path.name} does not hold key {pem_path.stem}")
        keys.append(key)
    return KeyRing(keys)


def _write_key(folder: Path, key: Key) -> None:
    _write_private(folder / f"{key.kid}.pem", key.private_pem())
    _write_metadata(folder, key)


def _write_metadata(folder: Path, key: Key, replace: bool = False) -> None:
    metadata = {
        "kid": key.kid,
        "alg": ALGORITHM,
        "created_at": utc_iso(key.created_at) if key.created_at else None,
        "not_after": utc_iso(key.not_after) if key.not_after else None,
    }
    data = json.dumps(metadata, indent=2, sort_keys=True).encode() + b"\n"
    target = folder / f"{key.kid}.json"
    if not replace:
        _write_private(target, data)
        return
    temporary = folder / f".{key.kid}.json.tmp"
    temporary.unlink(missing_ok=True)
    _write_private(temporary, data)
    temporary.replace(target)  # atomic: a reader sees the old or the new window


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` readable by the owner only (refusing to overwrite) and fsync it."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # whatever the umask
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# ---- tokens --------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedToken:
    """A token whose signature, key and issue time checked out."""

    header: dict[str, Any]
    payload: dict[str, Any]
    key: Key
    issued_at: dt.datetime

    @property
    def kid(self) -> str:
        return self.key.kid


def encode_jws(header: Mapping[str, Any], payload: bytes, private_key: Ed25519PrivateKey) -> str:
    """The compact JWS of ``payload`` under ``header`` (header serialised canonically)."""
    signing_input = f"{b64url_encode(canonical_json(dict(header)))}.{b64url_encode(payload)}"
    signature = private_key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url_encode(signature)}"


def sign(
    payload: Mapping[str, Any],
    key: Key,
    *,
    typ: str = TOKEN_TYPE,
    kid: str | None = None,
) -> str:
    """Sign ``payload`` (a JSON object) as a compact JWS with ``key``.

    The payload's issue time (``iat``, else ``nbf``, as a NumericDate) must fall in the
    key's signing window: a key past its ``not_after`` refuses to sign. ``kid`` replaces
    the key id in the header by a URI ending in ``#<kid>`` (Open Badges asks for a
    dereferenceable URI); ``verify`` reads both forms.
    """
    if key.private_key is None:
        raise KeyRingError(f"key {key.kid} cannot sign: no private part")
    issued = payload.get("iat", payload.get("nbf"))
    if issued is not None and not key.can_sign_at(from_numeric_date(issued)):
        raise NoSigningKey(f"key {key.kid} may not sign at {utc_iso(from_numeric_date(issued))}")
    if kid is not None and kid.rpartition("#")[2] != key.kid:
        raise ValueError("kid must name the signing key")
    header = {"alg": ALGORITHM, "kid": kid or key.kid, "typ": typ}
    return encode_jws(header, canonical_json(dict(payload)), key.private_key)


def split_token(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Decode without verifying: header, payload, signing input and signature.

    For display and for verification; raises ``MalformedToken``.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise MalformedToken(f"a token is a string of at most {MAX_TOKEN_LENGTH} characters")
    parts = token.strip().split(".")
    if len(parts) != 3 or not all(parts):
        raise MalformedToken("a token has three non-empty parts separated by dots")
    try:
        header = parse_json_object(b64url_decode(parts[0]))
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedToken(f"header: {error}") from error
    try:
        payload = parse_json_object(b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedToken(f"payload: {error}") from error
    try:
        signature = b64url_decode(parts[2])
    except ValueError as error:
        raise MalformedToken(f"signature: {error}") from error
    return header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def verify(
    token: str,
    keys: KeyRing | Mapping[str, Any] | Iterable[Key],
    now: dt.datetime,
    *,
    typ: str | None = TOKEN_TYPE,
    leeway: dt.timedelta = CLOCK_LEEWAY,
) -> VerifiedToken:
    """Check ``token`` against published keys (a JWKS, a ``KeyRing`` or ``Key`` objects).

    In order: the form (three base64url parts, JSON objects, only ``alg``/``kid``/``typ``
    in the header, ``typ`` as expected unless ``typ`` is ``None``), the algorithm
    (EdDSA only), the key id (a published key; a URI ending in ``#<kid>`` is read as
    ``<kid>``), the signature, then the payload's issue time (``iat``, else ``nbf``):
    not after ``now + leeway``, and inside the key's signing window. Each failure raises
    its ``TokenError`` subclass.
    """
    _require_aware(now, "now")
    ring = as_key_ring(keys)
    header, payload, signing_input, signature = split_token(token)
    unknown = set(header) - HEADER_MEMBERS
    if unknown:
        raise MalformedToken(f"header members not understood: {', '.join(sorted(unknown))}")
    if header.get("alg") != ALGORITHM:
        raise UnsupportedAlgorithm(f"alg {header.get('alg')!r} is not {ALGORITHM}")
    if typ is not None and str(header.get("typ", "")).lower() != typ.lower():
        raise MalformedToken(f"typ {header.get('typ')!r} is not {typ}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise MalformedToken("the header has no kid")
    key = ring.get(kid.rpartition("#")[2])
    if key is None:
        raise UnknownKey(f"no published key has kid {kid}")
    if len(signature) != SIGNATURE_BYTES:
        raise BadSignature("an Ed25519 signature has 64 bytes")
    try:
        key.public_key.verify(signature, signing_input)
    except InvalidSignature as error:
        raise BadSignature(f"the signature does not match key {key.kid}") from error
    try:
        issued_at = from_numeric_date(payload.get("iat", payload.get("nbf")))
    except (ValueError, OverflowError, OSError) as error:
        raise MalformedToken("the payload has no issue time (iat)") from error
    if issued_at > now + leeway:
        raise IssuedInFuture(f"issued at {utc_iso(issued_at)}, after {utc_iso(now)}")
    if not key.is_valid_at(issued_at):
        window = (
            f"before it was created ({utc_iso(key.created_at)})"
            if key.created_at is not None and issued_at < key.created_at
            else f"after its not_after ({utc_iso(key.not_after)})"  # type: ignore[arg-type]
        )
        raise KeyNotValidAtIssue(f"key {key.kid} could not sign at {utc_iso(issued_at)}: {window}")
    return VerifiedToken(header, payload, key, issued_at)
