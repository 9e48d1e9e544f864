/*  experiment.c: experiment definitions, validation and assignment (see experiment.h). */
#include "experiment.h"

#include <ctype.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "errbuf.h"
#include "model_registry.h"

struct experiment_set_t {
    experiment_t **items;
    size_t size;
    size_t capacity;
};

static const char *s_model_types[] = {"collaborative", "content", "hybrid",
                                      "popularity",    "ease",    "item_knn"};

//  ---- small helpers ---------------------------------------------------

static void s_copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

//  1..max bytes of [A-Za-z0-9_-].
static bool s_ident_valid(const char *text, size_t max)
{
    size_t n = text ? strnlen(text, max + 1) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (!isalnum(c) && c != '_' && c != '-')
            return false;
    }
    return true;
}

//  No control characters (newlines and tabs allowed if multiline).
static bool s_text_clean(const char *text, bool multiline)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (multiline && (*p == '\n' || *p == '\t' || *p == '\r'))
            continue;
        if (*p < 0x20 || *p == 0x7f)
            return false;
    }
    return true;
}

static bool s_model_type_known(const char *type)
{
    for (size_t i = 0; i < sizeof s_model_types / sizeof *s_model_types; i++)
        if (strcmp(type, s_model_types[i]) == 0)
            return true;
    return false;
}

//  An optional string member: absent or null leaves *out NULL (returns
//  0); a string of at most max bytes is returned borrowed; anything else
//  is an error naming the field.
static int s_opt_string(const json_t *doc, const char *key, const char *field, size_t max,
                        const char **out, char *err, size_t errlen)
{
    *out = NULL;
    const json_t *v = json_object_get(doc, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        errbuf_set(err, errlen, "%s: must be a string", field);
        return -1;
    }
    if (json_string_length(v) > max || strlen(json_string_value(v)) != json_string_length(v)) {
        errbuf_set(err, errlen, "%s: must be at most %zu bytes, without NUL", field, max);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

//  Refuses members of doc not in allowed; prefix names doc in the message.
static int s_known_keys(const json_t *doc, const char *const *allowed, size_t count,
                        const char *prefix, char *err, size_t errlen)
{
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)doc, key, value)
    {
        bool known = false;
        for (size_t i = 0; i < count && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known) {
            errbuf_set(err, errlen, "%s%.64s: unknown field", prefix, key);
            return -1;
        }
    }
    return 0;
}

//  ---- params ----------------------------------------------------------

int experiment_params_parse(const json_t *params, const char *field, experiment_params_t *out,
                            char *json_out, size_t json_outlen, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    s_copy(json_out, json_outlen, "{}");
    if (!params || json_is_null(params))
        return 0;
    if (!json_is_object(params)) {
        errbuf_set(err, errlen, "%s: must be an object", field);
        return -1;
    }
    static const struct {
        const char *key;
        double max;
    } keys[] = {{"content_k", EXPERIMENT_CONTENT_K_MAX}, {"content_floor", 1}, {"ease_share", 1}};
    bool *has[] = {&out->has_content_k, &out->has_content_floor, &out->has_ease_share};
    double *val[] = {&out->content_k, &out->content_floor, &out->ease_share};
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)params, key, v)
    {
        size_t k = 0;
        while (k < 3 && strcmp(key, keys[k].key) != 0)
            k++;
        if (k == 3) {
            errbuf_set(err, errlen,
                       "%s.%.64s: unknown parameter (known: content_k, content_floor, "
                       "ease_share)",
                       field, key);
            return -1;
        }
        double x = json_is_number(v) ? json_number_value(v) : NAN;
        if (!isfinite(x) || x < 0 || x > keys[k].max) {
            errbuf_set(err, errlen, "%s.%s: must be a number in [0, %g]", field, key, keys[k].max);
            return -1;
        }
        *has[k] = true;
        *val[k] = x;
    }
    //  Canonical text: sorted keys, shortest exact-enough reals, so that
    //  equal params compare equal as text.
    json_t *canon = json_object();
    for (size_t k = 0; canon && k < 3; k++)
        if (*has[k] && json_object_set_new(canon, keys[k].key, json_real(*val[k])) != 0) {
            json_decref(canon);
            canon = NULL;
        }
    char *text =
        canon ? json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(canon);
    if (!text || strlen(text) >= json_outlen) {
        free(text);
        errbuf_set(err, errlen, "%s: out of memory", field);
        return -1;
    }
    s_copy(json_out, json_outlen, text);
    free(text);
    return 0;
}

