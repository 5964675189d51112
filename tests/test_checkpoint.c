// Checkpoints (train/checkpoint.c): bit-exact save/load round trips for SGD and AdamW state,
// clear errors for mismatched models, wrong optimizer, wrong format version, truncated files and
// weight-only files; keep-last-K pruning; the `latest` pointer; a crash between writing NAME.tmp
// and the rename leaves the previous checkpoint loadable; resume falls back past a corrupt file.
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/check.h"
#include "core/error.h"
#include "core/h5io.h"
#include "core/log.h"
#include "harness.h"
#include "train/checkpoint.h"

typedef struct {
  const char *name;
  int ndim;
  int64_t shape[4];
  int trainable;
} entry_def;

static const entry_def ENTRIES[] = {
    {"masa_adapter.0.lateral_convs.0.conv.weight", 4, {8, 6, 1, 1}, 1},
    {"masa_adapter.0.lateral_convs.0.bn.weight", 1, {8}, 1},
    {"masa_adapter.0.lateral_convs.0.bn.bias", 1, {8}, 1},
    {"track_head.embed_head.fc_embed.weight", 2, {5, 12}, 1},
    {"track_head.embed_head.fc_embed.bias", 1, {5}, 1},
    {"masa_adapter.0.lateral_convs.0.bn.running_mean", 1, {8}, 0},
    {"masa_adapter.0.lateral_convs.0.bn.running_var", 1, {8}, 0},
    {"backbone.conv1.weight", 4, {4, 3, 3, 3}, 0},
};
#define NENT ((int)(sizeof ENTRIES / sizeof ENTRIES[0]))

static char g_root[256];

// Builds the table; `variant` 1 changes a shape, 2 adds an entry, 3 drops one.
static void make_table(param_table *t, int variant) {
  param_table_init(t);
  for (int i = 0; i < NENT; i++) {
    entry_def e = ENTRIES[i];
    if (variant == 1 && i == 3) e.shape[1] = 13;
    if (variant == 3 && i == 4) continue;
    param_table_add(t, e.name, e.ndim, e.shape, e.trainable);
  }
  if (variant == 2) param_table_add(t, "track_head.embed_head.extra.weight", 1, (int64_t[]){3}, 1);
  param_table_alloc(t);
}

static void setup(param_table *t, optim *opt, optim_kind kind, uint64_t seed, int random_state) {
  make_table(t, 0);
  optim_opts o = {kind, 0.08, 0.9, 0.9, 0.999, 1e-8, 1e-4, 0, 35, 5};
  optim_init(opt, &o, t);
  if (!random_state) return;
  rng_fill_normal(t->params, (int64_t)t->total, 0, 1, seed, 1);
  rng_fill_normal(t->moment1, (int64_t)t->trainable_total, 0, 1, seed, 2);
  if (t->moment2) rng_fill_uniform(t->moment2, (int64_t)t->trainable_total, 0, 1, seed, 3);
  t->params[3] = -0.0f;  // bit patterns, not just values, must survive
  t->params[5] = 1e-40f;  // a denormal
  opt->steps = 1234;
  opt->skipped_total = 7;
  opt->skipped_consecutive = 2;
}

static checkpoint_state make_state(int64_t step) {
  checkpoint_state s;
  memset(&s, 0, sizeof s);
  s.step = step;
  s.epoch = step / 100;
  ckpt_kv_set(&s.rng, "seed", 20240605);
  ckpt_kv_set(&s.rng, "data_seed", -3);
  ckpt_kv_set(&s.rng, "mining_stream", (int64_t)1 << 40);
  ckpt_kv_set(&s.loader, "epoch", step / 100);
  ckpt_kv_set(&s.loader, "batch", step % 100);
  ckpt_kv_set(&s.loader, "skipped", 3);
  s.config_text = "optim.lr = 0.08  # default\nname = \"q\\u00e9, x\"\n\ttabbed = 1\n";
  return s;
}

