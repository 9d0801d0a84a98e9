"""Processing of uploaded item media: listening audio and picture images.

What is stored and served to candidates is never the upload itself but a checked,
re-encoded copy, because:

* every candidate must hear every listening item the same way: one format that plays in
  every browser (MP3), one loudness, no dead air before the speech starts;
* uploads can carry personal data nobody meant to publish (EXIF GPS, camera owner);
* uploads are untrusted input to complex decoders, so their cost is bounded (bytes,
  duration, pixels, an ffmpeg timeout) and anything that does not decode is refused with
  :class:`~item_bank.errors.InvalidMedia` naming the file, never a raw exception.

Audio is decoded and encoded by running the ffmpeg binary shipped by imageio-ffmpeg
directly, and only the in-memory work (silence detection, gain) is done with pydub.
pydub's own ``from_file``/``export`` cannot be given a timeout, call ffprobe (not
shipped) whenever a WAV is not plain PCM, and leave temporary files behind on failure.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import math
import subprocess
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import imageio_ffmpeg
from PIL import Image, ImageOps, UnidentifiedImageError

from item_bank.errors import InvalidMedia

if TYPE_CHECKING:
    from pydub import AudioSegment

logger = logging.getLogger(__name__)

# Audio: extension -> the ffmpeg demuxer forced for it (never guessed from the content,
# so an upload cannot pick a playlist or concat demuxer that opens other files).
_AUDIO_DEMUXERS = {
    "wav": "wav",
    "mp3": "mp3",
    "m4a": "mp4",
    "ogg": "ogg",
    "oga": "ogg",
    "opus": "ogg",
}
AUDIO_EXTENSIONS = frozenset(_AUDIO_DEMUXERS)
MAX_AUDIO_BYTES = 50 * 1024 * 1024
MAX_AUDIO_MS = 10 * 60 * 1000
FFMPEG_TIMEOUT_S = 60.0
SAMPLE_RATE = 44_100
MP3_BITRATE = "64k"
SILENCE_DBFS = -50.0
LEAD_IN_MS = 150
TARGET_DBFS = -20.0
PEAK_CEILING_DBFS = -1.0
LEVEL_BLOCK_MS = 400

# Images: Pillow format name -> MIME type; anything else is refused whatever its name.
_IMAGE_MIME_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}
IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "gif", "webp"})
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGE_SIDE = 4000
MAX_IMAGE_PIXELS = 16_000_000
JPEG_QUALITY = 90
WEBP_QUALITY = 90

_PYDUB_LOCK = threading.Lock()


@dataclass(frozen=True)
class ProcessedMedia:
    """A media file ready to store and serve, with what players and pages need to know."""

    kind: str
    data: bytes
    mime_type: str
    sha256: str
    duration_ms: int | None
    width: int | None
    height: int | None


def process_media(data: bytes, filename: str) -> ProcessedMedia:
    """Process an upload as audio or image according to its extension."""
    extension = _extension(filename)
    if extension in AUDIO_EXTENSIONS:
        return process_audio(data, filename)
    if extension in IMAGE_EXTENSIONS:
        return process_image(data, filename)
    accepted = ", ".join(sorted(AUDIO_EXTENSIONS | IMAGE_EXTENSIONS))
    raise InvalidMedia(f"{filename}: unsupported file type; accepted: {accepted}")


# --- audio -----------------------------------------------------------------------------


def process_audio(data: bytes, filename: str) -> ProcessedMedia:
    """Turn an uploaded recording into trimmed, loudness-normalised mono MP3."""
    extension = _extension(filename)
    if extension not in AUDIO_EXTENSIONS:
        raise InvalidMedia(
            f"{filename}: not an audio file name ({', '.join(sorted(AUDIO_EXTENSIONS))})"
        )
    if len(data) > MAX_AUDIO_BYTES:
        raise InvalidMedia(f"{filename}: larger than {_megabytes(MAX_AUDIO_BYTES)}")
    segment = _decode_audio(data, filename, extension)
    if len(segment) == 0:
        raise InvalidMedia(f"{filename}: contains no audio")
    if len(segment) > MAX_AUDIO_MS:
        raise InvalidMedia(f"{filename}: longer than {MAX_AUDIO_MS / 1000:g} s")
    segment = _normalise_loudness(_trim_silence(segment, filename))
    encoded = _encode_mp3(segment)
    return ProcessedMedia(
        kind="audio",
        data=encoded,
        mime_type="audio/mpeg",
        sha256=hashlib.sha256(encoded).hexdigest(),
        duration_ms=len(segment),
        width=None,
        height=None,
    )


def _pydub() -> ModuleType:
    """Import pydub on first use and point it at imageio-ffmpeg's binary.

    pydub warns at import when ffmpeg is not on PATH (it never is here: the binary
    comes from imageio-ffmpeg), so exactly that warning is ignored. The lock keeps two
    first calls from interleaving ``catch_warnings``, which is not thread-safe.
    """
    with _PYDUB_LOCK:
        return _import_pydub()


@functools.cache
def _import_pydub() -> ModuleType:
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Couldn't find ffmpeg or avconv", category=RuntimeWarning
        )
        import pydub
        import pydub.silence
        import pydub.utils
    pydub.AudioSegment.converter = imageio_ffmpeg.get_ffmpeg_exe()
    return pydub


def _decode_audio(data: bytes, filename: str, extension: str) -> AudioSegment:
    """Decode to 16-bit mono PCM at ``SAMPLE_RATE``, at most a second past the limit.

    The upload goes through a temporary file because MP4 often keeps its index at the
    end, which ffmpeg cannot reach on a pipe. Stopping a second past ``MAX_AUDIO_MS``
    is enough to tell "too long" and bounds memory even for a tiny file that claims
    hours of audio.
    """
    pydub = _pydub()
    with tempfile.TemporaryDirectory(prefix="item-media-") as directory:
        source = Path(directory) / f"upload.{extension}"
        source.write_bytes(data)
        try:
            pcm = _run_ffmpeg(
                [
                    *("-f", _AUDIO_DEMUXERS[extension], "-i", str(source), "-map", "0:a:0"),
                    *("-t", f"{MAX_AUDIO_MS / 1000 + 1:.3f}"),
                    *("-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le"),
                    *("-f", "s16le", "pipe:1"),
                ]
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            raise InvalidMedia(f"{filename}: cannot be decoded as {extension} audio") from error
    return pydub.AudioSegment(data=pcm, sample_width=2, frame_rate=SAMPLE_RATE, channels=1)


def _trim_silence(segment: AudioSegment, filename: str) -> AudioSegment:
    """Cut leading and trailing silence but keep ``LEAD_IN_MS`` either side of the sound.

    Candidates start each clip themselves and should not wait through dead air; the
    lead-in keeps soft onsets (and the fade after the last word) from being clipped.
    Silence is any 10 ms stretch quieter than ``SILENCE_DBFS``; a clip that is all
    silence is refused, since it is certainly not what the author meant to upload.
    """
    detect = _pydub().silence.detect_leading_silence
    leading = detect(segment, silence_threshold=SILENCE_DBFS, chunk_size=10)
    if leading >= len(segment):
        raise InvalidMedia(f"{filename}: is silent")
    trailing = detect(segment.reverse(), silence_threshold=SILENCE_DBFS, chunk_size=10)
    start = max(0, leading - LEAD_IN_MS)
    end = min(len(segment), len(segment) - trailing + LEAD_IN_MS)
    return segment[start:end]


def _normalise_loudness(segment: AudioSegment) -> AudioSegment:
    """Bring the sound to an average of ``TARGET_DBFS`` with peaks at most ``PEAK_CEILING_DBFS``.

    Every listening item must play at the same level: candidates set their volume once
    at the sound check and must not meet a quieter (harder) item later. -20 dBFS RMS
    is a usual level for spoken word and leaves about 19 dB above it, which holds the
    12-18 dB by which speech peaks exceed its average. Peaks stay below -1 dBFS because
    MP3 encoding overshoots sample peaks by up to about a decibel, which would clip at
    0 dBFS. When reaching the target would push a peak over the ceiling, the gain is
    lowered instead (the clip ends up slightly quieter rather than distorted).
    """
    gain = min(
        TARGET_DBFS - _sounding_level_dbfs(segment),
        PEAK_CEILING_DBFS - segment.max_dBFS,
    )
    return segment.apply_gain(gain)


def _sounding_level_dbfs(segment: AudioSegment) -> float:
    """Average RMS level of the ``LEVEL_BLOCK_MS`` blocks louder than ``SILENCE_DBFS``.

    Pauses are left out of the average (as in EBU R128 gating), so a dialogue with long
    pauses is not boosted above one spoken without them.
    """
    blocks = [
        block
        for block in _pydub().utils.make_chunks(segment, LEVEL_BLOCK_MS)
        if block.dBFS > SILENCE_DBFS
    ]
    if not blocks:  # only clicks shorter than a block: measure the whole clip
        return segment.dBFS
    energy = sum(block.rms**2 * len(block) for block in blocks)
    mean_power = energy / sum(len(block) for block in blocks)
    return 10 * math.log10(mean_power / segment.max_possible_amplitude**2)


def _encode_mp3(segment: AudioSegment) -> bytes:
    """Encode mono PCM as constant-bitrate MP3, which every browser plays.

    64 kbit/s mono is transparent enough for speech and keeps a ten-minute clip under
    5 MB. Writing to a file (not a pipe) lets ffmpeg fill in the header that records the
    encoder delay and exact length, so players show the right duration.
    """
    with tempfile.TemporaryDirectory(prefix="item-media-") as directory:
        target = Path(directory) / "processed.mp3"
        _run_ffmpeg(
            [
                *("-f", "s16le", "-ar", str(segment.frame_rate), "-ac", "1", "-i", "pipe:0"),
                *("-map_metadata", "-1", "-c:a", "libmp3lame", "-b:a", MP3_BITRATE),
                *("-f", "mp3", str(target)),
            ],
            stdin=segment.raw_data,
        )
        return target.read_bytes()


def _run_ffmpeg(arguments: list[str], stdin: bytes = b"") -> bytes:
    """Run ffmpeg with a timeout, reading local files and pipes only; return its stdout.

    Raises ``CalledProcessError`` when ffmpeg fails and ``TimeoutExpired`` (after
    killing it) when it runs longer than ``FFMPEG_TIMEOUT_S``.
    """
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
    command += ["-protocol_whitelist", "file,pipe", *arguments]
    try:
        result = subprocess.run(  # noqa: S603 -- fixed binary, no shell, arguments built here
            command, input=stdin, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=True
        )
    except subprocess.CalledProcessError as error:
        logger.info("ffmpeg exited with %s: %s", error.returncode, _tail(error.stderr))
        raise
    except subprocess.TimeoutExpired:
        logger.warning("ffmpeg killed after %s s", FFMPEG_TIMEOUT_S)
        raise
    return result.stdout


def _tail(stderr: bytes | None) -> str:
    """The last lines of ffmpeg's error output: its diagnosis, not the media content."""
    return (stderr or b"").decode(errors="replace").strip()[-500:]


