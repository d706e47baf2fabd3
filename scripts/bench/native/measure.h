/* The timed loop the benchmark's C clients share: an operation repeated for a warm-up,
 * then for the measured seconds, each call timed; the process's CPU over the window
 * (getrusage) and the latency percentiles, printed as one JSON object.
 *
 * `op` returns the bytes it read, or -1 when it failed (the run then stops).
 */
#ifndef HTTPRS_BENCH_MEASURE_H
#define HTTPRS_BENCH_MEASURE_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

typedef long (*measured_op)(void* arg);

struct measured {
  size_t n;
  double wall_s, user_s, sys_s, p50_us, p99_us;
  long long bytes;
};

static double measure_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double measure_seconds_of(struct timeval tv) {
  return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

static int measure_cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

/* Runs `op` at least once and until `seconds` have passed. 0, or -1 when a call failed
 */
static int warm_up(measured_op op, void* arg, double seconds) {
  double end = measure_now() + seconds;
  do {
    if (op(arg) < 0) {
      fprintf(stderr, "request failed during warm-up\n");
      return -1;
    }
  } while (measure_now() < end);
  return 0;
}

/* Runs `op` for `seconds`, timing each call, into `m`. 0, or -1 when a call failed. */
static int measure(measured_op op, void* arg, double seconds, struct measured* m) {
  size_t cap = 1 << 16, n = 0;
  double* lat = malloc(cap * sizeof *lat);
  long long bytes = 0;
  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  double t0 = measure_now(), t = t0, end = t0 + seconds;
  while (t < end) {
    long b = op(arg);
    if (b < 0) {
      fprintf(stderr, "request failed\n");
      free(lat);
      return -1;
    }
    bytes += b;
    double t2 = measure_now();
    if (n == cap) {
      cap *= 2;
      lat = realloc(lat, cap * sizeof *lat);
    }
    lat[n++] = t2 - t;
    t = t2;
  }
  getrusage(RUSAGE_SELF, &ru1);
  qsort(lat, n, sizeof *lat, measure_cmp);
  m->n = n;
  m->wall_s = t - t0;
  m->user_s = measure_seconds_of(ru1.ru_utime) - measure_seconds_of(ru0.ru_utime);
  m->sys_s = measure_seconds_of(ru1.ru_stime) - measure_seconds_of(ru0.ru_stime);
  m->p50_us = lat[n / 2] * 1e6;
  m->p99_us = lat[(size_t)((double)n * 0.99)] * 1e6;
  m->bytes = bytes;
  free(lat);
  return 0;
}

/* Prints `m` as one JSON object; `extra` (", \"key\": value" pairs, or "") goes inside. */
static void print_measured(const struct measured* m, const char* extra) {
  printf(
      "{\"requests\": %zu, \"wall_s\": %.6f, \"cpu_user_s\": %.6f, \"cpu_sys_s\": %.6f, "
      "\"p50_us\": %.2f, \"p99_us\": %.2f, \"bytes\": %lld%s}\n",
      m->n, m->wall_s, m->user_s, m->sys_s, m->p50_us, m->p99_us, m->bytes, extra);
}

#endif
