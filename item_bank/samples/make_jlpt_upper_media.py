"""Generate the recordings of ``jlpt_n4_n1.yaml`` (JLPT N4-N1 style sample items).

The listening items of ``jlpt_n4_n1.yaml`` (refs ``n4-l-...`` to ``n1-l-...``) use only
the files this script writes, ``media/jlptu_*.mp3``. The files are committed; the script
exists so that anyone can check how they were made, and make them again after editing a
script below. Run it from anywhere (it takes a few seconds):

    /work/venv/bin/python item_bank/samples/make_jlpt_upper_media.py

Options: ``--only NAME [NAME ...]`` remakes only the named files (e.g.
``jlptu_n3_task.mp3``); ``--check`` writes nothing and only prints each clip's length.

Needs:

* ``espeak-ng`` on PATH with its Japanese voice (``espeak-ng -v ja``) and the standard
  voice variants (``ja+f2``, ``ja+m3``);
* pydub and imageio-ffmpeg (dependencies of the project): the MP3 encoder is the ffmpeg
  binary shipped by imageio-ffmpeg.

Speech is synthesised from kana only (espeak-ng reads kana best; the particles は and へ
are written わ and え so that they are pronounced as particles). Each line is trimmed,
brought to the same loudness and joined with fixed pauses; the clip is written as mono
22.05 kHz constant-bitrate 48 kbit/s MP3 without metadata (``-bitexact``), the same
format as ``make_listening_media.py``, and must be shorter than ``MAX_CLIP_MS``. Speakers
differ by espeak-ng voice variant, pitch and speed (a neutral narrator, a man, a woman);
the higher the level, the faster everyone speaks (``LEVEL_FASTER``).

Formats, after the public description of the JLPT listening question types:

* task (課題理解) and point (ポイント理解): the narrator gives the situation and the
  question, then the dialogue, then the question again;
* summary (概要理解, N3-N1): the narrator gives the situation only, then one speaker
  talks, then the narrator asks the question;
* quick response (即時応答, N4): one line only; the four replies are printed.

Nothing random is used, so the same tool versions give the same files. Only the files
named below are written; nothing else in ``media/`` is touched.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

with warnings.catch_warnings():
    # pydub warns when ffmpeg is not on PATH; it is only used here on PCM in memory.
    warnings.simplefilter("ignore", RuntimeWarning)
    from pydub import AudioSegment
    from pydub.silence import detect_leading_silence

MEDIA_DIR = Path(__file__).resolve().parent / "media"
SAMPLE_RATE = 22_050
MP3_BITRATE = "48k"
MAX_CLIP_MS = 20_000

PAUSE_MS = 250  # between the lines of a dialogue
SECTION_MS = 500  # after the opening narration and before the question
EDGE_MS = 200  # silence at the start and the end
SILENCE_DBFS = -50.0  # quieter than this at the ends of a line is trimmed
LINE_DBFS = -20.0  # every line is brought to this loudness before joining


@dataclass(frozen=True)
class Voice:
    variant: str
    speed: int  # words per minute at N4; LEVEL_FASTER is added for the higher levels
    pitch: int


NARRATOR = Voice("ja", 190, 45)
MAN = Voice("ja+m3", 185, 30)
WOMAN = Voice("ja+f2", 190, 65)
N, M, F = NARRATOR, MAN, WOMAN

LEVEL_FASTER = {"n4": 0, "n3": 8, "n2": 14, "n1": 20}

Line = tuple[Voice, str]


@dataclass(frozen=True)
class Script:
    level: str
    lines: tuple[Line, ...]
    intro: str = ""  # narrator: the situation (and, for task/point, the question)
    outro: str = ""  # narrator: the question (again)


def dialogue(level: str, situation: str, question: str, *lines: Line) -> Script:
    """Task / point: the question is asked before and after the dialogue."""
    return Script(level, tuple(lines), intro=situation + question, outro=question)


def summary(level: str, situation: str, question: str, *lines: Line) -> Script:
    """Summary: the situation first, the question only after the talk."""
    return Script(level, tuple(lines), intro=situation, outro=question)


def one_line(level: str, line: Line) -> Script:
    """Quick response: the line alone (the replies are printed)."""
    return Script(level, (line,))


SPEECH: dict[str, Script] = {
    # ---- N4 ----------------------------------------------------------------------------
    # n4-l-01-task (key B: show the handout to the section manager first)
    "jlptu_n4_task.mp3": dialogue(
        "n4",
        "かいしゃで おんなのひとと おとこのひとが はなしています。",
        "おとこのひとわ このあと まず なにを しますか。",
        (F, "あしたの かいぎの しりょう、もう コピーしましたか。"),
        (M, "いえ、これからです。"),
        (
            F,
            "あ、コピーの まえに ぶちょうに みせて ください。なおす ところが あるかも しれません。",
        ),
        (M, "わかりました。"),
    ),
    # n4-l-02-point (key D: her company is moving to a town far away)
    "jlptu_n4_point.mp3": dialogue(
        "n4",
        "おとこのひとと おんなのひとが はなしています。",
        "おんなのひとわ どうして ひっこしますか。",
        (M, "ひっこすんですか。いまの アパート、えきから ちかくて いいって いって いましたよね。"),
        (F, "ええ。でも、らいげつから かいしゃが とおくの まちに うつるんです。"),
        (M, "そうですか。"),
    ),
    # n4-l-03-qr (key A: では、おさきに しつれいします)
    "jlptu_n4_qr.mp3": one_line("n4", (M, "きょうわ もう かえっても いいですよ。")),
    # ---- N3 ----------------------------------------------------------------------------
    # n3-l-01-task (key B: put the book in the return box)
    "jlptu_n3_task.mp3": dialogue(
        "n3",
        "だいがくで おとこのがくせいと おんなのがくせいが はなしています。",
        "おとこのがくせいわ このあと なにを しますか。",
        (M, "あれ、としょかん、もう しまってる。"),
        (F, "どようびわ ごじまでだよ。ほんの へんきゃく？"),
        (M, "うん、きょうまでなんだ。"),
        (F, "それなら、いりぐちの よこの へんきゃくボックスに いれれば いいよ。"),
        (M, "あ、そうか。"),
    ),
    # n3-l-02-point (key A: the shop said it still works with new tyres)
    "jlptu_n3_point.mp3": dialogue(
        "n3",
        "おとこのひとと おんなのひとが はなしています。",
        "おんなのひとわ どうして あたらしい じてんしゃを かわないのですか。",
        (M, "じてんしゃ、かいかえるって いって なかった？"),
        (F, "うん。でも、みせで みて もらったら、タイヤを かえれば まだ つかえるって いわれて。"),
        (M, "へえ、よかったね。"),
    ),
    # n3-l-03-summary (key C: the good of getting up early to do what you like)
    "jlptu_n3_summary.mp3": summary(
        "n3",
        "ラジオで おんなのひとが はなしています。",
        "おんなのひとわ なにに ついて はなしていますか。",
        (
            F,
            "しごとの まえに はやおきして、すきな ことを する ひとが ふえて います。"
            "ジョギングでも べんきょうでも いいんです。"
            "あさわ でんわも メールも こないので、みじかい じかんでも しゅうちゅう できるんです。"
            "みなさんも、まずわ いつもより じゅっぷん はやく おきて みませんか。",
        ),
    ),
    # ---- N2 ----------------------------------------------------------------------------
    # n2-l-01-task (key D: correct the invitation and send it)
    "jlptu_n2_task.mp3": dialogue(
        "n2",
        "かいしゃで おんなのひとと おとこのひとが はなしています。",
        "おとこのひとわ まず なにを しますか。",
        (F, "せつめいかいの あんないじょう、もう おくった？"),
        (M, "いえ、さきに さんかしゃの リストを つくろうかと。"),
        (
            F,
            "リストわ もうしこみが そろってからで いいよ。"
            "それより、かいじょうが かわったから、あんないじょうを なおして すぐ おくって。",
        ),
    ),
    # n2-l-02-point (key A: the race falls on his sister's wedding day)
    "jlptu_n2_point.mp3": dialogue(
        "n2",
        "おんなのひとと おとこのひとが はなしています。",
        "おとこのひとわ どうして マラソンたいかいに でない ことに しましたか。",
        (F, "こんどの マラソンたいかい、でるんでしょう？"),
        (
            M,
            "それが、やめたんだ。あしの けがわ もう なおったんだけど、"
            "ちょうど その ひが あねの けっこんしきなんだよ。",
        ),
        (F, "そう、ざんねんだね。"),
    ),
    # n2-l-03-summary (key C: think about your strength and time before a side job)
    "jlptu_n2_summary.mp3": summary(
        "n2",
        "テレビで せんもんかが はなしています。",
        "せんもんかの いいたい ことわ なんですか。",
        (
            M,
            "さいきん、ふくぎょうを する ひとが ふえて います。"
            "ただ、ほんぎょうの つかれが とれないまま つづけると、"
            "けっきょく どちらの しごとの しつも さがって しまいます。"
            "はじめる まえに、じぶんの たいりょくと じかんを "
            "れいせいに みつめる ことが たいせつです。",
        ),
    ),
    # ---- N1 ----------------------------------------------------------------------------
    # n1-l-01-task (key C: book the venue first)
    "jlptu_n1_task.mp3": dialogue(
        "n1",
        "かいしゃで おとこのひとと おんなのひとが はなしています。",
        "おんなのひとわ このあと まず なにを しますか。",
        (M, "セミナーの こうし、まだ きまって ないんだって？"),
        (F, "ええ、こうほの せんせいの おへんじが まだで。さいそく しようかと。"),
        (
            M,
            "いや、それより かいじょうの よやくが あさってまでだから、さきに そっちを おさえて。"
            "こうしわ そのあとで いい。",
        ),
    ),
    # n1-l-02-point (key D: one month is too short to prepare)
    "jlptu_n1_point.mp3": dialogue(
        "n1",
        "おんなのひとと おとこのひとが はなしています。",
        "おとこのひとわ あたらしい きかくの なにが もんだいだと いっていますか。",
        (F, "こんどの きかく、どう おもう？ わかい ひとにわ うけそうだけど。"),
        (
            M,
            "うん、ないようわ おもしろいし、よさんも なんとか なると おもう。"
            "ただ、じゅんびが ひとつきじゃ、とても まにあわないよ。",
        ),
    ),
    # n1-l-03-summary (key A: understanding is what makes memory last)
    "jlptu_n1_summary.mp3": summary(
        "n1",
        "だいがくの こうぎで せんせいが はなしています。",
        "せんせいわ なにに ついて はなしていますか。",
        (
            M,
            "きおくりょくを たかめる ほうほうを よく きかれます。"
            "わたしわ、おぼえる まえに まず りかい して くださいと こたえます。"
            "いみが わかって いれば、ほかの ちしきと むすびついて、わすれにくく なるんです。"
            "まるあんきわ、いちじてきにわ やくに たっても、ながくわ もちません。",
        ),
    ),
}


def speak(voice: Voice, text: str, level: str, workdir: Path) -> AudioSegment:
    """Synthesise one line with espeak-ng: mono 16-bit, trimmed, at ``LINE_DBFS``."""
    target = workdir / "line.wav"
    speed = str(voice.speed + LEVEL_FASTER[level])
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
        return speak(voice, text, script.level, workdir)

    clip = silence(EDGE_MS)
    if script.intro:
        clip += say(NARRATOR, script.intro) + silence(SECTION_MS)
    for index, (voice, text) in enumerate(script.lines):
        clip += (silence(PAUSE_MS) if index else AudioSegment.empty()) + say(voice, text)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="make only these files")
    parser.add_argument("--check", action="store_true", help="print clip lengths, write nothing")
    arguments = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is not installed (apt-get install espeak-ng)")
    wanted = set(arguments.only or SPEECH)
    unknown = wanted - set(SPEECH)
    if unknown:
        sys.exit(f"unknown file names: {', '.join(sorted(unknown))}")
    MEDIA_DIR.mkdir(exist_ok=True)
    too_long = []
    total = 0
    with tempfile.TemporaryDirectory() as directory:
        for name, script in SPEECH.items():
            if name not in wanted:
                continue
            clip = render(script, Path(directory))
            print(f"{name:24} {len(clip) / 1000:5.1f} s")
            if len(clip) > MAX_CLIP_MS:
                too_long.append(name)
            elif not arguments.check:
                write_mp3(clip, MEDIA_DIR / name)
                total += (MEDIA_DIR / name).stat().st_size
    if too_long:
        sys.exit(f"longer than {MAX_CLIP_MS / 1000:g} s: {', '.join(too_long)}")
    if not arguments.check:
        print(f"{len(wanted)} files, {total} bytes")


if __name__ == "__main__":
    main()
