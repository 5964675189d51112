// Detection losses (see det_losses.h).
#include "train/det_losses.h"

#include <float.h>
#include <math.h>

#include "core/check.h"

reg_loss_cfg reg_loss_rpn(void) { return (reg_loss_cfg){REG_LOSS_SMOOTH_L1, 1.0f / 9.0f}; }
reg_loss_cfg reg_loss_rcnn(void) { return (reg_loss_cfg){REG_LOSS_L1, 1.0f}; }

double rpn_avg_factor(int64_t n, const det_targets *t) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += t[i].avg_factor;
  return s;
}

double rcnn_bbox_avg_factor(int64_t n, const det_targets *t) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (double)(t[i].num_pos + t[i].num_neg);
  return s;
}

double rcnn_cls_avg_factor(int64_t n, const det_targets *t) {
  double s = rcnn_bbox_avg_factor(n, t);
  return s > 1.0 ? s : 1.0;
}

// Element offset of anchor f's channel c0 in a level tensor (N, C, h, w) whose channel of
// anchor a, coordinate j is a * per + j; *level receives the level.
static int64_t anchor_offset(const rpn_anchor_set *s, const tensor *maps, int64_t b, int64_t f,
                             int per, int j, int *level) {
  int l = 0;
  while (l + 1 < s->num_levels && f >= s->offset[l + 1]) l++;
  masa_assert(f >= s->offset[l] && f < s->offset[l + 1]);
  int64_t r = f - s->offset[l], A = s->num_base, H = s->h[l], W = s->w[l];
  int64_t a = r % A, p = r / A, y = p / W, x = p % W;
  const tensor *m = &maps[l];
  masa_assert(m->ndim == 4 && b < m->shape[0] && m->shape[1] == A * per && m->shape[2] == H &&
              m->shape[3] == W);
  *level = l;
  return ((b * m->shape[1] + a * per + j) * H + y) * W + x;
}

// Value and derivative of the regression loss of one coordinate.
static double reg_term(const reg_loss_cfg *rc, double p, double t, double *grad) {
  double diff = p - t, d = fabs(diff);
  double sgn = diff > 0 ? 1.0 : (diff < 0 ? -1.0 : 0.0);
  if (rc->kind == REG_LOSS_SMOOTH_L1) {
    double beta = rc->beta;
    if (d < beta) {
      *grad = diff / beta;
      return 0.5 * d * d / beta;
    }
    *grad = sgn;
    return d - 0.5 * beta;
  }
  *grad = sgn;
  return d;
}

void rpn_loss_cls_index(const rpn_anchor_set *anchors, const det_targets *t, const tensor *cls,
                        int64_t b, int *levels, int64_t *offs) {
  for (int64_t s = 0; s < t->num_pos + t->num_neg; s++)
    offs[s] = anchor_offset(anchors, cls, b, t->inds[s], 1, 0, &levels[s]);
}

void rpn_loss_bbox_index(const rpn_anchor_set *anchors, const det_targets *t, const tensor *reg,
                         int64_t b, int *levels, int64_t *offs) {
  for (int64_t s = 0; s < t->num_pos; s++)
    for (int j = 0; j < 4; j++)
      offs[4 * s + j] = anchor_offset(anchors, reg, b, t->inds[s], 4, j, &levels[4 * s + j]);
}

double rpn_loss_cls_values(const det_targets *t, const float *x, double avg_factor, float weight,
                           float *g) {
  const double scale = (double)weight / (avg_factor + FLT_EPSILON);
  double sum = 0;
  int64_t k = t->num_pos + t->num_neg;
  for (int64_t s = 0; s < k; s++) {
    double v = x[s], y = s < t->num_pos ? 1.0 : 0.0;
    sum += (v > 0 ? v : 0) - v * y + log1p(exp(-fabs(v)));
    if (g) {
      double sig = v >= 0 ? 1.0 / (1.0 + exp(-v)) : exp(v) / (1.0 + exp(v));
      g[s] = (float)(scale * (sig - y));
    }
  }
  return scale * sum;
}

