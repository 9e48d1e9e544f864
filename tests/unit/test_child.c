/*  test_child.c: restart policy of one supervised actor (child.c). */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "leak_check.h"
#include "supervisor/child.h"

static config_t s_cfg;

static void s_setup(void)
{
    char err[256];
    cr_assert_eq(config_load(&s_cfg, err, sizeof err), 0, "%s", err);
    s_cfg.backoff_min_ms = 100;
    s_cfg.backoff_max_ms = 800;
    s_cfg.backoff_reset_ms = 60000;
    s_cfg.restart_max = 3;
    s_cfg.restart_window_ms = 30000;
    s_cfg.failed_retry_ms = 300000;
    s_cfg.heartbeat_timeout_ms = 3000;
    s_cfg.start_timeout_ms = 10000;
    s_cfg.stop_timeout_ms = 5000;
}

TestSuite(child, .init = s_setup, .fini = leak_check_fini);

static const int killed = 9; //  W_EXITCODE-style status of a SIGKILL

Test(child, starts_at_once_and_becomes_running_on_ready)
{
    child_t *c = child_new(&s_cfg, "ranker", "ranker", RESTART_PERMANENT);
    cr_assert(child_due_start(c, 0));
    child_spawned(c, 42, 0);
    cr_assert_eq(child_state(c), CHILD_STARTING);
    cr_assert_not(child_heartbeat(c, 41, "ready", 0, 0, NULL, 10),
                  "beat from another pid accepted");
    cr_assert_eq(child_state(c), CHILD_STARTING);
    cr_assert(child_heartbeat(c, 42, "ready", 5, 1, "m 1\n", 10));
    cr_assert_eq(child_state(c), CHILD_RUNNING);
    cr_assert_eq(child_handled(c), 5);
    cr_assert_str_eq(child_metrics(c), "m 1\n");
    child_spawned(c, 43, 20);
    cr_assert_null(child_metrics(c), "a new process starts without metrics");
    child_destroy(&c);
    cr_assert_null(c);
    child_destroy(&c); //  idempotent
}

Test(child, long_run_restarts_after_min_backoff)
{
    child_t *c = child_new(&s_cfg, "ranker", "ranker", RESTART_PERMANENT);
    child_spawned(c, 42, 0);
    child_heartbeat(c, 42, "ready", 0, 0, NULL, 10);
    child_exited(c, killed, 100000);
    cr_assert_eq(child_state(c), CHILD_BACKOFF);
    cr_assert_eq(child_restarts(c), 1);
    cr_assert_not(child_due_start(c, 100099));
    cr_assert(child_due_start(c, 100100));
    child_destroy(&c);
}

Test(child, crash_loop_is_spaced_one_second_and_then_failed)
{
    child_t *c = child_new(&s_cfg, "trainer", "trainer", RESTART_PERMANENT);
    int64_t now = 0;
    for (int i = 1; i <= 3; i++) {
        child_spawned(c, 100 + i, now);
        child_exited(c, W_EXITCODE(1, 0), now + 5);
        cr_assert_eq(child_state(c), CHILD_BACKOFF, "restart %d", i);
        //  Never sooner than one second after the previous spawn.
        cr_assert_not(child_due_start(c, now + 999));
        int64_t t = now + 1000;
        while (!child_due_start(c, t))
            t += 10;
        now = t;
    }
    child_spawned(c, 200, now);
    child_exited(c, W_EXITCODE(1, 0), now + 5);
    cr_assert_eq(child_state(c), CHILD_FAILED, "4 restarts in the window exceed max 3");
    cr_assert_not(child_due_start(c, now + 5 + 299999));
    cr_assert(child_due_start(c, now + 5 + 300000), "failed actor is retried after a long wait");
    child_destroy(&c);
}

Test(child, backoff_doubles_to_cap)
{
    s_cfg.restart_max = 100;
    child_t *c = child_new(&s_cfg, "ranker", "ranker", RESTART_PERMANENT);
    int64_t now = 0;
    for (int i = 0; i < 5; i++) {
        child_spawned(c, 10 + i, now);
        child_exited(c, killed, now + 2000); //  ran 2 s: spacing rule is met
        int64_t wait = child_next_timer(c, now + 2000);
        int64_t want = i == 0 ? 100 : i == 1 ? 200 : i == 2 ? 400 : 800;
        cr_assert_eq(wait, want, "restart %d waits %lld, want %lld", i, (long long)wait,
                     (long long)want);
        now += 2000 + wait;
    }
    child_destroy(&c);
}

Test(child, clean_long_run_resets_backoff)
{
    s_cfg.restart_max = 100;
    child_t *c = child_new(&s_cfg, "ranker", "ranker", RESTART_PERMANENT);
    int64_t now = 0;
    for (int i = 0; i < 4; i++) {
        child_spawned(c, 10 + i, now);
        child_exited(c, killed, now + 2000);
        now += 2000 + child_next_timer(c, now + 2000);
    }
    child_spawned(c, 20, now);
    child_exited(c, killed, now + 60000);
    cr_assert_eq(child_next_timer(c, now + 60000), 100);
    child_destroy(&c);
}

