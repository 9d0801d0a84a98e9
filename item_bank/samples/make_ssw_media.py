"""Draw the pictures of ``ssw_sectors.yaml`` (SSW sector skills practice items).

The generated files in ``item_bank/samples/media/`` are committed; this script exists so
that anyone can check how they were made and make them again. Run it from anywhere:

    /work/venv/bin/python item_bank/samples/make_ssw_media.py      # or: python make_ssw_media.py

Needs only Pillow (a dependency of the project). The pictures hold no text at all, so no
font is needed, and nothing in them names the answer: each shows a situation, and the
item asks what the worker should do.

Pictures are drawn at three times their size and scaled down (smooth edges), then saved
as small palette PNGs. Nothing random is used, so the same Pillow version gives the same
files. Only the files named in ``PICTURES`` are written (all prefixed ``ssw_``); nothing
else in the media folder is touched.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

MEDIA_DIR = Path(__file__).resolve().parent / "media"
SCALE = 3  # pictures are drawn this many times larger, then reduced
WIDTH, HEIGHT = 480, 300

INK = (40, 40, 40)
WHITE = (255, 255, 255)
WALL = (246, 240, 226)
FLOOR = (205, 205, 200)
FLOOR_LINE = (150, 140, 120)
SKIN = (245, 215, 185)
GREY_HAIR = (200, 200, 200)
DARK_HAIR = (60, 45, 35)
RESIDENT = (120, 110, 170)  # the resident's cardigan
RESIDENT_LEGS = (95, 95, 110)
STAFF = (70, 150, 140)  # the care worker's uniform
STAFF_LEGS = (60, 70, 90)
METAL = (90, 95, 105)
SHOE = (60, 50, 45)


def canvas(colour=WALL) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (WIDTH * SCALE, HEIGHT * SCALE), colour)
    return image, ImageDraw.Draw(image)


def s(*values: float) -> list[float]:
    """Scale picture coordinates to the drawing canvas."""
    return [v * SCALE for v in values]


def line(draw: ImageDraw.ImageDraw, points: tuple[float, ...], colour, width: float) -> None:
    """A thick line with round joints and ends (limbs, frames)."""
    draw.line(s(*points), fill=colour, width=round(width * SCALE), joint="curve")
    radius = width / 2
    for x, y in (points[:2], points[-2:]):
        draw.ellipse(s(x - radius, y - radius, x + radius, y + radius), fill=colour)


def head(draw: ImageDraw.ImageDraw, x: float, y: float, hair, facing: int = 1) -> None:
    """A round head with hair on top and a small nose showing which way it faces."""
    r = 17
    draw.ellipse(s(x - r, y - r, x + r, y + r), fill=SKIN, outline=INK, width=2 * SCALE)
    draw.chord(s(x - r, y - r - 1, x + r, y + r - 11), 180, 360, fill=hair)  # hair
    draw.arc(s(x - r, y - r, x + r, y + r), 180, 360, fill=INK, width=2 * SCALE)
    draw.ellipse(s(x + facing * 8 - 2, y - 4, x + facing * 8 + 2, y), fill=INK)  # eye
    draw.line(s(x + facing * r, y + 1, x + facing * (r + 3), y + 5), fill=INK, width=2 * SCALE)


def room(draw: ImageDraw.ImageDraw, floor_top: float = 200) -> None:
    """Wall, floor in perspective, and a handrail: a care-home room or corridor."""
    draw.rectangle(s(0, floor_top, WIDTH, HEIGHT), fill=FLOOR)
    for x in range(-200, WIDTH, 60):
        draw.line(s(x + 100, floor_top, x, HEIGHT), fill=(185, 185, 180), width=SCALE)
    draw.line(s(0, floor_top, WIDTH, floor_top), fill=FLOOR_LINE, width=3 * SCALE)


def save(image: Image.Image, name: str, colours: int = 64) -> None:
    """Reduce to the final size and save as a small palette PNG (deterministic)."""
    small = image.resize((image.width // SCALE, image.height // SCALE), Image.Resampling.LANCZOS)
    palette = small.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=0)
    palette.save(MEDIA_DIR / name, format="PNG", optimize=True)


# ---- nursing care ---------------------------------------------------------------------


def wheel(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, spokes: int) -> None:
    draw.ellipse(s(cx - r, cy - r, cx + r, cy + r), outline=(50, 50, 55), width=6 * SCALE)
    if spokes:
        inner = r - 7
        draw.ellipse(
            s(cx - inner, cy - inner, cx + inner, cy + inner), outline=METAL, width=2 * SCALE
        )
        for k in range(spokes):
            a = math.radians(k * 360 / spokes + 10)
            draw.line(
                s(cx, cy, cx + (r - 4) * math.cos(a), cy + (r - 4) * math.sin(a)),
                fill=(150, 150, 155),
                width=SCALE,
            )
    draw.ellipse(s(cx - 4, cy - 4, cx + 4, cy + 4), fill=METAL)


def wheelchair_feet(name: str) -> None:
    """A care worker pushes a wheelchair to the right along a corridor; the resident's
    feet are not on the footplates but drag along the floor in front of them."""
    image, draw = canvas()
    room(draw)
    draw.rectangle(s(0, 120, WIDTH, 126), fill=(170, 130, 90))  # handrail on the wall
    for x in (60, 240, 420):
        draw.rectangle(s(x, 126, x + 6, 138), fill=(150, 110, 70))
    ground = 285
    # care worker behind the chair (drawn first: the chair is in front)
    cx = 128
    line(draw, (cx, 170, cx - 14, ground - 4), STAFF_LEGS, 11)  # back leg
    line(draw, (cx, 170, cx + 16, ground - 4), STAFF_LEGS, 11)  # front leg
    line(draw, (cx - 24, ground, cx - 8, ground), SHOE, 6)
    line(draw, (cx + 12, ground, cx + 28, ground), SHOE, 6)
    line(draw, (cx + 2, 100, cx, 175), STAFF, 20)  # trunk
    head(draw, cx + 6, 80, DARK_HAIR)
    line(draw, (cx + 4, 108, cx + 30, 140, cx + 52, 124), STAFF, 8)  # arm to the handle
    # wheelchair, facing right
    rear_x, rear_y, rear_r = 212, 240, 45
    line(draw, (186, 122, 198, 122), (50, 50, 55), 7)  # push handle grip
    line(draw, (196, 122, 204, 196), METAL, 5)  # back post
    draw.polygon(s(198, 130, 212, 130, 214, 192, 204, 192), fill=(70, 80, 110))  # backrest
    line(draw, (204, 196, 300, 196), METAL, 5)  # seat rail
    line(draw, (204, 226, 318, 226), METAL, 4)  # lower rail
    line(draw, (300, 196, 318, 262), METAL, 4)  # front post and leg rest
    line(draw, (318, 226, 322, 268), METAL, 4)  # caster fork
    line(draw, (308, 262, 338, 262), (50, 50, 55), 5)  # empty footplate
    wheel(draw, 322, 275, 10, 0)  # caster
    # the resident, sitting; the legs hang past the footplate to the floor
    hip_x, hip_y = 226, 184
    line(draw, (hip_x, hip_y, 300, 180), RESIDENT_LEGS, 15)  # thigh
    line(draw, (300, 180, 366, 276), RESIDENT_LEGS, 12)  # shin, past the footplate
    line(draw, (360, 281, 390, 281), SHOE, 8)  # foot on the floor
    for k, x in enumerate((330, 342, 354)):  # scuff marks behind the dragging foot
        draw.line(s(x - 8, 286 + k % 2, x + 2, 286 + k % 2), fill=(120, 120, 118), width=2 * SCALE)
    line(draw, (hip_x, hip_y, 232, 122), RESIDENT, 22)  # trunk
    line(draw, (236, 132, 262, 166, 284, 170), RESIDENT, 8)  # arm on the lap
    head(draw, 240, 100, GREY_HAIR)
    wheel(draw, rear_x, rear_y, rear_r, 12)  # big wheel in front of everything
    # movement lines behind the worker
    for y in (150, 170, 190):
        draw.line(s(74, y, 98, y), fill=(150, 150, 150), width=3 * SCALE)
    save(image, name)


def care_bed(
    draw: ImageDraw.ImageDraw, left: float, right: float, top: float, ground: float
) -> None:
    """A care bed with a scissor lift under it; ``top`` is the mattress surface."""
    draw.rectangle(s(left, top, right, top + 16), fill=(225, 235, 245), outline=INK, width=SCALE)
    draw.rectangle(s(left - 4, top + 16, right + 4, top + 28), fill=(160, 130, 95))
    draw.rectangle(s(left - 10, top - 50, left, ground), fill=(160, 130, 95))  # headboard
    draw.rectangle(s(left + 30, ground - 16, right - 30, ground - 8), fill=METAL)  # base
    line(draw, (left + 50, top + 28, right - 50, ground - 16), METAL, 5)  # scissor lift
    line(draw, (right - 50, top + 28, left + 50, ground - 16), METAL, 5)
    for x in (left + 36, right - 36):
        wheel(draw, x, ground - 5, 5, 0)


def bed_too_high(name: str) -> None:
    """A resident sits on the edge of a high care bed, about to stand up; the feet hang
    in the air well above the floor. A care worker stands in front of her."""
    image, draw = canvas()
    room(draw)
    draw.rectangle(
        s(380, 30, 460, 110), fill=(200, 225, 240), outline=(150, 120, 80), width=3 * SCALE
    )
    draw.line(s(420, 30, 420, 110), fill=(150, 120, 80), width=2 * SCALE)  # window
    ground = 285
    top = 148
    care_bed(draw, 40, 300, top, ground)
    draw.rectangle(s(50, top - 14, 110, top), fill=WHITE, outline=INK, width=SCALE)  # pillow
    # resident sitting on the edge, facing right
    hip_x, hip_y = 262, top - 8
    line(draw, (hip_x, hip_y, 318, hip_y - 2), RESIDENT_LEGS, 15)  # thigh
    line(draw, (318, hip_y - 2, 322, 214), RESIDENT_LEGS, 12)  # shin hanging down
    line(draw, (318, 220, 342, 220), SHOE, 8)  # foot in the air
    line(draw, (hip_x, hip_y, 258, 82), RESIDENT, 22)  # trunk
    line(draw, (262, 92, 276, 122, 298, 134), RESIDENT, 8)  # hand on the thigh
    head(draw, 266, 60, GREY_HAIR)
    # care worker in front, facing left, hands held out
    cx = 402
    line(draw, (cx, 185, cx - 12, ground - 4), STAFF_LEGS, 11)
    line(draw, (cx, 185, cx + 12, ground - 4), STAFF_LEGS, 11)
    line(draw, (cx - 28, ground, cx - 12, ground), SHOE, 6)
    line(draw, (cx - 6, ground, cx + 10, ground), SHOE, 6)
    line(draw, (cx - 2, 112, cx, 190), STAFF, 20)
    head(draw, cx - 6, 92, DARK_HAIR, facing=-1)
    line(draw, (cx - 6, 122, cx - 30, 150, cx - 52, 146), STAFF, 8)  # arm held out
    save(image, name)


def meal_lying_flat(name: str) -> None:
    """A resident lies flat on her back in bed; a meal is on the over-bed table and a
    standing care worker holds a spoon to her mouth."""
    image, draw = canvas()
    room(draw, floor_top=210)
    ground = 288
    top = 170
    # care worker behind the bed, at the head end, facing left
    cx = 176
    line(draw, (cx + 2, 104, cx, 176), STAFF, 20)
    head(draw, cx - 4, 82, DARK_HAIR, facing=-1)
    # bed, flat, with the resident on her back
    care_bed(draw, 40, 360, top, ground)
    draw.ellipse(s(46, top - 20, 124, top + 4), fill=WHITE, outline=INK, width=SCALE)  # pillow
    head(draw, 84, top - 20, GREY_HAIR, facing=1)
    draw.rounded_rectangle(
        s(102, top - 26, 350, top + 2),
        radius=12 * SCALE,
        fill=(170, 190, 220),
        outline=INK,
        width=SCALE,
    )  # blanket over the body
    # the worker's arm reaching down with a spoon to the mouth
    line(draw, (cx - 4, 114, cx - 30, 150, 118, 150), STAFF, 8)
    line(draw, (118, 150, 100, 146), METAL, 3)  # spoon handle
    draw.ellipse(s(92, 142, 104, 150), fill=METAL)  # spoon bowl
    # over-bed table across the bed with a meal on it
    draw.rectangle(s(220, 112, 372, 120), fill=(180, 150, 110), outline=INK, width=SCALE)
    line(draw, (364, 120, 364, ground - 6), METAL, 5)
    line(draw, (340, ground - 4, 388, ground - 4), METAL, 5)
    draw.chord(s(236, 88, 276, 124), 0, 180, fill=WHITE, outline=INK, width=SCALE)  # rice bowl
    draw.ellipse(s(240, 98, 272, 110), fill=(250, 250, 245))
    draw.chord(s(286, 92, 322, 124), 0, 180, fill=(150, 60, 40), outline=INK, width=SCALE)  # soup
    draw.rectangle(s(334, 90, 352, 112), fill=(200, 230, 245), outline=INK, width=SCALE)  # cup
    save(image, name)


# ---- food service ---------------------------------------------------------------------


def fridge_raw_meat(name: str) -> None:
    """An open kitchen refrigerator: raw meat on an open tray on the top shelf drips
    onto a salad and a dessert on the shelf below; the bottom shelf is nearly empty."""
    image, draw = canvas((235, 238, 240))
    for x in range(0, WIDTH, 40):  # wall tiles
        draw.line(s(x, 0, x, HEIGHT), fill=(215, 220, 225), width=SCALE)
    for y in range(0, HEIGHT, 40):
        draw.line(s(0, y, WIDTH, y), fill=(215, 220, 225), width=SCALE)
    left, right, top, bottom = 110, 350, 14, 294
    draw.rectangle(s(left, top, right, bottom), fill=(225, 228, 232), outline=INK, width=2 * SCALE)
    draw.rectangle(s(left + 12, top + 12, right - 12, bottom - 12), fill=(244, 250, 252))
    draw.polygon(
        s(right, top, 440, top + 30, 440, bottom - 20, right, bottom),
        fill=(215, 218, 222),
        outline=INK,
    )
    for y in (70, 130, 190):  # door pockets
        draw.rectangle(
            s(364, y, 428, y + 26), fill=(235, 238, 240), outline=(160, 160, 165), width=SCALE
        )
    shelves = (104, 184)
    for y in shelves:  # wire shelves: liquid can fall through them
        draw.line(s(left + 12, y, right - 12, y), fill=(160, 165, 170), width=3 * SCALE)
        for x in range(left + 16, right - 12, 10):
            draw.line(s(x, y - 2, x, y + 2), fill=(190, 195, 200), width=SCALE)
    # top shelf: raw meat on an open tray
    draw.polygon(s(150, 86, 276, 86, 270, 102, 156, 102), fill=(200, 205, 210), outline=INK)
    raw, fat = (200, 60, 75), (250, 235, 220)
    for x0, y0 in ((158, 70), (198, 64), (236, 70)):  # slices of raw meat with fat
        slab = (
            x0,
            y0 + 8,
            x0 + 10,
            y0,
            x0 + 34,
            y0 + 2,
            x0 + 42,
            y0 + 12,
            x0 + 36,
            y0 + 22,
            x0 + 8,
            y0 + 22,
        )
        draw.polygon(s(*slab), fill=raw, outline=fat, width=3 * SCALE)
        draw.line(s(x0 + 10, y0 + 9, x0 + 22, y0 + 13, x0 + 32, y0 + 9), fill=fat, width=2 * SCALE)
        draw.line(s(x0 + 14, y0 + 17, x0 + 26, y0 + 16), fill=fat, width=SCALE)
    # drops of meat juice falling from the tray onto the food below
    drip = (190, 40, 50)
    for x, y in ((206, 112), (210, 128), (214, 144), (246, 116), (250, 134)):
        draw.ellipse(s(x - 3, y - 2, x + 3, y + 6), fill=drip)
        draw.polygon(s(x - 3, y + 1, x, y - 7, x + 3, y + 1), fill=drip)
    # middle shelf: an uncovered salad and a dessert
    draw.chord(s(180, 142, 280, 190), 0, 180, fill=WHITE, outline=INK, width=SCALE)
    for x, y in ((194, 158), (212, 152), (232, 150), (252, 154), (266, 160)):
        draw.ellipse(s(x - 12, y - 8, x + 12, y + 8), fill=(110, 180, 80))
    for x, y in ((220, 160), (246, 162)):
        draw.ellipse(s(x - 6, y - 6, x + 6, y + 6), fill=(230, 60, 50))
    for x, y in ((208, 156), (240, 158), (250, 150)):  # juice on the salad
        draw.ellipse(s(x - 3, y - 2, x + 3, y + 2), fill=drip)
    draw.rectangle(s(296, 150, 330, 182), fill=(250, 240, 215), outline=INK, width=SCALE)  # dessert
    draw.rectangle(s(296, 150, 330, 158), fill=(240, 200, 210))
    # bottom shelf: two empty drawers
    for x0 in (130, 236):
        draw.rectangle(
            s(x0, 214, x0 + 96, 276), fill=(225, 235, 240), outline=(150, 155, 160), width=SCALE
        )
        draw.rectangle(s(x0 + 36, 220, x0 + 60, 226), fill=(150, 155, 160))
    save(image, name)


PICTURES: dict[str, Callable[[str], None]] = {
    "ssw_nc_wheelchair_feet.png": wheelchair_feet,
    "ssw_nc_bed_too_high.png": bed_too_high,
    "ssw_nc_meal_lying_flat.png": meal_lying_flat,
    "ssw_fs_fridge_raw_meat.png": fridge_raw_meat,
}


def main() -> None:
    MEDIA_DIR.mkdir(exist_ok=True)
    for name, draw_picture in PICTURES.items():
        draw_picture(name)
        path = MEDIA_DIR / name
        print(f"{path.relative_to(MEDIA_DIR.parent)}  {path.stat().st_size:>7} bytes")


if __name__ == "__main__":
    main()
