/*  dev_kafka.c: `recsd dev-kafka`, a librdkafka mock cluster for development
    and tests.

    The mock cluster speaks the real Kafka wire protocol on loopback, so every
    client (recsd's actors, kcat) talks to it as to a real broker. We print the
    bootstrap servers as the first stdout line (scripts read it), log
    everything else as JSON on stderr, and run until SIGTERM or SIGINT.

    With --control, fault injection from outside the process: stdin carries
    one command per line, and each is answered with exactly one stdout line,
    "ok" or "error: <why>", in order (see s_usage for the commands). EOF on
    stdin only ends the commands; the cluster runs on until a signal. Without
    --control, stdin is not read and the bootstrap line is the only output.

    usage: recsd dev-kafka [--brokers N] [--partitions P] [--topics a,b,c] [--control]
*/
#include "dev_kafka.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <unistd.h>

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
#define DEV_KAFKA_LINE_MAX 512  //  longest control command line
#define DEV_KAFKA_RTT_MAX 60000 //  ms
#define DEV_KAFKA_ERRORS_MAX 100000

typedef struct {
    int brokers;
    int partitions;
    const char *topics; //  borrowed from argv or s_default_topics
    bool control;       //  read fault-injection commands on stdin
} s_options_t;

//  The request types worth failing on purpose (Kafka protocol ApiKeys;
//  librdkafka does not install its protocol header).
static const struct {
    const char *name;
    int16_t key;
} s_api_keys[] = {
    {"Produce", 0},      {"Fetch", 1},       {"ListOffsets", 2},      {"Metadata", 3},
    {"OffsetCommit", 8}, {"OffsetFetch", 9}, {"FindCoordinator", 10}, {"JoinGroup", 11},
    {"Heartbeat", 12},   {"LeaveGroup", 13}, {"SyncGroup", 14},
};

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: recsd dev-kafka [--brokers N] [--partitions P] [--topics a,b,c] [--control]\n"
            "  --brokers N      mock brokers (1..%d, default 1)\n"
            "  --partitions P   partitions per topic (1..%d, default 4)\n"
            "  --topics LIST    comma-separated topics to create (default: recsd's topics)\n"
            "  --control        read fault-injection commands on stdin, one per line, each\n"
            "                   answered on stdout with one line: \"ok\" or \"error: ...\"\n"
            "Prints the bootstrap servers on stdout, then runs until SIGTERM/SIGINT.\n"
            "Control commands (ID: a broker id 1..N, or \"all\"):\n"
            "  broker-down ID                      close its connections, refuse new ones\n"
            "  broker-up ID                        accept connections again\n"
            "  rtt ID MS                           delay its responses by MS (0..%d) ms\n"
            "  request-errors API COUNT ERRNAME    fail the next COUNT (1..%d) requests of API\n"
            "                                      with ERRNAME, e.g. Fetch 5 "
            "NOT_LEADER_FOR_PARTITION\n"
            "  topic-error TOPIC ERRNAME           Metadata reports ERRNAME for TOPIC (NO_ERROR "
            "clears)\n"
            "API: Produce Fetch ListOffsets Metadata OffsetCommit OffsetFetch FindCoordinator\n"
            "     JoinGroup Heartbeat LeaveGroup SyncGroup. ERRNAME: a Kafka error name as\n"
            "     rd_kafka_err2name() spells it; _TRANSPORT makes the broker disconnect.\n"
            "EOF on stdin ends the commands, not the cluster.\n",
            DEV_KAFKA_MAX_BROKERS, DEV_KAFKA_MAX_PARTITIONS, DEV_KAFKA_RTT_MAX,
            DEV_KAFKA_ERRORS_MAX);
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
    opts->control = false;
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *value;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 1;
        }
        if (strcmp(argv[i], "--control") == 0) {
            opts->control = true;
            continue;
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

//  --- the control channel (--control) -------------------------------------

typedef struct {
    rd_kafka_mock_cluster_t *mcluster; //  borrowed
    int brokers;
    char line[DEV_KAFKA_LINE_MAX + 1];
    size_t used;
    bool overlong; //  dropping the rest of a line that did not fit
} s_control_t;

//  A broker id, 1..brokers, or "all" (-1 to librdkafka). Returns 0 or -1.
static int s_broker_id(const s_control_t *ctl, const char *text, int32_t *id, char *err,
                       size_t errlen)
{
    int value;
    if (strcmp(text, "all") == 0) {
        *id = -1;
        return 0;
    }
    if (s_parse_int(text, 1, ctl->brokers, &value) != 0) {
        snprintf(err, errlen, "broker id must be 1..%d or all, got \"%s\"", ctl->brokers, text);
        return -1;
    }
    *id = value;
    return 0;
}

static int s_api_key(const char *name, int16_t *key, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof s_api_keys / sizeof s_api_keys[0]; i++)
        if (strcasecmp(name, s_api_keys[i].name) == 0) {
            *key = s_api_keys[i].key;
            return 0;
        }
    snprintf(err, errlen, "unknown request type \"%s\" (see --help)", name);
    return -1;
}

