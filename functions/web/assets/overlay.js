// SVG overlays of annotations. One element carrying data-annotation per annotation (a pose is a
// <g> whose children carry nothing), so tests can count them against the API. Coordinates are
// the image's displayed pixels (viewBox 0 0 W H); strokes are screen pixels (non-scaling), and
// sizes that must stay constant on screen (label text, keypoint radius) scale with --k, the
// viewBox units per screen pixel, which CSS derives or the page sets.

import { s } from "./dom.js";
import { annotationGeometry, classColor, pointsAttr, viewSize } from "./geometry.js";

const NSS = "non-scaling-stroke";
const r2 = (v) => +v.toFixed(2);

function className(ann) {
  return ann.class_name ?? `class ${ann.class_id}`;
}

function drawOne(ann, index, W, H, kptShape, withTitles) {
  const g = annotationGeometry(ann, W, H, kptShape);
  const color = classColor(ann.class_id);
  const common = {
    "data-annotation": index,
    "data-class-id": ann.class_id ?? "",
    stroke: color,
  };
  const title = withTitles ? s("title", null, className(ann)) : null;
  let el;
  if (g.kind === "rect") {
    el = s("rect", { ...common, class: "ann ann-box", x: r2(g.x), y: r2(g.y), width: r2(Math.max(0, g.w)), height: r2(Math.max(0, g.h)), fill: color, "vector-effect": NSS }, title);
  } else if (g.kind === "polygon") {
    el = s("polygon", { ...common, class: `ann ann-${g.shape}`, points: pointsAttr(g.points), fill: color, "vector-effect": NSS }, title);
  } else if (g.kind === "pose") {
    const parts = [title];
    if (g.box) {
      parts.push(s("rect", { class: "pose-box", x: r2(g.box.x), y: r2(g.box.y), width: r2(Math.max(0, g.box.w)), height: r2(Math.max(0, g.box.h)), fill: "none", "vector-effect": NSS }));
    }
    for (const [x1, y1, x2, y2] of g.lines) {
      parts.push(s("line", { class: "pose-bone", x1: r2(x1), y1: r2(y1), x2: r2(x2), y2: r2(y2), "vector-effect": NSS }));
    }
    for (const p of g.points) {
      // r is a fallback; CSS sets r from --k so dots keep their on-screen size.
      parts.push(s("circle", { class: "pose-kpt", cx: r2(p.x), cy: r2(p.y), r: r2(Math.max(W, H) / 120), fill: color, "data-kpt": p.i }));
    }
    el = s("g", { ...common, class: "ann ann-pose" }, parts);
  } else {
    // No usable coordinates: keep an (empty) element so the count still matches the API.
    el = s("g", { ...common, class: "ann ann-empty" }, title);
  }
  const label = g.kind === "none" ? null
    : s("text", { class: "ann-label", x: r2(g.label.x), y: r2(g.label.y), "data-class-id": ann.class_id ?? "", stroke: color }, className(ann));
  return { el, label };
}

/**
 * The overlay of an image. `kptShape` picks the pose skeleton; `titles` adds hover titles
 * (the full-size view only: thumbnails do not need them).
 */
export function overlay(img, { kptShape = null, titles = false } = {}) {
  const { W, H } = viewSize(img);
  const shapes = s("g", { class: "anns" });
  const labels = s("g", { class: "ann-labels" });
  (img.annotations || []).forEach((ann, i) => {
    const { el, label } = drawOne(ann, i, W, H, kptShape, titles);
    shapes.appendChild(el);
    if (label) labels.appendChild(label);
  });
  return s("svg", {
    class: "overlay",
    viewBox: `0 0 ${W} ${H}`,
    preserveAspectRatio: "xMidYMid meet",
    "aria-hidden": "true",
    focusable: "false",
    vars: { "--m": Math.max(W, H) },
  }, shapes, labels);
}
