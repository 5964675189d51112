"""Oracle for test_metrics: random tracking cases scored by the reference implementations.

Writes, next to the output path OUT.h5, a directory OUT/ holding
  te/gt/SEQ/{gt/gt.txt,seqinfo.ini}, te/trackers/res/SEQ.txt   MOT17-style cases (distractor
      classes, zero flags, crowds, ties, IoUs at the 0.5 boundary) scored by TrackEval's
      MotChallenge2DBox + CLEAR / Identity / HOTA;
  mm/gt/..., mm/trackers/res/...                                 MOT15-style cases (no classes)
      scored by py-motmetrics (compare_to_groundtruth + compute_many) and by TrackEval (MOT15);
  bdd/gt/VIDEO.json, bdd/res/VIDEO.json                          BDD100K cases scored by TrackEval's
      BDD100K dataset (ignore regions, per class, class / detection averages);
  expected.json                                                  everything the C test compares,
      plus random cost matrices with their scipy linear_sum_assignment solutions.
OUT.h5 gets the case counts (the C test checks them). Seed: MASA_SEED (default 1234).
"""
import contextlib
import io
import json
import os
import shutil
import sys

import h5py
import numpy as np
from scipy.optimize import linear_sum_assignment

import motmetrics as mm
import trackeval

Q = 16.0  # boxes on a 1/16 px grid: exact in text, float32 and double, so IoU ties are exact


def q(x):
    return np.round(np.asarray(x, dtype=float) * Q) / Q


def box_with_iou_near(box, target, rng):
    """A box near `box` (x, y, w, h) whose IoU with it is about `target` (shifted along x)."""
    x, y, w, h = box
    # IoU of a pure x-shift d: (w - d) / (w + d) -> d = w (1 - t) / (1 + t)
    d = w * (1 - target) / (1 + target)
    sgn = 1 if rng.random() < 0.5 else -1
    return q([x + sgn * d, y, w, h])


def make_case(rng, kind):
    """Returns (num_frames, gt_rows, res_rows); gt rows are 9 columns, res rows 10."""
    F = int(rng.integers(6, 36))
    K = int(rng.integers(0, 9)) if kind != "empty_gt" else 0
    crowd = rng.random() < 0.3
    gt, res = [], []
    next_pred_id = 1
    objects = []
    for k in range(K):
        s = int(rng.integers(1, F + 1))
        e = int(rng.integers(s, F + 1))
        if crowd:
            x0, y0 = rng.uniform(100, 180), rng.uniform(100, 160)
        else:
            x0, y0 = rng.uniform(0, 800), rng.uniform(0, 500)
        w, h = rng.uniform(20, 90), rng.uniform(40, 160)
        vx, vy = rng.uniform(-4, 4), rng.uniform(-3, 3)
        cls, flag = 1, 1
        if kind == "mot17":
            u = rng.random()
            if u < 0.08:
                cls = int(rng.choice([2, 7, 8, 12]))
            elif u < 0.12:
                cls = int(rng.choice([3, 4, 5, 6, 9, 10, 11, 13]))
            if rng.random() < 0.07:
                flag = 0
        vis = round(float(rng.uniform(0, 1)), 2)
        track = {}
        for t in range(s, e + 1):
            if rng.random() < 0.08:  # occlusion gap: gt absent
                continue
            b = q([x0 + vx * t, y0 + vy * t, w, h])
            track[t] = b
            gt.append([t, k + 1, *b, flag, cls if kind == "mot17" else -1, vis if kind == "mot17" else -1])
        objects.append(track)
    # Predictions: one track per object with misses, jitter around the IoU thresholds, id
    # switches (swap between two tracks) and re-identifications (new id after a gap).
    pred_ids = {}
    for k, track in enumerate(objects):
        pred_ids[k] = next_pred_id
        next_pred_id += 1
    p_det = rng.uniform(0.55, 1.0)
    swaps = {}
    if len(objects) >= 2 and rng.random() < 0.6:
        for _ in range(int(rng.integers(1, 3))):
            a, b = rng.choice(len(objects), 2, replace=False)
            swaps.setdefault(int(rng.integers(1, F + 1)), []).append((int(a), int(b)))
    for t in range(1, F + 1):
        for a, b in swaps.get(t, []):
            pred_ids[a], pred_ids[b] = pred_ids[b], pred_ids[a]
        for k, track in enumerate(objects):
            if rng.random() < 0.03:  # new id for the rest of the track
                pred_ids[k] = next_pred_id
                next_pred_id += 1
            if t not in track or rng.random() > p_det:
                continue
            u = rng.random()
            if u < 0.5:
                target = rng.uniform(0.75, 1.0)
            elif u < 0.8:
                target = float(rng.choice([0.5, 0.5, rng.uniform(0.45, 0.55)]))
            elif u < 0.9:
                target = float(rng.choice([0.05, 0.1, 0.25, 0.3, 0.7, 0.95]))
            else:
                target = rng.uniform(0.0, 0.45)
            b = box_with_iou_near(track[t], target, rng)
            res.append([t, pred_ids[k], *b, round(float(rng.uniform(0.3, 1)), 3), -1, -1, -1])
            if rng.random() < 0.04:  # duplicate box under another id: exact ties
                res.append([t, 1000 + k, *b, 0.5, -1, -1, -1])
    # False positives, some persistent.
    for _ in range(int(rng.integers(0, 4))):
        pid = next_pred_id
        next_pred_id += 1
        s = int(rng.integers(1, F + 1))
        x, y = rng.uniform(0, 800), rng.uniform(0, 500)
        for t in range(s, min(F, s + int(rng.integers(0, 6))) + 1):
            res.append([t, pid, *q([x + t, y, 40, 80]), 0.4, -1, -1, -1])
    if kind == "empty_res":
        res = []
    # File order: by frame, shuffled within frame (tie-breaking follows file order).
    rng.shuffle(gt)
    rng.shuffle(res)
    gt.sort(key=lambda r: r[0])
    res.sort(key=lambda r: r[0])
    return F, gt, res


