#!/usr/bin/env bash
# `masa eval` end to end: py-motmetrics' own test sequences (TUD-Campus, TUD-Stadtmitte, shipped in
# the motmetrics package) must give the numbers its tests expect (formats-metrics.md), in both
# CLEAR conventions; TAO and BDD100K files are read and scored; bad input gives clear errors.
# Usage: cli_eval.sh MASA_BINARY SOURCE_DIR
set -u
masa=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
py=/usr/bin/python3
[ -x "$src/.venv/bin/python" ] && py="$src/.venv/bin/python"
. "$src/tests/lib_cli.sh"
# json_check NAME FILE PYTHON_EXPR: EXPR over `j` (the metrics JSON) must be true.
json_check() {
  if "$py" -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ($3) else 1)" "$2"; then
    echo "  $1: PASS"
  else
    echo "  $1: FAIL"
    fail=1
  fi
}

# --- TUD sequences from py-motmetrics' package data.
mmdata=$("$py" -c "import motmetrics, os; print(os.path.join(os.path.dirname(motmetrics.__file__), 'data'))" 2>/dev/null)
if [ -z "$mmdata" ] || [ ! -f "$mmdata/TUD-Campus/gt.txt" ]; then
  echo "  motmetrics test data: FAIL (motmetrics not importable by $py; run tools/setup.sh)"
  fail=1
else
  mkdir -p "$tmp/tud/res"
  for s in TUD-Campus TUD-Stadtmitte; do
    mkdir -p "$tmp/tud/gt/$s/gt"
    cp "$mmdata/$s/gt.txt" "$tmp/tud/gt/$s/gt/gt.txt"
    cp "$mmdata/$s/test.txt" "$tmp/tud/res/$s.txt"
  done
  for conv in trackeval motmetrics; do
    expect "TUD ($conv conventions) prints a table" 0 "COMBINED" -- \
      "$masa" eval --benchmark mot --gt "$tmp/tud/gt" --results "$tmp/tud/res" --mot-variant MOT15 \
      --conventions $conv --out "$tmp/tud_$conv.json"
    # motmetrics' tests: MOTA 0.526462 / 0.564014, IDF1 0.557659 / 0.644619 (6 decimals).
    json_check "TUD-Campus MOTA 0.526462, IDF1 0.557659 ($conv)" "$tmp/tud_$conv.json" \
      "abs(j['sequences']['TUD-Campus']['CLEAR']['MOTA'] - 0.526462) < 5e-7 and abs(j['sequences']['TUD-Campus']['Identity']['IDF1'] - 0.557659) < 5e-7"
    json_check "TUD-Stadtmitte MOTA 0.564014, IDF1 0.644619 ($conv)" "$tmp/tud_$conv.json" \
      "abs(j['sequences']['TUD-Stadtmitte']['CLEAR']['MOTA'] - 0.564014) < 5e-7 and abs(j['sequences']['TUD-Stadtmitte']['Identity']['IDF1'] - 0.644619) < 5e-7"
  done
fi

# --- TAO: a perfect tracker scores TETA 1; a wrong class lowers ClsA only.
cat >"$tmp/tao_gt.json" <<'JSON'
{"videos": [{"id": 1, "name": "v1", "width": 640, "height": 480}],
 "images": [{"id": 11, "video_id": 1, "frame_index": 0, "file_name": "a.jpg", "width": 640, "height": 480},
            {"id": 12, "video_id": 1, "frame_index": 30, "file_name": "b.jpg", "width": 640, "height": 480}],
 "tracks": [{"id": 5, "category_id": 3, "video_id": 1}, {"id": 6, "category_id": 4, "video_id": 1}],
 "categories": [{"id": 3, "name": "cat"}, {"id": 4, "name": "dog"}],
 "annotations": [
  {"id": 1, "image_id": 11, "video_id": 1, "track_id": 5, "category_id": 3, "bbox": [10, 10, 50, 40], "area": 2000, "iscrowd": 0},
  {"id": 2, "image_id": 12, "video_id": 1, "track_id": 5, "category_id": 3, "bbox": [14, 10, 50, 40], "area": 2000, "iscrowd": 0},
  {"id": 3, "image_id": 11, "video_id": 1, "track_id": 6, "category_id": 4, "bbox": [300, 200, 60, 60], "area": 3600, "iscrowd": 0},
  {"id": 4, "image_id": 12, "video_id": 1, "track_id": 6, "category_id": 4, "bbox": [310, 200, 60, 60], "area": 3600, "iscrowd": 0}]}
