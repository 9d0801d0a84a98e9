"""The pure certificates package: numbers, keys, signed tokens, the PDF, offline
verification, the practice report and the Open Badges export. No app, no database.

PDFs are checked through extracted text, fonts, metadata and the rendered page (the QR
code is decoded from a 300 dpi rendering with OpenCV), never bytes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import re
import stat

import cv2
import numpy as np
import pypdfium2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image
from pypdf import PdfReader

from certificates import badges, claims, codes, document, links, signing, verify
from certificates.errors import (
    BadSignature,
    InvalidNumber,
    IssuedInFuture,
    KeyNotValidAtIssue,
    KeyRingError,
    MalformedToken,
    NoSigningKey,
    UnknownKey,
    UnsupportedAlgorithm,
)
from certificates.facts import CertificateFacts, PracticeFacts, ScoreLine

NOW = dt.datetime(2026, 12, 10, 9, 30, tzinfo=dt.UTC)
BASE_URL = "https://verify.example.uz"
JWKS_URL = f"{BASE_URL}/api/v1/certificates/keys"
NUMBER = "JP-4N7QX-B2K9M-TW3D" + codes.check_symbol("4N7QXB2K9MTW3D")
FULL_NAME = "Gʻulomova Oʻgʻiloy Ўлмасовна"
STANDARD_14 = {"Helvetica", "Times-Roman", "Courier", "Symbol", "ZapfDingbats"}
# RFC 8037 appendix A: an Ed25519 key, its thumbprint and a signed example
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
RFC8037_JWS = (
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)


def photo_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (900, 1200), (180, 200, 230)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def make_facts():
    """Facts of a passed JFT-style certificate; keyword arguments override fields."""

    def make(**overrides) -> CertificateFacts:
        values = {
            "number": NUMBER,
            "issuing_centre": "Uzbekistan–Japan Testing Centre",
            "exam_code": "jft-basic",
            "exam_title_en": "JFT-Basic style test",
            "exam_title_ja": "JFT-Basic形式テスト",
            "full_name": FULL_NAME,
            "date_of_birth": dt.date(1999, 1, 31),
            "nationality": "Uzbekistan (UZ)",
            "exam_date": dt.date(2026, 12, 3),
            "test_centre": "Tashkent Testing Centre",
            "sections": (
                ScoreLine("script_vocabulary", "Script and Vocabulary", "文字と語彙", 75, 100),
                ScoreLine("conversation", "Conversation and Expression", "会話と表現", 66.7, 100),
                ScoreLine("listening", "Listening Comprehension", "聴解", 83.3, 100, minimum=40),
                ScoreLine("reading", "Reading Comprehension", "読解", 91.7, 100),
            ),
            "total": 215,
            "scale_min": 10,
            "scale_max": 250,
            "passed": True,
            "pass_rule_en": "200 or more of 250 (A2)",
            "pass_rule_ja": "250点中200点以上（A2）",
            "issued_at": NOW,
            "level": "A2.2",
            "photo": None,
        }
        values.update(overrides)
        return CertificateFacts(**values)

    return make


@pytest.fixture
def key() -> signing.Key:
    return signing.generate_key(NOW - dt.timedelta(days=30))


@pytest.fixture
def jwks(key) -> dict:
    return signing.KeyRing([key]).jwks()


def text_of(pdf: bytes) -> str:
    """The text of every page, runs of white space (line ends) read as one space."""
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def decode_qr(pdf: bytes) -> str:
    """The text of a QR code on the first page rendered at 300 dpi ("" if none decodes).

    OpenCV's ArUco-based detector first: its classic ``QRCodeDetector`` misses about one
    in six of these dense (version 22) codes that other decoders read, the ArUco one
    none in our trials; the classic one is the fallback.
    """
    page = pypdfium2.PdfDocument(pdf)[0]
    image = np.array(page.render(scale=300 / 72, grayscale=True).to_pil().convert("L"))
    for detector in (cv2.QRCodeDetectorAruco(), cv2.QRCodeDetector()):
        text, _points, _straight = detector.detectAndDecode(image)
        if text:
            return text
    return ""


def payload_of(token: str) -> dict:
    return json.loads(signing.b64url_decode(token.split(".")[1]))


def with_payload(token: str, payload: dict) -> str:
    """The token with its payload replaced (header and signature kept)."""
    header, _payload, signature = token.split(".")
    return f"{header}.{signing.b64url_encode(signing.canonical_json(payload))}.{signature}"


def render(facts: CertificateFacts, token: str, key: signing.Key) -> bytes:
    """The certificate PDF of ``facts`` carrying ``token``, its QR link signed by ``key``."""
    return document.render_certificate(facts, token, BASE_URL, links.sign_link(facts.number, key))


# ---- certificate numbers ---------------------------------------------------------------


def test_certificate_numbers_are_random_grouped_and_checked():
    """JP-XXXXX-XXXXX-XXXX + check symbol: 14 random symbols (70 bits), never repeated."""
    numbers = {codes.new_certificate_number() for _ in range(2000)}
    assert len(numbers) == 2000
    for number in list(numbers)[:200]:
        assert re.fullmatch(r"JP-[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}-\S{5}", number)
        assert codes.parse_certificate_number(number) == number
    assert 32**codes.CERTIFICATE_SYMBOLS >= 2**60


def test_a_single_wrong_character_is_caught():
    """Every substitution of one symbol of the random part fails the check symbol."""
    body = NUMBER.replace("-", "")[2:-1]
    for position, original in enumerate(body):
        for symbol in codes.ALPHABET.replace(original, ""):
            typo = body[:position] + symbol + body[position + 1 :]
            with pytest.raises(InvalidNumber, match="check symbol"):
                codes.parse_certificate_number("JP" + typo + NUMBER[-1])


def test_a_swap_of_neighbours_is_caught():
    """Swapping two different neighbouring symbols fails the check symbol."""
    for _ in range(50):
        number = codes.new_certificate_number()
        body = number.replace("-", "")[2:-1]
        for i in range(len(body) - 1):
            if body[i] != body[i + 1]:
                swapped = body[:i] + body[i + 1] + body[i] + body[i + 2 :]
                assert not codes.is_certificate_number("JP" + swapped + number[-1])


def test_typed_numbers_are_read_in_their_printed_form():
    """Case, spaces, missing or typographic hyphens, O for 0 and I/L for 1 are tolerated."""
    number = "JP-10ABC-DEF01-KM1N" + codes.check_symbol("10ABCDEF01KM1N")
    typed = [
        number.lower(),
        number.replace("-", " "),
        number.replace("-", ""),
        number.replace("-", "–"),
        " jp-lOabc-def0i-km1n" + number[-1].lower() + " ",
        "JP 1OABC DEFOI KML N" + number[-1],
    ]
    for text in typed:
        assert codes.parse_certificate_number(text) == number, text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("AD-4N7QX-B2K9M-TW3DX", "starts with JP"),
        ("JP-4N7QX-B2K9M-TW3", "15 characters"),
        ("JP-4N7QX-B2K9M-TW3DXX", "15 characters"),
        ("JP-4N7QU-B2K9M-TW3DX", "letters"),
    ],
)
def test_a_malformed_number_says_why(text, reason):
    with pytest.raises(InvalidNumber, match=reason):
        codes.parse_certificate_number(text)


# ---- keys ------------------------------------------------------------------------------


def rfc8037_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(signing.b64url_decode(RFC8037_D))


def test_the_key_id_is_the_rfc_7638_thumbprint():
    """RFC 8037 A.3: the thumbprint of the example key is kPrK_qmx..."""
    key = signing.Key.from_private(rfc8037_key())
    assert key.kid == RFC8037_THUMBPRINT
    assert key.jwk()["x"] == RFC8037_X


def test_the_jws_framing_reproduces_rfc_8037():
    """RFC 8037 A.4: header {"alg":"EdDSA"} over "Example of Ed25519 signing"."""
    token = signing.encode_jws({"alg": "EdDSA"}, b"Example of Ed25519 signing", rfc8037_key())
    assert token == RFC8037_JWS


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_first_use_creates_a_key_readable_by_the_owner_only(tmp_path):
    """A PEM private key and its JSON metadata, 0600, in a 0700 folder; reloading reads
    the same key back."""
    folder = tmp_path / "instance" / "certificate-keys"
    ring = signing.load_key_ring(folder, NOW)
    assert len(ring) == 1
    key = ring.signing_key(NOW)
    pem, metadata = folder / f"{key.kid}.pem", folder / f"{key.kid}.json"
    assert pem.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert json.loads(metadata.read_text()) == {
        "kid": key.kid,
        "alg": "EdDSA",
        "created_at": "2026-12-10T09:30:00Z",
        "not_after": "2027-12-10T09:30:00Z",
    }
    assert mode(pem) == mode(metadata) == 0o600
    assert mode(folder) == 0o700
    again = signing.load_key_ring(folder, NOW + dt.timedelta(days=10))
    assert [k.kid for k in again] == [key.kid]
    assert again.signing_key(NOW).private_pem() == key.private_pem()


def test_a_ring_without_a_signing_key_gets_a_new_one(tmp_path):
    """Once every key is past its not_after, the next load adds a key; the old one stays."""
    old = signing.load_key_ring(tmp_path, NOW).signing_key(NOW)
    later = NOW + signing.DEFAULT_KEY_LIFETIME + dt.timedelta(days=1)
    ring = signing.load_key_ring(tmp_path, later)
    assert len(ring) == 2
    assert ring.signing_key(later).kid != old.kid
    assert ring.get(old.kid) is not None
    assert signing.load_key_ring(tmp_path, later, create=False).keys == ring.keys


def test_rotation_adds_an_active_key_and_keeps_the_old_one_for_verification(tmp_path):
    """After a rotation the new key signs; the old one stops signing at once, and what it
    signed before still verifies."""
    old_ring = signing.load_key_ring(tmp_path, NOW - dt.timedelta(days=100))
    old = old_ring.signing_key(NOW)
    earlier = signing.sign({"iat": signing.numeric_date(NOW - dt.timedelta(days=1))}, old)
    ring = signing.rotate_key(tmp_path, NOW)
    new = ring.signing_key(NOW)
    assert new.kid != old.kid
    assert ring.get(old.kid).not_after == NOW
    assert not ring.get(old.kid).can_sign_at(NOW)
    assert {entry["kid"] for entry in ring.jwks()["keys"]} == {old.kid, new.kid}
    assert signing.verify(earlier, ring.jwks(), NOW, typ=None).kid == old.kid
    reloaded = signing.load_key_ring(tmp_path, NOW)
    assert reloaded.signing_key(NOW).kid == new.kid


def test_the_jwks_publishes_public_keys_only(key):
    """OKP/Ed25519 entries with kid, use and alg, the signing window, and never d."""
    (entry,) = signing.KeyRing([key]).jwks()["keys"]
    assert entry == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": signing.b64url_encode(signing.raw_public_bytes(key.public_key)),
        "kid": key.kid,
        "use": "sig",
        "alg": "EdDSA",
        "created_at": "2026-11-10T09:30:00Z",
        "not_after": "2027-11-10T09:30:00Z",
    }
    published = signing.KeyRing.from_jwks({"keys": [entry, {"kty": "RSA", "n": "x", "e": "AQAB"}]})
    assert [k.kid for k in published] == [key.kid]
    assert not published.get(key.kid).has_private_key


def test_a_jwks_entry_whose_kid_is_not_its_thumbprint_is_refused(key):
    entry = {**key.jwk(), "kid": "my-key-1"}
    with pytest.raises(KeyRingError, match="thumbprint"):
        signing.KeyRing.from_jwks({"keys": [entry]})
    with pytest.raises(KeyRingError, match="private part"):
        signing.KeyRing.from_jwks({"keys": [{**key.jwk(), "d": RFC8037_D}]})


def test_keys_load_from_configured_pem_text(key):
    """PEM blocks oldest first: the last private key signs; a public block only verifies."""
    retired = signing.generate_key(NOW - dt.timedelta(days=400))
    text = retired.public_pem().decode() + "\n" + key.private_pem().decode()
    ring = signing.key_ring_from_config(text)
    assert [k.kid for k in ring] == [retired.kid, key.kid]
    assert ring.signing_key(NOW).kid == key.kid
    assert not ring.get(retired.kid).has_private_key
    dated = signing.key_ring_from_config(
        [{"pem": key.private_pem().decode(), "created_at": "2026-01-01T00:00:00+00:00",
          "not_after": "2026-06-01T00:00:00Z"}]
    )  # fmt: skip
    with pytest.raises(NoSigningKey):
        dated.signing_key(NOW)
    with pytest.raises(KeyRingError):
        signing.key_ring_from_config("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")


# ---- tokens ----------------------------------------------------------------------------


def test_a_token_verifies_with_the_published_key(make_facts, key, jwks):
    """The claims read back from a verified token are those of the printed facts."""
    facts = make_facts()
    token = claims.sign_certificate(facts, key)
    signed, verified = claims.verify_certificate_token(token, jwks, NOW)
    assert signed == claims.CertificateClaims.from_facts(facts)
    assert verified.kid == key.kid
    assert verified.header == {"alg": "EdDSA", "kid": key.kid, "typ": "cert+jwt"}
    assert verified.issued_at == NOW
    assert signed.sections[1] == claims.SectionResult("conversation", 66.7, 100)


def test_tokens_are_canonical_and_reproducible(make_facts, key):
    """Sorted keys, no spaces, UTF-8, base64url without padding: same facts, same token."""
    token = claims.sign_certificate(make_facts(), key)
    assert token == claims.sign_certificate(make_facts(), key)
    assert "=" not in token
    header = signing.b64url_decode(token.split(".")[0])
    assert header == f'{{"alg":"EdDSA","kid":"{key.kid}","typ":"cert+jwt"}}'.encode()
    payload = signing.b64url_decode(token.split(".")[1]).decode()
    assert payload == json.dumps(payload_of(token), sort_keys=True, separators=(",", ":"),
                                 ensure_ascii=False)  # fmt: skip
    assert FULL_NAME in payload


CHANGES = {
    "v": 2,
    "no": codes.new_certificate_number(),
    "nm": "Gʻulomova Oʻgʻiloy",
    "dob": "1999-01-30",
    "ex": "jlpt-n4",
    "ti": "JLPT N4",
    "dt": "2026-12-04",
    "ctr": "Samarkand Testing Centre",
    "sc": [["script_vocabulary", 95, 100]],
    "tot": [235, 10, 250],
    "res": "fail",
    "lvl": "B1",
    "iat": signing.numeric_date(NOW) - 1,
}


def test_the_payload_lists_every_signed_fact(make_facts, key):
    assert set(payload_of(claims.sign_certificate(make_facts(), key))) == set(CHANGES)


@pytest.mark.parametrize("member", sorted(CHANGES))
def test_changing_any_signed_field_breaks_the_signature(make_facts, key, jwks, member):
    """Any single member changed (header and signature kept) is a bad signature."""
    token = claims.sign_certificate(make_facts(), key)
    payload = payload_of(token)
    assert payload[member] != CHANGES[member]
    payload[member] = CHANGES[member]
    with pytest.raises(BadSignature):
        signing.verify(with_payload(token, payload), jwks, NOW)


def test_a_signature_by_another_key_fails(make_facts, key, jwks):
    """Signed by another key under our kid: bad signature; under its own kid: unknown."""
    other = signing.generate_key(NOW - dt.timedelta(days=1))
    payload = claims.CertificateClaims.from_facts(make_facts()).to_payload()
    header = {"alg": "EdDSA", "kid": key.kid, "typ": "cert+jwt"}
    forged = signing.encode_jws(header, signing.canonical_json(payload), other.private_key)
    with pytest.raises(BadSignature):
        signing.verify(forged, jwks, NOW)
    with pytest.raises(UnknownKey):
        signing.verify(signing.sign(payload, other), jwks, NOW)


def test_a_token_of_an_unpublished_key_is_unknown(make_facts, key):
    token = claims.sign_certificate(make_facts(), key)
    with pytest.raises(UnknownKey):
        signing.verify(token, {"keys": []}, NOW)


def test_a_key_past_its_not_after_at_issue_time_is_refused(make_facts, key):
    """A key retired on 1 December refuses to sign later; a token it signed later anyway
    (a stolen copy without the window) does not verify; one from before still does."""
    retired = dataclasses.replace(key, not_after=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    published = signing.KeyRing([retired]).jwks()
    with pytest.raises(NoSigningKey):
        claims.sign_certificate(make_facts(), retired)
    stolen = dataclasses.replace(retired, not_after=None)
    late = claims.sign_certificate(make_facts(issued_at=NOW), stolen)
    with pytest.raises(KeyNotValidAtIssue, match="not_after"):
        signing.verify(late, published, NOW)
    early = claims.sign_certificate(make_facts(issued_at=NOW - dt.timedelta(days=20)), retired)
    assert signing.verify(early, published, NOW).kid == key.kid


def test_a_token_issued_before_its_key_existed_is_refused(make_facts, key, jwks):
    stolen = dataclasses.replace(key, created_at=None)
    backdated = claims.sign_certificate(make_facts(issued_at=NOW - dt.timedelta(days=60)), stolen)
    with pytest.raises(KeyNotValidAtIssue, match="before it was created"):
        signing.verify(backdated, jwks, NOW)


def test_a_token_issued_in_the_future_is_refused(make_facts, key, jwks):
    token = claims.sign_certificate(make_facts(issued_at=NOW + dt.timedelta(hours=1)), key)
    with pytest.raises(IssuedInFuture):
        signing.verify(token, jwks, NOW)
    assert signing.verify(token, jwks, NOW + dt.timedelta(hours=1))


def ours(key: signing.Key, **changes) -> str:
    """A token with our header, members changed (``None`` removes one)."""
    header = {"alg": "EdDSA", "kid": key.kid, "typ": "cert+jwt", **changes}
    header = {name: value for name, value in header.items() if value is not None}
    return signing.encode_jws(header, b'{"iat":1796893200}', key.private_key)


def zero_signature(token: str, length: int = 64) -> str:
    return token.rpartition(".")[0] + "." + signing.b64url_encode(bytes(length))


MALFORMED = {
    "empty": (lambda key: "", MalformedToken),
    "two parts": (lambda key: "abc.def", MalformedToken),
    "four parts": (lambda key: "a.b.c.d", MalformedToken),
    "not base64url": (lambda key: "e30.e30.+++", MalformedToken),
    "padding": (lambda key: "eyJhbGciOiJFZERTQSJ9=.e30.AA", MalformedToken),
    "alg none": (lambda key: ours(key, alg="none"), UnsupportedAlgorithm),
    "alg HS256": (lambda key: ours(key, alg="HS256"), UnsupportedAlgorithm),
    "another typ": (lambda key: ours(key, typ="JWT"), MalformedToken),
    "no kid": (lambda key: ours(key, kid=None), MalformedToken),
    "crit": (lambda key: ours(key, crit=["exp"]), MalformedToken),
    "zero signature": (lambda key: zero_signature(ours(key)), BadSignature),
    "short signature": (lambda key: zero_signature(ours(key), 63), BadSignature),
}


@pytest.mark.parametrize(("make_token", "error"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_tokens_are_refused_with_a_precise_error(key, jwks, make_token, error):
    with pytest.raises(error):
        signing.verify(make_token(key), jwks, NOW)


# ---- the PDF ---------------------------------------------------------------------------


@pytest.fixture
def certificate(make_facts, key):
    """A rendered certificate (with a photo), its facts and its token."""
    facts = make_facts(photo=photo_jpeg())
    token = claims.sign_certificate(facts, key)
    return facts, token, render(facts, token, key)


def test_the_certificate_prints_the_facts(certificate):
    """One page: number, candidate, exam in Japanese and English, scores, total, result."""
    _facts, _token, pdf = certificate
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1
    text = text_of(pdf)
    for expected in (
        "試験結果証明書",
        "Certificate of Test Result",
        "Uzbekistan–Japan Testing Centre",
        NUMBER,
        "2026-12-10",
        "JFT-Basic形式テスト",
        "JFT-Basic style test",
        f"氏名 Full name (as on the ID) {FULL_NAME}",
        "生年月日 Date of birth 1999-01-31",
        "Uzbekistan (UZ)",
        "受験日 Exam date 2026-12-03",
        "Tashkent Testing Centre",
        "文字と語彙 Script and Vocabulary 75 / 100",
        "66.7 / 100",
        "聴解 Listening Comprehension 83.3 / 100 40",
        "総合得点 Total 215 / 250",
        "10–250",
        "250点中200点以上（A2）",
        "200 or more of 250 (A2)",
        "判定 Result 合格 PASS",
        "レベル Level A2.2",
        f"{BASE_URL}/verify",
    ):
        assert expected in text, expected


def test_every_font_is_embedded_truetype(certificate):
    """No standard-14 font, chart included: each font carries its program (FontFile2),
    and the Japanese text is set in the embedded IPAexGothic."""
    page = PdfReader(io.BytesIO(certificate[2])).pages[0]
    used = set()
    for font in page["/Resources"]["/Font"].values():
        font = font.get_object()
        name = str(font["/BaseFont"]).lstrip("/")
        assert name.split("+")[-1].split("-")[0] not in STANDARD_14, name
        assert font["/Subtype"] == "/TrueType", name
        assert "/FontFile2" in font["/FontDescriptor"].get_object(), name
        used.add(name.split("+")[-1])
    assert {"DejaVuSans", "DejaVuSans-Bold", "IPAexGothic"} <= used


def test_the_qr_code_decodes_to_the_short_verification_link(certificate, key, jwks):
    """The number and its link signature, which a published key verifies; a small code."""
    _facts, _token, pdf = certificate
    signature = links.sign_link(NUMBER, key)
    link = f"{BASE_URL}/verify?n={NUMBER}&s={signature}"
    assert decode_qr(pdf) == link
    assert links.verification_link(BASE_URL + "/", NUMBER, signature) == link
    assert links.verify_link(NUMBER, signature, jwks).kid == key.kid
    assert document.QrFlowable(link).code.version <= 8  # the whole token needed 22


def test_a_link_signature_fits_only_its_number_and_our_keys(key, jwks):
    """Another number, a changed signature or a key that is not published: refused."""
    signature = links.sign_link(NUMBER, key)
    with pytest.raises(BadSignature):
        links.verify_link(codes.new_certificate_number(), signature, jwks)
    changed = ("B" if signature[0] == "A" else "A") + signature[1:]
    with pytest.raises(BadSignature):
        links.verify_link(NUMBER, changed, jwks)
    stranger = signing.generate_key(NOW)
    with pytest.raises(BadSignature):
        links.verify_link(NUMBER, links.sign_link(NUMBER, stranger), jwks)
    with pytest.raises(MalformedToken):
        links.verify_link(NUMBER, signature[:40], jwks)


def test_a_link_signature_is_no_token_signature(make_facts, key, jwks):
    """Domain separation: a token's signature does not pass as a link's, nor a link's
    as the token's."""
    token = claims.sign_certificate(make_facts(), key)
    with pytest.raises(BadSignature):
        links.verify_link(NUMBER, token.rsplit(".", 1)[1], jwks)
    forged = token.rsplit(".", 1)[0] + "." + links.sign_link(NUMBER, key)
    with pytest.raises(BadSignature):
        signing.verify(forged, jwks, NOW)


