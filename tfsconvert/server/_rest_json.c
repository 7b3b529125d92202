/* The loops of rest_json's fast path that cost most per request in Python (~30 us of a
 * 600-value request here, ~25 ms of a 300-row request with 22 named int64 inputs): scanning a body
 * before orjson reads it, turning dense nested lists of JSON numbers, bools and strings into
 * tensor bytes, taking row-format objects apart into columns, and writing outputs as JSON.
 * They only measure or convert; rest_json and rest_json_fast decide.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <limits.h>
#include <stdint.h>

#include "_buffer.h"

/* scan(data) -> (depth, long_integer, members): how deeply arrays and objects nest outside strings
 * (exact for a valid document), whether it has 19 or more digits in a row not after a `.` or
 * another digit (an integer that may not fit 64 bits), and how many `:` outside strings (object
 * members, in a valid document). Brackets are skipped when deciding what comes before a digit, as
 * they are deleted before the search in rest_json's definition. */
static PyObject *scan(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *p = view.buf;
    Py_ssize_t depth = 0, deepest = 0, run = 0, members = 0;
    int after_other = 1, long_integer = 0, in_string = 0, escaped = 0;  /* read as if after a space */
    for (Py_ssize_t i = 0; i < view.len; i++) {
        unsigned char ch = p[i];
        if (in_string) {
            in_string = escaped || ch != '"';
            escaped = !escaped && ch == '\\';
        } else if (ch == '"') {
            in_string = 1;
        } else if (ch == ':') {
            members++;
        } else if (ch == '[' || ch == '{') {
            if (++depth > deepest) deepest = depth;
        } else if (ch == ']' || ch == '}') {
            depth--;
        }
        if (ch == ']' || ch == '}') {
            continue;
        } else if (ch >= '0' && ch <= '9') {
            if (run == 0 && !after_other) continue;  /* digits after `.`: a fraction's */
            if (++run >= 19) long_integer = 1;
        } else {
            after_other = ch != '.';
            run = 0;
        }
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(nin)", deepest, long_integer, members);
}

/* members(value) -> how many members the objects in a parsed document have, all told. */
static Py_ssize_t count_members(PyObject *value) {
    Py_ssize_t count = 0, pos = 0;
    PyObject *key, *item;
    if (PyDict_CheckExact(value)) {
        count = PyDict_GET_SIZE(value);
        while (PyDict_Next(value, &pos, &key, &item)) count += count_members(item);
    } else if (PyList_CheckExact(value)) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(value); i++) {
            item = PyList_GET_ITEM(value, i);
            if (PyDict_CheckExact(item) || PyList_CheckExact(item)) count += count_members(item);
        }
    }
    return count;
}

static PyObject *members(PyObject *module, PyObject *arg) { return PyLong_FromSsize_t(count_members(arg)); }

/* One leaf of a dense list: 1 and its value written at *out (if `out` is not NULL) when `item`
 * fits, 0 when it does not (no exception set), -1 on an error. */
typedef int (*Leaf)(PyObject *item, char **out, void *context);

/* The dense list's leaves, in order, through `leaf`. 1 if `value` is a list of `shape[0]` items,
 * each a list of `shape[1]` items and so on, with leaves `leaf` takes at the last level (ndim 0:
 * `value` is the leaf); 0 if not, -1 on an error. */
static int walk(PyObject *value, const Py_ssize_t *shape, Py_ssize_t ndim, Leaf leaf, char **out, void *context) {
    if (ndim == 0) return leaf(value, out, context);
    if (!PyList_CheckExact(value) || PyList_GET_SIZE(value) != shape[0]) return 0;
    for (Py_ssize_t i = 0; i < shape[0]; i++) {
        int fits = walk(PyList_GET_ITEM(value, i), shape + 1, ndim - 1, leaf, out, context);
        if (fits != 1) return fits;
    }
    return 1;
}

#define EXACT_INTEGERS 9007199254740992.0  /* 2^53: every int up to this is a double exactly */

