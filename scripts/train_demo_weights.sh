#!/usr/bin/env bash
# Reproduce the demo weights icnet_ros/data/icnet_demo_synthetic.safetensors (about 18 minutes
# on a 2-core CPU): train ICNet (width 0.25, 257x513 input) on synthetic street scenes with
# icnet-train and icnet_train/configs/demo_synthetic.yaml, export the deploy network (float32:
# 6.8 MB; float16 storage would cost about 1 mIoU point on these weights), and record its scores
# on 100 held-out synthetic frames (seeds 1000000..1000099) in the file's metadata
# (metrics.heldout_*).
#   scripts/train_demo_weights.sh [extra icnet-train flags, e.g. --iterations 50]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
RUN=${RUN:-runs/demo_weights}
OUT=${OUT:-icnet_ros/data/icnet_demo_synthetic.safetensors}
CONFIG=icnet_train/configs/demo_synthetic.yaml

"$PY" -m icnet_train train --config "$CONFIG" --output-dir "$RUN" "$@"
"$PY" -m icnet_train export --checkpoint "$RUN/checkpoint.pth" --output "$OUT"
"$PY" -m icnet_train evaluate --weights "$OUT" --config "$CONFIG" --no-progress --json "$RUN/heldout.json"
"$PY" - "$OUT" "$RUN/heldout.json" <<'PYTHON'
import json
import sys

from icnet_ros.weights.weight_file import load_model, save_weights

model, metadata = load_model(sys.argv[1])
heldout = json.loads(open(sys.argv[2]).read())
metadata.provenance.update(command="scripts/train_demo_weights.sh", config="icnet_train/configs/demo_synthetic.yaml")
metadata.metrics.update(heldout_miou=heldout["miou"], heldout_pixel_accuracy=heldout["pixel_accuracy"],
                        heldout_iou=heldout["iou"], heldout_images=heldout["images"],
                        heldout_input_size=heldout["input_size"],
                        heldout_set="synthetic street scenes, seeds 1000000.., 256x512 (icnet-train evaluate)")
save_weights(sys.argv[1], model, metadata)
print(f"wrote {sys.argv[1]}: held-out synthetic mIoU {100 * heldout['miou']:.2f} %, "
      f"pixel accuracy {100 * heldout['pixel_accuracy']:.2f} %")
PYTHON
