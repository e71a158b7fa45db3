/* ceiling: a single-threaded C epoll WebSocket fan-out server, the reference
 * ("ceiling") that Hubbub's fan-out is measured against.
 *
 * It speaks just enough of Hubbub's protocol for bench/c/loadgen.c:
 *   - RFC 6455 handshake on any path (authentication headers are ignored);
 *   - on connect: {"type":"ready",...};
 *   - {"op":"send","nonce":N,"conversation":C,"text":T} -> an ack to the sender
 *     and {"type":"message","conversation":C,"seq":S,...,"text":T} to every
 *     open connection (one room holding everybody);
 *   - other ops (resume, ...) are ignored; ping -> pong; close -> close.
 *
 * Each message frame is built ONCE per event. All frames broadcast during one
 * epoll pass go out as ONE send() per socket at the end of the pass (coalesced),
 * straight from the shared pass buffer: a per-socket copy is only made for
 * what the kernel did not take. (write(), not send(), so that /proc/PID/io
 * counts the calls the same way as for Hubbub: SIGPIPE is ignored.) A socket whose backlog exceeds --max-out is
 * closed (slow consumer). JSON is scanned, not parsed: enough for the bench.
 *
 * usage: ceiling [--host 127.0.0.1] [--port 8765]
 */
#include "wsutil.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { ST_HTTP, ST_OPEN, ST_CLOSING, ST_DEAD };

struct conn {
    int fd;
    uint8_t state;
    uint8_t dirty;   /* in the dirty list this pass */
    uint8_t pollout; /* EPOLLOUT armed */
    uint32_t slot;   /* index in g_open while ST_OPEN */
    struct buf in;   /* unparsed input (freed when empty) */
    struct buf out;  /* bytes not yet taken by the kernel (freed when empty) */
};

static int g_ep;
static struct conn **g_open; /* members of the one room */
static size_t g_nopen, g_capopen;
static struct conn **g_dirty;
static size_t g_ndirty, g_capdirty;
static struct conn **g_dead;
static size_t g_ndead, g_capdead;
static struct buf g_bcast; /* frames broadcast during this pass */
static uint64_t g_seq, g_msgid;
static uint64_t g_now_ms;
static size_t g_max_out = 16u << 20;
static uint64_t g_slow_closed, g_msgs, g_conns_total;

static void push(struct conn ***arr, size_t *n, size_t *cap, struct conn *c)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        *arr = xrealloc(*arr, *cap * sizeof **arr);
    }
    (*arr)[(*n)++] = c;
}

static void mark_dirty(struct conn *c)
{
    if (!c->dirty) {
        c->dirty = 1;
        push(&g_dirty, &g_ndirty, &g_capdirty, c);
    }
}

static void kill_conn(struct conn *c)
{
    if (c->state == ST_DEAD)
        return;
    if (c->state == ST_OPEN) { /* leave the room */
        struct conn *last = g_open[--g_nopen];
        g_open[c->slot] = last;
        last->slot = c->slot;
    }
    c->state = ST_DEAD;
    close(c->fd); /* also removes it from the epoll set */
    push(&g_dead, &g_ndead, &g_capdead, c);
}

static void leave_room(struct conn *c)
{
    if (c->state == ST_OPEN) {
        struct conn *last = g_open[--g_nopen];
        g_open[c->slot] = last;
        last->slot = c->slot;
        c->state = ST_CLOSING;
    }
}

static void queue_frame(struct conn *c, int opcode, const char *p, size_t n)
{
    uint8_t h[14];
    size_t hl = ws_header(h, opcode, n, NULL);
    buf_append(&c->out, h, hl);
    buf_append(&c->out, p, n);
    mark_dirty(c);
}

static void queue_close(struct conn *c, unsigned code)
{
    char b[2] = {(char)(code >> 8), (char)code};
    queue_frame(c, 8, b, 2);
    leave_room(c);
}

/* Find "key" in a JSON object and return its raw value token (a string with
 * its quotes, or a bare number/literal). Enough for the load generator. */
static const char *json_token(const char *p, size_t n, const char *key, size_t *tlen)
{
    char pat[64];
    int pl = snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *end = p + n, *s = p;
    while ((s = memmem(s, (size_t)(end - s), pat, (size_t)pl))) {
        const char *v = s + pl;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        if (v >= end || *v != ':') {
            s += pl;
            continue;
        }
        v++;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        const char *e = v;
        if (e < end && *e == '"') {
            for (e++; e < end && *e != '"'; e++)
                if (*e == '\\')
                    e++;
            if (e >= end)
                return NULL;
            e++;
        } else {
            while (e < end && *e != ',' && *e != '}' && *e != ' ')
                e++;
        }
        *tlen = (size_t)(e - v);
        return *tlen ? v : NULL;
    }
    return NULL;
}

