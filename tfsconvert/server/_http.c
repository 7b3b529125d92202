/* The REST front end's HTTP/1.1 transport: one epoll loop, written in C because in Python the
 * event loop's own cost per request (~100 us here) held batched serving to a fraction of the
 * model's throughput (docs/benchmarks.md).
 *
 * The loop accepts connections, reads and parses requests (request line, headers,
 * Content-Length or chunked bodies, Expect: 100-continue, keep-alive), hands each one to Python as
 * on_request(token, method, target, body, keep_alive, gzip) and writes the bytes Python gives back
 * with respond(token, data, close). A connection has at most one request with Python at a time,
 * so pipelined requests are answered in order; a request that cannot be parsed (bare LF line
 * ends included) is answered `400 Bad Request` and its connection closed (as llhttp-based servers
 * do), one whose body would exceed max_body bytes `413 Request Entity Too Large`.
 *
 * Limits: a connection with no request under way is closed after idle_timeout_ms (also one whose
 * client stops reading its answers); a request's head must arrive within header_timeout_ms of its
 * first byte and its body within body_timeout_ms of its head, else `408 Request Timeout` and the
 * connection is closed (0 disables a timeout). A request with Python is never timed here.
 * Chunked bodies are decoded in place as their chunks arrive, each byte once.
 *
 * Lanes: a POST to a target Python has registered with add_lane(target, lane_id) whose body is
 * the common dense predict body (_dense_json.c) is read here and handed over as
 * on_lane(token, lane_id, rows, signature_name, alias, values, shape, keep_alive): `values` the
 * doubles' bytes. If on_lane returns False the request goes to on_request as any other.
 *
 * Threads: serve() runs the loop in the calling thread, which takes the GIL only to call Python:
 * reading, parsing and writing go on while the batch threads run Python. respond() is for the
 * loop's thread (from on_request, on_lane or on_wake); other threads call wake() (the loop then
 * calls on_wake) and stop(). Only the loop's thread touches the connections.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "_buffer.h"
#include "_dense_json.h"

#define MAX_HEAD (64 * 1024)          /* request line and headers */
#define READ_SIZE (64 * 1024)
#define PAUSE_BYTES (4 * 1024 * 1024) /* a client pipelining this much waits for its answers */
#define LISTEN_KEY UINT64_MAX
#define WAKE_KEY (UINT64_MAX - 1)
#define MAX_LANES 64
#define KEEP_BYTES (READ_SIZE * 4)    /* a buffer larger than this shrinks back once its request is done */
#define TOO_LARGE (-2)                /* parse_request: the body is over max_body */