/* Exact floats, and ints (no bools) converted as float() converts them, as doubles; with a
 * `context` (not NULL), only the ints a double holds exactly. */
static int double_leaf(PyObject *item, char **out, void *context) {
    double number;
    if (PyFloat_CheckExact(item)) {
        number = PyFloat_AS_DOUBLE(item);
    } else if (PyLong_CheckExact(item)) {
        number = PyLong_AsDouble(item);
        if (number == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();  /* beyond a double */
            return 0;
        }
        if (context && fabs(number) > EXACT_INTEGERS) return 0;
    } else {
        return 0;
    }
    if (*out) {
        memcpy(*out, &number, sizeof number);
        *out += sizeof number;
    }
    return 1;
}

/* An integer type: its buffer format, size and range. */
typedef struct {
    char format;
    int size;
    long long low, high;
} IntType;

static const IntType INT_TYPES[] = {
    {'b', 1, INT8_MIN, INT8_MAX}, {'h', 2, INT16_MIN, INT16_MAX}, {'i', 4, INT32_MIN, INT32_MAX},
    {'q', 8, LLONG_MIN, LLONG_MAX}, {'B', 1, 0, UINT8_MAX}, {'I', 4, 0, UINT32_MAX},
};

/* Exact ints (no bools) within the type's range, in its native layout. */
static int int_leaf(PyObject *item, char **out, void *context) {
    const IntType *type = context;
    if (!PyLong_CheckExact(item)) return 0;
    int overflow;
    long long number = PyLong_AsLongLongAndOverflow(item, &overflow);
    if (overflow || number < type->low || number > type->high) return 0;
    if (*out) {
        int8_t i8 = number;
        int16_t i16 = number;
        int32_t i32 = number;
        const void *data = type->size == 1 ? (const void *)&i8 : type->size == 2 ? (const void *)&i16
                         : type->size == 4 ? (const void *)&i32 : (const void *)&number;
        memcpy(*out, data, type->size);  /* two's complement: the unsigned types' bytes too */
        *out += type->size;
    }
    return 1;
}

static int bool_leaf(PyObject *item, char **out, void *context) {
    if (item != Py_True && item != Py_False) return 0;
    if (*out) *(*out)++ = item == Py_True;
    return 1;
}

/* The leaves checked by `leaf` (one pass without writing, so nothing is allocated for a body
 * that does not fit), then written into a new bytearray of count * size bytes. None if they do
 * not fit. */
static PyObject *leaves(PyObject *value, PyObject *shape_list, Leaf leaf, void *context, Py_ssize_t size) {
    Py_ssize_t ndim = PyList_GET_SIZE(shape_list), count = 1;
    Py_ssize_t *shape = PyMem_Malloc((ndim ? ndim : 1) * sizeof *shape);
    if (!shape) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < ndim; i++) shape[i] = PyLong_AsSsize_t(PyList_GET_ITEM(shape_list, i));
    PyObject *result = NULL;
    char *none = NULL;
    int fits = PyErr_Occurred() ? -1 : walk(value, shape, ndim, leaf, &none, context);
    if (fits == 1) {
        for (Py_ssize_t i = 0; i < ndim; i++) count *= shape[i];  /* the leaves that exist: no overflow */
        result = PyByteArray_FromStringAndSize(NULL, count * size);
        char *out = result ? PyByteArray_AS_STRING(result) : NULL;
        if (result) walk(value, shape, ndim, leaf, &out, context);
    }
    PyMem_Free(shape);
    if (fits == 0) Py_RETURN_NONE;
    return result;
}

/* doubles(value, shape) -> bytearray of the leaves as native doubles, or None if `value` is not a
 * dense list of numbers of that shape (at least one dimension). */
static PyObject *doubles(PyObject *module, PyObject *args) {
    PyObject *value, *shape_list;
    if (!PyArg_ParseTuple(args, "OO!", &value, &PyList_Type, &shape_list)) return NULL;
    if (PyList_GET_SIZE(shape_list) == 0) Py_RETURN_NONE;
    return leaves(value, shape_list, double_leaf, NULL, sizeof(double));
}