static void on_text(struct conn *c, const char *p, size_t n)
{
    size_t ol, nl, cl, tl;
    const char *op = json_token(p, n, "op", &ol);
    if (!op) {
        static const char e[] = "{\"type\":\"error\",\"code\":\"bad_json\"}";
        queue_frame(c, 1, e, sizeof e - 1);
        return;
    }
    if (ol == 8 && memcmp(op, "\"resume\"", 8) == 0) {
        static const char r[] = "{\"type\":\"resumed\"}";
        queue_frame(c, 1, r, sizeof r - 1);
        return;
    }
    if (ol != 6 || memcmp(op, "\"send\"", 6) != 0)
        return; /* typing, read, ...: nothing to do here */
    const char *nonce = json_token(p, n, "nonce", &nl);
    const char *conv = json_token(p, n, "conversation", &cl);
    const char *text = json_token(p, n, "text", &tl);
    if (!nonce || !conv || !text || nl > 200 || cl > 100) {
        static const char e[] = "{\"type\":\"error\",\"code\":\"bad_request\"}";
        queue_frame(c, 1, e, sizeof e - 1);
        return;
    }
    uint64_t seq = ++g_seq, id = ++g_msgid;
    g_msgs++;
    char ack[512];
    int al = snprintf(ack, sizeof ack,
                      "{\"type\":\"ack\",\"nonce\":%.*s,\"id\":\"%026llu\","
                      "\"conversation\":%.*s,\"seq\":%llu,\"ts\":%llu}",
                      (int)nl, nonce, (unsigned long long)id, (int)cl, conv,
                      (unsigned long long)seq, (unsigned long long)g_now_ms);
    queue_frame(c, 1, ack, (size_t)al);

    /* Build the message frame once, straight into the pass buffer; the same
     * fields in the same order as Hubbub's message frames. */
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "{\"type\":\"message\",\"id\":\"%026llu\",\"conversation\":%.*s,"
                      "\"seq\":%llu,\"ts\":%llu,\"sender\":\"bench\",\"sender_id\":1,"
                      "\"kind\":\"text\",\"text\":",
                      (unsigned long long)id, (int)cl, conv, (unsigned long long)seq,
                      (unsigned long long)g_now_ms);
    static const char tail[] = ",\"meta\":null}";
    size_t plen = (size_t)hl + tl + sizeof tail - 1;
    uint8_t fh[14];
    size_t fhl = ws_header(fh, 1, plen, NULL);
    buf_reserve(&g_bcast, fhl + plen);
    buf_append(&g_bcast, fh, fhl);
    buf_append(&g_bcast, head, (size_t)hl);
    buf_append(&g_bcast, text, tl);
    buf_append(&g_bcast, tail, sizeof tail - 1);
}

static void on_handshake(struct conn *c)
{
    const char *end = memmem(c->in.p, c->in.len, "\r\n\r\n", 4);
    if (!end) {
        if (c->in.len > 16384)
            kill_conn(c);
        return;
    }
    size_t hlen = (size_t)(end - c->in.p) + 4, kl;
    const char *key = http_header(c->in.p, hlen, "sec-websocket-key:", &kl);
    if (strncmp(c->in.p, "GET ", 4) != 0 || !key) {
        static const char r[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                "Connection: close\r\n\r\n";
        if (write(c->fd, r, sizeof r - 1) < 0) { /* best effort */
        }
        kill_conn(c);
        return;
    }
    char acc[32], resp[256];
    ws_accept(key, kl, acc);
    int rl = snprintf(resp, sizeof resp,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                      acc);
    buf_append(&c->out, resp, (size_t)rl);
    buf_consume(&c->in, hlen);
    c->state = ST_OPEN;
    c->slot = (uint32_t)g_nopen;
    push(&g_open, &g_nopen, &g_capopen, c);
    char ready[256];
    int n = snprintf(ready, sizeof ready,
                     "{\"type\":\"ready\",\"user\":{\"id\":\"bench\",\"name\":\"bench\"},"
                     "\"conversations\":[{\"id\":1,\"kind\":\"room\",\"name\":\"bench\","
                     "\"last_seq\":%llu,\"read_seq\":0,\"unread\":0}]}",
                     (unsigned long long)g_seq);
    queue_frame(c, 1, ready, (size_t)n);
}

static void on_frames(struct conn *c)
{
    size_t off = 0;
    while (c->state == ST_OPEN) {
        uint8_t *p = (uint8_t *)c->in.p + off;
        size_t avail = c->in.len - off;
        int fin, opcode;
        uint64_t plen;
        const uint8_t *mask;
        size_t hl = ws_parse(p, avail, &fin, &opcode, &plen, &mask);
        if (!hl)
            break;
        if (!mask) {
            queue_close(c, 1002);
            break;
        }
        if (plen > 65536) {
            queue_close(c, 1009);
            break;
        }
        if (avail < hl + plen)
            break;
        uint8_t *d = p + hl;
        for (uint64_t i = 0; i < plen; i++)
            d[i] ^= mask[i & 3];
        if (!fin || opcode == 0) {
            queue_close(c, 1003); /* fragmentation: not needed by the bench */
            break;
        }
        if (opcode == 1)
            on_text(c, (char *)d, plen);
        else if (opcode == 8) {
            queue_frame(c, 8, (char *)d, plen >= 2 ? 2 : 0);
            leave_room(c);
        } else if (opcode == 9)
            queue_frame(c, 10, (char *)d, plen);
        else if (opcode != 10) {
            queue_close(c, 1003);
            break;
        }
        off += hl + plen;
    }
    buf_consume(&c->in, off);
}

static void on_readable(struct conn *c)
{
    buf_reserve(&c->in, 4096);
    ssize_t n = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        kill_conn(c);
        return;
    }
    c->in.len += (size_t)n;
    if (c->state == ST_CLOSING) { /* close sent: ignore what else comes */
        buf_free(&c->in);
        return;
    }
    if (c->state == ST_HTTP)
        on_handshake(c);
    if (c->state == ST_OPEN)
        on_frames(c);
    if (c->state != ST_DEAD && c->in.len == 0)
        buf_free(&c->in); /* keep idle connections small */
}

