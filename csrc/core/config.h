// Recipes: plain-text config files, one recipe per file in configs/.
//   # comment
//   key = value            (dotted keys, e.g. bench.channels = 256)
// Every key must be declared in a schema (name, type, default, help) registered by the module
// that reads it; unknown keys, duplicate keys and values that do not parse as the key's type are
// errors naming file:line. `--set key=value` overrides use the same parser (origin "--set").
#ifndef MASA_CONFIG_H
#define MASA_CONFIG_H

#include <stdint.h>

typedef enum { CFG_INT, CFG_FLOAT, CFG_BOOL, CFG_STRING, CFG_INT_LIST, CFG_FLOAT_LIST } cfg_type;

typedef struct {
  const char *key;
  cfg_type type;
  const char *default_value;  // parsed like a file value; must be valid
  const char *help;
} cfg_key;

#define CFG_MAX_LIST 16

typedef struct {
  const cfg_key *def;
  char text[512];  // the value as written
  char origin[160];  // "default", "file.cfg:12" or "--set"
  int64_t i;
  double f;
  int n;  // list length
  int64_t il[CFG_MAX_LIST];
  double fl[CFG_MAX_LIST];
} cfg_value;

typedef struct {
  cfg_value *values;
  int count, cap;
} config;

void config_init(config *c);
void config_free(config *c);
// Registers a schema (an array terminated by an entry with key NULL) and applies its defaults.
void config_register(config *c, const cfg_key *schema);

// MASA_ERR with "path:line: ..." messages on the first problem.
int config_load_file(config *c, const char *path);
// Parses "key=value" from a command line.
int config_set_arg(config *c, const char *assignment);
int config_set(config *c, const char *key, const char *value, const char *origin);

// Typed getters; the key must be registered with that type (programming error otherwise).
int64_t config_int(const config *c, const char *key);
double config_float(const config *c, const char *key);
int config_bool(const config *c, const char *key);
const char *config_str(const config *c, const char *key);
int config_int_list(const config *c, const char *key, int64_t *out, int max);
int config_float_list(const config *c, const char *key, double *out, int max);

// The effective config as file text ("key = value  # origin"), malloc'd; stored in checkpoints.
char *config_dump(const config *c);

#endif
