/*  event.h: the platform's user events, parsed and validated.

    Inputs (JSON values on Kafka, or JSON lines for `recsd import events`):
      VideoWatched     {user_id, video_id, watched_duration:int,
                        total_duration:int, timestamp, device}
      VideoRated       {user_id, video_id, rating:number, timestamp}
      WatchlistUpdated {user_id, video_id, action:"added"|"removed", timestamp}
    The payload must be one JSON object (UTF-8, no duplicate keys at any
    depth, at most EVENT_MAX_PAYLOAD bytes). Unknown fields are ignored;
    missing or mistyped fields are errors, and types are strict: an integer
    field given as "12", 12.5 or 12.0 is rejected; rating takes an integer
    or a real. Every field listed above is required (device may be "").

    timestamp is an RFC 3339 date-time with a zone: "2024-05-01T12:00:00Z",
    "2024-05-01T14:00:00.250+02:00"; 't'/'z' lowercase and a space for the
    'T' are accepted; the fraction has 1..9 digits (truncated to
    microseconds); every field is range-checked against the calendar (leap
    years included); second 60 (a leap second) counts as the next second.

    ids are 1..EVENT_ID_MAX printable ASCII bytes (0x21..0x7e, no spaces).
    device is 0..EVENT_DEVICE_MAX printable ASCII bytes (spaces allowed).

    Rules (event_rules_t): 0 <= watched_duration, 0 < total_duration
    (watched may exceed total: replays), both <= max_duration_s; rating in
    [rating_min, rating_max]; timestamp not more than max_future_s ahead of
    `now` and not before 1970.

    Nothing here allocates on the caller's behalf: event_t is a plain value.
    The functions are pure (no I/O, no global state) and thread-safe.
*/
#ifndef RECSD_EVENT_H
#define RECSD_EVENT_H

#include <stddef.h>
#include <stdint.h>

#define EVENT_ID_MAX 64
#define EVENT_DEVICE_MAX 64
#define EVENT_MAX_PAYLOAD 65536 //  bytes; larger payloads are rejected unread

//  Which stream an event came from; decides the schema it must follow.
typedef enum {
    EVENT_SOURCE_WATCHED = 0,   //  analytics-service.video-watched
    EVENT_SOURCE_RATED = 1,     //  profile-service.video-rated
    EVENT_SOURCE_WATCHLIST = 2, //  profile-service.watchlist-updated
    EVENT_SOURCE_COUNT = 3
} event_source_t;

typedef enum {
    EVENT_WATCH = 1,
    EVENT_RATING = 2,
    EVENT_WATCHLIST_ADD = 3,
    EVENT_WATCHLIST_REMOVE = 4
} event_kind_t;

typedef struct {
    event_kind_t kind;
    char user_id[EVENT_ID_MAX + 1];
    char video_id[EVENT_ID_MAX + 1];
    int64_t occurred_us;               //  microseconds since the Unix epoch, UTC
    int64_t watched_duration;          //  seconds, EVENT_WATCH only
    int64_t total_duration;            //  seconds, EVENT_WATCH only
    double rating;                     //  EVENT_RATING only
    char device[EVENT_DEVICE_MAX + 1]; //  EVENT_WATCH only, may be ""
} event_t;

typedef struct {
    double rating_min;      //  default 0.5
    double rating_max;      //  default 5.0
    int64_t max_future_s;   //  default 300
    int64_t max_duration_s; //  default 86400 (a day)
} event_rules_t;

//  The defaults above.
event_rules_t event_rules_default(void);

//  Parses and validates one payload of the given source. now_us is the
//  current time (for the "not in the future" rule); rules NULL means the
//  defaults. Returns 0 with *out filled (fields the kind does not use are
//  zero), or -1 with *out untouched and a one-line reason of printable
//  ASCII in reason (truncated to reasonlen) that starts with the field it
//  is about, e.g. "watched_duration: must be >= 0", or "payload: ..." for
//  size, JSON syntax and non-object errors. Never crashes on any input;
//  payload need not be NUL-terminated.
int event_parse(event_source_t source, const void *payload, size_t len, const event_rules_t *rules,
                int64_t now_us, event_t *out, char *reason, size_t reasonlen);

//  The implicit-feedback weight stored with the interaction: watch
//  completion clipped to 0..1, rating / rating_max (clipped to 0..1), 1
//  for a watchlist add, 0 for a remove. rules NULL means the defaults.
//  This function cannot fail.
double event_weight(const event_t *event, const event_rules_t *rules);

//  Stable name of a kind as stored in features.interactions.kind
//  ("watch", "rating", "watchlist_add", "watchlist_remove"); NULL for a
//  value outside the enum. Static storage.
const char *event_kind_name(event_kind_t kind);

//  Parses an RFC 3339 timestamp with zone (format above, any year
//  0000..9999) into microseconds since the epoch, UTC, independent of the
//  process's TZ and locale. Returns 0, or -1 if malformed or out of range
//  (*us untouched).
int event_parse_time(const char *text, int64_t *us);

#endif