static void make_dir(char *out, size_t n, const char *name) {
  if (snprintf(out, n, "%s/%s", g_root, name) >= (int)n) masa_assert(!"path too long");
}

static int file_exists(const char *dir, const char *name) {
  char p[600];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return access(p, F_OK) == 0;
}

static int count_suffix(const char *dir, const char *suffix) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    size_t a = strlen(e->d_name), b = strlen(suffix);
    if (a >= b && !strcmp(e->d_name + a - b, suffix)) n++;
  }
  if (d) closedir(d);
  return n;
}

static void rm_tree(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    struct stat st;
    if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
      rm_tree(p);
    else
      unlink(p);
  }
  if (d) closedir(d);
  rmdir(dir);
}

static void test_round_trip(optim_kind kind, uint64_t seed) {
  const char *kn = optim_kind_name(kind);
  char dir[400], path[600], what[200];
  snprintf(what, sizeof what, "rt_%s", kn);
  make_dir(dir, sizeof dir, what);
  param_table t, u;
  optim a, b;
  setup(&t, &a, kind, seed, 1);
  setup(&u, &b, kind, seed, 0);
  checkpoint_state s = make_state(4321), r;
  checkpoint_opts o = {dir, 3, 0};
  int ok = checkpoint_save(&o, &t, &a, &s, path, sizeof path) == MASA_OK;
  snprintf(what, sizeof what, "%s: save", kn);
  check_true(what, ok);
  if (!ok) printf("  %s\n", masa_errmsg());
  ok = checkpoint_load(path, &u, &b, &r) == MASA_OK;
  if (!ok) printf("  %s\n", masa_errmsg());
  snprintf(what, sizeof what, "%s: params, moments bit-exact after load", kn);
  check_true(what, ok && !memcmp(t.params, u.params, t.total * sizeof(float)) &&
                       !memcmp(t.moment1, u.moment1, t.trainable_total * sizeof(float)) &&
                       (kind == OPTIM_SGD || !memcmp(t.moment2, u.moment2, t.trainable_total * sizeof(float))));
  snprintf(what, sizeof what, "%s: step, epoch, optimizer and skip counters", kn);
  check_true(what, ok && r.step == 4321 && r.epoch == 43 && b.steps == 1234 && b.skipped_total == 7 &&
                       b.skipped_consecutive == 2);
  int kv_ok = ok && r.rng.n == 3 && r.loader.n == 3;
  for (int i = 0; kv_ok && i < 3; i++)
    kv_ok = !strcmp(r.rng.name[i], s.rng.name[i]) && r.rng.value[i] == s.rng.value[i] &&
            !strcmp(r.loader.name[i], s.loader.name[i]) && r.loader.value[i] == s.loader.value[i];
  int64_t v = 0;
  kv_ok = kv_ok && ckpt_kv_get(&r.loader, "batch", &v, path) == MASA_OK && v == 21 &&
          ckpt_kv_get(&r.rng, "nonexistent", &v, path) == MASA_ERR && strstr(masa_errmsg(), "nonexistent");
  snprintf(what, sizeof what, "%s: RNG and loader tables (names, order, int64 values)", kn);
  check_true(what, kv_ok);
  snprintf(what, sizeof what, "%s: config text identical", kn);
  check_true(what, ok && r.config_text && !strcmp(r.config_text, s.config_text));
  checkpoint_state_free(&r);
  snprintf(what, sizeof what, "%s: `latest` names the file, no .tmp left", kn);
  char latest[600];
  check_true(what, checkpoint_latest(dir, latest, sizeof latest) == MASA_OK && !strcmp(latest, path) &&
                       count_suffix(dir, ".tmp") == 0);

  // The other optimizer's state is refused.
  param_table w;
  optim c;
  setup(&w, &c, kind == OPTIM_SGD ? OPTIM_ADAMW : OPTIM_SGD, seed, 0);
  int rc = checkpoint_load(path, &w, &c, &r);
  printf("  expected error: %s\n", masa_errmsg());
  snprintf(what, sizeof what, "%s: loading with the other optimizer type is an error naming optim.type", kn);
  check_true(what, rc == MASA_ERR && strstr(masa_errmsg(), "optim.type"));
  optim_free(&c), param_table_free(&w);
  optim_free(&a), optim_free(&b), param_table_free(&t), param_table_free(&u);
}

