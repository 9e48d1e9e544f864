/*  artifact.h: the versioned binary model artifact (format version 1).

    A model is written once by the trainer and mmapped read-only by the
    ranker, which points its float arrays straight into the mapping: no
    parsing, no copy, start-up costs one checksum pass.

    File layout, all integers little-endian (a big-endian host is refused
    at compile time: the ranker must read the bytes as they lie):

        0    header, 128 bytes
               char     magic[8]        "RECSDART"
               uint32   version         1
               uint32   section_count
               uint64   file_size       the whole file, in bytes
               char     model_type[32]  NUL-terminated, 1..31 chars
               uint8    sha256[32]      of every byte of the file except
                                        these 32
               uint8    reserved[40]    zero
        128  section table, section_count entries of 64 bytes
               char     name[24]        NUL-terminated, 1..23 chars
               uint32   dtype           artifact_dtype_t
               uint32   reserved        zero
               int64    rows, cols      >= 0
               uint64   offset          multiple of 64
               uint64   length          rows * cols * element size
        then the sections, each at a 64-byte aligned offset (cache line and
        AVX-512 friendly), the gaps zero-filled; sections do not overlap.

    Strings (video and user id tables): artifact_writer_add_strings() stores
    n strings as two sections, so the reader needs no parsing either:
        "<name>"      BYTES, rows = total bytes, cols = 1: the n strings,
                      each followed by its NUL, back to back
        "<name>.idx"  I64, rows = n + 1, cols = 1: offsets[i] is where
                      string i starts, offsets[n] = total bytes
    so a strings name is at most 19 chars. artifact_strings() checks the
    pair once and gives an artifact_strings_t to index in O(1). Other BYTES
    sections (a "meta" JSON document, say) use rows = bytes, cols = 1.

    Ownership: an artifact_writer_t borrows every data pointer (and each
    string) given to it until artifact_writer_write() returns; sections can
    be hundreds of MB, so nothing is copied. Pointers from artifact_t are
    valid until artifact_destroy(). Neither object is thread-safe to
    mutate; an open artifact_t may be read from any number of threads.
    An open file must not be changed in place (truncating it would fault
    the reader): artifacts are only ever replaced by rename, as here.
*/
#ifndef RECSD_ARTIFACT_H
#define RECSD_ARTIFACT_H

#include <stddef.h>
#include <stdint.h>

#define ARTIFACT_FORMAT_VERSION 1
#define ARTIFACT_ALIGN 64
#define ARTIFACT_MODEL_TYPE_MAX 31 //  chars, without the NUL
#define ARTIFACT_NAME_MAX 23       //  chars, without the NUL
#define ARTIFACT_MAX_SECTIONS 4096

typedef enum {
    ARTIFACT_F32 = 1,  //  float, 4 bytes
    ARTIFACT_I32 = 2,  //  int32_t
    ARTIFACT_I64 = 3,  //  int64_t
    ARTIFACT_BYTES = 4 //  uint8_t / char
} artifact_dtype_t;

typedef struct artifact_writer_t artifact_writer_t;
typedef struct artifact_t artifact_t;

//  A view on a strings section pair (see above); points into the artifact.
typedef struct {
    const char *blob;
    const int64_t *offsets; //  count + 1 entries
    int64_t count;
} artifact_strings_t;

//  --- writing ---------------------------------------------------------------

//  New writer for a model of model_type (1..31 printable chars, copied).
//  Returns NULL if model_type is invalid or memory runs out.
artifact_writer_t *artifact_writer_new(const char *model_type);

//  Frees the writer (not the borrowed data). Idempotent; sets *self_p = NULL.
void artifact_writer_destroy(artifact_writer_t **self_p);

//  Adds a section of rows x cols elements of dtype read from data, which is
//  BORROWED until artifact_writer_write() returns (may be NULL when
//  rows * cols == 0). name: 1..23 printable chars, not used before.
//  Returns 0, or -1 (bad name, duplicate, bad dtype, negative or
//  overflowing size, too many sections).
int artifact_writer_add(artifact_writer_t *self, const char *name, artifact_dtype_t dtype,
                        int64_t rows, int64_t cols, const void *data);

//  Adds n NUL-terminated strings as the section pair "<name>" and
//  "<name>.idx" (name 1..19 chars). The array and the strings are BORROWED
//  until the write; the offsets are computed now (8 bytes per string).
//  Returns 0, or -1 as artifact_writer_add.
int artifact_writer_add_strings(artifact_writer_t *self, const char *name, const char *const *strs,
                                int64_t n);

//  Writes the artifact to path atomically: into "<path>.tmp.<pid>", fsync,
//  rename onto path, fsync of the directory, so a crash never leaves a half
//  file under path (a stale .tmp.<pid> may remain; it is never opened as an
//  artifact by name). An existing file at path is replaced. If checksum_hex
//  is not NULL it receives the SHA-256 as 64 hex chars + NUL. Returns 0, or
//  -1 with the reason in err (the temporary file is then removed).
int artifact_writer_write(artifact_writer_t *self, const char *path, char checksum_hex[65],
                          char *err, size_t errlen);

//  --- reading ---------------------------------------------------------------

//  Maps path read-only and validates it: magic, version, file size, model
//  type, every section's name, dtype, size, bounds, 64-byte alignment and
//  overlap, and the SHA-256 (reading the whole file once). Returns the
//  artifact, or NULL with the reason in err (a corrupt file is refused).
artifact_t *artifact_open(const char *path, char *err, size_t errlen);

//  Unmaps. Idempotent; sets *self_p = NULL. Every pointer obtained from the
//  artifact becomes invalid.
void artifact_destroy(artifact_t **self_p);

//  Borrowed strings, valid while the artifact is open.
const char *artifact_model_type(const artifact_t *self);
const char *artifact_checksum(const artifact_t *self); //  64 hex chars

//  Size of the file in bytes.
uint64_t artifact_size(const artifact_t *self);

//  The data of section name if it exists with exactly dtype, and its shape
//  in *rows / *cols (either may be NULL). Returns a pointer into the
//  mapping (64-byte aligned), or NULL if absent or of another dtype.
const void *artifact_section(const artifact_t *self, const char *name, artifact_dtype_t dtype,
                             int64_t *rows, int64_t *cols);

//  Fills *out with the strings pair "<name>"/"<name>.idx" after checking
//  it (offsets ascending, inside the blob, every string NUL-terminated), an
//  O(n) pass the caller does once. Returns 0, or -1 with the reason in err.
int artifact_strings(const artifact_t *self, const char *name, artifact_strings_t *out, char *err,
                     size_t errlen);

//  String i (0 <= i < s->count) of a checked strings view; its length is
//  s->offsets[i + 1] - s->offsets[i] - 1. Cannot fail for a valid i.
static inline const char *artifact_strings_at(const artifact_strings_t *s, int64_t i)
{
    return s->blob + s->offsets[i];
}

#endif
