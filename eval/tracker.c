// MASA's TAO and BDD trackers and an IoU baseline (see tracker.h for the shared rules).
// Arithmetic is float32 like the PyTorch code: dot products are accumulated in double and rounded
// once (BLAS sums in yet another order; either is within an ulp or two of the other), softmax =
// exp(x - max) / sum, and Python scalars are rounded to float32 where they meet a tensor. The
// test (tests/oracle_tracker.py) keeps every discrete decision away from such rounding.
#include "eval/tracker.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"
#include "eval/assign.h"
#include "model/nms.h"

int tracker_kind_parse(const char *name) {
  if (!strcmp(name, "tao")) return TRACKER_TAO;
  if (!strcmp(name, "bdd")) return TRACKER_BDD;
  if (!strcmp(name, "iou")) return TRACKER_IOU;
  return -1;
}

void tracker_default_opts(tracker_kind kind, tracker_opts *o) {
  memset(o, 0, sizeof *o);
  o->kind = kind;
  o->dim = 256;
  o->iou_base = TRACKER_TAO;
  o->iou_match_thr = 0.3;
  o->iou_hungarian = 1;
  o->memo_tracklet_frames = 10;
  o->memo_momentum = 0.8;
  o->max_distance = -1;
  o->fps = 1;
  // Both sets are filled so that the IoU baseline can borrow either.
  o->distractor_score_thr = 0.5;
  o->distractor_nms_thr = 0.3;
  o->memo_backdrop_frames = 1;
  o->nms_conf_thr = 0.5;
  o->nms_backdrop_iou_thr = 0.3;
  o->nms_class_iou_thr = 0.7;
  if (kind == TRACKER_BDD) {
    o->init_score_thr = 0.5;
    o->obj_score_thr = 0.3;
    o->match_score_thr = 0.6;
  } else {
    o->init_score_thr = 0.1;
    o->obj_score_thr = 0.01;
    o->match_score_thr = 0.5;
    o->max_distance = 100;
    o->fps = 30;
  }
}

typedef struct {
  int64_t id;
  float bbox[4];
  int label;
  float score;
  int64_t last_frame;
  float *embed;  // (dim)
} track;

typedef struct {  // one frame's backdrops
  int n;
  float *bboxes;  // (n, 4)
  float *embeds;  // (n, dim)
  int *labels;    // (n)
} backdrop;

struct tracker {
  tracker_opts o;
  track *tracks;  // creation order (the official dict's order)
  int ntracks, cap;
  backdrop *backdrops;  // newest first
  int nback;
  int64_t next_id;
};

tracker *tracker_create(const tracker_opts *o) {
  tracker *t = callocCheck(1, sizeof *t);
  t->o = *o;
  int nb = o->memo_backdrop_frames + 1;
  t->backdrops = callocCheck((size_t)nb, sizeof(backdrop));
  return t;
}

static void backdrop_free(backdrop *b) {
  free(b->bboxes);
  free(b->embeds);
  free(b->labels);
  memset(b, 0, sizeof *b);
}

void tracker_reset(tracker *t) {
  for (int k = 0; k < t->ntracks; k++) free(t->tracks[k].embed);
  t->ntracks = 0;
  for (int k = 0; k < t->nback; k++) backdrop_free(&t->backdrops[k]);
  t->nback = 0;
  t->next_id = 0;
}

void tracker_free(tracker *t) {
  if (!t) return;
  tracker_reset(t);
  free(t->tracks);
  free(t->backdrops);
  free(t);
}

int tracker_num_tracks(const tracker *t) { return t->ntracks; }

// mmdet bbox_overlaps (mode iou, aligned False) for one pair, float32.
static float overlap_iou(const float *a, const float *b) {
  float area_a = (a[2] - a[0]) * (a[3] - a[1]), area_b = (b[2] - b[0]) * (b[3] - b[1]);
  float w = fmaxf(fminf(a[2], b[2]) - fmaxf(a[0], b[0]), 0.0f);
  float h = fmaxf(fminf(a[3], b[3]) - fmaxf(a[1], b[1]), 0.0f);
  float inter = w * h;
  float uni = fmaxf(area_a + area_b - inter, 1e-6f);
  return inter / uni;
}

