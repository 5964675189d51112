// numpy's pairwise summation (numpy/core/src/umath/loops_utils.h.src, pairwise_sum): blocks of
// up to 128 summed with 8 accumulators, larger runs split in halves rounded to multiples of 8.
// add.reduce starts from the identity 0, which adds nothing.
#include "eval/metrics.h"

double np_pairwise_sum(const double *a, int64_t n, int64_t stride) {
  if (n < 8) {
    double res = 0.;
    for (int64_t i = 0; i < n; i++) res += a[i * stride];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; j++) r[j] = a[j * stride];
    int64_t i;
    for (i = 8; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; j++) r[j] += a[(i + j) * stride];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res += a[i * stride];
    return res;
  }
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  return np_pairwise_sum(a, n2, stride) + np_pairwise_sum(a + n2 * stride, n - n2, stride);
}