/* typed(value, shape, format) -> bytearray of the leaves in the numpy layout of `format` (one of
 * "bhiqBI": ints within its range; "?": bools; "d": floats, and ints up to 2^53, as doubles), or
 * None if `value` is not a dense list of such values of that shape (a bare value for shape []). */
static PyObject *typed(PyObject *module, PyObject *args) {
    PyObject *value, *shape_list;
    int format;
    if (!PyArg_ParseTuple(args, "OO!C", &value, &PyList_Type, &shape_list, &format)) return NULL;
    if (format == 'd') return leaves(value, shape_list, double_leaf, (void *)"exact", sizeof(double));
    if (format == '?') return leaves(value, shape_list, bool_leaf, NULL, 1);
    for (size_t i = 0; i < sizeof INT_TYPES / sizeof *INT_TYPES; i++)
        if (INT_TYPES[i].format == format) return leaves(value, shape_list, int_leaf, (void *)&INT_TYPES[i],
                                                          INT_TYPES[i].size);
    return PyErr_Format(PyExc_ValueError, "typed() takes a format of 'bhiqBI?d', not '%c'", format);
}

/* A string leaf as bytes appended to the list `context` (`out` only says whether to): a str as
 * UTF-8, or {"b64": ASCII str} decoded by the callable in the list's last slot. 0 for anything
 * else, and for what the decoder or UTF-8 refuses (the general path says why). */
typedef struct {
    PyObject *list, *decode;
} Strings;

static int string_leaf(PyObject *item, char **out, void *context) {
    Strings *strings = context;
    PyObject *data = NULL;
    if (PyUnicode_CheckExact(item)) {
        data = PyUnicode_AsUTF8String(item);
    } else if (PyDict_CheckExact(item) && PyDict_GET_SIZE(item) == 1) {
        PyObject *text = PyDict_GetItemString(item, "b64");
        if (!text || !PyUnicode_CheckExact(text) || !PyUnicode_IS_ASCII(text)) return 0;
        PyObject *ascii = PyBytes_FromStringAndSize(PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text));
        if (!ascii) return -1;
        data = PyObject_CallOneArg(strings->decode, ascii);
        Py_DECREF(ascii);
    } else {
        return 0;
    }
    if (!data) {
        PyErr_Clear();
        return 0;
    }
    int added = PyList_Append(strings->list, data);
    Py_DECREF(data);
    return added < 0 ? -1 : 1;
}

/* strings(value, shape, decode) -> the leaves as a flat list of bytes, or None if `value` is not
 * a dense list of that shape of str and {"b64": str} values (decode(ascii bytes) decodes those). */
static PyObject *strings(PyObject *module, PyObject *args) {
    PyObject *value, *shape_list, *decode;
    if (!PyArg_ParseTuple(args, "OO!O", &value, &PyList_Type, &shape_list, &decode)) return NULL;
    Py_ssize_t ndim = PyList_GET_SIZE(shape_list);
    Py_ssize_t *shape = PyMem_Malloc((ndim ? ndim : 1) * sizeof *shape);
    if (!shape) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < ndim; i++) shape[i] = PyLong_AsSsize_t(PyList_GET_ITEM(shape_list, i));
    Strings context = {PyErr_Occurred() ? NULL : PyList_New(0), decode};
    char mark, *out = &mark;
    int fits = context.list ? walk(value, shape, ndim, string_leaf, &out, &context) : -1;
    PyMem_Free(shape);
    if (fits == 1) return context.list;
    Py_XDECREF(context.list);
    if (fits == 0) Py_RETURN_NONE;
    return NULL;
}

/* transpose(rows, aliases) -> one list per alias of rows[i][alias], or None unless every row is
 * an object whose keys are exactly the aliases. */
