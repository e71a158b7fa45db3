/* loadgen: a single-threaded C epoll WebSocket load generator for Hubbub's
 * fan-out benchmark (bench/run.py drives it; it also runs alone).
 *
 * Opens --conns N WebSocket connections (optionally each with a header line
 * from --auth-file: "Authorization: Bearer T" or "Cookie: hubbub_session=S"),
 * waits for each one's ready frame and answers {"op":"resume","positions":{}}.
 * The first --senders K connections then send
 *   {"op":"send","nonce":"s-i","conversation":C,"text":"T<ns> S<s> I<i> xxx"}
 * either at --rate messages/s in total (open loop) or, with --rate 0, as fast
 * as the server takes them with at most --window messages in flight per
 * sender (a message is in flight until the sender sees it delivered back, or
 * acked with --window-on ack). The text carries the CLOCK_MONOTONIC send time;
 * every connection parses message frames, counts deliveries and records the
 * latency. Per receiver and sender the counter I must grow by one: a jump is
 * a gap, a repeat is a duplicate.
 *
 * After --warmup s it measures for --duration s, stops sending, drains until
 * every live connection has every message sent (at most --drain s) and prints
 * one JSON object on stdout: "missing" counts what did not arrive by then.
 *
 * Reconnect storm (--resume-from S --expect-seq E, with --senders 0): every
 * connection resumes with {"op":"resume","positions":{"C":S}}, must then see
 * the seqs S+1..E of conversation C each exactly once and in order (a jump is
 * a gap, a repeat or step back a duplicate), and the run ends when every
 * connection has reached E (at most --connect-timeout + --drain s after the
 * start); "storm" in the JSON says how long that took.
 */
#include "wsutil.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { C_IDLE, C_CONNECTING, C_HTTP, C_WAIT_READY, C_RESUMING, C_LIVE, C_DEAD };

struct lconn {
    int fd;
    uint8_t state;
    uint8_t dirty, pollout;
    int sender;         /* sender index or -1 */
    uint32_t inflight;  /* sender: sent, not yet seen back */
    uint64_t sent;      /* sender: messages sent */
    uint32_t *last;     /* per sender: last counter seen (receivers) */
    int64_t seq;        /* storm: last seq of the conversation seen */
    char key[25];       /* Sec-WebSocket-Key sent */
    struct buf part;    /* an incomplete frame carried to the next read */
    struct buf out;
};

/* ---- options ---- */
static const char *o_host = "127.0.0.1", *o_path = "/api/ws", *o_auth_file, *o_origin;
static const char *o_conv = "1";
static int o_port = 8765, o_conns = 100, o_senders = 1, o_window = 16, o_window_ack;
static int o_src_addrs = 1, o_connect_conc = 256, o_text_size = 64, o_server_pid;
static double o_rate, o_warmup = 1.0, o_duration = 5.0, o_drain = 1.0, o_settle = 0.3;
static double o_connect_timeout = 60.0;
static int o_verbose; /* print this many received frames to stderr */
static long long o_resume_from = -1, o_expect_seq = -1; /* storm mode when >= 0 */

/* ---- state ---- */
static int g_ep;
static struct lconn *g_c;
static char **g_auth;
static size_t g_nauth;
static struct lconn **g_dirty;
static size_t g_ndirty;
static uint8_t *g_rbuf;
static size_t g_rcap = 1 << 18;
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint64_t g_now;
static char g_run_id[24]; /* nonces are unique per run: the server dedupes repeated ones */
static int g_next_connect, g_connecting, g_live;
static int g_measuring, g_sending;
static uint64_t g_t_measure0, g_t_measure1;

/* ---- counters ---- */
static uint64_t n_deliv, n_deliv_window, n_sent, n_sent_window, n_acks, n_err_frames;
static uint64_t n_gaps, n_dups, n_connect_err, n_handshake_err, n_closed, n_proto_err;
static uint64_t n_window_stalls, n_other_frames;
static char g_first_error[256];
static uint64_t n_caught, n_seq_gaps, n_seq_dups, g_t_caught;

/* ---- latency histogram: 1 us resolution below 128 us, then 64 sub-buckets per power of 2 */
#define H_BUCKETS (128 + 40 * 64)
static uint64_t g_hist[H_BUCKETS], g_hist_n;
static uint64_t g_lat_max;

static int h_index(uint64_t us)
{
    if (us < 128)
        return (int)us;
    int e = 63 - __builtin_clzll(us); /* >= 7 */
    int idx = 128 + (e - 7) * 64 + (int)((us >> (e - 6)) - 64);
    return idx < H_BUCKETS ? idx : H_BUCKETS - 1;
}

