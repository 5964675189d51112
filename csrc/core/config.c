#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/check.h"
#include "core/error.h"

static const char *type_name(cfg_type t) {
  static const char *names[] = {"integer", "number", "boolean", "string", "integer list",
                                "number list"};
  return names[t];
}

void config_init(config *c) { memset(c, 0, sizeof *c); }

void config_free(config *c) {
  free(c->values);
  memset(c, 0, sizeof *c);
}

static cfg_value *find(const config *c, const char *key) {
  for (int i = 0; i < c->count; i++)
    if (strcmp(c->values[i].def->key, key) == 0) return &c->values[i];
  return NULL;
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
  return s;
}

static int parse_int(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *trim(end)) return 0;
  *out = v;
  return 1;
}

static int parse_float(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *trim(end) || !isfinite(v)) return 0;
  *out = v;
  return 1;
}

static int parse_bool(const char *s, int64_t *out) {
  if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on") || !strcmp(s, "1")) {
    *out = 1;
    return 1;
  }
  if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off") || !strcmp(s, "0")) {
    *out = 0;
    return 1;
  }
  return 0;
}

// Parses text into v (typed by v->def). On failure returns a description of what was expected.
static const char *parse_value(cfg_value *v, const char *text) {
  char buf[512];
  if (strlen(text) >= sizeof buf) return "a value shorter than 512 characters";
  snprintf(buf, sizeof buf, "%s", text);
  char *s = trim(buf);
  switch (v->def->type) {
    case CFG_INT:
      if (!parse_int(s, &v->i)) return "an integer";
      break;
    case CFG_FLOAT:
      if (!parse_float(s, &v->f)) return "a finite number";
      break;
    case CFG_BOOL:
      if (!parse_bool(s, &v->i)) return "true or false";
      break;
    case CFG_STRING:
      break;
    case CFG_INT_LIST:
    case CFG_FLOAT_LIST: {
      v->n = 0;
      if (!*s) break;  // empty list
      char *save = NULL;
      for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (v->n == CFG_MAX_LIST) return "a list of at most 16 items";
        char *t = trim(tok);
        if (v->def->type == CFG_INT_LIST ? !parse_int(t, &v->il[v->n]) : !parse_float(t, &v->fl[v->n]))
          return v->def->type == CFG_INT_LIST ? "a comma-separated list of integers"
                                              : "a comma-separated list of numbers";
        v->n++;
      }
      break;
    }
  }
  snprintf(v->text, sizeof v->text, "%s", trim((char *)strcpy(buf, text)));
  return NULL;
}

void config_register(config *c, const cfg_key *schema) {
  for (const cfg_key *k = schema; k->key; k++) {
    masa_assert(find(c, k->key) == NULL);
    if (c->count == c->cap) {
      c->cap = c->cap ? 2 * c->cap : 64;
      cfg_value *nv = realloc(c->values, (size_t)c->cap * sizeof *nv);
      if (!nv) masa_die(__FILE__, __LINE__, "realloc", "libc", "out of memory");
      c->values = nv;
    }
    cfg_value *v = &c->values[c->count++];
    memset(v, 0, sizeof *v);
    v->def = k;
    const char *err = parse_value(v, k->default_value);
    if (err) masa_die(__FILE__, __LINE__, k->key, "config", "invalid default in schema");
    snprintf(v->origin, sizeof v->origin, "default");
  }
}

