//! Pixels and encoders for the synthetic images: a cheap gradient with a filled rectangle
//! where each box is, encoded as a real JPEG or PNG.
//!
//! Kept deliberately cheap (one pass over a few thousand pixels, fast PNG compression) so a
//! benchmark can write 100 000 images in seconds. Never used for anything but test data.

use anyhow::Context;

/// An RGB8 picture in row-major order.
pub(crate) struct Picture {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Picture {
    /// A diagonal gradient starting from `base`, so two pictures rarely share bytes.
    pub fn gradient(width: u32, height: u32, base: [u8; 3]) -> Picture {
        let (w, h) = (width as usize, height as usize);
        let mut rgb = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            let gy = (y * 160 / h.max(1)) as u8;
            for x in 0..w {
                let gx = (x * 160 / w.max(1)) as u8;
                rgb.push(base[0].wrapping_add(gx));
                rgb.push(base[1].wrapping_add(gy));
                rgb.push(base[2].wrapping_add(gx / 2).wrapping_add(gy / 2));
            }
        }
        Picture { width, height, rgb }
    }

    /// Fills the normalized YOLO box `[cx, cy, w, h]` with `color`.
    pub fn fill_box(&mut self, bbox: [f64; 4], color: [u8; 3]) {
        let (w, h) = (self.width as f64, self.height as f64);
        let x0 = ((bbox[0] - bbox[2] / 2.0) * w).floor().max(0.0) as usize;
        let x1 = ((bbox[0] + bbox[2] / 2.0) * w).ceil().min(w) as usize;
        let y0 = ((bbox[1] - bbox[3] / 2.0) * h).floor().max(0.0) as usize;
        let y1 = ((bbox[1] + bbox[3] / 2.0) * h).ceil().min(h) as usize;
        let stride = self.width as usize * 3;
        for y in y0..y1 {
            for x in x0..x1 {
                let at = y * stride + x * 3;
                self.rgb[at..at + 3].copy_from_slice(&color);
            }
        }
    }

    /// Baseline JPEG (SOF0), quality 80, 4:2:0.
    pub fn to_jpeg(&self) -> anyhow::Result<Vec<u8>> {
        let width = u16::try_from(self.width).context("JPEG width above 65535")?;
        let height = u16::try_from(self.height).context("JPEG height above 65535")?;
        let mut out = Vec::with_capacity(self.rgb.len() / 4 + 700);
        jpeg_encoder::Encoder::new(&mut out, 80)
            .encode(&self.rgb, width, height, jpeg_encoder::ColorType::Rgb)
            .context("encoding JPEG")?;
        Ok(out)
    }

    /// 8-bit RGB PNG, quickly compressed.
    pub fn to_png(&self) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.rgb.len() / 2 + 100);
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        // zlib level 1 over Sub-filtered rows: the gradient rows become near-constant, so this
        // is both the smallest and (in unoptimized test builds) the fastest of png's choices.
        encoder.set_deflate_compression(png::DeflateCompression::Level(1));
        encoder.set_filter(png::Filter::Sub);
        let mut writer = encoder.write_header().context("encoding PNG header")?;
        writer.write_image_data(&self.rgb).context("encoding PNG data")?;
        writer.finish().context("finishing PNG")?;
        Ok(out)
    }
}