static PyObject *transpose(PyObject *module, PyObject *args) {
    PyObject *rows, *aliases;
    if (!PyArg_ParseTuple(args, "O!O!", &PyList_Type, &rows, &PyTuple_Type, &aliases)) return NULL;
    Py_ssize_t count = PyList_GET_SIZE(rows), width = PyTuple_GET_SIZE(aliases);
    PyObject *columns = PyList_New(width);
    if (!columns) return NULL;
    for (Py_ssize_t a = 0; a < width; a++) {
        PyObject *column = PyList_New(count);
        if (!column) goto fail;
        PyList_SET_ITEM(columns, a, column);
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (!PyDict_CheckExact(row) || PyDict_GET_SIZE(row) != width) goto none;
        for (Py_ssize_t a = 0; a < width; a++) {
            PyObject *item = PyDict_GetItemWithError(row, PyTuple_GET_ITEM(aliases, a));
            if (!item) {
                if (PyErr_Occurred()) goto fail;
                goto none;
            }
            Py_INCREF(item);
            PyList_SET_ITEM(PyList_GET_ITEM(columns, a), i, item);
        }
    }
    return columns;
none:
    Py_DECREF(columns);
    Py_RETURN_NONE;
fail:
    Py_DECREF(columns);
    return NULL;
}

/* The JSON text of one float as TF Serving's WriteDecimal writes it (rest_outputs.decimal_text):
 * `%g`, or 9 (float32) / 17 significant digits when `%g` does not give the value back, with `.0`
 * added to a whole number not in exponent form (`9e+06`, `1.43577434e+09`, `100000.0`). */
static int add_decimal(Buffer *t, double value, int single) {
    const char *special = isnan(value) ? "NaN" : isinf(value) ? (value > 0 ? "Infinity" : "-Infinity") : NULL;
    if (special) return buffer_add(t, special, strlen(special));
    char text[64];
    snprintf(text, sizeof text, "%g", value);
    double back = PyOS_string_to_double(text, NULL, NULL);
    if ((single ? (double)(float)back : back) != value) snprintf(text, sizeof text, "%.*g", single ? 9 : 17, value);
    if (!strpbrk(text, ".e")) strcat(text, ".0");
    return buffer_add(t, text, strlen(text));
}

/* `text` as json.dumps writes a str (ensure_ascii): printable ASCII as it is, `"` `\` and the
 * usual control characters escaped by name, every other code point as \uXXXX (a surrogate pair
 * beyond the BMP). */
static int add_text(Buffer *t, PyObject *text) {
    static const char hex[] = "0123456789abcdef";
    int kind = PyUnicode_KIND(text);
    const void *chars = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (buffer_reserve(t, 2 + (size_t)n * 12)) return -1;
    char *out = t->data + t->len;
    *out++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, chars, i);
        const char *named = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r" :
                            c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
        if (named) {
            memcpy(out, named, 2);
            out += 2;
        } else if (c >= ' ' && c <= '~') {
            *out++ = (char)c;
        } else {
            Py_UCS4 units[2] = {c, 0};
            int count = 1;
            if (c >= 0x10000) units[0] = 0xd800 | ((c - 0x10000) >> 10), units[1] = 0xdc00 | ((c - 0x10000) & 0x3ff),
                              count = 2;
            for (int u = 0; u < count; u++) {
                memcpy(out, "\\u", 2);
                for (int shift = 12, k = 2; shift >= 0; shift -= 4, k++) out[k] = hex[(units[u] >> shift) & 0xf];
                out += 6;
            }
        }
    }
    *out++ = '"';
    t->len = out - t->data;
    return 0;
}

