"""Defect fixtures: small YOLO datasets whose images and label files probe every rule of
Ultralytics' `verify_image_label`. Images are really encoded by Pillow (plus a few hand-made
byte strings for what Pillow cannot write). Deterministic: the same files every run.

Each dataset is a folder `<root>/<dataset>/` with `data.yaml`, `images/train/` and
`labels/train/`. A fixture is one image and its label file (or none).
"""

import io
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

BOX = "0 0.5 0.5 0.2 0.2"
POLY = "0 0.1 0.1 0.4 0.1 0.4 0.4 0.1 0.4"
OBB = "0 0.1 0.1 0.4 0.1 0.4 0.3 0.1 0.3"


@dataclass
class Dataset:
    name: str
    task: str
    names: list
    kpt_shape: list | None = None
    control_label: str = BOX
    # file name -> (image bytes, label: str | bytes | None)
    fixtures: dict = field(default_factory=dict)

    def add(self, file_name, image, label):
        assert file_name not in self.fixtures, file_name
        self.fixtures[file_name] = (image, label)


# --- images ---------------------------------------------------------------------------------


def encode(fmt, w=64, h=48, mode="RGB", orientation=None, **save):
    """An image of `w` x `h` (as stored) encoded by Pillow, with an EXIF orientation if given."""
    im = Image.new(mode, (w, h))
    if mode in ("RGB", "CMYK"):
        im.putdata([((x * 7) % 256, (y * 11) % 256, 90, 0)[: len(mode)] for y in range(h) for x in range(w)])
    if orientation is not None:
        exif = Image.Exif()
        exif[274] = orientation
        save["exif"] = exif
    buf = io.BytesIO()
    im.save(buf, fmt, **save)
    return buf.getvalue()


def jpeg(w=64, h=48, **kw):
    return encode("JPEG", w, h, quality=90, **kw)


def png(w=64, h=48, **kw):
    return encode("PNG", w, h, **kw)


def pfm(w, h, colour):
    """Portable float map: Pillow reads a grayscale one ("Pf"); a colour one ("PF") it cannot open."""
    channels = 3 if colour else 1
    header = f"{'PF' if colour else 'Pf'}\n{w} {h}\n-1.0\n".encode()
    return header + struct.pack(f"<{w * h * channels}f", *([0.5] * (w * h * channels)))


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_bad_idat_crc():
    b = bytearray(png())
    at = b.find(b"IDAT") - 4
    length = struct.unpack(">I", b[at : at + 4])[0]
    crc_at = at + 8 + length
    b[crc_at] ^= 0xFF
    return bytes(b)


def png_with_bad_ancillary_crc():
    b = png()
    chunk = bytearray(png_chunk(b"tEXt", b"Comment\0hello"))
    chunk[-1] ^= 0xFF
    return b[:33] + bytes(chunk) + b[33:]


def png_with_bad_ihdr_crc():
    b = bytearray(png())
    b[29] ^= 0xFF
    return bytes(b)


def png_without_iend():
    b = png()
    return b[: b.rfind(b"IEND") - 4]


def png_truncated_idat():
    b = png()
    return b[: b.find(b"IDAT") + 20]


def mpo_bytes():
    a, b = Image.new("RGB", (64, 48), (200, 10, 10)), Image.new("RGB", (64, 48), (10, 200, 10))
    buf = io.BytesIO()
    a.save(buf, "MPO", save_all=True, append_images=[b])
    return buf.getvalue()


def webp_animated():
    frames = [Image.new("RGB", (40, 30), (i * 60, 0, 0)) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], duration=100)
    return buf.getvalue()


def jpeg_with_thumbnail():
    """A JPEG whose EXIF block holds a JPEG thumbnail (with its own FF D9)."""
    thumb = jpeg(16, 12)
    exif = Image.Exif()
    exif[274] = 1
    raw = exif.tobytes()  # b"Exif\0\0" + TIFF
    seg = raw + thumb
    app1 = b"\xff\xe1" + struct.pack(">H", len(seg) + 2) + seg
    full = jpeg()
    return full[:2] + app1 + full[2:]


# --- datasets -------------------------------------------------------------------------------


