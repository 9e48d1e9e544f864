/*  event.h: the platform's user events, parsed and validated.

    Inputs (JSON values on Kafka, or JSON lines for `recsd import events`):
      VideoWatched     {user_id, video_id, watched_duration:int,
                        total_duration:int, timestamp, device}
      VideoRated       {user_id, video_id, rating:number, timestamp}
      WatchlistUpdated {user_id, video_id, action:"added"|"removed", timestamp}
    timestamp is RFC 3339 with a zone ("2024-05-01T12:00:00Z",
    "...+02:00", optional fraction). ids are 1..EVENT_ID_MAX printable ASCII
    bytes (0x21..0x7e). Unknown fields are ignored; missing or mistyped ones
    are errors.

    Rules (event_rules_t): 0 <= watched_duration, 0 < total_duration
    (watched may exceed total: replays), both <= max_duration_s; rating in
    [rating_min, rating_max]; timestamp not more than max_future_s ahead of
    `now` and not before 1970. device 0..EVENT_DEVICE_MAX printable bytes
    (spaces allowed).

    Nothing here allocates on the caller's behalf: event_t is a plain value.
    The functions are pure (no I/O, no global state) and thread-safe.
*/
#ifndef RECSD_EVENT_H
#define RECSD_EVENT_H

#include <stddef.h>
#include <stdint.h>

#define EVENT_ID_MAX 64
#define EVENT_DEVICE_MAX 64
#define EVENT_MAX_PAYLOAD (64 * 1024) //  larger payloads are rejected unread

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
    int64_t occurred_us;      //  microseconds since the Unix epoch, UTC
    int64_t watched_duration; //  seconds, EVENT_WATCH only
    int64_t total_duration;   //  seconds, EVENT_WATCH only
    double rating;            //  EVENT_RATING only
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
//  current time (for the "not in the future" rule). Returns 0 with *out
//  filled, or -1 with a one-line reason in reason (naming the field, e.g.
//  "watched_duration: must be >= 0"), never crashing on any input.
int event_parse(event_source_t source, const void *payload, size_t len,
                const event_rules_t *rules, int64_t now_us, event_t *out, char *reason,
                size_t reasonlen);

//  The implicit-feedback weight stored with the interaction: watch
//  completion clipped to 0..1, rating / rating_max, 1 for a watchlist add,
//  0 for a remove.
double event_weight(const event_t *event, const event_rules_t *rules);

//  Stable name of a kind as stored in features.interactions.kind
//  ("watch", "rating", "watchlist_add", "watchlist_remove").
const char *event_kind_name(event_kind_t kind);

//  Parses an RFC 3339 timestamp with zone into microseconds since the
//  epoch. Returns 0, or -1 if malformed.
int event_parse_time(const char *text, int64_t *us);

#endif
