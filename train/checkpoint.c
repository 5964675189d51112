// Checkpoint files, the `latest` pointer and keep-last-K pruning (layout in checkpoint.h).
// Durability: a file is complete before its name appears (tmp + fsync + rename + fsync of the
// folder), so a crash at any point leaves the previous checkpoint and `latest` usable.
#include "train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/check.h"
#include "core/error.h"
#include "core/h5io.h"
#include "core/log.h"

static const char *CKPT_KIND = "masa-train-checkpoint";

// ---------------------------------------------------------------- key/value tables

void ckpt_kv_set(ckpt_kv *kv, const char *name, int64_t value) {
  masa_assert(name[0] && strlen(name) < CKPT_KV_NAME && !strchr(name, ','));
  for (int i = 0; i < kv->n; i++)
    if (!strcmp(kv->name[i], name)) {
      kv->value[i] = value;
      return;
    }
  masa_assert(kv->n < CKPT_KV_MAX);
  snprintf(kv->name[kv->n], CKPT_KV_NAME, "%s", name);
  kv->value[kv->n++] = value;
}

int ckpt_kv_get(const ckpt_kv *kv, const char *name, int64_t *value, const char *what) {
  for (int i = 0; i < kv->n; i++)
    if (!strcmp(kv->name[i], name)) {
      *value = kv->value[i];
      return MASA_OK;
    }
  return masa_error("%s: no saved value '%s'", what ? what : "checkpoint", name);
}

void checkpoint_state_free(checkpoint_state *s) {
  free(s->config_text);
  s->config_text = NULL;
}

// ---------------------------------------------------------------- files and folders

static int fsync_path(const char *path, int is_dir) {
  int fd = open(path, is_dir ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return masa_error("%s: cannot open to sync: %s", path, strerror(errno));
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return masa_error("%s: fsync failed: %s", path, strerror(err));
  return MASA_OK;
}

static void parent_dir(const char *path, char *dir, size_t n) {
  snprintf(dir, n, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash)
    snprintf(dir, n, ".");
  else if (slash == dir)
    dir[1] = 0;
  else
    *slash = 0;
}

static int ensure_dir(const char *dir) {
  if (mkdir(dir, 0755) == 0 || errno == EEXIST) {
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) return MASA_OK;
    return masa_error("%s: exists and is not a folder", dir);
  }
  return masa_error("%s: cannot create checkpoint folder: %s", dir, strerror(errno));
}

// "ckpt_0000001234.h5" -> 1234; -1 for any other name.
static int64_t parse_ckpt_name(const char *name) {
  if (strlen(name) != 18 || strncmp(name, "ckpt_", 5) || strcmp(name + 15, ".h5")) return -1;
  int64_t v = 0;
  for (int i = 5; i < 15; i++) {
    if (name[i] < '0' || name[i] > '9') return -1;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

static int cmp_desc(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? 1 : x > y ? -1 : 0;
}

int checkpoint_list(const char *dir, int64_t **steps, int *n) {
  *steps = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) return masa_error("%s: cannot list checkpoint folder: %s", dir, strerror(errno));
  int cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    int64_t s = parse_ckpt_name(e->d_name);
    if (s < 0) continue;
    if (*n == cap) {
      cap = cap ? 2 * cap : 16;
      int64_t *p = realloc(*steps, (size_t)cap * sizeof **steps);
      if (!p) masa_die(__FILE__, __LINE__, "realloc", "libc", "out of memory");
      *steps = p;
    }
    (*steps)[(*n)++] = s;
  }
  closedir(d);
  if (*n) qsort(*steps, (size_t)*n, sizeof **steps, cmp_desc);
  return MASA_OK;
}

static void ckpt_path(char *buf, size_t n, const char *dir, int64_t step) {
  snprintf(buf, n, "%s/ckpt_%010lld.h5", dir, (long long)step);
}