def fmt_row(r, n):
    out = []
    for i, v in enumerate(r[:n]):
        if i in (0, 1) or float(v).is_integer():
            out.append(str(int(v)))
        else:
            out.append(repr(float(v)))
    return ",".join(out)


def write_mot(root, seq, F, gt, res):
    os.makedirs(f"{root}/gt/{seq}/gt", exist_ok=True)
    os.makedirs(f"{root}/trackers/res", exist_ok=True)
    with open(f"{root}/gt/{seq}/gt/gt.txt", "w") as f:
        for r in gt:
            f.write(fmt_row(r, 9) + "\n")
    with open(f"{root}/gt/{seq}/seqinfo.ini", "w") as f:
        f.write(f"[Sequence]\nname={seq}\nimDir=img1\nframeRate=30\nseqLength={F}\n"
                "imWidth=1920\nimHeight=1080\nimExt=.jpg\n")
    with open(f"{root}/trackers/res/{seq}.txt", "w") as f:
        for r in res:
            f.write(fmt_row(r, 10) + "\n")


def to_py(v):
    if isinstance(v, np.ndarray):
        return [float(x) for x in v]
    return float(v)


CLEAR_F = ["MOTA", "MOTP", "MODA", "CLR_Re", "CLR_Pr", "MTR", "PTR", "MLR", "sMOTA", "CLR_F1",
           "FP_per_frame", "MOTAL", "MOTP_sum", "CLR_TP", "CLR_FN", "CLR_FP", "IDSW", "MT", "PT", "ML",
           "Frag", "CLR_Frames"]
ID_F = ["IDF1", "IDR", "IDP", "IDTP", "IDFN", "IDFP"]
HOTA_A = ["HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA", "OWTA", "HOTA_TP",
          "HOTA_FN", "HOTA_FP"]


def te_json(clear, ident, hota):
    return {
        "CLEAR": {k: to_py(clear[k]) for k in CLEAR_F},
        "Identity": {k: to_py(ident[k]) for k in ID_F},
        "HOTA": {**{k: to_py(hota[k]) for k in HOTA_A},
                 **{k: to_py(hota[k]) for k in ["HOTA(0)", "LocA(0)", "HOTALocA(0)"]}},
    }


