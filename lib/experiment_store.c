/*  experiment_store.c: the experiments schema's SQL (see experiment_store.h). */
#include "experiment_store.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "experiment_stats.h"
#include "model_registry.h"
#include "pg_conn.h"

//  Microseconds since the epoch (extract gives numeric: exact).
#define EPOCH_US(x) "(extract(epoch FROM (" x ")) * 1000000)::bigint"
//  A bigint of microseconds as a timestamptz, exactly (interval * bigint
//  goes through float8 and would round far from the epoch).
#define FROM_US(p)                                                                                 \
    "('epoch'::timestamptz + (" p "::bigint / 1000000) * interval '1 second'"                      \
    " + (" p "::bigint % 1000000) * interval '1 microsecond')"

#define SQLSTATE_UNIQUE "23505"
#define SQLSTATE_CHECK "23514"
#define SQLSTATE_FOREIGN_KEY "23503"
#define NAME_CONSTRAINT "experiments_name_key"
#define LAYER_INDEX "experiments_running_layer_idx"

//  ---- the statements ---------------------------------------------------
//  Kept together, unformatted, so that each reads as SQL.
// clang-format off

static const char s_sql_model[] =
    "SELECT model_type, status FROM training.models WHERE model_id = $1::uuid";

static const char s_sql_insert_experiment[] =
    "INSERT INTO experiments.experiments"
    "   (name, description, layer, salt, start_at, end_at, created_by)"
    " VALUES ($1, $2, $3, $4, " FROM_US("$5") ", " FROM_US("$6") ", $7)"
    " RETURNING experiment_id::text";

//  A pinned model without a type takes the model's type.
static const char s_sql_insert_variant[] =
    "INSERT INTO experiments.variants"
    "   (experiment_id, name, weight, model_type, model_id, params, is_control, position)"
    " VALUES ($1::uuid, $2, $3::integer / 100.0,"
    "         coalesce($4, (SELECT model_type FROM training.models WHERE model_id = $5::uuid)),"
    "         $5::uuid, $6::jsonb, $7::boolean, $8::smallint)";

static const char s_sql_notify[] =
    "SELECT pg_notify('" EXPERIMENT_STORE_CHANNEL "', $1)";

static const char s_sql_lock[] =
    "SELECT status, end_at IS NOT NULL AND end_at <= now(), layer"
    "  FROM experiments.experiments WHERE experiment_id = $1::uuid FOR UPDATE";

static const char s_sql_start[] =
    "UPDATE experiments.experiments SET status = 'running', start_at = coalesce(start_at, now())"
    " WHERE experiment_id = $1::uuid";

//  An end already passed (scheduled end_at) is kept; a stop before a
//  scheduled start ends it at its start (the table wants start <= end).
static const char s_sql_stop[] =
    "UPDATE experiments.experiments SET status = 'stopped',"
    "       end_at = CASE WHEN end_at IS NOT NULL AND end_at <= now() THEN end_at"
    "                     ELSE greatest(now(), coalesce(start_at, now())) END"
    " WHERE experiment_id = $1::uuid";

static const char s_sql_running_in_layer[] =
    "SELECT name FROM experiments.experiments WHERE layer = $1 AND status = 'running'";

//  One row per variant (or one with NULL variant columns for an
//  experiment without any), grouped by experiment, variants in order.
static const char s_sql_load[] =
    "SELECT e.experiment_id::text, e.name, e.description, e.status, e.layer, e.salt,"
    "       " EPOCH_US("e.start_at") ", " EPOCH_US("e.end_at") ","
    "       e.created_by, " EPOCH_US("e.created_at") ","
    "       v.name, (v.weight * 100)::integer, coalesce(v.model_type, ''),"
    "       coalesce(v.model_id::text, ''), v.params::text, v.is_control"
    "  FROM experiments.experiments e"
    "  LEFT JOIN experiments.variants v ON v.experiment_id = e.experiment_id"
    " WHERE ($1::uuid IS NULL OR e.experiment_id = $1::uuid)"
    "   AND ($2::text[] IS NULL OR e.status = ANY ($2::text[]))"
    " ORDER BY e.created_at DESC, e.experiment_id, v.position, v.name";

//  $1: a JSON array of {"e","v","u","ids":[...],"r","t"} (t absent: now).
static const char s_sql_exposures[] =
    "INSERT INTO experiments.exposures"
    "   (experiment_id, variant, user_id, video_ids, request_id, served_at)"
    " SELECT (r->>'e')::uuid, r->>'v', r->>'u',"
    "        ARRAY(SELECT x FROM jsonb_array_elements_text(r->'ids') WITH ORDINALITY AS i(x, k)"
    "              ORDER BY k),"
    "        r->>'r',"
    "        CASE WHEN r ? 't' THEN " FROM_US("(r->>'t')") " ELSE now() END"
    "   FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS a(r, n)"
    "  ORDER BY n";

