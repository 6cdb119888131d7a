//! Image files judged the way Ultralytics' `verify_image_label` (8.4) judges them, from their
//! bytes.
//!
//! The trainer opens every image with Pillow and skips it ("ignoring corrupt image/label") when
//! Pillow cannot open or verify it, when a side is under 10 pixels after its EXIF rotation, or
//! when Pillow's format is not in `IMG_FORMATS`. A JPEG that does not end with `FF D9` is
//! decoded and re-saved in place ("corrupt JPEG restored and saved") and kept, when it decodes:
//! when its image data reaches the end-of-image marker. This module reports those outcomes, so
//! a user sees them before training.
//!
//! It never modifies a file: it reads bytes and returns an [`ImageInfo`]. The format comes from
//! the content, never the extension. The structure checks are the cheap part of Pillow's
//! open/verify: JPEG marker segments up to the start of scan (and the end-of-image marker when
//! the file does not end with it), PNG chunks up to `IEND` with every chunk's checksum, WebP
//! RIFF chunks, a TIFF's first IFD. Compressed pixel data is never decoded.
//!
//! Where Pillow's format name decides the verdict, Pillow's name is used: an MPO (a JPEG with
//! an MPF header listing more than one image, other than Ultra HDR) is Pillow's `MPO`, which the
//! trainer does not re-save; HEIC/HEIF files open as `HEIF`; JP2 files and J2K codestreams as
//! `JPEG2000`; a PFM opens as `PPM` (grayscale) or not at all (colour), so the trainer rejects
//! every PFM. The trainer's size is the displayed one for every EXIF orientation.

use serde::{Deserialize, Serialize};

use crate::Issue;

/// Smallest side, in pixels, the trainer accepts (`shape > 9`).
pub const MIN_IMAGE_SIDE: u32 = 10;

/// Formats (Pillow's names, lowercase) that pass the trainer's check `im.format.lower() in
/// IMG_FORMATS | {"jpeg2000"}` (Pillow opens a DNG as TIFF and, with Ultralytics' HEIF opener,
/// HEIC files as HEIF).
const ACCEPTED_FORMATS: [&str; 11] =
    ["avif", "bmp", "dng", "jpeg", "jpeg2000", "mpo", "png", "tiff", "webp", "heic", "heif"];

/// EXIF tags read from TIFF structures.
const TAG_ORIENTATION: u16 = 0x0112;
const TAG_MPF_NUMBER_OF_IMAGES: u16 = 0xB001;
const TAG_MPF_ENTRIES: u16 = 0xB002;
const TAG_DNG_VERSION: u16 = 0xC612;
const TAG_STRIP_OFFSETS: u16 = 0x0111;
const TAG_TILE_OFFSETS: u16 = 0x0144;

/// What an image file is, read from its bytes (content, never the extension).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// Lowercase format: "jpeg", "mpo", "png", "bmp", "webp", "tiff", "dng", "heic", "heif",
    /// "pfm", "gif", ...; "unknown" when the header is unreadable.
    pub format: String,
    /// Size as stored in the file header.
    pub stored_width: u32,
    pub stored_height: u32,
    /// Size as displayed after the EXIF orientation (5, 6, 7 and 8 swap the sides).
    pub width: u32,
    pub height: u32,
    /// EXIF Orientation tag (1..=8) when present and valid.
    pub orientation: Option<u16>,
    /// BLAKE3 of the whole file, 64 lowercase hex characters.
    pub content_hash: String,
    /// Whether the trainer keeps the image (label checks aside).
    pub valid: bool,
    pub issues: Vec<Issue>,
}

impl ImageInfo {
    fn reject(&mut self, code: &str, message: String) {
        self.valid = false;
        self.issues.push(Issue::new(code, message));
    }
}

/// Judges one image file. Messages that mirror a line the trainer logs name `file_name`, as it does.
pub fn inspect_image(bytes: &[u8], file_name: &str) -> ImageInfo {
    let mut info = ImageInfo {
        format: "unknown".to_owned(),
        stored_width: 0,
        stored_height: 0,
        width: 0,
        height: 0,
        orientation: None,
        content_hash: blake3::hash(bytes).to_hex().to_string(),
        valid: true,
        issues: Vec::new(),
    };
    let Some((format, w, h)) = identify(bytes) else {
        let why = "no known image format in the file header, or the header is damaged";
        info.reject("corrupt_image", format!("{file_name}: {why}; Ultralytics would skip it as a corrupt image"));
        return info;
    };
    (info.format, info.stored_width, info.stored_height, info.width, info.height) = (format, w, h, w, h);

    let scan = match info.format.as_str() {
        "jpeg" => scan_jpeg(bytes),
        "png" => scan_png(bytes),
        "webp" => scan_webp(bytes),
        "tiff" | "dng" => scan_tiff(bytes),
        _ => Ok(Scan::default()),
    };
    let scan = match scan {
        Ok(scan) => scan,
        Err(why) => {
            let format = info.format.to_uppercase();
            let message = format!("{file_name}: corrupt {format}: {why}; Ultralytics would skip it as a corrupt image");
            info.reject("corrupt_image", message);
            return info;
        }
    };
    if w == 0 || h == 0 {
        let message = format!("{file_name}: the header declares a {w}x{h} image; Pillow refuses zero-sized images");
        info.reject("corrupt_image", message);
        return info;
    }
    if scan.mpo {
        info.format = "mpo".to_owned();
    }
    if let Some(raw) = scan.exif.and_then(exif_orientation) {
        apply_orientation(&mut info, raw);
    }

    let (dw, dh) = (info.width, info.height);
    if dw.min(dh) < MIN_IMAGE_SIDE {
        let message = format!(
            "{file_name}: image is {dw}x{dh} pixels (width x height); Ultralytics skips images with a side under \
             {MIN_IMAGE_SIDE} pixels (\"image size ({dh}, {dw}) <10 pixels\")"
        );
        info.reject("image_too_small", message);
    }
    if !ACCEPTED_FORMATS.contains(&info.format.as_str()) {
        let format = info.format.to_uppercase();
        let detail = if info.format == "pfm" {
            " (Pillow opens a grayscale PFM as PPM and cannot open a colour one)"
        } else {
            ""
        };
        let accepted = ACCEPTED_FORMATS.join(", ");
        let message =
            format!("{file_name}: {format} images{detail} are not accepted by Ultralytics (accepted: {accepted})");
        info.reject("unsupported_format", message);
    }
    if info.format == "jpeg" && !bytes.ends_with(&[0xFF, 0xD9]) {
        // The trainer re-saves such a file, which decodes it: that works when the image data
        // reaches its end-of-image marker (data after it is dropped), and fails ("image file is
        // truncated") when the file ends before it. Entropy-coded data never holds FF D9.
        let complete = bytes[scan.image_data..].windows(2).any(|w| w == [0xFF, 0xD9]);
        if complete {
            let message = format!(
                "{file_name}: the JPEG has data after its FF D9 end-of-image marker; Ultralytics would re-save it \
                 (\"corrupt JPEG restored and saved\") and train on it; YDS does not modify files"
            );
            info.issues.push(Issue::new("jpeg_trailing_data", message));
        } else {
            let message = format!(
                "{file_name}: the JPEG is truncated: its image data ends before the FF D9 end-of-image marker; \
                 Ultralytics cannot decode it to restore it and would skip it as a corrupt image"
            );
            info.reject("jpeg_truncated", message);
        }
    }
    info
}

