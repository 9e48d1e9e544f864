/*  publisher.c: the publisher actor, the only Kafka producer.

    It relays the transactional outbox (public.outbox) to Kafka. One page
    at a time, in id order:

      IDLE ──claim──▶ CLAIMING ──rows──▶ DELIVERING ──reports──▶ MARKING ──▶ IDLE
                                                                    │ connection lost
                                                                    ▼ after Kafka acked
                                                                 UNMARKED ──reconnect──▶ MARKING

    A page is up to 500 rows claimed FOR UPDATE SKIP LOCKED (see
    publisher_outbox.h for why not a lease), each produced with the row's
    key, its payload text as the value, the headers object as Kafka
    headers plus "outbox-id". When every delivery report is in (or the
    10 s page deadline passes) the delivered rows get published_at in the
    claim's transaction, which also records each failed row's attempt
    (attempts + 1, last_error). A failure is permanent or transient
    (publisher_producer_permanent; headers that are not a JSON object are
    permanent too): a permanently failed row is parked (failed_at set, the
    claim skips it, logged at error once), so a message Kafka will never
    take does not hold up the rows behind it; a transiently failed row
    stays unpublished and comes back in a later claim. Only a page that
    had transient failures and delivered nothing makes the next claim wait
    (100 ms doubling to 5 s): that is Kafka being unavailable. A full page is followed at once by
    the next claim.

    When to claim (publisher_wake.h): every insert into the outbox sends
    NOTIFY recsd_outbox at its commit (migrations/013_outbox_notify.sql);
    the publisher LISTENs on a connection of its own and claims as soon as
    a notification arrives, also one that came while a page was in flight.
    Otherwise an idle publisher claims once every IDLE_POLL_MS (1 s) as a
    fallback, and every DEGRADED_POLL_MS (50 ms, the old fixed poll) while
    its LISTEN connection is down and being reconnected with back-off; it
    is only reconnected while the claim connection works, so an outage
    does not cost two blocking connects per attempt.

    Delivery is at-least-once: a row is marked only after Kafka
    acknowledged it (acks=all), so a crash, a lost PostgreSQL connection or
    a failed commit between the two makes it go out again. Consumers dedupe
    on the event id in the payload, or on the "outbox-id" header. Ordering:
    rows of one page keep their order (idempotent producer), but a failed
    row retried later, or rows claimed by another pod, can overtake.

    Dependencies down: PostgreSQL is reconnected with back-off (100 ms
    doubling to 5 s), Kafka is retried by librdkafka and by the page
    back-off; each is logged once when it goes down and once when it comes
    back. The loop never blocks longer than ~100 ms (except a PostgreSQL
    connect to an unresponsive host, at most 2 s) and heartbeats
    throughout.

    Stop (STOP or SIGTERM): no new claim; a page in flight gets at most
    2 s more for its reports, its delivered rows are marked (at most 1 s
    more), then the actor exits 0.

    Besides the outbox, the bounded in-memory queue of DESIGN.md: events
    from other actors that need no transaction (RecommendationsRefreshed),
    sent with lib/event_sender.h to a PULL socket at
    ipc://<runtime_dir>/<instance>-events and produced with the same
    producer (publisher_events.h). They are fire-and-forget, at most once:
    the queue is bounded (ZeroMQ high-water marks on both sides, at most
    PUBLISHER_EVENTS_QUEUE_MAX queued and PUBLISHER_EVENTS_INFLIGHT_MAX in
    librdkafka, so they never crowd out outbox rows), what does not fit is
    dropped and counted, a failed produce is not retried, and what is
    queued when the process dies is lost. On stop the socket is no longer
    read and queued events get the same 2 s as a page in flight.

    Supervisor figures: handled = rows published (marked) + events
    produced, queue depth = rows claimed and not yet marked + events queued
    or in flight; metrics: published, failed (transient failed attempts)
    and parked rows, outbox claims (an idle publisher: about one a second);
    events received, invalid, dropped, produced, failed,
    and queued (gauge).
*/
#include "publisher.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "actor_link.h"
#include "log.h"
#include "publisher_events.h"
#include "publisher_headers.h"
#include "publisher_trace.h"
#include "publisher_outbox.h"
#include "publisher_page.h"
#include "publisher_producer.h"
#include "publisher_wake.h"

