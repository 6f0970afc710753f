/*
 * b06_atomic_config.c - B06 (chapter 9, "Atomic configuration updates"):
 * a Config whose ConfigData is replaced with atomic.Pointer.Store while
 * readers call Get() without locks ("Usage - no locks needed!"; "Readers
 * get consistent view").
 *
 * b06_readers_and_updater: 4 reader tasks Get the config over and over
 *   (checking it is whole and using its Timeout and MaxConns) while the
 *   main thread Updates it 200 times, each time with a freshly built
 *   ConfigData; a fifth task takes the first config and keeps it across
 *   all the updates, then checks it is still whole and still version 1.
 *
 * Go -> C: atomic.Pointer[ConfigData] is a gocc_snapshot_t. C has no
 * garbage collector, so Get is a borrow: config_get (gocc_snapshot_acquire)
 * returns the current ConfigData and config_put (gocc_snapshot_release)
 * ends the borrow; Update is gocc_snapshot_store. A replaced ConfigData is
 * freed by the snapshot's free function once its last borrow ends, never
 * while a reader still uses it. Features map[string]bool becomes a small
 * fixed array of {name, on}.
 *
 * Checks: every read saw a whole config (its checksum matches its fields),
 * no reader saw versions go backwards, the held config survived the 200
 * updates intact, every config was freed exactly once (201 = 200 updates
 * + the last one, freed with the snapshot), gocc_tasks_live() == 0 at the
 * end. Exit 1 if wrong.
 */
#include <gocc.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example.h"

#define check(ok, what) example_check_stdout("B06", ok, what)

#define READERS 4
#define UPDATES 200

/* ---- ConfigData ---------------------------------------------------------- */

typedef struct feature {
    char name[16];
    bool on;
} feature_t;

typedef struct config_data {
    int version;
    int64_t timeout_ns; /* Timeout time.Duration */
    int max_conns;      /* MaxConns int */
    feature_t features[3];
    unsigned checksum; /* over the fields above: a torn read would not match */
} config_data_t;

static unsigned checksum_of(const config_data_t *c) {
    unsigned h = 2166136261u;
    h = (h ^ (unsigned)c->version) * 16777619u;
    h = (h ^ (unsigned)c->timeout_ns) * 16777619u;
    h = (h ^ (unsigned)c->max_conns) * 16777619u;
    for (int i = 0; i < 3; i++) {
        for (size_t j = 0; j < sizeof c->features[i].name; j++)
            h = (h ^ (unsigned char)c->features[i].name[j]) * 16777619u;
        h = (h ^ (unsigned)c->features[i].on) * 16777619u;
    }
    return h;
}

static bool whole(const config_data_t *c) { return c != NULL && c->checksum == checksum_of(c); }

/* &ConfigData{Timeout: 5 * time.Second, MaxConns: 100, ...}, version v. */
static config_data_t *config_data_new(int v) {
    config_data_t *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    c->version = v;
    c->timeout_ns = (5 + v % 3) * GOCC_SECOND;
    c->max_conns = 100 + v;
    static const char *names[3] = {"tracing", "compression", "new-ui"};
    for (int i = 0; i < 3; i++) {
        snprintf(c->features[i].name, sizeof c->features[i].name, "%s", names[i]);
        c->features[i].on = (v >> i) & 1;
    }
    c->checksum = checksum_of(c);
    return c;
}

static atomic_int configs_freed;

static void config_data_free(void *value, void *ud) {
    (void)ud;
    config_data_t *c = value;
    c->checksum = ~checksum_of(c); /* a reader that still had it would notice */
    free(c);
    atomic_fetch_add(&configs_freed, 1);
}

/* ---- Config: Update and Get ------------------------------------------- */

typedef struct config {
    gocc_snapshot_t *data; /* data atomic.Pointer[ConfigData] */
} config_t;

/* func (c *Config) Update(new *ConfigData) { c.data.Store(new) } */
static int config_update(config_t *c, config_data_t *next) {
    return gocc_snapshot_store(c->data, next);
}

/* func (c *Config) Get() *ConfigData { return c.data.Load() }, as a borrow
 * that lasts until config_put. */
static const config_data_t *config_get(config_t *c, gocc_snapshot_ref_t *ref) {
    return gocc_snapshot_acquire(c->data, ref);
}

static void config_put(gocc_snapshot_ref_t *ref) { gocc_snapshot_release(ref); }

/* ---- the demo ------------------------------------------------------------ */

typedef struct reader {
    config_t *cfg;
    atomic_bool *updater_done;
    long reads;
    long torn;
    bool went_back;
    int64_t timeout_sum_s; /* uses the config: cfg.Timeout */
} reader_t;