/* {"b64": "<standard base64 of the bytes, padded>"} */
static int add_base64(Buffer *t, const unsigned char *data, Py_ssize_t len) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (buffer_add(t, "{\"b64\": \"", 9) < 0 || buffer_reserve(t, (size_t)(len + 2) / 3 * 4 + 2)) return -1;
    char *out = t->data + t->len;
    for (Py_ssize_t i = 0; i < len; i += 3) {
        unsigned long chunk = (unsigned long)data[i] << 16 | (i + 1 < len ? (unsigned long)data[i + 1] << 8 : 0) |
                              (i + 2 < len ? data[i + 2] : 0);
        out[0] = alphabet[chunk >> 18 & 63];
        out[1] = alphabet[chunk >> 12 & 63];
        out[2] = i + 1 < len ? alphabet[chunk >> 6 & 63] : '=';
        out[3] = i + 2 < len ? alphabet[chunk & 63] : '=';
        out += 4;
    }
    memcpy(out, "\"}", 2);
    t->len = out + 2 - t->data;
    return 0;
}

/* A string tensor's value as json.dumps writes rest_codec.encode_tensor's: the text when the bytes
 * (or a str's UTF-8) are UTF-8 and `b64` is 0 (the alias does not end in `_bytes`), else base64. */
static int add_string(Buffer *t, PyObject *value, int b64) {
    const char *data;
    Py_ssize_t len;
    if (PyBytes_Check(value)) {
        data = PyBytes_AS_STRING(value);
        len = PyBytes_GET_SIZE(value);
    } else if (PyUnicode_Check(value)) {
        if (!(data = PyUnicode_AsUTF8AndSize(value, &len))) return -1;
    } else {
        PyErr_Format(PyExc_TypeError, "a string tensor holds a %.100s", Py_TYPE(value)->tp_name);
        return -1;
    }
    if (!b64) {
        PyObject *text = PyUnicode_DecodeUTF8(data, len, "strict");
        if (text) {
            int done = add_text(t, text);
            Py_DECREF(text);
            return done;
        }
        if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) return -1;
        PyErr_Clear();
    }
    return add_base64(t, (const unsigned char *)data, len);
}

/* One value of buffer format `format` at `data` as JSON: floats as add_decimal writes them, ints
 * in decimal, bools as true/false (what json.dumps writes for the Python values), objects as
 * add_string writes strings. */
static int add_value(Buffer *t, const char *data, char format, int b64) {
    char text[32];
    long long number = 0;
    unsigned long long unsigned_number = 0;
    switch (format) {
    case 'f': { float v; memcpy(&v, data, sizeof v); return add_decimal(t, v, 1); }
    case 'd': { double v; memcpy(&v, data, sizeof v); return add_decimal(t, v, 0); }
    case '?': return *data ? buffer_add(t, "true", 4) : buffer_add(t, "false", 5);
    case 'O': { PyObject *v; memcpy(&v, data, sizeof v); return add_string(t, v, b64); }
    case 'b': number = *(const int8_t *)data; break;
    case 'h': { int16_t v; memcpy(&v, data, sizeof v); number = v; break; }
    case 'i': { int32_t v; memcpy(&v, data, sizeof v); number = v; break; }
    case 'l': case 'q': { int64_t v; memcpy(&v, data, sizeof v); number = v; break; }
    case 'B': unsigned_number = *(const uint8_t *)data; goto unsigned_value;
    case 'H': { uint16_t v; memcpy(&v, data, sizeof v); unsigned_number = v; goto unsigned_value; }
    case 'I': { uint32_t v; memcpy(&v, data, sizeof v); unsigned_number = v; goto unsigned_value; }
    case 'L': case 'Q': { uint64_t v; memcpy(&v, data, sizeof v); unsigned_number = v; goto unsigned_value; }
    default: return -1;
    }
    snprintf(text, sizeof text, "%lld", number);
    return buffer_add(t, text, strlen(text));
unsigned_value:
    snprintf(text, sizeof text, "%llu", unsigned_number);
    return buffer_add(t, text, strlen(text));
}

