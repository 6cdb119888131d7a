"""Differential check: YDS' per-image verdicts against Ultralytics' own `verify_image_label`.

    python3 tools/ultralytics-diff/diff.py --tools DIR --yds URL --key KEY [--work DIR]

1. Writes the defect fixtures (fixtures.py) under --work.
2. Reference: on a copy of them (Ultralytics rewrites JPEGs it "restores"), lists each split's
   images the way Ultralytics' dataset does and runs the real, unmodified
   `ultralytics.data.utils.verify_image_label` on each, with the arguments YOLODataset passes.
3. Imports every dataset through the YDS HTTP API (a `file://` folder source), waits for the job
   and reads back every image.
4. Compares per image: `valid` == Ultralytics kept it; for kept images, the number of
   annotations == the number of label rows Ultralytics keeps (after removing repeats), and
   the size: YDS reports the displayed one and must warn exactly when the trainer's differs.
   Prints a table of mismatches and exits 1 if there is any.

--tools is the folder the pinned Ultralytics and its light dependencies were pip-installed into
(`cargo xtask conformance` does that). torch is replaced by torch_shim (see there).
"""

import argparse
import glob
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_ultralytics(tools):
    os.environ.setdefault("YOLO_CONFIG_DIR", str(Path(tools) / ".yolo-config"))
    os.environ["YOLO_AUTOINSTALL"] = "false"  # never pip-install anything while checking
    os.environ["YOLO_OFFLINE"] = "true"
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(tools))
    import torch_shim

    torch_shim.install()
    import ultralytics
    from ultralytics.data import utils

    return ultralytics.__version__, utils


def reference(utils, root, datasets):
    """{(dataset, split, file_name): {...}} from Ultralytics' verify_image_label."""
    results = {}
    for d in datasets:
        base = root / d.name
        nc = len(d.names)
        nkpt, ndim = d.kpt_shape or (0, 0)
        for split in ("train", "val"):
            split_dir = base / "images" / split
            # BaseDataset.get_img_files: every `*.*` under the folder whose suffix is in IMG_FORMATS.
            found = glob.glob(str(Path(glob.escape(split_dir)) / "**" / "*.*"), recursive=True)
            im_files = sorted(x for x in found if x.rpartition(".")[-1].lower() in utils.IMG_FORMATS)
            label_files = utils.img2label_paths(im_files)
            for im_file, lb_file in zip(im_files, label_files):
                args = (im_file, lb_file, "", d.task == "pose", nc, nkpt, ndim, False)
                im, lb, shape, segments, keypoints, nm, nf, ne, ncorrupt, msg = utils.verify_image_label(args)
                rel = os.path.relpath(im_file, split_dir)
                results[(d.name, split, rel)] = {
                    "valid": im is not None,
                    "instances": 0 if lb is None else len(lb),
                    "shape": None if shape is None else [int(shape[0]), int(shape[1])],  # (h, w)
                    "counters": f"nm={nm} nf={nf} ne={ne} nc={ncorrupt}",
                    "msg": msg.replace(im_file, "<img>").replace("\n", " ")[:160],
                }
    return results


class Yds:
    def __init__(self, url, key):
        self.url, self.key = url.rstrip("/"), key

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("x-api-key", self.key)
        request.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            raise SystemExit(f"{method} {path}: HTTP {e.code}: {e.read()[:500]!r}")

    def import_dataset(self, folder, name, task, timeout=300):
        started = self.call("POST", "/datasets/import", {"name": name, "archive_url": folder.as_uri() + "/", "task": task})
        deadline = time.time() + timeout
        while True:
            status = self.call("GET", f"/datasets/import/{started['job_id']}/status")
            if status["status"] not in ("queued", "running"):
                break
            if time.time() > deadline:
                raise SystemExit(f"import of {name} did not finish in {timeout} s: {status}")
            time.sleep(0.3)
        if status["status"] == "failed":
            raise SystemExit(f"import of {name} failed: {json.dumps(status)[:1000]}")
        images, cursor = [], None
        while True:
            query = f"?limit=1000" + (f"&cursor={cursor}" if cursor else "")
            page = self.call("GET", f"/datasets/{started['dataset_id']}/images{query}")
            images += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return status, images