static const char BAD_REQUEST[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
static const char ENTITY_TOO_LARGE[] =
    "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
static const char REQUEST_TIMEOUT[] = "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
static const char CONTINUE[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* After a large request: give back the memory its buffer no longer needs. */
static void buffer_shrink(Buffer *b) {
    if (b->cap <= KEEP_BYTES || b->len > KEEP_BYTES / 2) return;
    if (!b->len) {
        free(b->data);
        *b = (Buffer){0};
        return;
    }
    char *data = realloc(b->data, KEEP_BYTES);
    if (data) {
        b->data = data;
        b->cap = KEEP_BYTES;
    }
}

static void buffer_consume(Buffer *b, size_t len) {
    memmove(b->data, b->data + len, b->len - len);
    b->len -= len;
    buffer_shrink(b);
}

static uint64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

enum { IDLE, HEAD, BODY, BUSY, WRITING };  /* what a connection waits for: Conn.phase */

typedef struct {
    int fd;
    uint32_t serial;
    uint32_t events;   /* registered with epoll */
    Buffer in, out;    /* received and not parsed; to send */
    size_t sent;       /* of out */
    int busy;          /* a request is with Python, unanswered */
    int closing;       /* close once `out` is sent */
    int eof;           /* the client has stopped sending */
    int continued;     /* 100 Continue sent for the request being received */
    size_t chunk_raw;  /* of a chunked body being received: bytes after the head parsed so far */
    size_t chunk_body; /* and the body decoded from them, moved to just after the head */
    int phase;
    uint64_t deadline; /* now_ms() at which the phase times out; 0: never */
} Conn;

typedef struct {
    const char *method, *target;
    size_t method_len, target_len;
    const char *body;
    size_t body_len;
    size_t size;        /* bytes of the buffer the request takes */
    int keep_alive, gzip, expect_continue, http11;
    int head_done;      /* the head is parsed, the body is still coming */
} Request;

typedef struct {
    char *target;
    size_t len;
    long id;
} Lane;

typedef struct {
    PyObject_HEAD
    int listen_fd, epoll_fd, wake_fd;
    PyObject *on_request, *on_wake, *on_lane;
    Lane lanes[MAX_LANES];
    int lanes_len;
    DenseBody dense;    /* the last lane body read */
    Conn **conns;       /* by file descriptor */
    int conns_cap;
    uint32_t next_serial;
    uint64_t *ready;    /* tokens of connections answered since they were last written */
    size_t ready_len, ready_cap;
    size_t max_body;
    uint64_t timeouts[WRITING + 1];  /* ms by phase; 0: none */
    uint64_t tick, next_sweep;       /* ms between looks for timed-out connections */
    int accept_paused;  /* out of file descriptors: accept again once a connection closes */
    PyThreadState *released;  /* the loop's, while it runs without the GIL */
    volatile int stopping;
} Server;

/* Around every call into Python from the loop. */
static void take_gil(Server *s) { PyEval_RestoreThread(s->released); }
static void drop_gil(Server *s) { s->released = PyEval_SaveThread(); }

static uint64_t token_of(Conn *c) { return ((uint64_t)c->serial << 32) | (uint32_t)c->fd; }

static Conn *conn_of(Server *s, uint64_t token) {
    int fd = (int)(token & 0xffffffffu);
    if (fd < 0 || fd >= s->conns_cap || !s->conns) return NULL;
    Conn *c = s->conns[fd];
    return c && c->serial == (uint32_t)(token >> 32) ? c : NULL;
}

static void listen_for(Server *s, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.u64 = LISTEN_KEY};
    epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, s->listen_fd, &ev);
    s->accept_paused = !events;
}