/// Records an EXIF orientation and sets the displayed size.
fn apply_orientation(info: &mut ImageInfo, raw: u32) {
    let Some(orientation) = u16::try_from(raw).ok().filter(|o| (1..=8).contains(o)) else {
        let message = format!("EXIF orientation {raw} is not a valid value (1-8); it is ignored, as Ultralytics does");
        info.issues.push(Issue::new("exif_orientation_invalid", message));
        return;
    };
    info.orientation = Some(orientation);
    if orientation < 5 {
        return;
    }
    // Ultralytics 8.4's exif_size swaps the sides for 5-8 too (JPEG, MPO, PNG, AVIF), and
    // decodes WebP and TIFF upright: the trainer's size is the displayed one.
    (info.width, info.height) = (info.stored_height, info.stored_width);
}

/// Format name and stored size from the header, or `None` when no format is recognised.
fn identify(b: &[u8]) -> Option<(String, u32, u32)> {
    // imagesize knows neither PFM nor BMP's signed (top-down) heights and OS/2 headers.
    if (b.starts_with(b"Pf") || b.starts_with(b"PF")) && b.get(2).is_some_and(u8::is_ascii_whitespace) {
        let mut words = b[..b.len().min(64)].split(u8::is_ascii_whitespace).filter(|w| !w.is_empty()).skip(1);
        let mut number = || std::str::from_utf8(words.next()?).ok()?.parse::<u32>().ok();
        return Some(("pfm".to_owned(), number()?, number()?));
    }
    if b.starts_with(b"BM") {
        let (w, h) = match le32(b, 14)? {
            12 => (i32::from(le16(b, 18)?), i32::from(le16(b, 20)?)),
            40 | 52 | 56 | 64 | 108 | 124 => (le32(b, 18)? as i32, le32(b, 22)? as i32),
            _ => return None,
        };
        return Some(("bmp".to_owned(), u32::try_from(w).ok()?, h.unsigned_abs()));
    }
    if let Some((w, h)) = jpeg2000_size(b) {
        return Some(("jpeg2000".to_owned(), w, h));
    }
    let kind = imagesize::image_type(b).ok()?;
    let size = imagesize::blob_size(b).ok()?;
    let name = match kind {
        imagesize::ImageType::Jpeg => "jpeg".to_owned(),
        imagesize::ImageType::Tiff if tiff_tag(b, TAG_DNG_VERSION).is_some() => "dng".to_owned(),
        imagesize::ImageType::Heif(imagesize::Compression::Hevc) => "heic".to_owned(),
        imagesize::ImageType::Heif(imagesize::Compression::Av1) => "avif".to_owned(),
        imagesize::ImageType::Heif(_) => "heif".to_owned(),
        other => format!("{other:?}").split('(').next().unwrap_or_default().to_ascii_lowercase(),
    };
    Some((name, u32::try_from(size.width).ok()?, u32::try_from(size.height).ok()?))
}

/// Size of a JPEG 2000 file as Pillow's Jpeg2K plugin reads it: a raw codestream's SIZ segment
/// (image extent minus offset), or a JP2 file's `ihdr` box inside its `jp2h` box. `None` when
/// the file is neither, or the size is missing (Pillow cannot open it then).
fn jpeg2000_size(b: &[u8]) -> Option<(u32, u32)> {
    if b.starts_with(b"\xFF\x4F\xFF\x51") {
        let (x, y) = (be32(b, 8)?, be32(b, 12)?);
        let (x0, y0) = (be32(b, 16)?, be32(b, 20)?);
        return Some((x.checked_sub(x0)?, y.checked_sub(y0)?));
    }
    if !b.starts_with(b"\0\0\0\x0CjP  \r\n\x87\n") {
        return None;
    }
    let (_, header) = jp2_boxes(&b[12..]).find(|(kind, _)| *kind == b"jp2h")?;
    let (_, ihdr) = jp2_boxes(header).find(|(kind, _)| *kind == b"ihdr")?;
    Some((be32(ihdr, 4)?, be32(ihdr, 0)?))
}

