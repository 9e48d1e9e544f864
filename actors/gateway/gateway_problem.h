/*  gateway_problem.h: RFC 9457 (ex-7807) problem+json bodies.

    Every error the gateway answers itself (400, 404, 405, 500, 503) carries
    Content-Type application/problem+json and a body
        {"type":"about:blank","title":<reason phrase>,"status":N,
         "detail":<text>,"instance":<request path>
         [,"invalid-params":[{"name":<param>,"reason":<text>}]]}
    Pure: no I/O.
*/
#ifndef RECSD_GATEWAY_PROBLEM_H
#define RECSD_GATEWAY_PROBLEM_H

#include <stddef.h>

#define GATEWAY_PROBLEM_CONTENT_TYPE "application/problem+json"

//  The HTTP reason phrase of status ("Not Found"); "Error" if unknown.
const char *gateway_problem_title(int status);

//  Builds the body. detail may be NULL (omitted); instance is the raw
//  request path (any bytes: it is made printable, see
//  gateway_route_sanitize); param, if not NULL, adds an "invalid-params"
//  entry naming it with detail as the reason. Returns a NUL-terminated
//  string the caller frees with free(), and its length in *len (if not
//  NULL); NULL only on allocation failure.
char *gateway_problem_body(int status, const char *detail, const char *instance, const char *param,
                           size_t *len);

#endif
