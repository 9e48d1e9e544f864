/*  event.c: parsing and validation of the platform's user events (see
    event.h for the schemas and the rules).

    Parsing is strict on purpose: a producer that sends "12" for an integer
    or 12.5 for a duration has a bug we want on the dead-letter topic, not
    silently coerced into the feature store. Timestamps are parsed by hand
    (no strptime/timegm): both depend on the process's locale and TZ, and
    neither checks the day of the month against the calendar.
*/
#include "event.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define US_PER_S INT64_C(1000000)

event_rules_t event_rules_default(void)
{
    event_rules_t rules = {
        .rating_min = 0.5, .rating_max = 5.0, .max_future_s = 300, .max_duration_s = 86400};
    return rules;
}

const char *event_kind_name(event_kind_t kind)
{
    switch (kind) {
    case EVENT_WATCH:
        return "watch";
    case EVENT_RATING:
        return "rating";
    case EVENT_WATCHLIST_ADD:
        return "watchlist_add";
    case EVENT_WATCHLIST_REMOVE:
        return "watchlist_remove";
    }
    return NULL;
}

double event_weight(const event_t *event, const event_rules_t *rules)
{
    event_rules_t defaults = event_rules_default();
    if (!rules)
        rules = &defaults;
    switch (event->kind) {
    case EVENT_WATCH:
        if (event->total_duration <= 0 || event->watched_duration <= 0)
            return 0;
        if (event->watched_duration >= event->total_duration)
            return 1; //  replays count as complete, not more
        return (double)event->watched_duration / (double)event->total_duration;
    case EVENT_RATING:
        if (!(rules->rating_max > 0) || !(event->rating > 0))
            return 0;
        return event->rating >= rules->rating_max ? 1 : event->rating / rules->rating_max;
    case EVENT_WATCHLIST_ADD:
        return 1;
    case EVENT_WATCHLIST_REMOVE:
        return 0;
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Timestamps

//  Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
//  (H. Hinnant's days_from_civil): exact for any year, no TZ involved.
static int64_t s_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int s_days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return 29;
    return days[m - 1];
}

//  Reads exactly n decimal digits at *p into *value and advances *p.
//  Returns 0, or -1 if any of them is not a digit.
static int s_digits(const char **p, int n, int *value)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *value = v;
    return 0;
}

//  RFC 3339 section 5.6 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM).
//  Accepted as the RFC allows: 't'/'z' lowercase, a space for 'T' (the
//  RFC's note), seconds 60 (a leap second, counted as the next second:
//  POSIX time has no leap seconds), "-00:00". The fraction may have 1..9
//  digits; digits past the sixth are truncated (microsecond storage).
int event_parse_time(const char *text, int64_t *us)
{
    if (!text)
        return -1;
    const char *p = text;
    int year, month, day, hour, minute, second;
    if (s_digits(&p, 4, &year) || *p++ != '-' || s_digits(&p, 2, &month) || *p++ != '-' ||
        s_digits(&p, 2, &day))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    p++;
    if (s_digits(&p, 2, &hour) || *p++ != ':' || s_digits(&p, 2, &minute) || *p++ != ':' ||
        s_digits(&p, 2, &second))
        return -1;
    int64_t frac_us = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        for (; *p >= '0' && *p <= '9'; p++, n++) {
            if (n < 6)
                frac_us = frac_us * 10 + (*p - '0');
        }
        if (n == 0 || n > 9)
            return -1;
        for (; n < 6; n++)
            frac_us *= 10;
    }
    int offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1;
        int oh, om;
        if (s_digits(&p, 2, &oh) || *p++ != ':' || s_digits(&p, 2, &om))
            return -1;
        if (oh > 23 || om > 59)
            return -1;
        offset_s = sign * (oh * 3600 + om * 60);
    } else {
        return -1; //  a zone is required: a local time is ambiguous
    }
    if (*p != '\0')
        return -1;
    if (month < 1 || month > 12 || day < 1 || day > s_days_in_month(year, month) || hour > 23 ||
        minute > 59 || second > 60)
        return -1;
    int64_t seconds = s_days_from_civil(year, month, day) * 86400 + (int64_t)hour * 3600 +
                      (int64_t)minute * 60 + second - offset_s;
    *us = seconds * US_PER_S + frac_us;
    return 0;
}

//  ---------------------------------------------------------------------
//  Parsing