//  ---- validation ------------------------------------------------------

int experiment_validate(const experiment_t *self, char *err, size_t errlen)
{
    size_t name_len = strnlen(self->name, sizeof self->name);
    if (name_len == 0 || name_len > EXPERIMENT_NAME_MAX || !s_text_clean(self->name, false)) {
        errbuf_set(err, errlen, "name: must be 1..%d bytes without control characters",
                   EXPERIMENT_NAME_MAX);
        return -1;
    }
    if (!s_text_clean(self->description, true)) {
        errbuf_set(err, errlen, "description: must not contain control characters");
        return -1;
    }
    if (!s_ident_valid(self->layer, EXPERIMENT_LAYER_MAX)) {
        errbuf_set(err, errlen, "layer: must be 1..%d characters of [A-Za-z0-9_-]",
                   EXPERIMENT_LAYER_MAX);
        return -1;
    }
    if (!s_ident_valid(self->salt, EXPERIMENT_SALT_MAX)) {
        errbuf_set(err, errlen, "salt: must be 1..%d characters of [A-Za-z0-9_-]",
                   EXPERIMENT_SALT_MAX);
        return -1;
    }
    if (strcmp(self->status, "draft") != 0 && strcmp(self->status, "running") != 0 &&
        strcmp(self->status, "stopped") != 0) {
        errbuf_set(err, errlen, "status: must be draft, running or stopped");
        return -1;
    }
    if (self->has_start && self->has_end && self->end_us <= self->start_us &&
        strcmp(self->status, "draft") == 0) {
        errbuf_set(err, errlen, "end_at: must be after start_at");
        return -1;
    }
    if (self->n_variants < EXPERIMENT_VARIANTS_MIN || self->n_variants > EXPERIMENT_VARIANTS_MAX) {
        errbuf_set(err, errlen, "variants: must have %d..%d variants, not %d",
                   EXPERIMENT_VARIANTS_MIN, EXPERIMENT_VARIANTS_MAX, self->n_variants);
        return -1;
    }
    int total = 0, controls = 0, control_at = -1;
    for (int i = 0; i < self->n_variants; i++) {
        const experiment_variant_t *v = &self->variants[i];
        if (!s_ident_valid(v->name, EXPERIMENT_VARIANT_NAME_MAX)) {
            errbuf_set(err, errlen, "variants[%d].name: must be 1..%d characters of [A-Za-z0-9_-]",
                       i, EXPERIMENT_VARIANT_NAME_MAX);
            return -1;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(v->name, self->variants[j].name) == 0) {
                errbuf_set(err, errlen,
                           "variants[%d].name: \"%s\" is also the name of variants[%d]", i, v->name,
                           j);
                return -1;
            }
        if (v->weight_bp < 1 || v->weight_bp > EXPERIMENT_BUCKETS) {
            errbuf_set(err, errlen, "variants[%d].weight: must be > 0 and <= 100", i);
            return -1;
        }
        total += v->weight_bp;
        if (v->model_type[0] && !s_model_type_known(v->model_type)) {
            errbuf_set(
                err, errlen,
                "variants[%d].model_type: \"%s\" is not one of collaborative, content, hybrid, "
                "popularity, ease, item_knn",
                i, v->model_type);
            return -1;
        }
        if (v->model_id[0] && !model_registry_uuid_valid(v->model_id)) {
            errbuf_set(err, errlen, "variants[%d].model_id: must be a model id (uuid)", i);
            return -1;
        }
        const experiment_params_t *p = &v->params;
        bool any_param = p->has_content_k || p->has_content_floor || p->has_ease_share;
        if (any_param && v->model_type[0] && strcmp(v->model_type, "hybrid") != 0) {
            errbuf_set(
                err, errlen,
                "variants[%d].params: blend parameters apply to a hybrid (or default) variant, "
                "not %s",
                i, v->model_type);
            return -1;
        }
        if (v->is_control) {
            if (controls++ > 0) {
                errbuf_set(
                    err, errlen,
                    "variants[%d].is_control: only one control allowed (variants[%d] is one)", i,
                    control_at);
                return -1;
            }
            control_at = i;
        }
    }
    if (controls != 1) {
        errbuf_set(err, errlen, "variants: exactly one variant must be the control");
        return -1;
    }
    if (total != EXPERIMENT_BUCKETS) {
        errbuf_set(err, errlen, "variants: weights sum to %d.%02d, not 100", total / 100,
                   total % 100);
        return -1;
    }
    return 0;
}