static void conn_close(Server *s, Conn *c) {
    if (s->accept_paused) listen_for(s, EPOLLIN);
    s->conns[c->fd] = NULL;
    close(c->fd);
    free(c->in.data);
    free(c->out.data);
    free(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Parsing */

static int is_tchar(unsigned char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int is_field_char(unsigned char ch) { return ch == '\t' || (ch >= ' ' && ch != 0x7f); }

static int equals(const char *a, size_t len, const char *lower) {
    return strlen(lower) == len && strncasecmp(a, lower, len) == 0;
}

static int contains(const char *a, size_t len, const char *lower) {
    size_t n = strlen(lower);
    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(a + i, lower, n) == 0) return 1;
    return 0;
}

/* A chunked body starting at `p`: 1 and the raw bytes it takes when whole, 0 if more is to come,
 * -1 if malformed, TOO_LARGE past `max` bytes. Whole chunks are decoded in place to the start of
 * `p` as they arrive; c->chunk_raw and c->chunk_body say how far, so no byte is parsed twice. */
static int parse_chunked(char *p, size_t len, Conn *c, size_t max, size_t *taken) {
    size_t i = c->chunk_raw;
    for (;;) {
        uint64_t size = 0;
        size_t digits = 0;
        for (; i < len && isxdigit((unsigned char)p[i]); i++, digits++) {
            if (digits == 15) return -1;
            char ch = p[i];
            size = size * 16 + (ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10);
        }
        if (i == len) return 0;
        if (!digits) return -1;
        for (; i < len && p[i] != '\r'; i++)  /* chunk extensions */
            if (!is_field_char((unsigned char)p[i])) return -1;
        if (i + 1 >= len) return 0;
        if (p[i + 1] != '\n') return -1;
        i += 2;
        if (size == 0) break;
        if (size > max - c->chunk_body) return TOO_LARGE;
        if (len - i < size + 2) return 0;
        if (p[i + size] != '\r' || p[i + size + 1] != '\n') return -1;
        memmove(p + c->chunk_body, p + i, size);
        c->chunk_body += size;
        i += size + 2;
        c->chunk_raw = i;
    }
    for (;;) {  /* trailer fields, then an empty line */
        const char *end = memmem(p + i, len - i, "\r\n", 2);
        if (!end) return 0;
        size_t line = end - (p + i);
        for (size_t k = i; k < i + line; k++)
            if (p[k] == '\n') return -1;  /* a bare LF */
        i += line + 2;
        if (line == 0) break;
    }
    *taken = i;
    return 1;
}

/* The request at the start of c->in: 1 if whole, 0 if more is to come, -1 if malformed,
 * TOO_LARGE if its body is over `max_body`. */
static int parse_request(Conn *c, Request *r, size_t max_body) {
    char *p = c->in.data;
    size_t len = c->in.len;
    size_t searched = len < MAX_HEAD + 4 ? len : MAX_HEAD + 4;
    const char *head_end = searched ? memmem(p, searched, "\r\n\r\n", 4) : NULL;
    memset(r, 0, sizeof *r);
    size_t head_bytes = head_end ? (size_t)(head_end + 4 - p) : searched;
    for (const char *lf = memchr(p, '\n', head_bytes); lf; lf = memchr(lf + 1, '\n', p + head_bytes - lf - 1))
        if (lf == p || lf[-1] != '\r') return -1;  /* a bare LF ends no line: refused at once */
    if (!head_end) return len >= MAX_HEAD + 4 ? -1 : 0;
    /* request line: METHOD SP TARGET SP HTTP/1.x */
    const char *line_end = memmem(p, head_end + 2 - p, "\r\n", 2);
    const char *q = p;
    while (q < line_end && is_tchar(*q)) q++;
    if (q == p || q == line_end || *q != ' ') return -1;
    r->method = p;
    r->method_len = q - p;
    r->target = ++q;
    while (q < line_end && (unsigned char)*q > ' ' && *q != 0x7f) q++;
    if (q == r->target || *q != ' ') return -1;
    r->target_len = q - r->target;
    q++;
    if (line_end - q != 8 || memcmp(q, "HTTP/1.", 7) || (q[7] != '0' && q[7] != '1')) return -1;
    int http11 = r->http11 = q[7] == '1', close = 0, keep = 0, chunked_body = 0, has_length = 0;
    uint64_t length = 0;
    /* headers: NAME ":" OWS VALUE OWS */
    for (const char *line = line_end + 2; line < head_end + 2; line = line_end + 2) {
        line_end = memmem(line, head_end + 2 - line, "\r\n", 2);
        const char *colon = line;
        while (colon < line_end && is_tchar(*colon)) colon++;
        if (colon == line || colon == line_end || *colon != ':') return -1;
        const char *value = colon + 1, *value_end = line_end;
        for (const char *v = value; v < line_end; v++)
            if (!is_field_char((unsigned char)*v)) return -1;
        while (value < value_end && (*value == ' ' || *value == '\t')) value++;
        while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t')) value_end--;
        size_t name_len = colon - line, value_len = value_end - value;
        if (equals(line, name_len, "content-length")) {
            uint64_t n = 0;
            if (!value_len || value_len > 15) return -1;
            for (const char *v = value; v < value_end; v++) {
                if (*v < '0' || *v > '9') return -1;
                n = n * 10 + (*v - '0');
            }
            if (has_length && n != length) return -1;
            has_length = 1;
            length = n;
        } else if (equals(line, name_len, "transfer-encoding")) {
            if (!equals(value, value_len, "chunked")) return -1;
            chunked_body = 1;
        } else if (equals(line, name_len, "connection")) {
            close |= contains(value, value_len, "close");
            keep |= contains(value, value_len, "keep-alive");
        } else if (equals(line, name_len, "expect")) {
            r->expect_continue = equals(value, value_len, "100-continue");
        } else if (equals(line, name_len, "content-encoding")) {
            r->gzip = contains(value, value_len, "gzip");
        }
    }
    if (chunked_body && has_length) return -1;  /* ambiguous framing (request smuggling) */
    r->expect_continue &= http11;  /* HTTP/1.0 clients know no 100 Continue */
    r->keep_alive = http11 ? !close : keep && !close;
    size_t head = head_end + 4 - p;
    r->head_done = 1;
    if (chunked_body) {
        size_t taken = 0;
        int whole = parse_chunked(p + head, len - head, c, max_body, &taken);
        if (whole <= 0) return whole;
        r->body = p + head;
        r->body_len = c->chunk_body;
        r->size = head + taken;
        return 1;
    }
    if (length > max_body) return TOO_LARGE;
    if (len - head < length) return 0;
    r->body = p + head;
    r->body_len = length;
    r->size = head + length;
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* The loop */

static void ready_add(Server *s, Conn *c) {
    if (s->ready_len == s->ready_cap) {
        size_t cap = s->ready_cap ? s->ready_cap * 2 : 64;
        uint64_t *ready = realloc(s->ready, cap * sizeof *ready);
        if (!ready) return;  /* out of memory: the answer waits in `out` until the connection's next event */
        s->ready = ready;
        s->ready_cap = cap;
    }
    s->ready[s->ready_len++] = token_of(c);
}

static void set_events(Server *s, Conn *c) {
    uint32_t events = 0;
    if (!c->eof && !c->closing && !(c->busy && c->in.len >= PAUSE_BYTES)) events |= EPOLLIN;
    if (c->sent < c->out.len) events |= EPOLLOUT;
    if (events != c->events) {
        struct epoll_event ev = {.events = events, .data.u64 = token_of(c)};
        epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
        c->events = events;
    }
}

/* Write what is queued; 0 while the connection is open, -1 once it is closed. */
static int flush(Server *s, Conn *c) {
    while (c->sent < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->sent, c->out.len - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            conn_close(s, c);
            return -1;
        }
        c->sent += n;
        if (c->phase == WRITING && s->timeouts[WRITING]) c->deadline = now_ms() + s->timeouts[WRITING];
    }
    c->out.len = c->sent = 0;
    buffer_shrink(&c->out);
    if (c->closing) {
        conn_close(s, c);
        return -1;
    }
    return 0;
}

/* Answer `answer` (a whole HTTP answer) and close. */
static void refuse(Conn *c, const char *answer) {
    buffer_add(&c->out, answer, strlen(answer));
    c->closing = 1;
}

/* Start timing the connection's phase if it changed. */
static void arm(Server *s, Conn *c, int head_done) {
    int phase = c->busy ? BUSY : c->sent < c->out.len ? WRITING : head_done ? BODY : c->in.len ? HEAD : IDLE;
    if (phase == c->phase) return;
    c->phase = phase;
    c->deadline = s->timeouts[phase] ? now_ms() + s->timeouts[phase] : 0;
}

/* (rows, signature_name, alias, values, shape) of a dense body, as on_lane is given them. */
static PyObject *dense_tuple(const DenseBody *b) {
    PyObject *shape = PyTuple_New(b->ndim);
    for (int i = 0; shape && i < b->ndim; i++) PyTuple_SET_ITEM(shape, i, PyLong_FromLongLong(b->shape[i]));
    if (!shape) return NULL;
    return Py_BuildValue("(NzzNN)", PyBool_FromLong(b->rows), b->has_signature ? b->signature : NULL,
                         b->has_alias ? b->alias : NULL,
                         PyBytes_FromStringAndSize(b->values.data, b->values.len), shape);
}

static const Lane *lane_of(Server *s, Request *r) {
    if (r->gzip || r->method_len != 4 || memcmp(r->method, "POST", 4)) return NULL;
    for (int i = 0; i < s->lanes_len; i++)
        if (s->lanes[i].len == r->target_len && !memcmp(s->lanes[i].target, r->target, r->target_len))
            return &s->lanes[i];
    return NULL;
}

/* 1 if on_lane took the request, else 0 (an exception in on_lane is printed, and the request
 * goes the general way). */
static int dispatch_lane(Server *s, Conn *c, Request *r) {
    const Lane *lane = lane_of(s, r);
    if (!lane || !dense_body(r->body, r->body_len, &s->dense)) return 0;
    take_gil(s);
    PyObject *body = dense_tuple(&s->dense), *result = NULL;
    if (body)
        result = PyObject_CallFunction(s->on_lane, "KlOOOOOi", (unsigned long long)token_of(c), lane->id,
                                       PyTuple_GET_ITEM(body, 0), PyTuple_GET_ITEM(body, 1),
                                       PyTuple_GET_ITEM(body, 2), PyTuple_GET_ITEM(body, 3),
                                       PyTuple_GET_ITEM(body, 4), r->keep_alive);
    Py_XDECREF(body);
    int taken = result ? PyObject_IsTrue(result) : -1;
    Py_XDECREF(result);
    s->dense.values.len = 0;
    buffer_shrink(&s->dense.values);
    if (taken < 0) {
        PyErr_WriteUnraisable(s->on_lane);
        taken = 0;
    }
    drop_gil(s);
    return taken;
}

static int dispatch(Server *s, Conn *c, Request *r) {
    c->busy = 1;
    if (dispatch_lane(s, c, r)) return 0;
    take_gil(s);
    PyObject *method = PyUnicode_DecodeLatin1(r->method, r->method_len, NULL);
    PyObject *target = PyUnicode_DecodeLatin1(r->target, r->target_len, NULL);
    PyObject *body = PyBytes_FromStringAndSize(r->body, r->body_len);
    PyObject *result = NULL;
    if (method && target && body)
        result = PyObject_CallFunction(s->on_request, "KOOOii", (unsigned long long)token_of(c), method,
                                       target, body, r->keep_alive, r->gzip);
    Py_XDECREF(method);
    Py_XDECREF(target);
    Py_XDECREF(body);
    if (!result) PyErr_WriteUnraisable(s->on_request);
    Py_XDECREF(result);
    drop_gil(s);
    return result ? 0 : -1;
}

/* Hand the connection's next whole request to Python, unless one is already there. */
static void advance(Server *s, Conn *c) {
    int head_done = 0;
    while (!c->busy && !c->closing) {
        size_t blank = 0;  /* empty lines before a request are allowed */
        while (blank + 1 < c->in.len && c->in.data[blank] == '\r' && c->in.data[blank + 1] == '\n') blank += 2;
        if (blank) buffer_consume(&c->in, blank);
        Request r;
        int whole = parse_request(c, &r, s->max_body);
        head_done = r.head_done && whole == 0;
        if (whole < 0) {
            refuse(c, whole == TOO_LARGE ? ENTITY_TOO_LARGE : BAD_REQUEST);
        } else if (whole == 0) {
            if (r.head_done && r.expect_continue && !c->continued) {
                buffer_add(&c->out, CONTINUE, sizeof CONTINUE - 1);
                c->continued = 1;
            }
            if (c->eof) {
                if (c->in.len) refuse(c, BAD_REQUEST);  /* cut short */
                else c->closing = 1;
            }
            break;
        } else {
            c->continued = 0;
            c->chunk_raw = c->chunk_body = 0;
            int failed = dispatch(s, c, &r);
            buffer_consume(&c->in, r.size);
            if (failed) {
                conn_close(s, c);
                return;
            }
        }
    }
    if (flush(s, c) == 0) {
        arm(s, c, head_done);
        set_events(s, c);
    }
}

/* Close the connections whose phase timed out: 408 to a client in the middle of a request. */
static void sweep(Server *s) {
    uint64_t now = now_ms();
    if (now < s->next_sweep) return;
    s->next_sweep = now + s->tick;
    for (int fd = 0; fd < s->conns_cap; fd++) {
        Conn *c = s->conns[fd];
        if (!c || !c->deadline || now < c->deadline) continue;
        if (c->phase != HEAD && c->phase != BODY) {
            conn_close(s, c);
            continue;
        }
        refuse(c, REQUEST_TIMEOUT);
        if (flush(s, c) == 0) conn_close(s, c);  /* a client that does not take the 408 is closed all the same */
    }
}

/* Write the answers Python gave since the last call, and move each connection on. */
static void answer_ready(Server *s) {
    for (size_t i = 0; i < s->ready_len; i++) {  /* advance() may add more */
        Conn *c = conn_of(s, s->ready[i]);
        if (c) advance(s, c);
    }
    s->ready_len = 0;
}

static void accept_all(Server *s) {
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {  /* EAGAIN, a connection reset before it was accepted, or no descriptor left */
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) listen_for(s, 0);
            return;  /* else the listening socket would be ready again at once, and the loop spin */
        }
        if (fd >= s->conns_cap) {
            int cap = s->conns_cap ? s->conns_cap : 256;
            while (cap <= fd) cap *= 2;
            Conn **conns = realloc(s->conns, cap * sizeof *conns);
            if (!conns) {
                close(fd);
                continue;
            }
            memset(conns + s->conns_cap, 0, (cap - s->conns_cap) * sizeof *conns);
            s->conns = conns;
            s->conns_cap = cap;
        }
        Conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        int one = 1;  /* a pipelined client's next answer must not wait for a delayed ACK */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd = fd;
        c->serial = ++s->next_serial;
        c->events = EPOLLIN;
        c->deadline = s->timeouts[IDLE] ? now_ms() + s->timeouts[IDLE] : 0;
        s->conns[fd] = c;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = token_of(c)};
        epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
    }
}

