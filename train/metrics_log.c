// metrics.jsonl writer and reader (see metrics_log.h).
#include "train/metrics_log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/check.h"
#include "core/error.h"
#include "core/log.h"

struct metrics_log {
  FILE *f;
  char path[1100];
};

metrics_log *metrics_open(const char *run_dir) {
  if (mkdir(run_dir, 0755) != 0 && errno != EEXIST) {
    masa_error("%s: cannot create run folder: %s", run_dir, strerror(errno));
    return NULL;
  }
  metrics_log *m = callocCheck(1, sizeof *m);
  snprintf(m->path, sizeof m->path, "%s/metrics.jsonl", run_dir);
  m->f = fopen(m->path, "a");
  if (!m->f) {
    masa_error("%s: cannot open for appending: %s", m->path, strerror(errno));
    free(m);
    return NULL;
  }
  return m;
}

void metrics_close(metrics_log *m) {
  if (!m) return;
  fclose(m->f);
  free(m);
}

typedef struct {
  char *buf;
  size_t len, cap;
} strbuf;

static void sb_printf(strbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *s, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
    va_end(ap);
    if (k >= 0 && (size_t)k < s->cap - s->len) {
      s->len += (size_t)k;
      return;
    }
    s->cap = 2 * s->cap + (size_t)(k > 0 ? k : 64);
    s->buf = realloc(s->buf, s->cap);
    if (!s->buf) masa_die(__FILE__, __LINE__, "realloc", "libc", "out of memory");
  }
}

static void put_key(strbuf *s, const char *name) {
  masa_assert(name && name[0] && !strpbrk(name, "\"\\"));
  sb_printf(s, ", \"%s\": ", name);
}

static void put_num(strbuf *s, const char *name, double v) {
  put_key(s, name);
  if (isfinite(v))
    sb_printf(s, "%.9g", v);
  else
    sb_printf(s, "null");
}

int metrics_append(metrics_log *m, const metrics_row *r) {
  masa_assert(r->n_losses >= 0 && r->n_losses <= METRICS_MAX_TERMS);
  masa_assert(r->n_extra >= 0 && r->n_extra <= METRICS_MAX_TERMS);
  strbuf s = {mallocCheck(512), 0, 512};
  sb_printf(&s, "{\"step\": %lld, \"epoch\": %lld", (long long)r->step, (long long)r->epoch);
  for (int i = 0; i < r->n_losses; i++) put_num(&s, r->losses[i].name, r->losses[i].value);
  put_num(&s, "lr", r->lr);
  put_num(&s, "grad_norm", r->grad_norm);
  put_num(&s, "pairs_per_s", r->pairs_per_s);
  sb_printf(&s, ", \"skipped\": %lld, \"skipped_total\": %lld", (long long)r->skipped,
            (long long)r->skipped_total);
  for (int i = 0; i < r->n_extra; i++) put_num(&s, r->extra[i].name, r->extra[i].value);
  sb_printf(&s, "}\n");
  int ok = fwrite(s.buf, 1, s.len, m->f) == s.len && fflush(m->f) == 0;
  free(s.buf);
  if (!ok) return masa_error("%s: write failed: %s", m->path, strerror(errno));
  return MASA_OK;
}

// ---------------------------------------------------------------- reading

int metrics_col(const metrics_table *t, const char *name) {
  for (int c = 0; c < t->ncols; c++)
    if (!strcmp(t->cols[c], name)) return c;
  return -1;
}

void metrics_table_free(metrics_table *t) {
  for (int c = 0; c < t->ncols; c++) free(t->cols[c]);
  free(t->cols);
  free(t->v);
  memset(t, 0, sizeof *t);
}

typedef struct {
  metrics_table *t;
  int64_t row_cap;
} builder;

// Adds a column, widening the rows read so far (new columns are rare: only in the first lines).
static int add_col(builder *b, const char *name) {
  metrics_table *t = b->t;
  int nc = t->ncols + 1;
  char **cols = realloc(t->cols, (size_t)nc * sizeof *cols);
  if (!cols) masa_die(__FILE__, __LINE__, "realloc", "libc", "out of memory");
  t->cols = cols;
  size_t len = strlen(name) + 1;
  t->cols[t->ncols] = mallocCheck(len);
  memcpy(t->cols[t->ncols], name, len);
  if (b->row_cap) {
    double *v = mallocCheck((size_t)b->row_cap * (size_t)nc * sizeof(double));
    for (int64_t r = 0; r < t->nrows; r++) {
      memcpy(v + r * nc, t->v + r * t->ncols, (size_t)t->ncols * sizeof(double));
      v[r * nc + t->ncols] = NAN;
    }
    free(t->v);
    t->v = v;
  }
  t->ncols = nc;
  return nc - 1;
}

static double *new_row(builder *b) {
  metrics_table *t = b->t;
  if (t->nrows == b->row_cap) {
    b->row_cap = b->row_cap ? 2 * b->row_cap : 256;
    double *v = realloc(t->v, (size_t)b->row_cap * (size_t)t->ncols * sizeof(double));
    if (!v) masa_die(__FILE__, __LINE__, "realloc", "libc", "out of memory");
    t->v = v;
  }
  double *row = t->v + t->nrows * t->ncols;
  for (int c = 0; c < t->ncols; c++) row[c] = NAN;
  t->nrows++;
  return row;
}

static int parse_line(builder *b, const char *path, int64_t lineno, const char *line) {
  cJSON *j = cJSON_Parse(line);
  if (!j || !cJSON_IsObject(j)) {
    cJSON_Delete(j);
    return masa_error("%s:%lld: not a JSON object", path, (long long)lineno);
  }
  cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "step");
  if (!cJSON_IsNumber(st)) {
    cJSON_Delete(j);
    return masa_error("%s:%lld: no numeric \"step\"", path, (long long)lineno);
  }
  // Columns first (they may widen the table), then the row.
  for (cJSON *it = j->child; it; it = it->next)
    if ((cJSON_IsNumber(it) || cJSON_IsNull(it)) && it->string && metrics_col(b->t, it->string) < 0)
      add_col(b, it->string);
  metrics_table *t = b->t;
  double step = st->valuedouble;
  while (t->nrows > 0 && t->v[(t->nrows - 1) * t->ncols] >= step) t->nrows--;  // resumed run
  double *row = new_row(b);
  for (cJSON *it = j->child; it; it = it->next)
    if (cJSON_IsNumber(it) && it->string) row[metrics_col(t, it->string)] = it->valuedouble;
  cJSON_Delete(j);
  return MASA_OK;
}

int metrics_read(const char *path, metrics_table *t) {
  memset(t, 0, sizeof *t);
  FILE *f = fopen(path, "r");
  if (!f) return masa_error("%s: cannot read: %s", path, strerror(errno));
  builder b = {t, 0};
  add_col(&b, "step");
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int64_t lineno = 0;
  int rc = MASA_OK;
  while ((n = getline(&line, &cap, f)) >= 0) {
    lineno++;
    int complete = n > 0 && line[n - 1] == '\n';
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) line[--n] = 0;
    if (n == 0) continue;
    rc = parse_line(&b, path, lineno, line);
    if (rc != MASA_OK && !complete) {  // the last line of an interrupted write
      log_warn("%s:%lld: ignoring an incomplete last line", path, (long long)lineno);
      rc = MASA_OK;
    }
    if (rc != MASA_OK) break;
  }
  free(line);
  fclose(f);
  if (rc != MASA_OK) metrics_table_free(t);
  return rc;
}