static int reader_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    reader_t *r = arg;
    int last = 0;
    bool done;
    do {
        done = atomic_load(r->updater_done); /* one more read after the last update */
        gocc_snapshot_ref_t ref;
        const config_data_t *cfg = config_get(r->cfg, &ref); /* cfg := config.Get() */
        r->reads++;
        if (!whole(cfg)) {
            r->torn++;
        } else {
            r->timeout_sum_s += cfg->timeout_ns / GOCC_SECOND; /* timeout := cfg.Timeout */
            if (cfg->version < last) r->went_back = true;
            last = cfg->version;
        }
        config_put(&ref);
    } while (!done);
    return 0;
}

/* Keeps the first config for the whole run. */
typedef struct holder {
    config_t *cfg;
    gocc_chan_t *holding; /* closed once it holds its borrow */
    gocc_chan_t *release; /* closed when it may let go */
    bool intact;
    int version;
    int max_conns;
} holder_t;

static int holder_task(gocc_ctx_t *ctx, void *arg) {
    (void)ctx;
    holder_t *h = arg;
    gocc_snapshot_ref_t ref;
    const config_data_t *cfg = config_get(h->cfg, &ref);
    gocc_chan_close(h->holding);
    gocc_chan_recv(h->release, NULL, NULL); /* the updates happen meanwhile */
    h->intact = whole(cfg);
    h->version = cfg ? cfg->version : -1;
    h->max_conns = cfg ? cfg->max_conns : -1;
    config_put(&ref);
    return 0;
}

static void b06_readers_and_updater(void) {
    config_t config = {0};
    config_data_t *first = config_data_new(1);
    config.data = first ? gocc_snapshot_new(first, config_data_free, NULL) : NULL;
    holder_t h = {.cfg = &config, .holding = gocc_chan_new(0, 0), .release = gocc_chan_new(0, 0)};
    if (!config.data || !h.holding || !h.release) {
        check(false, "made the config");
        if (!config.data) free(first);
        gocc_snapshot_free(config.data);
        gocc_chan_release(h.holding);
        gocc_chan_release(h.release);
        return;
    }
    bool held = gocc_go(holder_task, NULL, &h) == 0;
    if (held) gocc_chan_recv(h.holding, NULL, NULL); /* it holds version 1 now */

    atomic_bool updater_done = false;
    reader_t r[READERS];
    int started = 0;
    for (int i = 0; i < READERS; i++) {
        r[i] = (reader_t){.cfg = &config, .updater_done = &updater_done};
        started += gocc_go(reader_task, NULL, &r[i]) == 0;
    }
    int updates = 0;
    for (int v = 2; v <= UPDATES + 1; v++) {
        config_data_t *next = config_data_new(v); /* build the new one completely ... */
        if (!next) break;
        if (config_update(&config, next) != 0) { /* ... then swap it in */
            free(next);
            break;
        }
        updates++;
        if (v % 20 == 0) gocc_sleep(100 * GOCC_MICROSECOND, NULL); /* let readers in */
    }
    atomic_store(&updater_done, true);
    gocc_chan_close(h.release);
    check(example_tasks_exit_within(5 * GOCC_SECOND), "readers and the holder returned");

    long reads = 0, torn = 0;
    bool back = false;
    for (int i = 0; i < READERS; i++) {
        reads += r[i].reads;
        torn += r[i].torn;
        back |= r[i].went_back;
    }
    check(started == READERS && held, "started the readers and the holder");
    check(updates == UPDATES, "every update swapped in a new config");
    check(reads >= READERS && torn == 0, "every read saw a whole config");
    check(!back, "no reader saw the version go backwards");
    check(h.intact && h.version == 1 && h.max_conns == 101,
          "the held config stayed whole and unchanged across the updates");
    int freed_while_running = atomic_load(&configs_freed);
    gocc_snapshot_free(config.data); /* and with it the current config */
    int freed = atomic_load(&configs_freed);
    check(freed_while_running == UPDATES && freed == UPDATES + 1,
          "every config was freed exactly once, after its last reader");

    printf("B06 readers: %d tasks made %ld lock-free Get()s during %d Update()s: "
           "%ld torn, versions %s\n",
           started, reads, updates, torn, back ? "WENT BACK" : "never went back");
    printf("B06 held: one reader kept config v%d (MaxConns %d) across all %d updates: %s\n",
           h.version, h.max_conns, updates, h.intact ? "still whole" : "DAMAGED");
    printf("B06 reclaimed: %d replaced configs freed once their last reader let go, "
           "+1 with the Config\n",
           freed_while_running);
    gocc_chan_release(h.holding);
    gocc_chan_release(h.release);
}

int main(void) {
    b06_readers_and_updater();
    check(example_tasks_exit_within(5 * GOCC_SECOND), "gocc_tasks_live() == 0 at the end");
    printf("B06 %s: %zu tasks live at the end\n", example_failures ? "FAILED" : "ok",
           gocc_tasks_live());
    return example_failures ? 1 : 0;
}
