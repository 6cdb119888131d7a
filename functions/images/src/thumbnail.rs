//! Thumbnails: an image's file decoded, scaled to fit [`MAX_SIDE`] (never enlarged), turned
//! as its EXIF orientation says it is displayed, and encoded as a JPEG.
//!
//! Decoding is the expensive part, in time and in memory: a file of a few megabytes can hold
//! a hundred megabytes of pixels. So a thumbnail is made in two steps. [`plan`] reads only the
//! header and says how many bytes the decode will hold at most ([`Plan::memory`]); the caller
//! reserves that much of its process's budget, then [`make`] decodes under a hard limit of the
//! same size, so a header that lies cannot make the decoder allocate more (`image::Limits`,
//! jpeg-decoder's buffer limit).
//!
//! JPEGs, most of what datasets hold, go through jpeg-decoder, which scales while decoding (an
//! inverse DCT of 1/2, 1/4 or 1/8 of the blocks): a 4000×3000 baseline photo decodes straight
//! to 500×375, a sixty-fourth of its pixels, instead of 48 MB of them. A progressive JPEG still
//! keeps all its coefficients (two bytes per sample) until its last scan. PNG, GIF, WebP, BMP
//! and TIFF go through the `image` crate at full size and are then scaled down.
//!
//! Pure and synchronous: no I/O, no async; the caller runs [`make`] on a blocking thread.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, GenericImageView, ImageFormat, ImageReader};

/// The longest side of a thumbnail, in pixels.
pub const MAX_SIDE: u32 = 320;
/// Bumped whenever thumbnails are made differently: it is in their entity tag, and a stored
/// thumbnail of another version is made again.
pub const VERSION: u32 = 1;
/// JPEG quality of a thumbnail.
const QUALITY: u8 = 80;
/// Memory beyond the decoded pixels: the scaled copy, its RGB form and the encoder's output,
/// all at most `MAX_SIDE`² pixels.
const WORK_BYTES: u64 = 2 << 20;

/// Why no thumbnail can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThumbnailError {
    /// The bytes are not an image of a format thumbnails are made of, or are broken.
    #[error("image cannot be decoded: {0}")]
    Undecodable(String),
    /// Decoding it would take more memory than a thumbnail may.
    #[error(
        "image is {width}×{height} pixels: decoding it for a thumbnail needs {} MiB, more than the {} MiB \
         a thumbnail may take",
        need.div_ceil(1 << 20),
        limit >> 20
    )]
    TooLarge { width: u32, height: u32, need: u64, limit: u64 },
}

fn undecodable(err: impl std::fmt::Display) -> ThumbnailError {
    ThumbnailError::Undecodable(err.to_string())
}

/// How an image's thumbnail will be made, from its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    decoder: Decoder,
    /// Size as stored (before orientation).
    pub width: u32,
    pub height: u32,
    /// Bytes the decode holds at most: reserve them before [`make`], which stays within them.
    pub memory: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoder {
    /// jpeg-decoder, scaling to `MAX_SIDE` while decoding; the output buffer's size.
    Jpeg { output_bytes: u64 },
    /// The `image` crate at full size.
    Image(ImageFormat),
}

/// Reads the header of `bytes`, an image whose format the import found to be `format` (as
/// `ImageDoc::format` names it), and plans its thumbnail. Cheap: no pixel is decoded.
pub fn plan(bytes: &[u8], format: &str) -> Result<Plan, ThumbnailError> {
    let image_format = match format {
        "jpeg" | "mpo" => return plan_jpeg(bytes),
        "png" => ImageFormat::Png,
        "gif" => ImageFormat::Gif,
        "webp" => ImageFormat::WebP,
        "bmp" => ImageFormat::Bmp,
        "tiff" => ImageFormat::Tiff,
        "" | "unknown" => return Err(ThumbnailError::Undecodable("its bytes are not an image format".into())),
        other => return Err(ThumbnailError::Undecodable(format!("thumbnails are not made of {other} images"))),
    };
    let decoder = ImageReader::with_format(Cursor::new(bytes), image_format).into_decoder().map_err(undecodable)?;
    let (width, height) = image::ImageDecoder::dimensions(&decoder);
    let pixels = image::ImageDecoder::total_bytes(&decoder);
    // The decoders' own buffers (a GIF's frame, a TIFF's strip, a WebP's planes) come on top
    // of the pixels; a frame's worth is their most.
    let memory = pixels.saturating_mul(2).saturating_add(WORK_BYTES);
    Ok(Plan { decoder: Decoder::Image(image_format), width, height, memory })
}