// Writes a small text file atomically (tmp, fsync, rename, fsync folder).
static int write_text_atomic(const char *dir, const char *name, const char *text) {
  char path[1200], tmp[1300];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return masa_error("%s: cannot write: %s", tmp, strerror(errno));
  size_t len = strlen(text);
  int ok = fwrite(text, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
  int err = errno;
  if (fclose(f) != 0) ok = 0;
  if (!ok) {
    unlink(tmp);
    return masa_error("%s: write failed: %s", tmp, strerror(err));
  }
  if (rename(tmp, path) != 0) {
    err = errno;
    unlink(tmp);
    return masa_error("%s: cannot rename into place: %s", path, strerror(err));
  }
  return fsync_path(dir, 1);
}

// ---------------------------------------------------------------- saving

static const char *moment_group(optim_kind k, int which) {
  if (k == OPTIM_SGD) return which == 0 ? "optimizer/momentum" : NULL;
  return which == 0 ? "optimizer/exp_avg" : "optimizer/exp_avg_sq";
}

static int write_kv(h5file *f, const char *table, const ckpt_kv *kv) {
  char names[CKPT_KV_MAX * CKPT_KV_NAME + 1] = "", attr[64], ds[64];
  for (int i = 0; i < kv->n; i++) {
    if (i) strcat(names, ",");
    strcat(names, kv->name[i]);
  }
  snprintf(attr, sizeof attr, "state_%s_names", table);
  snprintf(ds, sizeof ds, "state/%s", table);
  if (h5_write_attr_str(f, attr, names) != MASA_OK) return MASA_ERR;
  if (kv->n == 0) return MASA_OK;
  int64_t shape[1] = {kv->n};
  return h5_write_i64(f, ds, kv->value, 1, shape);
}

static int write_contents(h5file *f, const param_table *t, const optim *opt, const checkpoint_state *s) {
  for (int i = 0; i < t->count; i++) {
    const param_entry *e = &t->entries[i];
    if (h5_write(f, e->name, param_ptr(t, i), e->ndim, e->shape) != MASA_OK) return MASA_ERR;
  }
  for (int which = 0; which < 2; which++) {
    const char *grp = moment_group(opt->o.kind, which);
    const float *buf = which == 0 ? t->moment1 : t->moment2;
    if (!grp) continue;
    masa_assert(buf != NULL);
    for (int i = 0; i < t->count; i++) {
      const param_entry *e = &t->entries[i];
      if (!e->trainable) continue;
      char name[512];
      snprintf(name, sizeof name, "%s/%s", grp, e->name);
      if (h5_write(f, name, buf + e->offset, e->ndim, e->shape) != MASA_OK) return MASA_ERR;
    }
  }
  if (write_kv(f, "rng", &s->rng) != MASA_OK || write_kv(f, "loader", &s->loader) != MASA_OK)
    return MASA_ERR;
  if (h5_write_attr_str(f, "kind", CKPT_KIND) != MASA_OK ||
      h5_write_attr_i64(f, "format_version", CKPT_FORMAT_VERSION) != MASA_OK ||
      h5_write_attr_str(f, "optimizer", optim_kind_name(opt->o.kind)) != MASA_OK ||
      h5_write_attr_str(f, "config", s->config_text ? s->config_text : "") != MASA_OK ||
      h5_write_attr_i64(f, "step", s->step) != MASA_OK ||
      h5_write_attr_i64(f, "epoch", s->epoch) != MASA_OK ||
      h5_write_attr_i64(f, "optim_steps", opt->steps) != MASA_OK ||
      h5_write_attr_i64(f, "skipped_total", opt->skipped_total) != MASA_OK ||
      h5_write_attr_i64(f, "skipped_consecutive", opt->skipped_consecutive) != MASA_OK)
    return MASA_ERR;
  return MASA_OK;
}

// Deletes checkpoints beyond the newest `keep` and stale temporary files of earlier crashes.
static void prune(const char *dir, int keep) {
  int64_t *steps;
  int n;
  if (checkpoint_list(dir, &steps, &n) != MASA_OK) {
    log_warn("checkpoint pruning skipped: %s", masa_errmsg());
    return;
  }
  char path[1200];
  for (int i = keep; i < n; i++) {
    ckpt_path(path, sizeof path, dir, steps[i]);
    if (unlink(path) != 0) log_warn("%s: cannot delete old checkpoint: %s", path, strerror(errno));
  }
  free(steps);
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      size_t len = strlen(e->d_name);
      if (len > 4 && !strcmp(e->d_name + len - 4, ".tmp") && !strncmp(e->d_name, "ckpt_", 5)) {
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0) log_info("removed %s (left by an interrupted save)", path);
      }
    }
    closedir(d);
  }
  fsync_path(dir, 1);
}

