"""Which views a multi-label classifier should read to decide the classes of an image: macro F1
on a VALIDATION split for several view sets (mirror image, rescaled copies), each with the
class threshold chosen on that split as validation chooses it (`LabelThreshold`).

    python benchmarks/decision_views.py --ckpt CKPT --root FOLDER [--output FILE.json]

The view set `ShapeClassifier.decision_logits` reads (`MULTI_LABEL_VIEW_SCALES`, mirrored) is
marked; every row is computed by the function that method calls, `view_mean_logits`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch
from multi_label_run import load_multi_label_run
from tqdm import tqdm

from lit_gradcam.classifier.labels import LabelThreshold
from lit_gradcam.classifier.model import MULTI_LABEL_VIEW_SCALES, view_mean_logits

#: (scales, with mirror images) of every view set compared.
VIEW_SETS = [
    ((1.0,), False),
    ((1.0,), True),
    ((1.25,), False),
    ((1.25,), True),
    ((1.0, 1.125), True),
    ((1.0, 1.25), True),
    ((1.0, 1.125, 1.25), True),
    ((0.875, 1.0, 1.25), True),
]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, help="a multi-label classifier's checkpoint")
    parser.add_argument("--root", required=True, help="its folder; its val split is read")
    parser.add_argument("--output", help="JSON file for the table")
    parser.add_argument("--checkpoint-command", help="how the checkpoint was made, for the file")
    args = parser.parse_args(argv)
    model, data = load_multi_label_run(args.ckpt, args.root)
    chosen = (tuple(MULTI_LABEL_VIEW_SCALES), True)
    thresholds = {views: LabelThreshold(model.hparams.empty_images) for views in VIEW_SETS}
    with torch.no_grad():
        for images, labels, _ in tqdm(data.val_dataloader(), desc="val batches"):
            for scales, mirror in VIEW_SETS:
                logits = view_mean_logits(model, images, scales, mirror)
                thresholds[(scales, mirror)].update(logits, labels)
    rows = []
    for views, metric in thresholds.items():
        result = {k: round(float(v), 4) for k, v in metric.compute().items()}
        scales, mirror = views
        name = " + ".join(f"x{s:g}" for s in scales) + (", mirrored too" if mirror else "")
        rows.append({"views": name, "chosen": views == chosen, **result})
        mark = "  <- decision_logits" if views == chosen else ""
        print(f"{name:32s} F1 {result['f1']:.4f}  exact {result['exact_match']:.3f}{mark}")
    record = {
        "command": shlex.join(["python", "benchmarks/decision_views.py", *(argv or sys.argv[1:])]),
        "what": "multi-label macro F1 and exact-match share on the VALIDATION split, the class "
        "threshold chosen on it for each view set",
        "checkpoint": args.ckpt,
        "checkpoint_command": args.checkpoint_command,
        "folder": args.root,
        "rows": rows,
    }
    if args.output:
        Path(args.output).write_text(json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    main()
