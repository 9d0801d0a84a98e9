"""Uploaded item media: audio becomes trimmed, normalised MP3; images are checked and cleaned.

All test media is generated here (pydub tones exported through imageio-ffmpeg, Pillow
images), so the tests need no files and no network.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from types import ModuleType

import pytest
from PIL import Image, ImageCms, PngImagePlugin

from item_bank import media
from item_bank.errors import InvalidMedia

# --- audio helpers ---------------------------------------------------------------------


def _pydub() -> ModuleType:
    """pydub configured the way media.py configures it (ffmpeg from imageio-ffmpeg)."""
    module = media._pydub()
    import pydub.generators  # noqa: F401 -- after _pydub(): its import warning is handled

    return module


def _tone(ms: int, volume: float = -10.0, frequency: int = 440):
    """A sine tone whose peak is ``volume`` dBFS (its RMS is 3 dB lower)."""
    _pydub()
    from pydub.generators import Sine

    return Sine(frequency).to_audio_segment(duration=ms, volume=volume)


def _silence(ms: int):
    return _pydub().AudioSegment.silent(duration=ms, frame_rate=44_100)


_EXPORT = {
    "wav": {"format": "wav"},
    "mp3": {"format": "mp3"},
    "ogg": {"format": "ogg", "codec": "libvorbis"},
    "m4a": {"format": "mp4", "codec": "aac"},
    "opus": {"format": "opus", "codec": "libopus"},
}


def _encode(segment, extension: str) -> bytes:
    return segment.export(io.BytesIO(), **_EXPORT[extension]).getvalue()


def _decode_mp3(data: bytes):
    return _pydub().AudioSegment.from_file(io.BytesIO(data), format="mp3", codec="mp3")


def _sounding_part(segment):
    """The clip without the lead-in and tail that trimming keeps."""
    return segment[media.LEAD_IN_MS : len(segment) - media.LEAD_IN_MS]


# --- audio -----------------------------------------------------------------------------


@pytest.mark.parametrize("extension", ["wav", "mp3", "ogg", "m4a", "opus"])
def test_each_audio_format_becomes_mono_mp3(extension: str) -> None:
    """Every accepted audio format decodes and comes out as mono 44.1 kHz MP3."""
    stereo = _tone(2000).set_channels(2)

    result = media.process_media(_encode(stereo, extension), f"listening.{extension}")

    assert (result.kind, result.mime_type) == ("audio", "audio/mpeg")
    assert 1950 <= result.duration_ms <= 2100
    assert result.width is None and result.height is None
    decoded = _decode_mp3(result.data)
    assert (decoded.channels, decoded.frame_rate) == (1, 44_100)
    assert abs(len(decoded) - result.duration_ms) <= 30


def test_audio_sha256_is_of_the_stored_bytes() -> None:
    """sha256 is the digest of the processed bytes, not of the upload."""
    import hashlib

    result = media.process_audio(_encode(_tone(500), "wav"), "a.wav")

    assert result.sha256 == hashlib.sha256(result.data).hexdigest()


def test_leading_and_trailing_silence_are_trimmed() -> None:
    """Silence around the sound is cut, keeping LEAD_IN_MS either side."""
    clip = _silence(1000) + _tone(2000) + _silence(1000)

    result = media.process_audio(_encode(clip, "wav"), "question.wav")

    assert 2100 <= result.duration_ms <= 2400
    assert result.duration_ms == 2000 + 2 * media.LEAD_IN_MS
    assert abs(len(_decode_mp3(result.data)) - result.duration_ms) <= 30


def test_quiet_and_loud_recordings_end_at_the_same_level() -> None:
    """Loudness is normalised: a quiet and a loud recording end within 1 dB of the target."""
    quiet = media.process_audio(_encode(_tone(2000, volume=-40), "wav"), "quiet.wav")
    loud = media.process_audio(_encode(_tone(2000, volume=-1), "wav"), "loud.wav")

    quiet_level = _sounding_part(_decode_mp3(quiet.data)).dBFS
    loud_level = _sounding_part(_decode_mp3(loud.data)).dBFS
    assert abs(quiet_level - loud_level) < 1.0
    assert abs(quiet_level - media.TARGET_DBFS) < 1.0


def test_pauses_do_not_count_towards_the_level() -> None:
    """A clip with a long pause is not boosted above the same sound without it."""
    paused = _tone(1000, volume=-30) + _silence(4000) + _tone(1000, volume=-30)
    continuous = _tone(2000, volume=-30)

    paused_out = _decode_mp3(media.process_audio(_encode(paused, "wav"), "p.wav").data)
    continuous_out = _decode_mp3(media.process_audio(_encode(continuous, "wav"), "c.wav").data)

    first_tone = paused_out[media.LEAD_IN_MS : media.LEAD_IN_MS + 1000]
    assert abs(first_tone.dBFS - _sounding_part(continuous_out).dBFS) < 1.0


def test_gain_stops_at_the_peak_ceiling() -> None:
    """Peaks never exceed PEAK_CEILING_DBFS: a spiky clip ends quieter instead of clipping."""
    spiky = _tone(3000, volume=-45) + _tone(20, volume=-6) + _tone(3000, volume=-45)

    result = media.process_audio(_encode(spiky, "wav"), "spiky.wav")

    decoded = _decode_mp3(result.data)
    assert decoded.max_dBFS <= media.PEAK_CEILING_DBFS + 0.5  # MP3 overshoot allowance
    assert _sounding_part(decoded).dBFS < media.TARGET_DBFS - 3


@pytest.mark.parametrize("extension", sorted(media.AUDIO_EXTENSIONS))
def test_garbage_audio_is_refused(extension: str) -> None:
    """Bytes that do not decode as the named format are refused with InvalidMedia."""
    garbage = b"this is not audio at all\n" * 200

    with pytest.raises(InvalidMedia, match=f"cannot be decoded as {extension} audio"):
        media.process_media(garbage, f"broken.{extension}")


def test_audio_with_the_wrong_extension_is_refused() -> None:
    """The extension picks the decoder, so MP3 bytes named .wav are refused."""
    with pytest.raises(InvalidMedia, match="cannot be decoded as wav audio"):
        media.process_audio(_encode(_tone(500), "mp3"), "mislabelled.wav")


def test_audio_without_samples_is_refused() -> None:
    """A well-formed file holding no samples is refused."""
    with pytest.raises(InvalidMedia, match="contains no audio"):
        media.process_audio(_encode(_silence(0), "wav"), "empty.wav")


def test_all_silent_audio_is_refused() -> None:
    """A recording that is silence from end to end is refused."""
    with pytest.raises(InvalidMedia, match="is silent"):
        media.process_audio(_encode(_silence(3000), "mp3"), "silent.mp3")


def test_too_long_audio_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Audio longer than MAX_AUDIO_MS is refused."""
    monkeypatch.setattr(media, "MAX_AUDIO_MS", 1000)

    with pytest.raises(InvalidMedia, match="longer than 1 s"):
        media.process_audio(_encode(_tone(2500), "ogg"), "long.ogg")