int checkpoint_save(const checkpoint_opts *o, const param_table *t, const optim *opt,
                    const checkpoint_state *s, char *path_out, size_t path_n) {
  masa_assert(o->keep >= 1 && opt->count == t->count);
  size_t cfg_len = s->config_text ? strlen(s->config_text) : 0;
  if (cfg_len > 60000)  // an HDF5 object header message (our attribute) holds at most 64 KiB
    return masa_error("%s: config text of %zu bytes is too long for a checkpoint attribute (60000 at most)",
                      o->dir, cfg_len);
  if (ensure_dir(o->dir) != MASA_OK) return MASA_ERR;
  char path[1200], tmp[1300];
  ckpt_path(path, sizeof path, o->dir, s->step);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  h5file *f = h5_create(tmp);
  if (!f) return MASA_ERR;
  int rc = write_contents(f, t, opt, s);
  h5_close(f);
  if (rc != MASA_OK) {
    char why[2048];
    snprintf(why, sizeof why, "%s", masa_errmsg());  // masa_error must not read its own buffer
    unlink(tmp);
    return masa_error("%s: checkpoint not written: %s", path, why);
  }
  // Re-open the closed file: catches a flush that failed inside H5Fclose (disk full).
  h5file *check = h5_open_read(tmp);
  int64_t version = 0;
  if (!check || h5_read_attr_i64(check, "format_version", &version) != MASA_OK) {
    char why[2048];
    snprintf(why, sizeof why, "%s", masa_errmsg());
    if (check) h5_close(check);
    unlink(tmp);
    return masa_error("%s: checkpoint not written: the file did not read back (%s)", path, why);
  }
  h5_close(check);
  if (fsync_path(tmp, 0) != MASA_OK) {
    unlink(tmp);
    return MASA_ERR;
  }
  if (o->stop_before_rename) return MASA_OK;
  if (rename(tmp, path) != 0) {
    int err = errno;
    unlink(tmp);
    return masa_error("%s: cannot rename %s into place: %s", path, tmp, strerror(err));
  }
  if (fsync_path(o->dir, 1) != MASA_OK) return MASA_ERR;
  char line[64];
  snprintf(line, sizeof line, "ckpt_%010lld.h5\n", (long long)s->step);
  if (write_text_atomic(o->dir, "latest", line) != MASA_OK) return MASA_ERR;
  prune(o->dir, o->keep);
  if (path_out) snprintf(path_out, path_n, "%s", path);
  return MASA_OK;
}

int checkpoint_export_weights(const char *path, const param_table *t) {
  if (h5_save_params(path, t) != MASA_OK) return MASA_ERR;
  char dir[1100];
  parent_dir(path, dir, sizeof dir);
  return fsync_path(dir, 1);
}

// ---------------------------------------------------------------- loading

typedef struct {
  char buf[4000];
  size_t len;
  int count;
} problems;