//  An error name as rd_kafka_err2name() spells it (case ignored). Only
//  codes a broker can send are accepted, plus _TRANSPORT (the mock then
//  disconnects) when for_request; NO_ERROR only when !for_request.
static int s_error_code(const char *name, bool for_request, rd_kafka_resp_err_t *code, char *err,
                        size_t errlen)
{
    const struct rd_kafka_err_desc *descs = NULL;
    size_t count = 0;
    rd_kafka_get_err_descs(&descs, &count);
    for (size_t i = 0; i < count; i++) {
        if (!descs[i].name || strcasecmp(name, descs[i].name) != 0)
            continue;
        rd_kafka_resp_err_t found = descs[i].code;
        bool usable = for_request ? found > 0 || found == RD_KAFKA_RESP_ERR__TRANSPORT : found >= 0;
        if (!usable)
            break;
        *code = found;
        return 0;
    }
    snprintf(err, errlen, "\"%s\" is not a usable Kafka error name here", name);
    return -1;
}

//  Runs one command (line is modified). Returns 0, or -1 with the reason.
static int s_command(s_control_t *ctl, char *line, char *err, size_t errlen)
{
    char *arg[5];
    int argc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(line, " \t\r", &save); tok; tok = strtok_r(NULL, " \t\r", &save)) {
        if (argc == 5) {
            snprintf(err, errlen, "too many arguments");
            return -1;
        }
        arg[argc++] = tok;
    }
    if (argc == 0) {
        snprintf(err, errlen, "empty command");
        return -1;
    }
    const char *cmd = arg[0];
    int32_t broker;
    rd_kafka_resp_err_t rc;
    if (strcmp(cmd, "broker-down") == 0 || strcmp(cmd, "broker-up") == 0) {
        if (argc != 2) {
            snprintf(err, errlen, "usage: %s ID", cmd);
            return -1;
        }
        if (s_broker_id(ctl, arg[1], &broker, err, errlen) != 0)
            return -1;
        rc = strcmp(cmd, "broker-down") == 0 ? rd_kafka_mock_broker_set_down(ctl->mcluster, broker)
                                             : rd_kafka_mock_broker_set_up(ctl->mcluster, broker);
    } else if (strcmp(cmd, "rtt") == 0) {
        int ms;
        if (argc != 3) {
            snprintf(err, errlen, "usage: rtt ID MS");
            return -1;
        }
        if (s_broker_id(ctl, arg[1], &broker, err, errlen) != 0)
            return -1;
        if (s_parse_int(arg[2], 0, DEV_KAFKA_RTT_MAX, &ms) != 0) {
            snprintf(err, errlen, "MS must be 0..%d, got \"%s\"", DEV_KAFKA_RTT_MAX, arg[2]);
            return -1;
        }
        rc = rd_kafka_mock_broker_set_rtt(ctl->mcluster, broker, ms);
    } else if (strcmp(cmd, "request-errors") == 0) {
        int16_t key;
        int count;
        rd_kafka_resp_err_t code;
        if (argc != 4) {
            snprintf(err, errlen, "usage: request-errors API COUNT ERRNAME");
            return -1;
        }
        if (s_api_key(arg[1], &key, err, errlen) != 0)
            return -1;
        if (s_parse_int(arg[2], 1, DEV_KAFKA_ERRORS_MAX, &count) != 0) {
            snprintf(err, errlen, "COUNT must be 1..%d, got \"%s\"", DEV_KAFKA_ERRORS_MAX, arg[2]);
            return -1;
        }
        if (s_error_code(arg[3], true, &code, err, errlen) != 0)
            return -1;
        rd_kafka_resp_err_t *codes = malloc((size_t)count * sizeof *codes);
        if (!codes) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (int i = 0; i < count; i++)
            codes[i] = code;
        //  Copied onto the cluster's error stack: ours to free.
        rd_kafka_mock_push_request_errors_array(ctl->mcluster, key, (size_t)count, codes);
        free(codes);
        rc = RD_KAFKA_RESP_ERR_NO_ERROR;
    } else if (strcmp(cmd, "topic-error") == 0) {
        rd_kafka_resp_err_t code;
        if (argc != 3) {
            snprintf(err, errlen, "usage: topic-error TOPIC ERRNAME");
            return -1;
        }
        if (s_topic_valid(arg[1], strlen(arg[1])) != 0) {
            snprintf(err, errlen, "invalid topic name \"%s\"", arg[1]);
            return -1;
        }
        if (s_error_code(arg[2], false, &code, err, errlen) != 0)
            return -1;
        rd_kafka_mock_topic_set_error(ctl->mcluster, arg[1], code);
        rc = RD_KAFKA_RESP_ERR_NO_ERROR;
    } else {
        snprintf(err, errlen, "unknown command \"%s\" (see --help)", cmd);
        return -1;
    }
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "%s", rd_kafka_err2str(rc));
        return -1;
    }
    return 0;
}