def test_the_token_is_in_the_pdf_metadata(certificate):
    """In the document information (/CertificateToken) and in the XMP packet."""
    _facts, token, pdf = certificate
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.metadata["/CertificateToken"] == token
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert f"<tc:token>{token}</tc:token>" in xmp
    assert verify.tokens_in_pdf(reader) == [token, token]


def test_the_photo_is_printed(certificate, make_facts, key):
    """The photo is an image on the page (downscaled); without one, the frame is empty."""
    images = list(PdfReader(io.BytesIO(certificate[2])).pages[0].images)
    assert len(images) == 1
    assert images[0].image.height / images[0].image.width == pytest.approx(1200 / 900, 0.01)
    facts = make_facts()
    bare = render(facts, claims.sign_certificate(facts, key), key)
    assert list(PdfReader(io.BytesIO(bare)).pages[0].images) == []


def test_a_photo_near_print_size_is_embedded_as_it_is(make_facts, key):
    """A metadata-free JPEG up to twice the print size goes in byte for byte (no decoding
    and encoding per render); one with EXIF is re-encoded, without it."""
    small = io.BytesIO()
    Image.new("RGB", (600, 800), (180, 200, 230)).save(small, format="JPEG", quality=90)
    with_exif = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    Image.new("RGB", (600, 800), (180, 200, 230)).save(with_exif, format="JPEG", exif=exif)
    for photo, as_is in ((small.getvalue(), True), (with_exif.getvalue(), False)):
        facts = make_facts(photo=photo)
        pdf = render(facts, claims.sign_certificate(facts, key), key)
        (image,) = PdfReader(io.BytesIO(pdf)).pages[0].images
        assert (image.data == photo) is as_is
        assert b"Camera maker" not in image.data


