/*
 * Native convolution kernels for @lab/tfjs-train: im2col + SGEMM for the forward convolution and
 * both of its gradients, plus a fused Adam update. Compiled on the user's machine the first time
 * it is needed (see src/native-addon.ts); plain C11 + Node-API, so no node-gyp, no prebuilt
 * binary and no download.
 *
 * Why native at all: the wasm backend runs XNNPACK on one thread at ~38 GFLOP/s on the ResNet-18
 * GEMM shapes, while the optimised SGEMMs already present on many Linux machines (oneDNN, which
 * PyTorch's CPU convolutions use, and OpenBLAS, which NumPy uses) reach 200+ GFLOP/s per core and
 * can use every core. The libraries are opened with dlopen at load time, so the addon builds
 * without their headers and still works (on a portable built-in GEMM) where none is installed.
 *
 * Tensors arrive as Float32Arrays; on the wasm backend they are views of the wasm heap, so
 * nothing is copied. Layouts are channels-last: x [B,H,W,C], filter [KH,KW,C,CO], y [B,OH,OW,CO],
 * which makes the filter a row-major [KH*KW*C, CO] matrix and each image a [OH*OW, KH*KW*C]
 * patch matrix.
 */
#include <node_api.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * GEMM providers. All compute row-major C = alpha * op(A) op(B) + beta * C.
 * ------------------------------------------------------------------------------------------- */

typedef int (*dnnl_sgemm_fn)(char, char, int64_t, int64_t, int64_t, float, const float *, int64_t,
                             const float *, int64_t, float, float *, int64_t);
typedef void (*cblas_sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *,
                               int, float, float *, int);
typedef void (*set_threads_fn)(int);

enum { PROVIDER_BUILTIN = 0, PROVIDER_ONEDNN = 1, PROVIDER_OPENBLAS = 2 };
static const char *provider_names[] = {"builtin", "onednn", "openblas"};

/* Process-wide: the libraries are process-wide too. Set once in the first Init (under a mutex:
 * Node worker threads each load the addon). */
static pthread_mutex_t provider_lock = PTHREAD_MUTEX_INITIALIZER;
static int provider_ready = 0;
static int provider = PROVIDER_BUILTIN;
static dnnl_sgemm_fn dnnl_sgemm = NULL;
static cblas_sgemm_fn cblas_sgemm = NULL;
static set_threads_fn omp_set_num_threads_ptr = NULL;
static set_threads_fn openblas_set_num_threads_ptr = NULL;
static char provider_path[256] = "";

static void *open_first(const char *const *names, char *opened) {
  for (int i = 0; names[i] != NULL; i++) {
    void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (h != NULL) {
      strncpy(opened, names[i], 255);
      return h;
    }
  }
  return NULL;
}

/* want: "auto", "onednn", "openblas" or "builtin". */
static void choose_provider(const char *want) {
  int any = strcmp(want, "auto") == 0;
  /* Idle OpenMP threads otherwise spin for milliseconds after each GEMM, taking the core the
   * next (single-threaded) kernel or another trial needs. Read by libgomp when it loads, which
   * is when oneDNN is opened here; a user's own setting wins. */
  setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
  if (any || strcmp(want, "onednn") == 0) {
    static const char *const names[] = {"libdnnl.so.3", "libdnnl.so.2", "libdnnl.so", NULL};
    void *h = open_first(names, provider_path);
    if (h != NULL) {
      dnnl_sgemm = (dnnl_sgemm_fn)dlsym(h, "dnnl_sgemm");
      omp_set_num_threads_ptr = (set_threads_fn)dlsym(h, "omp_set_num_threads");
      if (dnnl_sgemm != NULL) {
        provider = PROVIDER_ONEDNN;
        return;
      }
    }
  }
  if (any || strcmp(want, "openblas") == 0) {
    /* The .dylib paths are Homebrew's (Apple Silicon, then Intel); not tested on macOS here. */
    static const char *const names[] = {"libopenblas.so.0", "libopenblas.so",
                                        "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
                                        "/usr/local/opt/openblas/lib/libopenblas.dylib", NULL};
    void *h = open_first(names, provider_path);
    if (h != NULL) {
      cblas_sgemm = (cblas_sgemm_fn)dlsym(h, "cblas_sgemm");
      openblas_set_num_threads_ptr = (set_threads_fn)dlsym(h, "openblas_set_num_threads");
      if (cblas_sgemm != NULL) {
        provider = PROVIDER_OPENBLAS;
        return;
      }
    }
  }
  provider = PROVIDER_BUILTIN;
  provider_path[0] = '\0';
}

/* Per-environment state (one per Node thread that loads the addon). */
typedef struct ThreadPool ThreadPool;
typedef struct {
  float *scratch;
  size_t scratch_floats;
  /* A second buffer (the fused backward's gradient of the convolution output) that outlives calls:
   * freshly malloc'ed, an activation-sized buffer came from mmap, and its page faults cost more
   * than the batch-norm arithmetic on it. */
  float *activation_scratch;
  size_t activation_scratch_floats;
  /* Zero-padded copies for the direct convolution (input, and the gradient's padded rows). */
  float *pad_in, *pad_grad, *flipped_filter;
  size_t pad_in_floats, pad_grad_floats, flipped_filter_floats;
  long scratch_limit;
  int threads;
  ThreadPool *pool;
} Env;

static float *grow(float **buffer, size_t *have, size_t floats) {
  if (*have < floats) {
    free(*buffer);
    *buffer = (float *)malloc(floats * sizeof(float));
    *have = *buffer == NULL ? 0 : floats;
  }
  return *buffer;
}

static float *scratch(Env *env, size_t floats) { return grow(&env->scratch, &env->scratch_floats, floats); }

/* ---------------------------------------------------------------------------------------------
 * A persistent thread pool per environment. Threads started per call cost ~50 us each, more than
 * a small GEMM takes, which had kept the built-in GEMM on one thread. Work is split into
 * `threads` contiguous parts of [0, n) by index alone, so which thread computes what never
 * changes the arithmetic.
 * ------------------------------------------------------------------------------------------- */

typedef void (*range_fn)(void *ctx, long begin, long end);
#define POOL_MAX_THREADS 16

struct ThreadPool {
  pthread_mutex_t lock;
  pthread_cond_t wake, done;
  int started;                      /* worker threads running (the caller is part 0) */
  _Atomic unsigned long generation; /* bumped per job, after the job's fields are written */
  _Atomic int pending;              /* parts still running */
  _Atomic int stop;
  int parts;
  range_fn fn;
  void *ctx;
  long n;
  pthread_t ids[POOL_MAX_THREADS];
  struct PoolWorker {
    ThreadPool *pool;
    int part;
    unsigned long seen; /* the generation this worker last ran (set before it starts) */
  } workers[POOL_MAX_THREADS];
};

/* A convolution posts tens of jobs microseconds apart; a condition-variable wake-up costs more
 * than many of them take. Both sides spin this many pauses (~0.1-0.2 ms) before sleeping. */
#define POOL_SPINS 4000

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static void *pool_worker(void *arg) {
  struct PoolWorker *w = (struct PoolWorker *)arg;
  ThreadPool *p = w->pool;
  /* Not p->generation read now: a job posted between pthread_create and this line would be missed. */
  unsigned long seen = w->seen;
  for (;;) {
    unsigned long g = atomic_load_explicit(&p->generation, memory_order_acquire);
    for (int spin = 0; g == seen && spin < POOL_SPINS && !atomic_load(&p->stop); spin++) {
      cpu_relax();
      g = atomic_load_explicit(&p->generation, memory_order_acquire);
    }
    if (g == seen) {
      pthread_mutex_lock(&p->lock);
      while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop)) pthread_cond_wait(&p->wake, &p->lock);
      pthread_mutex_unlock(&p->lock);
      if (atomic_load(&p->stop)) break;
      g = atomic_load_explicit(&p->generation, memory_order_acquire);
    }
    if (atomic_load(&p->stop)) break;
    seen = g;
    const int parts = p->parts;
    if (w->part < parts) {
      p->fn(p->ctx, p->n * w->part / parts, p->n * (w->part + 1) / parts);
      if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->lock);
      }
    }
  }
  return NULL;
}

static ThreadPool *pool_create(void) {
  ThreadPool *p = (ThreadPool *)calloc(1, sizeof(ThreadPool));
  if (p == NULL) return NULL;
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  return p;
}

/* Starts workers until `threads - 1` run (fewer if the system refuses); returns the parts usable. */
static int pool_grow(ThreadPool *p, int threads) {
  pthread_mutex_lock(&p->lock);
  while (p->started < threads - 1 && p->started < POOL_MAX_THREADS) {
    struct PoolWorker *w = &p->workers[p->started];
    w->pool = p;
    w->part = p->started + 1;
    w->seen = p->generation;
    if (pthread_create(&p->ids[p->started], NULL, pool_worker, w) != 0) break;
    p->started++;
  }
  const int usable = p->started + 1;
  pthread_mutex_unlock(&p->lock);
  return usable;
}

static void pool_destroy(ThreadPool *p) {
  if (p == NULL) return;
  pthread_mutex_lock(&p->lock);
  atomic_store(&p->stop, 1);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  for (int i = 0; i < p->started; i++) pthread_join(p->ids[i], NULL);
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  free(p);
}

/* Runs fn(ctx, begin, end) over [0, n) in min(threads, n / min_per_thread) contiguous parts, part
 * 0 on the calling thread. */
static void parallel_for_on(Env *env, int threads, long n, long min_per_thread, range_fn fn, void *ctx) {
  if (min_per_thread < 1) min_per_thread = 1;
  if (threads > n / min_per_thread) threads = (int)(n / min_per_thread);
  if (threads > 1 && env->pool != NULL) {
    const int usable = pool_grow(env->pool, threads);
    if (usable < threads) threads = usable;
  }
  if (threads <= 1 || env->pool == NULL) {
    if (n > 0) fn(ctx, 0, n);
    return;
  }
  ThreadPool *p = env->pool;
  pthread_mutex_lock(&p->lock);
  p->fn = fn;
  p->ctx = ctx;
  p->n = n;
  p->parts = threads;
  atomic_store(&p->pending, threads - 1);
  atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  fn(ctx, 0, n / threads);
  for (int spin = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0 && spin < POOL_SPINS; spin++) cpu_relax();
  if (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) {
    pthread_mutex_lock(&p->lock);
    while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
  }
}

/* parallel_for_on with the environment's thread count. */
static void parallel_for(Env *env, long n, long min_per_thread, range_fn fn, void *ctx) {
  parallel_for_on(env, env->threads, n, min_per_thread, fn, ctx);
}

/* ---------------------------------------------------------------------------------------------
 * Built-in GEMM for machines without oneDNN or OpenBLAS, in the usual blocked form: op(B) is
 * packed in KC-row slices of NR-column panels, op(A) in MR-row panels, and an MR x NR register
 * tile runs over each pair. GCC's vector extensions keep it portable; the tile is sized for the
 * compile target's registers (-march=native): a tile of 64-byte vectors that fits AVX-512's 32
 * registers spills on AVX2's 16 and ran ~20x slower there. Narrow outputs (few channels, the
 * lab's small models) get tiles one vector (or half of one) wide instead of paying for padding.
 * ------------------------------------------------------------------------------------------- */

#if defined(__AVX512F__)
#define VEC_FLOATS 16
#define VEC_ISA "avx512"
#define VEC_REGISTERS 32
#elif defined(__AVX2__) && defined(__FMA__)
#define VEC_FLOATS 8
#define VEC_ISA "avx2"
#define VEC_REGISTERS 16
#elif defined(__AVX__)
#define VEC_FLOATS 8
#define VEC_ISA "avx"
#define VEC_REGISTERS 16
#elif defined(__ARM_NEON) || defined(__aarch64__)
#define VEC_FLOATS 4
#define VEC_ISA "neon"
#define VEC_REGISTERS 32
#elif defined(__SSE2__)
#define VEC_FLOATS 4
#define VEC_ISA "sse2"
#define VEC_REGISTERS 16
#else
#define VEC_FLOATS 4
#define VEC_ISA "generic"
#define VEC_REGISTERS 16
#endif

#define GEMM_KC 256
typedef float vfull __attribute__((vector_size(VEC_FLOATS * 4)));
typedef float vfull_u __attribute__((vector_size(VEC_FLOATS * 4), aligned(4)));
#if VEC_FLOATS >= 8
typedef float vhalf __attribute__((vector_size(VEC_FLOATS * 2)));
typedef float vhalf_u __attribute__((vector_size(VEC_FLOATS * 2), aligned(4)));
#endif

typedef struct GemmTile GemmTile;
typedef struct GemmSlice GemmSlice;
struct GemmSlice {
  const GemmTile *tile;
  char ta;
  const float *A;
  long lda, M, N, k0, kc, ldc, mc;
  const float *packed_b;
  float *C;
  float alpha, beta;
  int first;
};