Test(child, missed_heartbeats_are_overdue)
{
    child_t *c = child_new(&s_cfg, "ranker", "ranker", RESTART_PERMANENT);
    child_spawned(c, 42, 0);
    child_heartbeat(c, 42, "ready", 0, 0, NULL, 100);
    const char *why = NULL;
    cr_assert_not(child_overdue(c, 3100, &why));
    cr_assert(child_overdue(c, 3101, &why));
    cr_assert_str_eq(why, "missed heartbeats");
    child_destroy(&c);
}

Test(child, silent_start_is_overdue_after_start_timeout)
{
    child_t *c = child_new(&s_cfg, "ranker", "ranker", RESTART_PERMANENT);
    child_spawned(c, 42, 0);
    const char *why = NULL;
    cr_assert_not(child_overdue(c, 10000, &why));
    cr_assert(child_overdue(c, 10001, &why));
    child_destroy(&c);
}

Test(child, operator_restart_is_not_a_failure)
{
    child_t *c = child_new(&s_cfg, "ranker", "ranker", RESTART_PERMANENT);
    for (int i = 0; i < 10; i++) {
        child_spawned(c, 10 + i, (int64_t)i * 10);
        child_stop_requested(c, true, (int64_t)i * 10 + 1);
        cr_assert_eq(child_state(c), CHILD_STOPPING);
        child_exited(c, 0, (int64_t)i * 10 + 2);
        cr_assert_eq(child_state(c), CHILD_BACKOFF);
        cr_assert(child_due_start(c, (int64_t)i * 10 + 2));
    }
    cr_assert_eq(child_restarts(c), 10);
    child_destroy(&c);
}

Test(child, shutdown_stop_parks_it)
{
    child_t *c = child_new(&s_cfg, "ranker", "ranker", RESTART_PERMANENT);
    child_spawned(c, 42, 0);
    child_stop_requested(c, false, 10);
    const char *why = NULL;
    cr_assert_not(child_overdue(c, 5010, &why));
    cr_assert(child_overdue(c, 5011, &why), "stop timeout escalates to a kill");
    child_exited(c, W_EXITCODE(0, 0), 20);
    cr_assert_eq(child_state(c), CHILD_STOPPED);
    cr_assert_not(child_due_start(c, 1000000));
    child_destroy(&c);
}

Test(child, transient_and_temporary_policies)
{
    child_t *t = child_new(&s_cfg, "trainer", "trainer", RESTART_TRANSIENT);
    child_spawned(t, 1, 0);
    child_exited(t, W_EXITCODE(0, 0), 10);
    cr_assert_eq(child_state(t), CHILD_STOPPED, "transient: clean exit is final");
    child_spawned(t, 2, 20);
    child_exited(t, W_EXITCODE(3, 0), 30);
    cr_assert_eq(child_state(t), CHILD_BACKOFF, "transient: abnormal exit restarts");
    child_destroy(&t);
    child_t *tmp = child_new(&s_cfg, "trainer", "trainer", RESTART_TEMPORARY);
    child_spawned(tmp, 1, 0);
    child_exited(tmp, killed, 10);
    cr_assert_eq(child_state(tmp), CHILD_STOPPED, "temporary: never restarted");
    child_destroy(&tmp);
}

Test(child, starting_timer_matches_overdue_rule)
{
    //  Between the heartbeat timeout (3 s) and the start timeout (10 s) a
    //  silent starting child is not overdue, so its timer must not be due
    //  either: a timer of 0 there made the supervisor spin.
    child_t *c = child_new(&s_cfg, "ranker", "ranker", RESTART_PERMANENT);
    child_spawned(c, 42, 0);
    const char *why = NULL;
    for (int64_t t = 0; t <= 10000; t += 500) {
        cr_assert_not(child_overdue(c, t, &why));
        cr_assert_gt(child_next_timer(c, t), 0, "timer due at %lld while not overdue",
                     (long long)t);
    }
    cr_assert(child_overdue(c, 10001, &why));
    child_destroy(&c);
}

Test(child, killed_child_is_not_killed_again_at_once)
{
    child_t *c = child_new(&s_cfg, "ranker", "ranker", RESTART_PERMANENT);
    child_spawned(c, 42, 0);
    child_heartbeat(c, 42, "ready", 0, 0, NULL, 0);
    const char *why = NULL;
    cr_assert(child_overdue(c, 3001, &why));
    child_killed(c, 3001);
    cr_assert_not(child_overdue(c, 3002, &why), "re-killed on the next loop turn");
    cr_assert_gt(child_next_timer(c, 3002), 0, "a killed child's timer must not spin");
    cr_assert(child_overdue(c, 4001, &why), "still there a second later: kill again");
    child_exited(c, 9, 4002);
    child_spawned(c, 43, 5000);
    cr_assert_not(child_overdue(c, 5001, &why), "a new process starts with a clean slate");
    child_destroy(&c);
}
