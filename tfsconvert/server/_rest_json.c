/* The loops of rest_json's fast path that cost most per request in Python (~30 us of a
 * 600-value request here): scanning a body before orjson reads it, turning a dense nested list
 * of JSON numbers into doubles, and writing float outputs as JSON. They only measure or convert;
 * rest_json decides.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_buffer.h"

/* scan(data) -> (closing_brackets, long_integer, members): how many `]` and `}` the body has,
 * whether it has 19 or more digits in a row not after a `.` or another digit (an integer that may
 * not fit 64 bits), and how many `:` outside strings (object members, in a valid document).
 * Brackets are skipped when deciding what comes before a digit, as they are deleted before the
 * search in rest_json's definition. */
static PyObject *scan(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *p = view.buf;
    Py_ssize_t closing = 0, run = 0, members = 0;
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
        }
        if (ch == ']' || ch == '}') {
            closing++;
        } else if (ch >= '0' && ch <= '9') {
            if (run == 0 && !after_other) continue;  /* digits after `.`: a fraction's */
            if (++run >= 19) long_integer = 1;
        } else {
            after_other = ch != '.';
            run = 0;
        }
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(nin)", closing, long_integer, members);
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

/* The dense list's leaves, in order, as doubles into `out` (NULL: only check). 1 if `value`
 * is a list of `shape[0]` items, each a list of `shape[1]` items and so on, with exact floats or
 * ints (no bools) at the last level; 0 if not, or an int does not fit a double. */
static int dense(PyObject *value, const Py_ssize_t *shape, Py_ssize_t ndim, double **out) {
    if (!PyList_CheckExact(value) || PyList_GET_SIZE(value) != shape[0]) return 0;
    for (Py_ssize_t i = 0; i < shape[0]; i++) {
        PyObject *item = PyList_GET_ITEM(value, i);
        if (ndim > 1) {
            if (!dense(item, shape + 1, ndim - 1, out)) return 0;
        } else if (PyFloat_CheckExact(item)) {
            if (*out) *(*out)++ = PyFloat_AS_DOUBLE(item);
        } else if (PyLong_CheckExact(item)) {
            double number = PyLong_AsDouble(item);
            if (number == -1.0 && PyErr_Occurred()) {
                PyErr_Clear();  /* beyond a double */
                return 0;
            }
            if (*out) *(*out)++ = number;
        } else {
            return 0;
        }
    }
    return 1;
}

/* doubles(value, shape) -> bytes of the leaves as native doubles, or None if `value` is not a
 * dense list of numbers of that shape. */
static PyObject *doubles(PyObject *module, PyObject *args) {
    PyObject *value, *shape_list;
    if (!PyArg_ParseTuple(args, "OO!", &value, &PyList_Type, &shape_list)) return NULL;
    Py_ssize_t ndim = PyList_GET_SIZE(shape_list), count = 1;
    if (ndim == 0) Py_RETURN_NONE;
    Py_ssize_t *shape = PyMem_Malloc(ndim * sizeof *shape);
    if (!shape) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < ndim; i++) shape[i] = PyLong_AsSsize_t(PyList_GET_ITEM(shape_list, i));
    PyObject *result = NULL;
    double *none = NULL;
    if (PyErr_Occurred() || !dense(value, shape, ndim, &none)) goto done;  /* checked before allocating */
    for (Py_ssize_t i = 0; i < ndim; i++) count *= shape[i];  /* the leaves that exist: no overflow */
    result = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(double));
    if (result) {
        double *out = (double *)PyBytes_AS_STRING(result);
        dense(value, shape, ndim, &out);
    }
done:
    PyMem_Free(shape);
    if (!result && !PyErr_Occurred()) Py_RETURN_NONE;
    return result;
}

/* The JSON text of one float as TF Serving's WriteDecimal writes it (rest_json.decimal_text):
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

/* The nested lists of dims[0] x dims[1] x ... values at `data`, with json.dumps's separators. */
static int add_nested(Buffer *t, const char *data, const Py_ssize_t *dims, int ndim, int single) {
    if (ndim == 0) return add_decimal(t, single ? *(const float *)data : *(const double *)data, single);
    Py_ssize_t step = single ? sizeof(float) : sizeof(double);
    for (int i = 1; i < ndim; i++) step *= dims[i];
    if (buffer_add(t, "[", 1) < 0) return -1;
    for (Py_ssize_t i = 0; i < dims[0]; i++)
        if ((i && buffer_add(t, ", ", 2) < 0) || add_nested(t, data + i * step, dims + 1, ndim - 1, single) < 0) return -1;
    return buffer_add(t, "]", 1);
}

/* decimals(array) -> str: the JSON of a C-contiguous float32 or float64 array, as rest_json's
 * Python writer (decimal_text for each value) writes it, ~20x faster. */
static PyObject *decimals(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    int single = !strcmp(view.format, "f");
    PyObject *result = NULL;
    Buffer text = {0};
    if (!single && strcmp(view.format, "d"))
        PyErr_Format(PyExc_TypeError, "decimals() takes float32 or float64, not '%s'", view.format);
    else if (add_nested(&text, view.buf, view.shape, view.ndim, single) == 0)
        result = PyUnicode_DecodeASCII(text.data ? text.data : "", text.len, NULL);
    else if (!PyErr_Occurred())
        PyErr_NoMemory();
    free(text.data);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_O, "scan(data) -> (closing_brackets, long_integer, members)"},
    {"members", members, METH_O, "members(value) -> the members of every object in a parsed document"},
    {"doubles", doubles, METH_VARARGS, "doubles(value, shape) -> bytes of doubles, or None"},
    {"decimals", decimals, METH_O, "decimals(array) -> the JSON text of a float32/float64 array"},
    {NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rest_json", "rest_json's fast path in C.", -1, methods};

PyMODINIT_FUNC PyInit__rest_json(void) { return PyModule_Create(&module); }
