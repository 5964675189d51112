#include "cli/schemas.h"
#include "core/device.h"  // device_schema
#include "data/loader.h"  // data_schema
#include "eval/tracker.h"  // track_schema
#include "model/masa_model.h"  // model_schema
#include "train/optim.h"      // optim_schema
#include "train/schedule.h"   // lr_schema
#include "train/trainer.h"    // train_schema

void register_all_schemas(config *cfg) {
  config_register(cfg, bench_schema);
  config_register(cfg, device_schema);
  config_register(cfg, data_schema);
  config_register(cfg, track_schema);
  config_register(cfg, model_schema);
  config_register(cfg, optim_schema);
  config_register(cfg, lr_schema);
  config_register(cfg, train_schema);
}