static double h_value(int idx) /* midpoint of a bucket, in us */
{
    if (idx < 128)
        return idx + 0.5;
    int e = (idx - 128) / 64 + 7, sub = (idx - 128) % 64;
    double lo = (double)((uint64_t)(64 + sub) << (e - 6));
    return lo + (double)(1ull << (e - 6)) / 2;
}

static double h_quantile(double q)
{
    if (!g_hist_n)
        return 0;
    uint64_t want = (uint64_t)ceil(q * (double)g_hist_n), acc = 0;
    for (int i = 0; i < H_BUCKETS; i++) {
        acc += g_hist[i];
        if (acc >= want && acc)
            return h_value(i);
    }
    return h_value(H_BUCKETS - 1);
}

static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static void note_error(const char *fmt, ...)
{
    if (g_first_error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_first_error, sizeof g_first_error, fmt, ap);
    va_end(ap);
}

static void mark_dirty(struct lconn *c)
{
    if (!c->dirty) {
        c->dirty = 1;
        g_dirty[g_ndirty++] = c;
    }
}

static void kill_conn(struct lconn *c, uint64_t *counter)
{
    if (c->state == C_DEAD)
        return;
    if (c->state >= C_CONNECTING && c->state <= C_RESUMING)
        g_connecting--;
    if (c->state == C_LIVE)
        g_live--;
    if (counter)
        (*counter)++;
    c->state = C_DEAD;
    close(c->fd);
    c->fd = -1;
    buf_free(&c->part);
    buf_free(&c->out);
}

static void queue_text(struct lconn *c, const char *p, size_t n)
{
    uint8_t h[14], mask[4];
    uint32_t m = (uint32_t)rnd();
    memcpy(mask, &m, 4);
    size_t hl = ws_header(h, 1, n, mask);
    buf_reserve(&c->out, hl + n);
    buf_append(&c->out, h, hl);
    char *d = c->out.p + c->out.len;
    for (size_t i = 0; i < n; i++)
        d[i] = (char)(p[i] ^ mask[i & 3]);
    c->out.len += n;
    mark_dirty(c);
}

static void queue_frame(struct lconn *c, int opcode, const uint8_t *p, size_t n)
{
    uint8_t h[14], mask[4] = {1, 2, 3, 4};
    size_t hl = ws_header(h, opcode, n, mask);
    buf_append(&c->out, h, hl);
    for (size_t i = 0; i < n; i++)
        buf_append(&c->out, &(uint8_t){(uint8_t)(p[i] ^ mask[i & 3])}, 1);
    mark_dirty(c);
}

static void send_message(struct lconn *c)
{
    static char pad[4096];
    if (!pad[0])
        memset(pad, 'x', sizeof pad - 1);
    char msg[4608];
    uint64_t i = ++c->sent;
    char text[128];
    int tl = snprintf(text, sizeof text, "T%016llx S%d I%llu ", (unsigned long long)now_ns(),
                      c->sender, (unsigned long long)i);
    int padn = o_text_size > tl ? o_text_size - tl : 0;
    if (padn > 4000)
        padn = 4000;
    int n = snprintf(msg, sizeof msg,
                     "{\"op\":\"send\",\"nonce\":\"%s-%d-%llu\",\"conversation\":%s,"
                     "\"text\":\"%s%.*s\"}",
                     g_run_id, c->sender, (unsigned long long)i, o_conv, text, padn, pad);
    queue_text(c, msg, (size_t)n);
    c->inflight++;
    n_sent++;
    if (g_measuring)
        n_sent_window++;
}

/* Parse the hex number after "T" and the sender and counter of a bench text. */
static int parse_bench_text(const char *p, const char *end, uint64_t *ts, int *s, uint64_t *i)
{
    if (end - p < 20 || *p != 'T')
        return 0;
    uint64_t v = 0;
    p++;
    for (int k = 0; k < 16; k++, p++) {
        int ch = *p, d;
        if (ch >= '0' && ch <= '9')
            d = ch - '0';
        else if (ch >= 'a' && ch <= 'f')
            d = ch - 'a' + 10;
        else
            return 0;
        v = (v << 4) | (uint64_t)d;
    }
    *ts = v;
    if (p + 2 >= end || p[0] != ' ' || p[1] != 'S')
        return 0;
    p += 2;
    int sv = 0;
    while (p < end && *p >= '0' && *p <= '9')
        sv = sv * 10 + (*p++ - '0');
    if (p + 2 >= end || p[0] != ' ' || p[1] != 'I')
        return 0;
    p += 2;
    uint64_t iv = 0;
    while (p < end && *p >= '0' && *p <= '9')
        iv = iv * 10 + (uint64_t)(*p++ - '0');
    *s = sv;
    *i = iv;
    return 1;
}