#define PAGE_ROWS 500
//  Idle poll while notifications are heard. Only a notification lost
//  without the LISTEN connection noticing (a reconnect asks for a claim at
//  once) waits for it, so this bounds that latency: at most 1 s, for one
//  query a second instead of twenty.
#define IDLE_POLL_MS 1000
//  Idle poll while the LISTEN connection is down: the old fixed poll, so
//  latency does not suffer while it is reconnected.
#define DEGRADED_POLL_MS 50
#define PAGE_DEADLINE_MS 10000 //  claim -> marked, at most (reports normally come far sooner)
#define QUERY_TIMEOUT_MS 5000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define STOP_DELIVERY_MS 2000 //  after STOP, a page in flight gets this long for its reports
#define STOP_MARK_MS 1000     //  ...and this long to be marked
#define SUMMARY_MS 10000

typedef enum { S_IDLE, S_CLAIMING, S_DELIVERING, S_MARKING, S_UNMARKED } s_state_t;

typedef enum { DEP_UNKNOWN, DEP_UP, DEP_DOWN } s_dep_t;

typedef struct {
    const config_t *cfg;
    const char *instance;
    actor_link_t *link;
    tracer_t *tracer; //  producer spans (publisher_trace.h)
    publisher_outbox_t *outbox;
    publisher_producer_t *producer; //  NULL until created (and after a fatal error)
    publisher_page_t *page;
    publisher_wake_t *wake; //  the LISTEN connection; when to claim next
    publisher_events_t *events;
    publisher_events_stats_t events_last; //  the event figures at the last s_metrics
    uint64_t events_handled;              //  events produced already counted as handled
    s_state_t state;
    bool mark_in_claim; //  MARKING: inside the claim transaction (else a retry of lost marks)
    uint64_t next_seq;  //  sequence number of the next message produced
    int64_t page_deadline;
    int64_t t_claim, t_produced, t_reported; //  page phase timestamps, for the debug log
    //  The next claim: at next_claim (a full page: at once; Kafka back-off:
    //  later), or, when idle, on a notification (wakeup) or idle_from +
    //  the idle poll in force (s_claim_due).
    bool idle, wakeup;
    int64_t next_claim, idle_from;
    int64_t stop_at; //  0 until stopping
    //  Dependencies: back-off and the state last logged.
    s_dep_t pg_state, kafka_state;
    int64_t pg_next_connect, producer_next_create;
    int pg_backoff_ms, kafka_backoff_ms;
    char last_failure[256]; //  last row failure logged at warn (to log each reason once)
    bool failures_marked;   //  the page's failed attempts were recorded with its mark
    publisher_outbox_failure_t failures[PAGE_ROWS]; //  scratch for the mark
    //  Figures.
    uint64_t published, failed, parked, batches, claims, stale_reports;
    uint64_t published_logged;
    int64_t next_summary;
} self_t;

static int s_backoff_next(int *backoff_ms)
{
    int wait = *backoff_ms;
    *backoff_ms = wait * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : wait * 2;
    return wait;
}

//  Records the failure of the row with sequence number seq. A transient
//  one is logged at warn when its reason differs from the last one logged,
//  a permanent one at error when the row is parked (s_page_done).
static void s_row_failed(self_t *self, uint64_t seq, bool permanent, const char *why)
{
    if (publisher_page_fail(self->page, seq, permanent, why) != 0) {
        self->stale_reports++;
        return;
    }
    if (permanent)
        return;
    log_write(strcmp(why, self->last_failure) ? LOG_LEVEL_WARN : LOG_LEVEL_DEBUG, NULL,
              "outbox row %" PRId64 " not delivered, will retry: %s",
              publisher_page_id(self->page, seq), why);
    snprintf(self->last_failure, sizeof self->last_failure, "%s", why);
}

//  Delivery report, from inside publisher_producer_poll.
static void s_on_delivery(void *arg, uint64_t seq, rd_kafka_resp_err_t err)
{
    self_t *self = arg;
    bool ok = err == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (seq & PUBLISHER_EVENT_SEQ_BIT) {
        publisher_events_delivered(self->events, seq, err);
        if (ok && self->kafka_state == DEP_DOWN) {
            log_info("kafka reachable again");
            self->kafka_state = DEP_UP;
        }
        return;
    }
    if (ok && self->kafka_state == DEP_DOWN) {
        log_info("kafka reachable again");
        self->kafka_state = DEP_UP;
    }
    if (ok && publisher_page_report(self->page, seq, true) != 0) {
        //  A page given up on at its deadline: the row is unpublished and
        //  will be sent again anyway.
        self->stale_reports++;
        return;
    }
    if (!ok)
        s_row_failed(self, seq, publisher_producer_permanent(err), rd_kafka_err2str(err));
}

