/*  main.c: the recsd binary's subcommands.

    recsd run                 the supervisor (forks one `recsd actor NAME` each)
    recsd actor NAME [INSTANCE]  one actor process (normally started by `run`)
    recsd ctl status [--json] | restart ACTOR | drain | log-level [LEVEL [ACTOR]]
    recsd migrate             apply migrations/ once, in order
    recsd import movielens DIR   bulk-load MovieLens CSVs (demo data)
    recsd import events FILE     load JSON lines of events (see event_import.h)
    recsd dev-kafka           a librdkafka mock cluster for development
    recsd version
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <czmq.h>

#include "config.h"
#include "log.h"
#include "dev_kafka.h"
#include "event_import.h"
#include "migrate.h"
#include "movielens_import.h"
#include "supervisor/ctl.h"
#include "trace.h"
#include "supervisor/supervisor.h"
#include "actors/gateway/gateway.h"
#include "actors/ingestor/ingestor.h"
#include "actors/publisher/publisher.h"
#include "actors/ranker/ranker.h"
#include "auth_cmd.h"
#include "actors/trainer/trainer.h"

static int s_usage(FILE *out)
{
    fprintf(out,
            "usage: recsd run | actor NAME [INSTANCE] | ctl status [--json] | ctl restart ACTOR |\n"
            "             ctl drain | ctl log-level [debug|info|warn|error [ACTOR|supervisor]] |\n"
            "             migrate | import movielens DIR | import events FILE |\n"
            "             token --sub ID [--roles R,R] [--ttl S] |\n"
            "             hash-api-key [--roles R+R] [--name N] [KEY] | dev-kafka | version\n"
            "Configuration comes from RECSD_* environment variables (see README.md).\n");
    return out == stdout ? 0 : 2;
}

//  RECSD_LOG_FILE, for the service processes (`run` and its actors; one-off
//  commands keep logging to the terminal). The supervisor refuses to start
//  without it, so a wrong path is found at once; an actor falls back to
//  stderr rather than crash-loop over where its lines go.
static int s_log_file(const config_t *cfg, bool required)
{
    if (!cfg->log_file[0])
        return 0;
    char err[512];
    if (log_open_file(cfg->log_file, cfg->log_file_max_bytes, cfg->log_file_keep, err,
                      sizeof err) == 0)
        return 0;
    if (required) {
        fprintf(stderr, "recsd: invalid configuration: RECSD_LOG_FILE=\"%s\": %s\n", cfg->log_file,
                err);
        return -1;
    }
    log_error("RECSD_LOG_FILE not used, logging to stderr: %s", err);
    return 0;
}

static int s_actor(const config_t *cfg, const char *name, const char *instance)
{
    if (strcmp(name, "http-gateway") == 0)
        return gateway_main(cfg, instance);
    if (strcmp(name, "ranker") == 0)
        return ranker_main(cfg, instance);
    if (strcmp(name, "trainer") == 0)
        return trainer_main(cfg, instance);
    if (strcmp(name, "event-ingestor") == 0)
        return ingestor_main(cfg, instance);
    if (strcmp(name, "publisher") == 0)
        return publisher_main(cfg, instance);
    fprintf(stderr, "recsd: unknown actor \"%s\"\n", name);
    return 2;
}

//  OpenBLAS (Debian's pthreads build) starts its worker threads in a
//  library constructor, before main, with no signal blocked. The
//  supervisor and dev-kafka read SIGTERM from a signalfd with the signal
//  blocked in their own threads only, so SIGTERM would be delivered to an
//  OpenBLAS thread and take its default action: the process dies instead
//  of stopping in order. With OPENBLAS_NUM_THREADS=1 OpenBLAS starts no
//  thread, so every command runs with it, exec'ing itself once to get it
//  (the environment is read before main). Training parallelises with its
//  own threads (als.c, evaluation.c), not through OpenBLAS.
static void s_single_threaded_blas(char **argv)
{
    const char *value = getenv("OPENBLAS_NUM_THREADS");
    if (value && strcmp(value, "1") == 0)
        return;
    if (setenv("OPENBLAS_NUM_THREADS", "1", 1) != 0) {
        fprintf(stderr, "recsd: cannot set OPENBLAS_NUM_THREADS: %s\n", strerror(errno));
        return;
    }
    //  By its real path, so that the process keeps its name ("recsd", not
    //  "exe") in ps and /proc/PID/comm.
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
        self[len] = '\0';
        execv(self, argv);
    }
    fprintf(stderr,
            "recsd: cannot re-exec with OPENBLAS_NUM_THREADS=1 (%s); SIGTERM may kill "
            "this process instead of stopping it\n",
            strerror(errno));
}

int main(int argc, char **argv)
{
    s_single_threaded_blas(argv);
    if (argc < 2)
        return s_usage(stderr);
    const char *cmd = argv[1];
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("recsd %s\n", RECSD_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return s_usage(stdout);
    if (strcmp(cmd, "dev-kafka") == 0)
        return dev_kafka_main(argc - 1, argv + 1);
    if (strcmp(cmd, "hash-api-key") == 0)
        return auth_cmd_hash_api_key(argc - 1, argv + 1);

    //  Every other command reads and validates the whole configuration
    //  first, so a bad variable stops us before anything is forked.
    config_t cfg;
    char err[512];
    if (config_load(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "recsd: %s\n", err);
        return RECSD_EXIT_CONFIG;
    }
    //  czmq must not install its own SIGINT/SIGTERM handlers: the
    //  supervisor (maybe PID 1) and the actors own their signals.
    zsys_handler_set(NULL);

    if (strcmp(cmd, "run") == 0) {
        //  The OpenTelemetry variables too: every actor would refuse them
        //  one by one, after the fork (config_check does not know them).
        if (tracer_check_env(err, sizeof err) != 0) {
            fprintf(stderr, "recsd: tracing configuration: %s\n", err);
            return RECSD_EXIT_CONFIG;
        }
        log_init("supervisor", cfg.log_level);
        if (s_log_file(&cfg, true) != 0)
            return RECSD_EXIT_CONFIG;
        return supervisor_run(&cfg, argv[0]);
    }
    if (strcmp(cmd, "actor") == 0 && (argc == 3 || argc == 4)) {
        //  The instance name ("ranker.2") is given by the supervisor when an
        //  actor runs several times; it defaults to the actor's name.
        const char *instance = argc == 4 ? argv[3] : argv[2];
        if (strlen(instance) > 31 || strncmp(instance, argv[2], strlen(argv[2])) != 0) {
            fprintf(stderr, "recsd: bad instance name \"%s\" for actor %s\n", instance, argv[2]);
            return 2;
        }
        log_init(instance, cfg.log_level);
        if (s_log_file(&cfg, false) != 0)
            return RECSD_EXIT_CONFIG;
        return s_actor(&cfg, argv[2], instance);
    }
    if (strcmp(cmd, "ctl") == 0) {
        log_init("ctl", cfg.log_level);
        return ctl_main(&cfg, argc - 2, argv + 2);
    }
    if (strcmp(cmd, "token") == 0)
        return auth_cmd_token(&cfg, argc - 1, argv + 1);
    if (strcmp(cmd, "migrate") == 0) {
        log_init("migrate", cfg.log_level);
        return migrate_run(&cfg) == 0 ? 0 : 1;
    }
    if (strcmp(cmd, "import") == 0) {
        log_init("import", cfg.log_level);
        if (argc >= 3 && strcmp(argv[2], "events") == 0)
            return event_import_main(&cfg, argc - 2, argv + 2);
        return movielens_import_main(&cfg, argc - 2, argv + 2);
    }
    return s_usage(stderr);
}