//  Writes a reason and makes sure it is one line of printable ASCII, as
//  it ends up in a Kafka header and a log line. Returns -1 for `return
//  s_fail(...)`.
static int s_fail(char *reason, size_t reasonlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int s_fail(char *reason, size_t reasonlen, const char *fmt, ...)
{
    if (!reason || reasonlen == 0)
        return -1;
    va_list args;
    va_start(args, fmt);
    vsnprintf(reason, reasonlen, fmt, args);
    va_end(args);
    for (char *c = reason; *c; c++) {
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            *c = '?';
    }
    return -1;
}

static const char *s_type_name(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

//  The field's value, or NULL with the reason written.
static json_t *s_field(json_t *root, const char *name, char *reason, size_t reasonlen)
{
    json_t *value = json_object_get(root, name);
    if (!value)
        s_fail(reason, reasonlen, "%s: missing", name);
    return value;
}

//  A string field of min..max bytes, each in lo..hi, copied into buf
//  (max + 1 bytes). Returns 0 or -1 with the reason.
static int s_string(json_t *root, const char *name, size_t min, size_t max, unsigned char lo,
                    char *buf, char *reason, size_t reasonlen)
{
    json_t *value = s_field(root, name, reason, reasonlen);
    if (!value)
        return -1;
    if (!json_is_string(value))
        return s_fail(reason, reasonlen, "%s: must be a string, not %s", name, s_type_name(value));
    const char *text = json_string_value(value);
    size_t len = json_string_length(value);
    if (len < min)
        return s_fail(reason, reasonlen, "%s: must not be empty", name);
    if (len > max)
        return s_fail(reason, reasonlen, "%s: %zu bytes, at most %zu allowed", name, len, max);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < lo || c > 0x7e)
            return s_fail(reason, reasonlen, "%s: byte %zu (0x%02x) is not printable ASCII%s", name,
                          i, c, lo == 0x21 ? " (no spaces)" : "");
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    return 0;
}

//  An integer field: a JSON integer, not a real (12.0 is a real) nor a
//  string. Returns 0 or -1 with the reason.
static int s_integer(json_t *root, const char *name, int64_t *out, char *reason, size_t reasonlen)
{
    json_t *value = s_field(root, name, reason, reasonlen);
    if (!value)
        return -1;
    if (!json_is_integer(value))
        return s_fail(reason, reasonlen, "%s: must be an integer, not %s", name,
                      s_type_name(value));
    *out = (int64_t)json_integer_value(value);
    return 0;
}

//  A date-time field: name's value parsed into *out, not before 1970 and,
//  if future_checked, not more than rules->max_future_s ahead of now_us.
//  Returns 0 or -1 with the reason.
static int s_time_value(json_t *value, const char *name, bool future_checked,
                        const event_rules_t *rules, int64_t now_us, int64_t *out, char *reason,
                        size_t reasonlen)
{
    if (!json_is_string(value))
        return s_fail(reason, reasonlen, "%s: must be a string, not %s", name, s_type_name(value));
    //  A C string: a parser stopping at an embedded NUL must not accept a
    //  prefix. Jansson rejects \u0000 without JSON_ALLOW_NUL, checked anyway.
    if (strlen(json_string_value(value)) != json_string_length(value) ||
        event_parse_time(json_string_value(value), out) != 0)
        return s_fail(reason, reasonlen,
                      "%s: not an RFC 3339 date-time with a zone "
                      "(YYYY-MM-DDTHH:MM:SS[.frac]Z or +HH:MM)",
                      name);
    if (*out < 0)
        return s_fail(reason, reasonlen, "%s: before 1970-01-01T00:00:00Z", name);
    if (future_checked && rules->max_future_s >= 0 &&
        *out - now_us > rules->max_future_s * US_PER_S)
        return s_fail(reason, reasonlen, "%s: more than %lld s in the future", name,
                      (long long)rules->max_future_s);
    return 0;
}

static int s_timestamp(json_t *root, const char *name, const event_rules_t *rules, int64_t now_us,
                       int64_t *out, char *reason, size_t reasonlen)
{
    json_t *value = s_field(root, name, reason, reasonlen);
    if (!value)
        return -1;
    return s_time_value(value, name, true, rules, now_us, out, reason, reasonlen);
}

static int s_parse_fields(event_source_t source, json_t *root, const event_rules_t *rules,
                          int64_t now_us, event_t *ev, char *reason, size_t reasonlen)
{
    if (source == EVENT_SOURCE_VIDEO_UPSERTED)
        return s_fail(reason, reasonlen,
                      "source: a catalogue change, not a user event (event_parse_video)");
    if ((int)source < 0 || source >= EVENT_SOURCE_COUNT)
        return s_fail(reason, reasonlen, "source: unknown event source %d", (int)source);
    if (s_string(root, "user_id", 1, EVENT_ID_MAX, 0x21, ev->user_id, reason, reasonlen) ||
        s_string(root, "video_id", 1, EVENT_ID_MAX, 0x21, ev->video_id, reason, reasonlen))
        return -1;

    switch (source) {
    case EVENT_SOURCE_WATCHED:
        ev->kind = EVENT_WATCH;
        if (s_integer(root, "watched_duration", &ev->watched_duration, reason, reasonlen) ||
            s_integer(root, "total_duration", &ev->total_duration, reason, reasonlen))
            return -1;
        if (ev->watched_duration < 0)
            return s_fail(reason, reasonlen, "watched_duration: must be >= 0");
        if (ev->watched_duration > rules->max_duration_s)
            return s_fail(reason, reasonlen, "watched_duration: must be <= %lld",
                          (long long)rules->max_duration_s);
        if (ev->total_duration <= 0)
            return s_fail(reason, reasonlen, "total_duration: must be > 0");
        if (ev->total_duration > rules->max_duration_s)
            return s_fail(reason, reasonlen, "total_duration: must be <= %lld",
                          (long long)rules->max_duration_s);
        if (s_string(root, "device", 0, EVENT_DEVICE_MAX, 0x20, ev->device, reason, reasonlen))
            return -1;
        break;
    case EVENT_SOURCE_RATED: {
        ev->kind = EVENT_RATING;
        json_t *value = s_field(root, "rating", reason, reasonlen);
        if (!value)
            return -1;
        if (!json_is_number(value))
            return s_fail(reason, reasonlen, "rating: must be a number, not %s",
                          s_type_name(value));
        ev->rating = json_number_value(value);
        //  Written so that a NaN (not producible by JSON, but) fails too.
        if (!(ev->rating >= rules->rating_min && ev->rating <= rules->rating_max))
            return s_fail(reason, reasonlen, "rating: must be within %g..%g", rules->rating_min,
                          rules->rating_max);
        break;
    }
    case EVENT_SOURCE_WATCHLIST: {
        json_t *value = s_field(root, "action", reason, reasonlen);
        if (!value)
            return -1;
        if (!json_is_string(value))
            return s_fail(reason, reasonlen, "action: must be a string, not %s",
                          s_type_name(value));
        const char *action = json_string_value(value);
        if (strcmp(action, "added") == 0 && json_string_length(value) == 5)
            ev->kind = EVENT_WATCHLIST_ADD;
        else if (strcmp(action, "removed") == 0 && json_string_length(value) == 7)
            ev->kind = EVENT_WATCHLIST_REMOVE;
        else
            return s_fail(reason, reasonlen, "action: must be \"added\" or \"removed\"");
        break;
    }
    default:
        return s_fail(reason, reasonlen, "source: unknown event source %d", (int)source);
    }
    return s_timestamp(root, "timestamp", rules, now_us, &ev->occurred_us, reason, reasonlen);
}

//  The payload as a JSON object (the caller json_decrefs it), or NULL with
//  the reason: size, emptiness, syntax (duplicate keys included), type.
static json_t *s_load(const void *payload, size_t len, char *reason, size_t reasonlen)
{
    if (len > EVENT_MAX_PAYLOAD) {
        s_fail(reason, reasonlen, "payload: %zu bytes, more than %d allowed", len,
               EVENT_MAX_PAYLOAD);
        return NULL;
    }
    if (len == 0 || !payload) {
        s_fail(reason, reasonlen, "payload: empty");
        return NULL;
    }
    json_error_t error;
    //  DECODE_ANY so that a scalar gets the clearer "not an object" reason.
    json_t *root = json_loadb(payload, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
    if (!root) {
        s_fail(reason, reasonlen, "payload: invalid JSON at byte %d: %s", error.position,
               error.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        s_fail(reason, reasonlen, "payload: must be a JSON object, not %s", s_type_name(root));
        json_decref(root);
        return NULL;
    }
    return root;
}

int event_parse(event_source_t source, const void *payload, size_t len, const event_rules_t *rules,
                int64_t now_us, event_t *out, char *reason, size_t reasonlen)
{
    event_rules_t defaults = event_rules_default();
    if (!rules)
        rules = &defaults;
    json_t *root = s_load(payload, len, reason, reasonlen);
    if (!root)
        return -1;
    int rc = -1;
    event_t ev;
    memset(&ev, 0, sizeof ev);
    if (s_parse_fields(source, root, rules, now_us, &ev, reason, reasonlen) == 0) {
        *out = ev;
        rc = 0;
    }
    json_decref(root);
    return rc;
}

//  ---------------------------------------------------------------------
//  VideoUpserted

//  Checks that a JSON string is 1..max bytes of text (UTF-8, which jansson
//  has verified, without control characters) and copies it into buf (max +
//  1 bytes). what names it in the reason ("title", "genres: item 3").
//  Returns 0 or -1 with the reason.
static int s_text_value(json_t *value, const char *what, size_t max, char *buf, char *reason,
                        size_t reasonlen)
{
    if (!json_is_string(value))
        return s_fail(reason, reasonlen, "%s: must be a string, not %s", what, s_type_name(value));
    const char *text = json_string_value(value);
    size_t len = json_string_length(value);
    if (len == 0)
        return s_fail(reason, reasonlen, "%s: must not be empty", what);
    if (len > max)
        return s_fail(reason, reasonlen, "%s: %zu bytes, at most %zu allowed", what, len, max);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f)
            return s_fail(reason, reasonlen, "%s: byte %zu (0x%02x) is a control character", what,
                          i, c);
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    return 0;
}

//  An array field of at most max_count distinct texts of 1..max_len bytes,
//  copied into rows of stride bytes at buf; *count set. Returns 0 or -1
//  with the reason.
static int s_text_array(json_t *root, const char *name, size_t max_count, size_t max_len, char *buf,
                        size_t stride, size_t *count, char *reason, size_t reasonlen)
{
    json_t *array = s_field(root, name, reason, reasonlen);
    if (!array)
        return -1;
    if (!json_is_array(array))
        return s_fail(reason, reasonlen, "%s: must be an array, not %s", name, s_type_name(array));
    size_t n = json_array_size(array);
    if (n > max_count)
        return s_fail(reason, reasonlen, "%s: %zu items, at most %zu allowed", name, n, max_count);
    for (size_t i = 0; i < n; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s: item %zu", name, i);
        char *row = buf + i * stride;
        if (s_text_value(json_array_get(array, i), what, max_len, row, reason, reasonlen) != 0)
            return -1;
        //  Quadratic, over at most a few dozen short strings.
        for (size_t j = 0; j < i; j++) {
            if (strcmp(buf + j * stride, row) == 0)
                return s_fail(reason, reasonlen, "%s: item %zu repeats item %zu", name, i, j);
        }
    }
    *count = n;
    return 0;
}

static int s_parse_video(json_t *root, const event_rules_t *rules, int64_t now_us,
                         event_video_t *video, char *reason, size_t reasonlen)
{
    if (s_string(root, "video_id", 1, EVENT_ID_MAX, 0x21, video->video_id, reason, reasonlen))
        return -1;
    json_t *value = s_field(root, "title", reason, reasonlen);
    if (!value ||
        s_text_value(value, "title", EVENT_TITLE_MAX, video->title, reason, reasonlen) != 0)
        return -1;
    if (s_text_array(root, "genres", EVENT_GENRES_MAX, EVENT_GENRE_MAX, video->genres[0],
                     sizeof video->genres[0], &video->genre_count, reason, reasonlen) ||
        s_text_array(root, "tags", EVENT_TAGS_MAX, EVENT_TAG_MAX, video->tags[0],
                     sizeof video->tags[0], &video->tag_count, reason, reasonlen))
        return -1;
    if (s_integer(root, "duration", &video->duration_s, reason, reasonlen))
        return -1;
    if (video->duration_s <= 0)
        return s_fail(reason, reasonlen, "duration: must be > 0");
    if (video->duration_s > rules->max_duration_s)
        return s_fail(reason, reasonlen, "duration: must be <= %lld",
                      (long long)rules->max_duration_s);
    //  Optional: absent and null both mean "not known".
    value = json_object_get(root, "published_at");
    if (value && !json_is_null(value)) {
        if (s_time_value(value, "published_at", false, rules, now_us, &video->published_us, reason,
                         reasonlen))
            return -1;
        video->has_published = true;
    }
    value = s_field(root, "status", reason, reasonlen);
    if (!value)
        return -1;
    if (!json_is_string(value))
        return s_fail(reason, reasonlen, "status: must be a string, not %s", s_type_name(value));
    const char *status = json_string_value(value);
    if (strcmp(status, "active") == 0 && json_string_length(value) == 6)
        video->retired = false;
    else if (strcmp(status, "retired") == 0 && json_string_length(value) == 7)
        video->retired = true;
    else
        return s_fail(reason, reasonlen, "status: must be \"active\" or \"retired\"");
    return s_timestamp(root, "updated_at", rules, now_us, &video->updated_us, reason, reasonlen);
}

int event_parse_video(const void *payload, size_t len, const event_rules_t *rules, int64_t now_us,
                      event_video_t *out, char *reason, size_t reasonlen)
{
    event_rules_t defaults = event_rules_default();
    if (!rules)
        rules = &defaults;
    json_t *root = s_load(payload, len, reason, reasonlen);
    if (!root)
        return -1;
    //  Parsed aside (a few KiB of stack): *out stays untouched on failure.
    event_video_t video;
    memset(&video, 0, sizeof video);
    int rc = -1;
    if (s_parse_video(root, rules, now_us, &video, reason, reasonlen) == 0) {
        *out = video;
        rc = 0;
    }
    json_decref(root);
    return rc;
}