// First maximum of row[0..n), NaN being the maximum (torch.max along a dim).
static int argmax_first(const float *row, int n) {
  int best = 0;
  if (isnan(row[0])) return 0;
  for (int j = 1; j < n; j++) {
    if (isnan(row[j])) return j;
    if (row[j] > row[best]) best = j;
  }
  return best;
}

// Softmax over rows (dim 1) or columns (dim 0) of x (m, k) into out.
static void softmax_dim(const float *x, int m, int k, int dim, float *out) {
  int outer = dim == 1 ? m : k, inner = dim == 1 ? k : m;
  for (int a = 0; a < outer; a++) {
#define AT(b) (dim == 1 ? (int64_t)a * k + (b) : (int64_t)(b) * k + a)
    float mx = x[AT(0)];
    for (int b = 1; b < inner; b++) mx = fmaxf(mx, x[AT(b)]);
    double sum = 0;
    for (int b = 0; b < inner; b++) {
      float e = expf(x[AT(b)] - mx);
      out[AT(b)] = e;
      sum += e;
    }
    float s = (float)sum;
    for (int b = 0; b < inner; b++) out[AT(b)] = out[AT(b)] / s;
#undef AT
  }
}

// x (m, d) times y (k, d)^T -> (m, k).
static void dot_rows(const float *x, int m, const float *y, int k, int d, float *out) {
  for (int i = 0; i < m; i++)
    for (int j = 0; j < k; j++) {
      double s = 0;
      for (int c = 0; c < d; c++) s += (double)x[(int64_t)i * d + c] * y[(int64_t)j * d + c];
      out[(int64_t)i * k + j] = (float)s;
    }
}

// F.normalize(x, p=2, dim=1): x / max(||x||, 1e-12).
static void l2_normalize_rows(const float *x, int m, int d, float *out) {
  for (int i = 0; i < m; i++) {
    double s = 0;
    for (int c = 0; c < d; c++) s += (double)x[(int64_t)i * d + c] * x[(int64_t)i * d + c];
    float nrm = fmaxf((float)sqrt(s), 1e-12f);
    for (int c = 0; c < d; c++) out[(int64_t)i * d + c] = x[(int64_t)i * d + c] / nrm;
  }
}

// (row-softmax + column-softmax) / 2 of the raw dot products.
static void bisoftmax(const float *e, int m, const float *mem, int k, int d, float *out) {
  float *f = mallocCheck((size_t)m * k * sizeof *f);
  float *c = mallocCheck((size_t)m * k * sizeof *c);
  dot_rows(e, m, mem, k, d, f);
  softmax_dim(f, m, k, 1, out);
  softmax_dim(f, m, k, 0, c);
  for (int64_t q = 0; q < (int64_t)m * k; q++) out[q] = (out[q] + c[q]) / 2.0f;
  free(f);
  free(c);
}

// The frame's detections after sorting and filtering, as indices into the inputs.
typedef struct {
  int m;
  int *src;  // (m) input index of each kept detection, in descending score order
  float *boxes, *scores, *embeds;  // gathered (m, 4), (m), (m, dim)
  int *labels;
  int64_t *ids;
  int *mem_j;  // matched memory entry (-1 none)
} frame_dets;