fn plan_jpeg(bytes: &[u8]) -> Result<Plan, ThumbnailError> {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.read_info().map_err(undecodable)?;
    let info = decoder.info().ok_or_else(|| undecodable("no frame header"))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    let (out_width, out_height) = scale_to_fit(&mut decoder, width, height)?;
    let sample_bytes = info.pixel_format.pixel_bytes() as u64;
    let output_bytes = u64::from(out_width) * u64::from(out_height) * sample_bytes;
    // The scaled planes and the output buffer; a progressive image also keeps every
    // coefficient (64 of two bytes per 8×8 block of each component) until its last scan.
    let mut memory = 2 * output_bytes + WORK_BYTES;
    if info.coding_process == jpeg_decoder::CodingProcess::DctProgressive {
        let blocks = u64::from(width.div_ceil(16) * 2) * u64::from(height.div_ceil(16) * 2);
        memory += blocks * 64 * 2 * sample_bytes;
    }
    Ok(Plan { decoder: Decoder::Jpeg { output_bytes }, width, height, memory })
}

impl Plan {
    /// Refuses a plan that needs more than `limit` bytes.
    pub fn within(self, limit: u64) -> Result<Plan, ThumbnailError> {
        if self.memory > limit {
            return Err(ThumbnailError::TooLarge { width: self.width, height: self.height, need: self.memory, limit });
        }
        Ok(self)
    }
}

/// Makes the thumbnail `plan` describes of `bytes`: a JPEG whose longest side is at most
/// [`MAX_SIDE`], turned by `orientation` (the EXIF tag), marked with [`VERSION`].
pub fn make(bytes: &[u8], plan: &Plan, orientation: Option<u16>) -> Result<Vec<u8>, ThumbnailError> {
    let decoded = match plan.decoder {
        Decoder::Jpeg { output_bytes } => decode_jpeg(bytes, output_bytes)?,
        Decoder::Image(format) => {
            let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
            let mut limits = image::Limits::default();
            limits.max_alloc = Some(plan.memory);
            reader.limits(limits);
            reader.decode().map_err(undecodable)?
        }
    };
    // The size from the stored one, not from what a scaling decoder made of it (which rounds
    // its sides up), so that a thumbnail's size never depends on how it was decoded.
    let mut small = shrink(decoded, fitted(plan.width, plan.height));
    if let Some(orientation) = orientation.and_then(|o| u8::try_from(o).ok()).and_then(Orientation::from_exif) {
        small.apply_orientation(orientation);
    }
    encode(&small)
}

/// Asks `decoder` to scale (by 1/8 to 1) to the smallest size that still covers the thumbnail's
/// own ([`fitted`]): a 1280×720 frame decodes at 1/4 (320×180), not at the 1/2 that a square
/// 320×320 request would take; the decoder's output size.
fn scale_to_fit(
    decoder: &mut jpeg_decoder::Decoder<Cursor<&[u8]>>,
    width: u32,
    height: u32,
) -> Result<(u16, u16), ThumbnailError> {
    let (fit_width, fit_height) = fitted(width, height);
    let side = |n: u32| u16::try_from(n).unwrap_or(u16::MAX);
    decoder.scale(side(fit_width), side(fit_height)).map_err(undecodable)
}

/// Decodes a JPEG scaled (by 1/8 to 1) to the smallest size that still covers its thumbnail's,
/// as RGB or grey; its output may not exceed `output_bytes`.
fn decode_jpeg(bytes: &[u8], output_bytes: u64) -> Result<DynamicImage, ThumbnailError> {
    use jpeg_decoder::PixelFormat;
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.set_max_decoding_buffer_size(usize::try_from(output_bytes).unwrap_or(usize::MAX));
    decoder.read_info().map_err(undecodable)?;
    let info = decoder.info().ok_or_else(|| undecodable("no frame header"))?;
    let (width, height) = scale_to_fit(&mut decoder, u32::from(info.width), u32::from(info.height))?;
    let pixels = decoder.decode().map_err(undecodable)?;
    let info = decoder.info().ok_or_else(|| undecodable("no frame header"))?;
    let (width, height) = (u32::from(width), u32::from(height));
    let image = match info.pixel_format {
        PixelFormat::L8 => image::GrayImage::from_raw(width, height, pixels).map(DynamicImage::ImageLuma8),
        // Big-endian samples: their high byte is the 8-bit value.
        PixelFormat::L16 => {
            let high = pixels.chunks_exact(2).map(|sample| sample[0]).collect();
            image::GrayImage::from_raw(width, height, high).map(DynamicImage::ImageLuma8)
        }
        PixelFormat::RGB24 => image::RgbImage::from_raw(width, height, pixels).map(DynamicImage::ImageRgb8),
        PixelFormat::CMYK32 => {
            let rgb = pixels
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = 255 - u16::from(p[3]);
                    [p[0], p[1], p[2]].map(|c| ((255 - u16::from(c)) * k / 255) as u8)
                })
                .collect();
            image::RgbImage::from_raw(width, height, rgb).map(DynamicImage::ImageRgb8)
        }
    };
    image.ok_or_else(|| undecodable("the decoder's output does not match its size"))
}

