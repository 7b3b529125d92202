/* The common predict body read straight into doubles, for the REST lanes of _http.c: one dense
 * float tensor, in row form or columnar form, optionally with a signature name:
 *
 *   {"signature_name": "s", "instances": [[1.5, 2], [3, 4e-3]]}
 *   {"inputs": {"alias": [[...]]}}      {"inputs": [[...]]}
 *
 * Anything else (other keys, escapes in names, ragged or empty lists, bools, strings, NaN, ints
 * over 19 digits, trailing bytes) is left to the general path: orjson and rest_json, which give
 * TF Serving's answer and errors. What is read here must equal what that path reads: the values
 * as orjson (or the json module) and then float() make them. So ints convert as Python's
 * float(int) does (an integer "-0" is +0.0), and every other number is correctly rounded: exactly
 * for up to 19 significant digits and a decimal exponent within +-27 (the requests of every
 * serializer seen), by Python's own float() otherwise.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "_dense_json.h"

typedef struct {
    const char *p, *end;
    DenseBody *body;
    int leaf_level;  /* level of the first number, -1 before it */
} Parser;

static const double EXACT_POWERS[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                      1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
#define MAX_EXACT_EXPONENT 27  /* 5^27 < 2^63: the products and quotients below fit 128 bits */
#define MAX_DIGITS 19          /* 10^19 - 1 < 2^64 */

static void skip_space(Parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static int next_is(Parser *ps, char ch) {
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == ch) {
        ps->p++;
        return 1;
    }
    return 0;
}

/* A string of printable ASCII without escapes into `out`. */
static int plain_string(Parser *ps, char *out) {
    if (!next_is(ps, '"')) return 0;
    size_t n = 0;
    for (; ps->p < ps->end && *ps->p != '"'; ps->p++, n++) {
        unsigned char ch = *ps->p;
        if (ch < 0x20 || ch > 0x7e || ch == '\\' || n + 1 >= DENSE_MAX_NAME) return 0;
        out[n] = ch;
    }
    if (ps->p == ps->end) return 0;
    ps->p++;
    out[n] = 0;
    return 1;
}

static int bit_length(unsigned __int128 m) {
    uint64_t high = (uint64_t)(m >> 64);
    return high ? 128 - __builtin_clzll(high) : 64 - __builtin_clzll((uint64_t)m);
}

/* (m + a fraction, nonzero if `sticky`) * 2^e2, rounded to nearest, ties to even. The result is
 * a normal double here: m >= 1 and |e2| is small. */
static double rounded(unsigned __int128 m, int e2, int sticky) {
    int shift = bit_length(m) - 53;
    if (shift <= 0) return ldexp((double)(uint64_t)m, e2);
    uint64_t mantissa = (uint64_t)(m >> shift);
    unsigned __int128 rest = m & (((unsigned __int128)1 << shift) - 1), half = (unsigned __int128)1 << (shift - 1);
    if (rest > half || (rest == half && (sticky || (mantissa & 1)))) mantissa++;
    return ldexp((double)mantissa, e2 + shift);
}

/* w * 10^q exactly rounded, for w < 2^64, w > 0 and |q| <= MAX_EXACT_EXPONENT. */
static double scaled(uint64_t w, int q) {
    if (w <= (1ULL << 53) && q >= -22 && q <= 22)  /* one IEEE operation on exact operands */
        return q >= 0 ? (double)w * EXACT_POWERS[q] : (double)w / EXACT_POWERS[-q];
    uint64_t five = 1;
    for (int i = 0; i < (q < 0 ? -q : q); i++) five *= 5;
    if (q >= 0) return rounded((unsigned __int128)w * five, q, 0);  /* w * 5^q * 2^q */
    /* w / 10^k = (w * 2^s / 5^k) * 2^(-s-k), the quotient 63-64 bits long, the remainder sticky */
    int s = 63 + bit_length(five) - bit_length(w);
    unsigned __int128 n = (unsigned __int128)w << s;
    return rounded(n / five, q - s, n % five != 0);
}

/* Python's float() of the literal [start, end): numbers beyond the exact conversions. */
static int python_float(const char *start, const char *end, double *out) {
    char text[512];
    if (end - start >= (ptrdiff_t)sizeof text) return 0;
    memcpy(text, start, end - start);
    text[end - start] = 0;
    PyGILState_STATE gil = PyGILState_Ensure();  /* the HTTP loop parses without the GIL */
    *out = PyOS_string_to_double(text, NULL, NULL);
    int failed = *out == -1.0 && PyErr_Occurred();
    if (failed) PyErr_Clear();
    PyGILState_Release(gil);
    return !failed && !isinf(*out);  /* beyond a double: "Number too big", the general path's answer */
}

/* A JSON number at ps->p (the strict grammar) into *out. */
static int number(Parser *ps, double *out) {
    const char *start = ps->p, *p = start, *end = ps->end;
    int negative = p < end && *p == '-', digits = 0, exponent = 0, integer = 1;
    uint64_t w = 0;
    p += negative;
    if (p == end || *p < '0' || *p > '9') return 0;
    if (*p == '0') {
        p++;
    } else {
        for (; p < end && *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < MAX_DIGITS) w = w * 10 + (*p - '0');
    }
    if (p < end && *p == '.') {
        integer = 0;
        const char *first = ++p;
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (!w && *p == '0') {  /* a leading zero of the fraction: not significant */
                exponent--;
                continue;
            }
            if (digits < MAX_DIGITS) {
                w = w * 10 + (*p - '0');
                exponent--;
            }
            digits++;
        }
        if (p == first) return 0;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        integer = 0;
        p++;
        int sign = 1, e = 0;
        if (p < end && (*p == '+' || *p == '-')) sign = *p++ == '-' ? -1 : 1;
        const char *first = p;
        for (; p < end && *p >= '0' && *p <= '9'; p++)
            if (e < 100000) e = e * 10 + (*p - '0');
        if (p == first) return 0;
        exponent += sign * e;
    }
    if (integer && digits > MAX_DIGITS) return 0;  /* an int beyond 64 bits: the general path's */
    ps->p = p;
    if (integer) {
        *out = negative && w ? -(double)w : (double)w;  /* an int: -0 is 0 */
        return 1;
    }
    if (digits > MAX_DIGITS || (w && (exponent < -MAX_EXACT_EXPONENT || exponent > MAX_EXACT_EXPONENT)))
        return python_float(start, p, out);
    double value = w ? scaled(w, exponent) : 0.0;
    *out = negative ? -value : value;
    return 1;
}