def test_a_long_name_still_fits_one_page(make_facts, key):
    facts = make_facts(full_name="Abdurakhmonova " * 12 + "Oʻgʻiloy")
    pdf = render(facts, claims.sign_certificate(facts, key), key)
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1
    assert verify.verify_pdf(pdf, signing.KeyRing([key]).jwks(), NOW).is_valid


def test_many_sections_are_shrunk_onto_one_page(make_facts, key):
    """A page taller than A4 is drawn again, scaled down to fit: still one page, every
    section printed and the facts still verify."""
    sections = tuple(
        ScoreLine(f"part_{n}", f"Part {n} of a long exam", f"第{n}部", 50, 100) for n in range(16)
    )
    facts = make_facts(sections=sections, total=800, scale_max=1600)
    pdf = render(facts, claims.sign_certificate(facts, key), key)
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1
    assert "Part 15 of a long exam" in text_of(pdf)
    assert verify.verify_pdf(pdf, signing.KeyRing([key]).jwks(), NOW).is_valid


def glyph_boxes(pdf: bytes) -> tuple[list[tuple[float, float, float, float, int]], tuple, tuple]:
    """The box of every drawn character (with its place in reading order last), the page
    size and the box of its one image."""
    pages = pypdfium2.PdfDocument(pdf)
    try:
        page = pages[0]
        text = page.get_textpage()
        boxes = [(*text.get_charbox(i), i) for i in range(text.count_chars())]
        (image,) = page.get_objects(filter=[pypdfium2.raw.FPDF_PAGEOBJ_IMAGE])
        return [b for b in boxes if b[2] > b[0]], page.get_size(), image.get_bounds()
    finally:
        pages.close()