static void receive(Server *s, Conn *c) {
    if (buffer_reserve(&c->in, READ_SIZE)) {
        conn_close(s, c);
        return;
    }
    ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n < 0) {  /* reset: nobody is left to answer */
        conn_close(s, c);
        return;
    }
    if (n == 0) c->eof = 1;
    c->in.len += n;
    advance(s, c);
}

static PyObject *Server_serve(Server *s, PyObject *unused) {
    struct epoll_event events[256];
    drop_gil(s);
    while (!s->stopping) {
        int n = epoll_wait(s->epoll_fd, events, 256, s->tick ? (int)s->tick : -1);
        for (int i = 0; i < n && !s->stopping; i++) {
            uint64_t key = events[i].data.u64;
            if (key == LISTEN_KEY) {
                accept_all(s);
            } else if (key == WAKE_KEY) {
                uint64_t count;
                (void)!read(s->wake_fd, &count, sizeof count);
                take_gil(s);
                PyObject *result = PyObject_CallNoArgs(s->on_wake);
                if (!result) PyErr_WriteUnraisable(s->on_wake);
                Py_XDECREF(result);
                drop_gil(s);
            } else {
                Conn *c = conn_of(s, key);
                if (c && events[i].events & EPOLLOUT && flush(s, c) == 0) advance(s, c);
                c = conn_of(s, key);  /* unless that closed it */
                if (c && events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) receive(s, c);
            }
            answer_ready(s);
        }
        if (s->tick) sweep(s);
    }
    for (int fd = 0; fd < s->conns_cap; fd++)
        if (s->conns[fd]) conn_close(s, s->conns[fd]);
    take_gil(s);
    Py_RETURN_NONE;
}

