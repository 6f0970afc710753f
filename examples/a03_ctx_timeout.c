/*
 * a03_ctx_timeout.c - port of A03 (patterns article, "Example: Propagating
 * Cancellation").
 *
 * main makes a context with a timeout and calls fetchData(ctx, url); the
 * fetch gives up with the context's error when the deadline passes, and
 * main prints "fetch canceled or failed: ..." instead of waiting.
 *
 * No network: the Go snippet fetches https://example.com; here the "server"
 * is a local table of URLs with a latency each, and the round trip is a
 * transport task (as net/http runs one for a request) that waits out the
 * latency with gocc_sleep(latency, ctx) and hands the body back on a
 * channel of capacity 1. fetch_data waits for that reply or for the
 * context, whichever comes first. Because the transport task takes the same
 * context, it stops as soon as the deadline passes: the program proves it
 * by gocc_tasks_live() dropping to 0 long before the slow "server" would
 * have answered (10 s). The reply channel has room for one value so a
 * transport that finishes after fetch_data gave up never blocks.
 *
 * Go to C: string results become a caller-supplied buffer; the error is the
 * int return (0 or the context's error, printed with gocc_strerror in Go's
 * words). Go's "defer cancel()" is gocc_ctx_cancel then gocc_ctx_release.
 * No generics in the Go.
 *
 * Checks: the fast URL is fetched with the right body inside a 2 s timeout;
 * the slow one fails with GOCC_EDEADLINE ("context deadline exceeded")
 * under a 50 ms timeout, within a generous 2 s; the transport tasks have
 * all returned (gocc_tasks_live() == 0). Exit status 0 when all hold.
 */
#include <gocc.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

typedef struct response {
    char body[64];
} response_t;

/* The local "internet": URL -> latency and body. */
static const struct site {
    const char *url;
    int64_t latency_ns;
    const char *body;
} sites[] = {
    {"local://fast.example", 10 * GOCC_MILLISECOND, "<html>hello, fast</html>"},
    {"local://slow.example", 10 * GOCC_SECOND, "<html>hello, eventually</html>"},
};

#define check(ok, what) example_check("A03", ok, what)

typedef struct transport_arg {
    const struct site *site;
    gocc_chan_t *reply; /* the task's own reference; capacity 1 */
} transport_arg_t;

/* The round trip: wait out the latency unless ctx ends first, then reply. */
static int transport(gocc_ctx_t *ctx, void *arg) {
    transport_arg_t *a = arg;
    int err = gocc_sleep(a->site->latency_ns, ctx);
    if (err == 0) {
        response_t resp = {{0}};
        snprintf(resp.body, sizeof resp.body, "%s", a->site->body);
        gocc_chan_try_send(a->reply, &resp); /* room for it: never blocks */
    }
    gocc_chan_release(a->reply);
    free(a);
    return err;
}

/* fetchData(ctx, url): 0 with the body in `out`, or an error. */
static int fetch_data(gocc_ctx_t *ctx, const char *url, char *out, size_t out_size) {
    const struct site *site = NULL;
    for (size_t i = 0; i < sizeof sites / sizeof sites[0]; i++)
        if (strcmp(sites[i].url, url) == 0) site = &sites[i];
    if (!site) return -ENOENT;

    gocc_chan_t *reply = gocc_chan_new(sizeof(response_t), 1);
    transport_arg_t *a = malloc(sizeof *a);
    if (!reply || !a) {
        free(a);
        gocc_chan_release(reply);
        return GOCC_ENOMEM;
    }
    *a = (transport_arg_t){site, gocc_chan_retain(reply)};
    int err = gocc_go(transport, ctx, a);
    if (err != 0) {
        gocc_chan_release(a->reply);
        free(a);
        gocc_chan_release(reply);
        return err;
    }

    response_t resp;
    err = gocc_chan_recv(reply, &resp, ctx); /* the reply, or ctx's error */
    if (err == 0) snprintf(out, out_size, "%s", resp.body);
    gocc_chan_release(reply);
    return err;
}

/* main() of the snippet, for one URL and timeout. Returns fetch's error. */
static int fetch_with_timeout(const char *url, int64_t timeout_ns, char *data, size_t data_size,
                              int64_t *took_ns) {
    int64_t start = gocc_now();
    gocc_ctx_t *ctx = gocc_ctx_with_timeout(NULL, timeout_ns);
    if (!ctx) return GOCC_ENOMEM;
    int err = fetch_data(ctx, url, data, data_size);
    gocc_ctx_cancel(ctx); /* defer cancel() */
    gocc_ctx_release(ctx);
    *took_ns = gocc_now() - start;
    return err;
}

int main(void) {
    char data[64] = "";
    int64_t took;

    int err = fetch_with_timeout("local://fast.example", 2 * GOCC_SECOND, data, sizeof data, &took);
    if (err == 0)
        printf("A03 ctx timeout: 2 s timeout, 10 ms fetch -> fetched: %s (%.0f ms)\n", data,
               took / 1e6);
    else
        printf("A03 ctx timeout: fast fetch canceled or failed: %s\n", gocc_strerror(err));
    check(err == 0, "the fast fetch succeeded");
    check(strcmp(data, sites[0].body) == 0, "the fast fetch returned the right body");

    err =
        fetch_with_timeout("local://slow.example", 50 * GOCC_MILLISECOND, data, sizeof data, &took);
    printf("A03 ctx timeout: 50 ms timeout, 10 s fetch -> fetch canceled or failed: "
           "%s after %.0f ms\n",
           gocc_strerror(err), took / 1e6);
    check(err == GOCC_EDEADLINE, "the slow fetch failed with the deadline");
    check(took < 2 * GOCC_SECOND, "the slow fetch gave up within 2 s");

    /* The transport task saw the same deadline: no 10 s straggler. */
    bool exited = example_tasks_exit_within(2 * GOCC_SECOND);
    printf("A03 ctx timeout: the slow fetch's transport task %s\n",
           exited ? "stopped with the context (gocc_tasks_live() == 0)" : "is still running");
    check(exited, "the transport task stopped with the context");

    if (example_failures) printf("A03 ctx timeout: FAILED\n");
    return example_failures ? 1 : 0;
}
