// Track-head samples and targets (see track_targets.h).
#include "train/track_targets.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/rng.h"

track_sample_cfg track_sample_cfg_default(void) {
  track_sample_cfg c = {max_iou_assigner_track(), sampler_cfg_track()};
  return c;
}

static void sample_view(const track_sample_cfg *cfg, const track_view *v, rng_key key,
                        sample_result *sr) {
  assign_result ar;
  max_iou_assign(&cfg->assigner, v->num_proposals, v->proposals, v->num_gts, v->gts, &ar);
  sample_boxes(&cfg->sampler, &ar, key, sr);
  assign_result_free(&ar);
}

void track_targets_pair(const track_sample_cfg *cfg, const track_view *key, const track_view *ref,
                        rng_key key_rng, rng_key ref_rng, track_targets *out) {
  sample_result ks, rs;
  sample_view(cfg, key, key_rng, &ks);
  sample_view(cfg, ref, ref_rng, &rs);
  memset(out, 0, sizeof *out);
  int64_t nk = ks.num_pos, nr = rs.num_pos + rs.num_neg;
  out->num_key = nk;
  out->num_ref = nr;
  out->num_ref_pos = rs.num_pos;
  out->key_rois = mallocCheck((size_t)(nk + 1) * 4 * sizeof(float));
  out->ref_rois = mallocCheck((size_t)(nr + 1) * 4 * sizeof(float));
  out->key_gt = mallocCheck((size_t)(nk + 1) * sizeof(int64_t));
  out->ref_gt = mallocCheck((size_t)(nr + 1) * sizeof(int64_t));
  out->target = callocCheck((size_t)(nk * nr + 1), sizeof(float));
  sample_gather_boxes(&ks, key->gts, key->proposals, nk, ks.pos_inds, out->key_rois);
  sample_gather_boxes(&rs, ref->gts, ref->proposals, rs.num_pos, rs.pos_inds, out->ref_rois);
  sample_gather_boxes(&rs, ref->gts, ref->proposals, rs.num_neg, rs.neg_inds,
                      out->ref_rois + 4 * rs.num_pos);
  if (nk) memcpy(out->key_gt, ks.pos_gt, (size_t)nk * sizeof(int64_t));
  for (int64_t q = 0; q < nr; q++) out->ref_gt[q] = q < rs.num_pos ? rs.pos_gt[q] : -1;

  // gt_match_indices: key GT -> first reference GT with the same positive id, else -1.
  int64_t *match = mallocCheck((size_t)(key->num_gts + 1) * sizeof(int64_t));
  for (int64_t i = 0; i < key->num_gts; i++) {
    match[i] = -1;
    if (key->ids[i] <= 0) continue;
    for (int64_t j = 0; j < ref->num_gts; j++)
      if (ref->ids[j] == key->ids[i]) {
        match[i] = j;
        break;
      }
  }
  for (int64_t p = 0; p < nk; p++) {
    int64_t m = match[out->key_gt[p]];
    if (m < 0) continue;
    for (int64_t q = 0; q < rs.num_pos; q++)
      if (out->ref_gt[q] == m) out->target[p * nr + q] = 1.0f;
  }
  free(match);
  sample_result_free(&ks);
  sample_result_free(&rs);
}

void track_targets_free(track_targets *t) {
  free(t->key_rois);
  free(t->ref_rois);
  free(t->key_gt);
  free(t->ref_gt);
  free(t->target);
  memset(t, 0, sizeof *t);
}

jitter_proposal_cfg jitter_proposal_cfg_default(void) {
  return (jitter_proposal_cfg){8, 0.1f, 64};
}

int64_t jitter_proposal_count(const jitter_proposal_cfg *cfg, int64_t g) {
  return g * cfg->copies_per_gt + cfg->num_random;
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

int64_t jitter_proposals(const jitter_proposal_cfg *cfg, int64_t g, const float *gts,
                         float img_h, float img_w, rng_key key, float *out) {
  masa_assert(cfg->copies_per_gt >= 0 && cfg->num_random >= 0 && img_h > 0 && img_w > 0);
  int64_t n = 0;
  for (int64_t i = 0; i < g; i++) {
    const float *b = gts + 4 * i;
    float cx = (b[0] + b[2]) * 0.5f, cy = (b[1] + b[3]) * 0.5f;
    float w = b[2] - b[0], h = b[3] - b[1];
    for (int c = 0; c < cfg->copies_per_gt; c++, n++) {
      uint64_t base = ((uint64_t)i * (uint64_t)cfg->copies_per_gt + (uint64_t)c) * 4;
      float r[4];
      for (int k = 0; k < 4; k++) r[k] = rng_normal(key.seed, key.stream, base + (uint64_t)k);
      float ncx = cx + cfg->scale * w * r[0], ncy = cy + cfg->scale * h * r[1];
      float nw = w * expf(cfg->scale * r[2]), nh = h * expf(cfg->scale * r[3]);
      float *o = out + 4 * n;
      o[0] = clampf(ncx - 0.5f * nw, 0.0f, img_w);
      o[1] = clampf(ncy - 0.5f * nh, 0.0f, img_h);
      o[2] = clampf(ncx + 0.5f * nw, 0.0f, img_w);
      o[3] = clampf(ncy + 0.5f * nh, 0.0f, img_h);
      if (!(o[2] - o[0] >= 1.0f && o[3] - o[1] >= 1.0f)) memcpy(o, b, 4 * sizeof(float));
    }
  }
  for (int r = 0; r < cfg->num_random; r++, n++) {
    uint64_t base = (UINT64_C(1) << 40) + 4 * (uint64_t)r;
    float u[4];
    for (int k = 0; k < 4; k++) u[k] = rng_uniform(key.seed, key.stream, base + (uint64_t)k);
    float w = img_w * (0.05f + 0.45f * u[0]), h = img_h * (0.05f + 0.45f * u[1]);
    float *o = out + 4 * n;
    o[0] = u[2] * (img_w - w);
    o[1] = u[3] * (img_h - h);
    o[2] = o[0] + w;
    o[3] = o[1] + h;
  }
  return n;
}
