// Whole-file JSON loading for the benchmark formats (cJSON), with errors naming the file and the
// byte where parsing stopped.
#ifndef MASA_EVAL_JSON_FILE_H
#define MASA_EVAL_JSON_FILE_H

#include <cjson/cJSON.h>

int json_load_file(const char *path, cJSON **root);
// Writes root (formatted compactly) to path.
int json_write_file(const char *path, const cJSON *root);
// Number field as double; returns 0 and leaves *out when missing or not a number.
int json_number(const cJSON *obj, const char *key, double *out);

#endif