# --- images ----------------------------------------------------------------------------


def process_image(data: bytes, filename: str) -> ProcessedMedia:
    """Check an uploaded picture and re-encode it without metadata (GIF kept as is)."""
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidMedia(f"{filename}: larger than {_megabytes(MAX_IMAGE_BYTES)}")
    try:
        _open_image(data, filename).verify()  # structural check before decoding pixels
        image = _open_image(data, filename)  # verify() leaves the image unusable: reopen
        image.load()
        image_format = _served_format(image)
        if image_format == "GIF":
            return _image_result(data, image_format, image.size)
        if image_format != "JPEG" and getattr(image, "is_animated", False):
            raise InvalidMedia(f"{filename}: animated images must be GIF")
        upright = ImageOps.exif_transpose(image)
        cleaned = _encode_without_metadata(upright, image_format)
        return _image_result(cleaned, image_format, upright.size)
    except InvalidMedia:
        raise
    except Exception as error:
        raise InvalidMedia(f"{filename}: the image is damaged") from error


def _served_format(image: Image.Image) -> str:
    """The format to store: as opened, except MPO (a JPEG with extra pictures) is JPEG.

    Many cameras and phones write MPO: a primary JPEG followed by previews or depth
    maps. Browsers show the primary picture, and only that one is kept.
    """
    return "JPEG" if image.format == "MPO" else image.format or ""


