#include "eval/json_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"

int json_load_file(const char *path, cJSON **root) {
  *root = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return masa_error("%s: cannot open (%s)", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (n <= 0) {
    fclose(f);
    return masa_error("%s: empty file", path);
  }
  char *text = mallocCheck((size_t)n + 1);
  freadCheck(text, 1, (size_t)n, f);
  fclose(f);
  text[n] = 0;
  const char *at = NULL;
  *root = cJSON_ParseWithLengthOpts(text, (size_t)n, &at, 0);
  long off = at && at >= text && at <= text + n ? (long)(at - text) : -1;
  free(text);
  if (!*root) return masa_error("%s: malformed JSON (parse error near byte %ld)", path, off);
  return MASA_OK;
}

int json_write_file(const char *path, const cJSON *root) {
  char *s = cJSON_Print(root);
  if (!s) return masa_error("%s: cannot format JSON", path);
  FILE *f = fopen(path, "w");
  if (!f) {
    cJSON_free(s);
    return masa_error("%s: cannot create (%s)", path, strerror(errno));
  }
  fputs(s, f);
  fputc('\n', f);
  cJSON_free(s);
  if (fclose(f) != 0) return masa_error("%s: write failed (%s)", path, strerror(errno));
  return MASA_OK;
}

int json_number(const cJSON *obj, const char *key, double *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsNumber(v)) return 0;
  *out = v->valuedouble;
  return 1;
}