def test_oversized_audio_upload_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An audio upload over MAX_AUDIO_BYTES is refused before decoding."""
    monkeypatch.setattr(media, "MAX_AUDIO_BYTES", 1000)

    with pytest.raises(InvalidMedia, match="larger than"):
        media.process_audio(_encode(_tone(500), "wav"), "big.wav")


def test_ffmpeg_that_runs_too_long_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    """ffmpeg is killed after FFMPEG_TIMEOUT_S and the upload refused."""
    monkeypatch.setattr(media, "FFMPEG_TIMEOUT_S", 1e-6)

    with pytest.raises(InvalidMedia, match="cannot be decoded"):
        media.process_audio(_encode(_tone(500), "wav"), "slow.wav")


def test_process_audio_refuses_a_non_audio_name() -> None:
    """process_audio only takes audio file names."""
    with pytest.raises(InvalidMedia, match="not an audio file name"):
        media.process_audio(_encode(_tone(500), "wav"), "tone.png")


# --- image helpers ---------------------------------------------------------------------


def _image_bytes(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but whose pixel data is empty."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


# --- images ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_format", "extension", "mime_type"),
    [("PNG", "png", "image/png"), ("JPEG", "jpg", "image/jpeg"), ("WEBP", "webp", "image/webp")],
)
def test_images_are_accepted_with_their_size(
    image_format: str, extension: str, mime_type: str
) -> None:
    """PNG, JPEG and WebP pictures are accepted and report width and height."""
    upload = _image_bytes(Image.new("RGB", (120, 80), "teal"), image_format)

    result = media.process_media(upload, f"picture.{extension}")

    assert (result.kind, result.mime_type) == ("image", mime_type)
    assert (result.width, result.height) == (120, 80)
    assert result.duration_ms is None
    with Image.open(io.BytesIO(result.data)) as stored:
        assert (stored.format, stored.size) == (image_format, (120, 80))


def test_gif_is_kept_as_is() -> None:
    """GIF (animation included) is stored byte for byte."""
    frames = [Image.new("P", (30, 20), colour) for colour in (1, 2)]
    upload = _image_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:])

    result = media.process_image(upload, "anim.gif")

    assert result.data == upload
    assert (result.mime_type, result.width, result.height) == ("image/gif", 30, 20)


def test_jpeg_exif_and_comment_are_stripped_and_orientation_applied() -> None:
    """EXIF (GPS, owner) and comments are removed; EXIF rotation is baked into the pixels."""
    exif = Image.Exif()
    exif[0x013B] = "Taro Yamada"  # Artist
    exif[0x0112] = 6  # Orientation: rotate 90° to display
    exif[0x8825] = {1: "N", 2: (35.0, 41.0, 22.0)}  # GPS latitude
    upload = _image_bytes(
        Image.new("RGB", (60, 20), "red"), "JPEG", exif=exif, comment=b"home address"
    )
    assert b"Taro Yamada" in upload

    result = media.process_image(upload, "photo.jpg")

    assert b"Taro Yamada" not in result.data and b"home address" not in result.data
    with Image.open(io.BytesIO(result.data)) as stored:
        assert "exif" not in stored.info and "comment" not in stored.info
        assert not stored.getexif()
        assert stored.size == (20, 60)
    assert (result.width, result.height) == (20, 60)


def test_multi_picture_jpeg_from_a_phone_is_stored_as_its_primary_jpeg() -> None:
    """An MPO photo (JPEG plus extra pictures) is accepted as a plain JPEG, not as animation."""
    primary, extra = Image.new("RGB", (40, 30), "red"), Image.new("RGB", (40, 30), "blue")
    upload = _image_bytes(primary, "MPO", save_all=True, append_images=[extra])

    result = media.process_image(upload, "phone.jpg")

    assert (result.mime_type, result.width, result.height) == ("image/jpeg", 40, 30)
    with Image.open(io.BytesIO(result.data)) as stored:
        assert (stored.format, getattr(stored, "n_frames", 1)) == ("JPEG", 1)
        assert stored.getpixel((20, 15))[0] > 200  # the red primary picture


def test_png_text_is_stripped_but_transparency_kept() -> None:
    """PNG text chunks are removed; a palette image keeps its transparent colour."""
    text = PngImagePlugin.PngInfo()
    text.add_text("Author", "Hanako Suzuki")
    image = Image.new("P", (10, 10), 0)
    upload = _image_bytes(image, "PNG", pnginfo=text, transparency=0)

    result = media.process_image(upload, "diagram.png")

    assert b"Hanako Suzuki" not in result.data
    with Image.open(io.BytesIO(result.data)) as stored:
        assert stored.info.get("transparency") == 0
        assert "Author" not in stored.info


def test_icc_profile_is_kept() -> None:
    """The colour profile survives re-encoding, so colours do not shift."""
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    upload = _image_bytes(Image.new("RGB", (10, 10)), "JPEG", icc_profile=profile)

    result = media.process_image(upload, "colour.jpg")

    with Image.open(io.BytesIO(result.data)) as stored:
        assert stored.info.get("icc_profile") == profile


def test_real_format_decides_not_the_extension() -> None:
    """A JPEG named .png is accepted as what it is: image/jpeg."""
    upload = _image_bytes(Image.new("RGB", (16, 16)), "JPEG")

    result = media.process_media(upload, "really-a-jpeg.png")

    assert result.mime_type == "image/jpeg"


def test_text_file_named_png_is_refused() -> None:
    """A text file with a .png name is refused."""
    with pytest.raises(InvalidMedia, match="not a PNG, JPEG, GIF or WebP image"):
        media.process_media(b"<html>not a picture</html>\n", "fake.png")


def test_other_image_formats_are_refused_whatever_the_name() -> None:
    """A BMP (a real image, but not an accepted format) named .png is refused."""
    upload = _image_bytes(Image.new("RGB", (8, 8)), "BMP")

    with pytest.raises(InvalidMedia, match="not a PNG, JPEG, GIF or WebP image"):
        media.process_image(upload, "bitmap.png")


def test_damaged_image_is_refused() -> None:
    """A truncated JPEG is refused rather than stored half-decoded."""
    noise = Image.effect_noise((200, 200), 64).convert("RGB")
    upload = _image_bytes(noise, "JPEG")

    with pytest.raises(InvalidMedia, match="damaged"):
        media.process_image(upload[: len(upload) // 2], "cut.jpg")


def test_image_wider_than_the_side_limit_is_refused() -> None:
    """An image wider or higher than MAX_IMAGE_SIDE pixels is refused."""
    upload = _image_bytes(Image.new("L", (media.MAX_IMAGE_SIDE + 1, 1)), "PNG")

    with pytest.raises(InvalidMedia, match="4001x1 pixels"):
        media.process_image(upload, "banner.png")


def test_image_over_the_pixel_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An image with more than MAX_IMAGE_PIXELS pixels is refused."""
    monkeypatch.setattr(media, "MAX_IMAGE_PIXELS", 399)
    upload = _image_bytes(Image.new("L", (20, 20)), "PNG")

    with pytest.raises(InvalidMedia, match="20x20 pixels"):
        media.process_image(upload, "square.png")


