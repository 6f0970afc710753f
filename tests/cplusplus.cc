// cplusplus.cc - gocc.h is usable from C++: it compiles (built as C++11 and
// C++17 with -Wall -Wextra -Werror -pedantic by tests/meson.build), its
// declarations have C linkage (extern "C": the calls below link against the
// C library), and its initialiser macros and structs work in C++.
//
// Sends 1..N from a task over a buffered channel, receives them with a
// select and a context, runs a gocc_once_t and a gocc_waitgroup_t made with
// the header's initialisers. Exit 0 when everything came out as expected.
#include <gocc.h>

#include <cstdio>
#include <cstring>

namespace {

const int N = 100;

struct Feed {
    gocc_chan_t *ch;
    gocc_waitgroup_t *wg;
};

// A task: C linkage is not needed for a function pointer, only the type.
int produce(gocc_ctx_t *ctx, void *arg) {
    Feed *f = static_cast<Feed *>(arg);
    int rc = 0;
    for (int i = 1; i <= N && rc == 0; i++) rc = gocc_chan_send(f->ch, &i, ctx);
    gocc_chan_close(f->ch);
    gocc_waitgroup_done(f->wg);
    return rc;
}

int once_body(void *arg) {
    ++*static_cast<int *>(arg);
    return 7;
}

int failures = 0;

void check(bool ok, const char *what) {
    if (!ok) {
        std::fprintf(stderr, "cplusplus: FAIL: %s\n", what);
        failures++;
    }
}

} // namespace

int main() {
    check(std::strlen(gocc_version()) > 0, "gocc_version");
    check(std::strcmp(gocc_strerror(GOCC_EDEADLINE), "context deadline exceeded") == 0,
          "gocc_strerror");

    gocc_ctx_t *ctx = gocc_ctx_with_timeout(nullptr, 10 * GOCC_SECOND);
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), 8);
    check(ctx != nullptr && ch != nullptr, "ctx and channel made");

    gocc_waitgroup_t wg = GOCC_WAITGROUP_INIT;
    check(gocc_waitgroup_add(&wg, 1) == 0, "waitgroup add");
    Feed feed = {ch, &wg};
    check(gocc_go(produce, ctx, &feed) == 0, "gocc_go");

    long sum = 0;
    int v = 0;
    gocc_case_t cases[1];
    cases[0].ch = ch;
    cases[0].dir = GOCC_RECV;
    cases[0].elem = &v;
    cases[0].ok = false;
    for (;;) {
        int idx = gocc_select(cases, 1, ctx);
        check(idx == 0, "select returned the receive case");
        if (idx != 0 || !cases[0].ok) break;
        sum += v;
    }
    check(sum == static_cast<long>(N) * (N + 1) / 2, "every value received once");
    check(gocc_waitgroup_wait(&wg, ctx) == 0, "waitgroup wait");

    gocc_once_t once = GOCC_ONCE_INIT;
    int runs = 0;
    check(gocc_once_do(&once, once_body, &runs) == 7, "once result");
    check(gocc_once_do(&once, once_body, &runs) == 7, "once result again");
    check(runs == 1, "once body ran once");

    gocc_ctx_cancel(ctx);
    check(gocc_ctx_err(ctx) == GOCC_ECANCELED, "ctx cancelled");
    gocc_chan_release(ch);
    gocc_ctx_release(ctx);
    check(gocc_leakcheck(0, 5 * GOCC_SECOND, 2) == 0, "no task left");

    std::printf("cplusplus: %ld received, once ran %d time(s)%s\n", sum, runs,
                failures ? ", FAILED" : "");
    return failures ? 1 : 0;
}
