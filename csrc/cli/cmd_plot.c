// `masa plot RUN_DIR`: loss curves of a training run (RUN_DIR/metrics.jsonl) into RUN_DIR/loss.png.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "core/log.h"
#include "train/plot.h"

static const char *plot_usage =
    "usage: masa plot RUN_DIR [--log-y] [--smooth A] [--panel WxH] [--out FILE]\n"
    "  draws every loss term of RUN_DIR/metrics.jsonl (raw values faint, EMA-smoothed line)\n"
    "  --log-y      logarithmic y axis\n"
    "  --smooth A   EMA weight in [0, 1) (default: 1 - 1/max(10, steps/100); 0: no smoothed line)\n"
    "  --panel WxH  pixels per panel (default 480x320)\n"
    "  --out FILE   output PNG (default RUN_DIR/loss.png)";

int cmd_plot(int argc, char **argv) {
  plot_opts o;
  plot_opts_default(&o);
  const char *run_dir = NULL, *out = NULL;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    char *end = NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      puts(plot_usage);
      return 0;
    } else if (!strcmp(a, "--log-y") || !strcmp(a, "--log")) {
      o.log_y = 1;
    } else if (!strcmp(a, "--smooth") && val) {
      o.smooth = strtod(val, &end);
      if (*end || !(o.smooth >= 0 && o.smooth < 1)) {
        log_error("plot: --smooth expects a number in [0, 1), got '%s'", val);
        return 1;
      }
      i++;
    } else if (!strcmp(a, "--panel") && val) {
      if (sscanf(val, "%dx%d", &o.panel_w, &o.panel_h) != 2) {
        log_error("plot: --panel expects WxH, got '%s'", val);
        return 1;
      }
      i++;
    } else if (!strcmp(a, "--out") && val) {
      out = val;
      i++;
    } else if (a[0] != '-' && !run_dir) {
      run_dir = a;
    } else {
      log_error("plot: unexpected argument '%s'\n%s", a, plot_usage);
      return 1;
    }
  }
  if (!run_dir) {
    log_error("plot: RUN_DIR is required\n%s", plot_usage);
    return 1;
  }
  int nterms = 0;
  int64_t nsteps = 0;
  if (plot_run(run_dir, out, &o, &nterms, &nsteps) != MASA_OK) {
    log_error("plot: %s", masa_errmsg());
    return 1;
  }
  if (out)
    printf("wrote %s (%lld steps, %d loss terms)\n", out, (long long)nsteps, nterms);
  else
    printf("wrote %s/loss.png (%lld steps, %d loss terms)\n", run_dir, (long long)nsteps, nterms);
  return 0;
}
