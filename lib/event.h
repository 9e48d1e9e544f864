/*  event.h: the platform's user events, parsed and validated.

    Inputs (JSON values on Kafka, or JSON lines for `recsd import events`):
      VideoWatched     {user_id, video_id, watched_duration:int,
                        total_duration:int, timestamp, device}
      VideoRated       {user_id, video_id, rating:number, timestamp}
      WatchlistUpdated {user_id, video_id, action:"added"|"removed", timestamp}
    and the catalogue's changes (event_parse_video, not event_parse):
      VideoUpserted    {video_id, title, genres:[str], tags:[str],
                        duration:int, published_at:datetime|null (optional),
                        status:"active"|"retired", updated_at}
    The payload must be one JSON object (UTF-8, no duplicate keys at any
    depth, at most EVENT_MAX_PAYLOAD bytes). Unknown fields are ignored;
    missing or mistyped fields are errors, and types are strict: an integer
    field given as "12", 12.5 or 12.0 is rejected; rating takes an integer
    or a real. Every field listed above is required unless marked
    optional (device may be "").

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

    VideoUpserted carries the video's whole catalogue state; the newest
    updated_at wins (the store ignores an update that is not newer than the
    one it has, so replays and reordering are harmless):
      video_id      an id as above
      title         1..EVENT_TITLE_MAX bytes of UTF-8 text, no control
                    characters (U+0000..U+001F, U+007F)
      genres, tags  arrays (may be empty) of at most EVENT_GENRES_MAX /
                    EVENT_TAGS_MAX strings of 1..EVENT_GENRE_MAX /
                    EVENT_TAG_MAX bytes each, text as for title, no value
                    twice in one array (compared byte for byte); order kept
      duration      integer seconds, 0 < duration <= max_duration_s
      published_at  when the catalogue published it: a date-time as above,
                    not before 1970, may be in the future (scheduled);
                    null or absent: unknown
      status        "active" or "retired" (a retired video stays in the
                    catalogue and is not recommended)
      updated_at    the version of this state in the catalogue: a
                    date-time, not before 1970, not more than max_future_s
                    ahead of `now` (a far-future version would shadow every
                    real update after it)

    Nothing here allocates on the caller's behalf: event_t and
    event_video_t are plain values.
    The functions are pure (no I/O, no global state) and thread-safe.
*/
#ifndef RECSD_EVENT_H
#define RECSD_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVENT_ID_MAX 64
#define EVENT_DEVICE_MAX 64
#define EVENT_MAX_PAYLOAD 65536 //  bytes; larger payloads are rejected unread
#define EVENT_TITLE_MAX 256     //  bytes of a video title
#define EVENT_GENRES_MAX 16     //  genres per video
#define EVENT_GENRE_MAX 32      //  bytes per genre
#define EVENT_TAGS_MAX 32       //  tags per video
#define EVENT_TAG_MAX 64        //  bytes per tag

//  Which stream an event came from; decides the schema it must follow.
typedef enum {
    EVENT_SOURCE_WATCHED = 0,   //  analytics-service.video-watched
    EVENT_SOURCE_RATED = 1,     //  profile-service.video-rated
    EVENT_SOURCE_WATCHLIST = 2, //  profile-service.watchlist-updated
    //  catalog-service.video-upserted: an event_video_t (event_parse_video);
    //  event_parse refuses it.
    EVENT_SOURCE_VIDEO_UPSERTED = 3,
    EVENT_SOURCE_COUNT = 4
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

//  A catalogue change (VideoUpserted). A plain value, like event_t; strings
//  are NUL-terminated, unused array slots zeroed.
typedef struct {
    char video_id[EVENT_ID_MAX + 1];
    char title[EVENT_TITLE_MAX + 1];
    size_t genre_count;
    char genres[EVENT_GENRES_MAX][EVENT_GENRE_MAX + 1];
    size_t tag_count;
    char tags[EVENT_TAGS_MAX][EVENT_TAG_MAX + 1];
    int64_t duration_s;
    bool has_published; //  false: published_at null or absent
    int64_t published_us;
    bool retired; //  status "retired"
    int64_t updated_us;
} event_video_t;

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
//  payload need not be NUL-terminated. EVENT_SOURCE_VIDEO_UPSERTED is
//  refused ("source: ...": see event_parse_video).
int event_parse(event_source_t source, const void *payload, size_t len, const event_rules_t *rules,
                int64_t now_us, event_t *out, char *reason, size_t reasonlen);

//  Parses and validates one VideoUpserted payload, as event_parse does a
//  user event (same payload rules, same reasons, e.g. "status: must be
//  \"active\" or \"retired\""). Returns 0 with *out filled, or -1 with *out
//  untouched and the reason.
int event_parse_video(const void *payload, size_t len, const event_rules_t *rules, int64_t now_us,
                      event_video_t *out, char *reason, size_t reasonlen);

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
