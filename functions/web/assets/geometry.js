// Pure annotation geometry, class palette and image facts (no DOM): overlay.js draws what this
// computes, and the Node smoke check tests it.

/** COCO's 17-keypoint skeleton, 0-based pairs (Ultralytics' 1-based list minus one). */
export const COCO_SKELETON = [
  [15, 13], [13, 11], [16, 14], [14, 12], [11, 12], [5, 11], [6, 12], [5, 6], [5, 7],
  [6, 8], [7, 9], [8, 10], [1, 2], [0, 1], [0, 2], [1, 3], [2, 4], [3, 5], [4, 6],
];

// --- palette -------------------------------------------------------------------------------

function oklchToSrgb(L, C, hDeg) {
  const hr = (hDeg * Math.PI) / 180;
  const a = C * Math.cos(hr);
  const b = C * Math.sin(hr);
  const l = (L + 0.3963377774 * a + 0.2158037573 * b) ** 3;
  const m = (L - 0.1055613458 * a - 0.0638541728 * b) ** 3;
  const s = (L - 0.0894841775 * a - 1.291485548 * b) ** 3;
  const lin = [
    4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s,
    -1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s,
    -0.0041960863 * l - 0.7034186147 * m + 1.707614701 * s,
  ];
  return lin.map((x) => (x <= 0.0031308 ? 12.92 * x : 1.055 * x ** (1 / 2.4) - 0.055));
}

const colorCache = new Map();

/**
 * The colour of a class: hues spread by the golden angle (neighbouring ids differ strongly) at
 * one perceptual lightness (OKLCH L=0.62), which keeps at least 3:1 against both the light and the
 * dark page background. Deterministic: the same id has the same colour everywhere.
 */
export function classColor(classId) {
  const id = Number.isFinite(Number(classId)) ? Math.abs(Math.trunc(Number(classId))) : 0;
  let hex = colorCache.get(id);
  if (hex) return hex;
  const hue = (id * 137.50776 + 28) % 360;
  let chroma = 0.17;
  let rgb = oklchToSrgb(0.62, chroma, hue);
  // Pull chroma in until the colour is inside sRGB, so hue and lightness stay true.
  while (rgb.some((c) => c < 0 || c > 1) && chroma > 0) {
    chroma -= 0.005;
    rgb = oklchToSrgb(0.62, chroma, hue);
  }
  hex = `#${rgb.map((c) => Math.round(Math.min(1, Math.max(0, c)) * 255).toString(16).padStart(2, "0")).join("")}`;
  colorCache.set(id, hex);
  return hex;
}

