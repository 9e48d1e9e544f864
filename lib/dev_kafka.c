/*  dev_kafka.c: `recsd dev-kafka`, a librdkafka mock cluster for development
    and tests.

    The mock cluster speaks the real Kafka wire protocol on loopback, so every
    client (recsd's actors, kcat) talks to it as to a real broker. We print the
    bootstrap servers as the one and only stdout line (scripts read it), log
    everything else as JSON on stderr, and run until SIGTERM or SIGINT.

    usage: recsd dev-kafka [--brokers N] [--partitions P] [--topics a,b,c]
*/
#include "dev_kafka.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "log.h"

//  The topics recsd's actors and the services around it use (DESIGN.md).
static const char s_default_topics[] = "analytics-service.video-watched,"
                                       "profile-service.video-rated,"
                                       "profile-service.watchlist-updated,"
                                       "recommendation-service.model-training-started,"
                                       "recommendation-service.model-training-completed,"
                                       "recommendation-service.recommendations-refreshed,"
                                       "catalog-service.video-upserted,"
                                       "recommendation-service.dead-letter";

#define DEV_KAFKA_MAX_BROKERS 16
#define DEV_KAFKA_MAX_PARTITIONS 1024
#define DEV_KAFKA_TOPIC_MAX 249 //  Kafka's own limit on a topic name

typedef struct {
    int brokers;
    int partitions;
    const char *topics; //  borrowed from argv or s_default_topics
} s_options_t;

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: recsd dev-kafka [--brokers N] [--partitions P] [--topics a,b,c]\n"
            "  --brokers N      mock brokers (1..%d, default 1)\n"
            "  --partitions P   partitions per topic (1..%d, default 4)\n"
            "  --topics LIST    comma-separated topics to create (default: recsd's topics)\n"
            "Prints the bootstrap servers on stdout, then runs until SIGTERM/SIGINT.\n",
            DEV_KAFKA_MAX_BROKERS, DEV_KAFKA_MAX_PARTITIONS);
}

//  Parses a decimal integer in [min, max]. Returns 0, or -1 if text is not one.
static int s_parse_int(const char *text, int min, int max, int *value)
{
    if (!text || !*text)
        return -1;
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *value = (int)v;
    return 0;
}

//  Checks one topic name of length len against Kafka's rules: 1..249 of
//  [A-Za-z0-9._-], and not "." or "..". Returns 0 or -1.
static int s_topic_valid(const char *name, size_t len)
{
    if (len == 0 || len > DEV_KAFKA_TOPIC_MAX)
        return -1;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return -1;
    }
    return 0;
}

//  Checks every name of a comma-separated list. Returns 0, or -1 after
//  printing which one is wrong.
static int s_topics_valid(const char *list)
{
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (s_topic_valid(p, len) != 0) {
            fprintf(stderr,
                    "recsd dev-kafka: invalid topic name \"%.*s\" in --topics "
                    "(1..%d characters of [A-Za-z0-9._-])\n",
                    (int)len, p, DEV_KAFKA_TOPIC_MAX);
            return -1;
        }
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

//  Reads the value of an option given as "--opt VALUE" or "--opt=VALUE".
//  Returns the value (borrowed from argv) and advances *i, or NULL if the
//  argument is not this option or it has no value (then *missing is set).
static const char *s_option(int argc, char **argv, int *i, const char *opt, int *missing)
{
    size_t len = strlen(opt);
    const char *arg = argv[*i];
    //  NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): argv[i] is set for i < argc.
    if (strncmp(arg, opt, len) != 0)
        return NULL;
    if (arg[len] == '=')
        return arg + len + 1;
    if (arg[len] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

//  Fills *opts from argv (argv[0] is "dev-kafka"). Returns 0, 1 if help was
//  asked for, or -1 after printing the error.
static int s_parse_args(int argc, char **argv, s_options_t *opts)
{
    opts->brokers = 1;
    opts->partitions = 4;
    opts->topics = s_default_topics;
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *value;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 1;
        }
        if ((value = s_option(argc, argv, &i, "--brokers", &missing)) != NULL) {
            if (s_parse_int(value, 1, DEV_KAFKA_MAX_BROKERS, &opts->brokers) != 0) {
                fprintf(stderr, "recsd dev-kafka: --brokers must be 1..%d, got \"%s\"\n",
                        DEV_KAFKA_MAX_BROKERS, value);
                return -1;
            }
        } else if ((value = s_option(argc, argv, &i, "--partitions", &missing)) != NULL) {
            if (s_parse_int(value, 1, DEV_KAFKA_MAX_PARTITIONS, &opts->partitions) != 0) {
                fprintf(stderr, "recsd dev-kafka: --partitions must be 1..%d, got \"%s\"\n",
                        DEV_KAFKA_MAX_PARTITIONS, value);
                return -1;
            }
        } else if ((value = s_option(argc, argv, &i, "--topics", &missing)) != NULL) {
            if (s_topics_valid(value) != 0)
                return -1;
            opts->topics = value;
        } else {
            if (missing)
                fprintf(stderr, "recsd dev-kafka: %s needs a value\n", argv[i]);
            else
                fprintf(stderr, "recsd dev-kafka: unknown argument \"%s\"\n", argv[i]);
            s_usage(stderr);
            return -1;
        }
    }
    return 0;
}

//  Routes librdkafka's own log lines (syslog levels) into our JSON log.
static void s_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk; //  one handle per process: the name adds nothing
    log_level_t ours = level <= 3   ? LOG_LEVEL_ERROR
                       : level == 4 ? LOG_LEVEL_WARN
                       : level <= 6 ? LOG_LEVEL_INFO
                                    : LOG_LEVEL_DEBUG;
    log_write(ours, NULL, "librdkafka %s: %s", fac, buf);
}

