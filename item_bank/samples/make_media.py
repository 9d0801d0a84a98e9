"""Generate the audio and pictures of ``item_types_tour.yaml`` (the question-type tour).

The generated files in ``item_bank/samples/media/`` are committed; this script exists so
that anyone can check how they were made and make them again. Run it from anywhere:

    /work/venv/bin/python item_bank/samples/make_media.py          # or: python make_media.py

Needs:

* ``espeak-ng`` on PATH with its Japanese voice (``espeak-ng -v ja``);
* Pillow and pydub (both dependencies of the project);
* the Noto Sans CJK font (Debian/Ubuntu package ``fonts-noto-cjk``); another path can be
  given in the environment variable ``TOUR_CJK_FONT``.

Speech is synthesised from kana (espeak-ng reads kana best; the particles は and へ are
written わ and え so that they are pronounced as particles), converted to mono 16 kHz
16-bit WAV, and kept under 10 s per clip. The two speakers of the conversation are the
same espeak-ng voice at different pitch (-p) and speed (-s). Pictures are drawn at three
times their size and scaled down (smooth edges), then saved as palette PNGs. Nothing
random is used, so the same tool versions give the same files.

Only the files named below are written (all prefixed ``tour_``); nothing else in the
media folder is touched.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

with warnings.catch_warnings():
    # pydub warns when ffmpeg is not on PATH; plain PCM WAV needs no ffmpeg.
    warnings.simplefilter("ignore", RuntimeWarning)
    from pydub import AudioSegment
    from pydub.silence import detect_leading_silence

MEDIA_DIR = Path(__file__).resolve().parent / "media"
FONT_PATH = os.environ.get(
    "TOUR_CJK_FONT", "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
)
FONT_INDEX = 0  # Noto Sans CJK JP inside the .ttc collection
SAMPLE_RATE = 16_000
MAX_CLIP_MS = 10_000
SCALE = 3  # pictures are drawn this many times larger, then reduced

# ---- speech ---------------------------------------------------------------------------

NARRATOR = {"speed": 165, "pitch": 50}
LEADER = {"speed": 175, "pitch": 30}  # speaker 1 of the conversation: lower, slower
NEWCOMER = {"speed": 185, "pitch": 75}  # speaker 2: higher, a little faster

# file name -> list of (voice, kana text); lines are joined with a short pause.
SPEECH: dict[str, list[tuple[dict[str, int], str]]] = {
    # tour-l-01: a shop announcement (opens 9:30, closes 8 p.m.)
    "tour_l01_shop_hours.wav": [
        (NARRATOR, "いらっしゃいませ。このみせわ、まいあさ、くじはんに あきます。"),
        (NARRATOR, "よるわ、はちじに しまります。"),
    ],
    # tour-l-02: an instruction at work (the box goes to the 2nd-floor storeroom)
    "tour_l02_box.wav": [
        (NARRATOR, "ディルショドさん、このはこを、にかいの そうこに おいて ください。"),
        (NARRATOR, "いっかいの じむしょでわ ありません。"),
    ],
    # tour-conv-factory (tour-l-03, tour-l-04): leader and newcomer at a food factory
    "tour_conv_factory.wav": [
        (LEADER, "アジズさん、あした、しちじに きて ください。"),
        (NEWCOMER, "しちじですね。なにを もって きますか。"),
        (LEADER, "エプロンと ぼうしです。くつわ いりません。"),
    ],
}
PAUSE_MS = 450  # between lines
EDGE_MS = 200  # silence at the start and the end
SILENCE_DBFS = -50.0  # quieter than this at the ends of a line is trimmed


def speak(voice: dict[str, int], text: str, workdir: Path) -> AudioSegment:
    """Synthesise one line with espeak-ng and return it as mono 16 kHz 16-bit audio."""
    target = workdir / "line.wav"
    command = ["espeak-ng", "-v", "ja", "-s", str(voice["speed"]), "-p", str(voice["pitch"])]
    subprocess.run([*command, "-w", str(target), text], check=True)  # noqa: S603
    segment = AudioSegment.from_wav(io.BytesIO(target.read_bytes()))
    segment = segment.set_channels(1).set_frame_rate(SAMPLE_RATE).set_sample_width(2)
    return trim(segment)


def trim(segment: AudioSegment) -> AudioSegment:
    """Cut the silence espeak-ng leaves before and after a line (pauses are added later)."""
    start = detect_leading_silence(segment, silence_threshold=SILENCE_DBFS)
    end = detect_leading_silence(segment.reverse(), silence_threshold=SILENCE_DBFS)
    return segment[start : len(segment) - end]


def make_clip(name: str, lines: list[tuple[dict[str, int], str]], workdir: Path) -> None:
    pause = AudioSegment.silent(duration=PAUSE_MS, frame_rate=SAMPLE_RATE)
    edge = AudioSegment.silent(duration=EDGE_MS, frame_rate=SAMPLE_RATE)
    clip = edge
    for index, (voice, text) in enumerate(lines):
        clip += (pause if index else AudioSegment.empty()) + speak(voice, text, workdir)
    clip += edge
    clip = clip.set_channels(1).set_frame_rate(SAMPLE_RATE).set_sample_width(2)
    if len(clip) > MAX_CLIP_MS:
        sys.exit(f"{name}: {len(clip) / 1000:.1f} s is longer than {MAX_CLIP_MS / 1000:g} s")
    clip.export(MEDIA_DIR / name, format="wav")


# ---- pictures -------------------------------------------------------------------------

INK = (40, 40, 40)
WHITE = (255, 255, 255)


def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT_PATH, size * SCALE, index=FONT_INDEX)


def canvas(width: int, height: int, colour=WHITE) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (width * SCALE, height * SCALE), colour)
    return image, ImageDraw.Draw(image)


def s(*values: float) -> list[float]:
    """Scale picture coordinates to the drawing canvas."""
    return [v * SCALE for v in values]


def save(image: Image.Image, name: str, colours: int = 64) -> None:
    """Reduce to the final size and save as a small palette PNG (deterministic)."""
    small = image.resize((image.width // SCALE, image.height // SCALE), Image.Resampling.LANCZOS)
    palette = small.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=0)
    palette.save(MEDIA_DIR / name, format="PNG", optimize=True)


def clock(hours: int, minutes: int, name: str) -> None:
    """A plain analogue clock face: 12 numbers, short hour hand, long minute hand."""
    size, centre, radius = 180, 90, 80
    image, draw = canvas(size, size)
    draw.ellipse(
        s(centre - radius, centre - radius, centre + radius, centre + radius),
        fill=(250, 250, 245),
        outline=INK,
        width=4 * SCALE,
    )
    for tick in range(60):
        angle = math.radians(tick * 6)
        inner = radius - (10 if tick % 5 == 0 else 5)
        outer = radius - 3
        draw.line(
            s(
                centre + inner * math.sin(angle),
                centre - inner * math.cos(angle),
                centre + outer * math.sin(angle),
                centre - outer * math.cos(angle),
            ),
            fill=INK,
            width=(3 if tick % 5 == 0 else 1) * SCALE,
        )
    numbers = font(16)
    for number in range(1, 13):
        angle = math.radians(number * 30)
        x, y = centre + 61 * math.sin(angle), centre - 61 * math.cos(angle)
        draw.text(s(x, y), str(number), font=numbers, fill=INK, anchor="mm")
    hour_angle = math.radians((hours % 12) * 30 + minutes * 0.5)
    minute_angle = math.radians(minutes * 6)
    for angle, length, width in ((hour_angle, 32, 8), (minute_angle, 49, 4)):
        draw.line(
            s(centre, centre, centre + length * math.sin(angle), centre - length * math.cos(angle)),
            fill=INK,
            width=width * SCALE,
        )
    dot = 5
    draw.ellipse(s(centre - dot, centre - dot, centre + dot, centre + dot), fill=INK)
    save(image, name, colours=16)


def wet_floor(name: str) -> None:
    """A care-home corridor: water spilled on the floor, a resident with a cane walking up."""
    width, height = 480, 300
    image, draw = canvas(width, height, (246, 240, 226))
    floor_top = 190
    draw.rectangle(s(0, floor_top, width, height), fill=(205, 205, 200))
    for x in range(-200, width, 60):  # floor boards in perspective
        draw.line(s(x + 100, floor_top, x, height), fill=(185, 185, 180), width=SCALE)
    draw.line(s(0, floor_top, width, floor_top), fill=(150, 140, 120), width=3 * SCALE)
    draw.rectangle(s(0, 120, width, 126), fill=(170, 130, 90))  # handrail on the wall
    for x in (60, 240, 420):
        draw.rectangle(s(x, 126, x + 6, 138), fill=(150, 110, 70))
    # door with a room sign "しょくどう" (dining room)
    draw.rectangle(
        s(330, 40, 420, floor_top), fill=(214, 190, 150), outline=(150, 120, 80), width=2 * SCALE
    )
    draw.ellipse(s(400, 112, 410, 122), fill=(120, 100, 60))
    draw.rectangle(s(332, 12, 418, 36), fill=WHITE, outline=INK, width=SCALE)
    draw.text(s(375, 24), "しょくどう", font=font(14), fill=INK, anchor="mm")
    # the spilled water and the cup lying on its side
    water = (120, 180, 235)
    draw.ellipse(s(230, 225, 370, 262), fill=water)
    draw.ellipse(s(300, 212, 390, 240), fill=water)
    draw.ellipse(s(215, 240, 270, 268), fill=water)
    for x, y in ((250, 235), (330, 220), (350, 248)):  # shine
        draw.arc(s(x, y, x + 18, y + 8), 200, 340, fill=WHITE, width=2 * SCALE)
    draw.polygon(s(372, 214, 398, 206, 404, 222, 378, 230), fill=WHITE, outline=INK)
    draw.ellipse(s(396, 204, 408, 224), fill=(235, 235, 235), outline=INK, width=SCALE)
    # the resident: bent a little forward, walking to the right with a cane
    body = (90, 110, 160)
    head_x, head_y = 118, 98
    draw.ellipse(
        s(head_x - 17, head_y - 17, head_x + 17, head_y + 17),
        fill=(245, 215, 185),
        outline=INK,
        width=2 * SCALE,
    )
    draw.arc(
        s(head_x - 17, head_y - 19, head_x + 17, head_y + 9),
        180,
        360,
        fill=(200, 200, 200),
        width=6 * SCALE,
    )  # grey hair
    hip = (104, 190)
    draw.line(s(head_x - 4, head_y + 17, *hip), fill=body, width=16 * SCALE)  # trunk
    draw.line(s(*hip, 122, 255), fill=(80, 80, 90), width=10 * SCALE)  # front leg
    draw.line(s(*hip, 84, 255), fill=(80, 80, 90), width=10 * SCALE)  # back leg
    draw.line(s(126, 258, 136, 258), fill=INK, width=6 * SCALE)
    draw.line(s(78, 258, 90, 258), fill=INK, width=6 * SCALE)
    draw.line(s(112, 130, 146, 170), fill=body, width=8 * SCALE)  # arm to the cane
    draw.line(s(146, 166, 158, 258), fill=(120, 80, 40), width=5 * SCALE)  # cane
    draw.arc(s(138, 158, 154, 174), 180, 360, fill=(120, 80, 40), width=5 * SCALE)
    for y in (140, 165, 190):  # walking-direction lines behind the resident
        draw.line(s(40, y, 64, y), fill=(150, 150, 150), width=3 * SCALE)
    # drops splashing out of the cup
    for x, y in ((366, 200), (384, 192), (352, 208)):
        draw.ellipse(s(x - 3, y - 5, x + 3, y + 3), fill=water)
    save(image, name)


PICTURES = {
    "tour_wet_floor.png": wet_floor,
    "tour_clock_0830.png": lambda name: clock(8, 30, name),
    "tour_clock_0800.png": lambda name: clock(8, 0, name),
    "tour_clock_0930.png": lambda name: clock(9, 30, name),
    "tour_clock_0640.png": lambda name: clock(6, 40, name),
}


def main() -> None:
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is not installed (apt-get install espeak-ng)")
    if not Path(FONT_PATH).is_file():
        sys.exit(f"font not found: {FONT_PATH} (apt-get install fonts-noto-cjk)")
    MEDIA_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        for name, lines in SPEECH.items():
            make_clip(name, lines, Path(directory))
    for name, draw_picture in PICTURES.items():
        draw_picture(name)
    for name in [*SPEECH, *PICTURES]:
        path = MEDIA_DIR / name
        print(f"{path.relative_to(MEDIA_DIR.parent)}  {path.stat().st_size:>7} bytes")


if __name__ == "__main__":
    main()
