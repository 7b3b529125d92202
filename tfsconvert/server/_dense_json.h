/* Predict bodies read straight into doubles (see _dense_json.c). */
#ifndef TFSCONVERT_DENSE_JSON_H
#define TFSCONVERT_DENSE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "_buffer.h"

#define DENSE_MAX_DIMS 32
#define DENSE_MAX_NAME 256

typedef struct {
    int rows;                        /* "instances" (else "inputs") */
    int has_signature;               /* "signature_name" was given */
    char signature[DENSE_MAX_NAME];  /* its value, NUL-terminated */
    int has_alias;                   /* "inputs" was an object of one named tensor */
    char alias[DENSE_MAX_NAME];
    int ndim;
    int64_t shape[DENSE_MAX_DIMS];
    Buffer values;                   /* shape's product of doubles; the caller frees values.data */
} DenseBody;

/* 1 if `data` is a predict body of the one form read here, with `values` and `shape` filled in;
 * 0 if it is anything else (the general path decides what it is). Needs the GIL: numbers the
 * exact fast conversions cannot do are converted by Python's float(). */
int dense_body(const char *data, size_t len, DenseBody *body);

/* A JSON number at *p (the strict grammar) as dense_body reads it, *p moved past it: 1, or 0 if
 * there is none or dense_body would leave it to the general path. Needs the GIL. */
int json_number(const char **p, const char *end, double *out);

#endif