/* C[0:mr, 0:nr] (+)= alpha * a-panel x b-panel (kc steps of MR a-values and NR b-values). */
typedef void (*tile_fn)(const GemmSlice *s, const float *a, const float *b, float *c, long mr, long nr);
/* The same for a full MR-row panel read in place: a[r * lda + k] (op 'N') or a[k * lda + r] ('T'). */
typedef void (*direct_tile_fn)(const GemmSlice *s, const float *a, long lda, const float *b, float *c);
struct GemmTile {
  int mr, nr;
  tile_fn fn;
  const char *name;
  /* Narrow tiles only: packing A costs one scattered store per element, as much as the tile's
   * own work when N is a vector or less (measured 3-4x the GEMM itself on 8-channel layers), so
   * full panels are read from A where it lies. */
  direct_tile_fn direct_n, direct_t;
};

/* Writes an MR x NR accumulator block: full tiles with (unaligned) vector stores, edges through a
 * buffer. */
#define TILE_STORE(VT, VT_U, VL, MR, NV)                                                        \
  if (mr == MR && nr == NV * VL) {                                                            \
    _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) {                                   \
      VT_U *cr = (VT_U *)(c + r * s->ldc);                                                    \
      _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) {                                  \
        if (!s->first) cr[v] += s->alpha * acc[r][v];                                         \
        else if (s->beta == 0.f) cr[v] = s->alpha * acc[r][v];                                \
        else cr[v] = s->alpha * acc[r][v] + s->beta * cr[v];                                  \
      }                                                                                       \
    }                                                                                         \
  } else {                                                                                    \
    /* Element-wise copies: taking acc's address (memcpy) kept it out of registers. */        \
    float tile[MR * NV * VL];                                                                 \
    _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++)                                     \
      _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) *(VT_U *)(tile + (r * NV + v) * VL) = acc[r][v]; \
    for (long r = 0; r < mr; r++) {                                                           \
      float *cr = c + r * s->ldc;                                                             \
      const float *t = tile + r * NV * VL;                                                    \
      if (!s->first) {                                                                        \
        for (long j = 0; j < nr; j++) cr[j] += s->alpha * t[j];                               \
      } else if (s->beta == 0.f) {                                                            \
        for (long j = 0; j < nr; j++) cr[j] = s->alpha * t[j];                                \
      } else {                                                                                \
        for (long j = 0; j < nr; j++) cr[j] = s->alpha * t[j] + s->beta * cr[j];              \
      }                                                                                       \
    }                                                                                         \
  }

/* One tile kernel: MR rows x NV vectors of VL floats, accumulators fully unrolled so they live in
 * registers. */
#define DEFINE_TILE(NAME, VT, VT_U, VL, MR, NV)                                                \
  static void NAME(const GemmSlice *s, const float *a, const float *b, float *c, long mr, long nr) { \
    VT acc[MR][NV];                                                                           \
    _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++)                                     \
      _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[r][v] = (VT){0};               \
    for (long k = 0; k < s->kc; k++) {                                                        \
      VT bv[NV];                                                                              \
      _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) bv[v] = *(const VT *)(b + k * NV * VL + v * VL); \
      const float *ak = a + k * MR;                                                           \
      _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) {                                 \
        const float ar = ak[r];                                                               \
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[r][v] += ar * bv[v];         \
      }                                                                                       \
    }                                                                                         \
    TILE_STORE(VT, VT_U, VL, MR, NV)                                                          \
  }

#define DEFINE_DIRECT_TILE(NAME, VT, VT_U, VL, MR, ROW_STRIDE, K_STRIDE)                      \
  static void NAME(const GemmSlice *s, const float *a, long lda, const float *b, float *c) {   \
    const long mr = MR, nr = VL;                                                              \
    (void)lda;                                                                                \
    VT acc[MR][1];                                                                            \
    _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) acc[r][0] = (VT){0};                \
    for (long k = 0; k < s->kc; k++) {                                                        \
      const VT bv = *(const VT *)(b + k * VL);                                                \
      const float *ak = a + k * (K_STRIDE);                                                   \
      _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) acc[r][0] += ak[r * (ROW_STRIDE)] * bv; \
    }                                                                                         \
    TILE_STORE(VT, VT_U, VL, MR, 1)                                                           \
  }

/* Wide tiles: 2 vectors across, as many rows as leave registers for the b vectors and the
 * broadcast a value (6 rows = 12 accumulators on 16-register targets). */
#if VEC_REGISTERS >= 32
#define WIDE_MR 12
#else
#define WIDE_MR 6
#endif
DEFINE_TILE(tile_wide, vfull, vfull_u, VEC_FLOATS, WIDE_MR, 2)
DEFINE_TILE(tile_narrow, vfull, vfull_u, VEC_FLOATS, 12, 1)
DEFINE_DIRECT_TILE(tile_narrow_n, vfull, vfull_u, VEC_FLOATS, 12, lda, 1)
DEFINE_DIRECT_TILE(tile_narrow_t, vfull, vfull_u, VEC_FLOATS, 12, 1, lda)
#if VEC_FLOATS >= 8
DEFINE_TILE(tile_half, vhalf, vhalf_u, VEC_FLOATS / 2, 12, 1)
DEFINE_DIRECT_TILE(tile_half_n, vhalf, vhalf_u, VEC_FLOATS / 2, 12, lda, 1)
DEFINE_DIRECT_TILE(tile_half_t, vhalf, vhalf_u, VEC_FLOATS / 2, 12, 1, lda)
#endif

static const GemmTile TILE_WIDE = {WIDE_MR, 2 * VEC_FLOATS, tile_wide, "wide", NULL, NULL};
static const GemmTile TILE_NARROW = {12, VEC_FLOATS, tile_narrow, "narrow", tile_narrow_n, tile_narrow_t};
#if VEC_FLOATS >= 8
static const GemmTile TILE_HALF = {12, VEC_FLOATS / 2, tile_half, "half", tile_half_n, tile_half_t};
#endif

/* Tile for an output N columns wide: the narrowest that covers it in one panel, else the wide one.
 * `forced` (tests) picks one by name. */
static const char *forced_tile = NULL;
static const GemmTile *choose_tile(long N) {
  if (forced_tile != NULL) {
    if (strcmp(forced_tile, "narrow") == 0) return &TILE_NARROW;
#if VEC_FLOATS >= 8
    if (strcmp(forced_tile, "half") == 0) return &TILE_HALF;
#endif
    return &TILE_WIDE;
  }
#if VEC_FLOATS >= 8
  if (N <= VEC_FLOATS / 2) return &TILE_HALF;
#endif
  if (N <= VEC_FLOATS) return &TILE_NARROW;
  return &TILE_WIDE;
}

/* Packing buffers that live as long as their thread (the caller's, or a pool worker's). Allocated
 * per call, the 100-200 KB panels of A came from mmap, and the page faults of every small GEMM
 * cost more than its arithmetic. Slot 0 holds A panels, slot 1 packed B. */
typedef struct {
  float *p[2];
  size_t floats[2];
} PackBuffers;
static pthread_key_t pack_key;
static pthread_once_t pack_key_once = PTHREAD_ONCE_INIT;
static void pack_buffers_free(void *v) {
  PackBuffers *b = (PackBuffers *)v;
  free(b->p[0]);
  free(b->p[1]);
  free(b);
}
static void pack_key_init(void) { pthread_key_create(&pack_key, pack_buffers_free); }

static float *thread_buffer(int slot, size_t floats) {
  pthread_once(&pack_key_once, pack_key_init);
  PackBuffers *b = (PackBuffers *)pthread_getspecific(pack_key);
  if (b == NULL) {
    b = (PackBuffers *)calloc(1, sizeof(PackBuffers));
    if (b == NULL || pthread_setspecific(pack_key, b) != 0) abort();
  }
  if (b->floats[slot] < floats) {
    free(b->p[slot]);
    const size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    b->p[slot] = (float *)aligned_alloc(64, bytes);
    if (b->p[slot] == NULL) abort();
    b->floats[slot] = floats;
  }
  return b->p[slot];
}

static void pack_b_panels(const GemmTile *t, char tb, const float *B, long ldb, long k0, long kc, long N, float *out,
                          long panel0, long panel1) {
  const long NR = t->nr;
  for (long j0 = panel0 * NR; j0 < N && j0 < panel1 * NR; j0 += NR) {
    const long nr = N - j0 < NR ? N - j0 : NR;
    float *panel = out + (j0 / NR) * GEMM_KC * NR;
    if (tb == 'T') {
      /* op(B) columns are rows of B: read each along k (contiguous), scatter into the panel
       * (which stays in cache), rather than gathering with stride ldb. */
      if (nr < NR)
        for (long k = 0; k < kc; k++) memset(panel + k * NR + nr, 0, sizeof(float) * (NR - nr));
      for (long j = 0; j < nr; j++) {
        const float *src = B + (j0 + j) * ldb + k0;
        for (long k = 0; k < kc; k++) panel[k * NR + j] = src[k];
      }
    } else {
      for (long k = 0; k < kc; k++) {
        float *dst = panel + k * NR;
        memcpy(dst, B + (k0 + k) * ldb + j0, sizeof(float) * nr);
        for (long j = nr; j < NR; j++) dst[j] = 0.f;
      }
    }
  }
}

static void pack_a_matrix(const GemmSlice *s, long i0, long mr, float *ap) {
  const long MR = s->tile->mr;
  if (s->ta == 'T') {
    for (long k = 0; k < s->kc; k++) {
      const float *src = s->A + (s->k0 + k) * s->lda + i0;
      for (long r = 0; r < mr; r++) ap[k * MR + r] = src[r];
      for (long r = mr; r < MR; r++) ap[k * MR + r] = 0.f;
    }
  } else {
    for (long r = 0; r < mr; r++) {
      const float *src = s->A + (i0 + r) * s->lda + s->k0;
      for (long k = 0; k < s->kc; k++) ap[k * MR + r] = src[k];
    }
    for (long r = mr; r < MR; r++)
      for (long k = 0; k < s->kc; k++) ap[k * MR + r] = 0.f;
  }
}

typedef struct {
  const GemmTile *t;
  char tb;
  const float *B;
  long ldb, k0, kc, N;
  float *out;
} PackBJob;

static void pack_b_range(void *arg, long p0, long p1) {
  const PackBJob *j = (const PackBJob *)arg;
  pack_b_panels(j->t, j->tb, j->B, j->ldb, j->k0, j->kc, j->N, j->out, p0, p1);
}

/* Blocks of mc rows: pack their A panels (in L2), then sweep the column panels with every row
 * panel inside, so each packed B panel is read once per block and reused from L1. Narrow tiles
 * read full panels of A in place (direct_n / direct_t) and pack only a short last panel. */
static void gemm_row_blocks(void *arg, long q0, long q1) {
  const GemmSlice *s = (const GemmSlice *)arg;
  const GemmTile *t = s->tile;
  const long MR = t->mr, NR = t->nr;
  const direct_tile_fn direct = s->ta == 'T' ? t->direct_t : t->direct_n;
  float *a = thread_buffer(0, (size_t)((s->mc + MR - 1) / MR * MR) * GEMM_KC);
  for (long q = q0; q < q1; q++) {
    const long i_start = q * s->mc, rows = s->M - i_start < s->mc ? s->M - i_start : s->mc;
    const long panels = (rows + MR - 1) / MR;
    for (long p = 0; p < panels; p++) {
      const long i0 = i_start + p * MR, mr = rows - p * MR < MR ? rows - p * MR : MR;
      if (direct == NULL || mr < MR) pack_a_matrix(s, i0, mr, a + p * GEMM_KC * MR);
    }
    for (long j0 = 0; j0 < s->N; j0 += NR) {
      const long nr = s->N - j0 < NR ? s->N - j0 : NR;
      const float *b = s->packed_b + (j0 / NR) * GEMM_KC * NR;
      for (long p = 0; p < panels; p++) {
        const long i0 = i_start + p * MR, mr = rows - p * MR < MR ? rows - p * MR : MR;
        float *c = s->C + i0 * s->ldc + j0;
        if (direct != NULL && mr == MR && nr == NR) {
          const float *in_place = s->ta == 'T' ? s->A + s->k0 * s->lda + i0 : s->A + i0 * s->lda + s->k0;
          direct(s, in_place, s->lda, b, c);
        } else {
          if (direct != NULL && mr == MR) pack_a_matrix(s, i0, mr, a + p * GEMM_KC * MR);
          t->fn(s, a + p * GEMM_KC * MR, b, c, mr, nr);
        }
      }
    }
  }
}