JSON
"$py" - "$tmp/tao_gt.json" "$tmp/tao_res.json" "$tmp/tao_res_wrong.json" <<'PY'
import json, sys
gt = json.load(open(sys.argv[1]))
res = [{"image_id": a["image_id"], "video_id": 1, "category_id": a["category_id"], "track_id": 100 + a["track_id"],
        "bbox": a["bbox"], "score": 0.9} for a in gt["annotations"]]
json.dump(res, open(sys.argv[2], "w"))
for r in res:
    if r["track_id"] == 106:
        r["category_id"] = 3
json.dump(res, open(sys.argv[3], "w"))
PY
expect "TAO perfect tracker" 0 "CLASS_AVG" -- "$masa" eval --benchmark tao --gt "$tmp/tao_gt.json" --results "$tmp/tao_res.json" --out "$tmp/tao.json"
json_check "TAO perfect tracker: TETA = LocA = AssocA = ClsA = 1" "$tmp/tao.json" \
  "all(abs(j['class_average']['TETA'][k] - 1) < 1e-12 for k in ['TETA', 'LocA', 'AssocA', 'ClsA'])"
expect "TAO wrong class" 0 "CLASS_AVG" -- "$masa" eval --benchmark tao --gt "$tmp/tao_gt.json" --results "$tmp/tao_res_wrong.json" --out "$tmp/tao_w.json"
json_check "TAO wrong class: ClsA 0.25, TETA 0.75" "$tmp/tao_w.json" \
  "abs(j['class_average']['TETA']['ClsA'] - 0.25) < 1e-12 and abs(j['class_average']['TETA']['TETA'] - 0.75) < 1e-12"

# --- BDD100K: one video, a car tracked perfectly, a pedestrian missed, a prediction inside a crowd
# region (removed) and one outside (FP).
mkdir -p "$tmp/bdd/gt" "$tmp/bdd/res"
cat >"$tmp/bdd/gt/v1.json" <<'JSON'
[{"name": "v1-1.jpg", "videoName": "v1", "frameIndex": 0, "labels": [
   {"id": "a", "category": "car", "attributes": {"crowd": false}, "box2d": {"x1": 0, "y1": 0, "x2": 100, "y2": 50}},
   {"id": "b", "category": "pedestrian", "attributes": {"crowd": false}, "box2d": {"x1": 400, "y1": 0, "x2": 420, "y2": 60}},
   {"id": "c", "category": "other vehicle", "attributes": {"crowd": false}, "box2d": {"x1": 600, "y1": 300, "x2": 700, "y2": 400}}]},
 {"name": "v1-2.jpg", "videoName": "v1", "frameIndex": 1, "labels": [
   {"id": "a", "category": "car", "attributes": {"crowd": false}, "box2d": {"x1": 5, "y1": 0, "x2": 105, "y2": 50}}]}]
JSON
cat >"$tmp/bdd/res/v1.json" <<'JSON'
[{"name": "v1-1.jpg", "videoName": "v1", "frameIndex": 0, "labels": [
   {"id": "1", "category": "car", "score": 0.9, "box2d": {"x1": 0, "y1": 0, "x2": 100, "y2": 50}},
   {"id": "2", "category": "car", "score": 0.5, "box2d": {"x1": 610, "y1": 310, "x2": 650, "y2": 350}},
   {"id": "3", "category": "car", "score": 0.5, "box2d": {"x1": 200, "y1": 200, "x2": 240, "y2": 240}}]},
 {"name": "v1-2.jpg", "videoName": "v1", "frameIndex": 1, "labels": [
   {"id": "1", "category": "car", "score": 0.9, "box2d": {"x1": 5, "y1": 0, "x2": 105, "y2": 50}}]}]