static void test_mismatch(uint64_t seed) {
  char dir[400], path[600];
  make_dir(dir, sizeof dir, "mismatch");
  param_table t;
  optim a;
  setup(&t, &a, OPTIM_SGD, seed, 1);
  checkpoint_state s = make_state(10), r;
  checkpoint_opts o = {dir, 3, 0};
  checkpoint_save(&o, &t, &a, &s, path, sizeof path);
  const char *expect[4] = {NULL, "shape mismatch: track_head.embed_head.fc_embed.weight is (5, 12), expected (5, 13)",
                           "missing: track_head.embed_head.extra.weight", "unexpected: track_head.embed_head.fc_embed.bias"};
  const char *label[4] = {NULL, "a different shape", "a missing key", "an unexpected key"};
  for (int variant = 1; variant <= 3; variant++) {
    param_table u;
    optim b;
    make_table(&u, variant);
    optim_init(&b, &a.o, &u);
    int rc = checkpoint_load(path, &u, &b, &r);
    printf("  expected error: %s\n", masa_errmsg());
    char what[200];
    snprintf(what, sizeof what, "mismatch: %s is listed by name", label[variant]);
    check_true(what, rc == MASA_ERR && strstr(masa_errmsg(), expect[variant]) && strstr(masa_errmsg(), path));
    if (variant == 2)  // its momentum buffer is missing as well
      check_true("mismatch: the missing key's momentum buffer is listed too",
                 rc == MASA_ERR && strstr(masa_errmsg(), "missing: optimizer/momentum/track_head.embed_head.extra.weight"));
    optim_free(&b), param_table_free(&u);
  }

  // A future format version.
  char vpath[600];
  snprintf(vpath, sizeof vpath, "%s/version99.h5", dir);
  h5file *f = h5_create(vpath);
  h5_write_attr_str(f, "kind", "masa-train-checkpoint");
  h5_write_attr_i64(f, "format_version", 99);
  h5_close(f);
  int rc = checkpoint_load(vpath, &t, &a, &r);
  printf("  expected error: %s\n", masa_errmsg());
  check_true("format version 99 is refused, naming both versions",
             rc == MASA_ERR && strstr(masa_errmsg(), "format version 99") && strstr(masa_errmsg(), "reads version 1"));

  // Exported weights: only parameters; refused as a training checkpoint, fine for initialisation.
  char wpath[600];
  snprintf(wpath, sizeof wpath, "%s/weights.h5", dir);
  check_true("export weights", checkpoint_export_weights(wpath, &t) == MASA_OK);
  f = h5_open_read(wpath);
  int n = f ? h5_count(f) : -1;
  int has_opt = f ? h5_has(f, "optimizer") : 1;
  h5_close(f);
  check_true("exported weights hold exactly the parameters (no optimizer state)", n == t.count && !has_opt);
  rc = checkpoint_load(wpath, &t, &a, &r);
  printf("  expected error: %s\n", masa_errmsg());
  check_true("an exported weight file is not a training checkpoint (clear error)",
             rc == MASA_ERR && strstr(masa_errmsg(), "not a MASA training checkpoint"));
  param_table u;
  make_table(&u, 0);
  check_true("weights load from an exported file", checkpoint_load_weights(wpath, &u) == MASA_OK &&
                                                       !memcmp(u.params, t.params, t.total * sizeof(float)));
  memset(u.params, 0, u.total * sizeof(float));
  check_true("weights load from a training checkpoint", checkpoint_load_weights(path, &u) == MASA_OK &&
                                                            !memcmp(u.params, t.params, t.total * sizeof(float)));
  param_table_free(&u);
  optim_free(&a), param_table_free(&t);
}

