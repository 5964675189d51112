// `masa synth OUT_DIR [options]`: writes a deterministic synthetic dataset (data/synth.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/check.h"
#include "core/error.h"
#include "core/log.h"
#include "data/synth.h"

static const char *synth_usage =
    "usage: masa synth OUT_DIR [--images N] [--size HxW] [--objects N|MIN-MAX] [--seed S]\n"
    "                          [--quality Q] [--tar [--per-shard K]]\n"
    "       masa synth OUT_DIR --video [--seqs N] [--frames N] [--size HxW] [--objects N|MIN-MAX]\n"
    "                          [--fps F] [--seed S] [--quality Q]\n"
    "  SA-1B format (default): sa_N.jpg + sa_N.json (compressed RLE masks of the visible parts\n"
    "  of occluding textured objects); --tar packs them into sa_000000.tar, ... (K per shard).\n"
    "  --video: MOTChallenge sequences OUT_DIR/SYN-01, ... (img1/, seqinfo.ini, gt/gt.txt,\n"
    "  det/det.txt). Defaults: 16 images of 256x320 with 8-24 objects, 8 per shard; video: 2\n"
    "  sequences of 60 frames with 4-8 objects at 30 fps. Output is a pure function of the seed.\n";

static int parse_long(const char *opt, const char *s, long lo, long hi, long *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (!*s || *end || v < lo || v > hi) return masa_error("%s: expected an integer in [%ld, %ld], got '%s'", opt, lo, hi, s);
  *out = v;
  return MASA_OK;
}

static int parse_size(const char *s, int *h, int *w) {
  char *end;
  long a = strtol(s, &end, 10);
  if (end == s || (*end != 'x' && *end != 'X')) return masa_error("--size: expected HxW (rows x columns), got '%s'", s);
  const char *rest = end + 1;
  long b = strtol(rest, &end, 10);
  if (end == rest || *end || a < 16 || b < 16 || a > 16384 || b > 16384)
    return masa_error("--size: expected HxW with both in [16, 16384], got '%s'", s);
  *h = (int)a;
  *w = (int)b;
  return MASA_OK;
}

static int parse_range(const char *s, int *lo, int *hi) {
  char *end;
  long a = strtol(s, &end, 10), b = a;
  if (end != s && *end == '-') {
    const char *rest = end + 1;
    b = strtol(rest, &end, 10);
    if (end == rest) end = (char *)"x";
  }
  if (end == s || *end || a < 0 || b < a || b > 9999)
    return masa_error("--objects: expected N or MIN-MAX with 0 <= MIN <= MAX <= 9999, got '%s'", s);
  *lo = (int)a;
  *hi = (int)b;
  return MASA_OK;
}

int cmd_synth(int argc, char **argv) {
  config cfg;
  config_init(&cfg);
  char **rest = mallocCheck((size_t)(argc > 0 ? argc : 1) * sizeof(char *));
  int nrest = 0, rc = cli_parse_common(argc, argv, &cfg, rest, &nrest);
  config_free(&cfg);
  synth_opts so;
  synth_video_opts vo;
  synth_default_opts(&so);
  synth_video_default_opts(&vo);
  const char *out = NULL;
  int video = 0, tar = 0, per_shard = 8, h = 0, w = 0, omin = -1, omax = -1, quality = 90;
  long v, seqs = vo.n_seqs, frames = vo.n_frames, fps = vo.fps, images = so.n_images;
  unsigned long long seed = 0;
  for (int i = 0; i < nrest && rc == MASA_OK; i++) {
    const char *a = rest[i], *val = i + 1 < nrest ? rest[i + 1] : NULL;
    static const char *valued[] = {"--images", "--size", "--objects", "--seed", "--quality",
                                   "--per-shard", "--seqs", "--frames", "--fps"};
    int needs = 0;
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) needs |= !strcmp(a, valued[k]);
    if (needs && !val) {
      rc = masa_error("%s needs a value", a);
      break;
    }
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(synth_usage, stdout);
      free(rest);
      return 0;
    } else if (!strcmp(a, "--video")) {
      video = 1;
    } else if (!strcmp(a, "--tar")) {
      tar = 1;
    } else if (!strcmp(a, "--images")) {
      rc = parse_long(a, val, 0, 1L << 40, &images);
      i++;
    } else if (!strcmp(a, "--size")) {
      rc = parse_size(val, &h, &w);
      i++;
    } else if (!strcmp(a, "--objects")) {
      rc = parse_range(val, &omin, &omax);
      i++;
    } else if (!strcmp(a, "--seed")) {
      char *end;
      seed = strtoull(val, &end, 10);
      if (!*val || *end || val[0] == '-') rc = masa_error("--seed: expected a non-negative integer, got '%s'", val);
      i++;
    } else if (!strcmp(a, "--quality")) {
      rc = parse_long(a, val, 1, 100, &v);
      quality = (int)v;
      i++;
    } else if (!strcmp(a, "--per-shard")) {
      rc = parse_long(a, val, 1, 1L << 30, &v);
      per_shard = (int)v;
      i++;
    } else if (!strcmp(a, "--seqs")) {
      rc = parse_long(a, val, 1, 999, &seqs);
      i++;
    } else if (!strcmp(a, "--frames")) {
      rc = parse_long(a, val, 1, 999999, &frames);
      i++;
    } else if (!strcmp(a, "--fps")) {
      rc = parse_long(a, val, 1, 1000, &fps);
      i++;
    } else if (!strncmp(a, "--", 2) || out) {
      rc = masa_error("synth: unexpected argument '%s'", a);
    } else {
      out = a;
    }
  }
  free(rest);
  if (rc == MASA_OK && !out) {
    fputs(synth_usage, stderr);
    return 1;
  }
  if (rc == MASA_OK && video) {
    vo.seed = seed;
    vo.n_seqs = (int)seqs;
    vo.n_frames = (int)frames;
    vo.fps = (int)fps;
    vo.jpeg_quality = quality;
    if (h) vo.h = h, vo.w = w;
    if (omin >= 0) vo.objects_min = omin, vo.objects_max = omax;
    double t0 = time_now();
    rc = synth_video(&vo, out);
    if (rc == MASA_OK)
      log_info("synth: %d sequences x %d frames of %dx%d in %s (%.1f s)", vo.n_seqs, vo.n_frames, vo.h, vo.w,
               out, time_now() - t0);
  } else if (rc == MASA_OK) {
    so.seed = seed;
    so.n_images = images;
    so.jpeg_quality = quality;
    so.per_shard = tar ? per_shard : 0;
    if (h) so.h = h, so.w = w;
    if (omin >= 0) so.objects_min = omin, so.objects_max = omax;
    double t0 = time_now();
    rc = synth_sa1b(&so, out);
    if (rc == MASA_OK)
      log_info("synth: %lld images of %dx%d in %s%s (%.1f s)", (long long)so.n_images, so.h, so.w, out,
               tar ? " (tar shards)" : "", time_now() - t0);
  }
  if (rc != MASA_OK) {
    fprintf(stderr, "masa synth: %s\n", masa_errmsg());
    return 1;
  }
  return 0;
}
