/* A growable byte buffer, shared by the server's C modules. */
#ifndef TFSCONVERT_BUFFER_H
#define TFSCONVERT_BUFFER_H

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *data;
    size_t len, cap;
} Buffer;

/* Room for `extra` more bytes; -1 if out of memory. */
static inline int buffer_reserve(Buffer *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

static inline int buffer_add(Buffer *b, const char *data, size_t len) {
    if (buffer_reserve(b, len)) return -1;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

#endif
