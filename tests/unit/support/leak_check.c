/*  leak_check.c: LeakSanitizer check for criterion suites (see the header). */
#include "leak_check.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdlib.h>

//  gcc says __SANITIZE_ADDRESS__, clang says __has_feature(address_sanitizer).
#if defined(__SANITIZE_ADDRESS__)
#define S_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define S_LSAN 1
#endif
#endif

#ifdef S_LSAN
#include <sanitizer/lsan_interface.h>

void leak_check_fini(void)
{
    if (__lsan_do_recoverable_leak_check() != 0) {
        cr_log_error("LeakSanitizer found leaks (see stderr)");
        abort();
    }
}
#else
void leak_check_fini(void) {}
#endif