JSON
expect "BDD100K video" 0 "DET_AVG" -- "$masa" eval --benchmark bdd --gt "$tmp/bdd/gt" --results "$tmp/bdd/res" --out "$tmp/bdd.json"
json_check "BDD100K: car TP 2, FP 1 (crowd-region box removed); pedestrian FN 1; mMOTA = MOTA(car) / 8 (TrackEval averages all 8 classes), MOTA 1/3" "$tmp/bdd.json" \
  "j['classes']['car']['CLEAR']['CLR_TP'] == 2 and j['classes']['car']['CLEAR']['CLR_FP'] == 1 and j['classes']['pedestrian']['CLEAR']['CLR_FN'] == 1 and abs(j['class_average']['CLEAR']['MOTA'] - 0.5 / 8) < 1e-12 and abs(j['combined']['CLEAR']['MOTA'] - 1 / 3) < 1e-12"

expect "BDD100K with TETA" 0 "DET_AVG" -- "$masa" eval --benchmark bdd --gt "$tmp/bdd/gt" --results "$tmp/bdd/res" --metrics clear,teta --out "$tmp/bdd_teta.json"
# car: LocA 1, AssocA 1, ClsA 2/(2+2) (two car boxes outside every car cluster are class FPs on
# exhaustively labelled BDD100K); pedestrian: nothing found. Class average over the two: TETA 5/12.
json_check "BDD100K TETA: class average 5/12 over car and pedestrian" "$tmp/bdd_teta.json" \
  "abs(j['classes']['car']['TETA']['ClsA'] - 0.5) < 1e-12 and abs(j['class_average']['TETA']['TETA'] - 5 / 12) < 1e-12"

# --- errors
expect "eval without --gt" 1 "required" -- "$masa" eval --benchmark mot --results "$tmp"
expect "unknown benchmark" 1 "expected mot, tao or bdd" -- "$masa" eval --benchmark kitti --gt "$tmp" --results "$tmp"
expect "unknown metric" 1 "unknown metric 'mota'" -- "$masa" eval --benchmark mot --gt "$tmp" --results "$tmp" --metrics mota
mkdir -p "$tmp/bad/gt/S1/gt" "$tmp/bad/res"
printf '1,1,10,10,20,20,1,1,1\n' >"$tmp/bad/gt/S1/gt/gt.txt"
expect "missing results file is named" 1 "S1.txt: results file missing" -- "$masa" eval --benchmark mot --gt "$tmp/bad/gt" --results "$tmp/bad/res"
printf '1,1,10,10,20,x,1,-1,-1,-1\n' >"$tmp/bad/res/S1.txt"
expect "malformed results line is named" 1 "S1.txt:1: field 6 is not a number" -- "$masa" eval --benchmark mot --gt "$tmp/bad/gt" --results "$tmp/bad/res"
printf '1,1,10,10,20,20,1,-1,-1,-1\n1,1,10,10,20,20,1,-1,-1,-1\n' >"$tmp/bad/res/S1.txt"
expect "duplicate id in a frame" 1 "id 1 more than once in frame 1" -- "$masa" eval --benchmark mot --gt "$tmp/bad/gt" --results "$tmp/bad/res"
echo '{"videos": []' >"$tmp/bad.json"
expect "malformed TAO JSON" 1 "bad.json: malformed JSON" -- "$masa" eval --benchmark tao --gt "$tmp/bad.json" --results "$tmp/bad.json"

if [ $fail -ne 0 ]; then echo "cli_eval: FAILED"; exit 1; fi
echo "cli_eval: all passed"