def _open_image(data: bytes, filename: str) -> Image.Image:
    """Open (header only) an image of an accepted format no larger than the pixel limits.

    The real format decides, not the file name. The size is checked before any pixel
    is decoded; Pillow's own bomb check (a warning past ~89 Mpx, an error past twice
    that) can fire first and is refused the same way.
    """
    try:
        image = Image.open(io.BytesIO(data), formats=list(_IMAGE_MIME_TYPES))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InvalidMedia(f"{filename}: {_pixel_limits()}") from error
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise InvalidMedia(f"{filename}: not a PNG, JPEG, GIF or WebP image") from error
    width, height = image.size
    if max(width, height) > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
        raise InvalidMedia(f"{filename}: {width}x{height} pixels; {_pixel_limits()}")
    return image


def _encode_without_metadata(image: Image.Image, image_format: str) -> bytes:
    """Re-encode pixels only: EXIF, XMP, comments and text chunks are dropped.

    Orientation has already been applied to the pixels (so dropping EXIF does not turn
    photos sideways). Kept: the ICC profile (colours would shift without it) and PNG
    transparency (part of the picture, although Pillow stores it with the metadata).
    """
    kept = {key: image.info[key] for key in ("transparency",) if key in image.info}
    icc_profile = image.info.get("icc_profile")
    image.info = kept
    options: dict[str, object] = {"icc_profile": icc_profile} if icc_profile else {}
    if image_format == "JPEG":
        options |= {"quality": JPEG_QUALITY, "optimize": True}
    elif image_format == "WEBP":
        options |= {"quality": WEBP_QUALITY}
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def _image_result(data: bytes, image_format: str, size: tuple[int, int]) -> ProcessedMedia:
    width, height = size
    return ProcessedMedia(
        kind="image",
        data=data,
        mime_type=_IMAGE_MIME_TYPES[image_format],
        sha256=hashlib.sha256(data).hexdigest(),
        duration_ms=None,
        width=width,
        height=height,
    )


# --- helpers ---------------------------------------------------------------------------


def _extension(filename: str) -> str:
    """The lower-cased extension, or "" (also for a name that is only an extension)."""
    stem, dot, extension = filename.rpartition(".")
    return extension.lower() if dot and stem else ""


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"


def _pixel_limits() -> str:
    return (
        f"images may be at most {MAX_IMAGE_SIDE} pixels wide or high "
        f"and {MAX_IMAGE_PIXELS / 1_000_000:g} megapixels"
    )


@functools.lru_cache(maxsize=256)
def process_media_cached(data: bytes, filename: str) -> ProcessedMedia:
    """``process_media``, remembered per process: the same file is processed once.

    Processing is deterministic, and shipped sample banks are imported by every seed;
    re-encoding their recordings each time would make seeding (and tests) slow.
    """
    return process_media(data, filename)