static void builtin_sgemm(Env *env, char ta, char tb, long M, long N, long K, float alpha, const float *A, long lda,
                          const float *B, long ldb, float beta, float *C, long ldc) {
  const GemmTile *tile = choose_tile(N);
  const long MR = tile->mr, NR = tile->nr;
  const long panels = (N + NR - 1) / NR;
  float *packed_b = thread_buffer(1, (size_t)panels * GEMM_KC * NR);
  /* Row blocks of up to 16 panels, as many as a multiple of the thread count so that no thread
   * idles while another finishes a block (ResNet's deep layers have only 64-256 rows). Rows never
   * change the arithmetic of another row, so the split is free to follow the thread count. */
  const int threads = env->threads;
  long mc = 16 * MR;
  if (threads > 1) {
    long blocks = (M + mc - 1) / mc;
    blocks = (blocks + threads - 1) / threads * threads;
    mc = (M + blocks - 1) / blocks;
    mc = (mc + MR - 1) / MR * MR;
  }
  for (long k0 = 0; k0 < K; k0 += GEMM_KC) {
    const long kc = K - k0 < GEMM_KC ? K - k0 : GEMM_KC;
    /* Packing B (the filter, up to 2.4M floats per convolution in ResNet-18's last stage) is split
     * by panels across the threads too. */
    PackBJob pack = {tile, tb, B, ldb, k0, kc, N, packed_b};
    /* Below ~1M multiply-adds a slice is done in less time than threads take to join it. */
    const int slice_threads = (double)M * (double)N * (double)kc >= (double)(1 << 20) ? threads : 1;
    parallel_for_on(env, slice_threads, panels, 4, pack_b_range, &pack);
    GemmSlice slice = {tile, ta, A, lda, M, N, k0, kc, ldc, mc, packed_b, C, alpha, beta, k0 == 0};
    parallel_for_on(env, slice_threads, (M + mc - 1) / mc, 1, gemm_row_blocks, &slice);
  }
}

static void sgemm(Env *env, char ta, char tb, long M, long N, long K, float alpha, const float *A, long lda,
                  const float *B, long ldb, float beta, float *C, long ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (long i = 0; i < M; i++)
      for (long j = 0; j < N; j++) C[i * ldc + j] = beta == 0.f ? 0.f : beta * C[i * ldc + j];
    return;
  }
  if (provider == PROVIDER_ONEDNN) {
    /* OpenMP's thread count is per calling thread: set it for this one every call. */
    if (omp_set_num_threads_ptr != NULL) omp_set_num_threads_ptr(env->threads);
    dnnl_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  } else if (provider == PROVIDER_OPENBLAS) {
    if (openblas_set_num_threads_ptr != NULL) openblas_set_num_threads_ptr(env->threads);
    cblas_sgemm(101 /* row major */, ta == 'T' ? 112 : 111, tb == 'T' ? 112 : 111, (int)M, (int)N, (int)K, alpha,
                A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
  } else {
    builtin_sgemm(env, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
}

/* ---------------------------------------------------------------------------------------------
 * Convolution geometry and patch matrices.
 * ------------------------------------------------------------------------------------------- */

typedef struct {
  long B, H, W, C, OH, OW, CO, KH, KW, sh, sw, dh, dw, pt, pl;
} Geom;

/* Patch matrices are built a block of output rows at a time, small enough to stay in the core's
 * L2 cache between im2col and the GEMM that reads it (floats; settable, tests use tiny blocks).
 * Whole-batch patch matrices measured the same alone but cost DRAM bandwidth that a second
 * trial on the other core needs. */
#define DEFAULT_SCRATCH_LIMIT_FLOATS (192L * 1024)

static int is_pointwise(const Geom *g) {
  return g->KH == 1 && g->KW == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 && g->OH == g->H &&
         g->OW == g->W;
}

/* Floats of patch matrix per block. Small blocks stay in L2 between im2col and the GEMM that
 * reads it, but every block's GEMM also packs (forward, input gradient) or reads and writes
 * (filter gradient) the whole filter, so a block holds at least 8x the filter's `filter_floats`:
 * on ResNet-18's last stage (filter 4608 x 512) smaller blocks made the built-in GEMM 5x slower.
 * The size never depends on the thread count: the filter gradient sums over blocks, and a
 * different blocking would round differently (the same seed must give the same numbers on any
 * number of workers). A limit set below the default (tests) is kept as is. */
static long block_limit(const Env *env, long filter_floats) {
  const long limit = env->scratch_limit;
  if (limit < DEFAULT_SCRATCH_LIMIT_FLOATS) return limit;
  return limit > 8 * filter_floats ? limit : 8 * filter_floats;
}

/* Output rows (b, oh) per block, at least one. */
static long rows_per_block(const Geom *g, long limit) {
  const long per_row = g->OW * g->KH * g->KW * g->C;
  const long total = g->B * g->OH;
  long n = per_row > 0 ? limit / per_row : total;
  if (n < 1) n = 1;
  if (n > total) n = total;
  return n;
}

/* P[(r - r_base) * OW + ow, (kh,kw,c)] for global output rows r = b * OH + oh. */
typedef struct {
  const Geom *g;
  float *img; /* x for im2col, dx for col2im */
  float *P;
  long r_base;
} PatchJob;

/* The taps kw in [*k0, *k1) of an output column read inside the image (kw * dw + base in [0, W)). */
static void valid_taps(long base, long dw, long KW, long W, long *k0, long *k1) {
  long a = 0, b = KW;
  while (a < KW && base + a * dw < 0) a++;
  while (b > a && base + (b - 1) * dw >= W) b--;
  *k0 = a;
  *k1 = b;
}

static void im2col_rows(void *arg, long i0, long i1) {
  const PatchJob *j = (const PatchJob *)arg;
  const Geom *g = j->g;
  const long C = g->C, K = g->KH * g->KW * C, KWC = g->KW * C;
  for (long i = i0; i < i1; i++) {
    const long r = j->r_base + i, b = r / g->OH, oh = r % g->OH;
    const float *img = j->img + b * g->H * g->W * C;
    for (long ow = 0; ow < g->OW; ow++) {
      float *row = j->P + (i * g->OW + ow) * K;
      const long iw0 = ow * g->sw - g->pl;
      long k0, k1;
      valid_taps(iw0, g->dw, g->KW, g->W, &k0, &k1);
      for (long kh = 0; kh < g->KH; kh++) {
        const long ih = oh * g->sh - g->pt + kh * g->dh;
        float *dst = row + kh * KWC;
        if (ih < 0 || ih >= g->H || k0 >= k1) {
          memset(dst, 0, sizeof(float) * KWC);
          continue;
        }
        /* Taps of one filter row, undilated, are one contiguous run of the input row. */
        const float *src = img + (ih * g->W + iw0 + k0 * g->dw) * C;
        if (k0 > 0) memset(dst, 0, sizeof(float) * k0 * C);
        if (g->dw == 1) {
          memcpy(dst + k0 * C, src, sizeof(float) * (k1 - k0) * C);
        } else {
          for (long kw = k0; kw < k1; kw++) memcpy(dst + kw * C, src + (kw - k0) * g->dw * C, sizeof(float) * C);
        }
        if (k1 < g->KW) memset(dst + k1 * C, 0, sizeof(float) * (g->KW - k1) * C);
      }
    }
  }
}

static void im2col(const Env *env, const Geom *g, const float *x, long r0, long r1, float *P) {
  PatchJob job = {g, (float *)x, P, r0};
  parallel_for((Env *)env, r1 - r0, 8, im2col_rows, &job);
}

/* dx += scatter of the block's patch rows (dx zeroed by the caller). */
static void col2im_rows(void *arg, long i0, long i1) {
  const PatchJob *j = (const PatchJob *)arg;
  const Geom *g = j->g;
  const long C = g->C, K = g->KH * g->KW * C, KWC = g->KW * C;
  for (long i = i0; i < i1; i++) {
    const long r = j->r_base + i, b = r / g->OH, oh = r % g->OH;
    float *img = j->img + b * g->H * g->W * C;
    for (long ow = 0; ow < g->OW; ow++) {
      const float *row = j->P + (i * g->OW + ow) * K;
      const long iw0 = ow * g->sw - g->pl;
      long k0, k1;
      valid_taps(iw0, g->dw, g->KW, g->W, &k0, &k1);
      for (long kh = 0; kh < g->KH; kh++) {
        const long ih = oh * g->sh - g->pt + kh * g->dh;
        if (ih < 0 || ih >= g->H || k0 >= k1) continue;
        const float *src = row + kh * KWC;
        float *dst = img + (ih * g->W + iw0 + k0 * g->dw) * C;
        if (g->dw == 1) {
          const long n = (k1 - k0) * C;
          const float *s = src + k0 * C;
          for (long e = 0; e < n; e++) dst[e] += s[e];
        } else {
          for (long kw = k0; kw < k1; kw++)
            for (long c = 0; c < C; c++) dst[(kw - k0) * g->dw * C + c] += src[kw * C + c];
        }
      }
    }
  }
}

/* Windows of neighbouring rows of one image overlap, so threads may only split by image. */
static void col2im_images(void *arg, long i0, long i1) {
  const PatchJob *j = (const PatchJob *)arg;
  col2im_rows(arg, i0 * j->g->OH, i1 * j->g->OH);
}

static void col2im(const Env *env, const Geom *g, const float *P, long r0, long r1, float *dx) {
  PatchJob job = {g, dx, (float *)P, r0};
  if (r0 % g->OH == 0 && (r1 - r0) % g->OH == 0) parallel_for((Env *)env, (r1 - r0) / g->OH, 1, col2im_images, &job);
  else col2im_rows(&job, 0, r1 - r0);
}

/* ---------------------------------------------------------------------------------------------
 * Direct convolution of small layers (stride 1, no dilation, output channels a multiple of 8):
 * the GEMM reads a zero-padded copy of the input in place instead of a patch matrix.
 *
 * Why by hand: at the lab's widths (8-64 channels on 4-32 pixel maps) im2col writes and re-reads
 * a patch matrix 9x the input, and the GEMM's panels are too narrow to amortise it: 13-20 GFLOP/s
 * against ~70 here on AVX2. No library we may depend on offers a direct convolution that trains
 * (oneDNN is optional and absent on a fresh machine).
 *
 * With the input padded to [HP = OH + KH - 1, WP = OW + KW - 1] per image, output position
 * (oh, ow) reads pixel (oh + kh, ow + kw): at flattened index q = oh * WP + ow that is padded
 * index q + kh * WP + kw, so consecutive q read consecutive pixels even across rows. Tiles
 * therefore run over q = 0 … (OH - 1) * WP + OW - 1, computing WP - OW unused columns per row that
 * are never stored (6 % of the work at 32 x 32, 33 % at 4 x 4). A filter row's taps kw and input
 * channels c are one contiguous run of KW * C floats of the padded input, so the reduction is a
 * loop over KH runs. Every output element is computed by one thread in a fixed order: results do
 * not depend on the thread count.
 * ------------------------------------------------------------------------------------------- */

typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));

/* Tile rows (output positions, or filter rows for the filter gradient) for 1 and 2 vectors of 8
 * output channels: accumulators plus the filter vectors and one broadcast fill 16 AVX2 registers
 * (NEON's 32 128-bit registers hold the same 8-float vectors as pairs). */
#define DIRECT_MR1 12
#define DIRECT_MR2 6

/* 0: by the shape rule (direct_wanted), 1: wherever the geometry allows, -1: never (tests). */
static int direct_mode = 0;

typedef struct {
  long B, HP, WP, C, OH, OW, CO, KH, KW;
} DirectGeom;

/* The geometry of g's convolution on a padded input; 0 where the direct path does not apply. */
static int direct_geometry(const Geom *g, DirectGeom *d) {
  if (g->sh != 1 || g->sw != 1 || g->dh != 1 || g->dw != 1 || g->CO % 8 != 0 || g->pt < 0 || g->pl < 0) return 0;
  *d = (DirectGeom){g->B, g->OH + g->KH - 1, g->OW + g->KW - 1, g->C, g->OH, g->OW, g->CO, g->KH, g->KW};
  return 1;
}

/* Whether the direct path runs g (see direct_mode); fills d where it does. The rule, from per-layer timings of the lab's
 * ResNet-18 shapes (bench/conv-layers.ts; AVX2 build, built-in GEMM, oneDNN, OpenBLAS): direct
 * only where at most a quarter of the padded row is unused columns (OW >= 3 (KW - 1)): at 4 x 4
 * (a third unused) im2col was 10-15 % faster on every GEMM. Against the built-in GEMM direct won
 * 1.1-3x up to 32 x 32 channels; at 64 x 64 channels (full-scale layer 1, batch 16) its filter
 * gradient lost 20 %, its tiles streaming a padded input larger than L2. Against oneDNN and
 * OpenBLAS it won only at C x CO <= 512 (2x at 8 and 16 channels), their GEMM being 10 % faster
 * from 32 channels on. */
