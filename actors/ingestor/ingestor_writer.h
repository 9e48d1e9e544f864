/*  ingestor_writer.h: the event-ingestor's PostgreSQL side: one connection,
    one transaction per batch (interaction_store_write_batch), and what to do when
    PostgreSQL fails.

    A failed write leaves the writer "failing": the caller keeps its batch
    and asks again once ingestor_writer_retry_in says so. The delay doubles
    from 100 ms to 5 s. A lost connection is reopened on the next attempt
    with a short connect timeout (libpq's minimum, 2 s, when the server
    does not answer; at once when it refuses). The transition to failing
    and the recovery are logged once each, not every retry.
*/
#ifndef RECSD_INGESTOR_WRITER_H
#define RECSD_INGESTOR_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "event.h"
#include "ingestor_batch.h"
#include "interaction_store.h"

#define INGESTOR_BACKOFF_MIN_MS 100
#define INGESTOR_BACKOFF_MAX_MS 5000

typedef struct ingestor_writer_t ingestor_writer_t;

//  cfg and rules are borrowed and must outlive the writer. Connects lazily.
//  Returns NULL on allocation failure.
ingestor_writer_t *ingestor_writer_new(const config_t *cfg, const event_rules_t *rules);

//  Closes the connection; idempotent.
void ingestor_writer_destroy(ingestor_writer_t **self_p);

//  Writes batch (borrowed) in one transaction, dead letters to
//  cfg->topic_dead_letter. An empty batch checks that PostgreSQL answers
//  (so a caller with nothing to write can tell when it is back). now_ms is
//  monotonic. Returns 0 with *result filled, or -1 (nothing written; the
//  writer is failing).
int ingestor_writer_write(ingestor_writer_t *self, const ingestor_batch_t *batch, int64_t now_ms,
                          store_result_t *result);

//  True from a failed write to the next successful one.
bool ingestor_writer_failing(const ingestor_writer_t *self);

//  Milliseconds until the next attempt is due: 0 if due now or not failing.
int64_t ingestor_writer_retry_in(const ingestor_writer_t *self, int64_t now_ms);

#endif
