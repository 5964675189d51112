#include "cli/schemas.h"
#include "data/loader.h"  // data_schema

void register_all_schemas(config *cfg) {
  config_register(cfg, bench_schema);
  config_register(cfg, data_schema);
}
