// `masa init --config CFG --out W.h5 [--seed S]`: a weights file with the official random
// initialisation of every module of the recipe's model (the untrained baseline, and the start of
// a training run), plus the parameter table summary.
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/schemas.h"
#include "core/error.h"
#include "core/h5io.h"
#include "core/log.h"
#include "model/masa_model.h"

int cmd_init(int argc, char **argv) {
  config cfg;
  config_init(&cfg);
  register_all_schemas(&cfg);
  char *rest[64];
  int nrest = 0, rc = 1;
  const char *out = NULL;
  uint64_t seed = 0;
  if (argc > 64 || cli_parse_common(argc, argv, &cfg, rest, &nrest) != MASA_OK) {
    log_error("%s", argc > 64 ? "too many arguments" : masa_errmsg());
    goto done;
  }
  for (int i = 0; i < nrest; i++) {
    if (!strcmp(rest[i], "--out") && i + 1 < nrest) {
      out = rest[++i];
    } else if (!strcmp(rest[i], "--seed") && i + 1 < nrest) {
      char *end;
      seed = strtoull(rest[++i], &end, 10);
      if (*end) {
        log_error("init: --seed expects an integer, got '%s'", rest[i]);
        goto done;
      }
    } else {
      log_error("init: unexpected argument '%s'\nusage: masa init --config CFG --out W.h5 [--seed S]",
                rest[i]);
      goto done;
    }
  }
  if (!out) {
    log_error("init: --out is required");
    goto done;
  }
  masa_model_cfg mc;
  if (masa_model_cfg_from_config(&cfg, &mc) != MASA_OK) {
    log_error("%s", masa_errmsg());
    goto done;
  }
  masa_model m;
  masa_model_build(&m, &mc);
  masa_model_init(&m, seed);
  masa_model_print_summary(&m);
  if (h5_save_params(out, &m.params) != MASA_OK)
    log_error("%s", masa_errmsg());
  else {
    log_info("wrote %s (%d tensors, seed %llu)", out, m.params.count, (unsigned long long)seed);
    rc = 0;
  }
  masa_model_free(&m);
done:
  config_free(&cfg);
  return rc;
}
