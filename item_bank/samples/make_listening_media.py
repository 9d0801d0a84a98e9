"""Generate the recordings and pictures of the two listening sample files.

``jlpt_n5_listening.yaml`` (refs ``n5-l-...``, media ``media/n5l_*``) and
``jft_basic_listening.yaml`` (refs ``jft-lc-...``, media ``media/jftl_*``) use only the
files this script writes. The files are committed; the script exists so that anyone can
check how they were made, and make them again after editing a script below. Run it from
anywhere (it takes a few seconds):

    /work/venv/bin/python item_bank/samples/make_listening_media.py

Options: ``--only NAME [NAME ...]`` remakes only the named files (e.g. ``n5l_task01.mp3``);
``--check`` writes nothing and only prints each clip's length.

Needs:

* ``espeak-ng`` on PATH with its Japanese voice (``espeak-ng -v ja``) and the standard
  voice variants (``ja+f2``, ``ja+f4``, ``ja+m3``);
* Pillow, pydub and imageio-ffmpeg (dependencies of the project): the MP3 encoder is the
  ffmpeg binary shipped by imageio-ffmpeg;
* the Noto Sans CJK font (Debian/Ubuntu package ``fonts-noto-cjk``); another path can be
  given in the environment variable ``TOUR_CJK_FONT``.

Speech is synthesised from kana only (espeak-ng reads kana best; the particles は and へ
are written わ and え so that they are pronounced as particles). Each line is trimmed,
brought to the same loudness, and joined with fixed pauses; the clip is written as mono
22.05 kHz constant-bitrate 48 kbit/s MP3 without metadata (``-bitexact``), and must be
shorter than ``MAX_CLIP_MS``. Speakers differ by espeak-ng voice variant, pitch and speed:
a neutral narrator, a man, a woman and a child.

The JLPT-style scripts follow the real N5 formats: task and point items (課題理解,
ポイント理解) are "narrator: situation and question / dialogue / narrator: the question
again"; utterance items (発話表現) are "narrator: situation, なんと いいますか / three
numbered spoken choices"; quick-response items (即時応答) are "one line / three numbered
spoken replies". The JFT-style scripts are the conversation or announcement only (the
question is written on the screen).

Pictures are drawn at three times their size and scaled down (smooth edges), then saved
as small palette PNGs. Nothing random is used, so the same tool versions give the same
files. Only the files named below are written; nothing else in ``media/`` is touched.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
from PIL import Image, ImageDraw, ImageFont

with warnings.catch_warnings():
    # pydub warns when ffmpeg is not on PATH; it is only used here on PCM in memory.
    warnings.simplefilter("ignore", RuntimeWarning)
    from pydub import AudioSegment
    from pydub.silence import detect_leading_silence

MEDIA_DIR = Path(__file__).resolve().parent / "media"
FONT_PATH = os.environ.get(
    "TOUR_CJK_FONT", "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
)
FONT_INDEX = 0  # Noto Sans CJK JP inside the .ttc collection
SAMPLE_RATE = 22_050
MP3_BITRATE = "48k"
MAX_CLIP_MS = 15_500
SCALE = 3  # pictures are drawn this many times larger, then reduced

# ======================================================================================
# Speech
# ======================================================================================


@dataclass(frozen=True)
class Voice:
    variant: str
    speed: int
    pitch: int


NARRATOR = Voice("ja", 180, 45)
MAN = Voice("ja+m3", 175, 30)
WOMAN = Voice("ja+f2", 180, 65)
CHILD = Voice("ja+f4", 185, 90)

N, M, F, C = NARRATOR, MAN, WOMAN, CHILD

PAUSE_MS = 300  # between the lines of a dialogue
SECTION_MS = 550  # after the opening narration and before the question is repeated
NUMBER_MS = 180  # between a spoken choice number and the choice
CHOICE_MS = 650  # between the spoken choices
EDGE_MS = 200  # silence at the start and the end
SILENCE_DBFS = -50.0  # quieter than this at the ends of a line is trimmed
LINE_DBFS = -20.0  # every line is brought to this loudness before joining

Line = tuple[Voice, str]
# Task and point dialogues are spoken at the voices' speed, so that they stay under
# 15.5 s with the question said twice; the shorter clips are spoken more slowly.
SHORT_CLIP_SLOWER = 15
NUMBERS = ("いち", "に", "さん")  # the narrator numbers the spoken choices


@dataclass(frozen=True)
class Script:
    """A recording: an optional opening narration, lines, the question again, choices."""

    lines: tuple[Line, ...]
    intro: str = ""  # narrator: the situation and the question
    outro: str = ""  # narrator: the question repeated
    choices: tuple[Line, ...] = ()  # spoken choices, numbered いち, に, さん
    slower: int = 0  # words per minute taken off every voice's speed (short clips)


def dialogue(intro: str, *lines: Line) -> Script:
    """JLPT task/point format: the question is asked before and after the dialogue."""
    return Script(tuple(lines), intro=intro, outro=intro.split("。")[-2] + "。")


def talk(*lines: Line) -> Script:
    """JFT format: the conversation or announcement only."""
    return Script(tuple(lines), slower=SHORT_CLIP_SLOWER)


def spoken_choices(opening: tuple[Line, ...], voice: Voice, *choices: str) -> Script:
    """JLPT utterance / quick-response format: three numbered spoken choices."""
    if len(choices) != len(NUMBERS):
        raise ValueError("an utterance or quick-response script needs three choices")
    return Script(
        opening, choices=tuple((voice, text) for text in choices), slower=SHORT_CLIP_SLOWER
    )


SPEECH: dict[str, Script] = {
    # ---- JLPT N5: 課題理解 (task) --------------------------------------------------
    "n5l_task01.mp3": dialogue(
        "おんなのひとと みせのひとが はなしています。おんなのひとわ なにを かいますか。",
        (F, "すみません、りんごを みっつ ください。"),
        (M, "はい。きょうわ みかんも やすいですよ。"),
        (F, "じゃあ、みかんも いつつ ください。"),
    ),
    "n5l_task02.mp3": dialogue(
        "せんせいと がくせいが はなしています。がくせいわ あした なにを もって いきますか。",
        (M, "せんせい、あしたの テストに なにを もって きますか。"),
        (F, "えんぴつと けしゴムです。ペンと じしょわ だめです。"),
    ),
    "n5l_task03.mp3": dialogue(
        "おんなのひとと おとこのひとが はなしています。おとこのひとわ はじめに なにを しますか。",
        (F, "ゆうびんきょくえ いく まえに、この てがみを コピーして ください。"),
        (M, "はい、わかりました。"),
    ),
    "n5l_task04.mp3": dialogue(
        "おんなのひとと おとこのひとが はなしています。おとこのひとわ なにを たべますか。",
        (F, "わたしわ カレーに します。やまださんわ？"),
        (M, "すしが いいです。あ、ありませんね。じゃあ、てんぷらに します。"),
    ),
    "n5l_task05.mp3": dialogue(
        "おんなのひとと おとこのひとが はなしています。"
        "おんなのひとわ なんばんの バスに のりますか。",
        (F, "すみません、としょかんわ さんばんの バスですか。"),
        (M, "いいえ、さんばんわ びょういんです。ごばんに のって ください。"),
    ),
    "n5l_task06.mp3": dialogue(
        "うちで おかあさんと おとこのこが はなしています。おとこのこわ はじめに なにを しますか。",
        (C, "ただいま。テレビを みても いい？"),
        (F, "テレビわ ごはんの あとで みて。さきに てを あらって ね。"),
    ),
    "n5l_task07.mp3": dialogue(
        "おとこのひとと おんなのひとが はなしています。おんなのひとわ あした なんじに きますか。",
        (M, "あしたの かいぎわ くじからです。"),
        (F, "じゃあ、くじに きますね。"),
        (M, "いいえ、はちじはんに きて ください。"),
    ),
    "n5l_task08.mp3": dialogue(
        "おんなのひとと おとこのひとが はなしています。おとこのひとわ なにを かいますか。",
        (F, "パンと ぎゅうにゅうが ありません。かって きて ください。"),
        (M, "たまごも かいますか。"),
        (F, "たまごわ まだ ありますから、いいです。"),
    ),
    "n5l_task09.mp3": dialogue(
        "びょういんで おんなのひとと おとこのひとが はなしています。"
        "おとこのひとわ どこえ いきますか。",
        (F, "にかいの ごばんの へやの まえで まって ください。"),
        (M, "にかいの ごばんですね。わかりました。"),
    ),
    # ---- JLPT N5: ポイント理解 (point) -------------------------------------------------
    "n5l_point01.mp3": dialogue(
        "おとこのひとと おんなのひとが はなしています。パーティーわ なんようびですか。",
        (M, "パーティーわ どようびですね。"),
        (F, "いいえ、どようびわ しごとが ありますから、にちようびに しました。"),
    ),
    "n5l_point02.mp3": dialogue(
        "おとこのひとと おんなのひとが はなしています。おんなのひとわ なにで うみえ いきましたか。",
        (M, "きのう、でんしゃで うみえ いきましたか。"),
        (F, "いいえ、ともだちの くるまで いきました。かえりわ でんしゃでした。"),
    ),
    "n5l_point03.mp3": dialogue(
        "おんなのひとと おとこのひとが はなしています。おとこのひとわ なんにん かぞくですか。",
        (F, "リーさんわ なんにん かぞくですか。"),
        (M, "ちちと ははと、あにが ふたり います。それから わたしです。"),
    ),
    "n5l_point04.mp3": dialogue(
        "おとこのひとと おんなのひとが はなしています。おんなのひとわ けさ なにを たべましたか。",
        (M, "けさ、なにを たべましたか。"),
        (F, "いつもわ パンですが、けさわ ごはんと たまごを たべました。"),
    ),
    "n5l_point05.mp3": dialogue(
        "おんなのひとと おとこのひとが はなしています。おんなのひとの ほんわ どこに ありますか。",
        (F, "わたしの ほん、しりませんか。つくえの うえに ありませんでした。"),
        (M, "あ、いすの したに ありますよ。"),
    ),
    "n5l_point06.mp3": dialogue(
        "おんなのひとと おとこのひとが はなしています。"
        "おとこのひとわ どうして おそく なりましたか。",
        (F, "きょうわ おそかったですね。"),
        (M, "すみません。あさ、あたまが いたくて、びょういんえ いきました。"),
    ),
    "n5l_point07.mp3": dialogue(
        "おとこのひとと おんなのひとが はなしています。えいがわ なんじに はじまりますか。",
        (M, "えいがわ しちじからですね。"),
        (F, "いいえ、しちじはんからです。しちじに えきで あいましょう。"),
    ),
    "n5l_point08.mp3": dialogue(
        "みせで おんなのひとと みせのひとが はなしています。かさわ ぜんぶで いくらですか。",
        (F, "すみません、この かさわ いくらですか。"),
        (M, "せんごひゃくえんです。"),
        (F, "じゃあ、これを ふたつ ください。"),
    ),
    # ---- JLPT N5: 発話表現 (utterance): the person with the arrow speaks ---------------
    "n5l_utt01.mp3": spoken_choices(
        ((N, "これから ごはんを たべます。なんと いいますか。"),),
        F,
        "ごちそうさまでした。",
        "いただきます。",
        "いってきます。",
    ),
    "n5l_utt02.mp3": spoken_choices(
        ((N, "あさ、うちを でます。なんと いいますか。"),),
        C,
        "いってきます。",
        "いってらっしゃい。",
        "ただいま。",
    ),
    "n5l_utt03.mp3": spoken_choices(
        ((N, "ともだちの ペンを かりたいです。なんと いいますか。"),),
        F,
        "ペンを かしましょうか。",
        "ペンを どうぞ。",
        "ペンを かして ください。",
    ),
    "n5l_utt04.mp3": spoken_choices(
        ((N, "おきゃくさんに おちゃを だします。なんと いいますか。"),),
        F,
        "おちゃを いただきます。",
        "おちゃを どうぞ。",
        "おちゃわ いかがでしたか。",
    ),
    "n5l_utt05.mp3": spoken_choices(
        ((N, "みせで かばんを みたいです。なんと いいますか。"),),
        M,
        "すみません、その かばんを みせて ください。",
        "すみません、その かばんを みて ください。",
        "その かばんわ いかがですか。",
    ),
    "n5l_utt06.mp3": spoken_choices(
        ((N, "ともだちが さきに かえります。なんと いいますか。"),),
        M,
        "おかえりなさい。",
        "いらっしゃい。",
        "じゃあ、また あした。",
    ),
    "n5l_utt07.mp3": spoken_choices(
        ((N, "へやが あついです。まどを あけたいです。なんと いいますか。"),),
        M,
        "まどを あけても いいですか。",
        "まどを あけましたか。",
        "まどが あいて いますか。",
    ),
    # ---- JLPT N5: 即時応答 (quick response): one line, three spoken replies -----------
    "n5l_qr01.mp3": spoken_choices(
        ((M, "この かさわ だれのですか。"),),
        F,
        "はい、かさです。",
        "やまださんのです。",
        "あおい かさです。",
    ),
    "n5l_qr02.mp3": spoken_choices(
        ((F, "なにか のみますか。"),),
        M,
        "はい、きのう のみました。",
        "いいえ、おいしかったです。",
        "じゃあ、おちゃを おねがいします。",
    ),
    "n5l_qr03.mp3": spoken_choices(
        ((M, "まいあさ なんじに おきますか。"),),
        F,
        "ろくじです。",
        "ろくじかんです。",
        "ろくじに ねます。",
    ),
    "n5l_qr04.mp3": spoken_choices(
        ((F, "しゅうまつわ どこかえ いきましたか。"),),
        M,
        "はい、いきましょう。",
        "いいえ、どこえも いきませんでした。",
        "はい、あした いきます。",
    ),
    "n5l_qr05.mp3": spoken_choices(
        ((M, "すみません、トイレわ どこですか。"),),
        F,
        "はい、トイレです。",
        "いいえ、どういたしまして。",
        "あの かいだんの よこです。",
    ),
    "n5l_qr06.mp3": spoken_choices(
        ((F, "その パン、おいしいですか。"),),
        M,
        "はい、パンです。",
        "いいえ、パンやです。",
        "ええ、とても おいしいですよ。",
    ),
    "n5l_qr07.mp3": spoken_choices(
        ((M, "いっしょに ひるごはんを たべませんか。"),),
        F,
        "いいえ、たべませんでした。",
        "ええ、たべましょう。",
        "はい、いただきました。",
    ),
    "n5l_qr08.mp3": spoken_choices(
        ((F, "おさきに しつれいします。"),),
        M,
        "おつかれさまでした。",
        "いらっしゃいませ。",
        "はじめまして。",
    ),
    # ---- JFT-Basic style: conversations and announcements ----------------------------
    "jftl_01_bento.mp3": talk(
        (F, "おべんとう、あたためますか。"),
        (M, "はい、おねがいします。"),
        (F, "ふくろわ どうしますか。"),
        (M, "いりません。かばんに いれます。"),
    ),
    "jftl_02_shirt.mp3": talk(
        (M, "すみません、この シャツの エムサイズわ ありますか。"),
        (F, "あおわ エルだけです。しろなら エムが ありますよ。"),
        (M, "じゃあ、しろの エムを ください。"),
    ),
    "jftl_03_factory_order.mp3": talk(
        (
            M,
            "こうじょうに はいる まえに、まず てを あらって ください。"
            "つぎに マスクを して、さいごに てぶくろを して ください。",
        ),
    ),
    "jftl_04_sick_call.mp3": talk(
        (F, "ボブルさん、ねつが ある ときわ、しごとに こないで ください。"),
        (M, "はい。メールで れんらくしますか。"),
        (F, "いいえ、あさ はちじまでに でんわして ください。"),
    ),
    "jftl_05_delay.mp3": talk(
        (
            N,
            "みなさまに おしらせします。おおあめの ため、"
            "さんばんせんの でんしゃわ、いま にじゅっぷんほど おくれて います。",
        ),
    ),
    "jftl_06_insurance.mp3": talk(
        (F, "ほけんしょうを おねがいします。"),
        (M, "すみません、きょうわ わすれました。"),
        (
            F,
            "でわ、きょうわ ぜんぶ はらって ください。こんど ほけんしょうを もって きて ください。",
        ),
    ),
    "jftl_07_closing.mp3": talk(
        (
            N,
            "おきゃくさまに おしらせします。まもなく へいてんです。"
            "にかいと さんがいの レジわ もう しまりました。"
            "おかいけいわ いっかいの レジで おねがいします。",
        ),
    ),
    "jftl_08_shift.mp3": talk(
        (
            M,
            "もしもし、グエンさん。"
            "あしたの シフトですが、ごごからに なりました。いちじに きて ください。",
        ),
        (F, "いちじですね。おわりわ なんじですか。"),
        (M, "くじです。"),
    ),
    "jftl_conv_hotel.mp3": talk(
        (
            F,
            "ジャスルさん、きょうわ さんがいの へやを そうじして ください。"
            "さんびゃくいちから さんびゃくろくまでです。",
        ),
        (M, "はい。シーツも かえますか。"),
        (F, "シーツわ きのう かえましたから、きょうわ タオルだけで いいです。"),
    ),
    "jftl_11_parcel.mp3": talk(
        (F, "この にもつを ウズベキスタンに おくりたいです。"),
        (M, "ふねだと いっかげつ、ひこうきだと いっしゅうかんぐらいです。"),
        (F, "じゃあ、ひこうきで おねがいします。"),
    ),
    "jftl_12_smoking.mp3": talk(
        (
            M,
            "ひるやすみわ じゅうにじから いちじまでです。"
            "たばこわ たてものの なかでわ だめです。そとの きつえんじょで すって ください。",
        ),
    ),
    "jftl_13_order.mp3": talk(
        (F, "すみません、ラーメンを ふたつと、ぎょうざを ひとつ おねがいします。"),
        (M, "はい。おのみものわ？"),
        (F, "みずで いいです。"),
    ),
    "jftl_14_medicine.mp3": talk(
        (
            F,
            "この くすりわ いちにち さんかい、ごはんの あとに のんで ください。"
            "いっかいに ふたつです。",
        ),
        (M, "ねる まえにも のみますか。"),
        (F, "いいえ、ねる まえわ のまないで ください。"),
    ),
    "jftl_15_ward_office.mp3": talk(
        (M, "すみません、じゅうしょの てつづきわ ここですか。"),
        (F, "いいえ、ここわ にばんの ほけんの まどぐちです。じゅうしょわ ごばんです。"),
        (M, "ごばんですね。ありがとうございます。"),
    ),
    "jftl_16_eggs.mp3": talk(
        (
            N,
            "おきゃくさまに おしらせします。きょうわ たまごが やすいです。"
            "ひとパック ひゃくきゅうじゅうえんです。おひとりさま みっつまでです。",
        ),
    ),
}


def speak(voice: Voice, text: str, workdir: Path, slower: int = 0) -> AudioSegment:
    """Synthesise one line with espeak-ng: mono 16-bit, trimmed, at ``LINE_DBFS``."""
    target = workdir / "line.wav"
    speed = str(voice.speed - slower)
    command = ["espeak-ng", "-v", voice.variant, "-s", speed, "-p", str(voice.pitch)]
    subprocess.run([*command, "-w", str(target), text], check=True)  # noqa: S603
    segment = AudioSegment.from_wav(io.BytesIO(target.read_bytes()))
    segment = segment.set_channels(1).set_frame_rate(SAMPLE_RATE).set_sample_width(2)
    start = detect_leading_silence(segment, silence_threshold=SILENCE_DBFS)
    end = detect_leading_silence(segment.reverse(), silence_threshold=SILENCE_DBFS)
    segment = segment[start : len(segment) - end]
    return segment.apply_gain(LINE_DBFS - segment.dBFS)


def silence(ms: int) -> AudioSegment:
    return AudioSegment.silent(duration=ms, frame_rate=SAMPLE_RATE)


def render(script: Script, workdir: Path) -> AudioSegment:
    def say(voice: Voice, text: str) -> AudioSegment:
        return speak(voice, text, workdir, script.slower)

    clip = silence(EDGE_MS)
    if script.intro:
        clip += say(NARRATOR, script.intro) + silence(SECTION_MS)
    for index, (voice, text) in enumerate(script.lines):
        clip += (silence(PAUSE_MS) if index else AudioSegment.empty()) + say(voice, text)
    for number, (voice, text) in zip(NUMBERS[: len(script.choices)], script.choices, strict=True):
        clip += silence(CHOICE_MS) + say(NARRATOR, number)
        clip += silence(NUMBER_MS) + say(voice, text)
    if script.outro:
        clip += silence(SECTION_MS) + say(NARRATOR, script.outro)
    clip += silence(EDGE_MS)
    peak = clip.max_dBFS
    if peak > -1.0:  # keep the peaks below full scale (MP3 overshoots a little)
        clip = clip.apply_gain(-1.0 - peak)
    return clip.set_channels(1).set_frame_rate(SAMPLE_RATE).set_sample_width(2)


def write_mp3(clip: AudioSegment, target: Path) -> None:
    """Encode with the ffmpeg of imageio-ffmpeg: mono 22.05 kHz CBR MP3, no metadata."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
    command += ["-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", "pipe:0"]
    command += ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact"]
    command += ["-c:a", "libmp3lame", "-b:a", MP3_BITRATE, "-ar", str(SAMPLE_RATE), "-ac", "1"]
    command += ["-f", "mp3", str(target)]
    subprocess.run(command, input=clip.raw_data, check=True, capture_output=True)  # noqa: S603