def trackeval_mot(root, seqs, benchmark):
    cfg = trackeval.datasets.MotChallenge2DBox.get_default_dataset_config()
    cfg.update({"GT_FOLDER": f"{root}/gt", "TRACKERS_FOLDER": f"{root}/trackers", "TRACKERS_TO_EVAL": ["res"],
                "TRACKER_SUB_FOLDER": "", "SKIP_SPLIT_FOL": True, "BENCHMARK": benchmark,
                "SEQ_INFO": {s: None for s in seqs}, "PRINT_CONFIG": False})
    ds = trackeval.datasets.MotChallenge2DBox(cfg)
    metrics = [trackeval.metrics.CLEAR({"PRINT_CONFIG": False}), trackeval.metrics.Identity({"PRINT_CONFIG": False}),
               trackeval.metrics.HOTA()]
    per = {m.get_name(): {} for m in metrics}
    out = {}
    for s in seqs:
        raw = ds.get_raw_seq_data("res", s)
        data = ds.get_preprocessed_seq_data(raw, "pedestrian")
        for m in metrics:
            per[m.get_name()][s] = m.eval_sequence(data)
        out[s] = te_json(per["CLEAR"][s], per["Identity"][s], per["HOTA"][s])
    comb = {m.get_name(): m.combine_sequences(per[m.get_name()]) for m in metrics}
    out["COMBINED"] = te_json(comb["CLEAR"], comb["Identity"], comb["HOTA"])
    return out


def motmetrics_mot(root, seqs):
    accs = []
    for s in seqs:
        gt = mm.io.loadtxt(f"{root}/gt/{s}/gt/gt.txt", fmt="mot15-2D", min_confidence=1)
        dt = mm.io.loadtxt(f"{root}/trackers/res/{s}.txt", fmt="mot15-2D")
        accs.append(mm.utils.compare_to_groundtruth(gt, dt, "iou", distth=0.5))
    names = ["num_objects", "num_matches", "num_switches", "num_false_positives", "num_misses",
             "num_fragmentations", "mostly_tracked", "partially_tracked", "mostly_lost", "mota", "motp",
             "idf1", "idp", "idr", "idtp", "idfn", "idfp"]
    mh = mm.metrics.create()
    df = mh.compute_many(accs, metrics=names, names=seqs, generate_overall=True)
    out = {}
    for s in seqs + ["OVERALL"]:
        out["COMBINED" if s == "OVERALL" else s] = {n: float(df.loc[s, n]) for n in names}
    return out