@pytest.mark.parametrize("side", [10_000, 20_000])
def test_decompression_bomb_is_refused_without_decoding(side: int) -> None:
    """A header claiming 100 or 400 megapixels is refused (Pillow's warning or error)."""
    with pytest.raises(InvalidMedia, match="megapixels"):
        media.process_image(_png_header_only(side, side), "bomb.png")


def test_animated_png_is_refused() -> None:
    """Animated PNG/WebP are refused: re-encoding would keep one frame; use GIF."""
    frames = [Image.new("RGB", (10, 10), colour) for colour in ("red", "blue")]
    upload = _image_bytes(frames[0], "PNG", save_all=True, append_images=frames[1:])

    with pytest.raises(InvalidMedia, match="animated images must be GIF"):
        media.process_image(upload, "anim.png")


def test_oversized_image_upload_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An image upload over MAX_IMAGE_BYTES is refused before it is opened."""
    monkeypatch.setattr(media, "MAX_IMAGE_BYTES", 100)
    upload = _image_bytes(Image.effect_noise((50, 50), 64), "PNG")

    with pytest.raises(InvalidMedia, match="larger than"):
        media.process_image(upload, "noise.png")


# --- dispatch and house rules ----------------------------------------------------------


@pytest.mark.parametrize("filename", ["notes.txt", "README", "video.mp4", ".png"])
def test_unknown_extension_is_refused(filename: str) -> None:
    """Anything but an accepted audio or image extension is refused."""
    with pytest.raises(InvalidMedia, match="unsupported file type"):
        media.process_media(b"whatever", filename)


def test_extensions_are_matched_case_insensitively() -> None:
    """TONE.WAV and PICTURE.PNG are dispatched like their lower-case names."""
    audio = media.process_media(_encode(_tone(500), "wav"), "TONE.WAV")
    image = media.process_media(_image_bytes(Image.new("RGB", (4, 4)), "PNG"), "PICTURE.PNG")

    assert (audio.kind, image.kind) == ("audio", "image")


def test_importing_the_module_does_no_audio_setup() -> None:
    """Importing item_bank.media does not import pydub (no work at import time)."""
    code = "import sys, item_bank.media; print('pydub' in sys.modules)"

    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout

    assert output.strip() == "False"