//  ---- parsing ---------------------------------------------------------

//  Percent with at most two decimals, (0, 100], to basis points.
static int s_weight(const json_t *v, const char *field, int *bp, char *err, size_t errlen)
{
    if (!json_is_number(v)) {
        errbuf_set(err, errlen, "%s: must be a number (percent)", field);
        return -1;
    }
    double pct = json_number_value(v);
    if (!isfinite(pct) || pct <= 0 || pct > 100) {
        errbuf_set(err, errlen, "%s: must be > 0 and <= 100 (percent)", field);
        return -1;
    }
    double scaled = pct * 100;
    double rounded = round(scaled);
    //  12.34 * 100 is 1233.9999999999998 in binary; anything further off
    //  had a third decimal.
    if (fabs(scaled - rounded) > 1e-6) {
        errbuf_set(err, errlen, "%s: at most two decimals (%.17g)", field, pct);
        return -1;
    }
    *bp = (int)rounded;
    if (*bp < 1) {
        errbuf_set(err, errlen, "%s: must be at least 0.01", field);
        return -1;
    }
    return 0;
}

static int s_parse_variant(const json_t *doc, int i, experiment_variant_t *out, bool *flagged,
                           char *err, size_t errlen)
{
    char field[64];
    snprintf(field, sizeof field, "variants[%d]", i);
    if (!json_is_object(doc)) {
        errbuf_set(err, errlen, "%s: must be an object", field);
        return -1;
    }
    static const char *allowed[] = {"name",     "weight", "model_type",
                                    "model_id", "params", "is_control"};
    char prefix[72];
    snprintf(prefix, sizeof prefix, "%s.", field);
    if (s_known_keys(doc, allowed, sizeof allowed / sizeof *allowed, prefix, err, errlen) != 0)
        return -1;

    const char *text;
    snprintf(field, sizeof field, "variants[%d].name", i);
    if (s_opt_string(doc, "name", field, EXPERIMENT_VARIANT_NAME_MAX, &text, err, errlen) != 0)
        return -1;
    if (!text || !s_ident_valid(text, EXPERIMENT_VARIANT_NAME_MAX)) {
        errbuf_set(err, errlen, "%s: required, 1..%d characters of [A-Za-z0-9_-]", field,
                   EXPERIMENT_VARIANT_NAME_MAX);
        return -1;
    }
    s_copy(out->name, sizeof out->name, text);

    snprintf(field, sizeof field, "variants[%d].weight", i);
    const json_t *w = json_object_get(doc, "weight");
    if (!w) {
        errbuf_set(err, errlen, "%s: required", field);
        return -1;
    }
    if (s_weight(w, field, &out->weight_bp, err, errlen) != 0)
        return -1;

    snprintf(field, sizeof field, "variants[%d].model_type", i);
    if (s_opt_string(doc, "model_type", field, 64, &text, err, errlen) != 0)
        return -1;
    if (text && *text && !s_model_type_known(text)) {
        errbuf_set(err, errlen,
                   "%s: \"%s\" is not one of collaborative, content, hybrid, popularity, ease, "
                   "item_knn",
                   field, text);
        return -1;
    }
    s_copy(out->model_type, sizeof out->model_type, text);

    snprintf(field, sizeof field, "variants[%d].model_id", i);
    if (s_opt_string(doc, "model_id", field, 64, &text, err, errlen) != 0)
        return -1;
    if (text && *text && !model_registry_uuid_valid(text)) {
        errbuf_set(err, errlen, "%s: must be a model id (uuid)", field);
        return -1;
    }
    s_copy(out->model_id, sizeof out->model_id, text);
    for (char *p = out->model_id; *p; p++)
        *p = (char)tolower((unsigned char)*p);

    snprintf(field, sizeof field, "variants[%d].params", i);
    if (experiment_params_parse(json_object_get(doc, "params"), field, &out->params,
                                out->params_json, sizeof out->params_json, err, errlen) != 0)
        return -1;

    const json_t *c = json_object_get(doc, "is_control");
    if (c && !json_is_null(c) && !json_is_boolean(c)) {
        errbuf_set(err, errlen, "variants[%d].is_control: must be true or false", i);
        return -1;
    }
    out->is_control = json_is_true(c); //  false when absent (json_is_true (NULL))
    *flagged = *flagged || out->is_control;
    return 0;
}

