// Options shared by every subcommand (see cli.h).
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "core/log.h"

int cli_parse_common(int argc, char **argv, config *cfg, char **rest, int *nrest) {
  *nrest = 0;
  // The recipe file is applied before any --set, wherever they appear on the line.
  for (int i = 0; i < argc; i++)
    if (!strcmp(argv[i], "--config")) {
      if (i + 1 >= argc) return masa_error("--config needs a file");
      if (config_load_file(cfg, argv[i + 1]) != MASA_OK) return MASA_ERR;
    }
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    int has_val = i + 1 < argc;
    if (!strcmp(a, "--config")) {
      i++;
    } else if (!strcmp(a, "--set")) {
      if (!has_val) return masa_error("--set needs key=value");
      if (config_set_arg(cfg, argv[++i]) != MASA_OK) return MASA_ERR;
    } else if (!strcmp(a, "--threads")) {
      if (!has_val) return masa_error("--threads needs a number");
      char *end;
      long n = strtol(argv[++i], &end, 10);
      if (*end || n < 1 || n > 4096) return masa_error("--threads: expected a positive integer, got '%s'", argv[i]);
      omp_set_num_threads((int)n);
    } else if (!strcmp(a, "--log-level")) {
      if (!has_val) return masa_error("--log-level needs a level");
      int lv = log_level_parse(argv[++i]);
      if (lv < 0) return masa_error("--log-level: expected debug, info, warn, error or quiet, got '%s'", argv[i]);
      log_set_level((log_level)lv);
    } else {
      rest[(*nrest)++] = argv[i];
    }
  }
  return MASA_OK;
}