/// The size that fits `(width, height)` within `MAX_SIDE`, never larger than it is.
pub fn fitted(width: u32, height: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= MAX_SIDE {
        return (width, height);
    }
    let scale = |side: u32| (u64::from(side) * u64::from(MAX_SIDE) + u64::from(longest) / 2) / u64::from(longest);
    (scale(width).max(1) as u32, scale(height).max(1) as u32)
}

/// `image` scaled to `(to_width, to_height)` (never larger than it is): averaging boxes of
/// pixels from far larger images (fast, and every pixel counts), a triangle filter from near
/// sizes (no aliasing).
fn shrink(image: DynamicImage, (to_width, to_height): (u32, u32)) -> DynamicImage {
    let (width, height) = image.dimensions();
    if (to_width, to_height) == (width, height) || to_width > width || to_height > height {
        image
    } else if width.max(height) > 2 * MAX_SIDE {
        image.thumbnail_exact(to_width, to_height)
    } else {
        image.resize_exact(to_width, to_height, image::imageops::FilterType::Triangle)
    }
}

/// Baseline JPEG of `image` (transparency flattened onto white), a comment naming the version
/// right after its start.
fn encode(image: &DynamicImage) -> Result<Vec<u8>, ThumbnailError> {
    let (width, height) = image.dimensions();
    let rgb: Vec<u8> = if image.color().has_alpha() {
        let white =
            |value: u8, alpha: u8| ((u16::from(value) * u16::from(alpha) + 255 * (255 - u16::from(alpha))) / 255) as u8;
        image.to_rgba8().pixels().flat_map(|p| [white(p[0], p[3]), white(p[1], p[3]), white(p[2], p[3])]).collect()
    } else {
        image.to_rgb8().into_raw()
    };
    let mut jpeg = Vec::with_capacity(rgb.len() / 8 + 1024);
    jpeg_encoder::Encoder::new(&mut jpeg, QUALITY)
        .encode(&rgb, width as u16, height as u16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| ThumbnailError::Undecodable(format!("encoding the thumbnail: {e}")))?;
    let marker = marker();
    let mut out = Vec::with_capacity(jpeg.len() + marker.len());
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&marker);
    out.extend_from_slice(&jpeg[2..]);
    Ok(out)
}

/// The COM segment that marks a thumbnail of this [`VERSION`].
fn marker() -> Vec<u8> {
    let text = format!("yds-thumbnail v{VERSION}");
    let length = (text.len() + 2) as u16;
    let mut segment = vec![0xFF, 0xFE];
    segment.extend_from_slice(&length.to_be_bytes());
    segment.extend_from_slice(text.as_bytes());
    segment
}

