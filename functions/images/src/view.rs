//! The API's Image object, from an image's record and its signed URLs, and the media type of
//! its file.

use serde_json::{json, Value};
use yds_store::ImageDoc;

/// An image's expiring URLs, usable without an API key (`<img src>`).
pub struct Urls {
    /// Its bytes: the storage's own signed URL, or this function's `/file` route, signed.
    pub file: String,
    /// This function's `/thumbnail` route, signed.
    pub thumbnail: String,
}

/// The Image object of `GET /datasets/{id}/images` and `GET /datasets/{id}/images/{image_id}`.
pub fn image(image: &ImageDoc, urls: &Urls) -> Value {
    json!({
        "id": image.id,
        "file_name": image.file_name,
        "split": image.split,
        "width": image.width,
        "height": image.height,
        "stored_width": image.stored_width,
        "stored_height": image.stored_height,
        "exif_orientation": image.orientation,
        "format": image.format,
        "size_bytes": image.size_bytes,
        "content_hash": image.content_hash,
        "valid": image.valid,
        "annotations": image.annotations,
        "issues": image.issues,
        // The label file as imported (`/label`), or null: a background image.
        "label": image.label,
        "file_url": urls.file,
        "thumbnail_url": urls.thumbnail,
    })
}

/// The media type of an image `format` (as [`ImageDoc::format`] names it); files whose format
/// is unknown (corrupt ones) are plain bytes.
pub fn media_type(format: &str) -> &'static str {
    match format {
        "jpeg" | "mpo" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "tiff" => "image/tiff",
        "dng" => "image/x-adobe-dng",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "avif" => "image/avif",
        "jpeg2000" => "image/jp2",
        _ => "application/octet-stream",
    }
}
