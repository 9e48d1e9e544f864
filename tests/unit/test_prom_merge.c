/*  test_prom_merge.c: regrouping actors' Prometheus fragments (prom_merge.c). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "leak_check.h"
#include "prom_merge.h"

TestSuite(prom_merge, .fini = leak_check_fini);

Test(prom_merge, families_from_two_instances_are_grouped)
{
    const char *a = "# HELP recsd_ingest_events_total Events.\n"
                    "# TYPE recsd_ingest_events_total counter\n"
                    "recsd_ingest_events_total{actor=\"event-ingestor.1\",outcome=\"stored\"} 5\n"
                    "# HELP recsd_ingest_batch_size Batch sizes.\n"
                    "# TYPE recsd_ingest_batch_size histogram\n"
                    "recsd_ingest_batch_size_bucket{actor=\"event-ingestor.1\",le=\"+Inf\"} 2\n"
                    "recsd_ingest_batch_size_sum{actor=\"event-ingestor.1\"} 5\n"
                    "recsd_ingest_batch_size_count{actor=\"event-ingestor.1\"} 2\n";
    const char *b = "# HELP recsd_ingest_events_total Events.\n"
                    "# TYPE recsd_ingest_events_total counter\n"
                    "recsd_ingest_events_total{actor=\"event-ingestor.2\",outcome=\"stored\"} 7\n"
                    "# TYPE recsd_ingest_batch_size histogram\n"
                    "recsd_ingest_batch_size_bucket{actor=\"event-ingestor.2\",le=\"+Inf\"} 1\n"
                    "recsd_ingest_batch_size_sum{actor=\"event-ingestor.2\"} 7\n"
                    "recsd_ingest_batch_size_count{actor=\"event-ingestor.2\"} 1\n";
    const char *fragments[] = {a, NULL, b};
    char *out = prom_merge(fragments, 3);
    cr_assert_not_null(out);
    const char *want =
        "# HELP recsd_ingest_events_total Events.\n"
        "# TYPE recsd_ingest_events_total counter\n"
        "recsd_ingest_events_total{actor=\"event-ingestor.1\",outcome=\"stored\"} 5\n"
        "recsd_ingest_events_total{actor=\"event-ingestor.2\",outcome=\"stored\"} 7\n"
        "# HELP recsd_ingest_batch_size Batch sizes.\n"
        "# TYPE recsd_ingest_batch_size histogram\n"
        "recsd_ingest_batch_size_bucket{actor=\"event-ingestor.1\",le=\"+Inf\"} 2\n"
        "recsd_ingest_batch_size_sum{actor=\"event-ingestor.1\"} 5\n"
        "recsd_ingest_batch_size_count{actor=\"event-ingestor.1\"} 2\n"
        "recsd_ingest_batch_size_bucket{actor=\"event-ingestor.2\",le=\"+Inf\"} 1\n"
        "recsd_ingest_batch_size_sum{actor=\"event-ingestor.2\"} 7\n"
        "recsd_ingest_batch_size_count{actor=\"event-ingestor.2\"} 1\n";
    cr_assert_str_eq(out, want);
    free(out);
}

Test(prom_merge, junk_dropped_untyped_kept_empty_ok)
{
    const char *a = "not a metric line\n"
                    "# just a comment\n"
                    "recsd_plain 1\n"
                    "# TYPE recsd_lonely gauge\n"
                    "9bad 1\n"
                    "recsd_count_total 3"; //  no final newline
    const char *fragments[] = {a};
    char *out = prom_merge(fragments, 1);
    cr_assert_not_null(out);
    cr_assert_str_eq(out, "recsd_plain 1\nrecsd_count_total 3\n");
    free(out);
    out = prom_merge(NULL, 0);
    cr_assert_not_null(out);
    cr_assert_str_eq(out, "");
    free(out);
}