// Stable descending sort, then TAO distractor removal or BDD duplicate removal (both compare with
// every higher-scored detection, kept or not).
static void select_dets(const tracker *t, tracker_kind handling, int n, const float *boxes, const float *scores,
                        const int *labels, const float *embeds, frame_dets *fd) {
  int d = t->o.dim;
  int64_t *order = mallocCheck((size_t)n * sizeof *order);
  argsort_desc_stable(n, scores, order);
  uint8_t *valid = mallocCheck((size_t)n);
  float score_thr = handling == TRACKER_BDD ? (float)t->o.obj_score_thr : (float)t->o.distractor_score_thr;
  for (int k = 0; k < n; k++) {
    valid[k] = 1;
    const float *bk = boxes + 4 * order[k];
    float sk = scores[order[k]];
    float thr;
    if (handling == TRACKER_BDD) {
      thr = sk < score_thr ? (float)t->o.nms_backdrop_iou_thr : (float)t->o.nms_class_iou_thr;
    } else {
      if (!(sk < score_thr)) continue;
      thr = (float)t->o.distractor_nms_thr;
    }
    for (int j = 0; j < k; j++)
      if (overlap_iou(bk, boxes + 4 * order[j]) > thr) {
        valid[k] = 0;
        break;
      }
  }
  int m = 0;
  for (int k = 0; k < n; k++) m += valid[k];
  fd->m = m;
  fd->src = mallocCheck((size_t)(m + 1) * sizeof(int));
  fd->boxes = mallocCheck((size_t)(m + 1) * 4 * sizeof(float));
  fd->scores = mallocCheck((size_t)(m + 1) * sizeof(float));
  fd->labels = mallocCheck((size_t)(m + 1) * sizeof(int));
  fd->ids = mallocCheck((size_t)(m + 1) * sizeof(int64_t));
  fd->mem_j = mallocCheck((size_t)(m + 1) * sizeof(int));
  fd->embeds = embeds ? mallocCheck(((size_t)m * d + 1) * sizeof(float)) : NULL;
  int q = 0;
  for (int k = 0; k < n; k++) {
    if (!valid[k]) continue;
    int s = (int)order[k];
    fd->src[q] = s;
    memcpy(fd->boxes + 4 * q, boxes + 4 * s, 4 * sizeof(float));
    fd->scores[q] = scores[s];
    fd->labels[q] = labels ? labels[s] : 0;
    if (embeds) memcpy(fd->embeds + (int64_t)q * d, embeds + (int64_t)s * d, (size_t)d * sizeof(float));
    fd->ids[q] = -1;
    fd->mem_j[q] = -1;
    q++;
  }
  free(order);
  free(valid);
}

static void frame_dets_free(frame_dets *fd) {
  free(fd->src);
  free(fd->boxes);
  free(fd->scores);
  free(fd->labels);
  free(fd->embeds);
  free(fd->ids);
  free(fd->mem_j);
}

// Greedy assignment of the official trackers over match (m, k), memory ids mem_ids (k).
static void greedy_match(const tracker *t, frame_dets *fd, float *match, int k, const int64_t *mem_ids) {
  float match_thr = (float)t->o.match_score_thr, obj_thr = (float)t->o.obj_score_thr;
  float nms_conf = (float)t->o.nms_conf_thr;
  int m = fd->m;
  for (int i = 0; i < m; i++) {
    float *row = match + (int64_t)i * k;
    int j = argmax_first(row, k);
    float conf = row[j];
    if (!(conf > match_thr)) continue;
    int64_t id = mem_ids[j];
    if (id > -1) {
      if (fd->scores[i] > obj_thr) {
        fd->ids[i] = id;
        fd->mem_j[i] = j;
        for (int r = 0; r < m; r++)
          if (r != i) match[(int64_t)r * k + j] = 0.0f;
      } else if (t->o.kind == TRACKER_BDD && conf > nms_conf) {
        fd->ids[i] = -2;
      }
    }
  }
}