static void s_pg_down(self_t *self, const char *why)
{
    int wait = s_backoff_next(&self->pg_backoff_ms);
    self->pg_next_connect = zclock_mono() + wait;
    if (self->pg_state != DEP_DOWN)
        log_warn("PostgreSQL unavailable, outbox relay paused (retrying with back-off): %s", why);
    else
        log_debug("PostgreSQL still unavailable, next attempt in %d ms: %s", wait, why);
    self->pg_state = DEP_DOWN;
}

//  Connects to PostgreSQL when due. Returns true if connected.
static bool s_ensure_pg(self_t *self)
{
    if (publisher_outbox_connected(self->outbox))
        return true;
    if (zclock_mono() < self->pg_next_connect)
        return false;
    char err[512];
    if (publisher_outbox_connect(self->outbox, err, sizeof err) != 0) {
        s_pg_down(self, err);
        return false;
    }
    return true;
}

//  A statement succeeded. Only this, not a successful connect, counts as
//  PostgreSQL being back: a server that accepts connections but fails
//  every claim (say, migrations not applied) must not flap the log or
//  reset the back-off.
static void s_pg_ok(self_t *self)
{
    if (self->pg_state == DEP_DOWN)
        log_info("PostgreSQL reachable again, outbox relay resumes");
    self->pg_state = DEP_UP;
    self->pg_backoff_ms = BACKOFF_MIN_MS;
}

//  Creates the producer when there is none (or replaces one that hit a
//  fatal error, between pages). Returns true if there is one.
static bool s_ensure_producer(self_t *self)
{
    if (self->producer && publisher_producer_fatal(self->producer)) {
        log_error("kafka producer failed (%s); creating a new one",
                  publisher_producer_last_error(self->producer));
        publisher_producer_destroy(&self->producer);
        self->producer_next_create = zclock_mono() + s_backoff_next(&self->kafka_backoff_ms);
    }
    if (self->producer)
        return true;
    if (zclock_mono() < self->producer_next_create)
        return false;
    char err[512];
    self->producer = publisher_producer_new(self->cfg->kafka_brokers, self->cfg, s_on_delivery,
                                            self, err, sizeof err);
    if (!self->producer) {
        log_error("%s", err);
        self->producer_next_create = zclock_mono() + s_backoff_next(&self->kafka_backoff_ms);
        return false;
    }
    return true;
}

//  Logs Kafka going down, once: every broker down, or a page of which
//  nothing was delivered and some rows failed transiently (page_failure:
//  the first such reason; NULL otherwise). Rows parked for a permanent
//  failure say nothing about Kafka. It is back with the next delivered
//  message (s_on_delivery).
static void s_watch_kafka(self_t *self, const char *page_failure)
{
    if (!self->producer || self->kafka_state == DEP_DOWN)
        return;
    if (publisher_producer_all_down(self->producer) || page_failure) {
        const char *why = publisher_producer_last_error(self->producer);
        if (!*why && page_failure)
            why = page_failure;
        log_warn("kafka unavailable, rows stay in the outbox (retrying with back-off): %s",
                 *why ? why : "no reason given");
        self->kafka_state = DEP_DOWN;
    }
}

