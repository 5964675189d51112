// `masa check`, part 2: one full training step (both views, proposals, track targets, losses,
// distillation, backward through heads, adapter and backbone) on a device against the same step
// on the cpu. A small demo-shaped model and two synthetic SA-1B pairs; the model is initialised
// once and copied to both devices, and both steppers see the same batch.
// - Compared: the summed loss, and every parameter gradient grouped by top-level module
//   (backbone, masa_adapter, rpn_head, roi_head, track_head): relative L2 error and max abs error.
// - The recipe avoids discrete choices that a last-bit difference could flip (which would make
//   the two steps train on different samples rather than show a kernel error): jittered GT
//   proposals instead of RPN top-k + NMS, and no hard-negative mining in the margin loss.
// - Tolerances: the guard device runs the CPU twins in the same order, so 0 (bit-identical). A
//   GPU sums in other orders (cuBLAS, block trees, atomics in the DCN input gradient): the
//   gradients' relative L2 error must stay below 1e-3, the loss within 1e-4 relative. A real
//   kernel bug moves either by orders of magnitude more.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/gpu_check.h"
#include "cli/schemas.h"
#include "core/check.h"
#include "core/error.h"
#include "core/log.h"
#include "data/loader.h"
#include "data/synth.h"
#include "model/masa_model.h"
#include "train/train_step.h"

static const char *const step_recipe[] = {
    "model.backbone=resnet", "model.resnet.depth=18", "model.resnet.width=16",
    "model.resnet.style=pytorch", "model.resnet.frozen_stages=-1", "model.backbone_trainable=true",
    "model.pyramid=fpn", "model.pyramid_norm=bn_train", "model.channels=32", "model.num_outs=5",
    "model.strides=4, 8, 16, 32, 64", "model.fusion=deform", "model.fusion_blocks=1",
    "model.fusion_gn_groups=16", "model.track_levels=4", "model.track.convs=1",
    "model.track.conv_channels=32", "model.track.gn_groups=16", "model.track.fc_channels=64",
    "model.track.embed_channels=32", "model.rpn=true", "model.bbox_head=shared2fc",
    "model.bbox_fc_channels=64", "aug.view_size=96", "data.batch_size=2", "data.workers=1",
    "data.sampling=random", "data.epoch_length=8", "train.proposals=jitter", "train.distill=true",
    "train.jitter_copies=4", "train.jitter_random=16", "loss.hard_mining=false", NULL};

static const char *const groups[] = {"backbone", "masa_adapter", "rpn_head", "roi_head",
                                     "track_head"};

static void row(check_state *st, const char *what, int64_t n, double max_abs, double rel,
                double tol, const char *tol_desc) {
  int ok = rel <= tol && max_abs == max_abs;
  st->total++;
  if (!ok) st->failures++;
  printf("%-40s %10lld %11.3g %11.3g %17s %s\n", what, (long long)n, max_abs, rel, tol_desc,
         ok ? "pass" : "FAIL");
}

// Writes 4 small synthetic SA-1B images into a fresh temporary directory.
static int make_data(char *dir, size_t cap) {
  const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(dir, cap, "%s/masa_check_XXXXXX", base);
  if (!mkdtemp(dir)) return masa_error("%s: cannot create a temporary directory", dir);
  synth_opts so;
  synth_default_opts(&so);
  so.n_images = 4, so.h = 128, so.w = 160, so.seed = 7;
  return synth_sa1b(&so, dir);
}

static void remove_data(const char *dir) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) log_warn("could not remove %s", dir);
}