/// JP2 boxes `(type, body)`: a 4-byte length (1: an 8-byte length follows; 0: to the end), a
/// 4-byte type. Stops at the first box that runs past the end.
fn jp2_boxes(data: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let (length, kind) = (be32(data, pos)? as usize, data.get(pos + 4..pos + 8)?);
        let (header, length) = match length {
            0 => (8, data.len() - pos),
            1 => (16, usize::try_from(u64::from_be_bytes(bytes_at(data, pos + 8)?)).ok()?),
            n => (8, n),
        };
        let body = data.get(pos + header..pos.checked_add(length)?)?;
        pos += length.max(header);
        Some((kind, body))
    })
}

/// What the structure walk found: the EXIF TIFF block, whether Pillow would call it MPO, and
/// (JPEG) where the image data starts.
#[derive(Debug, Default)]
struct Scan<'a> {
    exif: Option<&'a [u8]>,
    mpo: bool,
    image_data: usize,
}

/// Walks JPEG marker segments from SOI to SOS, as Pillow's JPEG open does.
fn scan_jpeg(b: &[u8]) -> Result<Scan<'_>, String> {
    let (mut pos, mut scan, mut frame, mut ultra_hdr, mut multi_picture) = (2, Scan::default(), false, false, false);
    loop {
        // Pillow skips junk bytes between segments and 0xFF fill bytes before a marker.
        while b.get(pos).is_some_and(|&c| c != 0xFF) {
            pos += 1;
        }
        while b.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let Some(&marker) = b.get(pos) else {
            return Err("the file ends before the start of scan".to_owned());
        };
        let start = pos - 1;
        pos += 1;
        match marker {
            // Markers without a length (Pillow skips them, even SOI/EOI), and an escaped 0xFF.
            0x00 | 0xC8 | 0xD0..=0xD9 | 0xF0..=0xFD => continue,
            0x01..=0xBF => return Err(format!("no JPEG marker at byte {start} (FF{marker:02X})")),
            _ => {}
        }
        let Some(length) = be16(b, pos).map(usize::from) else {
            return Err(format!("the file ends inside the FF{marker:02X} segment header at byte {start}"));
        };
        let end = pos + length;
        if length < 2 || end > b.len() {
            let left = b.len() - pos;
            return Err(format!(
                "the FF{marker:02X} segment at byte {start} declares {length} bytes but only {left} remain"
            ));
        }
        let payload = &b[pos + 2..end];
        match marker {
            0xE1 if payload.starts_with(b"Exif\0\0") && scan.exif.is_none() => scan.exif = Some(&payload[6..]),
            0xE1 => ultra_hdr |= payload.windows(15).any(|w| w == b"hdrgm:Version=\""),
            0xE2 if payload.starts_with(b"MPF\0") => multi_picture = is_multi_picture(&payload[4..]),
            0xC0..=0xCF | 0xDE if !matches!(marker, 0xC4 | 0xCC) => {
                // Pillow's SOF handler: 8-bit samples, 1, 3 or 4 components.
                let (bits, layers) = (payload.first().copied(), payload.get(5).copied());
                if bits != Some(8) || !matches!(layers, Some(1 | 3 | 4)) {
                    let (bits, layers) = (bits.unwrap_or(0), layers.unwrap_or(0));
                    return Err(format!("frame header with {bits}-bit samples and {layers} components"));
                }
                frame = true;
            }
            0xDA if !frame => return Err(format!("start of scan at byte {start} before any frame header")),
            0xDA => {
                scan.mpo = multi_picture && !ultra_hdr;
                scan.image_data = end;
                return Ok(scan);
            }
            _ => {}
        }
        pos = end;
    }
}

/// Walks PNG chunks up to IEND; checks that IHDR comes first and every chunk's CRC but IEND's
/// (Pillow checks those before the first IDAT when it opens the file, the rest in `verify()`).
fn scan_png(b: &[u8]) -> Result<Scan<'_>, String> {
    if !b.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err("bad PNG signature".to_owned());
    }
    let (mut pos, mut scan) = (8, Scan::default());
    loop {
        let (Some(length), Some(kind)) = (be32(b, pos), b.get(pos + 4..pos + 8)) else {
            return Err("the file ends before the IEND chunk (truncated)".to_owned());
        };
        let name = String::from_utf8_lossy(kind);
        if !kind.iter().all(u8::is_ascii_alphabetic) {
            return Err(format!("invalid chunk type {name:?} at byte {pos}"));
        }
        let data_end = (pos + 8).saturating_add(length as usize);
        if data_end.saturating_add(4) > b.len() {
            let left = b.len() - pos;
            return Err(format!("chunk {name} at byte {pos} declares {length} bytes but only {left} remain"));
        }
        if pos == 8 && (kind != b"IHDR" || length != 13) {
            return Err(format!("the first chunk is {name}, not a 13-byte IHDR"));
        }
        if kind != b"IEND" && be32(b, data_end) != Some(crc32(&b[pos + 4..data_end])) {
            return Err(format!("{name} checksum mismatch (chunk at byte {pos})"));
        }
        let data = &b[pos + 8..data_end];
        match kind {
            b"eXIf" if scan.exif.is_none() => scan.exif = Some(data.strip_prefix(b"Exif\0\0").unwrap_or(data)),
            b"IEND" => return Ok(scan),
            _ => {}
        }
        pos = data_end + 4;
    }
}