static int direct_wanted(const Geom *g, DirectGeom *d) {
  if (direct_mode < 0 || !direct_geometry(g, d)) return 0;
  if (direct_mode > 0) return 1;
  if (g->OW < 3 * (g->KW - 1)) return 0;
  return g->C * g->CO <= (provider == PROVIDER_BUILTIN ? 32 * 32 : 16 * 32);
}

/* Floats of a padded copy (plus slack: the last tile may read up to a tile past the end). */
static size_t padded_floats(const DirectGeom *d) {
  return (size_t)(d->B * d->HP * d->WP * d->C + (DIRECT_MR1 + d->KW) * d->C);
}

/* xp = x [B, H, W, C] placed at (pt, pl) in zeros [B, HP, WP, C] (rows and columns outside cut). */
static void pad_input(const DirectGeom *d, const float *x, long H, long W, long pt, long pl, float *xp) {
  const long C = d->C;
  memset(xp, 0, sizeof(float) * padded_floats(d));
  const long w0 = pl > 0 ? 0 : -pl, w1 = W < d->WP - pl ? W : d->WP - pl;
  if (w1 <= w0) return;
  for (long b = 0; b < d->B; b++)
    for (long ih = 0; ih < H; ih++) {
      const long ph = ih + pt;
      if (ph < 0 || ph >= d->HP) continue;
      memcpy(xp + ((b * d->HP + ph) * d->WP + pl + w0) * C, x + ((b * H + ih) * W + w0) * C, sizeof(float) * (size_t)((w1 - w0) * C));
    }
}

/* acc[r][v] = sum over kh, j < KW*C of xq[r * C + kh * WP * C + j] * w[(kh * KW * C + j) * CO + 8v …]:
 * MR output positions x NV vectors of output channels. Inlined with C constant (direct_forward_c*)
 * so that row r's broadcast address is a constant displacement. */
/* The pieces both direct tiles share: MR x NV accumulators, one rank-1 update (row r's scalar
 * A_OF(r) times the NV vectors VEC), and the copy-out. */
#define DIRECT_ACC_ZERO(MR, NV)                                                                   \
  v8 acc[MR][NV];                                                                                 \
  _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++)                                           \
    _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) acc[r][v] = (v8){0};
#define DIRECT_RANK1(MR, NV, A_OF, VEC)                                                           \
  _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) {                                         \
    const float a = A_OF(r);                                                                      \
    _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) acc[r][v] += a * VEC[v];                 \
  }
#define DIRECT_ACC_OUT(MR, NV)                                                                    \
  _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++)                                           \
    _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) out[r * NV + v] = acc[r][v];

#define DEFINE_DIRECT_FORWARD_TILE(NAME, MR, NV)                                                     \
  static inline __attribute__((always_inline)) void NAME(const float *xq, const float *w, long C, long WPC, long KH, \
                                                         long KWC, long CO, v8 *out) {                  \
    DIRECT_ACC_ZERO(MR, NV)                                                                          \
    for (long kh = 0; kh < KH; kh++) {                                                               \
      const float *p = xq + kh * WPC;                                                                \
      const float *wk = w + kh * KWC * CO;                                                           \
      for (long j = 0; j < KWC; j++) {                                                               \
        v8 wv[NV];                                                                                   \
        _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) wv[v] = *(const v8u *)(wk + j * CO + 8 * v); \
        DIRECT_RANK1(MR, NV, FORWARD_A, wv)                                                          \
      }                                                                                              \
    }                                                                                                \
    DIRECT_ACC_OUT(MR, NV)                                                                           \
  }
#define FORWARD_A(r) p[(r) * C + j]
DEFINE_DIRECT_FORWARD_TILE(direct_forward_tile1, DIRECT_MR1, 1)
DEFINE_DIRECT_FORWARD_TILE(direct_forward_tile2, DIRECT_MR2, 2)

typedef struct {
  const DirectGeom *d;
  const float *xp, *w;
  float *y;
  long tiles; /* per image */
} DirectForwardJob;

/* Output tiles [i0, i1) (image-major) of y = xp ⋆ w. */
static inline __attribute__((always_inline)) void direct_forward_range(const DirectForwardJob *j, long i0, long i1, long C) {
  const DirectGeom *d = j->d;
  const int nv = d->CO % 16 == 0 ? 2 : 1;
  const long MR = nv == 2 ? DIRECT_MR2 : DIRECT_MR1;
  const long Q = (d->OH - 1) * d->WP + d->OW, KWC = d->KW * C, WPC = d->WP * C, CO = d->CO;
  v8 out[DIRECT_MR1];
  for (long i = i0; i < i1; i++) {
    const long b = i / j->tiles, q0 = (i % j->tiles) * MR;
    const float *xq = j->xp + (b * d->HP * d->WP + q0) * C;
    float *yb = j->y + b * d->OH * d->OW * CO;
    for (long co = 0; co < CO; co += 8 * nv) {
      if (nv == 2) direct_forward_tile2(xq, j->w + co, C, WPC, d->KH, KWC, CO, out);
      else direct_forward_tile1(xq, j->w + co, C, WPC, d->KH, KWC, CO, out);
      for (long r = 0; r < MR && q0 + r < Q; r++) {
        const long q = q0 + r, oh = q / d->WP, ow = q - oh * d->WP;
        if (ow >= d->OW) continue;
        v8u *dst = (v8u *)(yb + (oh * d->OW + ow) * CO + co);
        for (int v = 0; v < nv; v++) dst[v] = out[r * nv + v];
      }
    }
  }
}

#define DEFINE_DIRECT_FORWARD_C(CVAL)                                                   \
  static void direct_forward_c##CVAL(void *arg, long i0, long i1) {                     \
    direct_forward_range((const DirectForwardJob *)arg, i0, i1, CVAL);                  \
  }
DEFINE_DIRECT_FORWARD_C(1)
DEFINE_DIRECT_FORWARD_C(8)
DEFINE_DIRECT_FORWARD_C(16)
DEFINE_DIRECT_FORWARD_C(32)
DEFINE_DIRECT_FORWARD_C(64)
static void direct_forward_any(void *arg, long i0, long i1) {
  const DirectForwardJob *j = (const DirectForwardJob *)arg;
  direct_forward_range(j, i0, i1, j->d->C);
}

/* y [B, OH, OW, CO] = xp ⋆ w (xp padded by pad_input). */
static void direct_forward(Env *env, const DirectGeom *d, const float *xp, const float *w, float *y) {
  const long MR = d->CO % 16 == 0 ? DIRECT_MR2 : DIRECT_MR1;
  const long Q = (d->OH - 1) * d->WP + d->OW;
  DirectForwardJob job = {d, xp, w, y, (Q + MR - 1) / MR};
  range_fn fn = d->C == 1 ? direct_forward_c1 : d->C == 8 ? direct_forward_c8 : d->C == 16 ? direct_forward_c16
              : d->C == 32 ? direct_forward_c32 : d->C == 64 ? direct_forward_c64 : direct_forward_any;
  /* ~1 MFLOP per part before a second thread pays for itself. */
  const long per_tile = MR * d->KH * d->KW * d->C * d->CO;
  parallel_for(env, d->B * job.tiles, 1 + (1L << 19) / (per_tile > 0 ? per_tile : 1), fn, &job);
}

/* acc[r][v] = sum over images and q of xr[q * C + r] * dyp[q * CO + 8v …]: MR filter rows (taps
 * and channels of one filter row, contiguous in the padded input) x NV vectors of CO. */
#define DEFINE_DIRECT_FILTER_TILE(NAME, MR, NV)                                                       \
  static void NAME(const float *xr, long image_x, const float *dyp, long image_dy, long B, long Q, long C, long CO, \
                   v8 *out) {                                                                        \
    DIRECT_ACC_ZERO(MR, NV)                                                                          \
    for (long b = 0; b < B; b++) {                                                                   \
      const float *p = xr + b * image_x, *g = dyp + b * image_dy;                                    \
      for (long q = 0; q < Q; q++, p += C, g += CO) {                                                \
        v8 gv[NV];                                                                                   \
        _Pragma("GCC unroll 2") for (int v = 0; v < NV; v++) gv[v] = *(const v8u *)(g + 8 * v);      \
        DIRECT_RANK1(MR, NV, FILTER_A, gv)                                                           \
      }                                                                                              \
    }                                                                                                \
    DIRECT_ACC_OUT(MR, NV)                                                                           \
  }
#define FILTER_A(r) p[r]
DEFINE_DIRECT_FILTER_TILE(direct_filter_tile1, DIRECT_MR1, 1)
DEFINE_DIRECT_FILTER_TILE(direct_filter_tile2, DIRECT_MR2, 2)
DEFINE_DIRECT_FILTER_TILE(direct_filter_row1, 1, 1)
DEFINE_DIRECT_FILTER_TILE(direct_filter_row2, 1, 2)

typedef struct {
  const DirectGeom *d;
  const float *xp, *dyp;
  float *dw;
  long row_tiles, col_tiles; /* per filter row kh: tiles of its KW * C rows, and of CO */
} DirectFilterJob;

/* Blocks [i0, i1) of dw (kh-major, then row tile, then column tile). */
static void direct_filter_range(void *arg, long i0, long i1) {
  const DirectFilterJob *j = (const DirectFilterJob *)arg;
  const DirectGeom *d = j->d;
  const int nv = d->CO % 16 == 0 ? 2 : 1;
  const long MR = nv == 2 ? DIRECT_MR2 : DIRECT_MR1;
  const long C = d->C, CO = d->CO, KWC = d->KW * C, Q = d->OH * d->WP;
  const long image_x = d->HP * d->WP * C, image_dy = d->OH * d->WP * CO;
  v8 out[DIRECT_MR1];
  for (long i = i0; i < i1; i++) {
    const long kh = i / (j->row_tiles * j->col_tiles), rest = i % (j->row_tiles * j->col_tiles);
    const long r0 = (rest / j->col_tiles) * MR, co = (rest % j->col_tiles) * 8 * nv;
    const long rows = KWC - r0 < MR ? KWC - r0 : MR;
    /* A full tile at once; a short last one (KW * C not a multiple of MR, e.g. C = 1) a row at a time. */
    for (long r = 0, n = rows == MR ? MR : 1; r < rows; r += n) {
      const float *xr = j->xp + kh * d->WP * C + r0 + r;
      if (n == MR) {
        if (nv == 2) direct_filter_tile2(xr, image_x, j->dyp + co, image_dy, d->B, Q, C, CO, out);
        else direct_filter_tile1(xr, image_x, j->dyp + co, image_dy, d->B, Q, C, CO, out);
      } else {
        if (nv == 2) direct_filter_row2(xr, image_x, j->dyp + co, image_dy, d->B, Q, C, CO, out);
        else direct_filter_row1(xr, image_x, j->dyp + co, image_dy, d->B, Q, C, CO, out);
      }
      for (long t = 0; t < n; t++) {
        v8u *dst = (v8u *)(j->dw + (kh * KWC + r0 + r + t) * CO + co);
        for (int v = 0; v < nv; v++) dst[v] = out[t * nv + v];
      }
    }
  }
}

/* dw [KH, KW, C, CO] = sum over positions of xp's patches x dyp, where dyp [B, OH, WP, CO] holds dy
 * with zeros in the WP - OW columns no output has. */
static void direct_filter(Env *env, const DirectGeom *d, const float *xp, const float *dyp, float *dw) {
  const long MR = d->CO % 16 == 0 ? DIRECT_MR2 : DIRECT_MR1;
  const long row_tiles = (d->KW * d->C + MR - 1) / MR, col_tiles = d->CO / (d->CO % 16 == 0 ? 16 : 8);
  DirectFilterJob job = {d, xp, dyp, dw, row_tiles, col_tiles};
  parallel_for(env, d->KH * row_tiles * col_tiles, 1, direct_filter_range, &job);
}

/* dyp [B, OH, WP, CO]: dy [B, OH, OW, CO] with zero columns OW … WP - 1. */
static void widen_rows(const DirectGeom *d, const float *dy, float *dyp) {
  const long CO = d->CO;
  for (long r = 0; r < d->B * d->OH; r++) {
    memcpy(dyp + r * d->WP * CO, dy + r * d->OW * CO, sizeof(float) * (size_t)(d->OW * CO));
    memset(dyp + (r * d->WP + d->OW) * CO, 0, sizeof(float) * (size_t)((d->WP - d->OW) * CO));
  }
}

enum { ACT_LINEAR = 0, ACT_RELU = 1, ACT_RELU6 = 2, ACT_LEAKYRELU = 3, ACT_SIGMOID = 4, ACT_ELU = 5 };

