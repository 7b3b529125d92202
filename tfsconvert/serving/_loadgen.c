/* The REST clients of `tfsconvert bench`'s load generator: closed-loop keep-alive HTTP/1.1
 * connections on one epoll loop, in C because the asyncio clients cost ~50 us of CPU per request,
 * a quarter of a core at the rates measured here, on the same cores as the server measured.
 *
 * Client(host, port, connections) connects; run(payloads, requests, duration, timeout, progress)
 * sends, on each connection, the next payload (whole HTTP requests, used in turn) as soon as the
 * previous answer is in, until `requests` answers (or -1: no bound) or `duration` seconds (or -1)
 * are over; answers are read as far as the status and Content-Length. It returns
 * (latencies: bytes of doubles in seconds, of the 200 answers; errors; error samples; started;
 * ended), times on time.monotonic()'s clock. The GIL is released while running, taken every 0.2 s
 * to call progress(answers so far).
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../server/_buffer.h"

#define MAX_SAMPLES 3
#define PROGRESS_EVERY 0.2

typedef struct {
    int fd;
    Buffer in;          /* answers read, not yet taken */
    const char *out;    /* the request being sent */
    size_t out_len, sent;
    double started;     /* of the request in flight, 0 if none */
} Conn;

typedef struct {
    PyObject_HEAD
    struct sockaddr_storage address;
    socklen_t address_len;
    int epoll_fd;
    Conn *conns;
    int count;
} Client;

typedef struct {  /* one run() */
    char **payloads;
    Py_ssize_t *lengths, payload_count, next_payload;
    long long left;   /* requests still to claim, -1 without a bound */
    double deadline, timeout;
    Buffer latencies;   /* doubles */
    long errors;
    char samples[MAX_SAMPLES][360];
    int sample_count;
} Run;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void error(Run *r, const char *message) {
    r->errors++;
    for (int i = 0; i < r->sample_count; i++)
        if (!strcmp(r->samples[i], message)) return;
    if (r->sample_count < MAX_SAMPLES) snprintf(r->samples[r->sample_count++], sizeof r->samples[0], "%s", message);
}