static int s_parse_time(const json_t *doc, const char *key, bool *has, int64_t *us, char *err,
                        size_t errlen)
{
    const char *text;
    if (s_opt_string(doc, key, key, 64, &text, err, errlen) != 0)
        return -1;
    *has = text != NULL;
    if (text && experiment_time_parse(text, us) != 0) {
        errbuf_set(err, errlen, "%s: must be an RFC 3339 time such as 2024-05-01T12:00:00Z", key);
        return -1;
    }
    return 0;
}

//  A fresh random salt: 16 random bytes in hex.
static int s_random_salt(char *out, size_t outlen, char *err, size_t errlen)
{
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1 || outlen < 2 * sizeof raw + 1) {
        errbuf_set(err, errlen, "salt: no random bytes available");
        return -1;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

experiment_t *experiment_parse(const json_t *doc, char *err, size_t errlen)
{
    experiment_t *self = NULL;
    if (!json_is_object(doc)) {
        errbuf_set(err, errlen, "body: must be a JSON object");
        goto err;
    }
    static const char *allowed[] = {"name",     "description", "layer",   "salt",
                                    "start_at", "end_at",      "variants"};
    if (s_known_keys(doc, allowed, sizeof allowed / sizeof *allowed, "", err, errlen) != 0)
        goto err;
    self = calloc(1, sizeof *self);
    if (!self) {
        errbuf_set(err, errlen, "out of memory");
        goto err;
    }
    s_copy(self->status, sizeof self->status, "draft");

    const char *text;
    if (s_opt_string(doc, "name", "name", EXPERIMENT_NAME_MAX, &text, err, errlen) != 0)
        goto err;
    if (!text || !*text || !s_text_clean(text, false)) {
        errbuf_set(err, errlen, "name: required, 1..%d bytes without control characters",
                   EXPERIMENT_NAME_MAX);
        goto err;
    }
    s_copy(self->name, sizeof self->name, text);
    if (s_opt_string(doc, "description", "description", EXPERIMENT_DESCRIPTION_MAX, &text, err,
                     errlen) != 0)
        goto err;
    s_copy(self->description, sizeof self->description, text);
    if (s_opt_string(doc, "layer", "layer", EXPERIMENT_LAYER_MAX, &text, err, errlen) != 0)
        goto err;
    s_copy(self->layer, sizeof self->layer, text ? text : EXPERIMENT_DEFAULT_LAYER);
    if (s_opt_string(doc, "salt", "salt", EXPERIMENT_SALT_MAX, &text, err, errlen) != 0)
        goto err;
    if (text)
        s_copy(self->salt, sizeof self->salt, text);
    else if (s_random_salt(self->salt, sizeof self->salt, err, errlen) != 0)
        goto err;
    if (s_parse_time(doc, "start_at", &self->has_start, &self->start_us, err, errlen) != 0 ||
        s_parse_time(doc, "end_at", &self->has_end, &self->end_us, err, errlen) != 0)
        goto err;

    const json_t *variants = json_object_get(doc, "variants");
    if (!json_is_array(variants)) {
        errbuf_set(err, errlen, "variants: required, an array of %d..%d variants",
                   EXPERIMENT_VARIANTS_MIN, EXPERIMENT_VARIANTS_MAX);
        goto err;
    }
    size_t n = json_array_size(variants);
    if (n < EXPERIMENT_VARIANTS_MIN || n > EXPERIMENT_VARIANTS_MAX) {
        errbuf_set(err, errlen, "variants: must have %d..%d variants, not %zu",
                   EXPERIMENT_VARIANTS_MIN, EXPERIMENT_VARIANTS_MAX, n);
        goto err;
    }
    bool flagged = false;
    for (size_t i = 0; i < n; i++) {
        if (s_parse_variant(json_array_get(variants, i), (int)i, &self->variants[i], &flagged, err,
                            errlen) != 0)
            goto err;
        self->n_variants = (int)i + 1;
    }
    if (!flagged)
        self->variants[0].is_control = true;
    if (experiment_validate(self, err, errlen) != 0)
        goto err;
    return self;
err:
    free(self);
    return NULL;
}

experiment_t *experiment_parse_text(const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc = text ? json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!doc) {
        errbuf_set(err, errlen, "body: not valid JSON (%s)", text ? jerr.text : "empty");
        return NULL;
    }
    experiment_t *self = experiment_parse(doc, err, errlen);
    json_decref(doc);
    return self;
}