//  Answers the line collected in ctl and starts the next. Returns 0, or -1
//  if stdout is gone (nobody is left to read the answers).
static int s_control_line(s_control_t *ctl)
{
    char err[256];
    char what[DEV_KAFKA_LINE_MAX + 1];
    int rc = -1;
    ctl->line[ctl->used] = '\0';
    snprintf(what, sizeof what, "%s", ctl->line);
    if (ctl->overlong)
        snprintf(err, sizeof err, "line longer than %d bytes", DEV_KAFKA_LINE_MAX);
    else
        rc = s_command(ctl, ctl->line, err, sizeof err);
    ctl->used = 0;
    ctl->overlong = false;
    if (rc == 0)
        log_info("control: %s: ok", what);
    else
        log_warn("control: %s: %s", what, err);
    int n = rc == 0 ? printf("ok\n") : printf("error: %s\n", err);
    if (n < 0 || fflush(stdout) != 0) {
        log_warn("control: cannot answer on stdout (%s): no more commands", strerror(errno));
        return -1;
    }
    return 0;
}

//  Reads what stdin has and answers every complete line. Returns 0 to keep
//  reading, 1 at EOF (an unterminated last line is still answered), -1 on
//  a read or write error.
static int s_control_read(s_control_t *ctl)
{
    char chunk[4096];
    ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return 0;
        log_warn("control: reading stdin: %s: no more commands", strerror(errno));
        return -1;
    }
    if (n == 0) {
        if ((ctl->used || ctl->overlong) && s_control_line(ctl) != 0)
            return -1;
        return 1;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (chunk[i] == '\n') {
            if (s_control_line(ctl) != 0)
                return -1;
        } else if (ctl->used == DEV_KAFKA_LINE_MAX)
            ctl->overlong = true;
        else if (!ctl->overlong)
            ctl->line[ctl->used++] = chunk[i];
    }
    return 0;
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
    //  inherit the mask, so the signals stay pending until the loop reads
    //  them from a signalfd. No handler, no global flag.
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
    //  A reader that went away makes a write fail with EPIPE (handled)
    //  instead of killing the cluster.
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigemptyset(&ign.sa_mask);
    if (sigaction(SIGINT, &dfl, NULL) != 0 || sigaction(SIGTERM, &dfl, NULL) != 0 ||
        sigaction(SIGPIPE, &ign, NULL) != 0) {
        fprintf(stderr, "recsd dev-kafka: cannot reset signal actions: %s\n", strerror(errno));
        return 1;
    }
    int sfd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
    if (sfd < 0) {
        fprintf(stderr, "recsd dev-kafka: signalfd: %s\n", strerror(errno));
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
        goto err;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf); //  still ours when rd_kafka_new fails
        fprintf(stderr, "recsd dev-kafka: cannot create a librdkafka handle: %s\n", errstr);
        goto err;
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
    log_info("mock Kafka cluster up: brokers=%d partitions=%d bootstrap=%s topics=%s%s",
             opts.brokers, opts.partitions, bootstraps, opts.topics,
             opts.control ? " (control commands on stdin)" : "");

    s_control_t ctl = {.mcluster = mcluster, .brokers = opts.brokers};
    bool reading = opts.control;
    for (;;) {
        //  A finite wait so the handle's events are served now and then. A
        //  negative fd is skipped by poll: stdin once it is done with.
        struct pollfd fds[2] = {{.fd = sfd, .events = POLLIN},
                                {.fd = reading ? STDIN_FILENO : -1, .events = POLLIN}};
        int ready = poll(fds, 2, 1000);
        if (ready < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            goto err;
        }
        if (ready > 0 && (fds[0].revents & POLLIN)) {
            struct signalfd_siginfo info;
            if (read(sfd, &info, sizeof info) == (ssize_t)sizeof info) {
                log_info("received %s, stopping", info.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
                break;
            }
        }
        if (ready > 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            int rc = s_control_read(&ctl);
            if (rc != 0) {
                reading = false;
                if (rc > 0)
                    log_info("stdin closed: no more control commands; running until a signal");
            }
        }
        rd_kafka_poll(rk, 0);
    }
    status = 0;

err:
    if (mcluster)
        rd_kafka_mock_cluster_destroy(mcluster);
    if (rk)
        rd_kafka_destroy(rk);
    close(sfd);
    if (status == 0)
        log_info("mock Kafka cluster stopped");
    return status;
}
