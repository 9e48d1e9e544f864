/*  als.h: implicit-feedback matrix factorisation by alternating least
    squares (Hu, Koren & Volinsky 2008), each row solved by a few steps of
    conjugate gradient (Takacs, Pilaszy & Tikk 2011; the CG of the
    `implicit` library).

    From the signed strength v of feedback_matrix.h: preference p = 1 if
    v > 0 else 0, confidence c = 1 + alpha * |v|. A negative value is
    therefore a confident 0: it "counts against" the video. The objective is
    sum over all (u, i) of c_ui (p_ui - x_u . y_i)^2 + reg (|X|^2 + |Y|^2),
    with c = 1, p = 0 on every cell the matrix leaves empty.

    Training is multi-threaded over rows and deterministic for a seed: the
    result does not depend on the number of threads. Scoring goes through a
    scorer_t (scorer.h) that folds the user's history in against the item
    factors, so a user unseen at training time is scored the same way as a
    known one.
*/
#ifndef RECSD_ALS_H
#define RECSD_ALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "feedback_matrix.h"
#include "scorer.h"

//  Largest accepted number of factors (fold-in keeps f x f on the heap,
//  training keeps a few f-vectors per thread).
#define ALS_MAX_FACTORS 1024

typedef struct {
    int factors;          //  latent dimensions, 1..ALS_MAX_FACTORS
    int iterations;       //  alternating sweeps (user step + item step), >= 1
    float regularization; //  L2 weight, > 0 (keeps every solve positive definite)
    float alpha;          //  confidence slope, >= 0
    int cg_steps;         //  conjugate-gradient steps per row and sweep, >= 1
    uint64_t seed;        //  initial factors; same seed, same model
    int threads;          //  worker threads; 0 = number of online CPUs
} als_params_t;

//  64 factors, 15 iterations, regularization 0.1, alpha 10, 3 CG steps,
//  seed 42, threads 0. Cannot fail.
als_params_t als_params_default(void);

//  A trained (or mapped) model. All arrays are row-major float32:
//  user_factors n_users x factors, item_factors n_items x factors, gram
//  factors x factors = item_factors^T item_factors (without the
//  regularization), cached so that fold-in costs no pass over the items.
//  The struct itself always comes from the heap (malloc/calloc); the
//  arrays belong to it when owned is true, and are someone else's memory
//  (an mmapped artifact section) when owned is false. user_factors may be
//  NULL in a view: scoring only needs item_factors and gram.
typedef struct {
    int32_t n_users, n_items, factors;
    float *user_factors;
    float *item_factors;
    float *gram;
    float regularization, alpha;
    bool owned;
} als_model_t;

//  Called after each iteration (1-based) in the thread that called
//  als_train, with the training loss of that iteration (weighted squared
//  error plus regularization, divided by the total confidence weight) or
//  NAN when it was not computed. Returns nonzero to cancel training.
typedef int (*als_progress_fn)(int iteration, int iterations, double loss_or_nan, void *arg);

//  Trains on user_items (users x videos, read-only, may be shared). When
//  progress is NULL no loss is computed (it costs about a third of an
//  iteration). Returns a model the caller owns (owned = true), or NULL with
//  the reason in err: bad parameters, an empty or non-finite matrix,
//  allocation failure, or "cancelled" when progress asked to stop.
//  Memory: the factors, one transposed copy of the matrix and a few
//  f-vectors per thread; never anything of size n_users x n_items.
als_model_t *als_train(const feedback_matrix_t *user_items, const als_params_t *p,
                       als_progress_fn progress, void *arg, char *err, size_t errlen);

//  Frees the model: the arrays only if owned, the struct always;
//  idempotent, sets *self_p to NULL.
void als_model_destroy(als_model_t **self_p);

//  Writes gram = item_factors^T item_factors (factors x factors, both
//  triangles) for a model whose gram is not stored, e.g. a view built
//  over an artifact without that section. gram must hold factors^2 floats.
//  Cannot fail.
void als_compute_gram(const float *item_factors, int32_t n_items, int32_t factors, float *gram);

//  Solves the user step for one history against the model's item factors
//  (exact least squares, Cholesky of the factors x factors system) and
//  writes the user's vector into user_vec[0..factors-1]. History entries
//  whose video is outside 0..n_items-1 (a video newer than the model) or
//  whose value is 0 or not finite are ignored; an empty history gives the
//  zero vector. Safe to call from many threads on one model. Returns 0, or
//  -1 on allocation failure.
int als_fold_in(const als_model_t *self, const user_history_t *h, float *user_vec);

//  Scorer: scores = item_factors . fold_in(history) (cblas_sgemv). The
//  model pointer is self, borrowed.
scorer_t als_scorer(const als_model_t *self);

#endif
