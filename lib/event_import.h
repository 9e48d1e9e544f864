/*  event_import.h: `recsd import events FILE`, events from a JSON-lines file.

    Format: one JSON object per line (UTF-8, LF or CRLF line ends), the
    event's own fields (see event.h) plus "type", which names its schema:
      {"type":"video_watched","user_id":"u1","video_id":"v9",
       "watched_duration":120,"total_duration":3600,
       "timestamp":"2024-05-01T12:00:00Z","device":"tv"}
      {"type":"video_rated","user_id":"u1","video_id":"v9","rating":4.5,
       "timestamp":"2024-05-01T12:00:00+02:00"}
      {"type":"watchlist_updated","user_id":"u1","video_id":"v9",
       "action":"added","timestamp":"2024-05-01T12:00:00Z"}
    Each line goes through the same event_parse and interaction_store_write
    as the Kafka ingestor, in batches of cfg->ingest_batch_max lines, one
    transaction each. A line that is not valid JSON, lacks a known "type"
    or fails validation goes to the dead-letter outbox (topic "", partition
    -1, offset = its 1-based line number) with the reason. Empty lines are
    skipped (counted as blank). A line longer than EVENT_MAX_PAYLOAD is
    dead-lettered with its first EVENT_MAX_PAYLOAD bytes as the original
    (memory stays bounded whatever the file holds).

    Re-running the same file stores nothing new (event ids are natural
    keys) but dead-letters its invalid lines again: each run reports them.
    A batch that cannot be written stops the import; batches already
    committed stay, so a re-run completes it. FILE "-" is standard input.
*/
#ifndef RECSD_EVENT_IMPORT_H
#define RECSD_EVENT_IMPORT_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"

typedef struct {
    size_t lines;         //  lines read, blank ones included
    size_t blank;         //  empty lines, skipped
    size_t stored;        //  new interaction rows
    size_t duplicates;    //  valid events already stored
    size_t dead_lettered; //  invalid lines written to the outbox
    double seconds;       //  wall time, connect to last commit
} event_import_stats_t;

//  Imports the JSON lines read from in (name is for messages) into the
//  database at cfg->pg_dsn, logging a progress line every 100,000 lines.
//  Fills *stats (may be NULL) with what was done, also on failure. Returns
//  0, or -1 with the reason logged.
int event_import_stream(const config_t *cfg, FILE *in, const char *name,
                        event_import_stats_t *stats);

//  argv: "events" FILE (the words after `recsd import`). Runs the import
//  and prints a one-line summary on stdout. Returns the exit status: 0, 1
//  on failure, 2 on bad usage.
int event_import_main(const config_t *cfg, int argc, char **argv);

#endif
