/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A simulated network for the server tests: one dispatcher (the server)
 * and any number of client engines, each at its own address, joined by
 * packet queues and driven on a simulated clock. No sockets, no tun: what
 * the server writes to its tun and what clients receive are recorded.
 */

#include <glib.h>

#include "dispatch.h"
#include "engine.h"

G_BEGIN_DECLS

#define SRVNET_T0 ((gint64)1000 * G_USEC_PER_SEC)
/* 2027-01-01, inside the fixtures' validity. */
#define SRVNET_WALL0 ((gint64)1798761600)

typedef struct SrvNet SrvNet;

typedef struct {
    ShimmerEventType type;
    ShimmerState state;
    char *text;
} SrvCliEvent;

typedef struct {
    SrvNet *n;
    guint index;
    ShimmerConfig *cfg;
    ShimmerEngine *e;
    ShimmerLinkAddr addr;
    GPtrArray *events; /* SrvCliEvent* */
    GPtrArray *tun;    /* GBytes*: plaintext it received */
    gboolean detached; /* packets to it are lost */
} SrvCli;

typedef struct {
    ShimmerDispatchEventType type;
    guint64 id;
    char *common_name;
    char *username;
    char *password;
    char *reason;
} SrvEvent;

typedef enum {
    SRVNET_AUTH_ACCEPT,
    SRVNET_AUTH_DENY,
    /* Leave the request waiting (answer with shimmer_dispatch_auth_reply). */
    SRVNET_AUTH_HOLD,
    /* Accept when the password is srvnet->password, else deny. */
    SRVNET_AUTH_PASSWORD,
} SrvNetAuth;

/* Drops (FALSE) or lets pass a packet; may rewrite *FROM (server-bound). */
typedef gboolean (*SrvNetFilter)(SrvNet *n, gboolean to_client, ShimmerLinkAddr *addr, GBytes *pkt);

struct SrvNet {
    gint64 now;
    ShimmerConfig *scfg;
    ShimmerDispatch *d;
    GPtrArray *clients; /* SrvCli* */
    GQueue *to_srv;     /* Pkt* */
    GQueue *to_cli;     /* Pkt* */
    GPtrArray *srv_tun; /* GBytes* */
    GPtrArray *srv_events;
    GPtrArray *srv_logs;
    GHashTable *ccd; /* common name -> text */
    guint64 rng;
    gboolean log;
    SrvNetAuth auth;
    const char *password;
    SrvNetFilter filter;
    gpointer filter_data;
    guint ccd_loads;
    guint64 link_packets; /* every packet moved */
    gint64 srv_cpu_ns;    /* this thread's CPU time inside the dispatcher */
    /* Offload (srvnet_set_offload()): jobs run on POOL, and every pump
     * round waits for them; HOLD leaves them in the dispatcher's queue. */
    GThreadPool *pool;
    GAsyncQueue *done;
    gboolean hold;
    guint64 jobs_run;
};

/* A server for the fixture PKI with EXTRA lines (wrapping, push, ...).
 * With $SHIMMER_SRVNET_OFFLOAD set, its handshakes run on threads
 * (srvnet_set_offload()). */
SrvNet *srvnet_new(const char *extra);
/* The dispatcher's offload on: jobs run on two threads; each pump round
 * runs the jobs waiting and hands them back in the order taken. */
void srvnet_set_offload(SrvNet *n, gboolean on);
/* Runs the jobs waiting (none without offload, or held); TRUE if there
 * were any. srvnet_pump() does it; tests that call the dispatcher
 * directly do it before they read what it wrote. */
gboolean srvnet_run_jobs(SrvNet *n);
void srvnet_free(SrvNet *n);
/* A client profile for the fixture PKI with EXTRA lines; started at once. */
SrvCli *srvnet_add_client(SrvNet *n, const char *extra);
/* Takes C off the network and frees it (it vanishes without a word). */
void srvnet_remove_client(SrvNet *n, SrvCli *c);
/* A client config (not started): the text for the fixtures. */
ShimmerConfig *srvnet_client_config(const char *extra);

/* Moves packets and events until nothing moves (the clock stands). */
void srvnet_pump(SrvNet *n);
typedef gboolean (*SrvNetDone)(SrvNet *n, gpointer data);
/* Pumps and moves the clock from deadline to deadline until DONE or
 * UNTIL; DONE's result. */
gboolean srvnet_run(SrvNet *n, gint64 until, SrvNetDone done, gpointer data);
/* Runs until every client is CONNECTED (FALSE after LIMIT). */
gboolean srvnet_connect_all(SrvNet *n, gint64 limit);

/* Sends an IPv4 packet of LEN bytes from client C (its pushed address) to
 * DST ("10.8.0.1"). FALSE if it could not be encrypted. */
gboolean srvnet_client_send(SrvCli *c, const char *src, const char *dst, gsize len, guint8 tag);
/* Puts an IPv4 packet from SRC to DST on the server's tun side. */
ShimmerDispatchResult srvnet_server_send(SrvNet *n, const char *src, const char *dst, gsize len,
                                         guint8 tag);
/* A raw datagram from FROM to the server, with its result. */
ShimmerDispatchResult srvnet_inject(SrvNet *n, const ShimmerLinkAddr *from, const guint8 *pkt,
                                    gsize len, guint8 *out, gsize *out_len, ShimmerLinkAddr *to);
void srvnet_addr(ShimmerLinkAddr *a, const char *ip, guint16 port);
/* The pushed IPv4 address of C, or NULL. */
const char *srvnet_client_ip(SrvCli *c);
gint srvnet_find_cli_event(SrvCli *c, ShimmerEventType type, gint state);
gint srvnet_find_srv_event(SrvNet *n, ShimmerDispatchEventType type);
guint srvnet_count_srv_events(SrvNet *n, ShimmerDispatchEventType type);
gboolean srvnet_log_has(SrvNet *n, const char *needle);
GBytes *srvnet_fixture(const char *name);
char *srvnet_data_dir(void);

G_END_DECLS