def bdd_case(rng, vid):
    """A BDD100K video: a few classes, ignore regions (other person / trailer / crowd), FPs."""
    F = int(rng.integers(4, 20))
    cats = ["pedestrian", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"]
    frames_gt = [{"name": f"{vid}-{t:07d}.jpg", "videoName": vid, "frameIndex": t, "labels": []} for t in range(F)]
    frames_res = [{"name": f"{vid}-{t:07d}.jpg", "videoName": vid, "frameIndex": t, "labels": []} for t in range(F)]
    nid = 1
    for k in range(int(rng.integers(0, 7))):
        cat = str(rng.choice(cats[:5] + ["car", "car", "pedestrian"]))
        x, y, w, h = rng.uniform(0, 900), rng.uniform(0, 500), rng.uniform(20, 120), rng.uniform(20, 120)
        s = int(rng.integers(0, F))
        e = int(rng.integers(s, F))
        pid = nid
        nid += 1
        for t in range(s, e + 1):
            b = q([x + 2 * t, y, w, h])
            frames_gt[t]["labels"].append({"id": f"{k + 1:08d}", "category": cat, "attributes": {
                "occluded": False, "truncated": False, "crowd": False},
                "box2d": {"x1": b[0], "y1": b[1], "x2": b[0] + b[2], "y2": b[1] + b[3]}})
            if rng.random() < 0.8:
                u = rng.random()
                pcat = cat if u < 0.9 else str(rng.choice(cats))
                if rng.random() < 0.05:
                    pid = nid
                    nid += 1
                pb = box_with_iou_near(b, float(rng.choice([rng.uniform(0.6, 1), 0.5, rng.uniform(0.3, 0.6)])), rng)
                frames_res[t]["labels"].append({"id": str(pid), "category": pcat, "score": 0.9,
                                                "box2d": {"x1": pb[0], "y1": pb[1], "x2": pb[0] + pb[2],
                                                          "y2": pb[1] + pb[3]}})
    # Ignore regions, with predictions inside some of them.
    for k in range(int(rng.integers(0, 3))):
        x, y = rng.uniform(0, 900), rng.uniform(0, 500)
        kind = int(rng.integers(0, 3))
        for t in range(F):
            b = q([x, y, 100, 100])
            lab = {"id": f"ig{k}", "category": ["other person", "trailer", "car"][kind],
                   "attributes": {"occluded": False, "truncated": False, "crowd": kind == 2},
                   "box2d": {"x1": b[0], "y1": b[1], "x2": b[0] + b[2], "y2": b[1] + b[3]}}
            frames_gt[t]["labels"].append(lab)
            if rng.random() < 0.6:
                pb = q([x + rng.uniform(-30, 60), y + rng.uniform(-30, 60), 40, 40])
                frames_res[t]["labels"].append({"id": str(nid + 100 + k), "category": str(rng.choice(cats[:3])),
                                                "score": 0.5, "box2d": {"x1": pb[0], "y1": pb[1],
                                                                        "x2": pb[0] + pb[2], "y2": pb[1] + pb[3]}})
    for fr in frames_gt + frames_res:
        rng.shuffle(fr["labels"])
    return frames_gt, frames_res


def trackeval_bdd(root, vids):
    cfg = trackeval.datasets.BDD100K.get_default_dataset_config()
    cfg.update({"GT_FOLDER": f"{root}/gt", "TRACKERS_FOLDER": f"{root}/trackers", "TRACKERS_TO_EVAL": ["res"],
                "TRACKER_SUB_FOLDER": "", "SPLIT_TO_EVAL": "", "PRINT_CONFIG": False})
    ds = trackeval.datasets.BDD100K(cfg)
    metrics = [trackeval.metrics.CLEAR({"PRINT_CONFIG": False}), trackeval.metrics.Identity({"PRINT_CONFIG": False}),
               trackeval.metrics.HOTA()]
    classes = ds.class_list
    per = {c: {m.get_name(): {} for m in metrics} for c in classes}
    for v in vids:
        raw = ds.get_raw_seq_data("res", v)
        for c in classes:
            data = ds.get_preprocessed_seq_data(raw, c)
            for m in metrics:
                per[c][m.get_name()][v] = m.eval_sequence(data)
    out = {"classes": {}}
    comb = {}
    for c in classes:
        comb[c] = {m.get_name(): m.combine_sequences(per[c][m.get_name()]) for m in metrics}
        out["classes"][c] = te_json(comb[c]["CLEAR"], comb[c]["Identity"], comb[c]["HOTA"])
    cls_av, det_av = {}, {}
    for m in metrics:
        n = m.get_name()
        cls_res = {c: comb[c][n] for c in classes}
        cls_av[n] = m.combine_classes_class_averaged(cls_res)
        det_av[n] = m.combine_classes_det_averaged(cls_res)
    out["class_average"] = te_json(cls_av["CLEAR"], cls_av["Identity"], cls_av["HOTA"])
    out["combined"] = te_json(det_av["CLEAR"], det_av["Identity"], det_av["HOTA"])
    return out


def lsa_cases(rng):
    cases = []
    for k in range(300):
        n, m = int(rng.integers(1, 9)), int(rng.integers(1, 9))
        u = k % 3
        if u == 0:
            c = rng.integers(0, 3, size=(n, m)).astype(float)  # many ties
        elif u == 1:
            c = -np.round(rng.random((n, m)) * 4) / 4
            c[rng.random((n, m)) < 0.5] = 0
        else:
            c = rng.normal(size=(n, m))
        r, cc = linear_sum_assignment(c)
        cases.append({"n": n, "m": m, "cost": c.ravel().tolist(), "rows": r.tolist(), "cols": cc.tolist()})
    return cases


def main():
    out_h5 = sys.argv[1]
    base = out_h5[:-3] if out_h5.endswith(".h5") else out_h5 + ".d"
    seed = int(os.environ.get("MASA_SEED", "1234"))
    print(f"oracle_metrics: seed {seed}, writing {base}/")
    rng = np.random.default_rng(seed)
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    expected = {"seed": seed}

    # MOT17 cases for TrackEval.
    te_seqs = []
    for i in range(70):
        kind = "mot17"
        if i == 0:
            kind = "empty_gt"
        elif i == 1:
            kind = "empty_res"
        F, gt, res = make_case(rng, kind)
        seq = f"TE-{i:03d}"
        write_mot(f"{base}/te", seq, F, gt, res)
        te_seqs.append(seq)
    with contextlib.redirect_stdout(io.StringIO()):
        expected["trackeval_mot17"] = trackeval_mot(f"{base}/te", te_seqs, "MOT17")

    # MOT15 cases for motmetrics (and TrackEval MOT15 on the same files).
    mm_seqs = []
    for i in range(45):
        F, gt, res = make_case(rng, "mot15")
        seq = f"MM-{i:03d}"
        # Frames must be present in the gt or results for motmetrics to count them; both readers
        # agree on the rest.
        write_mot(f"{base}/mm", seq, F, gt, res)
        mm_seqs.append(seq)
    with contextlib.redirect_stdout(io.StringIO()):
        expected["trackeval_mot15"] = trackeval_mot(f"{base}/mm", mm_seqs, "MOT15")
    expected["motmetrics"] = motmetrics_mot(f"{base}/mm", mm_seqs)

    # BDD100K.
    vids = []
    os.makedirs(f"{base}/bdd/gt")
    os.makedirs(f"{base}/bdd/trackers/res")
    for i in range(12):
        vid = f"bdd-{i:03d}"
        g, r = bdd_case(rng, vid)
        json.dump(g, open(f"{base}/bdd/gt/{vid}.json", "w"))
        # TrackEval's BDD100K reader wants "index" (older scalabel) and "Crowd"; write those
        # copies for it and the BDD100K spelling for the C reader.
        json.dump(r, open(f"{base}/bdd/trackers/res/{vid}.json", "w"))
        vids.append(vid)
    te_bdd = f"{base}/bdd_te"
    os.makedirs(f"{te_bdd}/gt")
    os.makedirs(f"{te_bdd}/trackers/res")
    for vid in vids:
        for src, dst in [(f"{base}/bdd/gt/{vid}.json", f"{te_bdd}/gt/{vid}.json"),
                         (f"{base}/bdd/trackers/res/{vid}.json", f"{te_bdd}/trackers/res/{vid}.json")]:
            frames = json.load(open(src))
            for fr in frames:
                fr["index"] = fr.pop("frameIndex")
                for lab in fr["labels"]:
                    if "attributes" in lab:
                        lab["attributes"]["Crowd"] = lab["attributes"].pop("crowd")
                    if not lab["id"].isdigit():  # TrackEval casts ids to int
                        lab["id"] = str(900000 + sum(map(ord, lab["id"])))
            json.dump(frames, open(dst, "w"))
    with contextlib.redirect_stdout(io.StringIO()):
        expected["trackeval_bdd"] = trackeval_bdd(te_bdd, vids)

    expected["lsa"] = lsa_cases(rng)

    def no_nan(v):  # JSON has no NaN: write null (the C test skips those values)
        if isinstance(v, dict):
            return {k: no_nan(x) for k, x in v.items()}
        if isinstance(v, list):
            return [no_nan(x) for x in v]
        if isinstance(v, float) and v != v:
            return None
        if isinstance(v, float) and abs(v) == float("inf"):
            return "inf" if v > 0 else "-inf"
        return v

    with open(f"{base}/expected.json", "w") as f:
        json.dump(no_nan(expected), f, allow_nan=False)
    with h5py.File(out_h5, "w") as f:
        f["num_trackeval_mot17"] = np.array([len(te_seqs)], dtype=np.float32)
        f["num_motmetrics"] = np.array([len(mm_seqs)], dtype=np.float32)
        f["num_bdd"] = np.array([len(vids)], dtype=np.float32)
    print(f"oracle_metrics: {len(te_seqs)} MOT17 + {len(mm_seqs)} MOT15 sequences, {len(vids)} BDD videos, "
          f"{len(expected['lsa'])} assignment problems")


if __name__ == "__main__":
    main()