/* The nested lists of dims[0] x dims[1] x ... values at `data`, with json.dumps's separators. */
static int add_nested(Buffer *t, const char *data, const Py_ssize_t *dims, int ndim, char format, Py_ssize_t size,
                      int b64) {
    if (ndim == 0) return add_value(t, data, format, b64);
    Py_ssize_t step = size;
    for (int i = 1; i < ndim; i++) step *= dims[i];
    if (buffer_add(t, "[", 1) < 0) return -1;
    for (Py_ssize_t i = 0; i < dims[0]; i++)
        if ((i && buffer_add(t, ", ", 2) < 0) ||
            add_nested(t, data + i * step, dims + 1, ndim - 1, format, size, b64) < 0)
            return -1;
    return buffer_add(t, "]", 1);
}

static PyObject *ascii_text(Buffer *text, size_t from) {
    return PyUnicode_DecodeASCII(text->data ? text->data + from : "", text->len - from, NULL);
}

/* decimals(array) -> str: the JSON of a C-contiguous float32 or float64 array, as rest_json's
 * Python writer (decimal_text for each value) writes it, ~20x faster. */
static PyObject *decimals(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    char format = view.format[0];
    PyObject *result = NULL;
    Buffer text = {0};
    if (strcmp(view.format, "f") && strcmp(view.format, "d"))
        PyErr_Format(PyExc_TypeError, "decimals() takes float32 or float64, not '%s'", view.format);
    else if (add_nested(&text, view.buf, view.shape, view.ndim, format, view.itemsize, 0) == 0)
        result = ascii_text(&text, 0);
    else if (!PyErr_Occurred())
        PyErr_NoMemory();
    free(text.data);
    PyBuffer_Release(&view);
    return result;
}

#define TEXT_FORMATS "fd?bhilqBHILQO"  /* numbers, bools and (string tensors') objects */

/* texts(array, b64=False) -> [str, ...]: the JSON of each slice along dimension 0 of a C-contiguous
 * array of floats (as decimals() writes them), ints or bools (as json.dumps writes their Python
 * values) or strings (as add_string writes them, base64 if `b64`). */
static PyObject *texts(PyObject *module, PyObject *args) {
    PyObject *arg;
    int b64 = 0;
    if (!PyArg_ParseTuple(args, "O|p", &arg, &b64)) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    const char *format = view.format;
    if (*format == '=' || *format == '@') format++;
    PyObject *result = NULL;
    Buffer text = {0};
    if (view.ndim < 1 || strlen(format) != 1 || !strchr(TEXT_FORMATS, *format)) {
        PyErr_Format(PyExc_TypeError, "texts() takes an array of numbers, bools or strings, not '%s' of %d dimensions",
                     view.format, view.ndim);
    } else if ((result = PyList_New(view.shape[0])) != NULL) {
        Py_ssize_t step = view.shape[0] ? view.len / view.shape[0] : 0;
        for (Py_ssize_t i = 0; i < view.shape[0]; i++) {
            size_t from = text.len;
            PyObject *item = NULL;
            if (add_nested(&text, (const char *)view.buf + i * step, view.shape + 1, view.ndim - 1, *format,
                           view.itemsize, b64) == 0)
                item = ascii_text(&text, from);
            else if (!PyErr_Occurred())
                PyErr_NoMemory();
            if (!item) {
                Py_CLEAR(result);
                break;
            }
            PyList_SET_ITEM(result, i, item);
        }
    }
    free(text.data);
    PyBuffer_Release(&view);
    return result;
}

/* predictions(arrays, keys, b64s) -> str: the `predictions` list of a row-format answer, "[row, ...]",
 * from C-contiguous arrays of numbers, bools or strings with one first dimension: each row the slice
 * of the one array, or for several "{" key0 slice0 ", " key1 slice1 ... "}" with `keys` the texts
 * before each slice (`"alias": `), as rest_outputs writes it; strings base64 where `b64s` is true. */
