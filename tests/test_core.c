// Core runtime: counter-based RNG, config parsing and errors, HDF5 tensors and parameter tables
// (including every error path a user can hit: missing key, wrong shape, wrong dtype, truncated
// or non-HDF5 file), and the atomic weight writer.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/config.h"
#include "core/error.h"
#include "core/h5io.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "harness.h"

static char tmpdir[256];

static void path_in_tmp(char *buf, size_t n, const char *name) {
  snprintf(buf, n, "%s/%s", tmpdir, name);
}

static int contains(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

static void test_rng(uint64_t seed) {
  // Known-answer test: Philox4x32-10 with counter 0 and key 0 (Random123 kat_vectors).
  uint32_t r[4];
  rng_philox(0, 0, 0, r);
  check_true("philox4x32-10 known answer (zero key/counter)",
             r[0] == 0x6627e8d5u && r[1] == 0xe169c58du && r[2] == 0xbc57ac4cu && r[3] == 0x9b00dbd8u);
  // Same values whatever the thread count.
  int64_t n = 100003;
  float *a = malloc((size_t)n * sizeof(float)), *b = malloc((size_t)n * sizeof(float));
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  rng_fill_normal(a, n, 0, 1, seed, 7);
  omp_set_num_threads(4);
  rng_fill_normal(b, n, 0, 1, seed, 7);
  omp_set_num_threads(saved);
  check_true("rng_fill_normal independent of thread count", memcmp(a, b, (size_t)n * sizeof(float)) == 0);
  double m = 0, v = 0;
  for (int64_t i = 0; i < n; i++) m += a[i];
  m /= (double)n;
  for (int64_t i = 0; i < n; i++) v += (a[i] - m) * (a[i] - m);
  v /= (double)n;
  // For n = 1e5 standard normals: sd of the mean ~0.003, of the variance ~0.0045; 5 sigma bounds.
  check_true("normal mean within 5 sigma of 0", fabs(m) < 0.016);
  check_true("normal variance within 5 sigma of 1", fabs(v - 1) < 0.023);
  rng_fill_uniform(b, n, 0, 1, seed, 8);
  int in_range = 1;
  double mu = 0;
  for (int64_t i = 0; i < n; i++) {
    in_range &= b[i] >= 0 && b[i] < 1;
    mu += b[i];
  }
  check_true("uniform in [0, 1)", in_range);
  check_true("uniform mean within 5 sigma of 0.5", fabs(mu / (double)n - 0.5) < 0.0046);
  check_true("streams differ", rng_u32(seed, 1, 0) != rng_u32(seed, 2, 0));
  int below_ok = 1;
  for (uint64_t i = 0; i < 1000; i++) below_ok &= rng_below(seed, 3, i, 7) < 7;
  check_true("rng_below in range", below_ok);
  free(a), free(b);
}

static const cfg_key test_schema[] = {
    {"model.channels", CFG_INT, "256", "channels"},
    {"train.lr", CFG_FLOAT, "0.02", "learning rate"},
    {"train.sync_bn", CFG_BOOL, "false", "sync BN"},
    {"data.root", CFG_STRING, "data/demo", "data root"},
    {"model.strides", CFG_INT_LIST, "4, 8, 16, 32", "strides"},
    {"loss.stds", CFG_FLOAT_LIST, "0.1, 0.1, 0.2, 0.2", "target stds"},
    {NULL, 0, NULL, NULL}};

static int write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return 0;
  fputs(text, f);
  fclose(f);
  return 1;
}

