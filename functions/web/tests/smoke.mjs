// Smoke check of the pure modules, with Node alone: `node functions/web/tests/smoke.mjs`.
// (No DOM is touched when these modules load; the browser tests cover the pages.)
import assert from "node:assert/strict";
import { apiQuery, filtersToSearch, parseFilters, queryKey } from "../assets/filters.js";
import { fmtBytes, fmtDuration, fmtInt, round4, timeAgo } from "../assets/format.js";
import {
  annotationArea, annotationGeometry, classColor, contrast, imageAlt, noPreviewReason, polygonArea, viewSize,
} from "../assets/geometry.js";
import { estimate } from "../assets/jobs.js";
import { parseRoute } from "../assets/router.js";

let passed = 0;
const test = (name, fn) => {
  fn();
  passed += 1;
};

test("palette: deterministic, distinct neighbours, 3:1 on both page backgrounds", () => {
  assert.equal(classColor(3), classColor(3));
  const colors = Array.from({ length: 80 }, (_, i) => classColor(i));
  assert.ok(colors.every((c) => /^#[0-9a-f]{6}$/.test(c)));
  assert.equal(new Set(colors.slice(0, 20)).size, 20);
  for (const c of colors) {
    // The light and dark page backgrounds and card surfaces of style.css.
    for (const bg of ["#ffffff", "#f6f7f9", "#0e1014", "#161920"]) {
      assert.ok(contrast(c, bg) >= 3, `${c} on ${bg}: ${contrast(c, bg)}`);
    }
  }
});

test("geometry: detect, segment, obb, pose", () => {
  const rect = annotationGeometry({ class_id: 0, bbox: [0.5, 0.5, 0.2, 0.4] }, 100, 50, null);
  assert.deepEqual([rect.kind, rect.x, rect.y, rect.w, rect.h], ["rect", 40, 15, 20, 20]);
  const seg = annotationGeometry({ polygon: [[0, 0], [1, 0], [1, 1]], bbox: [0.5, 0.5, 1, 1] }, 10, 10, null);
  assert.equal(seg.kind, "polygon");
  assert.deepEqual(seg.points, [[0, 0], [10, 0], [10, 10]]);
  const obb = annotationGeometry({ obb: [[0, 0], [1, 0], [1, 1], [0, 1]] }, 2, 3, null);
  assert.deepEqual([obb.kind, obb.shape, obb.points[2]], ["polygon", "obb", [2, 3]]);
  const kps = Array.from({ length: 17 }, (_, i) => [i / 20, i / 20, i === 0 ? 0 : 2]);
  const pose = annotationGeometry({ bbox: [0.5, 0.5, 1, 1], keypoints: kps }, 100, 100, [17, 3]);
  assert.equal(pose.kind, "pose");
  assert.equal(pose.points.length, 16, "v=0 is not drawn");
  assert.ok(pose.lines.length > 0 && pose.lines.length < 19, "bones touching keypoint 0 are skipped");
  const noSkeleton = annotationGeometry({ bbox: [0.5, 0.5, 1, 1], keypoints: kps.slice(0, 5) }, 100, 100, [5, 3]);
  assert.equal(noSkeleton.lines.length, 0);
  const twoDims = annotationGeometry({ bbox: [0.5, 0.5, 1, 1], keypoints: [[0, 0], [0.5, 0.5]] }, 10, 10, [2, 2]);
  assert.equal(twoDims.points.length, 1, "(0, 0) is a missing 2-dim keypoint");
  assert.equal(annotationGeometry({ class_id: 1 }, 10, 10, null).kind, "none");
});

test("areas", () => {
  assert.equal(polygonArea([[0, 0], [1, 0], [1, 1], [0, 1]]), 1);
  assert.equal(annotationArea({ bbox: [0.5, 0.5, 0.5, 0.5] }), 0.25);
  assert.equal(annotationArea({ obb: [[0, 0], [0.5, 0], [0.5, 0.5], [0, 0.5]] }), 0.25);
  assert.equal(annotationArea({}), null);
});

test("images: alt text, previews, view size", () => {
  const img = { file_name: "a.jpg", annotations: [{ class_name: "cat" }, { class_name: "dog" }, { class_name: "cat" }] };
  assert.equal(imageAlt(img), "a.jpg — 3 annotations: cat, dog");
  assert.equal(imageAlt({ file_name: "b.jpg", annotations: [] }), "b.jpg — 0 annotations");
  const ok = { format: "jpeg", width: 10, height: 10, thumbnail_url: "/t", issues: [] };
  assert.equal(noPreviewReason(ok), null);
  assert.equal(noPreviewReason({ ...ok, issues: [{ code: "corrupt_image" }] }), "corrupt_image");
  assert.equal(noPreviewReason({ ...ok, thumbnail_url: undefined }), "no_preview");
  assert.deepEqual(viewSize({ width: 0, height: 0 }), { W: 1, H: 1 });
});

test("filters: URL ↔ API query", () => {
  const f = parseFilters("?class=cat&split=val&valid=false&issue=x&bogus=1");
  assert.deepEqual(f, { split: "val", class: "cat", valid: "false", issue: "x" });
  assert.equal(filtersToSearch(f), "?split=val&class=cat&valid=false&issue=x");
  assert.equal(filtersToSearch({}), "");
  assert.deepEqual(parseFilters("?valid=maybe"), {});
  assert.deepEqual(apiQuery(f, ["dog", "cat"]), { query: { split: "val", valid: "false", issue: "x", class_id: 1 }, unknownClass: false });
  assert.equal(apiQuery({ class: "eel" }, ["dog"]).unknownClass, true);
  assert.equal(queryKey("d", { b: 1, a: 2 }), "d?a=2&b=1");
});

test("routes", () => {
  assert.deepEqual(parseRoute("/ui/"), { name: "datasets" });
  assert.deepEqual(parseRoute("/ui"), { name: "datasets" });
  assert.deepEqual(parseRoute("/ui/datasets/a%20b"), { name: "dataset", id: "a b" });
  assert.deepEqual(parseRoute("/ui/datasets/d/images/i"), { name: "image", id: "d", imageId: "i" });
  assert.equal(parseRoute("/ui/nope").name, "notfound");
});

test("formatting and job estimates", () => {
  assert.equal(fmtInt(1234567), "1,234,567");
  assert.equal(fmtBytes(2048), "2.0 KB");
  assert.equal(fmtDuration(75), "1 min 15 s");
  assert.equal(round4(0.123456), 0.1235);
  assert.equal(timeAgo(new Date(Date.now() - 3 * 60000).toISOString()), "3 min ago");
  const job = { progress: { files_total: 1000, files_done: 300 } };
  const e = estimate([{ t: 0, done: 100 }, { t: 2000, done: 300 }], job);
  assert.equal(e.rate, 100);
  assert.equal(e.eta, 7);
  assert.deepEqual(estimate([{ t: 0, done: 0 }], job), { rate: null, eta: null });
});

console.log(`smoke: ${passed} passed, 0 failed`);