//  Produces every claimed row. A row that cannot even be queued counts as
//  failed: permanently for headers that are not a JSON object or a
//  permanent librdkafka error (too large, unknown topic...), so it is
//  parked; transiently otherwise (queue full...).
static void s_produce_page(self_t *self, PGresult *rows)
{
    int n = PQntuples(rows);
    publisher_page_reset(self->page, self->next_seq);
    for (int i = 0; i < n && i < PAGE_ROWS; i++) {
        int64_t id = strtoll(PQgetvalue(rows, i, OUTBOX_COL_ID), NULL, 10);
        uint64_t seq = publisher_page_add(self->page, id);
        self->next_seq = seq + 1;
        char err[256];
        rd_kafka_headers_t *hdrs =
            publisher_headers_build(PQgetvalue(rows, i, OUTBOX_COL_HEADERS), id, err, sizeof err);
        if (!hdrs) {
            s_row_failed(self, seq, true, err);
            continue;
        }
        const char *key =
            PQgetisnull(rows, i, OUTBOX_COL_KEY) ? NULL : PQgetvalue(rows, i, OUTBOX_COL_KEY);
        const char *topic = PQgetvalue(rows, i, OUTBOX_COL_TOPIC);
        trace_span_t *span = publisher_trace_produce(self->tracer, hdrs, topic);
        trace_span_set_int(span, "recsd.outbox_id", id);
        bool permanent = false;
        if (publisher_producer_send(self->producer, topic, key,
                                    PQgetvalue(rows, i, OUTBOX_COL_PAYLOAD),
                                    (size_t)PQgetlength(rows, i, OUTBOX_COL_PAYLOAD), hdrs, seq,
                                    &permanent, err, sizeof err) != 0) {
            trace_span_set_error(span, err);
            s_row_failed(self, seq, permanent, err);
        }
        trace_span_end(&span);
    }
    self->t_produced = zclock_mono();
    self->page_deadline = self->t_produced + PAGE_DEADLINE_MS;
    self->batches++;
}

//  Starts marking the page's delivered rows. In the claim's transaction
//  the failed rows' attempts are recorded too (parking the permanent
//  ones); a retry of lost marks has no claim left and records only the
//  deliveries (a failed row is simply claimed and tried again).
static void s_start_mark(self_t *self, bool in_claim)
{
    size_t count;
    const int64_t *ids = publisher_page_delivered_ids(self->page, &count);
    size_t nfailures = 0;
    for (size_t i = 0; in_claim && i < publisher_page_size(self->page); i++) {
        publisher_outbox_failure_t *f = &self->failures[nfailures];
        publisher_row_state_t state = publisher_page_row(self->page, i, &f->id, &f->reason);
        if (state == PUBLISHER_ROW_FAILED || state == PUBLISHER_ROW_PARKED) {
            f->park = state == PUBLISHER_ROW_PARKED;
            nfailures++;
        }
    }
    char err[512];
    int timeout = self->stop_at ? STOP_MARK_MS : QUERY_TIMEOUT_MS;
    self->failures_marked = false;
    if (publisher_outbox_mark_start(self->outbox, ids, count, self->failures, nfailures, in_claim,
                                    timeout, err, sizeof err) != 0) {
        s_pg_down(self, err);
        self->state = count ? S_UNMARKED : S_IDLE;
        return;
    }
    self->mark_in_claim = in_claim;
    self->state = S_MARKING;
}

//  The page's failures are in the outbox: log each parked row, once (it is
//  never claimed again).
static void s_log_parked(self_t *self)
{
    for (size_t i = 0; i < publisher_page_size(self->page); i++) {
        int64_t id;
        const char *why;
        if (publisher_page_row(self->page, i, &id, &why) == PUBLISHER_ROW_PARKED)
            log_error("outbox row %" PRId64 " can never be produced, parked (failed_at set, not"
                      " retried): %s",
                      id, why);
    }
}

