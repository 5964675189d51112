// masa: MASA adapter training, zero-shot tracking and evaluation in C and CUDA.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/check.h"
#ifdef MASA_HAVE_CUDA
#include "kernels.h"
#endif

static const char *usage =
    "usage: masa <command> [options]\n"
    "\n"
    "commands:\n"
    "  bench ops     time conv2d, DCNv2 and RoIAlign forward+backward at MASA shapes,\n"
    "                side by side with PyTorch on this CPU\n"
    "  bench embed   masa embed time and peak memory at 1024x1024 beside the PyTorch reference\n"
    "  bench data    view pairs per second per core vs JPEG decoding and a Python pipeline\n"
    "  bench track   tracking frames/s (demo, MASA-R50, tracker only); masa eval vs TrackEval time\n"
    "  bench train   training step time, loader share, memory and scaling beside PyTorch\n"
    "  check         GPU check: every CUDA op against its CPU twin (exit 3: no GPU)\n"
    "  config        print the effective config of a recipe after --set overrides\n"
    "  embed         embeddings of given boxes in one image (--weights --image --boxes --out)\n"
    "  eval          score tracking results on a benchmark (mot, tao, bdd): CLEAR, IDF1, HOTA, TETA\n"
    "  init          a weights file with the official random initialisation of a recipe's model\n"
    "  match         held-out instance matching accuracy of a model's embeddings on view pairs\n"
    "  plot          draw the loss curves of a training run (RUN_DIR/metrics.jsonl -> loss.png)\n"
    "  synth         write a synthetic SA-1B-format dataset (or MOT sequences with --video)\n"
    "  track         track a video from per-frame detections (MASA / histogram / IoU matching)\n"
    "  train         train the adapter on an image collection with masks (contrastive instance learning)\n"
    "  version       print the version and build features\n"
    "  views         write the first N training view pairs as pictures + JSON (--data --n --out)\n"
    "\n"
    "common options: --config FILE, --set key=value (repeatable), --threads N,\n"
    "                --log-level debug|info|warn|error|quiet\n";

// libgomp's default (active) wait spins idle OpenMP threads; next to the data loader's worker
// threads and OpenBLAS on a few cores that starves real work (a training step measured 10x
// slower). The policy is read when libgomp loads, before main, so set it and re-exec once,
// unless the user chose a policy.
static void prefer_passive_omp_wait(char **argv) {
  if (getenv("OMP_WAIT_POLICY")) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then carry on as we are
}

int main(int argc, char **argv) {
  prefer_passive_omp_wait(argv);
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? MASA_EXIT_FAILURE : 0;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "bench")) return cmd_bench(argc - 2, argv + 2);
  if (!strcmp(cmd, "check")) return cmd_check(argc - 2, argv + 2);
  if (!strcmp(cmd, "config")) return cmd_config(argc - 2, argv + 2);
  if (!strcmp(cmd, "embed")) return cmd_embed(argc - 2, argv + 2);
  if (!strcmp(cmd, "eval")) return cmd_eval(argc - 2, argv + 2);
  if (!strcmp(cmd, "init")) return cmd_init(argc - 2, argv + 2);
  if (!strcmp(cmd, "match")) return cmd_match(argc - 2, argv + 2);
  if (!strcmp(cmd, "plot")) return cmd_plot(argc - 2, argv + 2);
  if (!strcmp(cmd, "synth")) return cmd_synth(argc - 2, argv + 2);
  if (!strcmp(cmd, "track")) return cmd_track(argc - 2, argv + 2);
  if (!strcmp(cmd, "views")) return cmd_views(argc - 2, argv + 2);
  if (!strcmp(cmd, "train")) return cmd_train(argc - 2, argv + 2);
  if (!strcmp(cmd, "version")) {
    printf("masa 0.1.0\n");
#ifdef MASA_HAVE_CUDA
    char libs[256];
    cuda_library_versions(libs, sizeof libs);
    printf("CUDA kernels: built (%s)\n", libs);
#else
    printf("CUDA kernels: not built\n");
#endif
    return 0;
  }
  fprintf(stderr, "masa: unknown command '%s'\n\n%s", cmd, usage);
  return MASA_EXIT_FAILURE;
}
