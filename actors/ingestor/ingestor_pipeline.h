/*  ingestor_pipeline.h: the event-ingestor's writer thread, so that the
    actor thread keeps consuming and parsing the next batch while one is
    written to PostgreSQL.

    At most one batch is in flight. The owner hands it over with
    ingestor_pipeline_submit and must not touch it until it comes back from
    ingestor_pipeline_take, written or given up; meanwhile the owner fills
    another batch. One batch in flight plus one filling: memory stays
    bounded.

    The thread owns the PostgreSQL connection (an ingestor_writer_t: its
    reconnection, back-off and logging). A failed write is retried with the
    writer's back-off, for as long as it takes, until it succeeds or the
    owner calls ingestor_pipeline_cancel (before a rebalance, at stop). The
    owner learns about the trouble from ingestor_pipeline_failing (to pause
    consumption). Committing the offsets of a written batch is the owner's
    business, and only the owner's thread talks to Kafka.

    Hand-off: a mutex and two condition variables rather than a ZeroMQ
    pair: the batch travels by pointer, and the actor's wait is librdkafka's
    poll, which cannot include a socket anyway. The owner checks each turn
    (ingestor_pipeline_take does not block) and waits (ingestor_pipeline_wait)
    only when it has nothing else to do.

    Thread safety: every function is for the owner's thread only; the
    thread behind them is private.
*/
#ifndef RECSD_INGESTOR_PIPELINE_H
#define RECSD_INGESTOR_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "event.h"
#include "ingestor_batch.h"
#include "interaction_store.h"

typedef struct ingestor_pipeline_t ingestor_pipeline_t;

//  How a batch came back.
typedef struct {
    bool written;          //  committed in PostgreSQL; else given up, nothing written
    store_result_t result; //  if written
    int64_t write_ms;      //  submit to the end of the last attempt
    uint64_t attempts;     //  write attempts made for this batch
} ingestor_outcome_t;

//  Starts the writer thread. cfg and rules are borrowed and must outlive
//  the pipeline. Connects lazily. Returns NULL with the reason in err.
ingestor_pipeline_t *ingestor_pipeline_new(const config_t *cfg, const event_rules_t *rules,
                                           char *err, size_t errlen);

//  Gives up on a batch in flight (after the attempt under way, if any),
//  joins the thread, closes the connection; idempotent. A batch still in
//  flight is the owner's (it was only borrowed): free it afterwards.
void ingestor_pipeline_destroy(ingestor_pipeline_t **self_p);

//  Hands batch (borrowed until it comes back from take) to the thread,
//  which writes it at once. Returns 0, or -1 if a batch is in flight
//  already.
int ingestor_pipeline_submit(ingestor_pipeline_t *self, ingestor_batch_t *batch);

//  True from submit to the take that returns the batch.
bool ingestor_pipeline_in_flight(const ingestor_pipeline_t *self);

//  Entries of the batch in flight (0 if none), as submitted.
size_t ingestor_pipeline_in_flight_size(const ingestor_pipeline_t *self);

//  The batch in flight back if it is finished (written, or given up after a
//  cancel), with *outcome; NULL if none is in flight or it is not finished.
//  Never blocks for long (a mutex held only between attempts).
ingestor_batch_t *ingestor_pipeline_take(ingestor_pipeline_t *self, ingestor_outcome_t *outcome);

//  Waits up to timeout_ms for the batch in flight to finish or for an
//  attempt to fail. Returns true if there is nothing to wait for (none in
//  flight, or finished: take it), false otherwise.
bool ingestor_pipeline_wait(ingestor_pipeline_t *self, int timeout_ms);

//  Stops retrying the batch in flight: it comes back unwritten as soon as
//  no attempt is under way (or written, if the attempt under way succeeds).
//  No-op if none is in flight.
void ingestor_pipeline_cancel(ingestor_pipeline_t *self);

//  True from a failed attempt to the next successful one (PostgreSQL down
//  or refusing the batch).
bool ingestor_pipeline_failing(const ingestor_pipeline_t *self);

#endif
