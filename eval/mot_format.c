// MOTChallenge text readers and writers (see mot_format.h).
#include "eval/mot_format.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/check.h"
#include "core/error.h"

void mot_rows_push(mot_rows *r, const double *v, int ncols) {
  if (r->n == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 256;
    r->rows = realloc(r->rows, (size_t)r->cap * sizeof(mot_row));
    if (!r->rows) masa_die(__FILE__, __LINE__, "realloc", "libc", "out of memory");
  }
  mot_row *row = &r->rows[r->n++];
  for (int c = 0; c < MOT_MAX_COLS; c++) row->v[c] = c < ncols ? v[c] : -1;
  row->ncols = ncols;
}

void mot_rows_free(mot_rows *r) {
  free(r->rows);
  r->rows = NULL;
  r->n = r->cap = 0;
}

int mot_read(const char *path, mot_rows *out) {
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "r");
  if (!f) return masa_error("%s: cannot open (%s)", path, strerror(errno));
  char line[4096];
  int64_t lineno = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    size_t len = strlen(line);
    if (len == sizeof line - 1 && line[len - 1] != '\n') {
      fclose(f);
      mot_rows_free(out);
      return masa_error("%s:%lld: line longer than %zu characters", path, (long long)lineno, sizeof line - 2);
    }
    double v[MOT_MAX_COLS];
    int nc = 0;
    char *p = line;
    for (;;) {
      while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\r' || *p == '\n') p++;
      if (!*p) break;
      char *end;
      errno = 0;
      double x = strtod(p, &end);
      if (end == p || (*end && !strchr(" \t,\r\n", *end))) {
        fclose(f);
        mot_rows_free(out);
        return masa_error("%s:%lld: field %d is not a number", path, (long long)lineno, nc + 1);
      }
      // Columns past the tenth (some writers add more) are ignored, as TrackEval ignores them.
      if (nc < MOT_MAX_COLS) v[nc] = x;
      nc++;
      p = end;
    }
    if (nc == 0) continue;  // blank line
    if (nc < 6) {
      fclose(f);
      mot_rows_free(out);
      return masa_error("%s:%lld: expected at least 6 fields (frame, id, left, top, width, height), got %d",
                        path, (long long)lineno, nc);
    }
    mot_rows_push(out, v, nc < MOT_MAX_COLS ? nc : MOT_MAX_COLS);
  }
  fclose(f);
  return MASA_OK;
}

int mot_write(const char *path, const mot_rows *r) {
  FILE *f = fopen(path, "w");
  if (!f) return masa_error("%s: cannot create (%s)", path, strerror(errno));
  for (int64_t k = 0; k < r->n; k++) {
    const double *v = r->rows[k].v;
    if (r->rows[k].ncols == 9)
      fprintf(f, "%d,%lld,%.17g,%.17g,%.17g,%.17g,%d,%d,%.17g\n", (int)v[0], (long long)v[1], v[2], v[3], v[4],
              v[5], (int)v[6], (int)v[7], v[8]);
    else
      fprintf(f, "%d,%lld,%.17g,%.17g,%.17g,%.17g,%.17g,%g,%g,%g\n", (int)v[0], (long long)v[1], v[2], v[3],
              v[4], v[5], v[6], v[7], v[8], v[9]);
  }
  if (fclose(f) != 0) return masa_error("%s: write failed (%s)", path, strerror(errno));
  return MASA_OK;
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
  return s;
}

static int parse_int(const char *path, int lineno, const char *key, const char *val, int *out) {
  char *end;
  long x = strtol(val, &end, 10);
  if (end == val || *end) return masa_error("%s:%d: %s: expected an integer, got '%s'", path, lineno, key, val);
  *out = (int)x;
  return MASA_OK;
}

int mot_read_seqinfo(const char *path, mot_seqinfo *out) {
  memset(out, 0, sizeof *out);
  out->seq_length = -1;
  FILE *f = fopen(path, "r");
  if (!f) return masa_error("%s: cannot open (%s)", path, strerror(errno));
  char line[1024];
  int lineno = 0, in_seq = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *s = trim(line);
    if (!*s || *s == ';' || *s == '#') continue;
    if (*s == '[') {
      in_seq = !strcmp(s, "[Sequence]");
      continue;
    }
    if (!in_seq) continue;
    char *eq = strchr(s, '=');
    if (!eq) {
      fclose(f);
      return masa_error("%s:%d: expected key=value", path, lineno);
    }
    *eq = 0;
    char *key = trim(s), *val = trim(eq + 1);
    int rc = MASA_OK;
    // configparser keys are case-insensitive.
    if (!strcasecmp(key, "name"))
      snprintf(out->name, sizeof out->name, "%s", val);
    else if (!strcasecmp(key, "imDir"))
      snprintf(out->im_dir, sizeof out->im_dir, "%s", val);
    else if (!strcasecmp(key, "imExt"))
      snprintf(out->im_ext, sizeof out->im_ext, "%s", val);
    else if (!strcasecmp(key, "frameRate"))
      rc = parse_int(path, lineno, key, val, &out->frame_rate);
    else if (!strcasecmp(key, "seqLength"))
      rc = parse_int(path, lineno, key, val, &out->seq_length);
    else if (!strcasecmp(key, "imWidth"))
      rc = parse_int(path, lineno, key, val, &out->im_width);
    else if (!strcasecmp(key, "imHeight"))
      rc = parse_int(path, lineno, key, val, &out->im_height);
    if (rc != MASA_OK) {
      fclose(f);
      return rc;
    }
  }
  fclose(f);
  if (out->seq_length < 0) return masa_error("%s: no seqLength in a [Sequence] section", path);
  return MASA_OK;
}

int mot_write_seqinfo(const char *path, const mot_seqinfo *info) {
  FILE *f = fopen(path, "w");
  if (!f) return masa_error("%s: cannot create (%s)", path, strerror(errno));
  fprintf(f, "[Sequence]\nname=%s\nimDir=%s\nframeRate=%d\nseqLength=%d\nimWidth=%d\nimHeight=%d\nimExt=%s\n",
          info->name, info->im_dir[0] ? info->im_dir : "img1", info->frame_rate, info->seq_length,
          info->im_width, info->im_height, info->im_ext[0] ? info->im_ext : ".jpg");
  if (fclose(f) != 0) return masa_error("%s: write failed (%s)", path, strerror(errno));
  return MASA_OK;
}