# ======================================================================================
# Pictures
# ======================================================================================

INK = (40, 40, 40)
WHITE = (255, 255, 255)
SKIN = (246, 214, 182)
HAIR = (60, 45, 35)
RED = (214, 40, 40)
WOOD = (196, 150, 100)
DARK_WOOD = (140, 100, 60)

Draw = ImageDraw.ImageDraw


def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT_PATH, size * SCALE, index=FONT_INDEX)


def canvas(width: int, height: int, colour=WHITE) -> tuple[Image.Image, Draw]:
    image = Image.new("RGB", (width * SCALE, height * SCALE), colour)
    return image, ImageDraw.Draw(image)


def s(*values: float) -> list[float]:
    """Scale picture coordinates to the drawing canvas."""
    return [v * SCALE for v in values]


def save(image: Image.Image, name: str, colours: int = 48) -> None:
    """Reduce to the final size and save as a small palette PNG (deterministic)."""
    small = image.resize((image.width // SCALE, image.height // SCALE), Image.Resampling.LANCZOS)
    palette = small.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=0)
    palette.save(MEDIA_DIR / name, format="PNG", optimize=True)


def frame(draw: Draw, width: int, height: int) -> None:
    draw.rectangle(s(1, 1, width - 2, height - 2), outline=(150, 150, 150), width=2 * SCALE)


def line(draw: Draw, points: list[float], colour=INK, width: float = 3) -> None:
    draw.line(s(*points), fill=colour, width=round(width * SCALE), joint="curve")


def person(
    draw: Draw,
    x: float,
    foot: float,
    *,
    height: float = 120,
    clothes=(80, 120, 190),
    hair=HAIR,
    long_hair: bool = False,
    arms: tuple[tuple[float, float], tuple[float, float]] | None = None,
    sitting: bool = False,
    facing: int = 1,
) -> tuple[float, float]:
    """A simple standing (or sitting) figure centred on ``x``; returns the head top.

    A sitting figure has its thighs towards ``facing`` (1: right, -1: left).
    """
    unit = height / 120
    head_r = 13 * unit
    head_y = foot - height + head_r + (10 * unit if sitting else 0)
    shoulder_y = head_y + head_r + 4 * unit
    hip_y = foot - (42 if sitting else 52) * unit
    trousers = (70, 70, 85)
    if sitting:  # thighs forward, shins down
        knee = x + facing * 26 * unit
        line(draw, [x, hip_y, knee, hip_y], trousers, 10 * unit)
        line(draw, [knee, hip_y, knee, foot], trousers, 9 * unit)
    else:
        line(draw, [x - 6 * unit, hip_y, x - 9 * unit, foot], trousers, 9 * unit)
        line(draw, [x + 6 * unit, hip_y, x + 9 * unit, foot], trousers, 9 * unit)
    draw.rounded_rectangle(
        s(x - 15 * unit, shoulder_y, x + 15 * unit, hip_y + 4 * unit),
        radius=8 * unit * SCALE,
        fill=clothes,
    )
    left, right = arms or ((x - 20 * unit, hip_y), (x + 20 * unit, hip_y))
    line(draw, [x - 12 * unit, shoulder_y + 5 * unit, *left], clothes, 7 * unit)
    line(draw, [x + 12 * unit, shoulder_y + 5 * unit, *right], clothes, 7 * unit)
    for hx, hy in (left, right):
        draw.ellipse(s(hx - 4 * unit, hy - 4 * unit, hx + 4 * unit, hy + 4 * unit), fill=SKIN)
    if long_hair:
        draw.rounded_rectangle(
            s(
                x - head_r - 3 * unit,
                head_y - 3 * unit,
                x + head_r + 3 * unit,
                head_y + head_r + 8 * unit,
            ),
            radius=6 * unit * SCALE,
            fill=hair,
        )
    draw.ellipse(
        s(x - head_r, head_y - head_r, x + head_r, head_y + head_r), fill=SKIN, outline=INK
    )
    draw.chord(
        s(x - head_r, head_y - head_r, x + head_r, head_y + head_r * 0.6), 180, 360, fill=hair
    )
    for ex in (x - 5 * unit, x + 5 * unit):
        draw.ellipse(s(ex - 1.5 * unit, head_y, ex + 1.5 * unit, head_y + 3 * unit), fill=INK)
    draw.arc(
        s(x - 5 * unit, head_y + 3 * unit, x + 5 * unit, head_y + 9 * unit),
        20,
        160,
        fill=INK,
        width=SCALE,
    )
    return x, head_y - head_r


def arrow(draw: Draw, top: tuple[float, float]) -> None:
    """The red arrow that marks the speaker, pointing down at the head."""
    x, y = top
    tip = y - 4
    draw.polygon(
        s(
            x,
            tip,
            x - 13,
            tip - 16,
            x - 5,
            tip - 16,
            x - 5,
            tip - 36,
            x + 5,
            tip - 36,
            x + 5,
            tip - 16,
            x + 13,
            tip - 16,
        ),
        fill=RED,
    )


def speech_lines(draw: Draw, x: float, y: float) -> None:
    """Three short strokes beside a mouth: this person is talking."""
    for angle in (-30, 0, 30):
        rad = math.radians(angle)
        line(
            draw,
            [
                x + 4 * math.cos(rad),
                y + 4 * math.sin(rad),
                x + 12 * math.cos(rad),
                y + 12 * math.sin(rad),
            ],
            INK,
            2,
        )


def table(draw: Draw, x0: float, x1: float, top: float, floor: float) -> None:
    draw.rectangle(s(x0, top, x1, top + 8), fill=WOOD, outline=DARK_WOOD)
    for leg in (x0 + 8, x1 - 14):
        draw.rectangle(s(leg, top + 8, leg + 6, floor), fill=DARK_WOOD)


def chair(draw: Draw, x: float, floor: float, facing_right: bool = True) -> None:
    """A side-view chair; seat from x to x+40 at 40 px above the floor."""
    seat_y = floor - 40
    draw.rectangle(s(x, seat_y, x + 40, seat_y + 6), fill=WOOD, outline=DARK_WOOD)
    back_x = x if facing_right else x + 34
    draw.rectangle(s(back_x, seat_y - 44, back_x + 6, seat_y), fill=WOOD, outline=DARK_WOOD)
    for leg in (x + 2, x + 32):
        draw.rectangle(s(leg, seat_y + 6, leg + 5, floor), fill=DARK_WOOD)


def room(draw: Draw, width: int, height: int, floor: float, wall=(246, 240, 226)) -> None:
    draw.rectangle(s(0, 0, width, floor), fill=wall)
    draw.rectangle(s(0, floor, width, height), fill=(214, 204, 186))
    line(draw, [0, floor, width, floor], (160, 145, 120), 2)


# ---- utterance scenes (360 x 240) ------------------------------------------------------

SCENE_W, SCENE_H, FLOOR = 360, 240, 200


def scene_itadakimasu(name: str) -> None:
    """A woman sits at a table with a full bowl of rice and chopsticks, before eating."""
    image, draw = canvas(SCENE_W, SCENE_H)
    room(draw, SCENE_W, SCENE_H, FLOOR)
    chair(draw, 86, FLOOR + 20)
    top = person(
        draw,
        110,
        FLOOR + 20,
        clothes=(220, 120, 140),
        long_hair=True,
        sitting=True,
        arms=((150, 150), (152, 146)),
    )
    table(draw, 150, 300, 150, FLOOR + 20)
    # rice bowl with steam, soup bowl, chopsticks
    draw.chord(s(190, 120, 236, 160), 0, 180, fill=(120, 150, 200), outline=INK)
    draw.ellipse(s(192, 130, 234, 144), fill=WHITE, outline=(200, 200, 200))
    draw.chord(s(246, 124, 286, 160), 0, 180, fill=(170, 60, 50), outline=INK)
    line(draw, [176, 148, 200, 128], DARK_WOOD, 2)
    line(draw, [180, 149, 204, 129], DARK_WOOD, 2)
    for sx in (203, 213, 223):
        draw.arc(s(sx - 4, 100, sx + 4, 118), 90, 270, fill=(160, 160, 160), width=2 * SCALE)
    draw.ellipse(s(160, 50, 200, 90), fill=(250, 250, 245), outline=INK, width=2 * SCALE)  # clock
    line(draw, [180, 70, 180, 56], INK, 2)
    line(draw, [180, 70, 190, 70], INK, 2)
    arrow(draw, top)
    frame(draw, SCENE_W, SCENE_H)
    save(image, name)


def scene_ittekimasu(name: str) -> None:
    """Morning: a boy with a school bag at the open front door, his mother inside."""
    image, draw = canvas(SCENE_W, SCENE_H, (210, 232, 250))
    draw.ellipse(s(300, 18, 340, 58), fill=(250, 200, 60))  # morning sun
    for angle in range(0, 360, 45):
        rad = math.radians(angle)
        line(
            draw,
            [
                320 + 26 * math.cos(rad),
                38 + 26 * math.sin(rad),
                320 + 34 * math.cos(rad),
                38 + 34 * math.sin(rad),
            ],
            (250, 200, 60),
            3,
        )
    draw.rectangle(s(0, 40, 200, FLOOR), fill=(238, 226, 205))  # the house
    draw.polygon(s(-10, 44, 100, 4, 210, 44), fill=(160, 80, 60))
    draw.rectangle(s(110, 80, 170, FLOOR), fill=(120, 80, 50))  # open door (dark inside)
    draw.rectangle(s(170, 80, 182, FLOOR), fill=(170, 120, 70))
    draw.rectangle(s(0, FLOOR, SCENE_W, SCENE_H), fill=(180, 175, 165))
    person(
        draw,
        60,
        FLOOR,
        height=130,
        clothes=(200, 110, 150),
        long_hair=True,
        arms=((40, 150), (86, 96)),
    )  # mother waving
    top = person(
        draw, 240, FLOOR, height=100, clothes=(60, 110, 200), arms=((222, 165), (262, 160))
    )
    draw.rounded_rectangle(
        s(212, 128, 236, 160), radius=5 * SCALE, fill=(200, 50, 50), outline=INK
    )  # school bag
    for step in range(3):  # walking away from the door
        line(
            draw,
            [270 + step * 10, 150 + step * 8, 284 + step * 10, 150 + step * 8],
            (120, 120, 120),
            2,
        )
    arrow(draw, top)
    frame(draw, SCENE_W, SCENE_H)
    save(image, name)


def scene_pen(name: str) -> None:
    """Two students at desks; the one with the arrow has no pen, the friend has two."""
    image, draw = canvas(SCENE_W, SCENE_H)
    room(draw, SCENE_W, SCENE_H, FLOOR)
    draw.rectangle(
        s(90, 20, 270, 70), fill=(40, 90, 60), outline=DARK_WOOD, width=3 * SCALE
    )  # blackboard
    top = person(
        draw, 96, FLOOR, clothes=(230, 150, 60), long_hair=True, arms=((76, 150), (150, 128))
    )
    speech_lines(draw, 114, 102)
    table(draw, 40, 150, 150, FLOOR)
    draw.rectangle(s(60, 140, 100, 150), fill=WHITE, outline=INK)  # notebook, no pen
    person(draw, 262, FLOOR, clothes=(90, 150, 90), arms=((236, 148), (284, 150)))
    table(draw, 210, 320, 150, FLOOR)
    line(draw, [226, 146, 260, 138], (40, 80, 200), 4)  # two pens on the friend's desk
    line(draw, [232, 148, 266, 142], (200, 40, 40), 4)
    arrow(draw, top)
    frame(draw, SCENE_W, SCENE_H)
    save(image, name)


def scene_tea(name: str) -> None:
    """A host holds out a cup of tea to a guest sitting on a sofa."""
    image, draw = canvas(SCENE_W, SCENE_H)
    room(draw, SCENE_W, SCENE_H, FLOOR, wall=(236, 244, 236))
    draw.rounded_rectangle(
        s(200, 120, 340, FLOOR - 10), radius=10 * SCALE, fill=(120, 100, 160)
    )  # sofa
    draw.rounded_rectangle(s(206, 86, 340, 140), radius=10 * SCALE, fill=(140, 120, 180))
    person(
        draw,
        284,
        FLOOR,
        height=100,
        clothes=(70, 70, 90),
        sitting=True,
        facing=-1,
        arms=((262, 148), (300, 150)),
    )
    top = person(
        draw,
        120,
        FLOOR,
        height=125,
        clothes=(220, 120, 140),
        long_hair=True,
        arms=((168, 120), (172, 128)),
    )
    draw.rectangle(s(156, 126, 196, 132), fill=(150, 110, 70))  # tray
    draw.rounded_rectangle(
        s(168, 108, 184, 126), radius=3 * SCALE, fill=(120, 170, 120), outline=INK
    )  # cup
    for sx in (172, 180):
        draw.arc(s(sx - 3, 90, sx + 3, 104), 90, 270, fill=(160, 160, 160), width=2 * SCALE)
    speech_lines(draw, 138, 98)
    arrow(draw, top)
    frame(draw, SCENE_W, SCENE_H)
    save(image, name)


def scene_bag(name: str) -> None:
    """A bag shop: a customer points at a bag on the shelf behind the counter."""
    image, draw = canvas(SCENE_W, SCENE_H)
    room(draw, SCENE_W, SCENE_H, FLOOR, wall=(250, 236, 220))
    draw.rectangle(s(180, 60, 350, 66), fill=DARK_WOOD)  # shelf
    for bx, colour in ((196, (200, 60, 60)), (246, (60, 110, 190)), (296, (90, 160, 90))):
        draw.rounded_rectangle(s(bx, 30, bx + 36, 60), radius=4 * SCALE, fill=colour, outline=INK)
        draw.arc(s(bx + 8, 18, bx + 28, 40), 180, 360, fill=INK, width=2 * SCALE)
    person(
        draw,
        270,
        150,
        height=90,
        clothes=(240, 240, 240),
        long_hair=True,
        arms=((250, 130), (290, 130)),
    )  # clerk behind the counter
    draw.rectangle(s(180, 130, 350, FLOOR), fill=(170, 130, 90), outline=DARK_WOOD)  # counter
    top = person(draw, 100, FLOOR, height=130, clothes=(70, 90, 140), arms=((84, 160), (170, 70)))
    speech_lines(draw, 120, 104)
    arrow(draw, top)
    frame(draw, SCENE_W, SCENE_H)
    save(image, name)


def scene_goodbye(name: str) -> None:
    """Evening at the school gate: a friend walks away waving; the other waves back."""
    image, draw = canvas(SCENE_W, SCENE_H, (250, 200, 150))
    draw.ellipse(s(150, 150, 230, 230), fill=(240, 140, 60))  # setting sun
    draw.rectangle(s(0, 170, SCENE_W, SCENE_H), fill=(170, 160, 150))
    draw.rectangle(s(20, 80, 34, 190), fill=(150, 150, 150))  # school gate
    draw.rectangle(s(8, 70, 46, 84), fill=(130, 130, 130))
    draw.rectangle(s(38, 100, 70, 118), fill=WHITE, outline=INK)
    draw.text(s(54, 109), "がっこう", font=font(7), fill=INK, anchor="mm")
    top = person(draw, 110, 210, height=115, clothes=(60, 110, 200), arms=((92, 160), (138, 100)))
    person(draw, 280, 200, height=95, clothes=(90, 150, 90), arms=((262, 86), (298, 150)))
    for step in range(3):
        line(
            draw,
            [306 + step * 8, 160 + step * 8, 318 + step * 8, 160 + step * 8],
            (120, 110, 100),
            2,
        )
    arrow(draw, top)
    frame(draw, SCENE_W, SCENE_H)
    save(image, name)


def scene_window(name: str) -> None:
    """A hot room: a man by the closed window, fanning himself, looks at the teacher."""
    image, draw = canvas(SCENE_W, SCENE_H)
    room(draw, SCENE_W, SCENE_H, FLOOR, wall=(250, 240, 225))
    draw.rectangle(
        s(20, 30, 120, 130), fill=(200, 230, 250), outline=(120, 120, 120), width=4 * SCALE
    )
    line(draw, [70, 30, 70, 130], (120, 120, 120), 4)  # closed window
    draw.ellipse(s(30, 40, 58, 68), fill=(250, 190, 50))  # the sun outside
    draw.rectangle(s(250, 20, 300, 80), fill=WHITE, outline=INK)  # thermometer on the wall
    draw.text(s(275, 50), "35℃", font=font(14), fill=RED, anchor="mm")
    top = person(
        draw, 150, FLOOR, height=125, clothes=(90, 130, 200), arms=((130, 160), (178, 112))
    )
    for dx, dy in ((138, 95), (166, 92), (172, 104)):  # sweat
        draw.ellipse(s(dx - 2, dy - 4, dx + 2, dy + 3), fill=(90, 160, 230))
    speech_lines(draw, 168, 100)
    person(
        draw,
        290,
        FLOOR,
        height=130,
        clothes=(120, 120, 120),
        hair=(150, 150, 150),
        arms=((270, 160), (310, 160)),
    )
    arrow(draw, top)
    frame(draw, SCENE_W, SCENE_H)
    save(image, name)


# ---- option pictures ----------------------------------------------------------------------

OPT_W, OPT_H = 180, 120


def option_canvas() -> tuple[Image.Image, Draw]:
    image, draw = canvas(OPT_W, OPT_H)
    return image, draw


def pencil(draw: Draw, x: float, y: float) -> None:
    draw.rectangle(s(x, y, x + 70, y + 12), fill=(250, 200, 40), outline=INK)
    draw.polygon(s(x + 70, y, x + 88, y + 6, x + 70, y + 12), fill=(235, 205, 160), outline=INK)
    draw.polygon(s(x + 82, y + 4, x + 88, y + 6, x + 82, y + 8), fill=INK)
    draw.rectangle(s(x - 8, y, x, y + 12), fill=(240, 150, 160), outline=INK)


def pen(draw: Draw, x: float, y: float) -> None:
    draw.rounded_rectangle(
        s(x, y, x + 80, y + 10), radius=4 * SCALE, fill=(40, 80, 200), outline=INK
    )
    draw.rectangle(s(x, y - 2, x + 26, y + 12), fill=(30, 50, 150), outline=INK)
    line(draw, [x + 6, y - 2, x + 22, y - 6], (30, 50, 150), 2)
    draw.polygon(s(x + 80, y + 1, x + 90, y + 5, x + 80, y + 9), fill=(180, 180, 180), outline=INK)


def eraser(draw: Draw, x: float, y: float) -> None:
    draw.rounded_rectangle(
        s(x, y, x + 44, y + 24), radius=3 * SCALE, fill=WHITE, outline=INK, width=SCALE
    )
    draw.rectangle(s(x + 12, y, x + 40, y + 24), fill=(70, 130, 220), outline=INK)


def dictionary(draw: Draw, x: float, y: float) -> None:
    draw.rectangle(s(x, y, x + 50, y + 66), fill=(170, 50, 50), outline=INK, width=SCALE)
    draw.rectangle(s(x + 46, y + 2, x + 54, y + 68), fill=(240, 235, 220), outline=INK)
    draw.text(s(x + 25, y + 33), "じしょ", font=font(11), fill=WHITE, anchor="mm")


def school_things(first: str, second: str) -> Callable[[str], None]:
    drawers = {"pencil": pencil, "pen": pen, "eraser": eraser, "dictionary": dictionary}
    places = {"pencil": (20, 30), "pen": (16, 30), "eraser": (40, 72), "dictionary": (110, 26)}

    def make(name: str) -> None:
        image, draw = option_canvas()
        for thing in (first, second):
            x, y = places[thing]
            if thing == "eraser" and "dictionary" not in (first, second):
                x, y = 118, 46
            if thing == "eraser" and first == "dictionary":
                x, y = 40, 46
            if thing == "dictionary" and first == "dictionary":
                x = 100
            drawers[thing](draw, x, y)
        frame(draw, OPT_W, OPT_H)
        save(image, name, colours=24)

    return make


def clock(hours: int, minutes: int) -> Callable[[str], None]:
    """A plain analogue clock face: 12 numbers, short hour hand, long minute hand."""

    def make(name: str) -> None:
        size, centre, radius = 140, 70, 62
        image, draw = canvas(size, size)
        draw.ellipse(
            s(centre - radius, centre - radius, centre + radius, centre + radius),
            fill=(250, 250, 245),
            outline=INK,
            width=3 * SCALE,
        )
        numbers = font(13)
        for number in range(1, 13):
            angle = math.radians(number * 30)
            x, y = centre + 48 * math.sin(angle), centre - 48 * math.cos(angle)
            draw.text(s(x, y), str(number), font=numbers, fill=INK, anchor="mm")
        hour_angle = math.radians((hours % 12) * 30 + minutes * 0.5)
        minute_angle = math.radians(minutes * 6)
        for angle, length, width in ((hour_angle, 26, 6), (minute_angle, 40, 3)):
            line(
                draw,
                [
                    centre,
                    centre,
                    centre + length * math.sin(angle),
                    centre - length * math.cos(angle),
                ],
                INK,
                width,
            )
        draw.ellipse(s(centre - 4, centre - 4, centre + 4, centre + 4), fill=INK)
        save(image, name, colours=16)

    return make


def book_place(place: str) -> Callable[[str], None]:
    """A desk and a chair side by side, with a blue book on or under one of them."""

    def make(name: str) -> None:
        image, draw = option_canvas()
        floor = 108
        draw.rectangle(s(0, floor, OPT_W, OPT_H), fill=(225, 215, 200))
        table(draw, 14, 100, 52, floor)
        chair(draw, 120, floor, facing_right=False)
        book = {
            "on_desk": (40, 40),
            "under_desk": (44, 96),
            "under_chair": (126, 96),
            "on_chair": (126, 56),
        }[place]
        bx, by = book
        draw.rectangle(s(bx, by, bx + 30, by + 12), fill=(50, 100, 210), outline=INK)
        draw.rectangle(s(bx + 2, by + 9, bx + 28, by + 12), fill=WHITE)
        frame(draw, OPT_W, OPT_H)
        save(image, name, colours=24)

    return make


def meal(ramen: int, gyoza: int, beer: bool = False) -> Callable[[str], None]:
    """Bowls of ramen and plates of gyoza (and a glass of beer) seen from the side."""

    def make(name: str) -> None:
        image, draw = option_canvas()
        draw.rectangle(s(0, 92, OPT_W, OPT_H), fill=(205, 170, 120))  # counter
        x = 8
        for _ in range(ramen):
            draw.chord(s(x, 52, x + 42, 100), 0, 180, fill=(200, 60, 50), outline=INK)
            draw.rectangle(s(x + 2, 72, x + 40, 76), fill=(245, 220, 140))  # noodles
            line(draw, [x + 26, 76, x + 38, 48], DARK_WOOD, 2)
            x += 48
        y = 20
        for _ in range(gyoza):
            draw.ellipse(s(x - 2, y + 26, x + 44, y + 38), fill=WHITE, outline=INK)  # plate
            for gx in (x + 2, x + 14, x + 26):
                draw.chord(
                    s(gx, y + 16, gx + 16, y + 36), 180, 360, fill=(235, 200, 140), outline=INK
                )
            y += 38
        if beer:
            bx = OPT_W - 28
            draw.rectangle(s(bx, 48, bx + 22, 92), fill=(240, 180, 40), outline=INK)
            draw.rectangle(s(bx, 42, bx + 22, 54), fill=WHITE, outline=INK)
        frame(draw, OPT_W, OPT_H)
        save(image, name, colours=32)

    return make


PICTURES: dict[str, Callable[[str], None]] = {
    # n5-l-task-02: what the student takes to the test (key: pencil and eraser)
    "n5l_task02_a.png": school_things("pencil", "dictionary"),
    "n5l_task02_b.png": school_things("pen", "eraser"),
    "n5l_task02_c.png": school_things("dictionary", "eraser"),
    "n5l_task02_d.png": school_things("pencil", "eraser"),
    # n5-l-task-07: the time she comes (key: 8:30)
    "n5l_task07_a.png": clock(9, 0),
    "n5l_task07_b.png": clock(8, 0),
    "n5l_task07_c.png": clock(9, 30),
    "n5l_task07_d.png": clock(8, 30),
    # n5-l-point-05: where the book is (key: under the chair)
    "n5l_point05_a.png": book_place("on_desk"),
    "n5l_point05_b.png": book_place("under_desk"),
    "n5l_point05_c.png": book_place("under_chair"),
    "n5l_point05_d.png": book_place("on_chair"),
    # n5-l-utt-01..07: the scenes (the arrow marks the speaker)
    "n5l_utt01.png": scene_itadakimasu,
    "n5l_utt02.png": scene_ittekimasu,
    "n5l_utt03.png": scene_pen,
    "n5l_utt04.png": scene_tea,
    "n5l_utt05.png": scene_bag,
    "n5l_utt06.png": scene_goodbye,
    "n5l_utt07.png": scene_window,
    # jft-lc-13: the order (key: two ramen and one gyoza)
    "jftl_13_a.png": meal(2, 1),
    "jftl_13_b.png": meal(1, 2),
    "jftl_13_c.png": meal(2, 2),
    "jftl_13_d.png": meal(2, 1, beer=True),
}


# ======================================================================================


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="make only these files")
    parser.add_argument("--check", action="store_true", help="print clip lengths, write nothing")
    arguments = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is not installed (apt-get install espeak-ng)")
    if not Path(FONT_PATH).is_file():
        sys.exit(f"font not found: {FONT_PATH} (apt-get install fonts-noto-cjk)")
    wanted = set(arguments.only or [*SPEECH, *PICTURES])
    unknown = wanted - set(SPEECH) - set(PICTURES)
    if unknown:
        sys.exit(f"unknown file names: {', '.join(sorted(unknown))}")
    MEDIA_DIR.mkdir(exist_ok=True)
    too_long = []
    with tempfile.TemporaryDirectory() as directory:
        for name, script in SPEECH.items():
            if name not in wanted:
                continue
            clip = render(script, Path(directory))
            print(f"{name:28} {len(clip) / 1000:5.1f} s")
            if len(clip) > MAX_CLIP_MS:
                too_long.append(name)
            elif not arguments.check:
                write_mp3(clip, MEDIA_DIR / name)
    if too_long:
        sys.exit(f"longer than {MAX_CLIP_MS / 1000:g} s: {', '.join(too_long)}")
    if arguments.check:
        return
    for name, draw_picture in PICTURES.items():
        if name in wanted:
            draw_picture(name)
    total = 0
    for name in [*SPEECH, *PICTURES]:
        path = MEDIA_DIR / name
        if name in wanted:
            total += path.stat().st_size
    print(f"{len(wanted)} files, {total} bytes")


if __name__ == "__main__":
    main()