static void s_metrics(self_t *self)
{
    char text[8192];
    const char *a = self->instance;
    publisher_events_stats_t ev = publisher_events_stats(self->events);
    int n = snprintf(
        text, sizeof text,
        "# HELP recsd_publisher_published_total Outbox rows published to Kafka and marked.\n"
        "# TYPE recsd_publisher_published_total counter\n"
        "recsd_publisher_published_total{actor=\"%s\"} %llu\n"
        "# HELP recsd_publisher_failed_total Transient produce failures (the rows are retried).\n"
        "# TYPE recsd_publisher_failed_total counter\n"
        "recsd_publisher_failed_total{actor=\"%s\"} %llu\n"
        "# HELP recsd_publisher_parked_total Outbox rows parked: they can never be produced.\n"
        "# TYPE recsd_publisher_parked_total counter\n"
        "recsd_publisher_parked_total{actor=\"%s\"} %llu\n"
        "# HELP recsd_publisher_outbox_claims_total Outbox claims (queries) started.\n"
        "# TYPE recsd_publisher_outbox_claims_total counter\n"
        "recsd_publisher_outbox_claims_total{actor=\"%s\"} %llu\n"
        "# HELP recsd_publisher_events_received_total Events received from other actors.\n"
        "# TYPE recsd_publisher_events_received_total counter\n"
        "recsd_publisher_events_received_total{actor=\"%s\"} %llu\n"
        "# HELP recsd_publisher_events_invalid_total Malformed events rejected.\n"
        "# TYPE recsd_publisher_events_invalid_total counter\n"
        "recsd_publisher_events_invalid_total{actor=\"%s\"} %llu\n"
        "# HELP recsd_publisher_events_dropped_total Events dropped: the in-memory queue was"
        " full.\n"
        "# TYPE recsd_publisher_events_dropped_total counter\n"
        "recsd_publisher_events_dropped_total{actor=\"%s\"} %llu\n"
        "# HELP recsd_publisher_events_produced_total Events acknowledged by Kafka.\n"
        "# TYPE recsd_publisher_events_produced_total counter\n"
        "recsd_publisher_events_produced_total{actor=\"%s\"} %llu\n"
        "# HELP recsd_publisher_events_failed_total Events Kafka did not take (not retried).\n"
        "# TYPE recsd_publisher_events_failed_total counter\n"
        "recsd_publisher_events_failed_total{actor=\"%s\"} %llu\n"
        "# HELP recsd_publisher_events_queued Events queued or in flight to Kafka.\n"
        "# TYPE recsd_publisher_events_queued gauge\n"
        "recsd_publisher_events_queued{actor=\"%s\"} %zu\n",
        a, (unsigned long long)self->published, a, (unsigned long long)self->failed, a,
        (unsigned long long)self->parked, a, (unsigned long long)self->claims, a,
        (unsigned long long)ev.received, a, (unsigned long long)ev.invalid, a,
        (unsigned long long)ev.dropped, a, (unsigned long long)ev.produced, a,
        (unsigned long long)ev.failed, a, ev.queued + ev.inflight);
    size_t len = n > 0 ? (size_t)n : 0;
    if (n < 0 || len >= sizeof text ||
        tracer_metrics(self->tracer, a, text, sizeof text, &len) != 0 ||
        actor_link_set_metrics(self->link, text) != 0)
        log_warn("metrics text too long for a heartbeat");
}

//  The page is marked (or had nothing to mark): account and schedule the
//  next claim.
static void s_page_done(self_t *self)
{
    size_t delivered = publisher_page_delivered(self->page);
    size_t parked = publisher_page_parked(self->page);
    size_t transient = publisher_page_failed(self->page) - parked;
    size_t size = publisher_page_size(self->page);
    self->published += delivered;
    self->failed += transient;
    //  A parked row counts once its failed_at is committed; otherwise it
    //  is claimed again and parked then.
    if (self->failures_marked) {
        self->parked += parked;
        s_log_parked(self);
    }
    actor_link_count_handled(self->link, delivered);
    int64_t now = zclock_mono();
    const char *page_failure = NULL; //  first transient reason, if nothing was delivered
    for (size_t i = 0; transient && !delivered && i < size && !page_failure; i++) {
        const char *why;
        if (publisher_page_row(self->page, i, NULL, &why) == PUBLISHER_ROW_FAILED)
            page_failure = why;
    }
    //  A notification heard during the page (self->wakeup) may be about
    //  rows the claim did not see: it makes the next claim come at once.
    self->idle = false;
    if (page_failure) {
        self->next_claim = now + s_backoff_next(&self->kafka_backoff_ms);
    } else {
        self->kafka_backoff_ms = BACKOFF_MIN_MS;
        if (!transient)
            self->last_failure[0] = '\0';
        self->next_claim = now;
        self->idle = size < PAGE_ROWS;
        self->idle_from = now;
    }
    s_watch_kafka(self, page_failure);
    s_metrics(self); //  the claims counter moved
    if (size) {
        log_debug("page of %zu rows: %zu delivered, %zu failed, %zu parked; claim %" PRId64
                  " ms, delivery %" PRId64 " ms, mark %" PRId64 " ms",
                  size, delivered, transient, parked, self->t_produced - self->t_claim,
                  self->t_reported - self->t_produced, now - self->t_reported);
    }
    publisher_page_reset(self->page, self->next_seq);
    self->state = S_IDLE;
}