/// Walks WebP RIFF chunks; libwebp refuses a chunk running past the end, or no image chunk.
fn scan_webp(b: &[u8]) -> Result<Scan<'_>, String> {
    let (mut pos, mut scan, mut image) = (12, Scan::default(), false);
    while let (Some(kind), Some(length)) = (b.get(pos..pos + 4), le32(b, pos + 4)) {
        let end = (pos + 8).saturating_add(length as usize);
        if end > b.len() {
            let (name, left) = (String::from_utf8_lossy(kind), b.len() - pos);
            return Err(format!("chunk {name:?} at byte {pos} declares {length} bytes but only {left} remain"));
        }
        let data = &b[pos + 8..end];
        match kind {
            b"EXIF" if scan.exif.is_none() => scan.exif = Some(data.strip_prefix(b"Exif\0\0").unwrap_or(data)),
            b"VP8 " | b"VP8L" | b"ANMF" => image = true,
            _ => {}
        }
        pos = end + (length as usize & 1);
    }
    if image {
        Ok(scan)
    } else {
        Err("no image chunk (VP8, VP8L or ANMF)".to_owned())
    }
}

/// Checks what Pillow's TIFF open needs: IFD0 complete within the file, with strip or tile
/// offsets ("unknown data organization" otherwise). The whole file is the EXIF structure.
fn scan_tiff(b: &[u8]) -> Result<Scan<'_>, String> {
    let ifd = tiff_int::<4>(b, 4).ok_or("the file ends inside the TIFF header")? as usize;
    let entries = tiff_int::<2>(b, ifd).ok_or_else(|| format!("the first IFD at byte {ifd} is past the end"))?;
    let end = ifd + 2 + 12 * entries as usize;
    if end > b.len() {
        return Err(format!("the first IFD declares {entries} entries but the file ends at byte {}", b.len()));
    }
    if tiff_tag(b, TAG_STRIP_OFFSETS).is_none() && tiff_tag(b, TAG_TILE_OFFSETS).is_none() {
        return Err("the first IFD has neither strip nor tile offsets".to_owned());
    }
    Ok(Scan { exif: Some(b), ..Scan::default() })
}

/// The Orientation tag of IFD0, when it is one SHORT or LONG (Pillow returns a tuple otherwise).
fn exif_orientation(tiff: &[u8]) -> Option<u32> {
    tiff_tag(tiff, TAG_ORIENTATION).filter(|&(kind, count, _)| matches!(kind, 3 | 4) && count == 1).map(|t| t.2)
}

/// Whether an MPF header makes Pillow open the file as MPO: more than one image, and an MP entry
/// (16 bytes) per image, each of JPEG data format. Pillow reads a malformed header as plain JPEG.
fn is_multi_picture(mpf: &[u8]) -> bool {
    let (Some((_, _, images)), Some((_, size, at))) =
        (tiff_tag(mpf, TAG_MPF_NUMBER_OF_IMAGES), tiff_tag(mpf, TAG_MPF_ENTRIES))
    else {
        return false;
    };
    let entry_format = |i: u32| tiff_int::<4>(mpf, (at as usize).checked_add(i as usize * 16)?).map(|a| a >> 24 & 7);
    images > 1 && size / 16 >= images && (0..images).all(|i| entry_format(i) == Some(0))
}

/// `(type, count, value)` of `wanted` in IFD0 of a TIFF structure ("II*\0" or "MM\0*"). The value
/// is the inline number when it fits in the entry (BYTE, UNDEFINED, SHORT, LONG), else the offset
/// of the data. Every offset is bounds-checked.
fn tiff_tag(tiff: &[u8], wanted: u16) -> Option<(u16, u32, u32)> {
    if !tiff.starts_with(b"II*\0") && !tiff.starts_with(b"MM\0*") {
        return None;
    }
    let ifd = tiff_int::<4>(tiff, 4)? as usize;
    for index in 0..tiff_int::<2>(tiff, ifd)? as usize {
        let entry = ifd.checked_add(2 + index * 12)?;
        if tiff_int::<2>(tiff, entry)? != u32::from(wanted) {
            continue;
        }
        let (kind, count) = (tiff_int::<2>(tiff, entry + 2)? as u16, tiff_int::<4>(tiff, entry + 4)?);
        let item_size: u64 = match kind {
            3 | 8 => 2,
            4 | 9 | 11 | 13 => 4,
            5 | 10 | 12 => 8,
            _ => 1,
        };
        let value = match kind {
            _ if u64::from(count) * item_size > 4 => tiff_int::<4>(tiff, entry + 8)?,
            3 => tiff_int::<2>(tiff, entry + 8)?,
            4 => tiff_int::<4>(tiff, entry + 8)?,
            _ => tiff_int::<1>(tiff, entry + 8)?,
        };
        return Some((kind, count, value));
    }
    None
}

/// An N-byte unsigned integer in the byte order of a TIFF structure ("MM": big-endian).
fn tiff_int<const N: usize>(tiff: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; N] = bytes_at(tiff, at)?;
    let big = tiff.starts_with(b"MM");
    Some((0..N).fold(0, |value, i| value << 8 | u32::from(bytes[if big { i } else { N - 1 - i }])))
}

fn bytes_at<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    bytes_at(b, at).map(u16::from_be_bytes)
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    bytes_at(b, at).map(u16::from_le_bytes)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    bytes_at(b, at).map(u32::from_be_bytes)
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    bytes_at(b, at).map(u32::from_le_bytes)
}

/// CRC-32 (ISO-HDLC, as in PNG), table-driven; the table is built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
};

fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |c, &byte| CRC_TABLE[((c ^ u32::from(byte)) & 0xFF) as usize] ^ (c >> 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u16, h: u16) -> Vec<u8> {
        let pixels: Vec<u8> = (0..usize::from(w) * usize::from(h) * 3).map(|i| (i * 7 % 251) as u8).collect();
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 90).encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb).unwrap();
        out
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&vec![90; (w * h * 3) as usize]).unwrap();
        writer.finish().unwrap();
        out
    }

    /// A TIFF structure whose IFD0 holds `(tag, type, value)` entries, each of count 1.
    fn tiff(big_endian: bool, entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let u16b = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
        let u32b = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut out = if big_endian { b"MM\0*".to_vec() } else { b"II*\0".to_vec() };
        out.extend(u32b(8));
        out.extend(u16b(entries.len() as u16));
        for &(tag, kind, value) in entries {
            out.extend([u16b(tag), u16b(kind)].concat());
            out.extend(u32b(1));
            out.extend(match kind {
                3 => [u16b(value as u16), [0, 0]].concat(),
                1 | 7 => vec![value as u8, 0, 0, 0],
                _ => u32b(value).to_vec(),
            });
        }
        out.extend(u32b(0));
        out
    }

    /// An MPF APP2 payload for two images whose MP entries have the given attribute.
    fn mpf(attribute: u32) -> Vec<u8> {
        let mut t = tiff(true, &[(TAG_MPF_NUMBER_OF_IMAGES, 4, 2), (TAG_MPF_ENTRIES, 7, 0)]);
        let entry = 8 + 2 + 12;
        let end = t.len() as u32;
        t[entry + 4..entry + 12].copy_from_slice(&[32u32.to_be_bytes(), end.to_be_bytes()].concat());
        for _ in 0..2 {
            t.extend(attribute.to_be_bytes());
            t.extend([0; 12]);
        }
        [b"MPF\0".to_vec(), t].concat()
    }

    fn exif(big_endian: bool, orientation: u32) -> Vec<u8> {
        [b"Exif\0\0".to_vec(), tiff(big_endian, &[(TAG_ORIENTATION, 3, orientation)])].concat()
    }

    /// Inserts a marker segment right after SOI.
    fn with_segment(jpeg: &[u8], marker: u8, payload: &[u8]) -> Vec<u8> {
        let length = (payload.len() as u16 + 2).to_be_bytes();
        [&jpeg[..2], &[0xFF, marker], &length, payload, &jpeg[2..]].concat()
    }

    /// Inserts a chunk right after IHDR, with its CRC.
    fn with_chunk(png: &[u8], kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let crc = crc32(&[kind.as_slice(), data].concat()).to_be_bytes();
        [&png[..33], &(data.len() as u32).to_be_bytes(), kind, data, &crc, &png[33..]].concat()
    }

    /// A WebP with a VP8X canvas header, a lossless (VP8L) image header and, optionally, EXIF.
    fn webp(w: u32, h: u32, exif: Option<&[u8]>) -> Vec<u8> {
        let mut body = b"WEBPVP8X".to_vec();
        body.extend(10u32.to_le_bytes());
        body.extend([if exif.is_some() { 0x08 } else { 0 }, 0, 0, 0]);
        body.extend(&(w - 1).to_le_bytes()[..3]);
        body.extend(&(h - 1).to_le_bytes()[..3]);
        body.extend(b"VP8L\x06\0\0\0\x2F");
        body.extend(((w - 1) | (h - 1) << 14).to_le_bytes());
        body.push(0);
        if let Some(exif) = exif {
            body.extend(b"EXIF");
            body.extend((exif.len() as u32).to_le_bytes());
            body.extend(exif);
            body.extend(vec![0; exif.len() & 1]);
        }
        [b"RIFF".as_slice(), &(body.len() as u32).to_le_bytes(), &body].concat()
    }

    fn codes(info: &ImageInfo) -> Vec<&str> {
        info.issues.iter().map(|issue| issue.code.as_str()).collect()
    }

    fn message<'a>(info: &'a ImageInfo, code: &str) -> &'a str {
        &info.issues.iter().find(|issue| issue.code == code).unwrap().message
    }

    #[test]
    fn clean_jpeg_and_png_are_valid() {
        for (bytes, format) in [(jpeg(32, 16), "jpeg"), (png(32, 16), "png")] {
            let info = inspect_image(&bytes, "a.jpg");
            assert_eq!(info.format, format);
            assert_eq!((info.stored_width, info.stored_height, info.width, info.height), (32, 16, 32, 16));
            assert!(info.valid && info.issues.is_empty(), "{info:?}");
            assert_eq!(info.orientation, None);
            assert_eq!(info.content_hash, blake3::hash(&bytes).to_hex().to_string());
            assert_eq!(info.content_hash.len(), 64);
        }
    }

    #[test]
    fn exif_orientation_6_and_8_swap_in_both_byte_orders() {
        for big_endian in [false, true] {
            for orientation in [6, 8] {
                let bytes = with_segment(&jpeg(32, 16), 0xE1, &exif(big_endian, orientation));
                let info = inspect_image(&bytes, "a.jpg");
                assert_eq!(info.orientation, Some(orientation as u16));
                assert_eq!((info.stored_width, info.stored_height, info.width, info.height), (32, 16, 16, 32));
                assert!(info.valid && info.issues.is_empty(), "{info:?}");
            }
            let info = inspect_image(&with_segment(&jpeg(32, 16), 0xE1, &exif(big_endian, 3)), "a.jpg");
            assert_eq!((info.orientation, info.width, info.height), (Some(3), 32, 16));
        }
    }

    #[test]
    fn exif_orientation_5_and_7_swap_as_in_the_trainer() {
        // Ultralytics 8.4's exif_size swaps for 5, 6, 7 and 8.
        for orientation in [5, 7] {
            let info = inspect_image(&with_segment(&jpeg(32, 16), 0xE1, &exif(true, orientation)), "a.jpg");
            assert_eq!((info.width, info.height), (16, 32));
            assert!(info.valid && info.issues.is_empty(), "{info:?}");
            // A side under 10 pixels stays under 10 pixels whichever way it is turned.
            let info = inspect_image(&with_segment(&jpeg(9, 40), 0xE1, &exif(true, orientation)), "a.jpg");
            assert_eq!((info.width, info.height, info.valid), (40, 9, false));
            assert_eq!(codes(&info), ["image_too_small"]);
        }
    }

    #[test]
    fn exif_orientation_out_of_range_is_ignored() {
        for orientation in [0, 9, 300] {
            let info = inspect_image(&with_segment(&jpeg(32, 16), 0xE1, &exif(false, orientation)), "a.jpg");
            assert_eq!((info.orientation, info.width, info.height), (None, 32, 16));
            assert_eq!(codes(&info), ["exif_orientation_invalid"]);
            assert!(info.valid);
        }
        // A LONG orientation counts; an ASCII one (Pillow: a string) does not.
        let long = [b"Exif\0\0".to_vec(), tiff(false, &[(TAG_ORIENTATION, 4, 6)])].concat();
        assert_eq!(inspect_image(&with_segment(&jpeg(32, 16), 0xE1, &long), "a.jpg").width, 16);
        let ascii = [b"Exif\0\0".to_vec(), tiff(false, &[(TAG_ORIENTATION, 2, 6)])].concat();
        assert_eq!(inspect_image(&with_segment(&jpeg(32, 16), 0xE1, &ascii), "a.jpg").width, 32);
    }

    #[test]
    fn png_and_webp_exif_rotate_as_in_the_trainer() {
        // Ultralytics 8.4 swaps a PNG's size and decodes a WebP upright.
        let bytes = with_chunk(&png(32, 16), b"eXIf", &tiff(true, &[(TAG_ORIENTATION, 3, 6)]));
        let info = inspect_image(&bytes, "a.png");
        assert_eq!((info.format.as_str(), info.orientation, info.width, info.height), ("png", Some(6), 16, 32));
        assert!(info.valid && info.issues.is_empty(), "{info:?}");

        let info = inspect_image(&webp(40, 20, Some(&exif(false, 8))), "a.webp");
        assert_eq!((info.format.as_str(), info.orientation, info.width, info.height), ("webp", Some(8), 20, 40));
        assert!(info.valid && info.issues.is_empty(), "{info:?}");
        let info = inspect_image(&webp(40, 20, None), "a.webp");
        assert!(info.valid && info.issues.is_empty(), "{info:?}");
    }

    #[test]
    fn webp_chunk_past_the_end_is_corrupt() {
        let bytes = webp(40, 20, Some(&exif(false, 1)));
        let info = inspect_image(&bytes[..bytes.len() - 4], "a.webp");
        assert_eq!((info.format.as_str(), info.valid), ("webp", false));
        assert_eq!(codes(&info), ["corrupt_image"]);
    }

    #[test]
    fn jpeg_with_data_after_the_end_marker_warns_but_stays_valid() {
        // The trainer decodes and re-saves it: the decoder stops at FF D9.
        let full = jpeg(32, 32);
        let info = inspect_image(&[full.as_slice(), b"trailer"].concat(), "cut.jpg");
        assert!(info.valid);
        assert_eq!(codes(&info), ["jpeg_trailing_data"]);
        let text = message(&info, "jpeg_trailing_data");
        assert!(text.starts_with("cut.jpg: ") && text.contains("re-save") && text.contains("does not modify"));
    }

    #[test]
    fn jpeg_cut_before_the_end_marker_is_corrupt() {
        // Pillow cannot decode it ("image file is truncated"), so the trainer's restore fails.
        let full = jpeg(32, 32);
        for cut in [2, 10, full.len() / 2] {
            let info = inspect_image(&full[..full.len() - cut], "cut.jpg");
            assert!(!info.valid, "cut {cut}");
            assert_eq!(codes(&info), ["jpeg_truncated"]);
            assert!(message(&info, "jpeg_truncated").contains("skip it as a corrupt image"));
        }
        // An FF D9 inside a segment before the image data (an EXIF thumbnail) does not count.
        let thumb = with_segment(&full, 0xE1, b"Exif\0\0\xFF\xD8\xFF\xD9");
        assert!(!inspect_image(&thumb[..thumb.len() - 2], "cut.jpg").valid);
    }

    #[test]
    fn jpeg_segment_past_the_end_is_corrupt() {
        let full = jpeg(32, 32);
        let dht = full.windows(2).position(|w| w == [0xFF, 0xC4]).unwrap();
        let mut bytes = full.clone();
        bytes[dht + 2..dht + 4].copy_from_slice(&0xFFF0u16.to_be_bytes());
        assert!(scan_jpeg(&bytes).unwrap_err().contains("FFC4 segment"));
        let info = inspect_image(&bytes, "a.jpg");
        assert!(!info.valid);
        assert_eq!(codes(&info), ["corrupt_image"]);
        // Cut inside the headers, or garbage where a marker should be.
        let info = inspect_image(&full[..dht + 6], "a.jpg");
        assert_eq!((info.valid, codes(&info)), (false, vec!["corrupt_image"]));
        assert!(scan_jpeg(&full[..dht + 6]).is_err());
        let mut bytes = full.clone();
        bytes[dht + 1] = 0x05;
        assert!(scan_jpeg(&bytes).unwrap_err().starts_with("no JPEG marker"));
        // Pillow only opens 8-bit frames with 1, 3 or 4 components.
        let sof = full.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        let mut bytes = full.clone();
        bytes[sof + 4] = 12;
        assert!(message(&inspect_image(&bytes, "a.jpg"), "corrupt_image").contains("12-bit samples"));
    }

    #[test]
    fn png_structure_is_checked() {
        let full = png(16, 16);
        let no_iend = &full[..full.len() - 12];
        let info = inspect_image(no_iend, "a.png");
        assert_eq!((info.format.as_str(), info.valid, codes(&info)), ("png", false, vec!["corrupt_image"]));
        assert!(message(&info, "corrupt_image").contains("IEND"));
        let mut bad_crc = full.clone();
        bad_crc[29] ^= 1;
        assert!(message(&inspect_image(&bad_crc, "a.png"), "corrupt_image").contains("IHDR checksum"));
        assert!(!inspect_image(&full[..full.len() - 20], "a.png").valid);
        assert!(inspect_image(&[full.as_slice(), b"junk after IEND"].concat(), "a.png").valid);
    }

    #[test]
    fn small_images_are_rejected_with_both_sizes() {
        let info = inspect_image(&jpeg(8, 8), "tiny.jpg");
        assert_eq!((info.valid, codes(&info)), (false, vec!["image_too_small"]));
        let info = inspect_image(&png(40, 9), "thin.png");
        assert_eq!(codes(&info), ["image_too_small"]);
        assert!(message(&info, "image_too_small").contains("40x9"), "{info:?}");
        assert!(inspect_image(&png(10, 10), "ok.png").valid);
    }

    #[test]
    fn gif_and_pfm_are_unsupported() {
        let gif = [b"GIF89a".as_slice(), &20u16.to_le_bytes(), &30u16.to_le_bytes(), &[0; 12]].concat();
        let info = inspect_image(&gif, "a.gif");
        assert_eq!((info.format.as_str(), info.width, info.height, info.valid), ("gif", 20, 30, false));
        assert_eq!(codes(&info), ["unsupported_format"]);
        let info = inspect_image(b"Pf\n12 14\n-1.0\n\0\0\0\0", "a.pfm");
        assert_eq!((info.format.as_str(), info.width, info.height, info.valid), ("pfm", 12, 14, false));
        assert!(message(&info, "unsupported_format").contains("PPM"));
    }

    #[test]
    fn bmp_header_including_top_down_height() {
        let header = [40u32.to_le_bytes(), 16i32.to_le_bytes(), (-12i32).to_le_bytes()].concat();
        let mut bmp = [b"BM".as_slice(), &[0; 12], &header, &[0; 40]].concat();
        let info = inspect_image(&bmp, "a.bmp");
        assert_eq!((info.format.as_str(), info.width, info.height), ("bmp", 16, 12));
        assert!(info.valid && info.issues.is_empty(), "{info:?}");
        bmp[14] = 99; // unknown DIB header size: Pillow refuses it
        assert_eq!(codes(&inspect_image(&bmp, "a.bmp")), ["corrupt_image"]);
    }

    #[test]
    fn tiff_dng_mpo_and_ultra_hdr() {
        let strips = (TAG_STRIP_OFFSETS, 4, 8);
        let dng = tiff(false, &[(256, 3, 40), (257, 3, 20), strips, (TAG_ORIENTATION, 3, 6), (TAG_DNG_VERSION, 1, 1)]);
        let info = inspect_image(&dng, "a.dng");
        assert_eq!((info.format.as_str(), info.width, info.height, info.valid), ("dng", 20, 40, true));
        assert!(info.issues.is_empty(), "Pillow's TIFF size is already rotated: {info:?}");
        assert_eq!(inspect_image(&tiff(true, &[(256, 3, 40), (257, 3, 20), strips]), "a.tif").format, "tiff");

        let mpo = with_segment(&with_segment(&jpeg(32, 16), 0xE2, &mpf(0x0003_0000)), 0xE1, &exif(false, 6));
        let info = inspect_image(&mpo[..mpo.len() - 2], "a.jpg");
        assert_eq!((info.format.as_str(), info.width, info.height, info.valid), ("mpo", 16, 32, true));
        assert!(info.issues.is_empty(), "no jpeg_truncated for MPO: {info:?}");
        let ultra_hdr = with_segment(&mpo, 0xE1, b"http://ns.adobe.com/xap/1.0/\0<x hdrgm:Version=\"1.0\"/>");
        assert_eq!(inspect_image(&ultra_hdr, "a.jpg").format, "jpeg");
        let not_jpeg_entries = with_segment(&jpeg(32, 16), 0xE2, &mpf(0x0103_0000)); // Pillow: malformed MPO
        assert_eq!(inspect_image(&not_jpeg_entries, "a.jpg").format, "jpeg");
    }

    #[test]
    fn tiff_needs_a_complete_first_ifd_with_strips_or_tiles() {
        // Pillow: "unknown data organization" (a cut IFD loses its offsets too).
        let full = tiff(false, &[(256, 3, 40), (257, 3, 20), (TAG_STRIP_OFFSETS, 4, 8)]);
        assert!(inspect_image(&full, "a.tif").valid);
        let info = inspect_image(&full[..full.len() - 10], "a.tif");
        assert_eq!((info.valid, codes(&info)), (false, vec!["corrupt_image"]), "{info:?}");
        let info = inspect_image(&tiff(false, &[(256, 3, 40), (257, 3, 20)]), "a.tif");
        assert!(message(&info, "corrupt_image").contains("neither strip nor tile offsets"));
        let tiles = tiff(true, &[(256, 3, 40), (257, 3, 20), (TAG_TILE_OFFSETS, 4, 8)]);
        assert!(inspect_image(&tiles, "a.tif").valid);
    }

    #[test]
    fn every_png_chunk_checksum_but_iend_is_checked() {
        // Pillow checks the chunks before IDAT when it opens the file, the others in verify().
        let good = with_chunk(&png(32, 16), b"tEXt", b"Comment\0hi");
        assert!(inspect_image(&good, "a.png").valid);
        let text_crc = 33 + 8 + 10;
        let mut bad = good.clone();
        bad[text_crc] ^= 0xFF;
        let info = inspect_image(&bad, "a.png");
        assert!(!info.valid);
        assert!(message(&info, "corrupt_image").contains("tEXt checksum mismatch"), "{info:?}");
        let idat = good.windows(4).position(|w| w == b"IDAT").unwrap() - 4;
        let idat_len = be32(&good, idat).unwrap() as usize;
        let mut bad = good.clone();
        bad[idat + 8 + idat_len] ^= 0xFF;
        assert!(message(&inspect_image(&bad, "a.png"), "corrupt_image").contains("IDAT checksum"));
        let mut iend = good.clone();
        let last = iend.len() - 1;
        iend[last] ^= 0xFF;
        assert!(inspect_image(&iend, "a.png").valid);
    }

    #[test]
    fn jpeg_2000_codestreams_and_jp2_files() {
        // A J2K codestream: SOC, SIZ with extent 50x30 at offset 2x1.
        let mut j2k = b"\xFF\x4F\xFF\x51\x00\x29\x00\x00".to_vec();
        for v in [50u32, 30, 2, 1, 50, 30, 0, 0] {
            j2k.extend(v.to_be_bytes());
        }
        j2k.extend([0, 3]);
        let info = inspect_image(&j2k, "a.j2k");
        assert_eq!((info.format.as_str(), info.width, info.height), ("jpeg2000", 48, 29));
        assert!(info.valid && info.issues.is_empty(), "{info:?}");
        // A JP2 file: signature box, then jp2h holding ihdr (height 20, width 40).
        let jp2_box = |kind: &[u8], body: &[u8]| [&(body.len() as u32 + 8).to_be_bytes(), kind, body].concat();
        let ihdr = jp2_box(b"ihdr", &[20u32.to_be_bytes(), 40u32.to_be_bytes(), [0, 3, 7, 7]].concat());
        let jp2 = [
            b"\0\0\0\x0CjP  \r\n\x87\n".as_slice(),
            &jp2_box(b"ftyp", b"jp2 \0\0\0\0jp2 "),
            &jp2_box(b"jp2h", &ihdr),
            &jp2_box(b"jp2c", &j2k),
        ]
        .concat();
        let info = inspect_image(&jp2, "a.jp2");
        assert_eq!((info.format.as_str(), info.width, info.height, info.valid), ("jpeg2000", 40, 20, true));
        // Without its header box Pillow cannot open it.
        let no_header = [b"\0\0\0\x0CjP  \r\n\x87\n".as_slice(), &jp2_box(b"jp2c", &j2k)].concat();
        assert_eq!(codes(&inspect_image(&no_header, "a.jp2")), ["corrupt_image"]);
    }

    #[test]
    fn avif_and_jpeg_2000_are_accepted_formats() {
        // IMG_FORMATS holds avif and jp2 (Pillow: AVIF, JPEG2000), and Pillow 11.3+ opens AVIF.
        for format in ["avif", "jpeg2000", "heif"] {
            assert!(ACCEPTED_FORMATS.contains(&format), "{format}");
        }
        assert!(!ACCEPTED_FORMATS.contains(&"pfm") && !ACCEPTED_FORMATS.contains(&"gif"));
    }

    #[test]
    fn garbage_and_empty_files_are_corrupt() {
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for bytes in [garbage.as_slice(), b"", b"\xFF\xD8", b"\x89PNG\r\n\x1a\n"] {
            let info = inspect_image(bytes, "x.jpg");
            assert_eq!((info.format.as_str(), info.width, info.height, info.valid), ("unknown", 0, 0, false));
            assert_eq!(codes(&info), ["corrupt_image"]);
            assert_eq!(info.content_hash.len(), 64);
        }
    }

    #[test]
    fn malformed_exif_never_panics() {
        let base = jpeg(16, 16);
        let mut inputs = Vec::new();
        for big_endian in [false, true] {
            let app1 = exif(big_endian, 6);
            let bytes = with_segment(&base, 0xE1, &app1);
            inputs.extend((0..bytes.len()).map(|cut| bytes[..cut].to_vec()));
            for at in 0..app1.len() {
                for value in [0x00, 0x7F, 0xFF] {
                    let mut broken = app1.clone();
                    broken[at] = value;
                    inputs.push(with_segment(&base, 0xE1, &broken));
                    inputs.push(with_chunk(&png(12, 12), b"eXIf", &broken));
                    inputs.push(webp(12, 12, Some(&broken)));
                    inputs.push(with_segment(&base, 0xE2, &[b"MPF\0", &broken[6..]].concat()));
                }
            }
            for cut in 0..app1.len() {
                inputs.push(with_segment(&base, 0xE1, &app1[..cut]));
            }
        }
        let multi_picture = mpf(0x0003_0000);
        for at in 0..multi_picture.len() {
            for value in [0x00, 0x7F, 0xFF] {
                let mut broken = multi_picture.clone();
                broken[at] = value;
                inputs.push(with_segment(&base, 0xE2, &broken));
            }
        }
        let huge_offsets = [b"Exif\0\0II*\0\xFF\xFF\xFF\xFF".as_slice(), b"Exif\0\0MM\0*\0\0\0\x08\xFF\xFF"];
        inputs.extend(huge_offsets.iter().map(|app1| with_segment(&base, 0xE1, app1)));
        for bytes in &inputs {
            let info = inspect_image(bytes, "fuzz.jpg");
            assert!(info.orientation.is_none_or(|o| (1..=8).contains(&o)));
        }
    }

    #[test]
    fn crc32_matches_known_values() {
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