static PyObject *Server_respond(Server *s, PyObject *args) {
    unsigned long long token;
    Py_buffer data;
    int close;
    if (!PyArg_ParseTuple(args, "Ky*p", &token, &data, &close)) return NULL;
    Conn *c = conn_of(s, token);
    if (c && c->busy) {  /* else the client went away: the answer is dropped */
        c->busy = 0;
        c->closing |= close;
        if (buffer_add(&c->out, data.buf, data.len)) c->closing = 1;
        ready_add(s, c);
    }
    PyBuffer_Release(&data);
    Py_RETURN_NONE;
}

static PyObject *Server_add_lane(Server *s, PyObject *args) {
    Py_buffer target;
    long id;
    if (!PyArg_ParseTuple(args, "y*l", &target, &id)) return NULL;
    if (s->lanes_len < MAX_LANES && (s->lanes[s->lanes_len].target = malloc(target.len))) {
        memcpy(s->lanes[s->lanes_len].target, target.buf, target.len);
        s->lanes[s->lanes_len].len = target.len;
        s->lanes[s->lanes_len++].id = id;
    }
    PyBuffer_Release(&target);
    Py_RETURN_NONE;
}

static PyObject *Server_wake(Server *s, PyObject *unused) {
    uint64_t one = 1;
    if (write(s->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN) return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *Server_stop(Server *s, PyObject *unused) {
    s->stopping = 1;
    return Server_wake(s, NULL);
}

static int Server_init(Server *s, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"listen_fd", "on_request", "on_wake", "on_lane", "max_body", "header_timeout_ms",
                            "body_timeout_ms", "idle_timeout_ms", NULL};
    unsigned long long max_body = SIZE_MAX, header_ms = 0, body_ms = 0, idle_ms = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iOOO|KKKK", names, &s->listen_fd, &s->on_request, &s->on_wake,
                                     &s->on_lane, &max_body, &header_ms, &body_ms, &idle_ms))
        return -1;
    s->max_body = max_body;
    s->timeouts[HEAD] = header_ms;
    s->timeouts[BODY] = body_ms;
    s->timeouts[IDLE] = s->timeouts[WRITING] = idle_ms;
    for (int phase = IDLE; phase <= WRITING; phase++)  /* a quarter of the shortest, within [10 ms, 1 s] */
        if (s->timeouts[phase] && (!s->tick || s->timeouts[phase] / 4 < s->tick)) s->tick = s->timeouts[phase] / 4;
    if (s->tick) s->tick = s->tick < 10 ? 10 : s->tick > 1000 ? 1000 : s->tick;
    Py_INCREF(s->on_request);
    Py_INCREF(s->on_wake);
    Py_INCREF(s->on_lane);
    int flags = fcntl(s->listen_fd, F_GETFL);
    s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (flags < 0 || fcntl(s->listen_fd, F_SETFL, flags | O_NONBLOCK) < 0 || s->epoll_fd < 0 || s->wake_fd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    struct epoll_event listen_ev = {.events = EPOLLIN, .data.u64 = LISTEN_KEY};
    struct epoll_event wake_ev = {.events = EPOLLIN, .data.u64 = WAKE_KEY};
    if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->listen_fd, &listen_ev) ||
        epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->wake_fd, &wake_ev)) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