void experiment_destroy(experiment_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

const experiment_variant_t *experiment_control(const experiment_t *self)
{
    for (int i = 0; self && i < self->n_variants; i++)
        if (self->variants[i].is_control)
            return &self->variants[i];
    return NULL;
}

//  ---- rendering -------------------------------------------------------

static json_t *s_time_or_null(bool has, int64_t us)
{
    char buf[40];
    return has ? json_string(experiment_time_format(us, buf, sizeof buf)) : json_null();
}

static json_t *s_string_or_null(const char *text)
{
    return text && *text ? json_string(text) : json_null();
}

static json_t *s_variant_to_json(const experiment_variant_t *v)
{
    json_t *params = json_loads(v->params_json, 0, NULL);
    if (!json_is_object(params)) {
        json_decref(params);
        params = json_object();
    }
    json_t *weight = v->weight_bp % 100 == 0 ? json_integer(v->weight_bp / 100)
                                             : json_real(v->weight_bp / 100.0);
    return json_pack("{s:s, s:o, s:o, s:o, s:o, s:b}", "name", v->name, "weight", weight,
                     "model_type", s_string_or_null(v->model_type), "model_id",
                     s_string_or_null(v->model_id), "params", params, "is_control", v->is_control);
}

json_t *experiment_to_json(const experiment_t *self)
{
    json_t *variants = json_array();
    for (int i = 0; variants && i < self->n_variants; i++)
        if (json_array_append_new(variants, s_variant_to_json(&self->variants[i])) != 0) {
            json_decref(variants);
            return NULL;
        }
    //  json_pack steals the "o" references even when it fails.
    return json_pack("{s:o, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "experiment_id",
                     s_string_or_null(self->id), "name", self->name, "description",
                     self->description, "status", self->status, "layer", self->layer, "salt",
                     self->salt, "start_at", s_time_or_null(self->has_start, self->start_us),
                     "end_at", s_time_or_null(self->has_end, self->end_us), "created_by",
                     s_string_or_null(self->created_by), "created_at",
                     s_time_or_null(self->has_created, self->created_us), "variants", variants);
}

//  ---- assignment ------------------------------------------------------

int experiment_bucket(const char *salt, const char *user_id)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int rc = -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return -1;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(ctx, salt, strlen(salt)) == 1 && EVP_DigestUpdate(ctx, ":", 1) == 1 &&
        EVP_DigestUpdate(ctx, user_id, strlen(user_id)) == 1 &&
        EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen >= 8) {
        uint64_t x = 0;
        for (int i = 0; i < 8; i++)
            x = x << 8 | md[i];
        rc = (int)(x % EXPERIMENT_BUCKETS);
    }
    EVP_MD_CTX_free(ctx);
    return rc;
}

bool experiment_is_live(const experiment_t *self, int64_t now_us)
{
    return strcmp(self->status, "running") == 0 && (!self->has_start || now_us >= self->start_us) &&
           (!self->has_end || now_us < self->end_us);
}

const experiment_variant_t *experiment_assign(const experiment_t *self, const char *user_id,
                                              int64_t now_us)
{
    const experiment_variant_t *control = experiment_control(self);
    if (!control || !user_id || !experiment_is_live(self, now_us))
        return control;
    int bucket = experiment_bucket(self->salt, user_id);
    if (bucket < 0)
        return control;
    int upto = 0;
    for (int i = 0; i < self->n_variants; i++) {
        upto += self->variants[i].weight_bp;
        if (bucket < upto)
            return &self->variants[i];
    }
    return control; //  weights short of 10000 (not validated): the rest is control
}

