// Subcommands of the `masa` program. Each is thin: parse arguments, call the library.
// Common options, accepted by every subcommand that takes a recipe:
//   --config FILE      a recipe from configs/ (any subcommand-specific keys are registered first)
//   --set key=value    override one key (repeatable)
//   --threads N        OpenMP threads (default: all cores)
//   --log-level L      debug | info | warn | error | quiet
#ifndef MASA_CLI_H
#define MASA_CLI_H

#include "core/config.h"

int cmd_bench(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_match(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_track(int argc, char **argv);
int cmd_views(int argc, char **argv);
// `masa bench data` (cmd_bench_data.c); argv after "data".
int bench_data(int argc, char **argv);
// `masa bench embed` (cmd_bench_embed.c); argv after "embed".
int bench_embed(int argc, char **argv);
// `masa bench track` (cmd_bench_track.c); argv after "track".
int bench_track(int argc, char **argv);
// `masa bench train` (cmd_bench_train.c); argv after "train".
int bench_train(int argc, char **argv);
// `masa bench gpu` (cmd_bench_gpu.c); argv after "gpu".
int bench_gpu(int argc, char **argv);

// Parses the common options into cfg (whose schema the caller has registered), leaving other
// arguments in rest[0..*nrest). Returns MASA_ERR with a message on a bad option or config.
int cli_parse_common(int argc, char **argv, config *cfg, char **rest, int *nrest);

#endif
