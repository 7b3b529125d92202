/* Predict bodies of many named numeric tensors read straight from the bytes, without a Python
 * object per value (rest_json_fast.predict_body):
 *
 *   {"signature_name": "s", "inputs": {"ids": [[1], [2]], "dense": [[0.5, 1e-3], [2, 3]]}}
 *   {"instances": [{"ids": [1], "dense": [0.5, 1e-3]}, {"ids": [2], "dense": [2, 3]}]}
 *   {"inputs": [[1, 2]]}      {"instances": [[1, 2], [3, 4]]}
 *
 * Every tensor is kept as doubles (numbers as _dense_json.c reads them, which is as Python's
 * float() reads them) and, while all its numbers are integer literals within int64, as int64s.
 * Anything else (other keys, duplicate keys, escapes in names, bools, strings, null, NaN, empty
 * or ragged lists, rows with other keys or shapes than the first row, trailing bytes) is left to
 * the general path: predict_body returns None.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_dense_json.h"

#define MAX_TENSORS 256
#define EXACT_INTEGERS 9007199254740992LL  /* 2^53 */

typedef struct {
    const char *name;  /* in the body; NULL: the tensor of an unnamed "inputs" value or of plain rows */
    Py_ssize_t name_len;
    int ndim, leaf_level, all_ints, inexact_ints;  /* inexact: an integer literal a double does not hold */
    Py_ssize_t shape[DENSE_MAX_DIMS];
    Buffer doubles, ints;
    Py_ssize_t last_row;  /* the row that gave it a value last (duplicate keys) */
} Tensor;

typedef struct {
    const char *p, *end;
    Tensor tensors[MAX_TENSORS];
    int count;
} Reader;