/* Write c->out; arm or disarm EPOLLOUT. */
static void flush_out(struct conn *c)
{
    while (c->out.len) {
        ssize_t n = write(c->fd, c->out.p, c->out.len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN) {
                kill_conn(c);
                return;
            }
            break;
        }
        buf_consume(&c->out, (size_t)n);
    }
    if (c->out.len > g_max_out) {
        g_slow_closed++;
        kill_conn(c);
        return;
    }
    int want = c->out.len > 0;
    if (want != c->pollout) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
        epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->pollout = (uint8_t)want;
    }
    if (!c->out.len) {
        buf_free(&c->out);
        if (c->state == ST_CLOSING)
            kill_conn(c);
    }
}

/* End of pass: one send() per member with everything broadcast this pass. */
static void broadcast(void)
{
    if (!g_bcast.len)
        return;
    for (size_t i = 0; i < g_nopen; i++) {
        struct conn *c = g_open[i];
        if (c->out.len) { /* something private queued or a backlog: keep order */
            buf_append(&c->out, g_bcast.p, g_bcast.len);
            mark_dirty(c);
            continue;
        }
        ssize_t n = write(c->fd, g_bcast.p, g_bcast.len);
        if (n == (ssize_t)g_bcast.len)
            continue;
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                mark_dirty(c); /* flush_out will see the error */
                continue;
            }
            n = 0;
        }
        buf_append(&c->out, g_bcast.p + n, g_bcast.len - (size_t)n);
        mark_dirty(c);
    }
    g_bcast.len = 0;
}

static void accept_all(int lfd)
{
    for (int i = 0; i < 512; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                fprintf(stderr, "ceiling: accept: %s\n", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (!c)
            die("out of memory");
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev) != 0)
            die("epoll_ctl: %s", strerror(errno));
        g_conns_total++;
    }
}

static volatile sig_atomic_t g_stop;
static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 8765;
    static const struct option opts[] = {{"host", required_argument, 0, 'h'},
                                         {"port", required_argument, 0, 'p'},
                                         {"max-out", required_argument, 0, 'm'},
                                         {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "h:p:m:", opts, NULL)) != -1) {
        switch (o) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'm': g_max_out = (size_t)strtoull(optarg, NULL, 10); break;
        default: die("usage: ceiling [--host H] [--port P] [--max-out BYTES]");
        }
    }
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        die("ceiling: bad host %s", host);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0)
        die("ceiling: bind %s:%d: %s", host, port, strerror(errno));
    if (listen(lfd, 4096) != 0)
        die("listen: %s", strerror(errno));
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    if (g_ep < 0)
        die("epoll_create1: %s", strerror(errno));
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(g_ep, EPOLL_CTL_ADD, lfd, &lev);
    fprintf(stderr, "ceiling: listening on %s:%d\n", host, port);

    static struct epoll_event evs[4096];
    while (!g_stop) {
        int n = epoll_wait(g_ep, evs, 4096, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        g_now_ms = wall_ms();
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                accept_all(lfd);
                continue;
            }
            if (c->state == ST_DEAD)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(c);
            if (c->state != ST_DEAD && (evs[i].events & EPOLLOUT))
                mark_dirty(c);
        }
        broadcast();
        for (size_t i = 0; i < g_ndirty; i++) {
            struct conn *c = g_dirty[i];
            c->dirty = 0;
            if (c->state != ST_DEAD)
                flush_out(c);
        }
        g_ndirty = 0;
        for (size_t i = 0; i < g_ndead; i++) {
            buf_free(&g_dead[i]->in);
            buf_free(&g_dead[i]->out);
            free(g_dead[i]);
        }
        g_ndead = 0;
    }
    fprintf(stderr, "ceiling: %llu connections, %llu messages, %llu closed as slow\n",
            (unsigned long long)g_conns_total, (unsigned long long)g_msgs,
            (unsigned long long)g_slow_closed);
    return 0;
}