//  The claim failed (connection closed): claim again as soon as PostgreSQL
//  is back, since a notification it answered has been used up.
static void s_claim_failed(self_t *self, const char *why)
{
    s_pg_down(self, why);
    self->idle = false;
    self->next_claim = 0;
}

//  When the next claim is due (zclock_mono() ms): see self_t. The idle
//  poll is looked up each time, so losing the LISTEN connection shortens
//  the wait in progress.
static int64_t s_claim_due(self_t *self)
{
    if (!self->idle)
        return self->next_claim;
    if (self->wakeup)
        return 0;
    return self->idle_from + publisher_wake_poll_ms(self->wake);
}

//  Takes one transition of the page state machine. Returns true when the
//  next one can be taken at once, without waiting for anything.
static bool s_transition(self_t *self)
{
    char err[512];
    PGresult *rows = NULL;
    int64_t now = zclock_mono();
    bool again = false;
    switch (self->state) {
    case S_IDLE:
    case S_UNMARKED:
        //  The producer exists even while PostgreSQL is down, so Kafka's
        //  state is known (and logged) independently.
        s_ensure_producer(self);
        if (!s_ensure_pg(self))
            break;
        if (self->state == S_UNMARKED) {
            s_start_mark(self, false);
            break;
        }
        if (self->stop_at || now < s_claim_due(self) || !self->producer)
            break;
        self->claims++;
        self->wakeup = false; //  this claim sees every row committed so far
        if (publisher_outbox_claim_start(self->outbox, PAGE_ROWS, QUERY_TIMEOUT_MS, err,
                                         sizeof err) != 0)
            s_claim_failed(self, err);
        else {
            self->state = S_CLAIMING;
            self->t_claim = now;
        }
        break;
    case S_CLAIMING:
        if (self->stop_at) {
            //  Closing the connection rolls the claim back; nothing was sent.
            publisher_outbox_disconnect(self->outbox);
            self->state = S_IDLE;
            break;
        }
        switch (publisher_outbox_service(self->outbox, &rows, err, sizeof err)) {
        case 0:
            break;
        case -1:
            s_claim_failed(self, err);
            self->state = S_IDLE;
            break;
        default:
            s_pg_ok(self);
            s_produce_page(self, rows);
            PQclear(rows); //  the producer copied what it needs
            self->state = S_DELIVERING;
            again = true; //  an empty page is done already
            break;
        }
        break;
    case S_DELIVERING: {
        int64_t deadline = self->page_deadline;
        if (self->stop_at && self->stop_at + STOP_DELIVERY_MS < deadline)
            deadline = self->stop_at + STOP_DELIVERY_MS;
        if (publisher_page_outstanding(self->page) && now < deadline)
            break;
        size_t expired =
            publisher_page_expire(self->page, "no delivery report by the page deadline");
        if (expired)
            log_warn("%zu outbox rows without a delivery report by the deadline; they stay"
                     " unpublished and will be sent again",
                     expired);
        self->t_reported = now;
        s_start_mark(self, true);
        break;
    }
    case S_MARKING:
        switch (publisher_outbox_service(self->outbox, &rows, err, sizeof err)) {
        case 0:
            break;
        case -1:
            s_pg_down(self, err);
            //  Kafka has these rows: mark them after reconnecting instead of
            //  sending them again.
            self->state = publisher_page_delivered(self->page) ? S_UNMARKED : S_IDLE;
            if (self->state == S_IDLE)
                s_page_done(self);
            break;
        default:
            if (rows)
                PQclear(rows);
            s_pg_ok(self);
            self->failures_marked = self->mark_in_claim;
            s_page_done(self);
            break;
        }
        break;
    }
    return again;
}

//  Advances the page state machine as far as it can go without waiting.
static void s_step(self_t *self)
{
    while (s_transition(self))
        ;
    size_t depth = self->state == S_IDLE ? 0 : publisher_page_size(self->page);
    publisher_events_stats_t ev = publisher_events_stats(self->events);
    actor_link_set_queue_depth(self->link, depth + ev.queued + ev.inflight);
}