//  Creates each topic of the comma-separated list. Returns 0, or -1 after
//  logging which topic failed.
static int s_create_topics(rd_kafka_mock_cluster_t *mcluster, const s_options_t *opts)
{
    const char *p = opts->topics;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[DEV_KAFKA_TOPIC_MAX + 1];
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        rd_kafka_resp_err_t rc = rd_kafka_mock_topic_create(mcluster, name, opts->partitions, 1);
        if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
            log_error("cannot create topic %s: %s", name, rd_kafka_err2str(rc));
            return -1;
        }
        log_debug("created topic %s (%d partitions)", name, opts->partitions);
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

int dev_kafka_main(int argc, char **argv)
{
    //  main.c does not load the service configuration for this tool, so only
    //  the log level is taken from the environment.
    log_level_t level = LOG_LEVEL_INFO;
    const char *level_text = getenv("RECSD_LOG_LEVEL");
    if (level_text && *level_text && log_level_parse(level_text, &level) != 0) {
        fprintf(stderr, "recsd dev-kafka: RECSD_LOG_LEVEL must be debug, info, warn or error\n");
        return 1;
    }
    log_init("dev-kafka", level);

    s_options_t opts;
    int parsed = s_parse_args(argc, argv, &opts);
    if (parsed != 0)
        return parsed > 0 ? 0 : 1;

    //  Block the stop signals before librdkafka starts its threads: they
    //  inherit the mask, so the signals stay pending until sigtimedwait()
    //  below takes them. No handler, no global flag.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    int rc = pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    if (rc != 0) {
        fprintf(stderr, "recsd dev-kafka: cannot block signals: %s\n", strerror(rc));
        return 1;
    }
    //  A shell starts background jobs with SIGINT ignored, and an ignored
    //  signal may be discarded rather than queued; blocked, the default
    //  action never runs, so restoring it is safe.
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    if (sigaction(SIGINT, &dfl, NULL) != 0 || sigaction(SIGTERM, &dfl, NULL) != 0) {
        fprintf(stderr, "recsd dev-kafka: cannot reset signal actions: %s\n", strerror(errno));
        return 1;
    }

    int status = 1;
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mcluster = NULL;
    char errstr[512];

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, s_rdkafka_log);
    //  The handle exists only because the mock cluster needs one for its
    //  bookkeeping; it never connects anywhere, so its "no bootstrap.servers"
    //  notice is noise. Real errors still surface through the calls below.
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "recsd dev-kafka: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf); //  still ours when rd_kafka_new fails
        fprintf(stderr, "recsd dev-kafka: cannot create a librdkafka handle: %s\n", errstr);
        return 1;
    }
    mcluster = rd_kafka_mock_cluster_new(rk, opts.brokers);
    if (!mcluster) {
        fprintf(stderr, "recsd dev-kafka: cannot create a mock cluster of %d broker(s)\n",
                opts.brokers);
        goto err;
    }
    if (s_create_topics(mcluster, &opts) != 0) {
        fprintf(stderr, "recsd dev-kafka: cannot create the topics, see the log above\n");
        goto err;
    }

    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);
    //  The one stdout line: scripts wait for it, so flush it now.
    if (printf("%s\n", bootstraps) < 0 || fflush(stdout) != 0) {
        fprintf(stderr, "recsd dev-kafka: cannot write the bootstrap servers to stdout: %s\n",
                strerror(errno));
        goto err;
    }
    log_info("mock Kafka cluster up: brokers=%d partitions=%d bootstrap=%s topics=%s", opts.brokers,
             opts.partitions, bootstraps, opts.topics);

    for (;;) {
        //  A finite wait so the handle's events are served now and then.
        struct timespec timeout = {.tv_sec = 1, .tv_nsec = 0};
        int sig = sigtimedwait(&stop_signals, NULL, &timeout);
        if (sig == SIGTERM || sig == SIGINT) {
            log_info("received %s, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            log_error("sigtimedwait: %s", strerror(errno));
            goto err;
        }
        rd_kafka_poll(rk, 0);
    }
    status = 0;

err:
    if (mcluster)
        rd_kafka_mock_cluster_destroy(mcluster);
    if (rk)
        rd_kafka_destroy(rk);
    if (status == 0)
        log_info("mock Kafka cluster stopped");
    return status;
}
