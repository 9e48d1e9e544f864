/*  faiss_index.h: a small C API over FAISS (the C++ library in Debian's
    libfaiss-dev), for scoring large catalogues by approximate maximum
    inner product search instead of a brute-force pass over every video.

    Debian ships FAISS's own C API headers but not their compiled code, so
    this wraps the few calls the ranker and the trainer need (index
    factory, train, add, search, write, read) in faiss_index.cpp. Every C++
    exception is caught at the boundary and returned as -1 (or NULL) with
    its text in err; none ever reaches C.

    Ids are the order of addition: the first vector added is id 0, so with
    the item factors added in one call an id is the model's video index.

    Threads: faiss_index_search may be called from many threads at once on
    the same index; train, add and write must not run concurrently with
    anything else on that index (the ranker builds an index, then only
    searches it). A search runs on the calling thread only: it sets that
    thread's OpenMP team size to 1 (a per-thread setting), because the
    ranker serves one request per thread and a FAISS worker team per
    request would oversubscribe the cores. Train and add use OpenMP's
    default team (all cores), as they run off the request path.

    Search settings: faiss_index_set_param stores efSearch / nprobe /
    efConstruction in the index (and in the file it is written to); that is
    the way to tune HNSW. A per-call nprobe (faiss_search_params_t) works
    too. A per-call efSearch does not on Debian's FAISS 1.7.3, which ignores
    SearchParametersHNSW::efSearch (fixed upstream in 1.8, PR #3233), so
    there a per-call ef_search that differs from the stored one is refused
    rather than silently ignored.

    Used by the ranker (serving large catalogues) and bench/scoring_bench.c.
*/
#ifndef RECSD_FAISS_INDEX_H
#define RECSD_FAISS_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct faiss_index_t faiss_index_t;

//  Per-search knobs; 0 in a field means "the index's own setting" (FAISS's
//  defaults: efSearch 16, nprobe 1, both low; set them with
//  faiss_index_set_param when building the index).
typedef struct {
    int32_t ef_search; //  HNSW: candidate list size; see the note above; ignored otherwise
    int32_t nprobe;    //  IVF: inverted lists visited (capped at nlist); ignored otherwise
} faiss_search_params_t;

//  A new empty index of vectors of dim floats, built by FAISS's
//  index_factory from factory ("Flat", "HNSW32", "IVF1024,Flat", ...), with
//  the inner-product metric when metric_inner_product is nonzero, else
//  squared L2. Returns an index the caller owns, or NULL with the reason in
//  err (dim < 1, NULL or unknown factory string, allocation failure).
faiss_index_t *faiss_index_new(int32_t dim, const char *factory, int metric_inner_product,
                               char *err, size_t errlen);

//  Frees the index; idempotent, sets *self_p to NULL.
void faiss_index_destroy(faiss_index_t **self_p);

//  Reads an index that faiss_index_write wrote. Fails unless its dimension
//  is expected_dim (so that an index shipped next to an artifact cannot be
//  paired with factors of another size). Returns an index the caller owns,
//  or NULL with the reason in err.
faiss_index_t *faiss_index_read(const char *path, int32_t expected_dim, char *err, size_t errlen);

//  Writes the index (vectors, graph or lists, trained state) to path,
//  replacing it. Returns 0, or -1 with the reason in err.
int faiss_index_write(const faiss_index_t *self, const char *path, char *err, size_t errlen);

//  Vector dimension, number of vectors added, metric. Cannot fail.
int32_t faiss_index_dim(const faiss_index_t *self);
int64_t faiss_index_size(const faiss_index_t *self);
bool faiss_index_is_inner_product(const faiss_index_t *self);

//  Whether the index needs faiss_index_train before faiss_index_add (IVF
//  and quantizing indexes do; Flat and HNSW do not). Cannot fail.
bool faiss_index_is_trained(const faiss_index_t *self);

//  Sets a tuning parameter stored in the index, by FAISS's ParameterSpace
//  name: "efSearch" and "efConstruction" (HNSW; efConstruction only
//  matters before add), "nprobe" (IVF). Not concurrently with searches.
//  Returns 0, or -1 with the reason in err (unknown name for this index).
int faiss_index_set_param(faiss_index_t *self, const char *name, double value, char *err,
                          size_t errlen);

//  Trains on vectors[0 .. n*dim-1] (row-major, n >= 1; for IVF at least
//  nlist vectors, and ideally 30-256 per list). A no-op for an index that
//  needs no training. Returns 0, or -1 with the reason in err.
int faiss_index_train(faiss_index_t *self, const float *vectors, int64_t n, char *err,
                      size_t errlen);

//  Appends vectors[0 .. n*dim-1] (row-major, n >= 0) with ids size() ..
//  size()+n-1. Returns 0, or -1 with the reason in err (e.g. not trained).
int faiss_index_add(faiss_index_t *self, const float *vectors, int64_t n, char *err, size_t errlen);

//  The k (>= 1) best vectors for one query of dim floats, best first:
//  ids[i] and scores[i] for i < the return value. Scores are "higher is
//  better" for both metrics: the inner product, or the negated squared L2
//  distance. Entries past the return value (fewer than k vectors, or an
//  approximate index that found fewer) get id -1 and score -INFINITY.
//  params may be NULL (index settings). Safe to call concurrently on one
//  index. Returns the number of results, or -1 with the reason in err.
//  The caller filters seen videos: ask for k plus the number it will drop.
int32_t faiss_index_search(const faiss_index_t *self, const float *query, int32_t k,
                           const faiss_search_params_t *params, float *scores, int64_t *ids,
                           char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