SIZE_WARNINGS = ("exif_orientation_transpose", "exif_orientation_ignored")


def compare(ref, yds):
    rows = []
    for key in sorted(set(ref) | set(yds)):
        r, y = ref.get(key), yds.get(key)
        name = "/".join(key)
        if r is None:
            rows.append((name, "not an image", f"valid={y['valid']} n={len(y['annotations'])}", "", ""))
            continue
        if y is None:
            rows.append((name, f"valid={r['valid']} n={r['instances']}", "not an image", r["msg"], ""))
            continue
        # Findings about identical files (every fixture shares its pixels) are left out.
        codes = ",".join(sorted({i["code"] for i in y["issues"]} - {"duplicate_image", "cross_split_duplicate"}))
        if r["valid"] != y["valid"]:
            rows.append((name, f"valid={r['valid']} n={r['instances']}", f"valid={y['valid']} n={len(y['annotations'])}", r["msg"], codes))
        elif r["valid"] and r["instances"] != len(y["annotations"]):
            rows.append((name, f"n={r['instances']}", f"n={len(y['annotations'])}", r["msg"], codes))
        elif r["valid"]:
            # YDS reports the displayed size; where the trainer's size differs it must say so.
            trainer_hw, yds_hw = r["shape"], [y["height"], y["width"]]
            warned = any(c in codes.split(",") for c in SIZE_WARNINGS)
            if (trainer_hw != yds_hw) != warned:
                rows.append((name, f"size {trainer_hw[1]}x{trainer_hw[0]}", f"size {y['width']}x{y['height']}", "", codes))
    return rows


def table(rows, headers):
    widths = [min(70, max(len(str(x)) for x in col)) for col in zip(headers, *rows)]
    line = lambda cells: " | ".join(str(c)[:w].ljust(w) for c, w in zip(cells, widths))
    return "\n".join([line(headers), "-+-".join("-" * w for w in widths)] + [line(r) for r in rows])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tools", required=True, help="folder holding the pinned ultralytics install")
    parser.add_argument("--yds", help="YDS base URL, e.g. http://127.0.0.1:18080 (omit: reference only)")
    parser.add_argument("--key", default=os.environ.get("YDS_API_KEY", ""), help="x-api-key for YDS")
    parser.add_argument("--work", default="/tmp/yds-ultralytics-diff", help="scratch folder (emptied)")
    parser.add_argument("--json", help="also write the per-image results here")
    args = parser.parse_args()

    version, utils = load_ultralytics(args.tools)
    import fixtures

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    datasets = fixtures.build()
    fixtures.write(work / "fixtures", datasets)
    shutil.copytree(work / "fixtures", work / "reference-copy")
    ref = reference(utils, work / "reference-copy", datasets)
    kept = sum(r["valid"] for r in ref.values())
    print(f"ultralytics {version}: {len(ref)} images in {len(datasets)} datasets, {kept} kept, {len(ref) - kept} dropped")

    if not args.yds:
        for key, r in sorted(ref.items()):
            print("/".join(key), r)
        return 0
    yds = Yds(args.yds, args.key)
    got = {}
    for d in datasets:
        status, images = yds.import_dataset(work / "fixtures" / d.name, f"ultralytics-diff {d.name}", d.task)
        print(f"yds {d.name}: {status['status']}, {len(images)} images")
        for image in images:
            got[(d.name, image["split"], image["file_name"])] = image
    rows = compare(ref, got)
    if args.json:
        out = {"/".join(k): {"reference": ref.get(k), "yds_valid": got.get(k, {}).get("valid")} for k in set(ref) | set(got)}
        Path(args.json).write_text(json.dumps(out, indent=1, sort_keys=True))
    if rows:
        print(f"\n{len(rows)} mismatches:\n")
        print(table(rows, ("image", "ultralytics", "yds", "ultralytics message", "yds issue codes")))
        return 1
    print(f"no mismatch: {len(ref)} images agree (verdict and instance count)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