static void test_config(void) {
  config c;
  config_init(&c);
  config_register(&c, test_schema);
  check_true("config defaults typed", config_int(&c, "model.channels") == 256 &&
                                          fabs(config_float(&c, "train.lr") - 0.02) < 1e-12 &&
                                          config_bool(&c, "train.sync_bn") == 0);
  int64_t st[8];
  check_true("int list default", config_int_list(&c, "model.strides", st, 8) == 4 && st[3] == 32);
  char path[512];
  path_in_tmp(path, sizeof path, "good.cfg");
  write_text(path, "# a recipe\nmodel.channels = 128   # trailing comment\n\ntrain.lr=0.01\n"
                   "train.sync_bn = true\ndata.root = /data/sa1b\nmodel.strides = 8,16\n");
  int rc = config_load_file(&c, path);
  check_true("config file loads", rc == MASA_OK);
  check_true("config file values", config_int(&c, "model.channels") == 128 &&
                                       fabs(config_float(&c, "train.lr") - 0.01) < 1e-12 &&
                                       config_bool(&c, "train.sync_bn") == 1 &&
                                       !strcmp(config_str(&c, "data.root"), "/data/sa1b") &&
                                       config_int_list(&c, "model.strides", st, 8) == 2);
  check_true("--set overrides", config_set_arg(&c, "train.lr=0.5") == MASA_OK &&
                                    fabs(config_float(&c, "train.lr") - 0.5) < 1e-12);
  char *dump = config_dump(&c);
  check_true("dump names origins", contains(dump, "train.lr = 0.5  # --set") &&
                                       contains(dump, "good.cfg:2"));
  free(dump);

  path_in_tmp(path, sizeof path, "unknown.cfg");
  write_text(path, "model.channels = 64\nmodel.chanels = 3\n");
  rc = config_load_file(&c, path);
  check_true("unknown key rejected with file:line and suggestion",
             rc == MASA_ERR && contains(masa_errmsg(), "unknown.cfg:2") &&
                 contains(masa_errmsg(), "model.chanels") && contains(masa_errmsg(), "did you mean 'model.channels'"));
  path_in_tmp(path, sizeof path, "badint.cfg");
  write_text(path, "\n\nmodel.channels = 12x\n");
  rc = config_load_file(&c, path);
  check_true("bad integer rejected with file:line",
             rc == MASA_ERR && contains(masa_errmsg(), "badint.cfg:3") && contains(masa_errmsg(), "integer"));
  path_in_tmp(path, sizeof path, "badbool.cfg");
  write_text(path, "train.sync_bn = maybe\n");
  check_true("bad boolean rejected", config_load_file(&c, path) == MASA_ERR && contains(masa_errmsg(), "true or false"));
  path_in_tmp(path, sizeof path, "badlist.cfg");
  write_text(path, "loss.stds = 0.1, x\n");
  check_true("bad list rejected", config_load_file(&c, path) == MASA_ERR && contains(masa_errmsg(), "list of numbers"));
  path_in_tmp(path, sizeof path, "dup.cfg");
  write_text(path, "train.lr = 1\ntrain.lr = 2\n");
  check_true("duplicate key rejected", config_load_file(&c, path) == MASA_ERR && contains(masa_errmsg(), "dup.cfg:2"));
  path_in_tmp(path, sizeof path, "noeq.cfg");
  write_text(path, "train.lr 1\n");
  check_true("line without '=' rejected", config_load_file(&c, path) == MASA_ERR && contains(masa_errmsg(), "noeq.cfg:1"));
  check_true("missing config file named", config_load_file(&c, "/nonexistent/x.cfg") == MASA_ERR &&
                                              contains(masa_errmsg(), "/nonexistent/x.cfg"));
  check_true("--set unknown key", config_set_arg(&c, "nope=1") == MASA_ERR && contains(masa_errmsg(), "--set"));
  check_true("--set without '='", config_set_arg(&c, "train.lr") == MASA_ERR);
  check_true("--set inf rejected", config_set_arg(&c, "train.lr=inf") == MASA_ERR);
  config_free(&c);
}

