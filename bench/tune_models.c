/*  tune_models.c: hyper-parameter search for ALS and EASE on the
    validation split, never on the test split.

    Loads the feature store (RECSD_PG_DSN, per-event weights from the
    configuration), makes the same time-ordered split the trainer makes,
    splits its train part again (train' / validation), and grid-searches
    on validation only. The configured defaults (config.c) come from its
    output; the test split is not looked at.

      RECSD_PG_DSN=... build/tune_models [als|ease|all]
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "als.h"
#include "config.h"
#include "ease.h"
#include "evaluation.h"
#include "pg_conn.h"
#include "training_data.h"

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void s_als(const evaluation_split_t *val, const config_t *cfg)
{
    const int factors[] = {32, 64, 128};
    const float regs[] = {0.05f, 1.0f, 10.0f, 50.0f};
    const float alphas[] = {1.0f, 5.0f, 10.0f, 40.0f};
    for (size_t f = 0; f < sizeof factors / sizeof *factors; f++)
        for (size_t r = 0; r < sizeof regs / sizeof *regs; r++)
            for (size_t a = 0; a < sizeof alphas / sizeof *alphas; a++) {
                als_params_t p = als_params_default();
                p.factors = factors[f];
                p.regularization = regs[r];
                p.alpha = alphas[a];
                p.iterations = cfg->als_iterations;
                p.seed = (uint64_t)cfg->train_seed;
                char err[256];
                double t0 = s_now();
                als_model_t *m = als_train(val->train, &p, NULL, NULL, err, sizeof err);
                if (!m) {
                    fprintf(stderr, "als: %s\n", err);
                    continue;
                }
                scorer_t s = als_scorer(m);
                evaluation_metrics_t em;
                if (evaluation_run(val, &s, 0, &em, err, sizeof err) == 0)
                    printf("als factors=%3d reg=%6.2f alpha=%5.1f  val ndcg@10 %.4f recall@20 "
                           "%.4f (%.1f s)\n",
                           p.factors, (double)p.regularization, (double)p.alpha, em.ndcg10,
                           em.recall20, s_now() - t0);
                als_model_destroy(&m);
                fflush(stdout);
            }
}

static void s_ease(const evaluation_split_t *val, const config_t *cfg)
{
    const float lambdas[] = {50, 100, 250, 500, 1000, 2000};
    const int32_t sizes[] = {2000, 4000, 8000};
    for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++)
        for (size_t l = 0; l < sizeof lambdas / sizeof *lambdas; l++) {
            char err[256];
            double t0 = s_now();
            ease_model_t *m = ease_train(val->train, lambdas[l], sizes[z], err, sizeof err);
            if (!m) {
                fprintf(stderr, "ease: %s\n", err);
                continue;
            }
            scorer_t s = ease_scorer(m);
            evaluation_metrics_t em;
            if (evaluation_run(val, &s, 0, &em, err, sizeof err) == 0)
                printf("ease max_items=%5d lambda=%6.0f  val ndcg@10 %.4f recall@20 %.4f (%.1f "
                       "s)\n",
                       sizes[z], (double)lambdas[l], em.ndcg10, em.recall20, s_now() - t0);
            ease_model_destroy(&m);
            fflush(stdout);
        }
    (void)cfg;
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "all";
    config_t cfg;
    char err[512];
    if (config_load(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 78;
    }
    PGconn *conn = pg_conn_open(cfg.pg_dsn, "tune", 5, err, sizeof err);
    if (!conn) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    training_data_options_t opts;
    training_data_options_from_config(&opts, &cfg);
    training_data_t *d = training_data_load(conn, &opts, err, sizeof err);
    PQfinish(conn);
    if (!d) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    evaluation_split_t *test =
        evaluation_split_new(d->ev_user, d->ev_video, d->ev_value, d->ev_time, d->n_events,
                             d->n_users, d->n_videos, cfg.holdout_fraction, 5, err, sizeof err);
    evaluation_split_t *val =
        test ? evaluation_split_again(test, cfg.holdout_fraction, 5, err, sizeof err) : NULL;
    if (!val) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("tune_models: %zu events, %d users, %d videos; validation users %d\n", d->n_events,
           d->n_users, d->n_videos, val->n_test_users);
    if (!strcmp(what, "als") || !strcmp(what, "all"))
        s_als(val, &cfg);
    if (!strcmp(what, "ease") || !strcmp(what, "all"))
        s_ease(val, &cfg);
    evaluation_split_destroy(&val);
    evaluation_split_destroy(&test);
    training_data_destroy(&d);
    return 0;
}
