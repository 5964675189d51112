// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011). A value is a pure function
// of (seed, stream, index): no hidden state, so results never depend on thread count, scheduling
// or the order in which consumers draw. Give each consumer its own stream id.
#ifndef MASA_RNG_H
#define MASA_RNG_H

#include <stdint.h>

// Four 32-bit words for counter `index` of (seed, stream).
void rng_philox(uint64_t seed, uint64_t stream, uint64_t index, uint32_t out[4]);
uint32_t rng_u32(uint64_t seed, uint64_t stream, uint64_t index);
// Uniform in [0, 1) with 24 random bits (exactly representable in float).
float rng_uniform(uint64_t seed, uint64_t stream, uint64_t index);
// Standard normal (Box-Muller on one Philox block).
float rng_normal(uint64_t seed, uint64_t stream, uint64_t index);
// Uniform integer in [0, n), n > 0 (rejection-free multiply-shift; bias < 2^-32 * n).
uint32_t rng_below(uint64_t seed, uint64_t stream, uint64_t index, uint32_t n);

// Fill helpers: element i uses counter (offset + i).
void rng_fill_uniform(float *x, int64_t n, float lo, float hi, uint64_t seed, uint64_t stream);
void rng_fill_normal(float *x, int64_t n, float mean, float std, uint64_t seed, uint64_t stream);

// Seed for tests: MASA_SEED from the environment if set, else `fallback`. Printed by the caller.
uint64_t rng_test_seed(uint64_t fallback);

#endif
