#include "cli/schemas.h"
#include "data/loader.h"  // data_schema
#include "model/masa_model.h"  // model_schema

void register_all_schemas(config *cfg) {
  config_register(cfg, bench_schema);
  config_register(cfg, data_schema);
  config_register(cfg, model_schema);
}