def image_cases(d):
    """Image-level defects, each with one valid box label."""
    lab = BOX + "\n"
    d.add("img_jpeg.jpg", jpeg(), lab)
    d.add("img_png.png", png(), lab)
    d.add("img_png_as_jpg.jpg", png(), lab)
    d.add("img_jpeg_as_png.png", jpeg(), lab)
    d.add("img_upper_ext.JPG", jpeg(), lab)
    d.add("img_bmp.bmp", encode("BMP"), lab)
    d.add("img_webp_lossy.webp", encode("WEBP", quality=80), lab)
    d.add("img_webp_lossless.webp", encode("WEBP", lossless=True), lab)
    d.add("img_tiff.tiff", encode("TIFF"), lab)
    d.add("img_tif_lzw.tif", encode("TIFF", compression="tiff_lzw"), lab)
    d.add("img_jp2.jp2", encode("JPEG2000"), lab)
    d.add("img_avif.avif", encode("AVIF", quality=60), lab)
    d.add("img_gif_as_jpg.jpg", encode("GIF", mode="P"), lab)
    d.add("img_ppm_as_jpg.jpg", encode("PPM"), lab)
    d.add("img_pfm_gray.pfm", pfm(16, 16, colour=False), lab)
    d.add("img_pfm_gray_as_png.png", pfm(16, 16, colour=False), lab)
    d.add("img_pfm_colour_as_png.png", pfm(16, 16, colour=True), lab)
    d.add("img_jpeg_gray.jpg", jpeg(mode="L"), lab)
    d.add("img_jpeg_cmyk.jpg", jpeg(mode="CMYK"), lab)
    d.add("img_png_16bit.png", png(mode="I;16"), lab)
    d.add("img_png_rgba.png", png(mode="RGBA"), lab)
    d.add("img_tiny_9x40.jpg", jpeg(9, 40), lab)
    d.add("img_tiny_40x9.png", png(40, 9), lab)
    d.add("img_exact_10x10.jpg", jpeg(10, 10), lab)
    d.add("img_tiny_1x1.png", png(1, 1), lab)
    for o in (2, 3, 5, 6, 7, 8):
        d.add(f"img_exif{o}_9x40.jpg", jpeg(9, 40, orientation=o), lab)
        d.add(f"img_exif{o}_40x20.jpg", jpeg(40, 20, orientation=o), lab)
    d.add("img_exif6_png_9x40.png", png(9, 40, orientation=6), lab)
    d.add("img_exif6_png.png", png(40, 20, orientation=6), lab)
    d.add("img_exif5_webp.webp", encode("WEBP", 40, 20, orientation=5, quality=80), lab)
    d.add("img_exif6_tiff.tiff", encode("TIFF", 40, 20, orientation=6), lab)
    d.add("img_exif99_jpg.jpg", jpeg(orientation=99), lab)
    full = jpeg(128, 96)
    d.add("img_jpeg_no_eoi_half.jpg", full[: len(full) // 2], lab)
    d.add("img_jpeg_no_eoi_last2.jpg", full[:-2], lab)
    d.add("img_jpeg_trailing_junk.jpg", full + b"\x00junk", lab)
    d.add("img_jpeg_headers_only.jpg", full[: full.find(b"\xff\xda") + 2], lab)
    d.add("img_png_bad_idat_crc.png", png_with_bad_idat_crc(), lab)
    d.add("img_png_bad_text_crc.png", png_with_bad_ancillary_crc(), lab)
    d.add("img_png_bad_ihdr_crc.png", png_with_bad_ihdr_crc(), lab)
    d.add("img_png_no_iend.png", png_without_iend(), lab)
    d.add("img_png_truncated_idat.png", png_truncated_idat(), lab)
    d.add("img_random_bytes.jpg", bytes((i * 37 + 11) % 256 for i in range(2000)), lab)
    d.add("img_empty_file.jpg", b"", lab)
    d.add("img_text_as_png.png", b"this is not an image\n", lab)
    bmp = bytearray(encode("BMP", 40, 20))
    bmp[22:26] = struct.pack("<i", -20)  # top-down BMP
    d.add("img_bmp_top_down.bmp", bytes(bmp), lab)
    d.add("img_webp_truncated.webp", encode("WEBP", quality=80)[:40], lab)
    prog = jpeg(96, 64, progressive=True)
    d.add("img_jpeg_progressive.jpg", prog, lab)
    d.add("img_jpeg_progressive_cut.jpg", prog[: len(prog) * 2 // 3], lab)
    mpo = mpo_bytes()
    d.add("img_mpo.jpg", mpo, lab)
    d.add("img_mpo_cut.jpg", mpo[:-2], lab)
    d.add("img_png_trailing_junk.png", png() + b"junk", lab)
    d.add("img_png_interlaced.png", png(interlace=1), lab)
    d.add("img_tiff_gray16.tiff", encode("TIFF", mode="I;16"), lab)
    d.add("img_webp_animated.webp", webp_animated(), lab)
    d.add("img_ico_as_png.png", encode("ICO", 32, 32), lab)
    d.add("img_gif_as_png.png", encode("GIF", mode="P"), lab)
    d.add("img_jpeg_exif_thumb_cut.jpg", jpeg_with_thumbnail()[:-2], lab)
    d.add("img_tiff_truncated.tiff", encode("TIFF")[:100], lab)


def label_cases(d):
    """Detect label-file defects, each with a valid JPEG."""
    im = jpeg()
    cases = {
        "lb_valid": f"{BOX}\n1 0.3 0.3 0.1 0.1\n",
        "lb_empty": "",
        "lb_whitespace_only": "  \n\t\n",
        "lb_blank_line_between": f"{BOX}\n   \n1 0.3 0.3 0.1 0.1\n",
        "lb_empty_line_between": f"{BOX}\n\n1 0.3 0.3 0.1 0.1\n",
        "lb_crlf": f"{BOX}\r\n1 0.3 0.3 0.1 0.1\r\n",
        "lb_bom": "\ufeff" + BOX + "\n",
        "lb_tabs": "0\t0.5\t0.5\t0.2\t0.2\n",
        "lb_nbsp": "0\u00a00.5 0.5 0.2 0.2\n",
        "lb_no_trailing_newline": BOX,
        "lb_non_numeric": "0 0.5 abc 0.2 0.2\n",
        "lb_nan": "0 0.5 nan 0.2 0.2\n",
        "lb_inf": "0 0.5 inf 0.2 0.2\n",
        "lb_underscore_number": "0 0.5 0.5 0.2 0.2_0\n",
        "lb_hex": "0 0.5 0x1 0.2 0.2\n",
        "lb_plus_and_dot": "+0 .5 0.5 2e-1 0.2\n",
        "lb_4_columns": "0 0.5 0.5 0.2\n",
        "lb_6_columns": "0 0.5 0.5 0.2 0.2 0.9\n",
        "lb_3_columns": "0 0.5 0.5\n",
        "lb_mixed_5_and_4": f"{BOX}\n0 0.5 0.5 0.2\n",
        "lb_class_eq_nc": "3 0.5 0.5 0.2 0.2\n",
        "lb_class_big": "99 0.5 0.5 0.2 0.2\n",
        "lb_class_negative": "-1 0.5 0.5 0.2 0.2\n",
        "lb_class_tiny_negative": "-0.005 0.5 0.5 0.2 0.2\n",
        "lb_class_fraction": "1.5 0.5 0.5 0.2 0.2\n",
        "lb_class_float_int": "1.0 0.5 0.5 0.2 0.2\n",
        "lb_coord_1_005": "0 1.005 0.5 0.2 0.2\n",
        "lb_coord_1_02": "0 1.02 0.5 0.2 0.2\n",
        "lb_width_1_02": "0 0.5 0.5 1.02 0.2\n",
        "lb_x_tiny_negative": "0 -0.005 0.5 0.2 0.2\n",
        "lb_w_tiny_negative": "0 0.5 0.5 -0.005 0.2\n",
        "lb_h_tiny_negative": "0 0.5 0.5 0.2 -0.005\n",
        "lb_x_negative": "0 -0.5 0.5 0.2 0.2\n",
        "lb_zero_area": "0 0.5 0.5 0 0.2\n",
        "lb_box_outside": "0 0.05 0.5 0.2 0.2\n",
        "lb_duplicates": f"{BOX}\n{BOX}\n0 0.50 0.5 0.2 0.200\n1 0.5 0.5 0.2 0.2\n",
        "lb_duplicate_neg_zero": "0 0.5 0.5 0.2 0.2\n-0 0.5 0.5 0.2 0.2\n",
        "lb_f32_duplicates": "0 0.5 0.5 0.2 0.2\n0 0.50000001 0.5 0.2 0.2\n",
        "lb_polygons_in_detect": f"{POLY}\n1 0.5 0.5 0.6 0.5 0.6 0.7\n",
        "lb_mixed_box_polygon": f"{BOX}\n{POLY}\n",
        "lb_odd_polygon": "0 0.1 0.1 0.4 0.1 0.4 0.4 0.1\n",
        "lb_polygon_vertex_over_bbox_ok": "0 0.98 0.5 1.02 0.5 1.0 0.6\n",
        "lb_polygon_vertex_negative_bbox_ok": "0 -0.3 0.2 0.5 0.2 0.5 0.4\n",
        "lb_polygon_bbox_too_wide": "0 -0.5 0.2 0.6 0.2 0.6 0.4\n",
        "lb_polygon_and_class_only": f"{POLY}\n1\n",
        "lb_polygon_6_values": f"{POLY}\n1 0.1 0.2 0.3 0.4 0.5\n",
        "lb_cr_only": f"{BOX}\r1 0.3 0.3 0.1 0.1\r",
        "lb_form_feed_and_vt": f"{BOX}\x0c1 0.3 0.3 0.1 0.1\x0b2 0.2 0.2 0.1 0.1\n",
        "lb_line_separator": f"{BOX}\u20281 0.3 0.3 0.1 0.1\n",
        "lb_unicode_space": "0\u20030.5\u30000.5 0.2 0.2\n",
        "lb_nul_byte": "0 0.5 0.5 0.2 0.2\x00\n",
        "lb_fullwidth_digit": "\uff10 0.5 0.5 0.2 0.2\n",
        "lb_1e400": "0 0.5 0.5 0.2 1e400\n",
        "lb_tiny_exponent": "0 0.5 0.5 0.2 1e-50\n",
        "lb_class_exponent": "2e0 0.5 0.5 0.2 0.2\n",
        "lb_class_almost_3": "2.99999999999 0.5 0.5 0.2 0.2\n",
        "lb_class_neg_zero": "-0 0.5 0.5 0.2 0.2\n",
        "lb_one_point_rows": "0 0.5 0.5\n1 0.2 0.2\n",
        "lb_polygon_with_one_point_row": f"{POLY}\n1 0.2 0.2\n",
        "lb_infinity_word": "0 0.5 0.5 0.2 Infinity\n",
        "lb_neg_nan": "0 0.5 0.5 0.2 -nan\n",
        "lb_many_rows": "".join(f"{i % 3} {0.1 + i * 0.002:.4f} 0.5 0.01 0.01\n" for i in range(300)),
    }
    for name, text in cases.items():
        d.add(f"{name}.jpg", im, text)
    d.add("lb_missing.jpg", im, None)
    d.add("lb_latin1.jpg", im, "0 0.5 0.5 0.2 0.2 # caf\xe9\n".encode("latin-1"))
    d.add("lb_utf16.jpg", im, BOX.encode("utf-16"))


def segment_cases(d):
    im = jpeg()
    cases = {
        "seg_valid": f"{POLY}\n1 0.5 0.5 0.6 0.5 0.6 0.7\n",
        "seg_box_only": f"{BOX}\n",
        "seg_mixed_box_polygon": f"{BOX}\n{POLY}\n",
        "seg_two_point_polygon": f"{POLY}\n1 0.1 0.1 0.3 0.3\n",
        "seg_odd_coords": f"{POLY}\n1 0.1 0.1 0.3 0.3 0.5 0.5 0.7\n",
        "seg_same_bbox_distinct": "0 0.1 0.1 0.5 0.1 0.5 0.5 0.1 0.5\n0 0.1 0.1 0.5 0.5 0.1 0.5 0.3 0.3\n",
        "seg_exact_duplicate": f"{POLY}\n{POLY}\n",
        "seg_duplicate_diff_class": f"{POLY}\n1 0.1 0.1 0.4 0.1 0.4 0.4 0.1 0.4\n",
        "seg_vertex_1_02": "0 0.98 0.5 1.02 0.5 1.0 0.6\n",
        "seg_bbox_out_of_range": "0 0.9 0.5 1.2 0.5 1.1 0.6\n",
        "seg_negative_vertex": "0 -0.3 0.2 0.5 0.2 0.5 0.4\n",
        "seg_class_out_of_range": "5 0.1 0.1 0.4 0.1 0.4 0.4\n",
        "seg_class_fraction": "0.5 0.1 0.1 0.4 0.1 0.4 0.4\n",
        "seg_non_numeric": "0 0.1 0.1 0.4 x 0.4 0.4\n",
        "seg_empty": "",
        "seg_class_only_row": f"{POLY}\n1\n",
        "seg_long_polygon": "0 " + " ".join(f"{0.5 + 0.3 * ((i % 2) - 0.5):.3f} {i / 60:.4f}" for i in range(60)) + "\n",
        "seg_degenerate_all_same": "0 0.5 0.5 0.5 0.5 0.5 0.5\n",
    }
    for name, text in cases.items():
        d.add(f"{name}.jpg", im, text)
    d.add("seg_missing.jpg", im, None)
    d.add("seg_tiny_image.jpg", jpeg(8, 8), POLY + "\n")
    d.add("seg_truncated_jpeg.jpg", jpeg()[:300], POLY + "\n")


def obb_cases(d):
    im = jpeg()
    cases = {
        "obb_valid": f"{OBB}\n1 0.5 0.5 0.7 0.5 0.7 0.7 0.5 0.7\n",
        "obb_11_values": "0 0.1 0.1 0.4 0.1 0.4 0.3 0.1 0.3 0.2 0.2\n",
        "obb_7_values": "0 0.1 0.1 0.4 0.1 0.4 0.3\n",
        "obb_10_values": "0 0.1 0.1 0.4 0.1 0.4 0.3 0.1 0.3 0.2\n",
        "obb_box_only": f"{BOX}\n",
        "obb_mixed_5_and_9": f"{BOX}\n{OBB}\n",
        "obb_mixed_9_and_11": f"{OBB}\n0 0.1 0.1 0.4 0.1 0.4 0.3 0.1 0.3 0.2 0.2\n",
        "obb_corner_1_02": "0 0.98 0.5 1.02 0.5 1.0 0.6 0.98 0.6\n",
        "obb_out_of_range": "0 0.9 0.5 1.3 0.5 1.3 0.6 0.9 0.6\n",
        "obb_negative_corner": "0 -0.3 0.2 0.5 0.2 0.5 0.4 -0.3 0.4\n",
        "obb_class_out_of_range": "7 0.1 0.1 0.4 0.1 0.4 0.3 0.1 0.3\n",
        "obb_duplicates": f"{OBB}\n{OBB}\n",
        "obb_same_bbox_distinct": "0 0.1 0.1 0.4 0.1 0.4 0.3 0.1 0.3\n0 0.1 0.3 0.4 0.3 0.4 0.1 0.1 0.1\n",
        "obb_empty": "",
        "obb_non_numeric": "0 0.1 0.1 0.4 0.1 0.4 q 0.1 0.3\n",
    }
    for name, text in cases.items():
        d.add(f"{name}.jpg", im, text)
    d.add("obb_missing.png", png(), None)


def pose_cases(d, ndim):
    im = jpeg()

    def kp(*points):
        return " ".join(f"{v:g}" for p in points for v in p[:ndim])

    good = kp((0.4, 0.4, 2), (0.5, 0.5, 1), (0.6, 0.6, 0))
    cases = {
        "valid": f"0 0.5 0.5 0.4 0.4 {good}\n",
        "two_rows": f"0 0.5 0.5 0.4 0.4 {good}\n1 0.3 0.3 0.2 0.2 {good}\n",
        "kpt_x_1_02": f"0 0.5 0.5 0.4 0.4 {kp((1.02, 0.4, 2), (0.5, 0.5, 1), (0.6, 0.6, 0))}\n",
        "box_w_1_2": f"0 0.5 0.5 1.2 0.4 {good}\n",
        "box_x_1_5": f"0 1.5 0.5 0.4 0.4 {good}\n",
        "kpt_negative_one": f"0 0.5 0.5 0.4 0.4 {kp((-1, -1, 0), (0.5, 0.5, 1), (0.6, 0.6, 0))}\n",
        "kpt_tiny_negative": f"0 0.5 0.5 0.4 0.4 {kp((-0.005, 0.4, 2), (0.5, 0.5, 1), (0.6, 0.6, 0))}\n",
        "w_tiny_negative": f"0 0.5 0.5 -0.005 0.4 {good}\n",
        "visibility_3": f"0 0.5 0.5 0.4 0.4 {kp((0.4, 0.4, 3), (0.5, 0.5, 1), (0.6, 0.6, 0))}\n",
        "wrong_columns": f"0 0.5 0.5 0.4 0.4 {good} 0.1\n",
        "box_only": f"{BOX}\n",
        "class_out_of_range": f"4 0.5 0.5 0.4 0.4 {good}\n",
        "duplicates": f"0 0.5 0.5 0.4 0.4 {good}\n0 0.5 0.5 0.4 0.4 {good}\n",
        "empty": "",
        "non_numeric": f"0 0.5 0.5 0.4 z {good}\n",
        "kpt_nan": f"0 0.5 0.5 0.4 0.4 {kp((0.4, 0.4, 2), (0.5, 0.5, 1))} nan{' 0' if ndim == 3 else ' 0.6'}\n",
        "box_inf": f"0 0.5 0.5 inf 0.4 {good}\n",
        "polygon_like_row": "0 0.1 0.1 0.4 0.1 0.4 0.4 0.1 0.4\n",
    }
    for name, text in cases.items():
        d.add(f"pose{ndim}_{name}.jpg", im, text)
    d.add(f"pose{ndim}_missing.jpg", im, None)


def detect_with_kpt_shape_cases(d):
    """A detect task whose YAML has `kpt_shape`: the trainer keeps the boxes of pose rows."""
    im = jpeg()
    pose_row = "0 0.5 0.5 0.4 0.4 0.4 0.4 2 0.5 0.5 1"
    cases = {
        "dk_pose_rows": f"{pose_row}\n",
        "dk_box_rows": f"{BOX}\n",
        "dk_mixed_pose_and_box": f"{pose_row}\n{BOX}\n",
        "dk_pose_row_kpt_out_of_range": "0 0.5 0.5 0.4 0.4 1.4 0.4 2 0.5 0.5 1\n",
        "dk_wrong_columns": "0 0.5 0.5 0.4 0.4 0.4 0.4 2 0.5\n",
    }
    for name, text in cases.items():
        d.add(f"{name}.jpg", im, text)


def build():
    detect = Dataset("detect", "detect", ["a", "b", "c"])
    image_cases(detect)
    label_cases(detect)
    segment = Dataset("segment", "segment", ["a", "b"], control_label=POLY)
    segment_cases(segment)
    obb = Dataset("obb", "obb", ["a", "b"], control_label=OBB)
    obb_cases(obb)
    pose3 = Dataset("pose3", "pose", ["p", "q"], kpt_shape=[3, 3], control_label=f"{BOX} 0.5 0.5 2 0.4 0.4 2 0.6 0.6 2")
    pose_cases(pose3, 3)
    pose2 = Dataset("pose2", "pose", ["p", "q"], kpt_shape=[3, 2], control_label=f"{BOX} 0.5 0.5 0.4 0.4 0.6 0.6")
    pose_cases(pose2, 2)
    dk = Dataset("detect_kpt", "detect", ["a", "b"], kpt_shape=[2, 3])
    detect_with_kpt_shape_cases(dk)
    return [detect, segment, obb, pose3, pose2, dk]


def write(root: Path, datasets):
    """Writes every dataset under `root` (which must not exist yet)."""
    for d in datasets:
        base = root / d.name
        (base / "images" / "train").mkdir(parents=True)
        (base / "labels" / "train").mkdir(parents=True)
        yaml = [f"path: {base}", "train: images/train", "val: images/val", f"names: {d.names}"]
        if d.kpt_shape:
            yaml.append(f"kpt_shape: {d.kpt_shape}")
        (base / "data.yaml").write_text("\n".join(yaml) + "\n")
        # Both splits are required; val holds one plain image.
        (base / "images" / "val").mkdir(parents=True)
        (base / "labels" / "val").mkdir(parents=True)
        (base / "images" / "val" / "control.jpg").write_bytes(jpeg())
        (base / "labels" / "val" / "control.txt").write_text(d.control_label + "\n")
        for file_name, (image, label) in d.fixtures.items():
            (base / "images" / "train" / file_name).write_bytes(image)
            if label is not None:
                stem = file_name.rsplit(".", 1)[0]
                data = label.encode() if isinstance(label, str) else label
                (base / "labels" / "train" / f"{stem}.txt").write_bytes(data)