static PyObject *predictions(PyObject *module, PyObject *args) {
    PyObject *arrays, *keys, *b64s;
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyList_Type, &arrays, &PyList_Type, &keys, &PyList_Type, &b64s))
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(arrays);
    if (count < 1 || PyList_GET_SIZE(keys) != count || PyList_GET_SIZE(b64s) != count)
        return PyErr_Format(PyExc_ValueError, "predictions() takes one key and flag per array, at least one");
    Py_buffer *views = PyMem_Calloc(count, sizeof *views);
    if (!views) return PyErr_NoMemory();
    Py_ssize_t got = 0, rows = 0;
    PyObject *result = NULL;
    Buffer text = {0};
    for (; got < count; got++) {
        if (PyObject_GetBuffer(PyList_GET_ITEM(arrays, got), &views[got], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
            goto done;
        const char *format = views[got].format;
        if (*format == '=' || *format == '@') format++;
        if (views[got].ndim < 1 || strlen(format) != 1 || !strchr(TEXT_FORMATS, *format) ||
            (got && views[got].shape[0] != rows) || !PyUnicode_Check(PyList_GET_ITEM(keys, got))) {
            PyErr_SetString(PyExc_TypeError, "predictions() takes arrays of numbers, bools or strings of one "
                            "batch size");
            got++;
            goto done;
        }
        rows = views[0].shape[0];
    }
    if (buffer_add(&text, "[", 1) < 0) goto done;
    for (Py_ssize_t i = 0; i < rows; i++) {
        if ((i && buffer_add(&text, ", ", 2) < 0) || (count > 1 && buffer_add(&text, "{", 1) < 0)) goto done;
        for (Py_ssize_t a = 0; a < count; a++) {
            Py_ssize_t key_len;
            const char *key = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(keys, a), &key_len);
            const Py_buffer *v = &views[a];
            const char *format = v->format + (*v->format == '=' || *v->format == '@');
            if (!key || (a && buffer_add(&text, ", ", 2) < 0) || buffer_add(&text, key, key_len) < 0 ||
                add_nested(&text, (const char *)v->buf + i * (v->len / rows), v->shape + 1, v->ndim - 1, *format,
                           v->itemsize, PyObject_IsTrue(PyList_GET_ITEM(b64s, a))) < 0)
                goto done;
        }
        if (count > 1 && buffer_add(&text, "}", 1) < 0) goto done;
    }
    if (buffer_add(&text, "]", 1) == 0) result = PyUnicode_DecodeUTF8(text.data, text.len, NULL);
done:
    if (!result && !PyErr_Occurred()) PyErr_NoMemory();
    for (Py_ssize_t a = 0; a < got; a++)
        if (views[a].obj) PyBuffer_Release(&views[a]);
    PyMem_Free(views);
    free(text.data);
    return result;
}

PyObject *predict_body(PyObject *module, PyObject *arg);  /* _predict_json.c */

static PyMethodDef methods[] = {
    {"scan", scan, METH_O, "scan(data) -> (depth, long_integer, members)"},
    {"members", members, METH_O, "members(value) -> the members of every object in a parsed document"},
    {"doubles", doubles, METH_VARARGS, "doubles(value, shape) -> bytearray of doubles, or None"},
    {"typed", typed, METH_VARARGS, "typed(value, shape, format) -> bytearray of ints, bools or doubles, or None"},
    {"strings", strings, METH_VARARGS, "strings(value, shape, decode) -> flat list of bytes, or None"},
    {"transpose", transpose, METH_VARARGS, "transpose(rows, aliases) -> a list per alias of the rows' values, or None"},
    {"decimals", decimals, METH_O, "decimals(array) -> the JSON text of a float32/float64 array"},
    {"texts", texts, METH_VARARGS, "texts(array, b64=False) -> the JSON text of each slice along dimension 0"},
    {"predictions", predictions, METH_VARARGS, "predictions(arrays, keys, b64s) -> the JSON list of a row answer"},
    {"predict_body", predict_body, METH_O, "predict_body(data) -> a predict body's named numeric tensors, or None"},
    {NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rest_json", "rest_json's fast path in C.", -1, methods};

PyMODINIT_FUNC PyInit__rest_json(void) { return PyModule_Create(&module); }