/* Where pat (a quoted key) occurs in p[0..n), or NULL. glibc's memmem sets up
 * a table per call, which cost most of the load generator's time; frames are
 * short and keys start with a quote, so memchr on the quote is enough. */
static const char *find_pat(const char *p, size_t n, const char *pat, size_t pl)
{
    const char *end = p + n, *s = p;
    while (s + pl <= end && (s = memchr(s, '"', (size_t)(end - s - (ptrdiff_t)pl + 1)))) {
        if (memcmp(s, pat, pl) == 0)
            return s;
        s++;
    }
    return NULL;
}

/* The value after a key at s, if a colon follows it. */
static const char *key_value(const char *s, const char *end, size_t pl)
{
    const char *v = s + pl;
    while (v < end && *v == ' ')
        v++;
    if (v >= end || *v != ':')
        return NULL;
    for (v++; v < end && *v == ' ';)
        v++;
    return v;
}

/* The value of "key" (pat, with its quotes) in a JSON object. *hint: where the
 * key was last time, tried first (frames of one server look alike). */
static const char *find_key(const char *p, size_t n, const char *pat, size_t pl, size_t *hint)
{
    const char *end = p + n, *v;
    if (*hint + pl <= n && memcmp(p + *hint, pat, pl) == 0 && (v = key_value(p + *hint, end, pl)))
        return v;
    for (const char *s = p; (s = find_pat(s, (size_t)(end - s), pat, pl)); s += pl) {
        if ((v = key_value(s, end, pl))) {
            *hint = (size_t)(s - p);
            return v;
        }
    }
    return NULL;
}

static void on_text(struct lconn *c, const char *p, size_t n)
{
    const char *end = p + n;
    if (o_verbose > 0) {
        o_verbose--;
        fprintf(stderr, "loadgen: conn %d got %.*s\n", (int)(c - g_c), (int)(n > 300 ? 300 : n), p);
    }
    static size_t type_hint, text_hint;
    const char *t = find_key(p, n, "\"type\"", 6, &type_hint);
    if (!t || t >= end || *t != '"') {
        n_other_frames++;
        return;
    }
    t++;
    if (end - t > 8 && memcmp(t, "message\"", 8) == 0 && o_resume_from >= 0) {
        static size_t seq_hint;
        const char *q = find_key(p, n, "\"seq\"", 5, &seq_hint);
        if (!q) {
            n_other_frames++;
            return;
        }
        long long seq = strtoll(q, NULL, 10);
        n_deliv++;
        if (seq <= c->seq)
            n_seq_dups++;
        else {
            if (seq != c->seq + 1)
                n_seq_gaps++;
            c->seq = seq;
            if (seq == o_expect_seq) {
                n_caught++;
                g_t_caught = g_now;
            }
        }
        return;
    } else if (end - t > 8 && memcmp(t, "message\"", 8) == 0) {
        const char *x = find_key(p, n, "\"text\"", 6, &text_hint);
        uint64_t ts, i;
        int s;
        if (!x || x >= end || *x != '"' || !parse_bench_text(x + 1, end, &ts, &s, &i)) {
            n_other_frames++;
            return;
        }
        n_deliv++;
        if (g_measuring) {
            n_deliv_window++;
            uint64_t us = g_now > ts ? (g_now - ts) / 1000 : 0;
            g_hist[h_index(us)]++;
            g_hist_n++;
            if (us > g_lat_max)
                g_lat_max = us;
        }
        if (s >= 0 && s < o_senders && c->last) {
            if (i <= c->last[s])
                n_dups++;
            else if (i != c->last[s] + 1)
                n_gaps++;
            if (i > c->last[s])
                c->last[s] = (uint32_t)i;
        }
        if (!o_window_ack && c->sender == s && c->inflight)
            c->inflight--;
    } else if (end - t > 4 && memcmp(t, "ack\"", 4) == 0) {
        n_acks++;
        if (o_window_ack && c->inflight)
            c->inflight--;
    } else if (end - t > 6 && memcmp(t, "ready\"", 6) == 0) {
        if (c->state == C_WAIT_READY) {
            static const char r[] = "{\"op\":\"resume\",\"positions\":{}}";
            if (o_resume_from >= 0) {
                char m[128];
                int ml = snprintf(m, sizeof m, "{\"op\":\"resume\",\"positions\":{\"%s\":%lld}}",
                                  o_conv, o_resume_from);
                queue_text(c, m, (size_t)ml);
            } else
                queue_text(c, r, sizeof r - 1);
            c->state = C_RESUMING;
        }
    } else if (end - t > 8 && memcmp(t, "resumed\"", 8) == 0) {
        if (c->state == C_RESUMING) {
            g_connecting--;
            c->state = C_LIVE;
            g_live++;
        }
    } else if (end - t > 6 && memcmp(t, "error\"", 6) == 0) {
        n_err_frames++;
        note_error("error frame: %.*s", (int)(n > 200 ? 200 : n), p);
    } else {
        n_other_frames++;
    }
}