static void problem(problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(problems *p, const char *fmt, ...) {
  p->count++;
  if (p->count > 20 || p->len + 2 >= sizeof p->buf) return;
  va_list ap;
  va_start(ap, fmt);
  p->buf[p->len++] = '\n';
  p->buf[p->len++] = ' ', p->buf[p->len++] = ' ';
  int k = vsnprintf(p->buf + p->len, sizeof p->buf - p->len, fmt, ap);
  va_end(ap);
  if (k > 0) p->len += (size_t)k;
  if (p->len >= sizeof p->buf) p->len = sizeof p->buf - 1;
}

static void expect_dataset(h5file *f, problems *p, const char *name, const param_entry *e) {
  if (!h5_has(f, name)) {
    problem(p, "missing: %s", name);
    return;
  }
  int nd;
  int64_t sh[TENSOR_MAX_DIMS];
  if (h5_shape(f, name, &nd, sh) != MASA_OK) {
    problem(p, "%s", masa_errmsg());
    return;
  }
  int same = nd == e->ndim;
  for (int k = 0; same && k < nd; k++) same = sh[k] == e->shape[k];
  if (!same) {
    char a[128], b[128];
    problem(p, "shape mismatch: %s is %s, expected %s", name, shape_str(a, sizeof a, nd, sh),
            shape_str(b, sizeof b, e->ndim, e->shape));
  }
}

static int read_kv(h5file *f, const char *path, const char *table, ckpt_kv *kv) {
  char attr[64], ds[64], *names = NULL;
  snprintf(attr, sizeof attr, "state_%s_names", table);
  snprintf(ds, sizeof ds, "state/%s", table);
  memset(kv, 0, sizeof *kv);
  if (h5_read_attr_str(f, attr, &names) != MASA_OK) return MASA_ERR;
  int rc = MASA_OK;
  if (names[0]) {
    char *save = NULL;
    for (char *tok = strtok_r(names, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      if (kv->n == CKPT_KV_MAX || strlen(tok) >= CKPT_KV_NAME) {
        rc = masa_error("%s: attribute %s holds too many or too long names", path, attr);
        break;
      }
      snprintf(kv->name[kv->n++], CKPT_KV_NAME, "%s", tok);
    }
    int64_t *vals = NULL, shape[TENSOR_MAX_DIMS];
    int nd;
    if (rc == MASA_OK && h5_read_i64(f, ds, &vals, &nd, shape) == MASA_OK) {
      if (nd != 1 || shape[0] != kv->n)
        rc = masa_error("%s: dataset %s has %lld values for %d names", path, ds,
                        (long long)shape_numel(nd, shape), kv->n);
      else
        memcpy(kv->value, vals, (size_t)kv->n * sizeof(int64_t));
      free(vals);
    } else if (rc == MASA_OK) {
      rc = MASA_ERR;
    }
  }
  free(names);
  return rc;
}

int checkpoint_load(const char *path, param_table *t, optim *opt, checkpoint_state *s) {
  masa_assert(opt->count == t->count && t->moment1 != NULL);
  h5file *f = h5_open_read(path);
  if (!f) return MASA_ERR;
  int rc = MASA_ERR;
  char *kind = NULL, *okind = NULL, *cfg = NULL;
  int64_t version = 0;
  if (h5_read_attr_str(f, "kind", &kind) != MASA_OK || strcmp(kind, CKPT_KIND) != 0) {
    masa_error("%s: not a MASA training checkpoint (no kind = \"%s\" attribute); an exported weight "
               "file can only initialise the weights", path, CKPT_KIND);
    goto done;
  }
  if (h5_read_attr_i64(f, "format_version", &version) != MASA_OK) goto done;
  if (version != CKPT_FORMAT_VERSION) {
    masa_error("%s: checkpoint format version %lld, this build reads version %d", path,
               (long long)version, CKPT_FORMAT_VERSION);
    goto done;
  }
  if (h5_read_attr_str(f, "optimizer", &okind) != MASA_OK) goto done;
  if (strcmp(okind, optim_kind_name(opt->o.kind)) != 0) {
    masa_error("%s: checkpoint holds %s optimizer state but optim.type is %s", path, okind,
               optim_kind_name(opt->o.kind));
    goto done;
  }
  // Validate everything before reading anything.
  problems p = {{0}, 0, 0};
  for (int i = 0; i < t->count; i++) {
    const param_entry *e = &t->entries[i];
    expect_dataset(f, &p, e->name, e);
    for (int which = 0; which < 2 && e->trainable; which++) {
      const char *grp = moment_group(opt->o.kind, which);
      if (!grp) continue;
      char name[512];
      snprintf(name, sizeof name, "%s/%s", grp, e->name);
      expect_dataset(f, &p, name, e);
    }
  }
  int nroot = h5_count(f);
  for (int i = 0; i < nroot; i++) {
    char name[512];
    if (h5_name_at(f, i, name, sizeof name) != MASA_OK) continue;
    if (!strcmp(name, "optimizer") || !strcmp(name, "state")) continue;
    if (param_table_find(t, name) < 0) problem(&p, "unexpected: %s", name);
  }
  if (p.count) {
    masa_error("%s: %d problem%s loading the checkpoint (a different model or recipe?):%s%s", path,
               p.count, p.count > 1 ? "s" : "", p.buf, p.count > 20 ? "\n  ..." : "");
    goto done;
  }
  for (int i = 0; i < t->count; i++) {
    const param_entry *e = &t->entries[i];
    if (h5_read(f, e->name, param_ptr(t, i), e->ndim, e->shape) != MASA_OK) goto done;
    for (int which = 0; which < 2 && e->trainable; which++) {
      const char *grp = moment_group(opt->o.kind, which);
      if (!grp) continue;
      char name[512];
      snprintf(name, sizeof name, "%s/%s", grp, e->name);
      float *buf = (which == 0 ? t->moment1 : t->moment2) + e->offset;
      if (h5_read(f, name, buf, e->ndim, e->shape) != MASA_OK) goto done;
    }
  }
  int64_t steps, sk_total, sk_consec;
  memset(s, 0, sizeof *s);
  if (h5_read_attr_i64(f, "step", &s->step) != MASA_OK ||
      h5_read_attr_i64(f, "epoch", &s->epoch) != MASA_OK ||
      h5_read_attr_i64(f, "optim_steps", &steps) != MASA_OK ||
      h5_read_attr_i64(f, "skipped_total", &sk_total) != MASA_OK ||
      h5_read_attr_i64(f, "skipped_consecutive", &sk_consec) != MASA_OK ||
      h5_read_attr_str(f, "config", &cfg) != MASA_OK || read_kv(f, path, "rng", &s->rng) != MASA_OK ||
      read_kv(f, path, "loader", &s->loader) != MASA_OK)
    goto done;
  opt->steps = steps;
  opt->skipped_total = sk_total;
  opt->skipped_consecutive = sk_consec;
  s->config_text = cfg;
  cfg = NULL;
  rc = MASA_OK;
done:
  free(kind);
  free(okind);
  free(cfg);
  h5_close(f);
  return rc;
}

int checkpoint_load_weights(const char *path, param_table *t) {
  h5file *f = h5_open_read(path);
  if (!f) return MASA_ERR;
  int rc = h5_load_params(f, t, 0);
  h5_close(f);
  return rc;
}

int checkpoint_latest(const char *dir, char *path, size_t path_n) {
  char lp[1200];
  snprintf(lp, sizeof lp, "%s/latest", dir);
  FILE *f = fopen(lp, "r");
  if (f) {
    char line[256] = "";
    char *got = fgets(line, sizeof line, f);
    fclose(f);
    line[strcspn(line, "\r\n")] = 0;
    if (got && parse_ckpt_name(line) >= 0) {
      snprintf(path, path_n, "%s/%s", dir, line);
      if (access(path, R_OK) == 0) return MASA_OK;
      log_warn("%s names %s, which is missing; using the newest checkpoint instead", lp, path);
    } else {
      log_warn("%s does not name a checkpoint file; using the newest checkpoint instead", lp);
    }
  }
  int64_t *steps;
  int n;
  if (checkpoint_list(dir, &steps, &n) != MASA_OK) return MASA_ERR;
  if (n == 0) {
    free(steps);
    return masa_error("%s: no checkpoint (ckpt_*.h5) to resume from", dir);
  }
  char buf[1200];
  ckpt_path(buf, sizeof buf, dir, steps[0]);
  snprintf(path, path_n, "%s", buf);
  free(steps);
  return MASA_OK;
}

int checkpoint_resume(const char *dir, param_table *t, optim *opt, checkpoint_state *s,
                      char *path_out, size_t path_n) {
  char first[1200];
  if (checkpoint_latest(dir, first, sizeof first) != MASA_OK) return MASA_ERR;
  if (checkpoint_load(first, t, opt, s) == MASA_OK) {
    if (path_out) snprintf(path_out, path_n, "%s", first);
    return MASA_OK;
  }
  char err[2048];
  snprintf(err, sizeof err, "%s", masa_errmsg());
  log_warn("cannot resume from %s: %s", first, err);
  int64_t *steps;
  int n;
  if (checkpoint_list(dir, &steps, &n) != MASA_OK) return MASA_ERR;
  for (int i = 0; i < n; i++) {
    char path[1200];
    ckpt_path(path, sizeof path, dir, steps[i]);
    if (!strcmp(path, first)) continue;
    if (checkpoint_load(path, t, opt, s) == MASA_OK) {
      log_warn("resuming from the older checkpoint %s", path);
      if (path_out) snprintf(path_out, path_n, "%s", path);
      free(steps);
      return MASA_OK;
    }
    log_warn("cannot resume from %s: %s", path, masa_errmsg());
  }
  free(steps);
  return masa_error("%s: no checkpoint could be loaded (latest: %s)", dir, err);
}