static void match_tao(const tracker *t, frame_dets *fd, int64_t frame_id) {
  int m = fd->m, k = t->ntracks, d = t->o.dim;
  float *mem = mallocCheck((size_t)k * d * sizeof(float));
  int64_t *mem_ids = mallocCheck((size_t)k * sizeof(int64_t));
  for (int j = 0; j < k; j++) {
    memcpy(mem + (int64_t)j * d, t->tracks[j].embed, (size_t)d * sizeof(float));
    mem_ids[j] = t->tracks[j].id;
  }
  float *match = mallocCheck((size_t)m * k * sizeof(float));
  float *cosv = mallocCheck((size_t)m * k * sizeof(float));
  float *en = mallocCheck((size_t)m * d * sizeof(float));
  float *mn = mallocCheck((size_t)k * d * sizeof(float));
  bisoftmax(fd->embeds, m, mem, k, d, match);
  l2_normalize_rows(fd->embeds, m, d, en);
  l2_normalize_rows(mem, k, d, mn);
  dot_rows(en, m, mn, k, d, cosv);
  for (int64_t q = 0; q < (int64_t)m * k; q++) match[q] = (match[q] + cosv[q]) / 2.0f;
  if (t->o.max_distance >= 0) {
    // Centre distance gating. Python scalars meet float32 tensors: each is rounded to float32.
    float maxd = (float)t->o.max_distance, growth = (float)(t->o.fps / 6.0), smooth = (float)(100.0 / t->o.fps);
    for (int j = 0; j < k; j++) {
      const float *tb = t->tracks[j].bbox;
      float tcx = (tb[0] + tb[2]) / 2.0f, tcy = (tb[1] + tb[3]) / 2.0f;
      int64_t df = frame_id - t->tracks[j].last_frame;
      if (df < 0) df = -df;
      float thr = maxd * expf((float)df / growth);
      for (int i = 0; i < m; i++) {
        const float *b = fd->boxes + 4 * i;
        float dx = (b[0] + b[2]) / 2.0f - tcx, dy = (b[1] + b[3]) / 2.0f - tcy;
        float dist = (float)sqrt((double)dx * dx + (double)dy * dy);
        float w = dist <= thr ? 1.0f : expf(-(dist - thr) / smooth);
        match[(int64_t)i * k + j] *= w;
      }
    }
  }
  greedy_match(t, fd, match, k, mem_ids);
  free(mem);
  free(mem_ids);
  free(match);
  free(cosv);
  free(en);
  free(mn);
}

static void match_bdd(const tracker *t, frame_dets *fd) {
  int m = fd->m, d = t->o.dim;
  int k = t->ntracks;
  for (int b = 0; b < t->nback; b++) k += t->backdrops[b].n;
  float *mem = mallocCheck(((size_t)k * d + 1) * sizeof(float));
  int64_t *mem_ids = mallocCheck((size_t)k * sizeof(int64_t));
  int *mem_labels = mallocCheck((size_t)k * sizeof(int));
  int j = 0;
  for (int q = 0; q < t->ntracks; q++, j++) {
    memcpy(mem + (int64_t)j * d, t->tracks[q].embed, (size_t)d * sizeof(float));
    mem_ids[j] = t->tracks[q].id;
    mem_labels[j] = t->tracks[q].label;
  }
  for (int b = 0; b < t->nback; b++) {
    const backdrop *bd = &t->backdrops[b];
    for (int q = 0; q < bd->n; q++, j++) {
      memcpy(mem + (int64_t)j * d, bd->embeds + (int64_t)q * d, (size_t)d * sizeof(float));
      mem_ids[j] = -1;
      mem_labels[j] = bd->labels[q];
    }
  }
  float *match = mallocCheck((size_t)m * k * sizeof(float));
  bisoftmax(fd->embeds, m, mem, k, d, match);
  if (t->o.with_cats)
    for (int i = 0; i < m; i++)
      for (int q = 0; q < k; q++) match[(int64_t)i * k + q] *= fd->labels[i] == mem_labels[q] ? 1.0f : 0.0f;
  greedy_match(t, fd, match, k, mem_ids);
  free(mem);
  free(mem_ids);
  free(mem_labels);
  free(match);
}