/* Parse complete frames from buf[0..len); return bytes consumed. */
static size_t on_frames(struct lconn *c, uint8_t *buf, size_t len)
{
    size_t off = 0;
    while (c->state != C_DEAD) {
        int fin, opcode;
        uint64_t plen;
        const uint8_t *mask;
        size_t hl = ws_parse(buf + off, len - off, &fin, &opcode, &plen, &mask);
        if (!hl || len - off < hl + plen) {
            if (hl && hl + plen > g_rcap) { /* a frame bigger than the read buffer */
                if (plen > (64u << 20)) {
                    note_error("frame of %llu bytes", (unsigned long long)plen);
                    kill_conn(c, &n_proto_err);
                }
                while (g_rcap < hl + plen + 4096)
                    g_rcap *= 2;
                g_rbuf = xrealloc(g_rbuf, g_rcap);
            }
            break;
        }
        uint8_t *d = buf + off + hl;
        if (mask || !fin) {
            note_error("%s frame from server", mask ? "masked" : "fragmented");
            kill_conn(c, &n_proto_err);
            break;
        }
        if (opcode == 1)
            on_text(c, (char *)d, plen);
        else if (opcode == 8) {
            note_error("server closed with code %d: %.*s", plen >= 2 ? d[0] << 8 | d[1] : 0,
                       (int)(plen > 2 ? plen - 2 : 0), d + 2);
            kill_conn(c, &n_closed);
            break;
        } else if (opcode == 9)
            queue_frame(c, 10, d, plen);
        off += hl + plen;
    }
    return off;
}

static void on_http(struct lconn *c, uint8_t *buf, size_t len, size_t *consumed)
{
    *consumed = 0;
    char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end) {
        if (len > 16384) {
            note_error("HTTP response head too long");
            kill_conn(c, &n_handshake_err);
        }
        return;
    }
    size_t hlen = (size_t)(end - (char *)buf) + 4;
    if (len < 12 || memcmp(buf + 9, "101", 3) != 0) {
        char *eol = memmem(buf, len, "\r\n", 2);
        note_error("handshake refused: %.*s", (int)(eol ? eol - (char *)buf : 0), buf);
        kill_conn(c, &n_handshake_err);
        return;
    }
    char want[32];
    size_t al = 0;
    const char *acc = http_header((char *)buf, hlen, "sec-websocket-accept:", &al);
    ws_accept(c->key, strlen(c->key), want);
    if (!acc || al != strlen(want) || memcmp(acc, want, al) != 0) {
        note_error("handshake: bad Sec-WebSocket-Accept");
        kill_conn(c, &n_handshake_err);
        return;
    }
    c->state = C_WAIT_READY;
    *consumed = hlen;
}

static void on_readable(struct lconn *c)
{
    size_t keep = c->part.len;
    if (keep)
        memcpy(g_rbuf, c->part.p, keep);
    ssize_t n = read(c->fd, g_rbuf + keep, g_rcap - keep);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        note_error("connection lost: %s", n ? strerror(errno) : "EOF");
        kill_conn(c, &n_closed);
        return;
    }
    g_now = now_ns();
    size_t len = keep + (size_t)n, off = 0;
    if (c->state == C_HTTP) {
        on_http(c, g_rbuf, len, &off);
        if (c->state == C_HTTP || c->state == C_DEAD) {
            if (c->state == C_HTTP) {
                c->part.len = 0;
                buf_append(&c->part, g_rbuf, len);
            }
            return;
        }
    }
    off += on_frames(c, g_rbuf + off, len - off);
    if (c->state == C_DEAD)
        return;
    c->part.len = 0;
    if (off < len)
        buf_append(&c->part, g_rbuf + off, len - off);
    else if (c->part.cap > 65536)
        buf_free(&c->part);
}