static void test_h5(uint64_t seed) {
  char path[512];
  path_in_tmp(path, sizeof path, "t.h5");
  h5file *f = h5_create(path);
  check_true("h5 create", f != NULL);
  int64_t sh[4] = {2, 3, 4, 5};
  float *x = malloc(120 * sizeof(float));
  rng_fill_uniform(x, 120, -1, 1, seed, 1);
  check_true("h5 write float32", h5_write(f, "masa_adapter.0.lateral_convs.0.conv.weight", x, 4, sh) == MASA_OK);
  int64_t idx[3] = {1, -2, 3}, ish[1] = {3};
  check_true("h5 write int64", h5_write_i64(f, "index", idx, 1, ish) == MASA_OK);
  check_true("h5 write nested name", h5_write(f, "case0/x", x, 1, (int64_t[]){120}) == MASA_OK);
  check_true("h5 attrs", h5_write_attr_str(f, "config", "a = 1\n") == MASA_OK &&
                             h5_write_attr_i64(f, "step", 1234) == MASA_OK);
  h5_close(f);

  f = h5_open_read(path);
  check_true("h5 open", f != NULL);
  float *y = calloc(120, sizeof(float));
  check_true("h5 round trip exact", h5_read(f, "masa_adapter.0.lateral_convs.0.conv.weight", y, 4, sh) == MASA_OK &&
                                        memcmp(x, y, 120 * sizeof(float)) == 0);
  check_true("h5 nested read", h5_has(f, "case0/x") && !h5_has(f, "case1/x") && !h5_has(f, "case0/y"));
  int64_t bad[4] = {2, 3, 5, 4};
  check_true("h5 wrong shape names key and both shapes",
             h5_read(f, "masa_adapter.0.lateral_convs.0.conv.weight", y, 4, bad) == MASA_ERR &&
                 contains(masa_errmsg(), "(2, 3, 4, 5)") && contains(masa_errmsg(), "(2, 3, 5, 4)") &&
                 contains(masa_errmsg(), "lateral_convs.0"));
  check_true("h5 missing key", h5_read(f, "nope", y, 4, sh) == MASA_ERR && contains(masa_errmsg(), "missing dataset 'nope'"));
  check_true("h5 wrong dtype", h5_read(f, "index", y, 1, ish) == MASA_ERR && contains(masa_errmsg(), "expected float32"));
  int64_t *ib;
  int nd;
  int64_t gsh[TENSOR_MAX_DIMS];
  check_true("h5 int64 read", h5_read_i64(f, "index", &ib, &nd, gsh) == MASA_OK && nd == 1 && ib[1] == -2);
  free(ib);
  char *s = NULL;
  int64_t step = 0;
  check_true("h5 attr read", h5_read_attr_str(f, "config", &s) == MASA_OK && !strcmp(s, "a = 1\n") &&
                                 h5_read_attr_i64(f, "step", &step) == MASA_OK && step == 1234);
  free(s);
  check_true("h5 lists datasets", h5_count(f) == 3);
  h5_close(f);

  // Truncated copy of a larger file.
  char tpath[512];
  path_in_tmp(tpath, sizeof tpath, "trunc.h5");
  f = h5_create(tpath);
  float *big = calloc(100000, sizeof(float));
  h5_write(f, "big", big, 1, (int64_t[]){100000});
  h5_close(f);
  check_true("truncate file", truncate(tpath, 2000) == 0);
  f = h5_open_read(tpath);
  int trunc_ok = f == NULL && contains(masa_errmsg(), "trunc.h5");
  if (f) {  // some HDF5 versions open it and fail on read: that must be reported too
    float *dst = malloc(100000 * sizeof(float));
    trunc_ok = h5_read(f, "big", dst, 1, (int64_t[]){100000}) == MASA_ERR && contains(masa_errmsg(), "trunc.h5");
    free(dst);
    h5_close(f);
  }
  check_true("truncated HDF5 reported with its path", trunc_ok);
  free(big);
  char npath[512];
  path_in_tmp(npath, sizeof npath, "not.h5");
  write_text(npath, "this is not an HDF5 file\n");
  check_true("non-HDF5 file reported", h5_open_read(npath) == NULL && contains(masa_errmsg(), "not.h5"));
  check_true("missing file reported", h5_open_read("/nonexistent/w.h5") == NULL &&
                                          contains(masa_errmsg(), "/nonexistent/w.h5"));
  free(x), free(y);
}

