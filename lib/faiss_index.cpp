/*  faiss_index.cpp: the extern "C" wrapper of faiss_index.h over the FAISS
    C++ library. The only C++ file in recsd; kept small on purpose. Every
    entry point catches every exception, so C callers see -1/NULL and an
    error string, never an unwinding stack.
*/
#include "faiss_index.h"

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <exception>
#include <memory>
#include <new>
#include <type_traits>

#include <omp.h>

#include <faiss/AutoTune.h>
#include <faiss/Index.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

static_assert(std::is_same<faiss::Index::idx_t, int64_t>::value, "FAISS ids are not int64_t");

struct faiss_index_t {
    faiss::Index *index; //  owned
};

static void s_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

//  The one place exceptions become error strings: std::exception (which
//  includes faiss::FaissException and std::bad_alloc) keeps its text.
static void s_err_current(char *err, size_t errlen, const char *what_call)
{
    try {
        throw;
    } catch (const std::exception &e) {
        s_err(err, errlen, "%s: %s", what_call, e.what());
    } catch (...) {
        s_err(err, errlen, "%s: unknown C++ exception", what_call);
    }
}

faiss_index_t *faiss_index_new(int32_t dim, const char *factory, int metric_inner_product,
                               char *err, size_t errlen)
{
    if (dim < 1) {
        s_err(err, errlen, "faiss_index_new: dimension %d < 1", (int)dim);
        return nullptr;
    }
    if (!factory || !*factory) {
        s_err(err, errlen, "faiss_index_new: empty factory string");
        return nullptr;
    }
    try {
        std::unique_ptr<faiss::Index> index(faiss::index_factory(
            dim, factory, metric_inner_product ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2));
        std::unique_ptr<faiss_index_t> self(new faiss_index_t);
        self->index = index.release();
        return self.release();
    } catch (...) {
        s_err_current(err, errlen, "faiss_index_new");
        return nullptr;
    }
}

void faiss_index_destroy(faiss_index_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    faiss_index_t *self = *self_p;
    //  FAISS destructors free memory only; they do not throw in practice,
    //  and a destructor is noexcept anyway, so nothing can cross into C.
    delete self->index;
    delete self;
    *self_p = nullptr;
}

faiss_index_t *faiss_index_read(const char *path, int32_t expected_dim, char *err, size_t errlen)
{
    if (!path) {
        s_err(err, errlen, "faiss_index_read: no path");
        return nullptr;
    }
    try {
        std::unique_ptr<faiss::Index> index(faiss::read_index(path));
        if (index->d != expected_dim) {
            s_err(err, errlen, "faiss_index_read: %s has dimension %d, expected %d", path,
                  (int)index->d, (int)expected_dim);
            return nullptr;
        }
        std::unique_ptr<faiss_index_t> self(new faiss_index_t);
        self->index = index.release();
        return self.release();
    } catch (...) {
        s_err_current(err, errlen, "faiss_index_read");
        return nullptr;
    }
}

int faiss_index_write(const faiss_index_t *self, const char *path, char *err, size_t errlen)
{
    if (!path) {
        s_err(err, errlen, "faiss_index_write: no path");
        return -1;
    }
    try {
        faiss::write_index(self->index, path);
        return 0;
    } catch (...) {
        s_err_current(err, errlen, "faiss_index_write");
        return -1;
    }
}

int32_t faiss_index_dim(const faiss_index_t *self)
{
    return (int32_t)self->index->d;
}

int64_t faiss_index_size(const faiss_index_t *self)
{
    return self->index->ntotal;
}

bool faiss_index_is_inner_product(const faiss_index_t *self)
{
    return self->index->metric_type == faiss::METRIC_INNER_PRODUCT;
}

bool faiss_index_is_trained(const faiss_index_t *self)
{
    return self->index->is_trained;
}