//  The in-memory queue: read what arrived (not once stopping), produce
//  what the in-flight bound allows, and refresh the figures when they
//  moved.
static void s_events(self_t *self, bool readable)
{
    if (readable && !self->stop_at)
        publisher_events_receive(self->events);
    if (self->producer && !publisher_producer_fatal(self->producer))
        publisher_events_produce(self->events, self->producer, self->tracer);
    publisher_events_stats_t ev = publisher_events_stats(self->events);
    const publisher_events_stats_t *last = &self->events_last;
    bool moved = ev.received != last->received || ev.invalid != last->invalid ||
                 ev.dropped != last->dropped || ev.produced != last->produced ||
                 ev.failed != last->failed || ev.queued != last->queued ||
                 ev.inflight != last->inflight;
    if (ev.produced > self->events_handled) {
        actor_link_count_handled(self->link, ev.produced - self->events_handled);
        self->events_handled = ev.produced;
    }
    if (moved) {
        self->events_last = ev;
        s_metrics(self);
    }
}

static void s_summary(self_t *self)
{
    int64_t now = zclock_mono();
    if (now < self->next_summary)
        return;
    self->next_summary = now + SUMMARY_MS;
    publisher_events_stats_t ev = publisher_events_stats(self->events);
    log_info("outbox relay: published %" PRIu64 " (+%" PRIu64 " in the last %d s), failed %" PRIu64
             ", parked %" PRIu64 ", batches %" PRIu64 ", postgres %s, kafka %s; events: received"
             " %" PRIu64 ", produced %" PRIu64 ", dropped %" PRIu64 ", invalid %" PRIu64
             ", failed %" PRIu64 ", queued %zu",
             self->published, self->published - self->published_logged, SUMMARY_MS / 1000,
             self->failed, self->parked, self->batches, self->pg_state == DEP_DOWN ? "down" : "up",
             self->kafka_state == DEP_DOWN ? "down" : "up", ev.received, ev.produced, ev.dropped,
             ev.invalid, ev.failed, ev.queued + ev.inflight);
    self->published_logged = self->published;
}

static bool s_may_listen(self_t *self)
{
    return !self->stop_at && publisher_outbox_connected(self->outbox) && self->pg_state != DEP_DOWN;
}

//  Milliseconds the loop may sleep: until the next heartbeat (at most
//  100 ms) or the next timer of the page state machine.
static long s_timeout(self_t *self)
{
    long timeout = actor_link_timeout_ms(self->link);
    int64_t now = zclock_mono();
    int64_t due = INT64_MAX;
    if (self->state == S_IDLE && !self->stop_at) {
        int64_t claim = s_claim_due(self);
        due = claim > self->pg_next_connect ? claim : self->pg_next_connect;
    } else if (self->state == S_UNMARKED)
        due = self->pg_next_connect;
    if (s_may_listen(self) && publisher_wake_next_connect(self->wake) < due)
        due = publisher_wake_next_connect(self->wake);
    if (due != INT64_MAX && due - now < timeout)
        timeout = due <= now ? 0 : (long)(due - now);
    return timeout;
}

//  Notifications, and (re)connecting the LISTEN connection when the claim
//  connection works: while PostgreSQL is down the claim connection's
//  back-off is the one that tries, so the loop never waits for two
//  connects at once.
static void s_wake(self_t *self)
{
    if (publisher_wake_service(self->wake, s_may_listen(self)))
        self->wakeup = true;
}

static bool s_finished(self_t *self)
{
    if (!self->stop_at)
        return false;
    //  Queued events get as long as a page in flight, then are lost.
    publisher_events_stats_t ev = publisher_events_stats(self->events);
    if ((ev.queued || ev.inflight) && self->producer &&
        zclock_mono() < self->stop_at + STOP_DELIVERY_MS)
        return false;
    if (self->state == S_IDLE || self->state == S_UNMARKED)
        return true;
    //  Hard bound, whatever the state: the supervisor's stop timeout follows.
    return zclock_mono() > self->stop_at + STOP_DELIVERY_MS + STOP_MARK_MS + 200;
}

