#!/usr/bin/env bash
# `masa track` end to end: a synthetic MOTChallenge video (`masa synth --video`) tracked with the
# colour-histogram embedder and with the IoU baseline, scored by `masa eval --benchmark mot`;
# --draw frames; the same detections given as COCO results and as BDD100K JSON (and the frames as
# a plain folder) must give the same tracks; TAO / BDD outputs; bad input gives clear errors.
# Bounds: measured on this video (seed 3, 2 x 50 frames): histogram MOTA 0.653, IDF1 0.822, HOTA
# 0.638; IoU MOTA 0.669, IDF1 0.834, HOTA 0.645. The synthetic detections miss boxes and add
# false positives (FN 85, FP 78-85 against 493 ground-truth boxes), which caps MOTA near 0.67;
# the bounds sit ~0.1 below the measured values.
# Usage: cli_track.sh MASA_BINARY SOURCE_DIR
set -u
masa=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
py=/usr/bin/python3
[ -x "$src/.venv/bin/python" ] && py="$src/.venv/bin/python"
. "$src/tests/lib_cli.sh"
check() {  # check NAME PYTHON_EXPR [ARGS...]: the expression (with sys.argv) must be true
  local name=$1 expr=$2
  shift 2
  if "$py" -c "import json, sys; sys.exit(0 if ($expr) else 1)" "$@"; then
    echo "  $name: PASS"
  else
    echo "  $name: FAIL"
    fail=1
  fi
}

gt=$tmp/syn
"$masa" synth "$gt" --video --seqs 2 --frames 50 --seed 3 --log-level warn || { echo "  synth: FAIL"; exit 1; }
mkdir -p "$tmp/hist" "$tmp/iou"
for s in SYN-01 SYN-02; do
  draw=()
  [ $s = SYN-01 ] && draw=(--draw "$tmp/draw")
  expect "track $s (histogram)" 0 "boxes in" -- "$masa" track --frames "$gt/$s" --out "$tmp/hist/$s.txt" \
    --embedder histogram "${draw[@]}" --threads 1
  expect "track $s (IoU baseline)" 0 "tracker iou on tao" -- "$masa" track --frames "$gt/$s" \
    --out "$tmp/iou/$s.txt" --embedder iou --threads 1
done
for e in hist iou; do
  expect "eval $e prints HOTA / MOTA / IDF1" 0 "COMBINED" -- "$masa" eval --benchmark mot --gt "$gt" \
    --results "$tmp/$e" --out "$tmp/$e.json"
  "$masa" eval --benchmark mot --gt "$gt" --results "$tmp/$e" 2>/dev/null | grep -E "HOTA|COMBINED" | sed "s/^/    $e: /"
done
check "histogram: MOTA > 0.55, IDF1 > 0.72, HOTA > 0.54" \
  "(lambda c: c['CLEAR']['MOTA'] > 0.55 and c['Identity']['IDF1'] > 0.72 and c['HOTA']['HOTA'] > 0.54)(json.load(open(sys.argv[1]))['combined'])" "$tmp/hist.json"
check "IoU baseline: MOTA > 0.56, IDF1 > 0.73, HOTA > 0.54" \
  "(lambda c: c['CLEAR']['MOTA'] > 0.56 and c['Identity']['IDF1'] > 0.73 and c['HOTA']['HOTA'] > 0.54)(json.load(open(sys.argv[1]))['combined'])" "$tmp/iou.json"
n=$(ls "$tmp/draw" 2>/dev/null | grep -c '\.jpg$')
if [ "$n" -eq 50 ]; then echo "  --draw wrote 50 frames: PASS"; else echo "  --draw wrote $n frames, want 50: FAIL"; fail=1; fi

# The same detections as COCO results (image_id = frame number) and as BDD100K frames; the frames
# as a plain image folder. Same tracks expected (scores and boxes survive the text round trip).
s=SYN-01
"$py" - "$gt/$s/det/det.txt" "$tmp/dets_coco.json" "$tmp/dets_bdd.json" <<'EOF'
import json, sys
rows = [l.strip().split(",") for l in open(sys.argv[1]) if l.strip()]
coco = [{"image_id": int(r[0]), "category_id": 1, "bbox": [float(x) for x in r[2:6]], "score": float(r[6])} for r in rows]
json.dump(coco, open(sys.argv[2], "w"))
frames = {}
for r in rows:
    x, y, w, h = (float(v) for v in r[2:6])
    frames.setdefault(int(r[0]), []).append({"category": "pedestrian", "score": float(r[6]),
                                             "box2d": {"x1": x, "y1": y, "x2": x + w, "y2": y + h}})
bdd = [{"name": "%06d.jpg" % f, "videoName": "SYN-01", "frameIndex": f - 1, "labels": frames.get(f, [])}
       for f in range(1, 51)]
