// Tracking losses (train/losses.c) against the float64 torch transcription of masa-spec 4.3/4.4
// (oracle_losses.py): loss values and gradients w.r.t. both embedding sets, the accumulate rule,
// and finite differences.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "harness.h"
#include "train/losses.h"

typedef struct {
  int64_t nk, nr, d;
  float *key, *ref, *target;
  int which;  // 0 contrast, 1 margin
  margin_l2_cfg mcfg;
} loss_ctx;

static double eval_loss(void *p) {
  loss_ctx *c = p;
  if (c->which == 0) return unbiased_contrast_loss(c->nk, c->nr, c->d, c->key, c->ref, c->target, 1.0f, NULL, NULL);
  return margin_l2_loss(c->nk, c->nr, c->d, c->key, c->ref, c->target, &c->mcfg, 1.0f, NULL, NULL);
}

int main(int argc, char **argv) {
  uint64_t seed = test_begin("losses", 20240601);
  h5file *f = oracle_open(argc > 1 ? argv[1] : NULL);
  const char *cases[] = {"small", "multi_pos", "mining", "no_mining", "all_empty", "wide"};
  margin_l2_cfg mcfg = {0.0f, 0.1f, 3.0f, 1, 0, 0};
  for (int ci = 0; ci < 6; ci++) {
    char name[128];
    int nd;
    int64_t ks[6], rs[6], n;
    snprintf(name, sizeof name, "%s/key", cases[ci]);
    float *key = oracle_read_any(f, name, &n, &nd, ks);
    snprintf(name, sizeof name, "%s/ref", cases[ci]);
    float *ref = oracle_read_any(f, name, &n, &nd, rs);
    snprintf(name, sizeof name, "%s/target", cases[ci]);
    float *target = oracle_read(f, name, 2, (int64_t[]){ks[0], rs[0]});
    int64_t nk = ks[0], nr = rs[0], d = ks[1];
    for (int which = 0; which < 2; which++) {
      const char *tag = which ? "margin" : "contrast";
      snprintf(name, sizeof name, "%s/%s/loss", cases[ci], tag);
      float *lref = oracle_read(f, name, 1, (int64_t[]){1});
      snprintf(name, sizeof name, "%s/%s/dkey", cases[ci], tag);
      float *dk_ref = oracle_read(f, name, 2, ks);
      snprintf(name, sizeof name, "%s/%s/dref", cases[ci], tag);
      float *dr_ref = oracle_read(f, name, 2, rs);
      // Gradients accumulate: start from 0.5 and subtract it afterwards.
      float *dk = malloc((size_t)(nk * d) * sizeof(float)), *dr = malloc((size_t)(nr * d) * sizeof(float));
      for (int64_t i = 0; i < nk * d; i++) dk[i] = 0.5f;
      for (int64_t i = 0; i < nr * d; i++) dr[i] = 0.5f;
      double loss = which ? margin_l2_loss(nk, nr, d, key, ref, target, &mcfg, 1.0f, dk, dr)
                          : unbiased_contrast_loss(nk, nr, d, key, ref, target, 1.0f, dk, dr);
      for (int64_t i = 0; i < nk * d; i++) dk[i] -= 0.5f;
      for (int64_t i = 0; i < nr * d; i++) dr[i] -= 0.5f;
      float lf = (float)loss;
      // float32 logits / cosines from float32 inputs vs float64: relative 1e-5 of O(1) values.
      const char *why = "float32 GEMM of d-term dot products vs float64; O(1) values";
      snprintf(name, sizeof name, "%s %s loss", cases[ci], tag);
      check_close(name, &lf, lref, 1, 1e-5, 1e-5, why);
      snprintf(name, sizeof name, "%s %s dkey", cases[ci], tag);
      check_close(name, dk, dk_ref, nk * d, 1e-6, 1e-4, why);
      snprintf(name, sizeof name, "%s %s dref", cases[ci], tag);
      check_close(name, dr, dr_ref, nr * d, 1e-6, 1e-4, why);
      // Weight scales value and gradients linearly.
      float *dk2 = calloc((size_t)(nk * d), sizeof(float));
      double l2 = which ? margin_l2_loss(nk, nr, d, key, ref, target, &mcfg, 0.25f, dk2, NULL)
                        : unbiased_contrast_loss(nk, nr, d, key, ref, target, 0.25f, dk2, NULL);
      int lin = fabs(l2 - 0.25 * loss) <= 1e-6 * (1 + fabs(loss));
      for (int64_t i = 0; i < nk * d; i++) lin &= fabsf(dk2[i] - 0.25f * dk[i]) <= 1e-6f + 1e-5f * fabsf(dk[i]);
      snprintf(name, sizeof name, "%s %s: loss weight scales value and gradient", cases[ci], tag);
      check_true(name, lin);
      // Finite differences (contrast: smooth; margin: mining set and clamp fixed for small steps,
      // checked away from exact kinks by the oracle agreement above).
      if (which == 0 && nk * d <= 512) {
        loss_ctx c = {nk, nr, d, key, ref, target, which, mcfg};
        snprintf(name, sizeof name, "%s %s fd dkey", cases[ci], tag);
        check_grad_fd(name, key, nk * d, dk, eval_loss, &c, 24, 1e-2f, 2e-4, 2e-3, seed, NULL);
        snprintf(name, sizeof name, "%s %s fd dref", cases[ci], tag);
        check_grad_fd(name, ref, nr * d, dr, eval_loss, &c, 24, 1e-2f, 2e-4, 2e-3, seed + 1, NULL);
      }
      free(lref), free(dk_ref), free(dr_ref), free(dk), free(dr), free(dk2);
    }
    free(key), free(ref), free(target);
  }
  check_true("empty inputs give zero loss",
             unbiased_contrast_loss(0, 5, 4, NULL, NULL, NULL, 1.0f, NULL, NULL) == 0.0 &&
                 margin_l2_loss(3, 0, 4, NULL, NULL, NULL, &mcfg, 1.0f, NULL, NULL) == 0.0);
  h5_close(f);
  return test_end();
}