static void bias_activation(float *y, long rows, long cols, const float *bias, int act, float alpha) {
  if (bias == NULL && act == ACT_LINEAR) return;
  for (long r = 0; r < rows; r++) {
    float *row = y + r * cols;
    if (bias != NULL)
      for (long c = 0; c < cols; c++) row[c] += bias[c];
    switch (act) {
      case ACT_RELU:
        for (long c = 0; c < cols; c++) row[c] = row[c] > 0.f ? row[c] : 0.f;
        break;
      case ACT_RELU6:
        for (long c = 0; c < cols; c++) row[c] = row[c] < 0.f ? 0.f : (row[c] > 6.f ? 6.f : row[c]);
        break;
      case ACT_LEAKYRELU:
        for (long c = 0; c < cols; c++) row[c] = row[c] < 0.f ? alpha * row[c] : row[c];
        break;
      case ACT_SIGMOID:
        for (long c = 0; c < cols; c++) row[c] = 1.f / (1.f + expf(-row[c]));
        break;
      case ACT_ELU:
        for (long c = 0; c < cols; c++) row[c] = row[c] < 0.f ? expm1f(row[c]) : row[c];
        break;
      default:
        break;
    }
  }
}

/* ---------------------------------------------------------------------------------------------
 * Node-API glue.
 * ------------------------------------------------------------------------------------------- */

#define CHECK(call)                                                                           \
  do {                                                                                        \
    if ((call) != napi_ok) {                                                                  \
      napi_throw_error(env, NULL, "@lab/tfjs-train native: bad arguments (" #call ")");       \
      return NULL;                                                                            \
    }                                                                                         \
  } while (0)

static int get_f32(napi_env env, napi_value v, float **data, size_t *length) {
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  void *ptr;
  if (napi_get_typedarray_info(env, v, &type, length, &ptr, &ab, &offset) != napi_ok || type != napi_float32_array)
    return 0;
  *data = (float *)ptr;
  return 1;
}

static int get_geom(napi_env env, napi_value v, Geom *g) {
  napi_typedarray_type type;
  napi_value ab;
  size_t offset, length;
  void *ptr;
  if (napi_get_typedarray_info(env, v, &type, &length, &ptr, &ab, &offset) != napi_ok || type != napi_int32_array ||
      length != 15)
    return 0;
  const int32_t *a = (const int32_t *)ptr;
  *g = (Geom){a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14]};
  return g->B >= 0 && g->H > 0 && g->W > 0 && g->C > 0 && g->OH >= 0 && g->OW >= 0 && g->CO > 0 && g->KH > 0 &&
         g->KW > 0 && g->sh > 0 && g->sw > 0 && g->dh > 0 && g->dw > 0;
}

static Env *get_env(napi_env env) {
  void *data = NULL;
  napi_get_instance_data(env, &data);
  return (Env *)data;
}