/// Whether `stored` is a whole thumbnail of this version: one made by [`make`] and stored in
/// full. The local store writes a new object in place, so a reader racing the first writer of
/// a thumbnail may see it short; such a read, or a thumbnail of another version, is made again.
pub fn is_current(stored: &[u8]) -> bool {
    let marker = marker();
    stored.len() > 2 + marker.len() + 2
        && stored[..2] == [0xFF, 0xD8]
        && stored[2..2 + marker.len()] == marker[..]
        && stored.ends_with(&[0xFF, 0xD9])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `width`×`height` picture: red left half, blue right half, a green top-left pixel block.
    fn picture(width: u32, height: u32) -> image::RgbImage {
        image::RgbImage::from_fn(width, height, |x, y| {
            if x < width / 8 && y < height / 8 {
                image::Rgb([0, 255, 0])
            } else if x < width / 2 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            }
        })
    }

    fn jpeg(width: u32, height: u32, progressive: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
        encoder.set_progressive(progressive);
        encoder
            .encode(picture(width, height).as_raw(), width as u16, height as u16, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    fn encoded(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    /// The thumbnail, decoded back: its size and pixels.
    fn thumbnail(bytes: &[u8], format: &str, orientation: Option<u16>) -> image::RgbImage {
        let plan = plan(bytes, format).unwrap();
        let made = make(bytes, &plan, orientation).unwrap();
        assert!(is_current(&made), "marked and whole");
        let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(&made));
        let pixels = decoder.decode().unwrap();
        let info = decoder.info().unwrap();
        assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::RGB24);
        image::RgbImage::from_raw(u32::from(info.width), u32::from(info.height), pixels).unwrap()
    }

    fn near(pixel: &image::Rgb<u8>, expected: [u8; 3]) -> bool {
        pixel.0.iter().zip(expected).all(|(a, b)| a.abs_diff(b) < 60)
    }

    #[test]
    fn sizes_fit_the_longest_side_and_are_never_enlarged() {
        assert_eq!(fitted(640, 480), (320, 240));
        assert_eq!(fitted(480, 640), (240, 320));
        assert_eq!(fitted(4000, 3000), (320, 240));
        assert_eq!(fitted(320, 10), (320, 10));
        assert_eq!(fitted(100, 50), (100, 50), "small images keep their size");
        assert_eq!(fitted(10_000, 1), (320, 1), "never a zero side");
    }

    #[test]
    fn every_format_gives_a_jpeg_of_the_right_size_and_colours() {
        let rgb = DynamicImage::ImageRgb8(picture(640, 480));
        let mut rgba = rgb.to_rgba8();
        rgba.put_pixel(639, 479, image::Rgba([0, 0, 0, 0]));
        let cases = [
            ("jpeg", jpeg(640, 480, false)),
            ("jpeg", jpeg(640, 480, true)),
            ("png", encoded(DynamicImage::ImageRgba8(rgba), ImageFormat::Png)),
            ("gif", encoded(rgb.clone(), ImageFormat::Gif)),
            ("webp", encoded(DynamicImage::ImageRgba8(rgb.to_rgba8()), ImageFormat::WebP)),
            ("bmp", encoded(rgb.clone(), ImageFormat::Bmp)),
            ("tiff", encoded(rgb.clone(), ImageFormat::Tiff)),
        ];
        for (format, bytes) in cases {
            let thumb = thumbnail(&bytes, format, None);
            assert_eq!(thumb.dimensions(), (320, 240), "{format}");
            assert!(near(thumb.get_pixel(2, 2), [0, 255, 0]), "{format}: green top left {:?}", thumb.get_pixel(2, 2));
            assert!(near(thumb.get_pixel(100, 200), [255, 0, 0]), "{format}: red left");
            assert!(near(thumb.get_pixel(300, 100), [0, 0, 255]), "{format}: blue right");
        }
    }

    #[test]
    fn large_jpegs_are_scaled_while_decoding_and_small_images_kept() {
        let big = jpeg(4000, 3000, false);
        let plan = plan(&big, "jpeg").unwrap();
        assert_eq!((plan.width, plan.height), (4000, 3000));
        // 500×375 RGB decoded, not 4000×3000: well under a megabyte of pixels besides the work.
        assert!(plan.memory < WORK_BYTES + (2 << 20), "{plan:?}");
        assert_eq!(thumbnail(&big, "jpeg", None).dimensions(), (320, 240));
        // Progressive: every coefficient is kept, two bytes a sample.
        let progressive = plan_jpeg(&jpeg(4000, 3000, true)).unwrap();
        assert!(progressive.memory > 4000 * 3000 * 2 * 3, "{progressive:?}");
        assert_eq!(thumbnail(&jpeg(200, 100, false), "jpeg", None).dimensions(), (200, 100), "not enlarged");
        // Odd sides: decoded at a quarter (250×94, rounded up) would not cover 320×120, so at
        // half (500×188), then scaled to the size the stored one fits, 320×120 (not 320×120.3
        // of the decoded, whatever its rounding).
        assert_eq!(thumbnail(&jpeg(999, 375, false), "jpeg", None).dimensions(), fitted(999, 375));
        assert_eq!(fitted(999, 375), (320, 120));
        // A landscape frame decodes at the scale its thumbnail needs: 1280×720 at 1/4, 320×180.
        let wide = plan_jpeg(&jpeg(1280, 720, false)).unwrap();
        assert!(matches!(wide.decoder, Decoder::Jpeg { output_bytes: 172_800 }), "{wide:?}");
        assert_eq!(thumbnail(&jpeg(1280, 720, false), "jpeg", None).dimensions(), (320, 180));
        let png = encoded(DynamicImage::ImageRgb8(picture(30, 20)), ImageFormat::Png);
        assert_eq!(thumbnail(&png, "png", None).dimensions(), (30, 20));
    }

    #[test]
    fn thumbnails_are_turned_as_the_image_is_displayed() {
        let bytes = jpeg(640, 480, false);
        // 6: the stored picture is displayed turned 90° clockwise; its top-left corner goes to
        // the top right.
        let turned = thumbnail(&bytes, "jpeg", Some(6));
        assert_eq!(turned.dimensions(), (240, 320));
        assert!(near(turned.get_pixel(237, 2), [0, 255, 0]), "{:?}", turned.get_pixel(237, 2));
        assert!(near(turned.get_pixel(100, 300), [0, 0, 255]), "the right half went to the bottom");
        // 3: upside down; 1 and unknown values: as stored.
        let upside_down = thumbnail(&bytes, "jpeg", Some(3));
        assert!(near(upside_down.get_pixel(317, 237), [0, 255, 0]));
        for as_stored in [Some(1), Some(0), Some(9), Some(300), None] {
            assert!(near(thumbnail(&bytes, "jpeg", as_stored).get_pixel(2, 2), [0, 255, 0]), "{as_stored:?}");
        }
    }

    #[test]
    fn broken_and_unknown_images_cannot_be_decoded() {
        let undecodable = |bytes: &[u8], format: &str| match plan(bytes, format).and_then(|p| make(bytes, &p, None)) {
            Err(ThumbnailError::Undecodable(why)) => why,
            other => panic!("{format}: {other:?}"),
        };
        assert!(undecodable(b"garbage", "unknown").contains("not an image format"));
        assert!(undecodable(b"garbage", "heic").contains("heic"));
        undecodable(b"\xff\xd8\xff\xe0 garbage", "jpeg");
        undecodable(b"\x89PNG\r\n\x1a\n garbage", "png");
        // A JPEG cut in half: the header reads, the scan does not.
        let whole = jpeg(640, 480, false);
        let cut = &whole[..whole.len() / 2];
        let plan = plan(cut, "jpeg").unwrap();
        match make(cut, &plan, None) {
            // jpeg-decoder fills a truncated scan with grey rather than failing; either is fine,
            // as long as nothing panics and a result is a whole thumbnail.
            Ok(made) => assert!(is_current(&made)),
            Err(err) => assert!(err.to_string().starts_with("image cannot be decoded"), "{err}"),
        }
        let err = ThumbnailError::Undecodable("x".into());
        assert_eq!(err.to_string(), "image cannot be decoded: x");
    }

    #[test]
    fn plans_over_the_limit_are_refused_and_the_decoder_holds_to_the_plan() {
        let png = encoded(DynamicImage::ImageRgb8(picture(2000, 1500)), ImageFormat::Png);
        let planned = plan(&png, "png").unwrap();
        assert_eq!(planned.memory, 2000 * 1500 * 3 * 2 + WORK_BYTES);
        let err = planned.clone().within(8 << 20).unwrap_err();
        assert!(matches!(err, ThumbnailError::TooLarge { width: 2000, height: 1500, .. }), "{err:?}");
        assert!(err.to_string().contains("2000×1500 pixels") && err.to_string().contains("8 MiB"), "{err}");
        assert_eq!(planned.clone().within(planned.memory).unwrap(), planned);
        // A plan that understates what the file needs (a header that lies) is held to.
        let lying = Plan { memory: 1 << 20, ..planned };
        assert!(matches!(make(&png, &lying, None), Err(ThumbnailError::Undecodable(_))));
        let big = jpeg(1600, 1200, false);
        let lying = Plan { decoder: Decoder::Jpeg { output_bytes: 1000 }, ..plan(&big, "jpeg").unwrap() };
        assert!(matches!(make(&big, &lying, None), Err(ThumbnailError::Undecodable(_))));
    }

    #[test]
    fn only_whole_thumbnails_of_this_version_are_current() {
        let made = thumbnail(&jpeg(64, 48, false), "jpeg", None);
        let bytes = make(&jpeg(64, 48, false), &plan(&jpeg(64, 48, false), "jpeg").unwrap(), None).unwrap();
        assert_eq!(made.dimensions(), (64, 48));
        assert!(is_current(&bytes));
        assert!(!is_current(&bytes[..bytes.len() - 1]), "cut short");
        assert!(!is_current(&jpeg(64, 48, false)), "a JPEG that is no thumbnail of ours");
        let mut other_version = bytes.clone();
        let digit = 2 + 4 + "yds-thumbnail v".len();
        assert_eq!(other_version[digit], b'1');
        other_version[digit] = b'0';
        assert!(!is_current(&other_version), "another version");
        assert!(!is_current(b""));
    }
}
