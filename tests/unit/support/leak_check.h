/*  leak_check.h: make LeakSanitizer fail a criterion test.

    Criterion runs each test in a worker process and does not fail a test
    whose worker leaks, so in the ASan build every suite ends with an
    explicit leak check:

        TestSuite(name, .fini = leak_check_fini);

    A suite with a .fini of its own calls leak_check_fini() as its last
    statement, after everything the test set up has been freed.
*/
#ifndef RECSD_LEAK_CHECK_H
#define RECSD_LEAK_CHECK_H

//  With AddressSanitizer: runs LeakSanitizer now and aborts the worker if
//  it finds a leak (an assertion in .fini is only logged; an abort is
//  reported as a crash, so the test fails). The report is on stderr.
//  Without AddressSanitizer: does nothing. Memory still reachable from
//  globals (czmq's context, libcurl's state, ...) is not a leak.
void leak_check_fini(void);

#endif
