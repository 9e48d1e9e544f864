/*  test_config.c: configuration from the environment (config.c). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "leak_check.h"

static const char *s_vars[] = {"RECSD_HTTP_PORT",
                               "RECSD_ACTORS",
                               "RECSD_REQUIRED_ACTORS",
                               "RECSD_HEARTBEAT_INTERVAL_MS",
                               "RECSD_HEARTBEAT_TIMEOUT_MS",
                               "RECSD_RUNTIME_DIR",
                               "RECSD_LOG_LEVEL",
                               "RECSD_ADMIN_TCP",
                               "RECSD_ARTIFACT_URL",
                               "RECSD_BACKOFF_MIN_MS",
                               "RECSD_BACKOFF_MAX_MS",
                               "RECSD_LOG_FILE",
                               "RECSD_LOG_FILE_MAX_BYTES",
                               "RECSD_LOG_FILE_KEEP"};

static void s_clean(void)
{
    for (size_t i = 0; i < sizeof s_vars / sizeof *s_vars; i++)
        unsetenv(s_vars[i]);
}

TestSuite(config, .init = s_clean, .fini = leak_check_fini);

static void s_expect_error(const char *var, const char *value, const char *fragment)
{
    s_clean();
    setenv(var, value, 1);
    config_t cfg;
    char err[512] = "";
    cr_assert_eq(config_load(&cfg, err, sizeof err), -1, "%s=%s accepted", var, value);
    cr_assert(strstr(err, var), "error does not name %s: %s", var, err);
    cr_assert(strstr(err, fragment), "error lacks \"%s\": %s", fragment, err);
}

Test(config, defaults_are_valid)
{
    config_t cfg;
    char err[512];
    cr_assert_eq(config_load(&cfg, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cfg.http_port, 8080);
    cr_assert_eq(cfg.actor_count, 5);
    cr_assert_str_eq(cfg.actors[0], "publisher");
    cr_assert_str_eq(cfg.actors[4], "http-gateway");
    cr_assert_eq(cfg.required_count, 5);
}

Test(config, actor_subset_keeps_start_order)
{
    setenv("RECSD_ACTORS", "http-gateway, ranker,publisher", 1);
    config_t cfg;
    char err[512];
    cr_assert_eq(config_load(&cfg, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cfg.actor_count, 3);
    cr_assert_str_eq(cfg.actors[0], "publisher");
    cr_assert_str_eq(cfg.actors[1], "ranker");
    cr_assert_str_eq(cfg.actors[2], "http-gateway");
    cr_assert(config_runs(&cfg, "ranker"));
    cr_assert_not(config_runs(&cfg, "trainer"));
}

Test(config, errors_name_the_variable)
{
    s_expect_error("RECSD_HTTP_PORT", "eighty", "not an integer");
    s_expect_error("RECSD_HTTP_PORT", "70000", "between 1 and 65535");
    s_expect_error("RECSD_ACTORS", "ranker,cooker", "unknown actor \"cooker\"");
    s_expect_error("RECSD_ACTORS", "", "names no actor");
    s_expect_error("RECSD_RUNTIME_DIR", "relative/dir", "absolute");
    s_expect_error(
        "RECSD_RUNTIME_DIR",
        "/tmp/"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "too long");
    s_expect_error("RECSD_LOG_LEVEL", "loud", "debug, info");
    s_expect_error("RECSD_ADMIN_TCP", "tcp://0.0.0.0:5000", "loopback");
    s_expect_error("RECSD_ARTIFACT_URL", "ftp://x", "file://");
}

Test(config, cross_field_rules)
{
    setenv("RECSD_HEARTBEAT_INTERVAL_MS", "1000", 1);
    setenv("RECSD_HEARTBEAT_TIMEOUT_MS", "500", 1);
    config_t cfg;
    char err[512];
    cr_assert_eq(config_load(&cfg, err, sizeof err), -1);
    cr_assert(strstr(err, "RECSD_HEARTBEAT_TIMEOUT_MS"), "%s", err);
    s_clean();
    setenv("RECSD_ACTORS", "ranker", 1);
    setenv("RECSD_REQUIRED_ACTORS", "trainer", 1);
    cr_assert_eq(config_load(&cfg, err, sizeof err), -1);
    cr_assert(strstr(err, "RECSD_REQUIRED_ACTORS"), "%s", err);
}

Test(config, endpoint_paths)
{
    setenv("RECSD_RUNTIME_DIR", "/run/recsd", 1);
    config_t cfg;
    char err[512], buf[160];
    cr_assert_eq(config_load(&cfg, err, sizeof err), 0, "%s", err);
    cr_assert_eq(config_endpoint(&cfg, "ranker", buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "ipc:///run/recsd/ranker");
    cr_assert_eq(config_endpoint(&cfg, "ranker", buf, 10), -1);
}

Test(config, actor_instances)
{
    setenv("RECSD_ACTORS", "ranker:3,http-gateway", 1);
    config_t cfg;
    char err[512], buf[1024];
    cr_assert_eq(config_load(&cfg, err, sizeof err), 0, "%s", err);
    cr_assert_eq(config_instances(&cfg, "ranker"), 3);
    cr_assert_eq(config_instances(&cfg, "http-gateway"), 1);
    cr_assert_eq(config_instances(&cfg, "trainer"), 0);
    cr_assert_eq(config_instance_name(&cfg, "ranker", 2, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "ranker.2");
    cr_assert_eq(config_instance_name(&cfg, "http-gateway", 1, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "http-gateway");
    setenv("RECSD_RUNTIME_DIR", "/run/r", 1);
    cr_assert_eq(config_load(&cfg, err, sizeof err), 0, "%s", err);
    cr_assert_eq(config_endpoints(&cfg, "ranker", buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "ipc:///run/r/ranker.1,ipc:///run/r/ranker.2,ipc:///run/r/ranker.3");
    s_expect_error("RECSD_ACTORS", "ranker:0", "N in 1..8");
    s_expect_error("RECSD_ACTORS", "ranker:x", "N in 1..8");
    s_expect_error("RECSD_ACTORS", "publisher:2", "runs once per pod");
    s_expect_error("RECSD_REQUIRED_ACTORS", "ranker:2", "only in RECSD_ACTORS");
}

Test(config, log_file_settings)
{
    config_t cfg;
    char err[512];
    cr_assert_eq(config_load(&cfg, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(cfg.log_file, "", "stderr only by default");
    cr_assert_eq(cfg.log_file_max_bytes, 100ull << 20);
    cr_assert_eq(cfg.log_file_keep, 5);

    setenv("RECSD_LOG_FILE", "/var/log/recsd/recsd.log", 1);
    setenv("RECSD_LOG_FILE_KEEP", "12", 1);
    const struct {
        const char *text;
        uint64_t bytes;
    } sizes[] = {{"4096", 4096},       {"64K", 64 << 10},      {"64k", 64 << 10},
                 {"10M", 10ull << 20}, {"10MiB", 10ull << 20}, {"2GB", 2ull << 30},
                 {"1024G", 1ull << 40}};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        setenv("RECSD_LOG_FILE_MAX_BYTES", sizes[i].text, 1);
        cr_assert_eq(config_load(&cfg, err, sizeof err), 0, "%s: %s", sizes[i].text, err);
        cr_assert_eq(cfg.log_file_max_bytes, sizes[i].bytes, "%s", sizes[i].text);
    }
    cr_assert_str_eq(cfg.log_file, "/var/log/recsd/recsd.log");
    cr_assert_eq(cfg.log_file_keep, 12);

    s_expect_error("RECSD_LOG_FILE_MAX_BYTES", "big", "not a size");
    s_expect_error("RECSD_LOG_FILE_MAX_BYTES", "5X", "not a size");
    s_expect_error("RECSD_LOG_FILE_MAX_BYTES", "-5M", "not a size");
    s_expect_error("RECSD_LOG_FILE_MAX_BYTES", "10 M", "not a size");
    s_expect_error("RECSD_LOG_FILE_MAX_BYTES", "100", "between 4096 and");
    s_expect_error("RECSD_LOG_FILE_MAX_BYTES", "2048G", "between 4096 and");
    s_expect_error("RECSD_LOG_FILE_MAX_BYTES", "99999999999999999999", "not a size");
    s_expect_error("RECSD_LOG_FILE_MAX_BYTES", "18014398509481984K", "between 4096 and");
    s_expect_error("RECSD_LOG_FILE_KEEP", "0", "between 1 and 1000");
    s_expect_error("RECSD_LOG_FILE_KEEP", "many", "not an integer");
    s_expect_error("RECSD_LOG_FILE", "logs/recsd.log", "absolute path");
    s_expect_error("RECSD_LOG_FILE", "/var/log/recsd/", "absolute path to a file");
}
