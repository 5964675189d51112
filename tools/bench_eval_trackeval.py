#!/usr/bin/env python3
"""TrackEval side of `masa bench track`: times TrackEval's MotChallenge2DBox evaluation (CLEAR,
Identity, HOTA; MOT17 preprocessing) in this process, on one core (USE_PARALLEL False), and
prints one JSON object: {"seconds", "HOTA", "MOTA", "IDF1"} for the combined sequences.

Layout (as `masa bench track` writes it): GT/SEQ/gt/gt.txt + GT/SEQ/seqinfo.ini, a seqmap CSV,
TRACKERS/NAME/SEQ.txt. The timed span is dataset construction + Evaluator.evaluate (reading,
preprocessing and metrics), the same span `masa eval` covers.
"""
import argparse
import contextlib
import io
import json
import time

import numpy as np
import trackeval


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gt", required=True, help="GT folder (SEQ/gt/gt.txt + SEQ/seqinfo.ini)")
    ap.add_argument("--seqmap", required=True, help="CSV: a 'name' header, then one sequence a line")
    ap.add_argument("--trackers", required=True, help="folder holding NAME/SEQ.txt")
    ap.add_argument("--name", required=True, help="tracker name (sub-folder of --trackers)")
    a = ap.parse_args()

    eval_cfg = trackeval.Evaluator.get_default_eval_config()
    eval_cfg.update(USE_PARALLEL=False, NUM_PARALLEL_CORES=1, PRINT_RESULTS=False,
                    PRINT_ONLY_COMBINED=True, PRINT_CONFIG=False, TIME_PROGRESS=False,
                    DISPLAY_LESS_PROGRESS=True, OUTPUT_SUMMARY=False, OUTPUT_EMPTY_CLASSES=False,
                    OUTPUT_DETAILED=False, PLOT_CURVES=False, BREAK_ON_ERROR=True,
                    RETURN_ON_ERROR=False)
    ds_cfg = trackeval.datasets.MotChallenge2DBox.get_default_dataset_config()
    ds_cfg.update(GT_FOLDER=a.gt, TRACKERS_FOLDER=a.trackers, TRACKERS_TO_EVAL=[a.name],
                  BENCHMARK="MOT17", SPLIT_TO_EVAL="train", SKIP_SPLIT_FOL=True,
                  SEQMAP_FILE=a.seqmap, TRACKER_SUB_FOLDER="",
                  OUTPUT_FOLDER=None, DO_PREPROC=True, PRINT_CONFIG=False)
    metrics_cfg = {"METRICS": ["HOTA", "CLEAR", "Identity"], "THRESHOLD": 0.5,
                   "PRINT_CONFIG": False}

    quiet = io.StringIO()  # TrackEval prints progress lines; stdout must carry only the JSON
    with contextlib.redirect_stdout(quiet):
        t0 = time.perf_counter()
        evaluator = trackeval.Evaluator(eval_cfg)
        dataset = trackeval.datasets.MotChallenge2DBox(ds_cfg)
        metrics = [trackeval.metrics.HOTA(metrics_cfg), trackeval.metrics.CLEAR(metrics_cfg),
                   trackeval.metrics.Identity(metrics_cfg)]
        res, msg = evaluator.evaluate([dataset], metrics)
        seconds = time.perf_counter() - t0
    r = res["MotChallenge2DBox"][a.name]
    if not isinstance(r, dict) or "COMBINED_SEQ" not in r:
        raise SystemExit("TrackEval failed: %s\n%s" % (msg, quiet.getvalue()[-2000:]))
    c = r["COMBINED_SEQ"]["pedestrian"]
    print(json.dumps({"seconds": seconds, "HOTA": float(np.mean(c["HOTA"]["HOTA"])),
                      "MOTA": float(c["CLEAR"]["MOTA"]), "IDF1": float(c["Identity"]["IDF1"])}))


if __name__ == "__main__":
    main()