// IoU baseline: the tracks' last boxes against the detections that may continue a track.
static void match_iou(const tracker *t, frame_dets *fd) {
  int m = fd->m, k = t->ntracks;
  float obj_thr = (float)t->o.obj_score_thr, iou_thr = (float)t->o.iou_match_thr;
  int *cand = mallocCheck((size_t)m * sizeof(int));
  int nc = 0;
  for (int i = 0; i < m; i++)
    if (fd->scores[i] > obj_thr) cand[nc++] = i;
  float *iou = mallocCheck(((size_t)nc * k + 1) * sizeof(float));
  for (int c = 0; c < nc; c++)
    for (int q = 0; q < k; q++) iou[(int64_t)c * k + q] = overlap_iou(fd->boxes + 4 * cand[c], t->tracks[q].bbox);
  if (t->o.iou_hungarian) {
    double *cost = mallocCheck(((size_t)nc * k + 1) * sizeof(double));
    for (int64_t q = 0; q < (int64_t)nc * k; q++) cost[q] = 1.0 - (double)iou[q];
    int np = nc < k ? nc : k;
    int64_t *rows = mallocCheck(((size_t)np + 1) * sizeof(int64_t));
    int64_t *cols = mallocCheck(((size_t)np + 1) * sizeof(int64_t));
    int64_t got = nc && k ? linear_sum_assignment(cost, nc, k, rows, cols) : 0;
    masa_assert(got >= 0);  // finite costs: always feasible
    for (int64_t p = 0; p < got; p++)
      if (iou[rows[p] * k + cols[p]] > iou_thr) {
        int i = cand[rows[p]];
        fd->ids[i] = t->tracks[cols[p]].id;
        fd->mem_j[i] = (int)cols[p];
      }
    free(cost);
    free(rows);
    free(cols);
  } else {
    uint8_t *taken = callocCheck((size_t)k + 1, 1);
    for (int c = 0; c < nc; c++) {
      int best = -1;
      for (int q = 0; q < k; q++)
        if (!taken[q] && (best < 0 || iou[(int64_t)c * k + q] > iou[(int64_t)c * k + best])) best = q;
      if (best >= 0 && iou[(int64_t)c * k + best] > iou_thr) {
        taken[best] = 1;
        fd->ids[cand[c]] = t->tracks[best].id;
        fd->mem_j[cand[c]] = best;
      }
    }
    free(taken);
  }
  free(cand);
  free(iou);
}

static void push_track(tracker *t, const frame_dets *fd, int i, int64_t frame_id) {
  if (t->ntracks == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 16;
    t->tracks = realloc(t->tracks, (size_t)t->cap * sizeof(track));
    if (!t->tracks) masa_die(__FILE__, __LINE__, "realloc", "libc", "out of memory");
  }
  track *tr = &t->tracks[t->ntracks++];
  tr->id = fd->ids[i];
  memcpy(tr->bbox, fd->boxes + 4 * i, sizeof tr->bbox);
  tr->label = fd->labels[i];
  tr->score = fd->scores[i];
  tr->last_frame = frame_id;
  tr->embed = NULL;
  if (fd->embeds) {
    tr->embed = mallocCheck((size_t)t->o.dim * sizeof(float));
    memcpy(tr->embed, fd->embeds + (int64_t)i * t->o.dim, (size_t)t->o.dim * sizeof(float));
  }
}

static void update_tracks(tracker *t, const frame_dets *fd, int64_t frame_id) {
  int d = t->o.dim;
  // (1 - m) and m are Python floats multiplied into float32 tensors.
  float keep = (float)(1.0 - t->o.memo_momentum), take = (float)t->o.memo_momentum;
  for (int i = 0; i < fd->m; i++) {
    if (fd->ids[i] < 0) continue;
    if (fd->mem_j[i] < 0) {
      push_track(t, fd, i, frame_id);
      continue;
    }
    track *tr = &t->tracks[fd->mem_j[i]];
    masa_assert(tr->id == fd->ids[i]);
    memcpy(tr->bbox, fd->boxes + 4 * i, sizeof tr->bbox);
    if (tr->embed)
      for (int c = 0; c < d; c++) {
        float a = keep * tr->embed[c], b = take * fd->embeds[(int64_t)i * d + c];
        tr->embed[c] = a + b;
      }
    tr->last_frame = frame_id;
    tr->label = fd->labels[i];
    tr->score = fd->scores[i];
  }
}