#define ARGS(n)                                                                               \
  size_t argc = n;                                                                            \
  napi_value argv[n];                                                                         \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));                                \
  if (argc != n) {                                                                            \
    napi_throw_error(env, NULL, "@lab/tfjs-train native: expected " #n " arguments");         \
    return NULL;                                                                              \
  }                                                                                           \
  Env *state = get_env(env)

static napi_value throw_msg(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

/* The patch-matrix block of a convolution: its output rows per block and its scratch buffer
 * (NULL when out of memory). */
static float *patch_block(Env *state, const Geom *g, long *block) {
  const long K = g->KH * g->KW * g->C;
  *block = rows_per_block(g, block_limit(state, K * g->CO));
  return scratch(state, (size_t)*block * g->OW * K);
}

/* The three convolutions on validated arrays; each returns NULL or an error message. */
static const char *conv_forward(Env *state, const Geom *gp, const float *x, const float *w, float *y) {
  const Geom g = *gp;
  const long K = g.KH * g.KW * g.C;
  if (is_pointwise(&g)) {
    sgemm(state, 'N', 'N', g.B * g.OH * g.OW, g.CO, K, 1.f, x, K, w, g.CO, 0.f, y, g.CO);
    return NULL;
  }
  DirectGeom d;
  if (direct_wanted(&g, &d)) {
    float *xp = grow(&state->pad_in, &state->pad_in_floats, padded_floats(&d));
    if (xp == NULL) return "out of memory";
    pad_input(&d, x, g.H, g.W, g.pt, g.pl, xp);
    direct_forward(state, &d, xp, w, y);
    return NULL;
  }
  long block;
  const long rows = g.B * g.OH;
  float *P = patch_block(state, &g, &block);
  if (P == NULL) return "out of memory";
  for (long r0 = 0; r0 < rows; r0 += block) {
    const long r1 = rows - r0 < block ? rows : r0 + block;
    im2col(state, &g, x, r0, r1, P);
    sgemm(state, 'N', 'N', (r1 - r0) * g.OW, g.CO, K, 1.f, P, K, w, g.CO, 0.f, y + r0 * g.OW * g.CO, g.CO);
  }
  return NULL;
}

static const char *conv_backprop_input(Env *state, const Geom *gp, const float *dy, const float *w, float *dx) {
  const Geom g = *gp;
  const long K = g.KH * g.KW * g.C;
  if (is_pointwise(&g)) {
    sgemm(state, 'N', 'T', g.B * g.OH * g.OW, K, g.CO, 1.f, dy, g.CO, w, g.CO, 0.f, dx, K);
    return NULL;
  }
  /* At stride 1 the input gradient is itself a convolution: dy with the filter turned 180 degrees
   * and its channel axes swapped, padded by (k - 1) * dilation - pad. As a forward convolution its
   * GEMM reduces over KH*KW*CO instead of CO alone and has no patch matrix to scatter back
   * (col2im). Taken where its C output columns fill a narrow tile read in place: 2x faster on the
   * built-in GEMM for the lab's 8-channel layers; with wider C the col2im route measured faster. */
  const long pt2 = (g.KH - 1) * g.dh - g.pt, pl2 = (g.KW - 1) * g.dw - g.pl;
  const GemmTile *flipped_tile = choose_tile(g.C);
  const Geom t = {g.B, g.OH, g.OW, g.CO, g.H, g.W, g.C, g.KH, g.KW, 1, 1, g.dh, g.dw, pt2, pl2};
  DirectGeom flipped_geometry;
  const int flipped_direct = g.sh == 1 && g.sw == 1 && pt2 >= 0 && pl2 >= 0 && direct_wanted(&t, &flipped_geometry);
  if (flipped_direct || (provider == PROVIDER_BUILTIN && g.sh == 1 && g.sw == 1 && pt2 >= 0 && pl2 >= 0 &&
                         flipped_tile->direct_n != NULL && flipped_tile->nr == g.C)) {
    /* Kept between calls: at 64 x 64 channels a fresh malloc of the flipped filter was an mmap
     * whose page faults cost more than the convolution. */
    float *flipped = grow(&state->flipped_filter, &state->flipped_filter_floats, (size_t)(K * g.CO));
    if (flipped == NULL) return "out of memory";
    for (long kh = 0; kh < g.KH; kh++)
      for (long kw = 0; kw < g.KW; kw++)
        for (long c = 0; c < g.C; c++)
          for (long co = 0; co < g.CO; co++)
            flipped[(((g.KH - 1 - kh) * g.KW + (g.KW - 1 - kw)) * g.CO + co) * g.C + c] = w[((kh * g.KW + kw) * g.C + c) * g.CO + co];
    return conv_forward(state, &t, dy, flipped, dx);
  }
  memset(dx, 0, sizeof(float) * (size_t)(g.B * g.H * g.W * g.C));
  long block;
  const long rows = g.B * g.OH;
  float *P = patch_block(state, &g, &block);
  if (P == NULL) return "out of memory";
  for (long r0 = 0; r0 < rows; r0 += block) {
    const long r1 = rows - r0 < block ? rows : r0 + block;
    sgemm(state, 'N', 'T', (r1 - r0) * g.OW, K, g.CO, 1.f, dy + r0 * g.OW * g.CO, g.CO, w, g.CO, 0.f, P, K);
    col2im(state, &g, P, r0, r1, dx);
  }
  return NULL;
}

static const char *conv_backprop_filter(Env *state, const Geom *gp, const float *x, const float *dy, float *dw) {
  const Geom g = *gp;
  const long K = g.KH * g.KW * g.C;
  if (g.B == 0 || g.OH * g.OW == 0) {
    memset(dw, 0, sizeof(float) * (size_t)(K * g.CO));
    return NULL;
  }
  if (is_pointwise(&g)) {
    sgemm(state, 'T', 'N', K, g.CO, g.B * g.OH * g.OW, 1.f, x, K, dy, g.CO, 0.f, dw, g.CO);
    return NULL;
  }
  DirectGeom d;
  if (direct_wanted(&g, &d)) {
    float *xp = grow(&state->pad_in, &state->pad_in_floats, padded_floats(&d));
    float *dyp = grow(&state->pad_grad, &state->pad_grad_floats, (size_t)(d.B * d.OH * d.WP * d.CO));
    if (xp == NULL || dyp == NULL) return "out of memory";
    pad_input(&d, x, g.H, g.W, g.pt, g.pl, xp);
    widen_rows(&d, dy, dyp);
    direct_filter(state, &d, xp, dyp, dw);
    return NULL;
  }
  long block;
  const long rows = g.B * g.OH;
  float *P = patch_block(state, &g, &block);
  if (P == NULL) return "out of memory";
  for (long r0 = 0; r0 < rows; r0 += block) {
    const long r1 = rows - r0 < block ? rows : r0 + block;
    im2col(state, &g, x, r0, r1, P);
    sgemm(state, 'T', 'N', K, g.CO, (r1 - r0) * g.OW, 1.f, P, K, dy + r0 * g.OW * g.CO, g.CO, r0 == 0 ? 0.f : 1.f, dw,
          g.CO);
  }
  return NULL;
}

/* Per-channel sums of f(row) over rows, accumulated in float over blocks of STAT_BLOCK rows (a
 * loop over channels that vectorises) and in double across blocks: scalar double accumulation
 * per element had made the batch-norm passes cost as much as the small convolutions around them.
 * The order is fixed by the shapes alone. */
#define STAT_BLOCK 64


/* The per-row loops of the passes below over one 8-channel vector at a time where C is a multiple
 * of 8 (the lab's layers): a loop over 8 runtime channels per row cost more in loop overhead than
 * its arithmetic (batch norm then took as long as the convolution beside it). Each channel's
 * operations run in the same order either way. */
typedef int v8i __attribute__((vector_size(32)));

/* part[c] += sum over n rows of x[r, c]. */
static void sum_rows(float *part, const float *x, size_t n, size_t C) {
  if (C % 8 == 0) {
    for (size_t c = 0; c < C; c += 8) {
      v8 acc = *(const v8u *)(part + c);
      for (size_t r = 0; r < n; r++) acc += *(const v8u *)(x + r * C + c);
      *(v8u *)(part + c) = acc;
    }
    return;
  }
  for (size_t r = 0; r < n; r++)
    for (size_t c = 0; c < C; c++) part[c] += x[r * C + c];
}

/* part[c] += sum over n rows of (x[r, c] - mean[c])^2. */
static void sum_squared_deviations(float *part, const float *x, size_t n, size_t C, const float *mean) {
  if (C % 8 == 0) {
    for (size_t c = 0; c < C; c += 8) {
      v8 acc = *(const v8u *)(part + c);
      const v8 m = *(const v8u *)(mean + c);
      for (size_t r = 0; r < n; r++) {
        const v8 d = *(const v8u *)(x + r * C + c) - m;
        acc += d * d;
      }
      *(v8u *)(part + c) = acc;
    }
    return;
  }
  for (size_t r = 0; r < n; r++)
    for (size_t c = 0; c < C; c++) {
      const float d = x[r * C + c] - mean[c];
      part[c] += d * d;
    }
}

/* p1[c] += sum of dy[r, c]; p2[c] += sum of dy[r, c] * (x[r, c] - mean[c]), over n rows. */
static void sum_grad_rows(float *p1, float *p2, const float *dy, const float *x, size_t n, size_t C, const float *mean) {
  if (C % 8 == 0) {
    for (size_t c = 0; c < C; c += 8) {
      v8 a1 = *(const v8u *)(p1 + c), a2 = *(const v8u *)(p2 + c);
      const v8 m = *(const v8u *)(mean + c);
      for (size_t r = 0; r < n; r++) {
        const v8 d = *(const v8u *)(dy + r * C + c);
        a1 += d;
        a2 += d * (*(const v8u *)(x + r * C + c) - m);
      }
      *(v8u *)(p1 + c) = a1;
      *(v8u *)(p2 + c) = a2;
    }
    return;
  }
  for (size_t r = 0; r < n; r++)
    for (size_t c = 0; c < C; c++) {
      p1[c] += dy[r * C + c];
      p2[c] += dy[r * C + c] * (x[r * C + c] - mean[c]);
    }
}

/* max(v, 0) lane by lane, NaN to 0 as the scalar `v > 0 ? v : 0`. */
static inline v8 relu8(v8 v) { return (v8)((v8i)v & (v8i)(v > (v8){0})); }

/* out[i] = mask[i] > 0 ? v[i] : 0 (the ReLU's gradient, mask being its output). */
static void relu_gradient(const float *mask, const float *v, float *out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const v8 m = *(const v8u *)(mask + i);
    *(v8u *)(out + i) = (v8)((v8i) * (const v8u *)(v + i) & (v8i)(m > (v8){0}));
  }
  for (; i < n; i++) out[i] = mask[i] > 0.f ? v[i] : 0.f;
}

/* Per-channel mean and biased variance of x[rows, C], two passes. Returns 0 when out of memory. */
static int channel_stats(const float *x, size_t rows, size_t C, float *mean, float *var) {
  double *acc = (double *)calloc(C * 2, sizeof(double));
  float *part = (float *)malloc(sizeof(float) * C);
  if (acc == NULL || part == NULL) {
    free(acc);
    free(part);
    return 0;
  }
  double *sum = acc, *sq = acc + C;
  for (size_t r0 = 0; r0 < rows; r0 += STAT_BLOCK) {
    const size_t r1 = rows - r0 < STAT_BLOCK ? rows : r0 + STAT_BLOCK;
    memset(part, 0, sizeof(float) * C);
    sum_rows(part, x + r0 * C, r1 - r0, C);
    for (size_t c = 0; c < C; c++) sum[c] += part[c];
  }
  for (size_t c = 0; c < C; c++) {
    sum[c] /= (double)rows;
    mean[c] = (float)sum[c];
  }
  for (size_t r0 = 0; r0 < rows; r0 += STAT_BLOCK) {
    const size_t r1 = rows - r0 < STAT_BLOCK ? rows : r0 + STAT_BLOCK;
    memset(part, 0, sizeof(float) * C);
    sum_squared_deviations(part, x + r0 * C, r1 - r0, C, mean);
    for (size_t c = 0; c < C; c++) sq[c] += part[c];
  }
  for (size_t c = 0; c < C; c++) var[c] = rows > 0 ? (float)(sq[c] / (double)rows) : 0.f;
  free(acc);
  free(part);
  return 1;
}

/* y = (x - mean) / sqrt(var + eps) * scale + offset per channel, then max(y, 0) when `relu`. */
static int channel_normalise(const float *x, size_t rows, size_t C, const float *mean, const float *var,
                             const float *scale, const float *offset, double eps, int relu, float *y) {
  float *a = (float *)malloc(sizeof(float) * C);
  if (a == NULL) return 0;
  for (size_t c = 0; c < C; c++) a[c] = (float)((scale == NULL ? 1.0 : scale[c]) / sqrt((double)var[c] + eps));
  if (C % 8 == 0) {
    for (size_t r = 0; r < rows; r++)
      for (size_t c = 0; c < C; c += 8) {
        v8 v = (*(const v8u *)(x + r * C + c) - *(const v8u *)(mean + c)) * *(const v8u *)(a + c);
        if (offset != NULL) v += *(const v8u *)(offset + c);
        *(v8u *)(y + r * C + c) = relu ? relu8(v) : v;
      }
    free(a);
    return 1;
  }
  for (size_t r = 0; r < rows; r++) {
    const float *xr = x + r * C;
    float *yr = y + r * C;
    if (offset != NULL)
      for (size_t c = 0; c < C; c++) yr[c] = (xr[c] - mean[c]) * a[c] + offset[c];
    else
      for (size_t c = 0; c < C; c++) yr[c] = (xr[c] - mean[c]) * a[c];
    if (relu)
      for (size_t c = 0; c < C; c++) yr[c] = yr[c] > 0.f ? yr[c] : 0.f;
  }
  free(a);
  return 1;
}

/* Per-channel S1 = sum(dy) and S2 = sum(dy * (x - mean)) into s[0:C] and s[C:2C] (double), in float
 * blocks of STAT_BLOCK rows. Returns 0 when out of memory. */
static int channel_grad_sums(const float *dy, const float *x, size_t rows, size_t C, const float *mean, double *s) {
  float *part = (float *)malloc(sizeof(float) * C * 2);
  if (part == NULL) return 0;
  float *p1 = part, *p2 = part + C;
  for (size_t r0 = 0; r0 < rows; r0 += STAT_BLOCK) {
    const size_t r1 = rows - r0 < STAT_BLOCK ? rows : r0 + STAT_BLOCK;
    memset(part, 0, sizeof(float) * C * 2);
    sum_grad_rows(p1, p2, dy + r0 * C, x + r0 * C, r1 - r0, C, mean);
    for (size_t c = 0; c < C; c++) {
      s[c] += p1[c];
      s[C + c] += p2[c];
    }
  }
  free(part);
  return 1;
}

/* The closed-form gradient of batch norm with batch statistics (see src/batch-norm-training.ts);
 * with `through_statistics` 0, of batch norm with given (moving) statistics, an affine map per
 * channel (dx = dy * scale * r). dOffset = S1, dScale = S2 * r either way. dx may be dy itself
 * (each element is read before it is written). */
static int channel_grad(const float *dy, const float *x, size_t rows, size_t C, const float *mean, const float *var,
                        const float *scale, double eps, int through_statistics, float *dx, float *dscale,
                        float *doffset) {
  double *s = (double *)calloc(C * 2, sizeof(double));
  float *coef = (float *)malloc(sizeof(float) * C * 3);
  if (s == NULL || coef == NULL || !channel_grad_sums(dy, x, rows, C, mean, s)) {
    free(s);
    free(coef);
    return 0;
  }
  float *a = coef, *b = coef + C, *k = coef + 2 * C;
  for (size_t c = 0; c < C; c++) {
    const double rr = 1.0 / sqrt((double)var[c] + eps);
    const double g = scale == NULL ? 1.0 : scale[c];
    doffset[c] = (float)s[c];
    dscale[c] = (float)(s[C + c] * rr);
    a[c] = (float)(g * rr);
    b[c] = through_statistics ? (float)(-g * rr * rr * rr * s[C + c] / (double)rows) : 0.f;
    k[c] = through_statistics ? (float)(-g * rr * s[c] / (double)rows) : 0.f;
  }
  if (C % 8 == 0) {
    for (size_t r = 0; r < rows; r++)
      for (size_t c = 0; c < C; c += 8) {
        const v8 d = *(const v8u *)(dy + r * C + c);
        *(v8u *)(dx + r * C + c) = through_statistics
                                       ? *(const v8u *)(a + c) * d + *(const v8u *)(b + c) * (*(const v8u *)(x + r * C + c) - *(const v8u *)(mean + c)) + *(const v8u *)(k + c)
                                       : *(const v8u *)(a + c) * d;
      }
    free(s);
    free(coef);
    return 1;
  }
  for (size_t r = 0; r < rows; r++) {
    const float *d = dy + r * C, *xr = x + r * C;
    float *o = dx + r * C;
    if (through_statistics)
      for (size_t c = 0; c < C; c++) o[c] = a[c] * d[c] + b[c] * (xr[c] - mean[c]) + k[c];
    else
      for (size_t c = 0; c < C; c++) o[c] = a[c] * d[c];
  }
  free(s);
  free(coef);
  return 1;
}

/* conv2dForward(x, filter, y, geom, bias | null, activation, leakyAlpha) */
static napi_value Conv2dForward(napi_env env, napi_callback_info info) {
  ARGS(7);
  float *x, *w, *y, *bias = NULL;
  size_t nx, nw, ny, nb = 0;
  Geom g;
  if (!get_f32(env, argv[0], &x, &nx) || !get_f32(env, argv[1], &w, &nw) || !get_f32(env, argv[2], &y, &ny) ||
      !get_geom(env, argv[3], &g))
    return throw_msg(env, "@lab/tfjs-train native conv2dForward: expected (Float32Array x, filter, y, Int32Array(15) geometry, ...)");
  napi_valuetype bt;
  CHECK(napi_typeof(env, argv[4], &bt));
  if (bt != napi_null && bt != napi_undefined && !get_f32(env, argv[4], &bias, &nb))
    return throw_msg(env, "@lab/tfjs-train native conv2dForward: bias must be a Float32Array or null");
  int32_t act;
  double alpha;
  CHECK(napi_get_value_int32(env, argv[5], &act));
  CHECK(napi_get_value_double(env, argv[6], &alpha));
  const long K = g.KH * g.KW * g.C;
  if ((long)nx != g.B * g.H * g.W * g.C || (long)nw != K * g.CO || (long)ny != g.B * g.OH * g.OW * g.CO ||
      (bias != NULL && (long)nb != g.CO))
    return throw_msg(env, "@lab/tfjs-train native conv2dForward: array lengths do not match the geometry");
  if (conv_forward(state, &g, x, w, y) != NULL) return throw_msg(env, "@lab/tfjs-train native conv2dForward: out of memory");
  bias_activation(y, g.B * g.OH * g.OW, g.CO, bias, act, (float)alpha);
  return NULL;
}

/* conv2dBackpropInput(dy, filter, dx, geom) */
static napi_value Conv2dBackpropInput(napi_env env, napi_callback_info info) {
  ARGS(4);
  float *dy, *w, *dx;
  size_t ndy, nw, ndx;
  Geom g;
  if (!get_f32(env, argv[0], &dy, &ndy) || !get_f32(env, argv[1], &w, &nw) || !get_f32(env, argv[2], &dx, &ndx) ||
      !get_geom(env, argv[3], &g))
    return throw_msg(env, "@lab/tfjs-train native conv2dBackpropInput: expected (Float32Array dy, filter, dx, Int32Array(15) geometry)");
  const long K = g.KH * g.KW * g.C;
  if ((long)ndx != g.B * g.H * g.W * g.C || (long)nw != K * g.CO || (long)ndy != g.B * g.OH * g.OW * g.CO)
    return throw_msg(env, "@lab/tfjs-train native conv2dBackpropInput: array lengths do not match the geometry");
  if (conv_backprop_input(state, &g, dy, w, dx) != NULL)
    return throw_msg(env, "@lab/tfjs-train native conv2dBackpropInput: out of memory");
  return NULL;
}

/* conv2dBackpropFilter(x, dy, dw, geom) */
static napi_value Conv2dBackpropFilter(napi_env env, napi_callback_info info) {
  ARGS(4);
  float *x, *dy, *dw;
  size_t nx, ndy, ndw;
  Geom g;
  if (!get_f32(env, argv[0], &x, &nx) || !get_f32(env, argv[1], &dy, &ndy) || !get_f32(env, argv[2], &dw, &ndw) ||
      !get_geom(env, argv[3], &g))
    return throw_msg(env, "@lab/tfjs-train native conv2dBackpropFilter: expected (Float32Array x, dy, dw, Int32Array(15) geometry)");
  const long K = g.KH * g.KW * g.C;
  if ((long)nx != g.B * g.H * g.W * g.C || (long)ndw != K * g.CO || (long)ndy != g.B * g.OH * g.OW * g.CO)
    return throw_msg(env, "@lab/tfjs-train native conv2dBackpropFilter: array lengths do not match the geometry");
  if (conv_backprop_filter(state, &g, x, dy, dw) != NULL)
    return throw_msg(env, "@lab/tfjs-train native conv2dBackpropFilter: out of memory");
  return NULL;
}

/* Reads the named Float32Array properties of `obj` (null or absent where `optional`). */
static int get_f32_prop(napi_env env, napi_value obj, const char *name, float **data, size_t *length, int optional) {
  napi_value v;
  napi_valuetype t;
  *data = NULL;
  *length = 0;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return 0;
  if (t == napi_null || t == napi_undefined) return optional;
  return get_f32(env, v, data, length);
}

/* y += residual, then max(y, 0) when `relu` (a ResNet block's shortcut and final ReLU). */
static void add_residual(float *y, const float *residual, size_t n, int relu) {
  if (residual == NULL) return;
  if (relu) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) *(v8u *)(y + i) = relu8(*(const v8u *)(y + i) + *(const v8u *)(residual + i));
    for (; i < n; i++) {
      const float v = y[i] + residual[i];
      y[i] = v > 0.f ? v : 0.f;
    }
  } else {
    for (size_t i = 0; i < n; i++) y[i] += residual[i];
  }
}

/* convBatchNormForward({ x, filter, scale, offset, movingMean, movingVariance, y, conv, stats,
 * newMovingMean, newMovingVariance, residual | null }, geom, epsilon, momentum, relu, training):
 * conv = x * filter; batch
 * statistics of conv (stats = [mean; biased variance]); y = batch-normalised conv, plus residual
 * where given, then ReLU; training false normalises with the moving statistics instead;
 * moving statistics new = old - (old - batch) * (1 - momentum), the variance's batch value
 * unbiased (x n/(n-1)) as PyTorch does. One call instead of ~10 kernel dispatches. */