static void test_truncated(uint64_t seed) {
  char dir[400], p200[600], p300[600];
  make_dir(dir, sizeof dir, "truncated");
  param_table t, u;
  optim a, b;
  setup(&t, &a, OPTIM_ADAMW, seed, 1);
  setup(&u, &b, OPTIM_ADAMW, seed, 0);
  checkpoint_opts o = {dir, 3, 0};
  checkpoint_state s = make_state(200), r;
  checkpoint_save(&o, &t, &a, &s, p200, sizeof p200);
  t.params[0] += 1.0f;
  s = make_state(300);
  checkpoint_save(&o, &t, &a, &s, p300, sizeof p300);
  struct stat st;
  stat(p300, &st);
  check_true("truncate the newest checkpoint to half its size", truncate(p300, st.st_size / 2) == 0);
  int rc = checkpoint_load(p300, &u, &b, &r);
  printf("  expected error: %s\n", masa_errmsg());
  check_true("a truncated checkpoint is a clear error naming the file",
             rc == MASA_ERR && strstr(masa_errmsg(), p300) &&
                 (strstr(masa_errmsg(), "truncated") || strstr(masa_errmsg(), "corrupt")));
  rc = checkpoint_load(p200, &u, &b, &r);
  t.params[0] -= 1.0f;
  check_true("the previous checkpoint is intact and loads", rc == MASA_OK && r.step == 200 &&
                                                               !memcmp(t.params, u.params, t.total * sizeof(float)));
  checkpoint_state_free(&r);
  char got[600];
  log_level lv = log_get_level();
  log_set_level(LOG_ERROR);  // the fallback warnings are expected
  memset(u.params, 0, u.total * sizeof(float));
  rc = checkpoint_resume(dir, &u, &b, &r, got, sizeof got);
  log_set_level(lv);
  check_true("resume falls back from the truncated latest to the previous checkpoint",
             rc == MASA_OK && !strcmp(got, p200) && r.step == 200 &&
                 !memcmp(t.params, u.params, t.total * sizeof(float)));
  checkpoint_state_free(&r);
  optim_free(&a), optim_free(&b), param_table_free(&t), param_table_free(&u);
}

static void test_keep_last(uint64_t seed) {
  char dir[400];
  make_dir(dir, sizeof dir, "keep");
  param_table t;
  optim a;
  setup(&t, &a, OPTIM_SGD, seed, 1);
  checkpoint_opts o = {dir, 2, 0};
  for (int64_t step = 1; step <= 5; step++) {
    checkpoint_state s = make_state(step * 1000);
    checkpoint_save(&o, &t, &a, &s, NULL, 0);
  }
  int64_t *steps;
  int n;
  checkpoint_list(dir, &steps, &n);
  check_true("keep 2 of 5: the two newest remain (5000, 4000)", n == 2 && steps[0] == 5000 && steps[1] == 4000);
  free(steps);
  check_true("keep 2 of 5: older files deleted", !file_exists(dir, "ckpt_0000001000.h5") &&
                                                    !file_exists(dir, "ckpt_0000002000.h5") &&
                                                    !file_exists(dir, "ckpt_0000003000.h5"));
  char lp[600], line[64] = "";
  snprintf(lp, sizeof lp, "%s/latest", dir);
  FILE *f = fopen(lp, "r");
  if (f) {
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    fclose(f);
  }
  check_true("`latest` holds the newest file name", !strcmp(line, "ckpt_0000005000.h5\n"));
  // Without `latest`, the newest file; with a dangling `latest`, also the newest file.
  char got[600];
  unlink(lp);
  int ok1 = checkpoint_latest(dir, got, sizeof got) == MASA_OK && strstr(got, "ckpt_0000005000.h5");
  f = fopen(lp, "w");
  fputs("ckpt_0000009999.h5\n", f);
  fclose(f);
  log_level lv = log_get_level();
  log_set_level(LOG_ERROR);
  int ok2 = checkpoint_latest(dir, got, sizeof got) == MASA_OK && strstr(got, "ckpt_0000005000.h5");
  log_set_level(lv);
  check_true("no or a dangling `latest`: the newest checkpoint file", ok1 && ok2);
  char empty[400];
  make_dir(empty, sizeof empty, "empty");
  mkdir(empty, 0755);
  int rc = checkpoint_latest(empty, got, sizeof got);
  check_true("an empty folder: a clear error", rc == MASA_ERR && strstr(masa_errmsg(), "no checkpoint"));
  optim_free(&a), param_table_free(&t);
}