static void flush_out(struct lconn *c)
{
    while (c->out.len) {
        ssize_t n = send(c->fd, c->out.p, c->out.len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN) {
                note_error("send: %s", strerror(errno));
                kill_conn(c, &n_closed);
                return;
            }
            break;
        }
        buf_consume(&c->out, (size_t)n);
    }
    int want = c->out.len > 0;
    if (want != c->pollout) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
        epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->pollout = (uint8_t)want;
    }
}

static void start_connect(struct lconn *c, int i)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("loadgen: socket: %s (fd limit?)", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (o_src_addrs > 1) { /* spread over 127.0.0.1..n to widen the port space */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(i % o_src_addrs));
        if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0)
            die("loadgen: bind source address: %s", strerror(errno));
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o_port)};
    inet_pton(AF_INET, o_host, &a.sin_addr);
    c->fd = fd;
    c->state = C_CONNECTING;
    g_connecting++;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        note_error("connect: %s", strerror(errno));
        kill_conn(c, &n_connect_err);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    c->pollout = 1;
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        die("epoll_ctl: %s", strerror(errno));
}

static void on_connected(struct lconn *c, int i)
{
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        note_error("connect: %s", strerror(err));
        kill_conn(c, &n_connect_err);
        return;
    }
    uint8_t key[16];
    for (int k = 0; k < 16; k++)
        key[k] = (uint8_t)rnd();
    char k64[32], req[2048];
    base64(key, 16, k64);
    memcpy(c->key, k64, 25);
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s%s%s%s%s\r\n",
                     o_path, o_host, o_port, k64, o_origin ? "Origin: " : "",
                     o_origin ? o_origin : "", o_origin ? "\r\n" : "",
                     g_nauth ? g_auth[i % g_nauth] : "", g_nauth ? "\r\n" : "");
    if (n >= (int)sizeof req)
        die("loadgen: request too long");
    buf_append(&c->out, req, (size_t)n);
    c->state = C_HTTP;
    mark_dirty(c);
}

static void load_auth(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("loadgen: %s: %s", path, strerror(errno));
    char line[1024];
    size_t cap = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0])
            continue;
        if (g_nauth == cap) {
            cap = cap ? cap * 2 : 64;
            g_auth = xrealloc(g_auth, cap * sizeof *g_auth);
        }
        g_auth[g_nauth++] = strdup(line);
    }
    fclose(f);
    if (!g_nauth)
        die("loadgen: %s holds no header lines", path);
}

static double cpu_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* Read and write syscalls of a process so far (/proc/PID/io: syscr, syscw). */
static int io_pid(int pid, unsigned long long *r, unsigned long long *w)
{
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/%d/io", pid);
    FILE *f = pid > 0 ? fopen(path, "r") : NULL;
    if (!f)
        return 0;
    int got = 0;
    while (fgets(line, sizeof line, f)) {
        got += sscanf(line, "syscr: %llu", r) == 1;
        got += sscanf(line, "syscw: %llu", w) == 1;
    }
    fclose(f);
    return got == 2;
}