static napi_value ConvBatchNormForward(napi_env env, napi_callback_info info) {
  ARGS(6);
  float *x, *w, *scale, *offset, *mm, *mv, *y, *conv, *stats, *nmm, *nmv, *residual;
  size_t nx, nw, ns, no, nmm_, nmv_, ny, nconv, nstats, nnmm, nnmv, nres;
  Geom g;
  double eps, momentum;
  bool relu, training;
  if (!get_f32_prop(env, argv[0], "x", &x, &nx, 0) || !get_f32_prop(env, argv[0], "filter", &w, &nw, 0) ||
      !get_f32_prop(env, argv[0], "scale", &scale, &ns, 1) || !get_f32_prop(env, argv[0], "offset", &offset, &no, 1) ||
      !get_f32_prop(env, argv[0], "movingMean", &mm, &nmm_, 0) ||
      !get_f32_prop(env, argv[0], "movingVariance", &mv, &nmv_, 0) || !get_f32_prop(env, argv[0], "y", &y, &ny, 0) ||
      !get_f32_prop(env, argv[0], "conv", &conv, &nconv, 0) || !get_f32_prop(env, argv[0], "stats", &stats, &nstats, 0) ||
      !get_f32_prop(env, argv[0], "newMovingMean", &nmm, &nnmm, 0) ||
      !get_f32_prop(env, argv[0], "newMovingVariance", &nmv, &nnmv, 0) ||
      !get_f32_prop(env, argv[0], "residual", &residual, &nres, 1) || !get_geom(env, argv[1], &g) ||
      napi_get_value_double(env, argv[2], &eps) != napi_ok || napi_get_value_double(env, argv[3], &momentum) != napi_ok ||
      napi_get_value_bool(env, argv[4], &relu) != napi_ok || napi_get_value_bool(env, argv[5], &training) != napi_ok)
    return throw_msg(env, "@lab/tfjs-train native convBatchNormForward: expected ({ x, filter, scale, offset, movingMean, movingVariance, y, conv, stats, newMovingMean, newMovingVariance }, Int32Array(15) geometry, epsilon, momentum, relu, training)");
  const size_t C = (size_t)g.CO, rows = (size_t)(g.B * g.OH * g.OW);
  if ((long)nx != g.B * g.H * g.W * g.C || (long)nw != g.KH * g.KW * g.C * g.CO || ny != rows * C || nconv != ny ||
      nstats != 2 * C || (scale != NULL && ns != C) || (offset != NULL && no != C) || nmm_ != C || nmv_ != C ||
      nnmm != C || nnmv != C || rows == 0 || (residual != NULL && nres != ny))
    return throw_msg(env, "@lab/tfjs-train native convBatchNormForward: array lengths do not match the geometry");
  if (!training) {
    /* Inference: the moving statistics normalise, and stay as they are. */
    memcpy(stats, mm, sizeof(float) * C);
    memcpy(stats + C, mv, sizeof(float) * C);
    memcpy(nmm, mm, sizeof(float) * C);
    memcpy(nmv, mv, sizeof(float) * C);
    if (conv_forward(state, &g, x, w, conv) != NULL ||
        !channel_normalise(conv, rows, C, stats, stats + C, scale, offset, eps, relu && residual == NULL, y))
      return throw_msg(env, "@lab/tfjs-train native convBatchNormForward: out of memory");
    add_residual(y, residual, ny, relu);
    return NULL;
  }
  if (conv_forward(state, &g, x, w, conv) != NULL || !channel_stats(conv, rows, C, stats, stats + C) ||
      !channel_normalise(conv, rows, C, stats, stats + C, scale, offset, eps, relu && residual == NULL, y))
    return throw_msg(env, "@lab/tfjs-train native convBatchNormForward: out of memory");
  add_residual(y, residual, ny, relu);
  /* Same arithmetic as the unfused layer's float32 ops: old - (old - batch) * decay. */
  const float decay = (float)(1 - momentum);
  const float unbias = rows > 1 ? (float)((double)rows / (double)(rows - 1)) : 1.f;
  for (size_t c = 0; c < C; c++) {
    nmm[c] = mm[c] - (mm[c] - stats[c]) * decay;
    nmv[c] = mv[c] - (mv[c] - stats[C + c] * unbias) * decay;
  }
  return NULL;
}

/* convBatchNormBackward({ dy, x, filter, conv, y, stats, scale, dx | null, dFilter, dScale,
 * dOffset, dResidual | null }, geom, epsilon, relu, training): the gradients of
 * convBatchNormForward's y (through the batch statistics when training); dx null skips the input
 * gradient; dResidual receives the gradient of a residual input. */
static napi_value ConvBatchNormBackward(napi_env env, napi_callback_info info) {
  ARGS(5);
  float *dy, *x, *w, *conv, *y, *stats, *scale, *dx, *dw, *dscale, *doffset, *dres;
  size_t ndy, nx, nw, nconv, ny, nstats, ns, ndx, ndw, nds, ndo, ndres;
  Geom g;
  double eps;
  bool relu, training;
  if (!get_f32_prop(env, argv[0], "dy", &dy, &ndy, 0) || !get_f32_prop(env, argv[0], "x", &x, &nx, 0) ||
      !get_f32_prop(env, argv[0], "filter", &w, &nw, 0) || !get_f32_prop(env, argv[0], "conv", &conv, &nconv, 0) ||
      !get_f32_prop(env, argv[0], "y", &y, &ny, 0) || !get_f32_prop(env, argv[0], "stats", &stats, &nstats, 0) ||
      !get_f32_prop(env, argv[0], "scale", &scale, &ns, 1) || !get_f32_prop(env, argv[0], "dx", &dx, &ndx, 1) ||
      !get_f32_prop(env, argv[0], "dFilter", &dw, &ndw, 0) || !get_f32_prop(env, argv[0], "dScale", &dscale, &nds, 0) ||
      !get_f32_prop(env, argv[0], "dOffset", &doffset, &ndo, 0) ||
      !get_f32_prop(env, argv[0], "dResidual", &dres, &ndres, 1) || !get_geom(env, argv[1], &g) ||
      napi_get_value_double(env, argv[2], &eps) != napi_ok || napi_get_value_bool(env, argv[3], &relu) != napi_ok ||
      napi_get_value_bool(env, argv[4], &training) != napi_ok)
    return throw_msg(env, "@lab/tfjs-train native convBatchNormBackward: expected ({ dy, x, filter, conv, y, stats, scale, dx, dFilter, dScale, dOffset }, Int32Array(15) geometry, epsilon, relu, training)");
  const size_t C = (size_t)g.CO, rows = (size_t)(g.B * g.OH * g.OW);
  if (ndy != rows * C || nconv != ndy || ny != ndy || (long)nx != g.B * g.H * g.W * g.C ||
      (long)nw != g.KH * g.KW * g.C * g.CO || ndw != nw || nstats != 2 * C || (scale != NULL && ns != C) ||
      (dx != NULL && ndx != nx) || nds != C || ndo != C || rows == 0 || (dres != NULL && ndres != ndy))
    return throw_msg(env, "@lab/tfjs-train native convBatchNormBackward: array lengths do not match the geometry");
  float *dconv = grow(&state->activation_scratch, &state->activation_scratch_floats, ndy);
  if (dconv == NULL) return throw_msg(env, "@lab/tfjs-train native convBatchNormBackward: out of memory");
  if (relu) {
    relu_gradient(y, dy, dconv, ndy);
  } else {
    memcpy(dconv, dy, sizeof(float) * ndy);
  }
  /* The shortcut was added before the ReLU: its gradient is the masked dy itself. */
  if (dres != NULL) memcpy(dres, dconv, sizeof(float) * ndy);
  const char *error = NULL;
  if (!channel_grad(dconv, conv, rows, C, stats, stats + C, scale, eps, training, dconv, dscale, doffset))
    error = "out of memory";
  if (error == NULL) error = conv_backprop_filter(state, &g, x, dconv, dw);
  if (error == NULL && dx != NULL) error = conv_backprop_input(state, &g, dconv, w, dx);
  if (error != NULL) return throw_msg(env, "@lab/tfjs-train native convBatchNormBackward: out of memory");
  return NULL;
}

typedef struct {
  const float *w, *g, *m, *v;
  float *wo, *mo, *vo;
  float b1, b2, one_minus_b1, one_minus_b2, l2, shrink, inv_bc2, eps, step_size;
} AdamJob;

static void adam_range(void *arg, long i0, long i1) {
  const AdamJob *j = (const AdamJob *)arg;
  const float *w = j->w, *g = j->g, *m = j->m, *v = j->v;
  float *wo = j->wo, *mo = j->mo, *vo = j->vo;
  const float b1 = j->b1, b2 = j->b2, c1 = j->one_minus_b1, c2 = j->one_minus_b2, l2 = j->l2, shrink = j->shrink,
              inv_bc2 = j->inv_bc2, eps = j->eps, step_size = j->step_size;
  /* Outputs may be the inputs themselves, but only index for index: no dependence between
   * iterations, which ivdep tells the vectoriser (it cannot prove it for 7 pointers). */
#pragma GCC ivdep
  for (long i = i0; i < i1; i++) {
    const float wi = w[i], gi = g[i] + l2 * wi;
    const float mi = b1 * m[i] + c1 * gi;
    const float vi = b2 * v[i] + c2 * gi * gi;
    mo[i] = mi;
    vo[i] = vi;
    wo[i] = wi * shrink - step_size * mi / (sqrtf(vi) * inv_bc2 + eps);
  }
}

/* adamUpdate(w, g, m, v, wOut, mOut, vOut, { lr, beta1, beta2, epsilon, weightDecay, decoupled, step }):
 * PyTorch's Adam / AdamW step, one pass; outputs may alias inputs (same signature as the JS
 * adamUpdateInto in src/fused-adam.ts). */
static int get_number_property(napi_env env, napi_value obj, const char *name, double *out) {
  napi_value v;
  return napi_get_named_property(env, obj, name, &v) == napi_ok && napi_get_value_double(env, v, out) == napi_ok;
}