static void test_crash_before_rename(uint64_t seed) {
  char dir[400], p10[600], got[600];
  make_dir(dir, sizeof dir, "crash");
  param_table t, u;
  optim a, b;
  setup(&t, &a, OPTIM_SGD, seed, 1);
  setup(&u, &b, OPTIM_SGD, seed, 0);
  checkpoint_opts o = {dir, 3, 0};
  checkpoint_state s = make_state(10), r;
  checkpoint_save(&o, &t, &a, &s, p10, sizeof p10);
  float keep0 = t.params[0];
  t.params[0] = 99.0f;
  checkpoint_opts crash = {dir, 3, 1};
  s = make_state(20);
  int rc = checkpoint_save(&crash, &t, &a, &s, NULL, 0);
  check_true("crash between .tmp and rename: NAME.tmp written, NAME absent",
             rc == MASA_OK && file_exists(dir, "ckpt_0000000020.h5.tmp") && !file_exists(dir, "ckpt_0000000020.h5"));
  // A second crash earlier, in the middle of writing a .tmp (garbage content).
  char junk[600];
  snprintf(junk, sizeof junk, "%s/ckpt_0000000030.h5.tmp", dir);
  FILE *f = fopen(junk, "w");
  fputs("\x89HDF\r\n partial", f);
  fclose(f);
  rc = checkpoint_latest(dir, got, sizeof got);
  check_true("`latest` still names the previous checkpoint", rc == MASA_OK && !strcmp(got, p10));
  rc = checkpoint_resume(dir, &u, &b, &r, got, sizeof got);
  check_true("the previous checkpoint loads (step 10, its parameters)",
             rc == MASA_OK && r.step == 10 && u.params[0] == keep0);
  checkpoint_state_free(&r);
  // The next complete save replaces the stale .tmp files.
  s = make_state(40);
  rc = checkpoint_save(&o, &t, &a, &s, NULL, 0);
  check_true("the next save cleans up stale .tmp files", rc == MASA_OK && count_suffix(dir, ".tmp") == 0);
  rc = checkpoint_resume(dir, &u, &b, &r, got, sizeof got);
  check_true("and resumes from the new one", rc == MASA_OK && r.step == 40 && u.params[0] == 99.0f);
  checkpoint_state_free(&r);
  optim_free(&a), optim_free(&b), param_table_free(&t), param_table_free(&u);
}

int main(void) {
  uint64_t seed = test_begin("checkpoint", 20240606);
  const char *tmp = getenv("TMPDIR");
  snprintf(g_root, sizeof g_root, "%s/masa_ckpt_XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(g_root)) {
    check_true("mkdtemp", 0);
    return test_end();
  }
  test_round_trip(OPTIM_SGD, seed);
  test_round_trip(OPTIM_ADAMW, seed);
  test_mismatch(seed);
  test_truncated(seed);
  test_keep_last(seed);
  test_crash_before_rename(seed);
  rm_tree(g_root);
  return test_end();
}
