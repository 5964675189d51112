// `masa train --config CFG [--data PATH] [--run-dir DIR] [--resume CKPT|DIR|auto]
//              [--init WEIGHTS] [--device cpu|cuda|cuda:N|guard] [--set key=value]...
//              [--threads N]`
// Under `mpirun -np N` (or srun) every rank runs this with its own data shard.
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/schemas.h"
#include "core/error.h"
#include "core/log.h"
#include "train/trainer.h"

int cmd_train(int argc, char **argv) {
  config cfg;
  config_init(&cfg);
  register_all_schemas(&cfg);
  char *rest[64];
  int nrest = 0, rc = 1;
  train_args a;
  memset(&a, 0, sizeof a);
  if (argc > 64 || cli_parse_common(argc, argv, &cfg, rest, &nrest) != MASA_OK) {
    log_error("%s", argc > 64 ? "too many arguments" : masa_errmsg());
    goto done;
  }
  for (int i = 0; i < nrest; i++) {
    const char *k = rest[i];
    const char **dst = !strcmp(k, "--data")      ? &a.data
                       : !strcmp(k, "--run-dir") ? &a.run_dir
                       : !strcmp(k, "--resume")  ? &a.resume
                       : !strcmp(k, "--init")    ? &a.init
                       : !strcmp(k, "--device")  ? &a.device
                                                 : NULL;
    if (dst && i + 1 < nrest) {
      *dst = rest[++i];
    } else if (!strcmp(k, "--stop-after") && i + 1 < nrest) {
      char *end;
      a.stop_after = strtoll(rest[++i], &end, 10);
      if (*end || a.stop_after < 1) {
        log_error("train: --stop-after expects a positive integer");
        goto done;
      }
    } else {
      log_error("train: unexpected argument '%s'\nusage: masa train --config CFG [--data PATH] "
                "[--run-dir DIR] [--resume CKPT|DIR|auto] [--init WEIGHTS] [--device cpu|cuda|cuda:N] "
                "[--set key=value]...", k);
      goto done;
    }
  }
  rc = train_run(&cfg, &a);
done:
  config_free(&cfg);
  return rc;
}