static void drop_old_tracks(tracker *t, int64_t frame_id) {
  int w = 0;
  for (int r = 0; r < t->ntracks; r++) {
    if (frame_id - t->tracks[r].last_frame >= t->o.memo_tracklet_frames) {
      free(t->tracks[r].embed);
      continue;
    }
    t->tracks[w++] = t->tracks[r];
  }
  t->ntracks = w;
}

// BDD: this frame's unmatched (id -1) detections, without those overlapping (IoU > backdrop
// threshold) any higher-scored detection of the frame, become the newest backdrops.
static void push_backdrops(tracker *t, const frame_dets *fd) {
  int d = t->o.dim;
  float thr = (float)t->o.nms_backdrop_iou_thr;
  backdrop nb = {0};
  nb.bboxes = mallocCheck(((size_t)fd->m * 4 + 1) * sizeof(float));
  nb.embeds = mallocCheck(((size_t)fd->m * d + 1) * sizeof(float));
  nb.labels = mallocCheck(((size_t)fd->m + 1) * sizeof(int));
  for (int i = 0; i < fd->m; i++) {
    if (fd->ids[i] != -1) continue;
    int dup = 0;
    for (int j = 0; j < i && !dup; j++) dup = overlap_iou(fd->boxes + 4 * i, fd->boxes + 4 * j) > thr;
    if (dup) continue;
    memcpy(nb.bboxes + 4 * nb.n, fd->boxes + 4 * i, 4 * sizeof(float));
    memcpy(nb.embeds + (int64_t)nb.n * d, fd->embeds + (int64_t)i * d, (size_t)d * sizeof(float));
    nb.labels[nb.n] = fd->labels[i];
    nb.n++;
  }
  // Insert at the front; keep memo_backdrop_frames of them.
  memmove(t->backdrops + 1, t->backdrops, (size_t)t->nback * sizeof(backdrop));
  t->backdrops[0] = nb;
  t->nback++;
  while (t->nback > t->o.memo_backdrop_frames) backdrop_free(&t->backdrops[--t->nback]);
}

int tracker_step(tracker *t, int64_t frame_id, int n, const float *boxes, const float *scores, const int *labels,
                 const float *embeds, int64_t *out_ids) {
  if (n < 0) return masa_error("tracker_step: negative detection count %d", n);
  if (n > 0 && (!boxes || !scores || !out_ids)) return masa_error("tracker_step: boxes, scores and out_ids are required");
  if (n > 0 && t->o.kind != TRACKER_IOU && !embeds)
    return masa_error("tracker_step: the %s tracker needs embeddings", t->o.kind == TRACKER_BDD ? "BDD" : "TAO");
  if (t->o.kind != TRACKER_IOU && t->o.dim < 1) return masa_error("tracker_step: embedding dim %d", t->o.dim);
  for (int i = 0; i < n; i++) out_ids[i] = -1;
  if (frame_id == 0) tracker_reset(t);
  if (n == 0) return MASA_OK;
  tracker_kind handling = t->o.kind == TRACKER_IOU ? t->o.iou_base : t->o.kind;
  frame_dets fd;
  select_dets(t, handling, n, boxes, scores, labels, t->o.kind == TRACKER_IOU ? NULL : embeds, &fd);
  if (fd.m > 0 && t->ntracks > 0) {
    if (t->o.kind == TRACKER_TAO) match_tao(t, &fd, frame_id);
    else if (t->o.kind == TRACKER_BDD) match_bdd(t, &fd);
    else match_iou(t, &fd);
  }
  float init_thr = (float)t->o.init_score_thr;
  for (int i = 0; i < fd.m; i++)
    if (fd.ids[i] == -1 && fd.scores[i] > init_thr) fd.ids[i] = t->next_id++;
  update_tracks(t, &fd, frame_id);
  if (t->o.kind == TRACKER_BDD) push_backdrops(t, &fd);
  drop_old_tracks(t, frame_id);
  for (int i = 0; i < fd.m; i++)
    if (fd.ids[i] >= 0) out_ids[fd.src[i]] = fd.ids[i];
  frame_dets_free(&fd);
  return MASA_OK;
}
