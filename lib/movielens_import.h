/*  movielens_import.h: `recsd import movielens DIR`, demo/bootstrap data.

    Reads the GroupLens MovieLens CSV files (ml-latest-small and its larger
    siblings share the format; comma-separated, RFC 4180 quoting, a header
    row, LF or CRLF line ends):
      movies.csv   movieId,title,genres      -> features.videos
      tags.csv     userId,movieId,tag,timestamp -> features.videos.tags
                   (optional; lower-cased, trimmed, distinct, sorted)
      ratings.csv  userId,movieId,rating,timestamp
                   -> features.interactions (kind 'rating', weight rating/5,
                      event_id 'ml:rating:<user>:<movie>:<ts>') and
                      features.users
    Ids are kept as MovieLens gives them ("1", "318"), as text. Users come
    from ratings.csv (created_at = their first rating); tags of movies that
    movies.csv lacks are ignored; links.csv is not used.
    Everything happens in one transaction, so a bad file leaves the database
    as it was; re-running inserts nothing new (idempotent on event_id and on
    the video and user keys; changed titles/genres/tags are updated).
    Needs the schema from `recsd migrate`.
*/
#ifndef RECSD_MOVIELENS_IMPORT_H
#define RECSD_MOVIELENS_IMPORT_H

#include <stddef.h>

#include "config.h"

typedef struct {
    size_t videos_read; //  rows in movies.csv
    size_t videos_inserted;
    size_t videos_updated;    //  existing video whose title, genres or tags changed
    size_t tags_read;         //  rows in tags.csv (0 if the file is absent)
    size_t users_inserted;    //  users seen in ratings.csv for the first time
    size_t interactions_read; //  rows in ratings.csv
    size_t interactions_inserted;
    size_t interactions_skipped; //  already present (same event_id)
    double seconds;              //  wall time, connect to commit
} movielens_stats_t;

//  Imports dir into the database at cfg->pg_dsn. Fills *stats (may be
//  NULL) on success. Returns 0, or -1 with the reason logged; on failure
//  nothing is written.
int movielens_import_dir(const config_t *cfg, const char *dir, movielens_stats_t *stats);

//  argv: "movielens" DIR (the words after `recsd import`). Runs
//  movielens_import_dir and prints a one-line summary with timing on
//  stdout. Returns the exit status: 0, 1 on failure, 2 on bad usage.
int movielens_import_main(const config_t *cfg, int argc, char **argv);

#endif