int publisher_main(const config_t *cfg, const char *instance)
{
    self_t self = {.cfg = cfg,
                   .instance = instance,
                   .pg_backoff_ms = BACKOFF_MIN_MS,
                   .kafka_backoff_ms = BACKOFF_MIN_MS};
    int rc = 1;
    //  The link first: it blocks SIGTERM/SIGINT before librdkafka starts
    //  its threads, so they inherit the mask.
    self.link = actor_link_new(cfg, instance);
    self.page = publisher_page_new(PAGE_ROWS);
    self.outbox = publisher_outbox_new(cfg->pg_dsn);
    self.wake = publisher_wake_new(cfg->pg_dsn, IDLE_POLL_MS, DEGRADED_POLL_MS);
    if (!self.link || !self.page || !self.outbox || !self.wake)
        goto done;
    char err[512];
    //  After the link, like librdkafka: the export thread inherits the
    //  blocked signals.
    self.tracer = tracer_new(instance, err, sizeof err);
    if (!self.tracer) {
        log_error("tracing: %s", err);
        goto done;
    }
    self.events = publisher_events_new(cfg, instance, 0, err, sizeof err);
    if (!self.events) {
        log_error("%s", err);
        goto done;
    }
    self.next_summary = zclock_mono() + SUMMARY_MS;
    //  Ready means supervised and relaying as soon as dependencies allow;
    //  PostgreSQL or Kafka being down is a degraded state, not unreadiness.
    actor_link_set_ready(self.link);
    log_info("publisher ready: outbox and events -> kafka %s", cfg->kafka_brokers);
    while (!s_finished(&self)) {
        if (actor_link_stopping(self.link) && !self.stop_at) {
            self.stop_at = zclock_mono();
            log_info("publisher stopping: finishing the page in flight (%zu rows)",
                     self.state == S_IDLE ? (size_t)0 : publisher_page_size(self.page));
        }
        zmq_pollitem_t items[5] = {{zsock_resolve(actor_link_socket(self.link)), 0, ZMQ_POLLIN, 0},
                                   {zsock_resolve(publisher_events_socket(self.events)), 0,
                                    self.stop_at ? 0 : ZMQ_POLLIN, 0}};
        int count = 2;
        if (self.producer)
            items[count++] =
                (zmq_pollitem_t){NULL, publisher_producer_fd(self.producer), ZMQ_POLLIN, 0};
        if (publisher_outbox_socket(self.outbox) >= 0)
            items[count++] =
                (zmq_pollitem_t){NULL, publisher_outbox_socket(self.outbox), ZMQ_POLLIN, 0};
        if (publisher_wake_socket(self.wake) >= 0)
            items[count++] =
                (zmq_pollitem_t){NULL, publisher_wake_socket(self.wake), ZMQ_POLLIN, 0};
        if (zmq_poll(items, count, s_timeout(&self)) < 0 && errno != EINTR) {
            log_error("poll failed: %s", zmq_strerror(errno));
            goto done;
        }
        if (items[0].revents & ZMQ_POLLIN)
            actor_link_handle(self.link);
        if (self.producer) {
            publisher_producer_poll(self.producer);
            s_watch_kafka(&self, NULL);
        }
        s_wake(&self);
        s_step(&self);
        s_events(&self, items[1].revents & ZMQ_POLLIN);
        s_summary(&self);
        actor_link_tick(self.link);
    }
    rc = 0;
    publisher_events_stats_t ev = publisher_events_stats(self.events);
    if (ev.queued || ev.inflight)
        log_warn("%zu events still queued or in flight at stop are lost (at most once)",
                 ev.queued + ev.inflight);
    if (self.state == S_UNMARKED)
        log_warn("%zu delivered outbox rows could not be marked; they will be sent again",
                 publisher_page_delivered(self.page));
    log_info("publisher stopped: published %" PRIu64 ", failed %" PRIu64 ", parked %" PRIu64
             ", batches %" PRIu64 "; events produced %" PRIu64 ", dropped %" PRIu64
             ", invalid %" PRIu64 ", failed %" PRIu64,
             self.published, self.failed, self.parked, self.batches, ev.produced, ev.dropped,
             ev.invalid, ev.failed);
done:
    //  The producer first: purging it reports into the page.
    publisher_producer_destroy(&self.producer);
    publisher_events_destroy(&self.events);
    publisher_wake_destroy(&self.wake);
    publisher_outbox_destroy(&self.outbox);
    publisher_page_destroy(&self.page);
    tracer_destroy(&self.tracer);
    actor_link_destroy(&self.link);
    return rc;
}
