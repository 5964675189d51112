#include "eval/detector_masa.h"

#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/check.h"
#include "core/error.h"
#include "core/log.h"
#include "model/masa_model.h"

int masa_detect_sequence(const config *cfg, const char *weights, const char *device_name,
                         const frame_seq *fs, det_set *out) {
  masa_model m;
  if (masa_model_load(cfg, weights, &m) != MASA_OK) return MASA_ERR;
  if (!m.cfg.with_rpn || !m.cfg.with_bbox_head) {
    masa_model_free(&m);
    return masa_error("track without --dets needs a recipe with model.rpn = true and a model.bbox_head");
  }
  memset(out, 0, sizeof *out);
  out->format = DETS_MOT;
  out->num_frames = fs->num_frames;
  out->num_labels = 1;
  out->start = callocCheck((size_t)fs->num_frames + 1, sizeof(int64_t));
  int64_t cap = 256, n = 0;
  out->dets = mallocCheck((size_t)cap * sizeof(det_box));
  const masa_model_cfg *c = &m.cfg;
  anchor_generator ag = anchor_generator_make(c->num_outs, c->strides);
  delta_xywh_coder rpn_coder = delta_xywh_coder_make((float[]){0, 0, 0, 0}, (float[]){1, 1, 1, 1});
  delta_xywh_coder box_coder = delta_xywh_coder_make((float[]){0, 0, 0, 0}, (float[]){0.1f, 0.1f, 0.2f, 0.2f});
  rpn_proposal_cfg pc = rpn_proposal_cfg_test();
  rcnn_test_cfg rc = rcnn_test_cfg_default();
  float *props = mallocCheck((size_t)pc.max_per_img * 4 * sizeof(float));
  float *pscores = mallocCheck((size_t)pc.max_per_img * sizeof(float));
  float *rois = mallocCheck((size_t)pc.max_per_img * 5 * sizeof(float));
  float *boxes = mallocCheck((size_t)pc.max_per_img * 4 * sizeof(float));
  float *scores = mallocCheck((size_t)pc.max_per_img * sizeof(float));
  model_runner run;
  if (model_runner_open(&run, &m.params, device_name, cfg) != MASA_OK) {
    masa_model_free(&m);
    free(props), free(pscores), free(rois), free(boxes), free(scores);
    det_set_free(out);
    return MASA_ERR;
  }
  model_ctx ctx;
  int rcode = MASA_OK;
  progress pr;
  progress_begin(&pr, "detect", fs->num_frames, "frames");
  for (int t = 0; t < fs->num_frames && rcode == MASA_OK; t++) {
    image_u8 im = {0};
    if (frame_seq_load(fs, t, &im) != MASA_OK) {
      rcode = MASA_ERR;
      break;
    }
    model_runner_begin(&run, &m.params, &ctx);
    tensor x;
    preprocess_meta meta;
    preprocess_images(&im, 1, &c->pre, &x, &meta);
    tensor xd = x;
    xd.data = ctx_upload(&ctx, x.data, tensor_numel(&x));
    masa_feat_acts fa;
    masa_features_forward(&m, &ctx, &xd, &fa);
    rpn_head_acts ra;
    rpn_head_forward(&m.rpn, &ctx, c->num_outs, fa.feats, &ra);
    int64_t np = rpn_proposals_dev(ctx_dev(&ctx), &ag, &rpn_coder, &pc, ra.cls, ra.reg, 0,
                                   (float)meta.h, (float)meta.w, props, pscores, NULL);
    for (int64_t i = 0; i < np; i++) {
      rois[5 * i] = 0.0f;
      memcpy(rois + 5 * i + 1, props + 4 * i, 4 * sizeof(float));
    }
    bbox_head_acts ba;
    bbox_head_forward(&m.bbox, &ctx, fa.feats, np, ctx_upload(&ctx, rois, np * 5), &ba);
    tensor hc = ctx_host_view(&ctx, &ba.cls), hr = ctx_host_view(&ctx, &ba.reg);
    int64_t nd = bbox_head_predict(1, &box_coder, &rc, np, props, hc.data, hr.data,
                                   (float)meta.h, (float)meta.w, boxes, scores, NULL, NULL);
    for (int64_t i = 0; i < nd; i++) {
      if (n == cap) {
        cap *= 2;
        det_box *nb = realloc(out->dets, (size_t)cap * sizeof(det_box));
        if (!nb) masa_die(__FILE__, __LINE__, "realloc", "libc", "out of memory");
        out->dets = nb;
      }
      det_box *d = &out->dets[n++];
      // Network pixels back to frame pixels (mmdet rescales by the recorded scale factor).
      d->box[0] = boxes[4 * i] / (float)meta.scale_x;
      d->box[1] = boxes[4 * i + 1] / (float)meta.scale_y;
      d->box[2] = boxes[4 * i + 2] / (float)meta.scale_x;
      d->box[3] = boxes[4 * i + 3] / (float)meta.scale_y;
      d->score = scores[i];
      d->label = 0;
    }
    out->start[t + 1] = n;
    tensor_free(&x);
    image_free(&im);
    progress_update(&pr, t + 1, NULL);
  }
  progress_end(&pr, fs->num_frames);
  out->n = n;
  free(props), free(pscores), free(rois), free(boxes), free(scores);
  model_runner_close(&run);
  masa_model_free(&m);
  if (rcode != MASA_OK) det_set_free(out);
  return rcode;
}
