// SAM ViT image encoder (segment-anything ImageEncoderViT), forward only (it is frozen in MASA),
// up to the block outputs MASA reads (`forward_base_multi_level`, masa-spec §1.2): SAM's neck is
// not run and not registered.
// Parameter names (prefix "detector.backbone" in the MASA-SAM checkpoints, §9):
//   patch_embed.proj.{weight (C, 3, p, p), bias (C)}, pos_embed (1, G, G, C) with G = img_size / p,
//   blocks.{i}.norm1.{weight,bias}, blocks.{i}.attn.qkv.{weight (3C, C), bias (3C)},
//   blocks.{i}.attn.proj.{weight (C, C), bias}, blocks.{i}.attn.rel_pos_{h,w} (2S - 1, C / heads)
//   with S = G for global blocks and S = window for windowed ones,
//   blocks.{i}.norm2.*, blocks.{i}.mlp.lin1.{weight (4C, C), bias}, blocks.{i}.mlp.lin2.*.
// Computation (tokens kept as (B, H, W, C), row-major):
//   x = patch_embed(img) [+ pos_embed]; per block:
//     s = x; x = LN(x) (eps 1e-6); windowed blocks: zero-pad H, W at the bottom/right to a
//     multiple of the window and split into windows (padded tokens take part in attention as
//     SAM does: they are zeros after LN, so their keys/values are the qkv bias);
//     attention per window and head: softmax(scale q k^T + rel_h + rel_w) v with
//     rel_h[q, kh] = q . Rh[qh, kh], rel_w[q, kw] = q . Rw[qw, kw] (decomposed relative
//     positions, unscaled q; Rh = get_rel_pos(qH, kH, rel_pos_h), linearly interpolated
//     (align_corners False) when the table length differs from 2 max(q, k) - 1), proj;
//     unpartition (drop padding); x = s + x; x = x + lin2(GELU(lin1(LN(x)))).
//   Outputs: the block outputs listed in out_indices, as NCHW maps (B, C, H / p, W / p).
#ifndef MASA_VIT_SAM_H
#define MASA_VIT_SAM_H

#include "model/module.h"

#define VIT_SAM_MAX_DEPTH 64
#define VIT_SAM_MAX_OUT 8

typedef struct {
  int64_t img_size;    // 1024: fixes pos_embed (G x G) and the global blocks' rel-pos tables
  int64_t patch;       // 16
  int64_t embed;       // 768 (B), 1024 (L), 1280 (H)
  int depth;           // 12, 24, 32
  int64_t heads;       // 12, 16, 16
  int64_t mlp_ratio;   // 4
  int64_t window;      // 14 (0: every block global)
  int n_global;
  int global_idx[VIT_SAM_MAX_DEPTH];  // (2, 5, 8, 11) for B
  int n_out;
  int out_idx[VIT_SAM_MAX_OUT];       // MASA: the global blocks
  int use_abs_pos;     // 1 (SAM); the input's token grid must then be G x G
  int use_rel_pos;     // 1
  int qkv_bias;        // 1
  float ln_eps;        // 1e-6
  int64_t attn_chunk;  // floats of attention scores computed at once (0: 2^21, 8 MB); tests
                       // make it tiny to split windows and rows across chunks
} vit_sam_cfg;

// SAM ViT-B / ViT-L / ViT-H at 1024 with MASA's out_indices (the global-attention blocks).
void vit_sam_cfg_b(vit_sam_cfg *c);
void vit_sam_cfg_l(vit_sam_cfg *c);
void vit_sam_cfg_h(vit_sam_cfg *c);

typedef struct {
  int n1w, n1b, qkv_w, qkv_b, proj_w, proj_b, rel_h, rel_w, n2w, n2b, l1w, l1b, l2w, l2b;
  int global;
  int64_t rel_len;  // rows of rel_pos_h / rel_pos_w: 2 * (G or window) - 1
} vit_sam_block;

typedef struct {
  vit_sam_cfg cfg;
  int pe_w, pe_b, pos;  // pos -1 without absolute positions
  vit_sam_block blocks[VIT_SAM_MAX_DEPTH];
} vit_sam;

// All parameters are registered frozen (the encoder is never trained in MASA).
void vit_sam_register(vit_sam *m, param_table *t, const char *prefix, const vit_sam_cfg *cfg);
// PyTorch default init for the linears and the patch conv, LayerNorm 1 / 0, pos_embed and
// rel-pos tables N(0, 0.02) (SAM starts them at zero; non-zero makes a fresh model useful for tests).
void vit_sam_init(const vit_sam *m, param_table *t, uint64_t seed);

// img (B, 3, H, W), H and W multiples of the patch (SAM: 1024 x 1024). outs[k] receives the
// output of block out_idx[k] as (B, C, H / p, W / p), allocated from ctx->arena; scratch is
// released before returning. Runs on ctx_dev(ctx) (img, parameters and outputs live there).
void vit_sam_forward(const vit_sam *m, model_ctx *ctx, const tensor *img, tensor *outs);

#endif