/* Connect (blocking: a loopback connect is immediate), then make the socket non-blocking. */
static int conn_open(Client *c, Conn *k) {
    k->in.len = k->out_len = k->sent = 0;
    k->fd = socket(c->address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (k->fd < 0 || connect(k->fd, (struct sockaddr *)&c->address, c->address_len) < 0 ||
        fcntl(k->fd, F_SETFL, O_NONBLOCK) < 0 || setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) {
        int saved = errno;
        if (k->fd >= 0) close(k->fd);
        k->fd = -1;
        errno = saved;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = k};
    epoll_ctl(c->epoll_fd, EPOLL_CTL_ADD, k->fd, &ev);
    return 0;
}

static void conn_close(Conn *k) {
    if (k->fd >= 0) close(k->fd);  /* also leaves the epoll set */
    k->fd = -1;
}

/* Send as much of the request as the socket takes; wait for it to be writable for the rest. */
static int conn_write(Client *c, Conn *k) {
    size_t before = k->sent;
    while (k->sent < k->out_len) {
        ssize_t n = send(k->fd, k->out + k->sent, k->out_len - k->sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
        if (n < 0) break;
        k->sent += n;
    }
    int waiting = k->sent < k->out_len, waited = before > 0;
    if (waiting != waited) {
        struct epoll_event ev = {.events = EPOLLIN | (waiting ? EPOLLOUT : 0), .data.ptr = k};
        epoll_ctl(c->epoll_fd, EPOLL_CTL_MOD, k->fd, &ev);
    }
    return 0;
}

/* The next request on `k`, reconnecting if the server closed it; 0 if none is left to claim. */
static int next_request(Client *c, Run *r, Conn *k) {
    for (;;) {
        if (r->left == 0 || (r->deadline > 0 && now() >= r->deadline)) return 0;
        if (r->left > 0) r->left--;
        if (k->fd < 0 && conn_open(c, k) < 0) {
            error(r, "ConnectionError: cannot reconnect to the server");
            return 0;
        }
        Py_ssize_t i = r->next_payload++ % r->payload_count;
        k->out = r->payloads[i];
        k->out_len = r->lengths[i];
        k->sent = 0;
        k->started = now();
        if (conn_write(c, k) == 0) return 1;
        conn_close(k);
        k->started = 0;
        error(r, "ConnectionError: connection closed by the server");
    }
}

static int add_latency(Run *r, double latency) {
    return buffer_add(&r->latencies, (const char *)&latency, sizeof latency);
}

/* A whole answer at the start of k->in: its size (and status, body, closing), 0 if more is to come. */
static size_t answer(Conn *k, int *status, const char **body, size_t *body_len, int *closing) {
    char *in = k->in.data;
    char *end = memmem(in, k->in.len, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head = end + 4 - in;
    long long length = -1;
    *status = k->in.len > 12 ? atoi(in + 9) : 0;
    *closing = 0;
    for (char *line = memmem(in, head, "\r\n", 2) + 2; line < end + 2;) {
        char *line_end = memmem(line, end + 2 - line, "\r\n", 2);
        if (!strncasecmp(line, "content-length:", 15)) length = atoll(line + 15);
        if (!strncasecmp(line, "connection:", 11))
            for (char *p = line + 11; p + 5 <= line_end; p++) *closing |= !strncasecmp(p, "close", 5);
        line = line_end + 2;
    }
    if (length < 0) length = 0;  /* TF Serving and our server always send a length */
    if (k->in.len < head + length) return 0;
    *body = in + head;
    *body_len = length;
    return head + length;
}

static void on_readable(Client *c, Run *r, Conn *k, int *active) {
    if (buffer_reserve(&k->in, 65536)) return;
    ssize_t n = recv(k->fd, k->in.data + k->in.len, k->in.cap - k->in.len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        conn_close(k);
        if (k->started) {
            k->started = 0;
            error(r, "ConnectionError: connection closed by the server");
            if (!next_request(c, r, k)) --*active;
        }
        return;
    }
    k->in.len += n;
    int status, closing;
    const char *body;
    size_t body_len, size;
    while (k->started && (size = answer(k, &status, &body, &body_len, &closing))) {
        if (status == 200) {
            add_latency(r, now() - k->started);
        } else {
            char message[360];
            snprintf(message, sizeof message, "HTTP %d: %.*s", status, (int)(body_len < 300 ? body_len : 300), body);
            error(r, message);
        }
        memmove(k->in.data, k->in.data + size, k->in.len - size);
        k->in.len -= size;
        k->started = 0;
        if (closing) conn_close(k);
        if (!next_request(c, r, k)) --*active;
    }
}

static void expire(Client *c, Run *r, int *active) {
    double t = now();
    for (int i = 0; i < c->count; i++) {
        Conn *k = &c->conns[i];
        if (k->started && t - k->started > r->timeout) {
            char message[100];
            snprintf(message, sizeof message, "TimeoutError: no answer within %g s", r->timeout);
            error(r, message);
            conn_close(k);
            k->started = 0;
            if (!next_request(c, r, k)) --*active;
        }
    }
}

static PyObject *Client_run(Client *c, PyObject *args) {
    PyObject *payloads, *progress;
    long long requests;
    double duration, timeout;
    if (!PyArg_ParseTuple(args, "O!LddO", &PyList_Type, &payloads, &requests, &duration, &timeout, &progress))
        return NULL;
    Run r = {.left = requests, .timeout = timeout, .payload_count = PyList_GET_SIZE(payloads)};
    if (!r.payload_count) return PyErr_Format(PyExc_ValueError, "no payloads");
    r.payloads = PyMem_Calloc(r.payload_count, sizeof *r.payloads);
    r.lengths = PyMem_Calloc(r.payload_count, sizeof *r.lengths);
    for (Py_ssize_t i = 0; i < r.payload_count; i++)
        if (PyBytes_AsStringAndSize(PyList_GET_ITEM(payloads, i), &r.payloads[i], &r.lengths[i]) < 0) goto fail;
    double started = now(), next_progress = started + PROGRESS_EVERY;
    if (duration >= 0) r.deadline = started + duration;
    int active = 0;
    for (int i = 0; i < c->count; i++) active += next_request(c, &r, &c->conns[i]);
    while (active > 0) {
        struct epoll_event events[256];
        int n;
        Py_BEGIN_ALLOW_THREADS
        n = epoll_wait(c->epoll_fd, events, 256, 50);
        for (int i = 0; i < n; i++) {
            Conn *k = events[i].data.ptr;
            if (k->fd < 0) continue;
            if (events[i].events & EPOLLOUT && k->sent < k->out_len && conn_write(c, k) < 0) events[i].events |= EPOLLERR;
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c, &r, k, &active);
        }
        Py_END_ALLOW_THREADS
        if (now() >= next_progress) {
            expire(c, &r, &active);
            next_progress = now() + PROGRESS_EVERY;
            PyObject *result = PyObject_CallFunction(progress, "n", (Py_ssize_t)(r.latencies.len / sizeof(double) + r.errors));
            if (!result) goto fail;
            Py_DECREF(result);
        }
    }
    double ended = now();
    PyObject *samples = PyList_New(r.sample_count);
    for (int i = 0; samples && i < r.sample_count; i++)
        PyList_SET_ITEM(samples, i, PyUnicode_DecodeUTF8(r.samples[i], strlen(r.samples[i]), "replace"));
    PyObject *out = Py_BuildValue("(y#lNdd)", r.latencies.data ? r.latencies.data : "", (Py_ssize_t)r.latencies.len,
                                  r.errors, samples, started, ended);
    free(r.latencies.data);
    PyMem_Free(r.payloads);
    PyMem_Free(r.lengths);
    return out;
fail:
    free(r.latencies.data);
    PyMem_Free(r.payloads);
    PyMem_Free(r.lengths);
    return NULL;
}

static int Client_init(Client *c, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"host", "port", "connections", NULL};
    const char *host;
    int port, count;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sii", names, &host, &port, &count)) return -1;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *found = NULL;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int failed = getaddrinfo(host, service, &hints, &found);
    if (failed || !found) {
        PyErr_Format(PyExc_OSError, "cannot resolve %s: %s", host, gai_strerror(failed));
        return -1;
    }
    memcpy(&c->address, found->ai_addr, found->ai_addrlen);
    c->address_len = found->ai_addrlen;
    freeaddrinfo(found);
    c->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    c->conns = calloc(count, sizeof *c->conns);
    if (c->epoll_fd < 0 || !c->conns) {
        PyErr_NoMemory();
        return -1;
    }
    c->count = count;
    for (int i = 0; i < count; i++) c->conns[i].fd = -1;
    for (int i = 0; i < count; i++)  /* a server that is not there is an error here */
        if (conn_open(c, &c->conns[i]) < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
    return 0;
}

static PyObject *Client_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    Client *c = (Client *)type->tp_alloc(type, 0);
    if (c) c->epoll_fd = -1;
    return (PyObject *)c;
}

static void Client_dealloc(Client *c) {
    for (int i = 0; c->conns && i < c->count; i++) {
        conn_close(&c->conns[i]);
        free(c->conns[i].in.data);
    }
    free(c->conns);
    if (c->epoll_fd >= 0) close(c->epoll_fd);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyMethodDef Client_methods[] = {
    {"run", (PyCFunction)Client_run, METH_VARARGS,
     "run(payloads, requests, duration, timeout, progress) -> (latencies, errors, samples, started, ended)"},
    {NULL},
};

static PyTypeObject ClientType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tfsconvert.serving._loadgen.Client",
    .tp_doc = "Client(host, port, connections): keep-alive HTTP/1.1 connections for closed-loop load.",
    .tp_basicsize = sizeof(Client),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Client_new,
    .tp_init = (initproc)Client_init,
    .tp_dealloc = (destructor)Client_dealloc,
    .tp_methods = Client_methods,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_loadgen", "The load generator's REST clients.", -1};

PyMODINIT_FUNC PyInit__loadgen(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddType(m, &ClientType) < 0) Py_CLEAR(m);  /* readies the type, named by tp_name */
    return m;
}