/** WCAG relative luminance of "#rrggbb" (for the smoke check and label halos). */
export function luminance(hex) {
  const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
  const lin = c.map((v) => (v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
  return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
}

export function contrast(hexA, hexB) {
  const [a, b] = [luminance(hexA), luminance(hexB)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}

// --- geometry ------------------------------------------------------------------------------

const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);

function validPoints(list) {
  if (!Array.isArray(list)) return [];
  return list.filter((p) => Array.isArray(p) && num(p[0]) !== null && num(p[1]) !== null);
}

/** "x,y x,y …" for an SVG points attribute. */
export function pointsAttr(points) {
  return points.map(([x, y]) => `${+x.toFixed(2)},${+y.toFixed(2)}`).join(" ");
}

function boxOf(bbox, W, H) {
  if (!Array.isArray(bbox) || bbox.length < 4 || bbox.slice(0, 4).some((v) => num(v) === null)) return null;
  const [cx, cy, w, h] = bbox;
  return { x: (cx - w / 2) * W, y: (cy - h / 2) * H, w: w * W, h: h * H };
}

function topLeft(points) {
  let best = points[0];
  for (const p of points) if (p[1] < best[1] || (p[1] === best[1] && p[0] < best[0])) best = p;
  return { x: best[0], y: best[1] };
}

/**
 * What to draw for one annotation, in viewBox units (the image's displayed W×H pixels).
 * kind: "rect" (detect), "polygon" (segment, obb), "pose" (bbox + skeleton + keypoints) or
 * "none" (no usable coordinates: still drawn as an empty element so counts match the API).
 */
export function annotationGeometry(ann, W, H, kptShape) {
  if (!ann || typeof ann !== "object") return { kind: "none" };
  const obb = validPoints(ann.obb);
  if (obb.length >= 3) {
    const points = obb.map(([x, y]) => [x * W, y * H]);
    return { kind: "polygon", shape: "obb", points, label: topLeft(points) };
  }
  const polygon = validPoints(ann.polygon);
  if (polygon.length >= 3) {
    const points = polygon.map(([x, y]) => [x * W, y * H]);
    return { kind: "polygon", shape: "segment", points, label: topLeft(points) };
  }
  const box = boxOf(ann.bbox, W, H);
  if (Array.isArray(ann.keypoints)) {
    const kps = ann.keypoints.map((k, i) => {
      const x = Array.isArray(k) ? num(k[0]) : null;
      const y = Array.isArray(k) ? num(k[1]) : null;
      const v = Array.isArray(k) && k.length > 2 ? num(k[2]) : null;
      // v = 0 is "not labelled"; a 2-dim keypoint at exactly (0, 0) is YOLO's missing point.
      const visible = x !== null && y !== null && v !== 0 && !(v === null && x === 0 && y === 0);
      return { i, x: (x ?? 0) * W, y: (y ?? 0) * H, visible };
    });
    const lines = [];
    const kCount = Array.isArray(kptShape) ? kptShape[0] : kps.length;
    if (kCount === 17 && kps.length >= 17) {
      for (const [a, b] of COCO_SKELETON) {
        if (kps[a].visible && kps[b].visible) lines.push([kps[a].x, kps[a].y, kps[b].x, kps[b].y]);
      }
    }
    const label = box ? { x: box.x, y: box.y } : kps.find((k) => k.visible) || { x: 0, y: 0 };
    return { kind: "pose", box, points: kps.filter((k) => k.visible), lines, label };
  }
  if (box) return { kind: "rect", ...box, label: { x: box.x, y: box.y } };
  if (polygon.length) {
    const points = polygon.map(([x, y]) => [x * W, y * H]);
    return { kind: "polygon", shape: "segment", points, label: topLeft(points) };
  }
  return { kind: "none" };
}

/** Shoelace area of normalized points (fraction of the image). */
export function polygonArea(points) {
  const p = validPoints(points);
  let sum = 0;
  for (let i = 0; i < p.length; i += 1) {
    const [x1, y1] = p[i];
    const [x2, y2] = p[(i + 1) % p.length];
    sum += x1 * y2 - x2 * y1;
  }
  return Math.abs(sum) / 2;
}

/** Area of an annotation as a fraction of the image (0..1), or null when it has no shape. */
export function annotationArea(ann) {
  if (!ann) return null;
  if (validPoints(ann.obb).length >= 3) return polygonArea(ann.obb);
  if (validPoints(ann.polygon).length >= 3) return polygonArea(ann.polygon);
  if (Array.isArray(ann.bbox) && ann.bbox.length >= 4) return Math.abs(ann.bbox[2] * ann.bbox[3]);
  return null;
}

// --- images --------------------------------------------------------------------------------

/** Issue codes saying the image's bytes cannot be decoded: no preview is requested for them
 * (a failing <img> is logged as a console error by browsers). */
export const UNREADABLE_CODES = new Set(["corrupt_image", "image_unreadable", "unsupported_format", "jpeg_truncated"]);

// Formats the images function makes thumbnails of (functions/images/src/thumbnail.rs); the
// rest get a placeholder.
const THUMBNAIL_FORMATS = new Set(["jpeg", "mpo", "png", "gif", "webp", "bmp", "tiff"]);
// Non-JPEG thumbnails decode at full size within 96 MiB (pixels twice over): about 12 Mpx of
// RGBA. A larger one would answer 422, which the browser logs, so it is not asked for.
const MAX_FULL_DECODE_PIXELS = 12_000_000;
const BROWSER_FORMATS = new Set(["jpeg", "mpo", "png", "gif", "webp", "bmp", "avif"]);

/** The issue code that makes an image unreadable, or null. */
export function unreadableCode(img) {
  const issue = (img?.issues || []).find((i) => UNREADABLE_CODES.has(i.code));
  return issue ? issue.code : null;
}

/** Why an image gets a placeholder instead of its thumbnail (null: show the thumbnail). */
export function noPreviewReason(img) {
  const code = unreadableCode(img);
  if (code) return code;
  if (!img?.thumbnail_url) return "no_preview";
  if (!img.width || !img.height) return "no_size";
  const format = String(img.format).toLowerCase();
  if (!THUMBNAIL_FORMATS.has(format)) return `${img.format || "unknown"}_format`;
  if (format !== "jpeg" && format !== "mpo" && img.width * img.height > MAX_FULL_DECODE_PIXELS) return "too_large_for_preview";
  return null;
}

/** Whether browsers decode the original file's format (and its bytes are readable). */
export function browserFormat(img) {
  return !unreadableCode(img) && BROWSER_FORMATS.has(String(img?.format).toLowerCase());
}

/** "a.jpg — 3 annotations: cat, dog" (distinct class names, in first-seen order). */
export function imageAlt(img) {
  const anns = img?.annotations || [];
  const names = [...new Set(anns.map((a) => a.class_name ?? `class ${a.class_id}`))];
  const count = anns.length === 1 ? "1 annotation" : `${anns.length} annotations`;
  const list = names.length ? ": " + names.join(", ") : "";
  return `${img?.file_name ?? "image"} — ${count}${list}`;
}

/** The viewBox size of an image: its displayed size, or 1×1 when unknown (normalized coords). */
export function viewSize(img) {
  const W = Number(img?.width) > 0 ? Number(img.width) : 1;
  const H = Number(img?.height) > 0 ? Number(img.height) : 1;
  return { W, H };
}