static napi_value AdamUpdate(napi_env env, napi_callback_info info) {
  ARGS(8);
  float *arr[7];
  size_t len[7];
  for (int i = 0; i < 7; i++)
    if (!get_f32(env, argv[i], &arr[i], &len[i]) || len[i] != len[0])
      return throw_msg(env, "@lab/tfjs-train native adamUpdate: expected 7 Float32Arrays of one length");
  double lr, b1, b2, eps, wd, step;
  bool decoupled;
  napi_value flag;
  if (!get_number_property(env, argv[7], "lr", &lr) || !get_number_property(env, argv[7], "beta1", &b1) ||
      !get_number_property(env, argv[7], "beta2", &b2) || !get_number_property(env, argv[7], "epsilon", &eps) ||
      !get_number_property(env, argv[7], "weightDecay", &wd) || !get_number_property(env, argv[7], "step", &step) ||
      napi_get_named_property(env, argv[7], "decoupled", &flag) != napi_ok || napi_get_value_bool(env, flag, &decoupled) != napi_ok)
    return throw_msg(env, "@lab/tfjs-train native adamUpdate: attrs must have numbers lr, beta1, beta2, epsilon, weightDecay, step and boolean decoupled");
  AdamJob job;
  job.w = arr[0];
  job.g = arr[1];
  job.m = arr[2];
  job.v = arr[3];
  job.wo = arr[4];
  job.mo = arr[5];
  job.vo = arr[6];
  const double step_size = lr / (1 - pow(b1, step));
  const double sqrt_bc2 = sqrt(1 - pow(b2, step));
  job.b1 = (float)b1;
  job.b2 = (float)b2;
  job.one_minus_b1 = (float)(1 - b1);
  job.one_minus_b2 = (float)(1 - b2);
  job.l2 = decoupled ? 0.f : (float)wd;
  job.shrink = decoupled ? (float)(1 - lr * wd) : 1.f;
  job.inv_bc2 = (float)(1 / sqrt_bc2);
  job.eps = (float)eps;
  job.step_size = (float)step_size;
  parallel_for(state, (long)len[0], 1L << 18, adam_range, &job);
  return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Batch normalisation in training mode and max-pool gradient: memory-bound passes that the
 * JS/wasm versions run 3-5x slower (scalar loops, no fused multiply-add).
 * ------------------------------------------------------------------------------------------- */

/* batchNormStats(x, channels, out[2*C]): mean and biased variance, two passes in double. */
static napi_value BatchNormStats(napi_env env, napi_callback_info info) {
  ARGS(3);
  (void)state;
  float *x, *out;
  size_t nx, nout;
  int32_t C;
  if (!get_f32(env, argv[0], &x, &nx) || napi_get_value_int32(env, argv[1], &C) != napi_ok ||
      !get_f32(env, argv[2], &out, &nout) || C < 1 || nout != (size_t)(2 * C) || nx % (size_t)C != 0)
    return throw_msg(env, "@lab/tfjs-train native batchNormStats: expected (Float32Array x, channels, Float32Array out[2*channels])");
  if (!channel_stats(x, nx / (size_t)C, (size_t)C, out, out + C))
    return throw_msg(env, "@lab/tfjs-train native batchNormStats: out of memory");
  return NULL;
}

/* batchNormTrainingGrad(dy, x, mean, variance, scale | null, epsilon, dx, dScale, dOffset):
 * see src/batch-norm-training.ts for the formulas. */
static napi_value BatchNormTrainingGrad(napi_env env, napi_callback_info info) {
  ARGS(9);
  (void)state;
  float *dy, *x, *mean, *var, *scale = NULL, *dx, *dscale, *doffset;
  size_t ndy, nx, nm, nv, ns = 0, ndx, nds, ndo;
  double eps;
  napi_valuetype st;
  CHECK(napi_typeof(env, argv[4], &st));
  if (!get_f32(env, argv[0], &dy, &ndy) || !get_f32(env, argv[1], &x, &nx) || !get_f32(env, argv[2], &mean, &nm) ||
      !get_f32(env, argv[3], &var, &nv) || (st != napi_null && !get_f32(env, argv[4], &scale, &ns)) ||
      napi_get_value_double(env, argv[5], &eps) != napi_ok || !get_f32(env, argv[6], &dx, &ndx) ||
      !get_f32(env, argv[7], &dscale, &nds) || !get_f32(env, argv[8], &doffset, &ndo))
    return throw_msg(env, "@lab/tfjs-train native batchNormTrainingGrad: bad arguments");
  const size_t C = nm;
  if (C == 0 || nv != C || (scale != NULL && ns != C) || nds != C || ndo != C || ndy != nx || ndx != nx || nx % C != 0)
    return throw_msg(env, "@lab/tfjs-train native batchNormTrainingGrad: array lengths do not match");
  if (!channel_grad(dy, x, nx / C, C, mean, var, scale, eps, 1, dx, dscale, doffset))
    return throw_msg(env, "@lab/tfjs-train native batchNormTrainingGrad: out of memory");
  return NULL;
}

/* batchNormApply(x, mean, variance, scale | null, offset | null, epsilon, y):
 * y = (x - mean) / sqrt(variance + eps) * scale + offset per channel (last axis). */
static napi_value BatchNormApply(napi_env env, napi_callback_info info) {
  ARGS(7);
  (void)state;
  float *x, *mean, *var, *scale = NULL, *offset = NULL, *y;
  size_t nx, nm, nv, ns = 0, no = 0, ny;
  double eps;
  napi_valuetype st, ot;
  CHECK(napi_typeof(env, argv[3], &st));
  CHECK(napi_typeof(env, argv[4], &ot));
  if (!get_f32(env, argv[0], &x, &nx) || !get_f32(env, argv[1], &mean, &nm) || !get_f32(env, argv[2], &var, &nv) ||
      (st != napi_null && !get_f32(env, argv[3], &scale, &ns)) || (ot != napi_null && !get_f32(env, argv[4], &offset, &no)) ||
      napi_get_value_double(env, argv[5], &eps) != napi_ok || !get_f32(env, argv[6], &y, &ny))
    return throw_msg(env, "@lab/tfjs-train native batchNormApply: bad arguments");
  const size_t C = nm;
  if (C == 0 || nv != C || (scale != NULL && ns != C) || (offset != NULL && no != C) || ny != nx || nx % C != 0)
    return throw_msg(env, "@lab/tfjs-train native batchNormApply: array lengths do not match");
  if (!channel_normalise(x, nx / C, C, mean, var, scale, offset, eps, 0, y))
    return throw_msg(env, "@lab/tfjs-train native batchNormApply: out of memory");
  return NULL;
}

/* maxPoolGrad(x, dy, dx, geom): dy of each window to the first (row-major) maximum; padding never
 * holds the maximum. geom as for convolutions with C = CO = channels, KH/KW the window. */
static napi_value MaxPoolGrad(napi_env env, napi_callback_info info) {
  ARGS(4);
  (void)state;
  float *x, *dy, *dx;
  size_t nx, ndy, ndx;
  Geom g;
  if (!get_f32(env, argv[0], &x, &nx) || !get_f32(env, argv[1], &dy, &ndy) || !get_f32(env, argv[2], &dx, &ndx) ||
      !get_geom(env, argv[3], &g))
    return throw_msg(env, "@lab/tfjs-train native maxPoolGrad: expected (Float32Array x, dy, dx, Int32Array(15) geometry)");
  const long C = g.C;
  if ((long)nx != g.B * g.H * g.W * C || (long)ndx != (long)nx || (long)ndy != g.B * g.OH * g.OW * C)
    return throw_msg(env, "@lab/tfjs-train native maxPoolGrad: array lengths do not match the geometry");
  float *best = (float *)malloc(sizeof(float) * C);
  long *at = (long *)malloc(sizeof(long) * C);
  if (best == NULL || at == NULL) {
    free(best);
    free(at);
    return throw_msg(env, "@lab/tfjs-train native maxPoolGrad: out of memory");
  }
  memset(dx, 0, sizeof(float) * ndx);
  for (long b = 0; b < g.B; b++) {
    for (long oh = 0; oh < g.OH; oh++) {
      for (long ow = 0; ow < g.OW; ow++) {
        for (long c = 0; c < C; c++) {
          best[c] = -INFINITY;
          at[c] = -1;
        }
        for (long kh = 0; kh < g.KH; kh++) {
          const long ih = oh * g.sh - g.pt + kh * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          for (long kw = 0; kw < g.KW; kw++) {
            const long iw = ow * g.sw - g.pl + kw * g.dw;
            if (iw < 0 || iw >= g.W) continue;
            const long base = ((b * g.H + ih) * g.W + iw) * C;
            for (long c = 0; c < C; c++) {
              const float v = x[base + c];
              if (v > best[c]) {
                best[c] = v;
                at[c] = base + c;
              }
            }
          }
        }
        const float *d = dy + ((b * g.OH + oh) * g.OW + ow) * C;
        for (long c = 0; c < C; c++)
          if (at[c] >= 0) dx[at[c]] += d[c];
      }
    }
  }
  free(best);
  free(at);
  return NULL;
}

/* setThreads(n) -> n */
static napi_value SetThreads(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t n;
  CHECK(napi_get_value_int32(env, argv[0], &n));
  state->threads = n < 1 ? 1 : n > POOL_MAX_THREADS ? POOL_MAX_THREADS : n;
  napi_value out;
  CHECK(napi_create_int32(env, state->threads, &out));
  return out;
}

/* setScratchLimit(floats) -> floats */
static napi_value SetScratchLimit(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t n;
  CHECK(napi_get_value_int64(env, argv[0], &n));
  state->scratch_limit = n < 1 ? 1 : (long)n;
  napi_value out;
  CHECK(napi_create_int64(env, state->scratch_limit, &out));
  return out;
}

/* setTile(name | null): force the built-in GEMM's tile ('wide', 'narrow', 'half'; tests). Returns
 * the tile that N = 1 would now get. */
static napi_value SetTile(napi_env env, napi_callback_info info) {
  ARGS(1);
  (void)state;
  static char name[16];
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[0], &t));
  if (t == napi_null || t == napi_undefined) {
    forced_tile = NULL;
  } else {
    size_t len;
    CHECK(napi_get_value_string_utf8(env, argv[0], name, sizeof(name), &len));
    forced_tile = name;
  }
  napi_value out;
  CHECK(napi_create_string_utf8(env, choose_tile(1)->name, NAPI_AUTO_LENGTH, &out));
  return out;
}

/* setDirectConv('auto' | 'always' | 'never'): when convolutions take the direct path (tests force
 * each path on the same shapes). Returns the mode now in force. */
static napi_value SetDirectConv(napi_env env, napi_callback_info info) {
  ARGS(1);
  (void)state;
  char name[16] = "";
  size_t len;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof(name), &len) != napi_ok)
    return throw_msg(env, "@lab/tfjs-train native setDirectConv: expected 'auto', 'always' or 'never'");
  if (strcmp(name, "auto") == 0) direct_mode = 0;
  else if (strcmp(name, "always") == 0) direct_mode = 1;
  else if (strcmp(name, "never") == 0) direct_mode = -1;
  else return throw_msg(env, "@lab/tfjs-train native setDirectConv: expected 'auto', 'always' or 'never'");
  napi_value out;
  CHECK(napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &out));
  return out;
}

/* info() -> { gemm, library, threads, isa, vectorFloats, tiles } */
static napi_value Info(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  CHECK(napi_get_cb_info(env, info, &argc, NULL, NULL, NULL));
  Env *state = get_env(env);
  napi_value out, gemm, lib, threads;
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_string_utf8(env, provider_names[provider], NAPI_AUTO_LENGTH, &gemm));
  CHECK(napi_create_string_utf8(env, provider_path, NAPI_AUTO_LENGTH, &lib));
  CHECK(napi_create_int32(env, state->threads, &threads));
  CHECK(napi_set_named_property(env, out, "gemm", gemm));
  CHECK(napi_set_named_property(env, out, "library", lib));
  CHECK(napi_set_named_property(env, out, "threads", threads));
  napi_value isa, floats, tiles;
  char tile_text[128];
  snprintf(tile_text, sizeof(tile_text), "%dx%d wide, %dx%d narrow", TILE_WIDE.mr, TILE_WIDE.nr, TILE_NARROW.mr,
           TILE_NARROW.nr);
#if VEC_FLOATS >= 8
  snprintf(tile_text + strlen(tile_text), sizeof(tile_text) - strlen(tile_text), ", %dx%d half", TILE_HALF.mr, TILE_HALF.nr);
#endif
  snprintf(tile_text + strlen(tile_text), sizeof(tile_text) - strlen(tile_text), "; direct %dx8, %dx16", DIRECT_MR1, DIRECT_MR2);
  CHECK(napi_create_string_utf8(env, VEC_ISA, NAPI_AUTO_LENGTH, &isa));
  CHECK(napi_create_int32(env, VEC_FLOATS, &floats));
  CHECK(napi_create_string_utf8(env, tile_text, NAPI_AUTO_LENGTH, &tiles));
  CHECK(napi_set_named_property(env, out, "isa", isa));
  CHECK(napi_set_named_property(env, out, "vectorFloats", floats));
  CHECK(napi_set_named_property(env, out, "tiles", tiles));
  return out;
}

static void free_env(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  Env *state = (Env *)data;
  pool_destroy(state->pool);
  free(state->scratch);
  free(state->activation_scratch);
  free(state->pad_in);
  free(state->pad_grad);
  free(state->flipped_filter);
  free(state);
}

static napi_value Init(napi_env env, napi_value exports) {
  pthread_mutex_lock(&provider_lock);
  if (!provider_ready) {
    const char *want = getenv("LAB_TFJS_TRAIN_GEMM");
    choose_provider(want != NULL && want[0] != '\0' ? want : "auto");
    provider_ready = 1;
  }
  pthread_mutex_unlock(&provider_lock);
  Env *state = (Env *)calloc(1, sizeof(Env));
  if (state == NULL) return NULL;
  state->threads = 1;
  state->pool = pool_create();
  state->scratch_limit = DEFAULT_SCRATCH_LIMIT_FLOATS;
  if (napi_set_instance_data(env, state, free_env, NULL) != napi_ok) return NULL;
  const napi_property_descriptor props[] = {
      {"conv2dForward", NULL, Conv2dForward, NULL, NULL, NULL, napi_default, NULL},
      {"conv2dBackpropInput", NULL, Conv2dBackpropInput, NULL, NULL, NULL, napi_default, NULL},
      {"conv2dBackpropFilter", NULL, Conv2dBackpropFilter, NULL, NULL, NULL, napi_default, NULL},
      {"convBatchNormForward", NULL, ConvBatchNormForward, NULL, NULL, NULL, napi_default, NULL},
      {"convBatchNormBackward", NULL, ConvBatchNormBackward, NULL, NULL, NULL, napi_default, NULL},
      {"adamUpdate", NULL, AdamUpdate, NULL, NULL, NULL, napi_default, NULL},
      {"batchNormStats", NULL, BatchNormStats, NULL, NULL, NULL, napi_default, NULL},
      {"batchNormTrainingGrad", NULL, BatchNormTrainingGrad, NULL, NULL, NULL, napi_default, NULL},
      {"maxPoolGrad", NULL, MaxPoolGrad, NULL, NULL, NULL, napi_default, NULL},
      {"batchNormApply", NULL, BatchNormApply, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, SetThreads, NULL, NULL, NULL, napi_default, NULL},
      {"setScratchLimit", NULL, SetScratchLimit, NULL, NULL, NULL, napi_default, NULL},
      {"setTile", NULL, SetTile, NULL, NULL, NULL, napi_default, NULL},
      {"setDirectConv", NULL, SetDirectConv, NULL, NULL, NULL, napi_default, NULL},
      {"info", NULL, Info, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE_INIT() { return Init(env, exports); }