int config_set(config *c, const char *key, const char *value, const char *origin) {
  cfg_value *v = find(c, key);
  if (!v) {
    // Suggest a key sharing the longest prefix, the usual cause being a typo.
    const char *best = NULL;
    size_t best_len = 0;
    for (int i = 0; i < c->count; i++) {
      const char *k = c->values[i].def->key;
      size_t l = 0;
      while (k[l] && k[l] == key[l]) l++;
      if (l > best_len) {
        best_len = l;
        best = k;
      }
    }
    if (best && best_len >= 3)
      return masa_error("%s: unknown key '%s' (did you mean '%s'?)", origin, key, best);
    return masa_error("%s: unknown key '%s'", origin, key);
  }
  cfg_value tmp = *v;
  const char *err = parse_value(&tmp, value);
  if (err)
    return masa_error("%s: key '%s' expects %s (%s), got '%s'", origin, key, err,
                      type_name(v->def->type), value);
  snprintf(tmp.origin, sizeof tmp.origin, "%s", origin);
  *v = tmp;
  return MASA_OK;
}

int config_set_arg(config *c, const char *assignment) {
  const char *eq = strchr(assignment, '=');
  if (!eq || eq == assignment)
    return masa_error("--set: expected key=value, got '%s'", assignment);
  char key[256];
  size_t n = (size_t)(eq - assignment);
  if (n >= sizeof key) return masa_error("--set: key too long in '%s'", assignment);
  memcpy(key, assignment, n);
  key[n] = 0;
  return config_set(c, trim(key), eq + 1, "--set");
}

int config_load_file(config *c, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return masa_error("%s: cannot open config: %s", path, strerror(errno));
  char line[2048];
  int lineno = 0, rc = MASA_OK;
  char seen[256][96];
  int nseen = 0;
  while (rc == MASA_OK && fgets(line, sizeof line, f)) {
    lineno++;
    char origin[160];
    snprintf(origin, sizeof origin, "%s:%d", path, lineno);
    if (!strchr(line, '\n') && !feof(f)) {
      rc = masa_error("%s: line longer than %zu characters", origin, sizeof line - 2);
      break;
    }
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    char *s = trim(line);
    if (!*s) continue;
    char *eq = strchr(s, '=');
    if (!eq) {
      rc = masa_error("%s: expected 'key = value', got '%s'", origin, s);
      break;
    }
    *eq = 0;
    char *key = trim(s), *value = trim(eq + 1);
    for (int i = 0; i < nseen; i++)
      if (strcmp(seen[i], key) == 0) rc = masa_error("%s: key '%s' set twice", origin, key);
    if (rc != MASA_OK) break;
    if (nseen < 256) snprintf(seen[nseen++], sizeof seen[0], "%s", key);
    rc = config_set(c, key, value, origin);
  }
  fclose(f);
  return rc;
}

static const cfg_value *get(const config *c, const char *key, cfg_type t) {
  const cfg_value *v = find(c, key);
  if (!v || v->def->type != t) masa_die(__FILE__, __LINE__, key, "config", "key not registered with this type");
  return v;
}

int64_t config_int(const config *c, const char *key) { return get(c, key, CFG_INT)->i; }
double config_float(const config *c, const char *key) { return get(c, key, CFG_FLOAT)->f; }
int config_bool(const config *c, const char *key) { return (int)get(c, key, CFG_BOOL)->i; }
const char *config_str(const config *c, const char *key) { return get(c, key, CFG_STRING)->text; }

int config_int_list(const config *c, const char *key, int64_t *out, int max) {
  const cfg_value *v = get(c, key, CFG_INT_LIST);
  for (int i = 0; i < v->n && i < max; i++) out[i] = v->il[i];
  return v->n;
}

int config_float_list(const config *c, const char *key, double *out, int max) {
  const cfg_value *v = get(c, key, CFG_FLOAT_LIST);
  for (int i = 0; i < v->n && i < max; i++) out[i] = v->fl[i];
  return v->n;
}

char *config_dump(const config *c) {
  size_t cap = 256 + (size_t)c->count * 900, len = 0;
  char *out = mallocCheck(cap);
  out[0] = 0;
  for (int i = 0; i < c->count; i++) {
    const cfg_value *v = &c->values[i];
    len += (size_t)snprintf(out + len, cap - len, "%s = %s  # %s\n", v->def->key, v->text, v->origin);
  }
  return out;
}
