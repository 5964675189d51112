// Linear assignment (minimum-cost bipartite matching) for dense rectangular cost matrices.
// Mirrors scipy.optimize.linear_sum_assignment (scipy/optimize/rectangular_lsap: Crouse's
// shortest augmenting path, with a wide matrix solved row by row and a tall one transposed) step
// for step, so ties are broken exactly as scipy breaks them. The tracking metrics depend on that:
// TrackEval and py-motmetrics both call scipy, and with tied scores (all-zero HOTA rows, equal
// IoUs) a different but equally optimal matching changes IDSW, Frag and the association scores.
#ifndef MASA_EVAL_ASSIGN_H
#define MASA_EVAL_ASSIGN_H

#include <stdint.h>

// cost (nr, nc) row-major, finite (no NaN or -inf; +inf marks forbidden pairs as in scipy).
// Writes min(nr, nc) pairs to rows[], cols[] sorted by row, as scipy returns them.
// Returns the number of pairs, or -1 when the problem is infeasible (a row or column can only be
// matched through +inf entries) or a cost is NaN / -inf.
int64_t linear_sum_assignment(const double *cost, int64_t nr, int64_t nc, int64_t *rows,
                              int64_t *cols);

#endif
