// Shortest augmenting path assignment, after D. F. Crouse, "On implementing 2D rectangular
// assignment algorithms", IEEE TAES 2016, in the variant scipy ships (rectangular_lsap): the same
// visiting order of free columns, the same tie rule (among equally short paths prefer a free
// column, ending the search) and the same dual updates, so that the chosen optimum is scipy's.
#include "eval/assign.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"

typedef struct {
  int64_t nr, nc;
  const double *cost;  // (nr, nc), nr <= nc
  double *u, *v, *spc;  // row duals (nr), column duals (nc), shortest path costs (nc)
  int64_t *path, *col4row, *row4col, *remaining;
  unsigned char *sr, *sc;
} lsap;

// Dijkstra-like search from free row i for the shortest augmenting path; returns its sink column
// (or -1 when every reachable column costs +inf) and the path length in *min_val.
static int64_t augmenting_path(lsap *s, int64_t i, double *min_val) {
  const int64_t nc = s->nc;
  double mv = 0;
  // Free columns are scanned from the highest index down, as scipy's vector of remaining columns.
  int64_t num_remaining = nc;
  for (int64_t it = 0; it < nc; it++) s->remaining[it] = nc - it - 1;
  memset(s->sr, 0, (size_t)s->nr);
  memset(s->sc, 0, (size_t)nc);
  for (int64_t j = 0; j < nc; j++) s->spc[j] = INFINITY;
  int64_t sink = -1;
  while (sink == -1) {
    int64_t index = -1;
    double lowest = INFINITY;
    s->sr[i] = 1;
    for (int64_t it = 0; it < num_remaining; it++) {
      int64_t j = s->remaining[it];
      double r = mv + s->cost[i * nc + j] - s->u[i] - s->v[j];
      if (r < s->spc[j]) {
        s->path[j] = i;
        s->spc[j] = r;
      }
      // Among equal shortest paths take one that ends at a free column (scipy's rule).
      if (s->spc[j] < lowest || (s->spc[j] == lowest && s->row4col[j] == -1)) {
        lowest = s->spc[j];
        index = it;
      }
    }
    mv = lowest;
    if (mv == INFINITY) return -1;
    int64_t j = s->remaining[index];
    if (s->row4col[j] == -1)
      sink = j;
    else
      i = s->row4col[j];
    s->sc[j] = 1;
    s->remaining[index] = s->remaining[--num_remaining];
  }
  *min_val = mv;
  return sink;
}

int64_t linear_sum_assignment(const double *cost_in, int64_t nr, int64_t nc, int64_t *rows,
                              int64_t *cols) {
  if (nr == 0 || nc == 0) return 0;
  for (int64_t k = 0; k < nr * nc; k++)
    if (isnan(cost_in[k]) || cost_in[k] == -INFINITY) return -1;
  int transpose = nc < nr;
  double *tcost = NULL;
  const double *cost = cost_in;
  if (transpose) {
    tcost = mallocCheck((size_t)(nr * nc) * sizeof(double));
    for (int64_t i = 0; i < nr; i++)
      for (int64_t j = 0; j < nc; j++) tcost[j * nr + i] = cost_in[i * nc + j];
    cost = tcost;
    int64_t t = nr;
    nr = nc;
    nc = t;
  }
  lsap s = {.nr = nr, .nc = nc, .cost = cost};
  s.u = callocCheck((size_t)nr, sizeof(double));
  s.v = callocCheck((size_t)nc, sizeof(double));
  s.spc = mallocCheck((size_t)nc * sizeof(double));
  s.path = mallocCheck((size_t)nc * sizeof(int64_t));
  s.col4row = mallocCheck((size_t)nr * sizeof(int64_t));
  s.row4col = mallocCheck((size_t)nc * sizeof(int64_t));
  s.remaining = mallocCheck((size_t)nc * sizeof(int64_t));
  s.sr = mallocCheck((size_t)nr);
  s.sc = mallocCheck((size_t)nc);
  for (int64_t j = 0; j < nc; j++) s.path[j] = s.row4col[j] = -1;
  for (int64_t i = 0; i < nr; i++) s.col4row[i] = -1;

  int64_t result = nr;
  for (int64_t cur = 0; cur < nr; cur++) {
    double min_val = 0;
    int64_t sink = augmenting_path(&s, cur, &min_val);
    if (sink < 0) {
      result = -1;
      break;
    }
    // Dual updates, then flip the path.
    s.u[cur] += min_val;
    for (int64_t i = 0; i < nr; i++)
      if (s.sr[i] && i != cur) s.u[i] += min_val - s.spc[s.col4row[i]];
    for (int64_t j = 0; j < nc; j++)
      if (s.sc[j]) s.v[j] -= min_val - s.spc[j];
    int64_t j = sink;
    for (;;) {
      int64_t i = s.path[j];
      s.row4col[j] = i;
      int64_t t = s.col4row[i];
      s.col4row[i] = j;
      j = t;
      if (i == cur) break;
    }
  }
  if (result >= 0) {
    if (transpose) {
      // Sorted by original row = the transposed problem's matched columns, in index order.
      int64_t k = 0;
      for (int64_t j = 0; j < nc; j++)
        if (s.row4col[j] >= 0) {
          rows[k] = j;
          cols[k] = s.row4col[j];
          k++;
        }
      masa_assert(k == nr);
    } else {
      for (int64_t i = 0; i < nr; i++) {
        rows[i] = i;
        cols[i] = s.col4row[i];
      }
    }
  }
  free(s.u);
  free(s.v);
  free(s.spc);
  free(s.path);
  free(s.col4row);
  free(s.row4col);
  free(s.remaining);
  free(s.sr);
  free(s.sc);
  free(tcost);
  return result;
}