static PyObject *Server_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    Server *s = (Server *)type->tp_alloc(type, 0);
    if (s) s->epoll_fd = s->wake_fd = -1;
    return (PyObject *)s;
}

static void Server_dealloc(Server *s) {
    if (s->conns)
        for (int fd = 0; fd < s->conns_cap; fd++)
            if (s->conns[fd]) conn_close(s, s->conns[fd]);
    if (s->epoll_fd >= 0) close(s->epoll_fd);
    if (s->wake_fd >= 0) close(s->wake_fd);
    free(s->conns);
    free(s->ready);
    free(s->dense.values.data);
    for (int i = 0; i < s->lanes_len; i++) free(s->lanes[i].target);
    Py_XDECREF(s->on_request);
    Py_XDECREF(s->on_wake);
    Py_XDECREF(s->on_lane);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyMethodDef Server_methods[] = {
    {"serve", (PyCFunction)Server_serve, METH_NOARGS, "Run the loop in this thread until stop()."},
    {"respond", (PyCFunction)Server_respond, METH_VARARGS,
     "respond(token, data, close): queue a request's whole answer (the loop's thread only)."},
    {"add_lane", (PyCFunction)Server_add_lane, METH_VARARGS,
     "add_lane(target, lane_id): read dense predict bodies POSTed to `target` here (at most 64 lanes)."},
    {"wake", (PyCFunction)Server_wake, METH_NOARGS, "Make the loop call on_wake (any thread)."},
    {"stop", (PyCFunction)Server_stop, METH_NOARGS, "End serve() and close every connection (any thread)."},
    {NULL},
};

static PyTypeObject ServerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tfsconvert.server._http.Server",
    .tp_doc = "Server(listen_fd, on_request, on_wake, on_lane, max_body=no limit, header_timeout_ms=0, "
              "body_timeout_ms=0, idle_timeout_ms=0): HTTP/1.1 on a listening socket (0: no timeout).",
    .tp_basicsize = sizeof(Server),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Server_new,
    .tp_init = (initproc)Server_init,
    .tp_dealloc = (destructor)Server_dealloc,
    .tp_methods = Server_methods,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_http", "The REST front end's HTTP/1.1 transport.", -1,
                                    NULL};

PyMODINIT_FUNC PyInit__http(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddType(m, &ServerType) < 0) Py_CLEAR(m);  /* readies the type, named by tp_name */
    return m;
}