//  ---- RFC 3339 --------------------------------------------------------

//  n decimal digits at p into *out; false if any is not a digit.
static bool s_digits(const char *p, int n, int *out)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return false;
        x = x * 10 + (p[i] - '0');
    }
    *out = x;
    return true;
}

static int s_days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

int experiment_time_parse(const char *text, int64_t *out_us)
{
    int year, mon, day, hour, min, sec;
    const char *p = text;
    if (!p || strnlen(p, 20) < 20 || !s_digits(p, 4, &year) || p[4] != '-' ||
        !s_digits(p + 5, 2, &mon) || p[7] != '-' || !s_digits(p + 8, 2, &day) ||
        (p[10] != 'T' && p[10] != 't' && p[10] != ' ') || !s_digits(p + 11, 2, &hour) ||
        p[13] != ':' || !s_digits(p + 14, 2, &min) || p[16] != ':' || !s_digits(p + 17, 2, &sec))
        return -1;
    if (year < 1 || mon < 1 || mon > 12 || day < 1 || day > s_days_in_month(year, mon) ||
        hour > 23 || min > 59 || sec > 59)
        return -1;
    p += 19;
    int64_t frac_us = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (isdigit((unsigned char)*p)) {
            if (digits < 6)
                frac_us = frac_us * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0 || digits > 9)
            return -1;
        for (int i = digits; i < 6; i++)
            frac_us *= 10;
    }
    int offset_s = 0;
    if (*p == 'Z' || *p == 'z')
        p++;
    else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!s_digits(p + 1, 2, &oh) || p[3] != ':' || !s_digits(p + 4, 2, &om) || oh > 23 ||
            om > 59)
            return -1;
        offset_s = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else
        return -1;
    if (*p)
        return -1;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = mon - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = min,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    *out_us = ((int64_t)t - offset_s) * 1000000 + frac_us;
    return 0;
}

char *experiment_time_format(int64_t us, char *out, size_t outlen)
{
    int64_t secs = us / 1000000, rem = us % 1000000;
    if (rem < 0) {
        rem += 1000000;
        secs--;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        s_copy(out, outlen, "");
        return out;
    }
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(rem / 1000));
    return out;
}

//  ---- snapshots -------------------------------------------------------

experiment_set_t *experiment_set_new(void)
{
    return calloc(1, sizeof(experiment_set_t));
}

void experiment_set_destroy(experiment_set_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    experiment_set_t *self = *self_p;
    for (size_t i = 0; i < self->size; i++)
        free(self->items[i]);
    free(self->items);
    free(self);
    *self_p = NULL;
}

int experiment_set_add(experiment_set_t *self, const experiment_t *exp)
{
    if (self->size == self->capacity) {
        size_t capacity = self->capacity ? self->capacity * 2 : 8;
        experiment_t **items = realloc(self->items, capacity * sizeof(experiment_t *));
        if (!items)
            return -1;
        self->items = items;
        self->capacity = capacity;
    }
    experiment_t *copy = malloc(sizeof *copy);
    if (!copy)
        return -1;
    *copy = *exp;
    self->items[self->size++] = copy;
    return 0;
}

size_t experiment_set_size(const experiment_set_t *self)
{
    return self ? self->size : 0;
}

const experiment_t *experiment_set_at(const experiment_set_t *self, size_t i)
{
    return self && i < self->size ? self->items[i] : NULL;
}

const experiment_t *experiment_set_find(const experiment_set_t *self, const char *id)
{
    for (size_t i = 0; self && id && i < self->size; i++)
        if (strcasecmp(self->items[i]->id, id) == 0)
            return self->items[i];
    return NULL;
}

const experiment_t *experiment_set_live_in_layer(const experiment_set_t *self, const char *layer,
                                                 int64_t now_us)
{
    for (size_t i = 0; self && layer && i < self->size; i++)
        if (strcmp(self->items[i]->layer, layer) == 0 && experiment_is_live(self->items[i], now_us))
            return self->items[i];
    return NULL;
}