//  $1: a JSON array of {"u","v","t","c","s"}; $2: the window in seconds.
//  The join walks exposures_user_time_idx (user_id, served_at).
static const char s_sql_attribute[] =
    "INSERT INTO experiments.outcomes"
    "   (exposure_id, experiment_id, variant, user_id, video_id, watch_completion, watched_s,"
    "    converted_at)"
    " SELECT DISTINCT ON (e.exposure_id, w.v)"
    "        e.exposure_id, e.experiment_id, e.variant, e.user_id, w.v, w.c, w.s, "
    FROM_US("w.t")
    "   FROM jsonb_to_recordset($1::jsonb) AS w(u text, v text, t bigint, c real, s integer)"
    "   JOIN experiments.exposures e"
    "     ON e.user_id = w.u"
    "    AND e.served_at >= " FROM_US("w.t") " - $2::integer * interval '1 second'"
    "    AND e.served_at <= " FROM_US("w.t")
    "    AND w.v = ANY (e.video_ids)"
    "  ORDER BY e.exposure_id, w.v, w.t"
    " ON CONFLICT (exposure_id, video_id) DO NOTHING";

static const char s_sql_results_head[] =
    "SELECT name, status, " EPOCH_US("start_at") ", " EPOCH_US("end_at")
    "  FROM experiments.experiments WHERE experiment_id = $1::uuid";

static const char s_sql_results[] =
    "SELECT v.name, v.is_control,"
    "       coalesce(x.users, 0), coalesce(x.exposures, 0),"
    "       coalesce(o.conversions, 0), coalesce(o.outcomes, 0),"
    "       coalesce(o.n_completion, 0), o.mean_completion, o.var_completion, o.mean_watched_s"
    "  FROM experiments.variants v"
    "  LEFT JOIN (SELECT variant, count(DISTINCT user_id) AS users, count(*) AS exposures"
    "               FROM experiments.exposures WHERE experiment_id = $1::uuid"
    "              GROUP BY variant) x ON x.variant = v.name"
    "  LEFT JOIN (SELECT variant, count(DISTINCT exposure_id) AS conversions,"
    "                    count(*) AS outcomes, count(watch_completion) AS n_completion,"
    "                    avg(watch_completion)::float8 AS mean_completion,"
    "                    var_samp(watch_completion)::float8 AS var_completion,"
    "                    avg(watched_s)::float8 AS mean_watched_s"
    "               FROM experiments.outcomes WHERE experiment_id = $1::uuid"
    "              GROUP BY variant) o ON o.variant = v.name"
    " WHERE v.experiment_id = $1::uuid"
    " ORDER BY v.position, v.name";

// clang-format on

//  ---- small helpers ---------------------------------------------------

static int s_notify(PGconn *conn, const char *id, char *err, size_t errlen)
{
    const char *p[] = {id};
    PGresult *res = pg_conn_query(conn, s_sql_notify, 1, p, PGRES_TUPLES_OK,
                                  "notify experiment change", err, errlen);
    if (!res)
        return EXPERIMENT_STORE_INTERNAL;
    PQclear(res);
    return EXPERIMENT_STORE_OK;
}

static int s_check_id(const char *id, char *err, size_t errlen)
{
    if (!model_registry_uuid_valid(id)) {
        errbuf_set(err, errlen, "experiment id must be a uuid");
        return EXPERIMENT_STORE_INVALID;
    }
    return EXPERIMENT_STORE_OK;
}

