// `masa match --config CFG --weights W.h5 --data PATH [--pairs N] [--seed S]`: held-out
// instance matching accuracy of a model's embeddings on view pairs built by the recipe's
// augmentation (train/match_eval.h), beside chance. Prints one line a script can parse:
//   match: accuracy 0.8123 (1234/1519 instances, 64 pairs), chance 0.0712
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/schemas.h"
#include "core/error.h"
#include "core/log.h"
#include "data/loader.h"
#include "train/match_eval.h"

int cmd_match(int argc, char **argv) {
  config cfg;
  config_init(&cfg);
  register_all_schemas(&cfg);
  char *rest[64];
  int nrest = 0, rc = 1;
  const char *weights = NULL, *data = NULL;
  long pairs = 64, seed = 12345;
  if (argc > 64 || cli_parse_common(argc, argv, &cfg, rest, &nrest) != MASA_OK) {
    log_error("%s", argc > 64 ? "too many arguments" : masa_errmsg());
    goto done;
  }
  for (int i = 0; i < nrest; i++) {
    char *end = NULL;
    if (!strcmp(rest[i], "--weights") && i + 1 < nrest) {
      weights = rest[++i];
    } else if (!strcmp(rest[i], "--data") && i + 1 < nrest) {
      data = rest[++i];
    } else if (!strcmp(rest[i], "--pairs") && i + 1 < nrest) {
      pairs = strtol(rest[++i], &end, 10);
      if (*end || pairs < 1) {
        log_error("match: --pairs expects a positive integer");
        goto done;
      }
    } else if (!strcmp(rest[i], "--seed") && i + 1 < nrest) {
      seed = strtol(rest[++i], &end, 10);
      if (*end) {
        log_error("match: --seed expects an integer");
        goto done;
      }
    } else {
      log_error("match: unexpected argument '%s'\nusage: masa match --config CFG --weights W.h5 "
                "--data PATH [--pairs N] [--seed S]", rest[i]);
      goto done;
    }
  }
  if (!weights || !data) {
    log_error("match: --weights and --data are required");
    goto done;
  }
  if (config_set(&cfg, "data.path", data, "--data") != MASA_OK) {
    log_error("%s", masa_errmsg());
    goto done;
  }
  loader_opts lo;
  masa_model m;
  if (loader_opts_from_config(&cfg, &lo) != MASA_OK || masa_model_load(&cfg, weights, &m) != MASA_OK) {
    log_error("%s", masa_errmsg());
    goto done;
  }
  lo.seed = (uint64_t)seed;  // held-out views: not the training draws
  lo.rank = 0, lo.world = 1;
  int64_t batches = (pairs + lo.batch_size - 1) / lo.batch_size;
  if (lo.epoch_length < batches * lo.batch_size) lo.epoch_length = batches * lo.batch_size;
  loader *ld = loader_open(&lo, NULL);
  match_result r;
  if (!ld || match_eval(&m, ld, batches, &r) != MASA_OK) {
    log_error("%s", masa_errmsg());
  } else {
    printf("match: accuracy %.4f (%lld/%lld instances, %lld pairs), chance %.4f\n", r.accuracy,
           (long long)r.correct, (long long)r.instances, (long long)r.pairs, r.chance);
    rc = 0;
  }
  if (ld) loader_close(ld);
  masa_model_free(&m);
done:
  config_free(&cfg);
  return rc;
}
