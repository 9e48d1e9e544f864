/*  test_publisher_page.c: delivery bookkeeping of an outbox page
    (actors/publisher/publisher_page.c). */
#include <criterion/criterion.h>

#include "actors/publisher/publisher_page.h"
#include "leak_check.h"

TestSuite(publisher_page, .fini = leak_check_fini);

Test(publisher_page, tracks_reports_and_delivered_ids)
{
    publisher_page_t *page = publisher_page_new(4);
    cr_assert(page);
    publisher_page_reset(page, 100);
    cr_assert_eq(publisher_page_add(page, 11), 100);
    cr_assert_eq(publisher_page_add(page, 12), 101);
    cr_assert_eq(publisher_page_add(page, 13), 102);
    cr_assert_eq(publisher_page_size(page), 3);
    cr_assert_eq(publisher_page_outstanding(page), 3);
    cr_assert_eq(publisher_page_id(page, 101), 12);

    cr_assert_eq(publisher_page_report(page, 102, true), 0);
    cr_assert_eq(publisher_page_report(page, 100, false), 0);
    cr_assert_eq(publisher_page_outstanding(page), 1);
    cr_assert_eq(publisher_page_delivered(page), 1);
    cr_assert_eq(publisher_page_failed(page), 1);

    //  A repeated report is refused, not double-counted.
    cr_assert_eq(publisher_page_report(page, 102, true), -1);
    cr_assert_eq(publisher_page_delivered(page), 1);

    cr_assert_eq(publisher_page_report(page, 101, true), 0);
    size_t n = 0;
    const int64_t *ids = publisher_page_delivered_ids(page, &n);
    cr_assert_eq(n, 2);
    cr_assert_eq(ids[0], 12); //  page order, not report order
    cr_assert_eq(ids[1], 13);
    publisher_page_destroy(&page);
    cr_assert_null(page);
    publisher_page_destroy(&page); //  idempotent
}

Test(publisher_page, stale_reports_do_not_touch_the_next_page)
{
    publisher_page_t *page = publisher_page_new(2);
    cr_assert(page);
    publisher_page_reset(page, 0);
    publisher_page_add(page, 1);
    publisher_page_add(page, 2);
    cr_assert_eq(publisher_page_expire(page, "deadline"), 2);
    cr_assert_eq(publisher_page_failed(page), 2);
    cr_assert_eq(publisher_page_outstanding(page), 0);

    //  Next page numbered after the last; the old page's late reports
    //  (seq 0 and 1) must not be credited to its rows.
    publisher_page_reset(page, 2);
    cr_assert_eq(publisher_page_add(page, 3), 2);
    cr_assert_eq(publisher_page_report(page, 0, true), -1);
    cr_assert_eq(publisher_page_report(page, 1, true), -1);
    cr_assert_eq(publisher_page_report(page, 3, true), -1); //  beyond the page
    cr_assert_eq(publisher_page_outstanding(page), 1);
    cr_assert_eq(publisher_page_id(page, 0), -1);
    publisher_page_destroy(&page);
}

Test(publisher_page, full_page_refuses_more)
{
    publisher_page_t *page = publisher_page_new(1);
    cr_assert(page);
    publisher_page_reset(page, 7);
    cr_assert_eq(publisher_page_add(page, 1), 7);
    cr_assert_eq(publisher_page_add(page, 2), UINT64_MAX);
    cr_assert_eq(publisher_page_size(page), 1);
    cr_assert_eq(publisher_page_capacity(page), 1);
    size_t n = 99;
    publisher_page_delivered_ids(page, &n);
    cr_assert_eq(n, 0);
    publisher_page_destroy(&page);
}

Test(publisher_page, failures_keep_kind_and_reason)
{
    publisher_page_t *page = publisher_page_new(4);
    cr_assert(page);
    publisher_page_reset(page, 10);
    publisher_page_add(page, 1);
    publisher_page_add(page, 2);
    publisher_page_add(page, 3);
    publisher_page_add(page, 4);
    cr_assert_eq(publisher_page_fail(page, 10, true, "too large"), 0);
    cr_assert_eq(publisher_page_fail(page, 11, false, "all brokers down"), 0);
    cr_assert_eq(publisher_page_report(page, 12, true), 0);
    cr_assert_eq(publisher_page_fail(page, 10, false, "again"), -1); //  not outstanding
    cr_assert_eq(publisher_page_expire(page, "deadline"), 1);
    cr_assert_eq(publisher_page_failed(page), 3);
    cr_assert_eq(publisher_page_parked(page), 1);
    cr_assert_eq(publisher_page_delivered(page), 1);

    int64_t id;
    const char *why;
    cr_assert_eq(publisher_page_row(page, 0, &id, &why), PUBLISHER_ROW_PARKED);
    cr_assert_eq(id, 1);
    cr_assert_str_eq(why, "too large");
    cr_assert_eq(publisher_page_row(page, 1, &id, &why), PUBLISHER_ROW_FAILED);
    cr_assert_str_eq(why, "all brokers down");
    cr_assert_eq(publisher_page_row(page, 2, NULL, &why), PUBLISHER_ROW_DELIVERED);
    cr_assert_str_eq(why, "");
    cr_assert_eq(publisher_page_row(page, 3, &id, &why), PUBLISHER_ROW_FAILED);
    cr_assert_str_eq(why, "deadline");
    cr_assert_eq(publisher_page_row(page, 4, &id, &why), PUBLISHER_ROW_OUTSTANDING);
    cr_assert_eq(id, -1);

    //  A reset forgets the kinds and the reasons.
    publisher_page_reset(page, 14);
    publisher_page_add(page, 5);
    cr_assert_eq(publisher_page_parked(page), 0);
    cr_assert_eq(publisher_page_row(page, 0, &id, &why), PUBLISHER_ROW_OUTSTANDING);
    cr_assert_str_eq(why, "");
    publisher_page_destroy(&page);
}