static int64_t s_i64(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

//  A JSON number, or null for NaN and infinities.
static json_t *s_num(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

//  True if text is 1..EXPERIMENT_STORE_ID_MAX bytes (optional: NULL ok).
static bool s_id_ok(const char *text, bool optional)
{
    if (!text)
        return optional;
    size_t n = strnlen(text, EXPERIMENT_STORE_ID_MAX + 1);
    return n > 0 && n <= EXPERIMENT_STORE_ID_MAX;
}

//  ---- create ----------------------------------------------------------

//  Checks a pinned model: it exists, has an artifact, and its type is the
//  variant's (if the variant names one).
static int s_check_model(PGconn *conn, int i, const experiment_variant_t *v, char *err,
                         size_t errlen)
{
    const char *p[] = {v->model_id};
    PGresult *res =
        pg_conn_query(conn, s_sql_model, 1, p, PGRES_TUPLES_OK, "look up model", err, errlen);
    if (!res)
        return EXPERIMENT_STORE_INTERNAL;
    int rc = EXPERIMENT_STORE_OK;
    if (PQntuples(res) == 0) {
        errbuf_set(err, errlen, "variants[%d].model_id: no model %s", i, v->model_id);
        rc = EXPERIMENT_STORE_INVALID;
    } else {
        const char *type = PQgetvalue(res, 0, 0), *status = PQgetvalue(res, 0, 1);
        if (strcmp(status, "succeeded") != 0 && strcmp(status, "active") != 0 &&
            strcmp(status, "retired") != 0) {
            errbuf_set(err, errlen,
                       "variants[%d].model_id: model %s is %s; only a trained model (succeeded, "
                       "active or retired) can serve",
                       i, v->model_id, status);
            rc = EXPERIMENT_STORE_INVALID;
        } else if (v->model_type[0] && strcmp(type, v->model_type) != 0) {
            errbuf_set(err, errlen, "variants[%d].model_id: model %s is a %s model, not %s", i,
                       v->model_id, type, v->model_type);
            rc = EXPERIMENT_STORE_INVALID;
        }
    }
    PQclear(res);
    return rc;
}

static int s_create_in_tx(PGconn *conn, const experiment_t *def, const char *who, char *id_out,
                          char *err, size_t errlen)
{
    for (int i = 0; i < def->n_variants; i++) {
        if (!def->variants[i].model_id[0])
            continue;
        int rc = s_check_model(conn, i, &def->variants[i], err, errlen);
        if (rc != EXPERIMENT_STORE_OK)
            return rc;
    }
    char start[24], end[24];
    snprintf(start, sizeof start, "%" PRId64, def->start_us);
    snprintf(end, sizeof end, "%" PRId64, def->end_us);
    const char *p[] = {def->name,
                       def->description,
                       def->layer,
                       def->salt,
                       def->has_start ? start : NULL,
                       def->has_end ? end : NULL,
                       who};
    pg_conn_diag_t fail;
    PGresult *res = pg_conn_query_diag(conn, s_sql_insert_experiment, 7, p, PGRES_TUPLES_OK,
                                       "insert experiment", &fail, err, errlen);
    if (!res) {
        if (strcmp(fail.sqlstate, SQLSTATE_UNIQUE) == 0 &&
            strcmp(fail.constraint, NAME_CONSTRAINT) == 0) {
            errbuf_set(err, errlen, "name: an experiment named \"%s\" already exists", def->name);
            return EXPERIMENT_STORE_CONFLICT;
        }
        if (strcmp(fail.sqlstate, SQLSTATE_CHECK) == 0)
            return EXPERIMENT_STORE_INVALID;
        return EXPERIMENT_STORE_INTERNAL;
    }
    snprintf(id_out, EXPERIMENT_ID_LEN + 1, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    for (int i = 0; i < def->n_variants; i++) {
        const experiment_variant_t *v = &def->variants[i];
        char weight[16], position[16];
        snprintf(weight, sizeof weight, "%d", v->weight_bp);
        snprintf(position, sizeof position, "%d", i);
        const char *vp[] = {id_out,
                            v->name,
                            weight,
                            v->model_type[0] ? v->model_type : NULL,
                            v->model_id[0] ? v->model_id : NULL,
                            v->params_json[0] ? v->params_json : "{}",
                            v->is_control ? "true" : "false",
                            position};
        res = pg_conn_query_diag(conn, s_sql_insert_variant, 8, vp, PGRES_COMMAND_OK,
                                 "insert variant", &fail, err, errlen);
        if (!res) {
            //  A model deleted since the check, or a CHECK the validation
            //  missed: the input's fault either way.
            if (strcmp(fail.sqlstate, SQLSTATE_FOREIGN_KEY) == 0 ||
                strcmp(fail.sqlstate, SQLSTATE_CHECK) == 0) {
                errbuf_set(err, errlen, "variants[%d]: refused by the database", i);
                return EXPERIMENT_STORE_INVALID;
            }
            return EXPERIMENT_STORE_INTERNAL;
        }
        PQclear(res);
    }
    return s_notify(conn, id_out, err, errlen);
}

int experiment_store_create(PGconn *conn, const experiment_t *def, const char *created_by,
                            char id_out[EXPERIMENT_ID_LEN + 1], char *err, size_t errlen)
{
    id_out[0] = '\0';
    if (!def || experiment_validate(def, err, errlen) != 0)
        return EXPERIMENT_STORE_INVALID;
    const char *who = created_by ? created_by : "unknown";
    if (!*who || strlen(who) > EXPERIMENT_WHO_MAX) {
        errbuf_set(err, errlen, "created_by: must be 1..%d bytes", EXPERIMENT_WHO_MAX);
        return EXPERIMENT_STORE_INVALID;
    }
    if (pg_conn_command(conn, "BEGIN", "begin", err, errlen) != 0)
        return EXPERIMENT_STORE_INTERNAL;
    int rc = s_create_in_tx(conn, def, who, id_out, err, errlen);
    if (rc == EXPERIMENT_STORE_OK) {
        pg_conn_diag_t fail;
        //  The deferred weights trigger runs here.
        PGresult *res = pg_conn_query_diag(conn, "COMMIT", 0, NULL, PGRES_COMMAND_OK,
                                           "commit experiment", &fail, err, errlen);
        if (!res)
            rc = strcmp(fail.sqlstate, SQLSTATE_CHECK) == 0 ? EXPERIMENT_STORE_INVALID
                                                            : EXPERIMENT_STORE_INTERNAL;
        PQclear(res);
    }
    if (rc != EXPERIMENT_STORE_OK) {
        pg_conn_rollback(conn);
        id_out[0] = '\0';
    }
    return rc;
}

//  ---- status ----------------------------------------------------------

//  The transition, inside the transaction; *changed set if one was made.
static int s_set_status_in_tx(PGconn *conn, const char *id, const char *status, bool *changed,
                              char *err, size_t errlen)
{
    const char *p[] = {id};
    PGresult *res =
        pg_conn_query(conn, s_sql_lock, 1, p, PGRES_TUPLES_OK, "lock experiment", err, errlen);
    if (!res)
        return EXPERIMENT_STORE_INTERNAL;
    if (PQntuples(res) == 0) {
        PQclear(res);
        errbuf_set(err, errlen, "no experiment %s", id);
        return EXPERIMENT_STORE_NOT_FOUND;
    }
    char current[16], layer[EXPERIMENT_LAYER_MAX + 1];
    snprintf(current, sizeof current, "%s", PQgetvalue(res, 0, 0));
    bool ended = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    snprintf(layer, sizeof layer, "%s", PQgetvalue(res, 0, 2));
    PQclear(res);

    if (strcmp(current, status) == 0)
        return EXPERIMENT_STORE_OK;
    bool start = strcmp(status, "running") == 0;
    if (start && strcmp(current, "stopped") == 0) {
        errbuf_set(err, errlen, "a stopped experiment cannot be restarted; create a new one");
        return EXPERIMENT_STORE_CONFLICT;
    }
    if (start && ended) {
        errbuf_set(err, errlen, "end_at has already passed");
        return EXPERIMENT_STORE_CONFLICT;
    }
    pg_conn_diag_t fail;
    res = pg_conn_query_diag(conn, start ? s_sql_start : s_sql_stop, 1, p, PGRES_COMMAND_OK,
                             start ? "start experiment" : "stop experiment", &fail, err, errlen);
    if (!res) {
        if (strcmp(fail.sqlstate, SQLSTATE_UNIQUE) == 0 &&
            strcmp(fail.constraint, LAYER_INDEX) == 0) {
            //  Name the one in the way; the transaction is aborted, so ask
            //  after the rollback (best effort: it may have stopped since).
            pg_conn_rollback(conn);
            char other[EXPERIMENT_NAME_MAX + 1] = "another experiment";
            const char *lp[] = {layer};
            PGresult *o = PQexecParams(conn, s_sql_running_in_layer, 1, NULL, lp, NULL, NULL, 0);
            if (PQresultStatus(o) == PGRES_TUPLES_OK && PQntuples(o) == 1)
                snprintf(other, sizeof other, "experiment \"%s\"", PQgetvalue(o, 0, 0));
            PQclear(o);
            errbuf_set(err, errlen, "%s is already running in layer \"%s\"", other, layer);
            return EXPERIMENT_STORE_CONFLICT;
        }
        return EXPERIMENT_STORE_INTERNAL;
    }
    PQclear(res);
    *changed = true;
    return s_notify(conn, id, err, errlen);
}

int experiment_store_set_status(PGconn *conn, const char *id, const char *status, bool *changed,
                                char *err, size_t errlen)
{
    bool dummy;
    if (!changed)
        changed = &dummy;
    *changed = false;
    int rc = s_check_id(id, err, errlen);
    if (rc != EXPERIMENT_STORE_OK)
        return rc;
    if (!status || (strcmp(status, "running") != 0 && strcmp(status, "stopped") != 0)) {
        errbuf_set(err, errlen, "status: must be running or stopped");
        return EXPERIMENT_STORE_INVALID;
    }
    if (pg_conn_command(conn, "BEGIN", "begin", err, errlen) != 0)
        return EXPERIMENT_STORE_INTERNAL;
    rc = s_set_status_in_tx(conn, id, status, changed, err, errlen);
    if (rc == EXPERIMENT_STORE_OK &&
        pg_conn_command(conn, "COMMIT", "commit experiment status", err, errlen) != 0)
        rc = EXPERIMENT_STORE_INTERNAL;
    if (rc != EXPERIMENT_STORE_OK) {
        pg_conn_rollback(conn);
        *changed = false;
    }
    return rc;
}

//  ---- loading ---------------------------------------------------------

//  Fills the experiment columns of row r into *exp (variants zeroed).
static void s_load_experiment(const PGresult *res, int r, experiment_t *exp)
{
    memset(exp, 0, sizeof *exp);
    snprintf(exp->id, sizeof exp->id, "%s", PQgetvalue(res, r, 0));
    snprintf(exp->name, sizeof exp->name, "%s", PQgetvalue(res, r, 1));
    snprintf(exp->description, sizeof exp->description, "%s", PQgetvalue(res, r, 2));
    snprintf(exp->status, sizeof exp->status, "%s", PQgetvalue(res, r, 3));
    snprintf(exp->layer, sizeof exp->layer, "%s", PQgetvalue(res, r, 4));
    snprintf(exp->salt, sizeof exp->salt, "%s", PQgetvalue(res, r, 5));
    if ((exp->has_start = !PQgetisnull(res, r, 6)))
        exp->start_us = s_i64(res, r, 6);
    if ((exp->has_end = !PQgetisnull(res, r, 7)))
        exp->end_us = s_i64(res, r, 7);
    snprintf(exp->created_by, sizeof exp->created_by, "%s", PQgetvalue(res, r, 8));
    if ((exp->has_created = !PQgetisnull(res, r, 9)))
        exp->created_us = s_i64(res, r, 9);
}

//  Adds the variant columns of row r to *exp. Returns 0, or -1 with the
//  reason if they do not make a valid variant.
static int s_load_variant(const PGresult *res, int r, experiment_t *exp, char *err, size_t errlen)
{
    if (exp->n_variants >= EXPERIMENT_VARIANTS_MAX) {
        errbuf_set(err, errlen, "variants: more than %d", EXPERIMENT_VARIANTS_MAX);
        return -1;
    }
    int i = exp->n_variants;
    experiment_variant_t *v = &exp->variants[i];
    snprintf(v->name, sizeof v->name, "%s", PQgetvalue(res, r, 10));
    const char *weight = PQgetvalue(res, r, 11);
    char *end = NULL;
    errno = 0;
    long weight_bp = strtol(weight, &end, 10);
    if (end == weight || *end != '\0' || errno == ERANGE || weight_bp < INT_MIN ||
        weight_bp > INT_MAX) {
        errbuf_set(err, errlen, "variants[%d].weight_bp: '%.32s' is not an integer", i, weight);
        return -1;
    }
    v->weight_bp = (int)weight_bp;
    snprintf(v->model_type, sizeof v->model_type, "%s", PQgetvalue(res, r, 12));
    snprintf(v->model_id, sizeof v->model_id, "%s", PQgetvalue(res, r, 13));
    v->is_control = strcmp(PQgetvalue(res, r, 15), "t") == 0;
    json_t *params = json_loads(PQgetvalue(res, r, 14), 0, NULL);
    char field[32];
    snprintf(field, sizeof field, "variants[%d].params", i);
    int rc = experiment_params_parse(params, field, &v->params, v->params_json,
                                     sizeof v->params_json, err, errlen);
    json_decref(params);
    if (rc != 0)
        return -1;
    exp->n_variants++;
    return 0;
}

//  Runs the loader for one id (or NULL) and statuses (an array literal,
//  or NULL) and calls emit for each experiment, valid or not (err_text
//  NULL or the reason it is not). Returns 0, or -1 with the reason in err.
typedef int (*s_emit_fn)(void *arg, const experiment_t *exp, const char *invalid);

static int s_load(PGconn *conn, const char *id, const char *statuses, s_emit_fn emit, void *arg,
                  char *err, size_t errlen)
{
    const char *p[] = {id, statuses};
    PGresult *res =
        pg_conn_query(conn, s_sql_load, 2, p, PGRES_TUPLES_OK, "load experiments", err, errlen);
    if (!res)
        return -1;
    int rc = 0;
    experiment_t *exp = malloc(sizeof *exp);
    if (!exp) {
        errbuf_set(err, errlen, "out of memory");
        rc = -1;
        goto done;
    }
    int rows = PQntuples(res);
    for (int r = 0; r < rows && rc == 0;) {
        s_load_experiment(res, r, exp);
        char why[256] = "";
        bool bad = false;
        int first = r;
        //  The rows of one experiment are consecutive (ORDER BY).
        for (; r < rows && strcmp(PQgetvalue(res, r, 0), PQgetvalue(res, first, 0)) == 0; r++)
            if (!bad && !PQgetisnull(res, r, 10))
                bad = s_load_variant(res, r, exp, why, sizeof why) != 0;
        if (!bad)
            bad = experiment_validate(exp, why, sizeof why) != 0;
        rc = emit(arg, exp, bad ? why : NULL);
        if (rc != 0)
            errbuf_set(err, errlen, "out of memory");
    }
done:
    free(exp);
    PQclear(res);
    return rc;
}

typedef struct {
    experiment_set_t *set;
    int skipped;
} s_set_arg_t;

static int s_emit_set(void *arg, const experiment_t *exp, const char *invalid)
{
    s_set_arg_t *a = arg;
    if (invalid) {
        a->skipped++;
        return 0;
    }
    return experiment_set_add(a->set, exp);
}

experiment_set_t *experiment_store_load_set(PGconn *conn, int *skipped, char *err, size_t errlen)
{
    s_set_arg_t arg = {.set = experiment_set_new()};
    if (!arg.set) {
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    if (s_load(conn, NULL, "{running,stopped}", s_emit_set, &arg, err, errlen) != 0) {
        experiment_set_destroy(&arg.set);
        return NULL;
    }
    if (skipped)
        *skipped = arg.skipped;
    return arg.set;
}

typedef struct {
    experiment_t *found;
    char why[256];
} s_one_arg_t;

static int s_emit_one(void *arg, const experiment_t *exp, const char *invalid)
{
    s_one_arg_t *a = arg;
    if (invalid) {
        snprintf(a->why, sizeof a->why, "%s", invalid);
        return 0;
    }
    a->found = malloc(sizeof *a->found);
    if (!a->found)
        return -1;
    *a->found = *exp;
    return 0;
}

int experiment_store_fetch(PGconn *conn, const char *id, experiment_t **out, char *err,
                           size_t errlen)
{
    *out = NULL;
    int rc = s_check_id(id, err, errlen);
    if (rc != EXPERIMENT_STORE_OK)
        return rc;
    s_one_arg_t arg = {0};
    if (s_load(conn, id, NULL, s_emit_one, &arg, err, errlen) != 0)
        return EXPERIMENT_STORE_INTERNAL;
    if (arg.why[0]) {
        errbuf_set(err, errlen, "stored experiment %s is not valid: %s", id, arg.why);
        return EXPERIMENT_STORE_INTERNAL;
    }
    if (!arg.found) {
        errbuf_set(err, errlen, "no experiment %s", id);
        return EXPERIMENT_STORE_NOT_FOUND;
    }
    *out = arg.found;
    return EXPERIMENT_STORE_OK;
}

int experiment_store_get(PGconn *conn, const char *id, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    experiment_t *exp;
    int rc = experiment_store_fetch(conn, id, &exp, err, errlen);
    if (rc != EXPERIMENT_STORE_OK)
        return rc;
    *out = experiment_to_json(exp);
    experiment_destroy(&exp);
    if (!*out) {
        errbuf_set(err, errlen, "out of memory");
        return EXPERIMENT_STORE_INTERNAL;
    }
    return EXPERIMENT_STORE_OK;
}

//  A list keeps even an invalid stored row visible (an admin must see
//  it to fix it), rendered as far as it loaded.
static int s_emit_json(void *arg, const experiment_t *exp, const char *invalid)
{
    (void)invalid;
    return json_array_append_new(arg, experiment_to_json(exp));
}

int experiment_store_list(PGconn *conn, const char *const *statuses, json_t **out, char *err,
                          size_t errlen)
{
    *out = NULL;
    char filter[64] = "{";
    for (size_t i = 0; statuses && statuses[i]; i++) {
        const char *s = statuses[i];
        if (i >= 3 ||
            (strcmp(s, "draft") != 0 && strcmp(s, "running") != 0 && strcmp(s, "stopped") != 0)) {
            errbuf_set(err, errlen, "status: must be draft, running or stopped");
            return EXPERIMENT_STORE_INVALID;
        }
        strcat(filter, i ? "," : "");
        strcat(filter, s);
    }
    strcat(filter, "}");
    json_t *list = json_array();
    if (!list) {
        errbuf_set(err, errlen, "out of memory");
        return EXPERIMENT_STORE_INTERNAL;
    }
    if (s_load(conn, NULL, statuses ? filter : NULL, s_emit_json, list, err, errlen) != 0) {
        json_decref(list);
        return EXPERIMENT_STORE_INTERNAL;
    }
    *out = json_pack("{s:o}", "experiments", list);
    if (!*out) {
        errbuf_set(err, errlen, "out of memory");
        return EXPERIMENT_STORE_INTERNAL;
    }
    return EXPERIMENT_STORE_OK;
}

//  ---- exposures and outcomes ------------------------------------------

//  Appends a string member; false if text is not valid UTF-8 (jansson
//  refuses it) or memory ran out.
static bool s_put(json_t *obj, const char *key, const char *text)
{
    json_t *s = json_string(text);
    return s && json_object_set_new(obj, key, s) == 0;
}

//  Runs a statement taking one jsonb parameter (and optionally a second
//  text one); *tuples gets the affected row count.
static int s_bulk(PGconn *conn, const char *sql, json_t *doc, const char *second, const char *what,
                  long *tuples, char *err, size_t errlen)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    if (!text) {
        errbuf_set(err, errlen, "%s: out of memory", what);
        return EXPERIMENT_STORE_INTERNAL;
    }
    const char *p[] = {text, second};
    PGresult *res =
        pg_conn_query(conn, sql, second ? 2 : 1, p, PGRES_COMMAND_OK, what, err, errlen);
    free(text);
    if (!res)
        return EXPERIMENT_STORE_INTERNAL;
    if (tuples)
        *tuples = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return EXPERIMENT_STORE_OK;
}

static json_t *s_exposure_json(const experiment_exposure_t *row)
{
    json_t *obj = json_object(), *ids = json_array();
    bool ok = obj && ids && s_put(obj, "e", row->experiment_id) && s_put(obj, "v", row->variant) &&
              s_put(obj, "u", row->user_id) &&
              (!row->request_id || s_put(obj, "r", row->request_id));
    for (size_t k = 0; ok && k < row->n_videos; k++)
        ok = s_id_ok(row->video_ids[k], false) &&
             json_array_append_new(ids, json_string(row->video_ids[k])) == 0;
    if (ok && row->served_us > 0)
        ok = json_object_set_new(obj, "t", json_integer(row->served_us)) == 0;
    if (ok && json_object_set_new(obj, "ids", ids) == 0)
        return obj;
    if (!ok)
        json_decref(ids);
    json_decref(obj);
    return NULL;
}

int experiment_store_record_exposures(PGconn *conn, const experiment_exposure_t *rows, size_t n,
                                      char *err, size_t errlen)
{
    if (n == 0)
        return EXPERIMENT_STORE_OK;
    json_t *doc = json_array();
    if (!doc) {
        errbuf_set(err, errlen, "out of memory");
        return EXPERIMENT_STORE_INTERNAL;
    }
    int rc = EXPERIMENT_STORE_OK;
    for (size_t i = 0; i < n && rc == EXPERIMENT_STORE_OK; i++) {
        const experiment_exposure_t *row = &rows[i];
        if (!model_registry_uuid_valid(row->experiment_id) || !row->variant ||
            strnlen(row->variant, EXPERIMENT_VARIANT_NAME_MAX + 1) > EXPERIMENT_VARIANT_NAME_MAX ||
            !*row->variant || !s_id_ok(row->user_id, false) || !s_id_ok(row->request_id, true) ||
            (row->n_videos > 0 && !row->video_ids)) {
            errbuf_set(err, errlen, "exposure %zu: bad experiment id, variant, user or request id",
                       i);
            rc = EXPERIMENT_STORE_INVALID;
            break;
        }
        json_t *obj = s_exposure_json(row);
        if (!obj) {
            errbuf_set(err, errlen, "exposure %zu: ids must be 1..%d bytes of UTF-8", i,
                       EXPERIMENT_STORE_ID_MAX);
            rc = EXPERIMENT_STORE_INVALID;
        } else if (json_array_append_new(doc, obj) != 0) {
            errbuf_set(err, errlen, "out of memory");
            rc = EXPERIMENT_STORE_INTERNAL;
        }
    }
    if (rc == EXPERIMENT_STORE_OK)
        rc = s_bulk(conn, s_sql_exposures, doc, NULL, "insert exposures", NULL, err, errlen);
    json_decref(doc);
    return rc;
}

static json_t *s_watch_json(const experiment_watch_t *w)
{
    json_t *obj = json_object();
    double c = w->completion;
    json_t *completion = isnan(c) || c < 0 ? json_null() : json_real(c > 1 ? 1 : c);
    json_t *watched = w->watched_s < 0 ? json_null() : json_integer(w->watched_s);
    if (obj && s_put(obj, "u", w->user_id) && s_put(obj, "v", w->video_id) &&
        json_object_set_new(obj, "t", json_integer(w->watched_us)) == 0 &&
        json_object_set_new(obj, "c", completion) == 0 &&
        json_object_set_new(obj, "s", watched) == 0)
        return obj;
    json_decref(obj);
    return NULL;
}

int experiment_store_attribute_watches(PGconn *conn, const experiment_watch_t *watches, size_t n,
                                       int window_s, long *attributed, char *err, size_t errlen)
{
    if (attributed)
        *attributed = 0;
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
        errbuf_set(err, errlen, "attribution must run inside the caller's open transaction");
        return EXPERIMENT_STORE_INVALID;
    }
    if (window_s < 1 || window_s > EXPERIMENT_STORE_WINDOW_MAX) {
        errbuf_set(err, errlen, "window_s: must be 1..%d", EXPERIMENT_STORE_WINDOW_MAX);
        return EXPERIMENT_STORE_INVALID;
    }
    if (n == 0)
        return EXPERIMENT_STORE_OK;
    json_t *doc = json_array();
    if (!doc) {
        errbuf_set(err, errlen, "out of memory");
        return EXPERIMENT_STORE_INTERNAL;
    }
    int rc = EXPERIMENT_STORE_OK;
    for (size_t i = 0; i < n && rc == EXPERIMENT_STORE_OK; i++) {
        json_t *obj = s_id_ok(watches[i].user_id, false) && s_id_ok(watches[i].video_id, false)
                          ? s_watch_json(&watches[i])
                          : NULL;
        if (!obj) {
            errbuf_set(err, errlen, "watch %zu: user and video ids must be 1..%d bytes of UTF-8", i,
                       EXPERIMENT_STORE_ID_MAX);
            rc = EXPERIMENT_STORE_INVALID;
        } else if (json_array_append_new(doc, obj) != 0) {
            errbuf_set(err, errlen, "out of memory");
            rc = EXPERIMENT_STORE_INTERNAL;
        }
    }
    char window[16];
    snprintf(window, sizeof window, "%d", window_s);
    if (rc == EXPERIMENT_STORE_OK)
        rc = s_bulk(conn, s_sql_attribute, doc, window, "attribute watches", attributed, err,
                    errlen);
    json_decref(doc);
    return rc;
}

//  ---- results ---------------------------------------------------------

typedef struct {
    long users, exposures, conversions, outcomes, n_completion;
    double mean_completion, var_completion, mean_watched_s; //  NAN if none
} s_arm_t;

static double s_double_or_nan(const PGresult *res, int r, int c)
{
    return PQgetisnull(res, r, c) ? NAN : strtod(PQgetvalue(res, r, c), NULL);
}

static json_t *s_vs_control(const s_arm_t *control, const s_arm_t *arm)
{
    experiment_stats_ztest_t zt;
    bool have_z = experiment_stats_two_proportion(control->conversions, control->exposures,
                                                  arm->conversions, arm->exposures, &zt) == 0;
    double lift = have_z && zt.p1 > 0 ? zt.diff / zt.p1 : NAN;
    experiment_stats_welch_t wt;
    bool have_t = experiment_stats_welch(control->n_completion, control->mean_completion,
                                         control->var_completion, arm->n_completion,
                                         arm->mean_completion, arm->var_completion, &wt) == 0;
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "rate_difference",
                     s_num(have_z ? zt.diff : NAN), "relative_lift", s_num(lift), "z",
                     s_num(have_z ? zt.z : NAN), "p_value", s_num(have_z ? zt.p_value : NAN),
                     "significant", have_z ? json_boolean(zt.p_value < 0.05) : json_null(),
                     "completion_difference",
                     s_num(arm->mean_completion - control->mean_completion), "completion_p_value",
                     s_num(have_t ? wt.p_value : NAN));
}

static json_t *s_arm_json(const char *name, bool is_control, const s_arm_t *arm,
                          const s_arm_t *control)
{
    double lo = NAN, hi = NAN;
    bool have_ci = experiment_stats_wilson(arm->conversions, arm->exposures, EXPERIMENT_STATS_Z95,
                                           &lo, &hi) == 0;
    double rate = arm->exposures > 0 ? (double)arm->conversions / (double)arm->exposures : NAN;
    json_t *ci = have_ci ? json_pack("{s:f, s:f}", "lower", lo, "upper", hi) : json_null();
    json_t *vs = is_control || !control ? json_null() : s_vs_control(control, arm);
    return json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o}", "name", name,
                     "is_control", is_control, "users", (json_int_t)arm->users, "exposures",
                     (json_int_t)arm->exposures, "conversions", (json_int_t)arm->conversions,
                     "outcomes", (json_int_t)arm->outcomes, "conversion_rate", s_num(rate),
                     "conversion_rate_ci", ci, "mean_watch_completion", s_num(arm->mean_completion),
                     "mean_watched_s", s_num(arm->mean_watched_s), "vs_control", vs);
}

