/*  prom_merge.h: merges Prometheus text-format fragments into one valid
    exposition.

    Each actor reports its own metrics (HELP, TYPE and sample lines) in its
    heartbeats; the gateway serves them all on /metrics. Concatenating the
    fragments would break the format as soon as two actors (two ingestor
    instances, say) report the same family: a family's HELP and TYPE must
    appear once, with all its samples together. This regroups them.

    Samples must already be distinct across fragments (actors label theirs
    with actor="<instance>"); lines that are neither comments nor samples
    are dropped.
*/
#ifndef RECSD_PROM_MERGE_H
#define RECSD_PROM_MERGE_H

#include <stddef.h>

//  Merges n fragments (NULL entries are skipped) in order of first
//  appearance of each family. Returns a new string the caller frees, or
//  NULL on allocation failure.
char *prom_merge(const char *const *fragments, size_t n);

#endif
