// Prepared sequences and the box similarity every metric scores with.
#include <float.h>
#include <stdlib.h>

#include "eval/metrics.h"

void eval_seq_free(eval_seq *s) {
  if (!s->frames) return;
  for (int t = 0; t < s->num_frames; t++) {
    free(s->frames[t].gt_ids);
    free(s->frames[t].tr_ids);
    free(s->frames[t].sim);
  }
  free(s->frames);
  s->frames = NULL;
}

// Element for element TrackEval's _BaseDataset._calculate_box_ious on (x0, y0, x1, y1) boxes,
// including its guards: a box of area <= eps or a union <= eps gives 0.
double eval_box_iou(const double *a, const double *b, int do_ioa) {
  double ix0 = a[0] > b[0] ? a[0] : b[0], iy0 = a[1] > b[1] ? a[1] : b[1];
  double ix1 = a[2] < b[2] ? a[2] : b[2], iy1 = a[3] < b[3] ? a[3] : b[3];
  double iw = ix1 - ix0, ih = iy1 - iy0;
  double inter = (iw > 0 ? iw : 0) * (ih > 0 ? ih : 0);
  double area_a = (a[2] - a[0]) * (a[3] - a[1]);
  if (do_ioa) return area_a > DBL_EPSILON ? inter / area_a : 0;
  double area_b = (b[2] - b[0]) * (b[3] - b[1]);
  double uni = area_a + area_b - inter;
  if (area_a <= DBL_EPSILON || area_b <= DBL_EPSILON || uni <= DBL_EPSILON) return 0;
  return inter / uni;
}