int experiment_store_results(PGconn *conn, const char *id, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    int rc = s_check_id(id, err, errlen);
    if (rc != EXPERIMENT_STORE_OK)
        return rc;
    const char *p[] = {id};
    PGresult *head = pg_conn_query(conn, s_sql_results_head, 1, p, PGRES_TUPLES_OK,
                                   "read experiment", err, errlen);
    if (!head)
        return EXPERIMENT_STORE_INTERNAL;
    PGresult *res = NULL;
    s_arm_t *arms = NULL;
    json_t *variants = NULL;
    if (PQntuples(head) == 0) {
        errbuf_set(err, errlen, "no experiment %s", id);
        rc = EXPERIMENT_STORE_NOT_FOUND;
        goto done;
    }
    res =
        pg_conn_query(conn, s_sql_results, 1, p, PGRES_TUPLES_OK, "aggregate results", err, errlen);
    if (!res) {
        rc = EXPERIMENT_STORE_INTERNAL;
        goto done;
    }
    int n = PQntuples(res), control = -1;
    arms = calloc(n > 0 ? (size_t)n : 1, sizeof *arms);
    variants = json_array();
    if (!arms || !variants) {
        errbuf_set(err, errlen, "out of memory");
        rc = EXPERIMENT_STORE_INTERNAL;
        goto done;
    }
    for (int r = 0; r < n; r++) {
        s_arm_t *a = &arms[r];
        a->users = strtol(PQgetvalue(res, r, 2), NULL, 10);
        a->exposures = strtol(PQgetvalue(res, r, 3), NULL, 10);
        a->conversions = strtol(PQgetvalue(res, r, 4), NULL, 10);
        a->outcomes = strtol(PQgetvalue(res, r, 5), NULL, 10);
        a->n_completion = strtol(PQgetvalue(res, r, 6), NULL, 10);
        a->mean_completion = s_double_or_nan(res, r, 7);
        a->var_completion = s_double_or_nan(res, r, 8);
        a->mean_watched_s = s_double_or_nan(res, r, 9);
        if (strcmp(PQgetvalue(res, r, 1), "t") == 0 && control < 0)
            control = r;
    }
    for (int r = 0; r < n; r++) {
        json_t *arm = s_arm_json(PQgetvalue(res, r, 0), r == control, &arms[r],
                                 control >= 0 ? &arms[control] : NULL);
        if (!arm || json_array_append_new(variants, arm) != 0) {
            errbuf_set(err, errlen, "out of memory");
            rc = EXPERIMENT_STORE_INTERNAL;
            goto done;
        }
    }
    char start[40], end[40];
    json_t *start_j =
        PQgetisnull(head, 0, 2)
            ? json_null()
            : json_string(experiment_time_format(s_i64(head, 0, 2), start, sizeof start));
    json_t *end_j = PQgetisnull(head, 0, 3)
                        ? json_null()
                        : json_string(experiment_time_format(s_i64(head, 0, 3), end, sizeof end));
    *out = json_pack("{s:s, s:s, s:s, s:o, s:o, s:f, s:O}", "experiment_id", id, "name",
                     PQgetvalue(head, 0, 0), "status", PQgetvalue(head, 0, 1), "start_at", start_j,
                     "end_at", end_j, "confidence_level", 0.95, "variants", variants);
    if (!*out) {
        errbuf_set(err, errlen, "out of memory");
        rc = EXPERIMENT_STORE_INTERNAL;
    }
done:
    json_decref(variants);
    free(arms);
    PQclear(res);
    PQclear(head);
    return rc;
}