int gpu_check_train_step(check_state *st, const device *dev, uint64_t seed) {
  char dir[1024];
  if (make_data(dir, sizeof dir) != MASA_OK) {
    log_error("%s", masa_errmsg());
    st->total++, st->failures++;
    return MASA_ERR;
  }
  config cfg;
  config_init(&cfg);
  register_all_schemas(&cfg);
  int rc = MASA_OK;
  for (int i = 0; step_recipe[i] && rc == MASA_OK; i++) rc = config_set_arg(&cfg, step_recipe[i]);
  if (rc == MASA_OK) rc = config_set(&cfg, "data.path", dir, "check");
  masa_model_cfg mc;
  loader_opts lo;
  if (rc == MASA_OK) rc = masa_model_cfg_from_config(&cfg, &mc);
  if (rc == MASA_OK) rc = loader_opts_from_config(&cfg, &lo);
  loader *ld = rc == MASA_OK ? loader_open(&lo, NULL) : NULL;
  const loader_batch *b = ld ? loader_next(ld) : NULL;
  if (!b) {
    log_error("train-step check: %s", masa_errmsg());
    if (ld) loader_close(ld);
    config_free(&cfg);
    remove_data(dir);
    st->total++, st->failures++;
    return MASA_ERR;
  }
  masa_model mr, md;  // reference (cpu) and device copies of one initialisation
  masa_model_build(&mr, &mc);
  masa_model_init(&mr, seed);
  masa_model_build(&md, &mc);
  param_table_copy_roles(&md.params, &mr.params);
  device_activate(dev);
  param_table_to_device(&md.params, dev);
  train_stepper *sr = train_stepper_open(&cfg, &mr), *sd = train_stepper_open(&cfg, &md);
  masa_assert(sr && sd);
  arena ar_r, ar_d, ar_h;
  arena_init(&ar_r, 0);
  arena_init_on(&ar_d, 0, dev);
  arena_init(&ar_h, (size_t)1 << 20);
  model_ctx cr = {&mr.params, &ar_r, 1, NULL, NULL, NULL};
  model_ctx cd = {&md.params, &ar_d, 1, NULL, NULL, dev_is_host(dev) ? NULL : &ar_h};
  train_step_stats s_r, s_d;
  train_stepper_run(sr, &cr, b, 0, 0, 1, &s_r);
  train_stepper_run(sd, &cd, b, 0, 0, 1, &s_d);
  // Gradients (and the BN running statistics the step updated) back on the host.
  param_table hd;
  param_table_clone_layout(&hd, &md.params, &dev_cpu);
  param_table_copy_roles(&hd, &md.params);
  int exact = dev->kind == DEV_GUARD;
  double tol_g = exact ? 0.0 : 1e-3, tol_l = exact ? 0.0 : 1e-4;
  const char *desc_g = exact ? "0 (bitwise)" : "rel L2 1e-3", *desc_l = exact ? "0 (bitwise)" : "rel 1e-4";
  char what[96];
  snprintf(what, sizeof what, "train step on %s: loss", device_name(dev));
  double dl = fabs(s_d.loss - s_r.loss);
  row(st, what, 1, dl, dl / (fabs(s_r.loss) + 1e-30), tol_l, desc_l);
  snprintf(what, sizeof what, "train step on %s: track RoIs", device_name(dev));
  double dr = fabs(s_d.key_rois - s_r.key_rois) + fabs(s_d.ref_rois - s_r.ref_rois) +
              fabs(s_d.det_rois - s_r.det_rois);
  row(st, what, 3, dr, dr, 0.0, "0 (same samples)");
  for (int g = 0; g < (int)(sizeof groups / sizeof groups[0]); g++) {
    double num = 0, den = 0, mx = 0;
    int64_t n = 0;
    size_t len = strlen(groups[g]);
    for (int i = 0; i < mr.params.count; i++) {
      const param_entry *e = &mr.params.entries[i];
      if (strncmp(e->name, groups[g], len) || e->name[len] != '.') continue;
      // Trainable entries: their gradients. Frozen ones (BN running statistics): their values,
      // which a training-mode BN updates in the step.
      const float *a = e->trainable ? mr.params.grads : mr.params.params;
      const float *c = e->trainable ? hd.grads : hd.params;
      for (int64_t k = 0; k < e->numel; k++) {
        double ref = a[e->offset + k], d = (double)c[e->offset + k] - ref;
        num += d * d, den += ref * ref;
        if (fabs(d) > mx || d != d) mx = fabs(d);
      }
      n += e->numel;
    }
    if (!n) continue;
    snprintf(what, sizeof what, "train step on %s: %s grads", device_name(dev), groups[g]);
    row(st, what, n, mx, sqrt(num) / (sqrt(den) + 1e-30), tol_g, desc_g);
  }
  param_table_free(&hd);
  arena_free(&ar_r), arena_free(&ar_d), arena_free(&ar_h);
  train_stepper_close(sr), train_stepper_close(sd);
  masa_model_free(&mr), masa_model_free(&md);
  loader_close(ld);
  config_free(&cfg);
  remove_data(dir);
  return MASA_OK;
}