json.dump(bdd, open(sys.argv[3], "w"))
EOF
expect "COCO-results detections" 0 "boxes in" -- "$masa" track --frames "$gt/$s/img1" --dets "$tmp/dets_coco.json" \
  --out "$tmp/coco.txt" --embedder histogram
expect "BDD100K detections, BDD output" 0 "BDD100K" -- "$masa" track --frames "$gt/$s" --dets "$tmp/dets_bdd.json" \
  --out "$tmp/bdd.json" --embedder histogram
expect "TAO output" 0 "(TAO)" -- "$masa" track --frames "$gt/$s" --out "$tmp/tao.json" --embedder histogram
check "COCO input (plain image folder) gives the same tracks as det.txt" \
  "open(sys.argv[1]).read() == open(sys.argv[2]).read()" "$tmp/coco.txt" "$tmp/hist/$s.txt"
check "BDD output: same boxes and ids as the MOT file, 50 frames" \
  "(lambda b, m: len(b) == 50 and sorted((f['frameIndex'] + 1, int(l['id']), round(l['box2d']['x1'], 2)) for f in b for l in f['labels']) == sorted((int(r[0]), int(r[1]), float(r[2])) for r in m))(json.load(open(sys.argv[1])), [l.split(',') for l in open(sys.argv[2])])" \
  "$tmp/bdd.json" "$tmp/hist/$s.txt"
check "TAO output: one result per MOT row, image_id = frame, track_id = id" \
  "(lambda t, m: sorted((d['image_id'], d['track_id']) for d in t) == sorted((int(r[0]), int(r[1])) for r in m))(json.load(open(sys.argv[1])), [l.split(',') for l in open(sys.argv[2])])" \
  "$tmp/tao.json" "$tmp/hist/$s.txt"

# Recipes and settings.
for c in track_tao track_bdd track_demo; do
  expect "--config configs/$c.cfg" 0 "boxes in" -- "$masa" track --config "$src/configs/$c.cfg" --frames "$gt/$s" \
    --out "$tmp/$c.txt"
done
expect "long memory via --set" 0 "boxes in" -- "$masa" track --frames "$gt/$s" --out "$tmp/m300.txt" \
  --set track.tao.memo_tracklet_frames=300 --set track.tracker=bdd
# MASA's own detector (random weights: the boxes are meaningless, the path is what is tested).
"$masa" init --config "$src/configs/demo.cfg" --out "$tmp/w.h5" --log-level warn
expect "no --dets on an image folder: MASA detects" 0 "MASA's own detector" -- "$masa" track --frames "$gt/$s/img1" \
  --weights "$tmp/w.h5" --config "$src/configs/demo.cfg" --out "$tmp/self.txt"
expect "--dets masa on a MOT sequence" 0 "MASA's own detector" -- "$masa" track --frames "$gt/$s" --dets masa \
  --weights "$tmp/w.h5" --config "$src/configs/demo.cfg" --out "$tmp/self2.txt"
"$masa" init --config "$src/configs/demo.cfg" --set model.bbox_head=none --out "$tmp/nobox.h5" --log-level warn
expect "self-detection needs a box head" 1 "needs a recipe with model.rpn" -- "$masa" track --frames "$gt/$s" \
  --dets masa --weights "$tmp/nobox.h5" --config "$src/configs/demo.cfg" --set model.bbox_head=none --out "$tmp/x.txt"
# Errors.
expect "unknown key" 1 "track.nope" -- "$masa" track --frames "$gt/$s" --out "$tmp/x.txt" --set track.nope=1
expect "bad tracker name" 1 "track.tracker" -- "$masa" track --frames "$gt/$s" --out "$tmp/x.txt" --set track.tracker=sort
expect "bad embedder" 1 "expected masa, histogram or iou" -- "$masa" track --frames "$gt/$s" --out "$tmp/x.txt" --embedder sift
expect "masa embedder without weights" 1 "needs --weights" -- "$masa" track --frames "$gt/$s" --out "$tmp/x.txt" --embedder masa
expect "missing --out" 1 "required" -- "$masa" track --frames "$gt/$s"
expect "plain folder without --dets" 1 "--dets is required" -- "$masa" track --frames "$gt/$s/img1" --out "$tmp/x.txt"
expect "missing frames folder" 1 "not a folder" -- "$masa" track --frames "$tmp/nope" --out "$tmp/x.txt"
echo '[{"image_id": 1, "bbox": [1, 2]}]' > "$tmp/bad.json"
expect "malformed COCO result names file and record" 1 "bad.json: result 0" -- "$masa" track --frames "$gt/$s" \
  --dets "$tmp/bad.json" --out "$tmp/x.txt"
exit $fail