double rpn_loss_bbox_values(const det_targets *t, const float *x, const reg_loss_cfg *rc,
                            double avg_factor, float weight, float *g) {
  const double scale = (double)weight / (avg_factor + FLT_EPSILON);
  double sum = 0;
  for (int64_t s = 0; s < 4 * t->num_pos; s++) {
    double d;
    sum += reg_term(rc, x[s], t->targets[s], &d);
    if (g) g[s] = (float)(scale * d);
  }
  return scale * sum;
}

// The map forms: index, gather, loss, scatter, all on the host.
static double rpn_loss_maps(const rpn_anchor_set *anchors, const det_targets *t, const tensor *maps,
                            int64_t b, int reg, const reg_loss_cfg *rc, double avg_factor,
                            float weight, tensor *d_maps) {
  int64_t k = reg ? 4 * t->num_pos : t->num_pos + t->num_neg;
  int *lv = mallocCheck((size_t)(k ? k : 1) * sizeof(int));
  int64_t *off = mallocCheck((size_t)(k ? k : 1) * sizeof(int64_t));
  float *x = mallocCheck((size_t)(k ? k : 1) * sizeof(float));
  float *g = d_maps ? mallocCheck((size_t)(k ? k : 1) * sizeof(float)) : NULL;
  if (reg) rpn_loss_bbox_index(anchors, t, maps, b, lv, off);
  else rpn_loss_cls_index(anchors, t, maps, b, lv, off);
  for (int64_t s = 0; s < k; s++) x[s] = maps[lv[s]].data[off[s]];
  double loss = reg ? rpn_loss_bbox_values(t, x, rc, avg_factor, weight, g)
                    : rpn_loss_cls_values(t, x, avg_factor, weight, g);
  if (g)
    for (int64_t s = 0; s < k; s++) d_maps[lv[s]].data[off[s]] += g[s];
  free(lv), free(off), free(x), free(g);
  return loss;
}

double rpn_loss_cls(const rpn_anchor_set *anchors, const det_targets *t, const tensor *cls,
                    int64_t b, double avg_factor, float weight, tensor *d_cls) {
  return rpn_loss_maps(anchors, t, cls, b, 0, NULL, avg_factor, weight, d_cls);
}

double rpn_loss_bbox(const rpn_anchor_set *anchors, const det_targets *t, const tensor *reg,
                     int64_t b, const reg_loss_cfg *rc, double avg_factor, float weight,
                     tensor *d_reg) {
  return rpn_loss_maps(anchors, t, reg, b, 1, rc, avg_factor, weight, d_reg);
}

double rcnn_loss_cls(const det_targets *t, int num_classes, const float *cls, double avg_factor,
                     float weight, float *d_cls) {
  const double scale = (double)weight / (avg_factor + FLT_EPSILON);
  const int C = num_classes + 1;
  double sum = 0;
  int64_t k = t->num_pos + t->num_neg;
  for (int64_t s = 0; s < k; s++) {
    const float *z = cls + s * C;
    int64_t lab = t->labels[s];
    masa_assert(lab >= 0 && lab < C);
    double mx = z[0];
    for (int c = 1; c < C; c++) mx = z[c] > mx ? z[c] : mx;
    double den = 0;
    for (int c = 0; c < C; c++) den += exp((double)z[c] - mx);
    double lse = mx + log(den);
    sum += lse - (double)z[lab];
    if (d_cls)
      for (int c = 0; c < C; c++)
        d_cls[s * C + c] += (float)(scale * (exp((double)z[c] - lse) - (c == lab ? 1.0 : 0.0)));
  }
  return scale * sum;
}

double rcnn_loss_bbox(const det_targets *t, const float *reg, const reg_loss_cfg *rc,
                      double avg_factor, float weight, float *d_reg) {
  const double scale = (double)weight / (avg_factor + FLT_EPSILON);
  double sum = 0;
  for (int64_t s = 0; s < t->num_pos; s++) {
    for (int j = 0; j < 4; j++) {
      double g;
      sum += reg_term(rc, reg[4 * s + j], t->targets[4 * s + j], &g);
      if (d_reg) d_reg[4 * s + j] += (float)(scale * g);
    }
  }
  return scale * sum;
}