static void skip(Reader *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static int next_is(Reader *r, char ch) {
    skip(r);
    if (r->p < r->end && *r->p == ch) {
        r->p++;
        return 1;
    }
    return 0;
}

/* A string of printable ASCII without escapes: its start and length. */
static int plain(Reader *r, const char **start, Py_ssize_t *len) {
    if (!next_is(r, '"')) return 0;
    *start = r->p;
    for (; r->p < r->end && *r->p != '"'; r->p++)
        if ((unsigned char)*r->p < 0x20 || (unsigned char)*r->p > 0x7e || *r->p == '\\') return 0;
    if (r->p == r->end) return 0;
    *len = r->p++ - *start;
    return 1;
}

/* An integer literal of at most 18 digits (within int64) at r->p, as the strict grammar has it:
 * 1, its value, and r->p moved past it; 0 (r->p unmoved) for anything else. */
static int small_integer(Reader *r, int64_t *out) {
    const char *p = r->p, *end = r->end;
    int negative = p < end && *p == '-';
    p += negative;
    const char *first = p;
    int64_t value = 0;
    for (; p < end && *p >= '0' && *p <= '9' && p - first < 19; p++) value = value * 10 + (*p - '0');
    Py_ssize_t digits = p - first;
    if (digits == 0 || digits > 18 || (*first == '0' && digits > 1)) return 0;
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E' || (*p >= '0' && *p <= '9'))) return 0;
    *out = negative ? -value : value;
    r->p = p;
    return 1;
}

static int leaf(Reader *r, Tensor *t) {
    int64_t integer = 0;
    double value;
    int small = small_integer(r, &integer);
    if (small) {
        value = (double)integer;  /* correctly rounded, as Python's float(int) */
        if (integer > EXACT_INTEGERS || integer < -EXACT_INTEGERS) t->inexact_ints = 1;
    } else {
        const char *start = r->p;
        if (!json_number(&r->p, r->end, &value)) return 0;
        if (!memchr(start, '.', r->p - start) && !memchr(start, 'e', r->p - start) && !memchr(start, 'E', r->p - start))
            t->inexact_ints = 1;  /* an integer of 19 digits */
        t->all_ints = 0;
    }
    if (buffer_add(&t->doubles, (const char *)&value, sizeof value) < 0) return -1;
    if (t->all_ints && buffer_add(&t->ints, (const char *)&integer, sizeof integer) < 0) return -1;
    return 1;
}

/* A number, or a non-empty list at `level` whose items have the shape the tensor's first had. */
static int tensor(Reader *r, Tensor *t, int level) {
    skip(r);
    if (r->p < r->end && *r->p == '[') {
        if (level >= DENSE_MAX_DIMS || (t->leaf_level >= 0 && level >= t->leaf_level)) return 0;
        r->p++;
        Py_ssize_t count = 0;
        do {
            int read = tensor(r, t, level + 1);
            if (read != 1) return read;
            count++;
        } while (next_is(r, ','));
        if (!next_is(r, ']')) return 0;
        if (!t->shape[level]) t->shape[level] = count;
        return t->shape[level] == count;
    }
    if (t->leaf_level < 0) t->leaf_level = t->ndim = level;
    if (level != t->leaf_level) return 0;
    return leaf(r, t);
}

static Tensor *named(Reader *r, const char *start, Py_ssize_t len, int may_add) {
    for (int i = 0; i < r->count; i++) {
        Tensor *t = &r->tensors[i];
        if (t->name && t->name_len == len && !memcmp(t->name, start, len)) return t;
    }
    if (!may_add || r->count == MAX_TENSORS) return NULL;
    Tensor *t = &r->tensors[r->count];
    memset(t, 0, sizeof *t);
    t->name = start;
    t->name_len = len;
    t->leaf_level = -1;
    t->all_ints = 1;
    t->last_row = -1;
    r->count++;
    return t;
}

static Tensor *unnamed(Reader *r) {
    Tensor *t = &r->tensors[r->count++];
    memset(t, 0, sizeof *t);
    t->leaf_level = -1;
    t->all_ints = 1;
    return t;
}

/* An object of named tensors: the row `row` of "instances" (its keys those of row 0), or the
 * value of "inputs" (row -1). */
static int object(Reader *r, Py_ssize_t row) {
    int members = 0;
    if (next_is(r, '}')) return 0;
    do {
        const char *start;
        Py_ssize_t len;
        if (!plain(r, &start, &len) || !next_is(r, ':')) return 0;
        Tensor *t = named(r, start, len, row <= 0);
        if (!t) return 0;
        if (t->last_row == row && row >= 0) return 0;  /* a duplicate key */
        if (row < 0 && t->leaf_level >= 0) return 0;
        t->last_row = row;
        int read = tensor(r, t, 0);
        if (read != 1) return read;
        members++;
    } while (next_is(r, ','));
    return next_is(r, '}') && (row <= 0 || members == r->count);
}

static int rows(Reader *r) {
    if (!next_is(r, '[')) return 0;
    skip(r);
    if (r->p < r->end && *r->p == '{') {
        Py_ssize_t row = 0;
        do {
            if (!next_is(r, '{')) return 0;
            int read = object(r, row++);
            if (read != 1) return read;
        } while (next_is(r, ','));
        return next_is(r, ']') ? (int)row : 0;
    }
    Tensor *t = unnamed(r);
    Py_ssize_t row = 0;
    do {
        int read = tensor(r, t, 0);
        if (read != 1) return read;
        row++;
    } while (next_is(r, ','));
    return next_is(r, ']') ? (int)row : 0;
}

static PyObject *result(Reader *r, PyObject *signature, Py_ssize_t row_count) {
    PyObject *tensors = PyList_New(r->count);
    if (!tensors) return NULL;
    for (int i = 0; i < r->count; i++) {
        Tensor *t = &r->tensors[i];
        int ndim = t->ndim + (row_count >= 0);
        PyObject *shape = PyTuple_New(ndim);
        if (!shape) goto fail;
        for (int d = 0; d < ndim; d++) {
            Py_ssize_t size = row_count >= 0 ? (d == 0 ? row_count : t->shape[d - 1]) : t->shape[d];
            PyTuple_SET_ITEM(shape, d, PyLong_FromSsize_t(size));
        }
        PyObject *doubles = PyByteArray_FromStringAndSize(t->doubles.data ? t->doubles.data : "", t->doubles.len);
        PyObject *ints = t->all_ints ? PyByteArray_FromStringAndSize(t->ints.data ? t->ints.data : "", t->ints.len)
                                     : (Py_INCREF(Py_None), Py_None);
        PyObject *name = t->name ? PyUnicode_DecodeASCII(t->name, t->name_len, NULL) : (Py_INCREF(Py_None), Py_None);
        PyObject *item = name && doubles && ints ? Py_BuildValue("(OOOOO)", name, shape, doubles, ints,
                                                                  t->inexact_ints ? Py_True : Py_False) : NULL;
        Py_XDECREF(name);
        Py_DECREF(shape);
        Py_XDECREF(doubles);
        Py_XDECREF(ints);
        if (!item) goto fail;
        PyList_SET_ITEM(tensors, i, item);
    }
    return Py_BuildValue("(OiN)", signature, row_count >= 0, tensors);
fail:
    Py_DECREF(tensors);
    return NULL;
}

/* predict_body(data) -> (signature_name or None, rows, [(alias or None, shape, doubles, int64s or
 * None, inexact_ints), ...]) or None; `shape` has the rows first for "instances"; int64s while
 * every number is an integer literal of at most 18 digits; inexact_ints if an integer literal is
 * beyond 2^53 (its double is rounded). */
/* The body's form: 1 and `signature` (start and length, NULL if none) and `row_count` (-1 for
 * "inputs") if it is one read here, else 0; -1 if out of memory. */
static int body(Reader *r, const char **signature, Py_ssize_t *signature_len, Py_ssize_t *row_count) {
    int seen_tensors = 0, read;
    if (!next_is(r, '{')) return 0;
    do {
        const char *start;
        Py_ssize_t len;
        if (!plain(r, &start, &len) || !next_is(r, ':')) return 0;
        if (len == 14 && !memcmp(start, "signature_name", 14) && !*signature) {
            if (!plain(r, signature, signature_len)) return 0;
        } else if (len == 9 && !memcmp(start, "instances", 9) && !seen_tensors++) {
            read = rows(r);
            if (read <= 0) return read;
            *row_count = read;
        } else if (len == 6 && !memcmp(start, "inputs", 6) && !seen_tensors++) {
            skip(r);
            read = r->p < r->end && *r->p == '{' ? (r->p++, object(r, -1)) : tensor(r, unnamed(r), 0);
            if (read != 1) return read;
        } else {
            return 0;
        }
    } while (next_is(r, ','));
    if (!next_is(r, '}') || !seen_tensors) return 0;
    skip(r);
    return r->p == r->end;
}

/* predict_body(data) -> (signature_name or None, rows, [(alias or None, shape, doubles, int64s or
 * None, inexact_ints), ...]) or None; `shape` has the rows first for "instances"; int64s while
 * every number is an integer literal of at most 18 digits; inexact_ints if an integer literal is
 * beyond 2^53 (its double is rounded). The body is read without the GIL. */
PyObject *predict_body(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    Reader *r = calloc(1, sizeof *r);
    if (!r) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    r->p = view.buf;
    r->end = r->p + view.len;
    const char *signature = NULL;
    Py_ssize_t signature_len = 0, row_count = -1;
    int read;
    Py_BEGIN_ALLOW_THREADS
    read = body(r, &signature, &signature_len, &row_count);
    Py_END_ALLOW_THREADS
    PyObject *name = NULL, *answer = NULL;
    if (read < 0) {
        PyErr_NoMemory();
    } else if (read == 1) {
        name = signature ? PyUnicode_DecodeASCII(signature, signature_len, NULL) : (Py_INCREF(Py_None), Py_None);
        answer = name ? result(r, name, row_count) : NULL;
    }
    for (int i = 0; i < r->count; i++) {
        free(r->tensors[i].doubles.data);
        free(r->tensors[i].ints.data);
    }
    free(r);
    Py_XDECREF(name);
    PyBuffer_Release(&view);
    if (!answer && !PyErr_Occurred()) Py_RETURN_NONE;
    return answer;
}
