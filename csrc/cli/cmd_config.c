// `masa config --config FILE [--set k=v]...`: validates a recipe and prints the effective values
// with where each came from. Knows every registered schema.
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/schemas.h"
#include "core/error.h"
#include "core/log.h"

int cmd_config(int argc, char **argv) {
  config cfg;
  config_init(&cfg);
  register_all_schemas(&cfg);
  char *rest[256];
  int nrest = 0;
  if (argc > 256 || cli_parse_common(argc, argv, &cfg, rest, &nrest) != MASA_OK) {
    log_error("%s", argc > 256 ? "too many arguments" : masa_errmsg());
    config_free(&cfg);
    return 1;
  }
  if (nrest) {
    log_error("config: unexpected argument '%s'", rest[0]);
    config_free(&cfg);
    return 1;
  }
  char *text = config_dump(&cfg);
  fputs(text, stdout);
  free(text);
  config_free(&cfg);
  return 0;
}