static int append(DenseBody *b, double value) {
    return buffer_add(&b->values, (const char *)&value, sizeof value) == 0;
}

/* A number, or a non-empty list at `level` whose items have the shape the first one had. */
static int tensor(Parser *ps, int level) {
    skip_space(ps);
    DenseBody *b = ps->body;
    if (ps->p < ps->end && *ps->p == '[') {
        if (level >= DENSE_MAX_DIMS || (ps->leaf_level >= 0 && level >= ps->leaf_level)) return 0;
        ps->p++;
        int64_t count = 0;
        do {
            if (!tensor(ps, level + 1)) return 0;
            count++;
        } while (next_is(ps, ','));
        if (!next_is(ps, ']')) return 0;
        if (!b->shape[level]) b->shape[level] = count;  /* the first list of its level */
        return b->shape[level] == count;
    }
    if (ps->leaf_level < 0) ps->leaf_level = b->ndim = level;
    double value;
    return level == ps->leaf_level && number(ps, &value) && append(b, value);
}

/* "inputs": a dense tensor, or an object of one. */
static int columnar(Parser *ps) {
    if (next_is(ps, '{')) {
        if (!plain_string(ps, ps->body->alias) || !next_is(ps, ':') || !tensor(ps, 0) || !next_is(ps, '}')) return 0;
        ps->body->has_alias = 1;
        return 1;
    }
    return tensor(ps, 0);
}

int dense_body(const char *data, size_t len, DenseBody *b) {
    Parser ps = {data, data + len, b, -1};
    int seen_signature = 0, seen_tensor = 0;
    memset(b, 0, offsetof(DenseBody, values));
    b->values.len = 0;
    if (!next_is(&ps, '{')) return 0;
    do {
        char key[DENSE_MAX_NAME];
        if (!plain_string(&ps, key) || !next_is(&ps, ':')) return 0;
        if (!strcmp(key, "signature_name") && !seen_signature++) {
            if (!plain_string(&ps, b->signature)) return 0;
            b->has_signature = 1;
        } else if (!strcmp(key, "instances") && !seen_tensor++) {
            b->rows = 1;
            if (!tensor(&ps, 0)) return 0;
        } else if (!strcmp(key, "inputs") && !seen_tensor++) {
            if (!columnar(&ps)) return 0;
        } else {
            return 0;
        }
    } while (next_is(&ps, ','));
    if (!next_is(&ps, '}') || !seen_tensor || b->ndim < 1 + b->rows) return 0;
    skip_space(&ps);
    return ps.p == ps.end;
}

int json_number(const char **p, const char *end, double *out) {
    Parser ps = {*p, end, NULL, -1};
    if (!number(&ps, out)) return 0;
    *p = ps.p;
    return 1;
}