def overlap(a: tuple, b: tuple) -> float:
    """The area two boxes ``(left, bottom, right, top)`` share."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return max(width, 0) * max(height, 0)


@pytest.mark.parametrize("sections", [4, 16])
def test_long_texts_wrap_inside_the_margins_without_overlapping(make_facts, key, sections):
    """A very long name and test centre wrap within their column (the page shrinks when
    they make it too tall): every character lies inside the margins, none on the photo,
    and no two characters overlap, except neighbours in one word: a font's glyph boxes
    may touch there ("fj", "YJ" in the random key id), which is its design, not a
    collision."""
    lines = tuple(
        ScoreLine(
            f"part_{n}", f"Part {n} of a very long exam " * 3, f"第{n}部の長い試験科目", 50, 100
        )
        for n in range(sections)
    )
    facts = make_facts(
        full_name="Abdurakhmonova " * 12 + "Oʻgʻiloy",
        test_centre="東京都新宿区西新宿二丁目 Shinjuku Central Testing Centre, Floor 12 " * 3,
        photo=photo_jpeg(),
        sections=lines,
    )
    pdf = render(facts, claims.sign_certificate(facts, key), key)
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1
    boxes, (width, height), photo = glyph_boxes(pdf)
    margin = document.PAGE_MARGIN - 0.5
    for box in boxes:
        assert margin <= box[0] and box[2] <= width - margin, box
        assert margin <= box[1] and box[3] <= height - margin, box
        assert overlap(box, photo) == 0, box
    boxes.sort()
    for index, box in enumerate(boxes):
        for other in boxes[index + 1 :]:
            if other[0] >= box[2]:
                break
            if abs(other[4] - box[4]) > 1:
                assert overlap(box, other) < 0.5, (box, other)
    assert verify.verify_pdf(pdf, signing.KeyRing([key]).jwks(), NOW).is_valid


# ---- offline verification ---------------------------------------------------------------


def test_the_verifier_accepts_the_genuine_pdf(certificate, jwks, key):
    facts, _token, pdf = certificate
    result = verify.verify_pdf(pdf, jwks, NOW)
    assert result.status is verify.Status.VALID, result.problems
    assert result.problems == ()
    assert result.claims == claims.CertificateClaims.from_facts(facts)
    assert result.kid == key.kid
    assert result.as_dict()["claims"]["no"] == NUMBER


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"full_name": "Gʻulomova Oʻgʻiloy"}, "name"),
        ({"date_of_birth": dt.date(1998, 1, 31)}, "date_of_birth"),
        ({"number": codes.new_certificate_number()}, "number"),
        ({"total": 235}, "total"),
        ({"passed": False}, "result"),
        ({"level": "B1"}, "level"),
        ({"exam_date": dt.date(2026, 12, 4)}, "exam_date"),
        ({"test_centre": "Samarkand Testing Centre"}, "test_centre"),
        ({"exam_title_en": "JLPT N4"}, "exam_title"),
    ],
)
def test_an_edited_fact_is_a_mismatch_naming_the_field(make_facts, key, jwks, change, field):
    """A PDF printing other facts than its token signs is reported field by field."""
    token = claims.sign_certificate(make_facts(), key)
    forged = render(make_facts(**change), token, key)
    result = verify.verify_pdf(forged, jwks, NOW)
    assert result.status is verify.Status.MISMATCH
    assert result.mismatched_fields == (field,)


def test_an_edited_score_is_a_mismatch_naming_the_section(make_facts, key, jwks):
    facts = make_facts()
    token = claims.sign_certificate(facts, key)
    sections = list(facts.sections)
    sections[2] = dataclasses.replace(sections[2], score=93.3)
    forged = render(make_facts(sections=tuple(sections)), token, key)
    result = verify.verify_pdf(forged, jwks, NOW)
    assert result.status is verify.Status.MISMATCH
    (problem,) = result.problems
    assert (problem.field, problem.printed, problem.signed) == (
        "scores.listening",
        "93.3 / 100",
        "83.3 / 100",
    )


def test_a_pdf_whose_token_does_not_verify_is_invalid(make_facts, key):
    """Signed by a key that is not published: invalid, unknown_key."""
    other = signing.generate_key(NOW - dt.timedelta(days=1))
    facts = make_facts()
    pdf = render(facts, claims.sign_certificate(facts, other), other)
    result = verify.verify_pdf(pdf, signing.KeyRing([key]).jwks(), NOW)
    assert result.status is verify.Status.INVALID
    assert [p.code for p in result.problems] == ["unknown_key"]
    assert result.claims is None


def test_files_without_a_token_are_invalid(jwks):
    assert [p.code for p in verify.verify_pdf(b"%PDF-1.4 nonsense", jwks, NOW).problems] == [
        "unreadable_pdf"
    ]
    assert verify.verify_document(b"\x89PNG\r\n", jwks, NOW).status is verify.Status.INVALID


def test_a_token_or_its_url_verifies_alone(certificate, jwks):
    """The text of the QR code (the URL) or the bare token: valid, with the claims."""
    _facts, token, _pdf = certificate
    for text in (token, f"  {BASE_URL}/verify?t={token}\n"):
        result = verify.verify_document(text, jwks, NOW)
        assert result.is_valid
        assert result.claims.name == FULL_NAME
    tampered = with_payload(token, {**payload_of(token), "res": "fail"})
    result = verify.verify_token(tampered, jwks, NOW)
    assert result.status is verify.Status.INVALID
    assert result.problems[0].code == "bad_signature"


# ---- the practice report ----------------------------------------------------------------


def test_the_practice_report_is_marked_and_carries_nothing_to_verify(make_facts, jwks):
    """PRACTICE — NOT A CERTIFICATE; no number, no QR code, no token in the metadata."""
    facts = make_facts()
    practice = PracticeFacts(
        exam_code=facts.exam_code,
        exam_title_en=facts.exam_title_en,
        exam_title_ja=facts.exam_title_ja,
        full_name=FULL_NAME,
        taken_on=dt.date(2026, 12, 1),
        sections=facts.sections,
        total=180,
        scale_min=10,
        scale_max=250,
        passed=False,
        pass_rule_en=facts.pass_rule_en,
        pass_rule_ja=facts.pass_rule_ja,
        generated_at=NOW,
        level="A2.1",
    )
    pdf = document.practice_report(practice)
    text = text_of(pdf)
    assert "PRACTICE — NOT A CERTIFICATE" in text
    assert "練習用 — 証明書ではありません" in text
    assert "180 / 250" in text and FULL_NAME in text
    assert "Certificate number" not in text and not re.search(r"JP-\w{5}-", text)
    reader = PdfReader(io.BytesIO(pdf))
    assert "/CertificateToken" not in reader.metadata
    assert "/Metadata" not in reader.trailer["/Root"]
    assert verify.tokens_in_pdf(reader) == []
    assert decode_qr(pdf) == ""
    result = verify.verify_pdf(pdf, jwks, NOW)
    assert [p.code for p in result.problems] == ["no_token"]


# ---- Open Badges 3.0 ----------------------------------------------------------------------

ISSUER = badges.Issuer("https://verify.example.uz/", "Uzbekistan–Japan Testing Centre")


def test_the_badge_is_an_open_badges_3_credential(make_facts):
    """VC 2.0 and OB 3.0 contexts, both types, the issuer, validFrom, the achievement."""
    credential = badges.badge_credential(make_facts(), ISSUER)
    assert credential["@context"] == [
        "https://www.w3.org/ns/credentials/v2",
        "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
    ]
    assert credential["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert credential["issuer"] == {
        "id": "https://verify.example.uz/",
        "type": ["Profile"],
        "name": "Uzbekistan–Japan Testing Centre",
    }
    assert credential["validFrom"] == "2026-12-10T09:30:00Z"
    assert credential["id"].startswith("urn:uuid:")
    subject = credential["credentialSubject"]
    assert subject["type"] == ["AchievementSubject"]
    assert subject["identifier"][0]["identityHash"] == FULL_NAME
    achievement = subject["achievement"]
    assert achievement["name"] == "JFT-Basic style test (JFT-Basic形式テスト)"
    assert achievement["description"]
    assert achievement["criteria"] == {"narrative": "200 or more of 250 (A2)"}
    descriptions = {d["id"]: d for d in achievement["resultDescription"]}
    values = {descriptions[r["resultDescription"]]["name"]: r for r in subject["result"]}
    assert values["Listening Comprehension"]["value"] == "83.3"
    assert (
        descriptions[values["Listening Comprehension"]["resultDescription"]]["requiredValue"]
        == "40"
    )
    assert values["Total"] == {**values["Total"], "value": "215", "status": "Completed"}
    assert values["Level"]["value"] == "A2.2"
    assert credential == badges.badge_credential(make_facts(), ISSUER)  # same ids twice


def test_the_badge_jwt_verifies_with_the_same_keys(make_facts, key, jwks):
    """OB 3.0 8.2: header alg/kid/typ only, typ JWT, kid a URI of the JWK; the payload is
    the credential with iss, jti, sub and nbf."""
    credential = badges.badge_credential(make_facts(), ISSUER)
    token = badges.sign_badge(credential, key, JWKS_URL, NOW)
    header, payload, _input, _signature = signing.split_token(token)
    assert header == {"alg": "EdDSA", "kid": f"{JWKS_URL}#{key.kid}", "typ": "JWT"}
    assert payload["iss"] == "https://verify.example.uz/"
    assert payload["jti"] == credential["id"]
    assert payload["sub"] == credential["credentialSubject"]["id"]
    assert payload["nbf"] == signing.numeric_date(NOW)
    assert payload["iat"] == signing.numeric_date(NOW)
    assert badges.verify_badge(token, jwks, NOW) == credential


def test_a_badge_exported_after_a_key_rotation_is_signed_by_the_new_key(make_facts, key):
    """The certificate predates today's key: the export is signed now, by that key, and
    verifies; the credential still says when the certificate was issued."""
    later = NOW + dt.timedelta(days=400)
    new_key = signing.generate_key(later - dt.timedelta(days=1))
    ring = signing.KeyRing([key, new_key])
    credential = badges.badge_credential(make_facts(), ISSUER)
    token = badges.sign_badge(credential, ring.signing_key(later), JWKS_URL, later)
    assert signing.split_token(token)[0]["kid"].endswith(new_key.kid)
    assert badges.verify_badge(token, ring.jwks(), later) == credential


def test_a_tampered_badge_fails(make_facts, key, jwks):
    credential = badges.badge_credential(make_facts(), ISSUER)
    token = badges.sign_badge(credential, key, JWKS_URL, NOW)
    payload = payload_of(token)
    payload["credentialSubject"]["result"][-2]["value"] = "250"
    with pytest.raises(BadSignature):
        badges.verify_badge(with_payload(token, payload), jwks, NOW)
    with pytest.raises(UnknownKey):
        badges.verify_badge(token, {"keys": []}, NOW)
    inconsistent = {**credential, "validFrom": "2026-12-09T00:00:00Z"}
    bad = signing.sign(
        {**inconsistent, "iss": ISSUER.id, "jti": credential["id"],
         "sub": credential["credentialSubject"]["id"], "nbf": signing.numeric_date(NOW)},
        key, typ="JWT",
    )  # fmt: skip
    with pytest.raises(MalformedToken, match="nbf"):
        badges.verify_badge(bad, jwks, NOW)
