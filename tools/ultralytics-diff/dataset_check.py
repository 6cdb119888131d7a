"""Ultralytics' own view of a YOLO dataset on disk: per split, the images it finds and keeps, and
their instances.

    python3 tools/ultralytics-diff/dataset_check.py --tools DIR [--task TASK] DATA_YAML

Uses the pinned Ultralytics (`--tools`, the folder `cargo xtask conformance` or `cargo xtask test`
installs it into) and, unmodified:
- `ultralytics.data.utils.check_det_dataset` to read and resolve the YAML (train and val
  required; split paths relative to `path:`, or to the YAML's folder when there is none);
- `BaseDataset.get_img_files` to list each split's images;
- `img2label_paths` and `verify_image_label`, with the arguments `YOLODataset` passes, on each.

Prints one JSON line: `{split: {"images_found", "images_kept", "instances"}}` for train, val and
test when the YAML names them. The exit status is 1 when Ultralytics refuses the YAML.

Only `check_font` (which downloads a font for plots at the end of `check_det_dataset`) is
replaced by a no-op, and torch by `torch_shim` (see there). `verify_image_label` rewrites a JPEG
it restores: run this on a copy when the bytes matter.
"""

import argparse
import json
import os
import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tools", required=True, help="folder holding the pinned ultralytics install")
    parser.add_argument("--task", default="detect", choices=["detect", "segment", "pose", "obb"])
    parser.add_argument("data_yaml")
    args = parser.parse_args()

    os.environ["YOLO_VERBOSE"] = "False"  # Ultralytics logs to stdout: keep it for the JSON
    sys.path.insert(0, str(HERE))
    from diff import load_ultralytics

    _, utils = load_ultralytics(args.tools)
    from ultralytics.data.base import BaseDataset

    utils.check_font = lambda *a, **k: None
    try:
        data = utils.check_det_dataset(str(Path(args.data_yaml).resolve()), autodownload=False)
    except Exception as e:  # what Ultralytics says about the YAML is the result
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        return 1

    nc = len(data["names"])
    nkpt, ndim = data.get("kpt_shape") or (0, 0)
    lister = types.SimpleNamespace(prefix="", fraction=1.0)
    result = {}
    for split in ("train", "val", "test"):
        if not data.get(split):
            continue
        try:
            im_files = BaseDataset.get_img_files(lister, data[split])
        except FileNotFoundError:
            im_files = []  # no images: the dataset class would refuse the split
        kept = instances = 0
        for im_file, lb_file in zip(im_files, utils.img2label_paths(im_files)):
            im, lb, *_ = utils.verify_image_label((im_file, lb_file, "", args.task == "pose", nc, nkpt, ndim, False))
            if im is not None:
                kept += 1
                instances += len(lb)
        result[split] = {"images_found": len(im_files), "images_kept": kept, "instances": instances}
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
