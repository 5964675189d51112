// Guard-device parity of the SAM ViT encoder (model/vit_sam.c): the forward runs on the cpu
// device and on the guard device (core/device.h) with the same random parameters and image, and
// every output must be bit-identical (the guard device computes with the same CPU twins, so any
// difference or a guard fault means host code touched device memory). Shallow configurations
// cover what the model uses: windowed blocks with padding (token grid not a multiple of the
// window), global blocks, absolute positions or none, rel-pos tables used as is or interpolated
// (global block on a non-G x G grid), 2 and 3 heads, head dims off the dot8 lane count, and
// score chunks that split windows (partial-window GEMMs next to batched whole-window runs).
#include <stdio.h>
#include <stdlib.h>

#include "core/rng.h"
#include "guard_util.h"
#include "harness.h"
#include "model/vit_sam.h"

typedef struct {
  const char *name;
  int64_t img_size, patch, embed, heads, window, chunk;
  int depth, use_abs_pos, n_global, global_idx[2];
  int64_t B, H, W;
} vit_case;

static void run_case(const vit_case *vc, uint64_t seed) {
  vit_sam_cfg cfg;
  vit_sam_cfg_b(&cfg);
  cfg.img_size = vc->img_size, cfg.patch = vc->patch, cfg.embed = vc->embed;
  cfg.depth = vc->depth, cfg.heads = vc->heads, cfg.window = vc->window;
  cfg.use_abs_pos = vc->use_abs_pos, cfg.attn_chunk = vc->chunk;
  cfg.n_global = vc->n_global;
  for (int i = 0; i < vc->n_global; i++) cfg.global_idx[i] = vc->global_idx[i];
  cfg.n_out = vc->depth;  // every block's output, so a fault is pinned to its block
  for (int i = 0; i < vc->depth; i++) cfg.out_idx[i] = i;

  param_table t;
  param_table_init(&t);
  vit_sam m;
  vit_sam_register(&m, &t, "detector.backbone", &cfg);
  param_table_alloc(&t);
  vit_sam_init(&m, &t, seed);
  // LayerNorm starts at 1 / 0: perturb everything so every parameter matters.
  float *noise = mallocCheck(t.total * sizeof(float));
  rng_fill_uniform(noise, (int64_t)t.total, -0.05f, 0.05f, seed, 11);
  for (size_t i = 0; i < t.total; i++) t.params[i] += noise[i];
  free(noise);

  tensor x = tensor_alloc4(vc->B, 3, vc->H, vc->W);
  rng_fill_uniform(x.data, tensor_numel(&x), -2.0f, 2.0f, seed, 12);

  // Reference on the cpu device.
  arena ar;
  arena_init(&ar, (size_t)8 << 20);
  model_ctx ctx = {.params = &t, .arena = &ar, .training = 0};
  tensor outs[VIT_SAM_MAX_OUT];
  vit_sam_forward(&m, &ctx, &x, outs);

  // The same on the guard device.
  param_table tg;
  param_table_clone_layout(&tg, &t, &guard_dev);
  param_table_copy_roles(&tg, &t);
  arena ag, host;
  arena_init_on(&ag, (size_t)8 << 20, &guard_dev);
  arena_init(&host, (size_t)1 << 20);
  model_ctx gctx = {.params = &tg, .arena = &ag, .training = 0, .host = &host};
  tensor xg = guard_put(&ag, &x);
  tensor gouts[VIT_SAM_MAX_OUT];
  vit_sam_forward(&m, &gctx, &xg, gouts);

  for (int k = 0; k < cfg.n_out; k++) {
    char what[128];
    snprintf(what, sizeof what, "%s block %d (%s) output", vc->name, cfg.out_idx[k],
             m.blocks[cfg.out_idx[k]].global ? "global" : "windowed");
    check_true(what, tensor_same_shape(&outs[k], &gouts[k]));
    guard_check_same(what, &guard_dev, gouts[k].data, outs[k].data, tensor_numel(&outs[k]));
  }

  arena_free(&ag);
  arena_free(&host);
  param_table_free(&tg);
  char what[128];
  snprintf(what, sizeof what, "%s: guard memory released", vc->name);
  check_true(what, dev_guard_bytes() == 0);
  arena_free(&ar);
  param_table_free(&t);
  tensor_free(&x);
}

int main(void) {
  uint64_t seed = test_begin("guard_vit", 20240611);
  const vit_case cases[] = {
      // SAM layout: absolute positions, 5 x 5 tokens in windows of 3 (padded to 6 x 6), block 1
      // global; chunks of 40 floats: 4 score rows at a time, windows split across chunks.
      {"abs 5x5 w3 chunk40", 80, 16, 48, 3, 3, 40, 3, 1, 1, {1}, 2, 80, 80},
      // Chunks of 200 floats: 22 rows of 9-token windows = partial window, whole windows
      // (batched), partial window; 8 rows of the 25-token global rows.
      {"abs 5x5 w3 chunk200", 80, 16, 48, 3, 3, 200, 3, 1, 1, {1}, 2, 80, 80},
      // The same with the default chunk (whole windows batched per head).
      {"abs 5x5 w3", 80, 16, 48, 3, 3, 0, 3, 1, 1, {1}, 2, 80, 80},
      // No absolute positions, non-square 7 x 11 tokens (patch 4), windows of 4 (padded to
      // 8 x 12); the global block's tables (2 * 12 - 1 rows) are interpolated to 13 and 21 rows;
      // head dim 15 (a dot8 tail).
      {"noabs 7x11 w4", 48, 4, 30, 2, 4, 0, 3, 0, 1, {2}, 1, 28, 44},
      // One image, one head of 40, windows of 4 over 3 x 5 tokens, two
      // global blocks out of four, chunks of 600 floats (37 rows of 16-token windows).
      {"noabs 3x5 w4 h1", 24, 8, 40, 1, 4, 600, 4, 0, 2, {0, 3}, 1, 24, 40},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], seed);
  return test_end();
}