static void test_params(uint64_t seed) {
  param_table t;
  param_table_init(&t);
  int a = param_table_add(&t, "backbone.conv1.weight", 4, (int64_t[]){8, 3, 3, 3}, 0);
  int b = param_table_add(&t, "track_head.embed_head.fc_embed.weight", 2, (int64_t[]){4, 6}, 1);
  int c = param_table_add(&t, "track_head.embed_head.fc_embed.bias", 1, (int64_t[]){4}, 1);
  param_table_alloc(&t);
  check_true("trainable params first and contiguous",
             t.entries[b].offset == 0 && t.entries[c].offset == 24 && t.entries[a].offset == 28 &&
                 t.trainable_total == 28 && t.total == 28 + 216);
  rng_fill_uniform(t.params, (int64_t)t.total, -1, 1, seed, 3);
  char path[512];
  path_in_tmp(path, sizeof path, "w.h5");
  check_true("save params atomically", h5_save_params(path, &t) == MASA_OK && access(path, F_OK) == 0);
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  check_true("no temporary left behind", access(tmp, F_OK) != 0);
  param_table u;
  param_table_init(&u);
  param_table_add(&u, "backbone.conv1.weight", 4, (int64_t[]){8, 3, 3, 3}, 0);
  param_table_add(&u, "track_head.embed_head.fc_embed.weight", 2, (int64_t[]){4, 6}, 1);
  param_table_add(&u, "track_head.embed_head.fc_embed.bias", 1, (int64_t[]){4}, 1);
  param_table_alloc(&u);
  h5file *f = h5_open_read(path);
  check_true("load params", h5_load_params(f, &u, 1) == MASA_OK &&
                                memcmp(t.params, u.params, t.total * sizeof(float)) == 0);
  h5_close(f);
  param_table v;
  param_table_init(&v);
  param_table_add(&v, "backbone.conv1.weight", 4, (int64_t[]){8, 3, 5, 5}, 0);
  param_table_add(&v, "track_head.embed_head.fc1.weight", 2, (int64_t[]){4, 6}, 1);
  param_table_alloc(&v);
  f = h5_open_read(path);
  int rc = h5_load_params(f, &v, 1);
  const char *m = masa_errmsg();
  check_true("load reports every problem at once",
             rc == MASA_ERR && contains(m, "4 problems") && contains(m, "shape mismatch: backbone.conv1.weight") &&
                 contains(m, "missing: track_head.embed_head.fc1.weight") &&
                 contains(m, "unexpected: track_head.embed_head.fc_embed"));
  h5_close(f);
  param_table_free(&t), param_table_free(&u), param_table_free(&v);
}

static void test_arena(void) {
  arena a;
  arena_init(&a, 1024);
  float *p = arena_floats(&a, 10), *q = arena_zeros(&a, 300);  // second one needs a new block
  int aligned = ((uintptr_t)p % 64 == 0) && ((uintptr_t)q % 64 == 0);
  int zero = 1;
  for (int i = 0; i < 300; i++) zero &= q[i] == 0.0f;
  check_true("arena aligned and zeroed", aligned && zero);
  arena_mark_t m = arena_mark(&a);
  size_t used = a.used;
  (void)arena_floats(&a, 5000);
  arena_rewind(&a, m);
  check_true("arena rewind restores usage", a.used == used);
  size_t peak = a.peak;
  arena_reset(&a);
  check_true("arena reset keeps one block of the peak size", a.used == 0 && a.peak == peak);
  float *r = arena_floats(&a, (int64_t)(peak / sizeof(float)) - 16);
  r[0] = 1.0f;
  check_true("after reset the peak fits in one block", a.used <= peak);
  arena_free(&a);
}

int main(void) {
  uint64_t seed = test_begin("test_core", 42);
  snprintf(tmpdir, sizeof tmpdir, "/tmp/masa_test_core_XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  test_rng(seed);
  test_config();
  test_h5(seed);
  test_params(seed);
  test_arena();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmpdir);
  return test_end();
}