int faiss_index_set_param(faiss_index_t *self, const char *name, double value, char *err,
                          size_t errlen)
{
    if (!name) {
        s_err(err, errlen, "faiss_index_set_param: no name");
        return -1;
    }
    try {
        faiss::ParameterSpace().set_index_parameter(self->index, name, value);
        return 0;
    } catch (...) {
        s_err_current(err, errlen, "faiss_index_set_param");
        return -1;
    }
}

int faiss_index_train(faiss_index_t *self, const float *vectors, int64_t n, char *err,
                      size_t errlen)
{
    if (!vectors || n < 1) {
        s_err(err, errlen, "faiss_index_train: no vectors");
        return -1;
    }
    try {
        if (!self->index->is_trained)
            self->index->train(n, vectors);
        return 0;
    } catch (...) {
        s_err_current(err, errlen, "faiss_index_train");
        return -1;
    }
}

int faiss_index_add(faiss_index_t *self, const float *vectors, int64_t n, char *err, size_t errlen)
{
    if (n < 0 || (n > 0 && !vectors)) {
        s_err(err, errlen, "faiss_index_add: bad vector count or no vectors");
        return -1;
    }
    if (n == 0)
        return 0;
    try {
        self->index->add(n, vectors);
        return 0;
    } catch (...) {
        s_err_current(err, errlen, "faiss_index_add");
        return -1;
    }
}

int32_t faiss_index_search(const faiss_index_t *self, const float *query, int32_t k,
                           const faiss_search_params_t *params, float *scores, int64_t *ids,
                           char *err, size_t errlen)
{
    if (!self || !self->index || !query || !scores || !ids || k < 1) {
        s_err(err, errlen, "faiss_index_search: no index, query or output, or k < 1");
        return -1;
    }
    try {
        //  Per-thread setting (libgomp keeps it in the calling thread's
        //  implicit task): this request's search runs on this thread only.
        omp_set_num_threads(1);

        //  The knobs travel with the call, not in the shared index, so that
        //  concurrent searches with different settings do not race.
        faiss::SearchParametersHNSW hnsw;
        faiss::SearchParametersIVF ivf;
        const faiss::SearchParameters *sp = nullptr;
        const auto *hn = dynamic_cast<const faiss::IndexHNSW *>(self->index);
        if (params && params->ef_search > 0 && hn) {
#if FAISS_VERSION_MAJOR == 1 && FAISS_VERSION_MINOR < 8
            //  1.7.x reads the index's own efSearch whatever the call says.
            if (params->ef_search != hn->hnsw.efSearch) {
                s_err(err, errlen,
                      "faiss_index_search: per-call ef_search %d needs FAISS >= 1.8 "
                      "(index has %d; use faiss_index_set_param)",
                      (int)params->ef_search, hn->hnsw.efSearch);
                return -1;
            }
#endif
            hnsw.efSearch = params->ef_search;
            sp = &hnsw;
        } else if (params && params->nprobe > 0) {
            if (const auto *iv = dynamic_cast<const faiss::IndexIVF *>(self->index)) {
                ivf.nprobe =
                    (size_t)params->nprobe < iv->nlist ? (size_t)params->nprobe : iv->nlist;
                sp = &ivf;
            }
        }
        self->index->search(1, query, k, scores, ids, sp);

        //  Keep the valid results in order at the front; normalise the
        //  rest and the L2 sign so callers see one convention.
        bool ip = self->index->metric_type == faiss::METRIC_INNER_PRODUCT;
        int32_t found = 0;
        for (int32_t i = 0; i < k; i++) {
            if (ids[i] < 0)
                continue;
            ids[found] = ids[i];
            scores[found] = ip ? scores[i] : -scores[i];
            found++;
        }
        for (int32_t i = found; i < k; i++) {
            ids[i] = -1;
            scores[i] = -INFINITY;
        }
        return found;
    } catch (...) {
        s_err_current(err, errlen, "faiss_index_search");
        return -1;
    }
}