static double cpu_pid(int pid)
{
    if (pid <= 0)
        return -1;
    char path[64], s[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(s, 1, sizeof s - 1, f);
    fclose(f);
    s[n] = 0;
    char *p = strrchr(s, ')');
    if (!p)
        return -1;
    unsigned long long ut, st;
    /* fields after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Per-CPU busy and softirq jiffies from /proc/stat (up to 64 CPUs). */
struct cpustat {
    int n;
    unsigned long long busy[64], total[64], soft[64];
};

static void read_cpustat(struct cpustat *cs)
{
    cs->n = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f) && cs->n < 64) {
        unsigned long long v[10] = {0};
        int cpu;
        if (strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9')
            continue;
        if (sscanf(line + 3, "%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1],
                   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 9)
            continue;
        unsigned long long tot = 0;
        for (int i = 0; i < 8; i++)
            tot += v[i];
        cs->total[cs->n] = tot;
        cs->busy[cs->n] = tot - v[3] - v[4];
        cs->soft[cs->n] = v[6];
        cs->n++;
    }
    fclose(f);
}

static void usage(void)
{
    die("usage: loadgen [--host H] [--port P] [--path /api/ws] [--conns N] [--senders K]\n"
        "  [--rate MSGS_PER_S (0 = saturate)] [--window W] [--window-on echo|ack]\n"
        "  [--duration S] [--warmup S] [--drain S] [--settle S] [--conversation JSON]\n"
        "  [--auth-file F] [--origin O] [--text-size B] [--src-addrs N]\n"
        "  [--connect-concurrency C] [--connect-timeout S] [--server-pid PID] [--verbose FRAMES]\n"
        "  [--resume-from SEQ --expect-seq SEQ (reconnect storm)]");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"host", 1, 0, 'h'},     {"port", 1, 0, 'p'},         {"path", 1, 0, 'P'},
        {"conns", 1, 0, 'n'},    {"senders", 1, 0, 'k'},      {"rate", 1, 0, 'r'},
        {"window", 1, 0, 'w'},   {"window-on", 1, 0, 'W'},    {"duration", 1, 0, 'd'},
        {"warmup", 1, 0, 'u'},   {"drain", 1, 0, 'D'},        {"settle", 1, 0, 'S'},
        {"conversation", 1, 0, 'c'}, {"auth-file", 1, 0, 'a'}, {"origin", 1, 0, 'o'},
        {"text-size", 1, 0, 't'}, {"src-addrs", 1, 0, 's'},   {"connect-concurrency", 1, 0, 'C'},
        {"connect-timeout", 1, 0, 'T'}, {"server-pid", 1, 0, 'x'}, {"verbose", 1, 0, 'v'},
        {"resume-from", 1, 0, 'R'}, {"expect-seq", 1, 0, 'E'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'h': o_host = optarg; break;
        case 'p': o_port = atoi(optarg); break;
        case 'P': o_path = optarg; break;
        case 'n': o_conns = atoi(optarg); break;
        case 'k': o_senders = atoi(optarg); break;
        case 'r': o_rate = atof(optarg); break;
        case 'w': o_window = atoi(optarg); break;
        case 'W': o_window_ack = strcmp(optarg, "ack") == 0; break;
        case 'd': o_duration = atof(optarg); break;
        case 'u': o_warmup = atof(optarg); break;
        case 'D': o_drain = atof(optarg); break;
        case 'S': o_settle = atof(optarg); break;
        case 'c': o_conv = optarg; break;
        case 'a': o_auth_file = optarg; break;
        case 'o': o_origin = optarg; break;
        case 't': o_text_size = atoi(optarg); break;
        case 's': o_src_addrs = atoi(optarg); break;
        case 'C': o_connect_conc = atoi(optarg); break;
        case 'T': o_connect_timeout = atof(optarg); break;
        case 'x': o_server_pid = atoi(optarg); break;
        case 'v': o_verbose = atoi(optarg); break;
        case 'R': o_resume_from = atoll(optarg); break;
        case 'E': o_expect_seq = atoll(optarg); break;
        default: usage();
        }
    }
    if (o_conns < 1 || o_senders < 0 || o_senders > o_conns || o_window < 1 ||
        o_connect_conc < 1 || o_src_addrs < 1 || o_src_addrs > 250)
        usage();
    if (o_resume_from >= 0 && (o_senders || o_expect_seq <= o_resume_from))
        die("loadgen: --resume-from needs --senders 0 and --expect-seq above it");
    struct in_addr tmp;
    if (inet_pton(AF_INET, o_host, &tmp) != 1)
        die("loadgen: --host must be an IPv4 address");
    rlim_t lim = raise_nofile();
    if (lim < (rlim_t)o_conns + 64)
        die("loadgen: fd limit %llu is too low for %d connections", (unsigned long long)lim,
            o_conns);
    if (o_auth_file)
        load_auth(o_auth_file);
    signal(SIGPIPE, SIG_IGN);

    g_c = calloc((size_t)o_conns, sizeof *g_c);
    g_dirty = calloc((size_t)o_conns, sizeof *g_dirty);
    g_rbuf = malloc(g_rcap);
    if (!g_c || !g_dirty || !g_rbuf)
        die("out of memory");
    for (int i = 0; i < o_conns; i++) {
        g_c[i].fd = -1;
        g_c[i].sender = i < o_senders ? i : -1;
        g_c[i].seq = o_resume_from;
        if (o_senders)
            g_c[i].last = calloc((size_t)o_senders, sizeof(uint32_t));
    }
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    if (g_ep < 0)
        die("epoll_create1: %s", strerror(errno));
    g_rng ^= now_ns() ^ ((uint64_t)getpid() << 32);
    snprintf(g_run_id, sizeof g_run_id, "%llx", (unsigned long long)(rnd() & 0xffffffffffull));

    static struct epoll_event evs[4096];
    uint64_t t0 = now_ns(), t_ready = 0, t_send0 = 0, t_end = 0, t_stop = 0, t_drained = 0;
    double cpu0 = 0, cpu1 = 0, scpu0 = 0, scpu1 = 0;
    static struct cpustat cs0, cs1;
    unsigned long long sr0 = 0, sw0 = 0, sr1 = 0, sw1 = 0;
    int io_ok = 0;
    int dead_at_start = 0;
    const char *outcome = "ok";
    for (;;) {
        uint64_t now = g_now = now_ns();
        /* phase changes */
        if (!t_ready) {
            while (g_next_connect < o_conns && g_connecting < o_connect_conc)
                start_connect(&g_c[g_next_connect], g_next_connect), g_next_connect++;
            int done = g_next_connect == o_conns && g_connecting == 0;
            if (done || (double)(now - t0) / 1e9 > o_connect_timeout) {
                t_ready = now;
                if (g_live < o_conns) {
                    outcome = done ? "some connections failed" : "connect timeout";
                    if (g_live == 0)
                        break;
                }
                for (int i = 0; i < o_conns; i++)
                    dead_at_start += g_c[i].state != C_LIVE;
                fprintf(stderr, "loadgen: %d of %d connections live after %.3f s\n", g_live,
                        o_conns, (double)(now - t0) / 1e9);
                t_send0 = now + (uint64_t)(o_settle * 1e9);
                g_t_measure0 = t_send0 + (uint64_t)(o_warmup * 1e9);
                g_t_measure1 = g_t_measure0 + (uint64_t)(o_duration * 1e9);
                t_stop = g_t_measure1 + (uint64_t)(o_drain * 1e9);
            }
        }
        if (o_resume_from >= 0) {
            if (n_caught >= (uint64_t)o_conns ||
                (double)(now - t0) / 1e9 > o_connect_timeout + o_drain)
                break;
        } else if (t_ready) {
            if (!g_sending && !t_end && now >= t_send0)
                g_sending = 1;
            if (!g_measuring && !t_end && now >= g_t_measure0) {
                g_measuring = 1;
                cpu0 = cpu_self();
                scpu0 = cpu_pid(o_server_pid);
                read_cpustat(&cs0);
                io_ok = io_pid(o_server_pid, &sr0, &sw0);
            }
            if (g_measuring && now >= g_t_measure1) {
                g_measuring = 0;
                g_sending = 0;
                t_end = now;
                cpu1 = cpu_self();
                scpu1 = cpu_pid(o_server_pid);
                read_cpustat(&cs1);
                io_ok = io_ok && io_pid(o_server_pid, &sr1, &sw1);
            }
            if (now >= t_stop)
                break;
            /* Draining: stop early once every live connection has every message. */
            if (t_end && n_deliv >= n_sent * (uint64_t)g_live) {
                t_drained = now;
                break;
            }
        }
        /* sending */
        int timeout_ms = 100;
        if (g_sending) {
            for (int s = 0; s < o_senders; s++) {
                struct lconn *c = &g_c[s];
                if (c->state != C_LIVE)
                    continue;
                if (o_rate <= 0) {
                    while (c->inflight < (uint32_t)o_window)
                        send_message(c);
                } else {
                    /* sender s sends its j-th message at t_send0 + (j*K + s)/rate */
                    double el = (double)(now - t_send0) / 1e9;
                    uint64_t due = (uint64_t)floor((el * o_rate - s) / o_senders) + 1;
                    if (el * o_rate < s)
                        due = 0;
                    while (c->sent < due) {
                        if (c->inflight >= (uint32_t)o_window) {
                            n_window_stalls++;
                            c->sent = due; /* skip, and count it */
                            break;
                        }
                        send_message(c);
                    }
                }
            }
            timeout_ms = o_rate > 0 ? 1 : 10;
        } else if (!t_ready) {
            timeout_ms = 10;
        }
        for (size_t i = 0; i < g_ndirty; i++) {
            struct lconn *c = g_dirty[i];
            c->dirty = 0;
            if (c->state != C_DEAD)
                flush_out(c);
        }
        g_ndirty = 0;

        int n = epoll_wait(g_ep, evs, 4096, timeout_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int e = 0; e < n; e++) {
            struct lconn *c = evs[e].data.ptr;
            if (c->state == C_DEAD)
                continue;
            if (c->state == C_CONNECTING) {
                on_connected(c, (int)(c - g_c));
                continue;
            }
            if (evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(c);
            if (c->state != C_DEAD && (evs[e].events & EPOLLOUT))
                mark_dirty(c);
        }
    }

    double win = t_end && g_t_measure0 ? (double)(t_end - g_t_measure0) / 1e9 : 0;
    uint64_t expected = n_sent * (uint64_t)(o_conns - dead_at_start);
    double cpu = win > 0 ? (cpu1 - cpu0) / win : 0;
    double scpu = win > 0 && scpu0 >= 0 && scpu1 >= 0 ? (scpu1 - scpu0) / win : -1;
    printf("{\"outcome\":\"%s\",\"conns\":%d,\"live_at_start\":%d,\"senders\":%d,"
           "\"rate\":%.3f,\"window\":%d,\"window_on\":\"%s\",\"text_size\":%d,"
           "\"connect_s\":%.3f,\"duration_s\":%.3f,\"drain_s\":%.3f,"
           "\"sent\":%llu,\"sent_in_window\":%llu,\"sends_per_s\":%.1f,"
           "\"deliveries\":%llu,\"deliveries_in_window\":%llu,\"deliveries_per_s\":%.1f,"
           "\"expected_deliveries\":%llu,\"missing\":%lld,\"gaps\":%llu,\"duplicates\":%llu,"
           "\"acks\":%llu,\"latency_us\":{\"count\":%llu,\"p50\":%.1f,\"p90\":%.1f,"
           "\"p99\":%.1f,\"p999\":%.1f,\"max\":%llu},"
           "\"loadgen_cpu\":%.3f,\"server_cpu\":%.3f,"
           "\"errors\":{\"connect\":%llu,\"handshake\":%llu,\"closed\":%llu,\"protocol\":%llu,"
           "\"error_frames\":%llu,\"window_stalls\":%llu},\"other_frames\":%llu,"
           "\"cpu_busy\":[",
           outcome, o_conns, o_conns - dead_at_start, o_senders, o_rate, o_window,
           o_window_ack ? "ack" : "echo", o_text_size,
           t_ready ? (double)(t_ready - t0) / 1e9 : 0, win,
           t_end ? (double)((t_drained ? t_drained : now_ns()) - t_end) / 1e9 : 0,
           (unsigned long long)n_sent,
           (unsigned long long)n_sent_window, win > 0 ? (double)n_sent_window / win : 0,
           (unsigned long long)n_deliv, (unsigned long long)n_deliv_window,
           win > 0 ? (double)n_deliv_window / win : 0, (unsigned long long)expected,
           (long long)(expected - n_deliv), (unsigned long long)n_gaps,
           (unsigned long long)n_dups, (unsigned long long)n_acks, (unsigned long long)g_hist_n,
           h_quantile(0.5), h_quantile(0.9), h_quantile(0.99), h_quantile(0.999),
           (unsigned long long)g_lat_max, cpu, scpu, (unsigned long long)n_connect_err,
           (unsigned long long)n_handshake_err, (unsigned long long)n_closed,
           (unsigned long long)n_proto_err, (unsigned long long)n_err_frames,
           (unsigned long long)n_window_stalls, (unsigned long long)n_other_frames);
    for (int i = 0; i < cs1.n && i < cs0.n; i++) {
        double t = (double)(cs1.total[i] - cs0.total[i]);
        printf("%s{\"busy\":%.3f,\"softirq\":%.3f}", i ? "," : "",
               t > 0 ? (double)(cs1.busy[i] - cs0.busy[i]) / t : 0,
               t > 0 ? (double)(cs1.soft[i] - cs0.soft[i]) / t : 0);
    }
    printf("],\"server_reads_per_s\":%.1f,\"server_writes_per_s\":%.1f",
           io_ok && win > 0 ? (double)(sr1 - sr0) / win : -1,
           io_ok && win > 0 ? (double)(sw1 - sw0) / win : -1);
    if (o_resume_from >= 0) {
        int64_t missing = 0;
        for (int i = 0; i < o_conns; i++)
            missing += o_expect_seq - g_c[i].seq;
        printf(",\"storm\":{\"resume_from\":%lld,\"expect_seq\":%lld,\"caught_up\":%llu,"
               "\"all_caught_s\":%.3f,\"last_caught_s\":%.3f,\"missing\":%lld,"
               "\"gaps\":%llu,\"duplicates\":%llu}",
               o_resume_from, o_expect_seq, (unsigned long long)n_caught,
               n_caught >= (uint64_t)o_conns ? (double)(g_t_caught - t0) / 1e9 : -1.0,
               g_t_caught ? (double)(g_t_caught - t0) / 1e9 : -1.0, (long long)missing,
               (unsigned long long)n_seq_gaps, (unsigned long long)n_seq_dups);
    }
    printf(",\"first_error\":\"");
    for (const char *p = g_first_error; *p; p++) /* JSON-escape */
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if ((unsigned char)*p < 0x20)
            printf(" ");
        else
            putchar(*p);
    printf("\"}\n");
    return strcmp(outcome, "ok") == 0 ? 0 : 1;
}
