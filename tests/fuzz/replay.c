/*
 * replay.c - a main for fuzz-ops.c without libFuzzer: feeds every file
 * named on the command line (a directory: every regular file in it, in
 * name order) to LLVMFuzzerTestOneInput, each -r N times (default 1).
 *
 * meson builds it with gcc as the test fuzz-replay (suite core), so every
 * build, TSan and ASan+UBSan included, replays tests/fuzz/corpus; a crash
 * input from tests/fuzz/run.sh replays the same way:
 *   build/tests/fuzz/fuzz-replay build-fuzz/artifacts/crash-...
 * A violated invariant aborts (the harness prints what); a hang ends in the
 * watchdog, which names the input.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* alarm, dirent under -std=c11 */
#endif

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { REPLAY_MAX_INPUT = 1 << 20, WATCHDOG_SECONDS = 500 };

static const char *volatile current = "(none yet)";

static void watchdog(int sig) {
    (void)sig;
    static const char msg[] = "\nfuzz-replay: WATCHDOG: hung replaying ";
    const char *c = current;
    ssize_t r = write(2, msg, sizeof msg - 1);
    r = write(2, c, strlen(c));
    r = write(2, "\n", 1);
    (void)r;
    _exit(99);
}

static unsigned char buf[REPLAY_MAX_INPUT];

static int replay_file(const char *path, int repeat) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    size_t n = fread(buf, 1, sizeof buf, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        perror(path);
        return -1;
    }
    current = path;
    for (int i = 0; i < repeat; i++) LLVMFuzzerTestOneInput(buf, n);
    return 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replay every regular file in dir, in name order; returns how many, or -1. */
static int replay_dir(const char *dir, int repeat) {
    DIR *d = opendir(dir);
    if (d == NULL) {
        perror(dir);
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (nn == NULL) abort();
            names = nn;
        }
        size_t len = strlen(dir) + strlen(de->d_name) + 2;
        names[n] = malloc(len);
        if (names[n] == NULL) abort();
        snprintf(names[n], len, "%s/%s", dir, de->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    int count = 0, rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(names[i], repeat) != 0)
                rc = -1;
            else
                count++;
        }
        free(names[i]);
    }
    free(names);
    return rc < 0 ? -1 : count;
}

int main(int argc, char **argv) {
    int repeat = 1, total = 0, failed = 0;
    signal(SIGALRM, watchdog);
    alarm(WATCHDOG_SECONDS);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) {
            repeat = atoi(argv[++i]);
            if (repeat < 1) repeat = 1;
            continue;
        }
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            failed = 1;
        } else if (S_ISDIR(st.st_mode)) {
            int n = replay_dir(argv[i], repeat);
            if (n < 0)
                failed = 1;
            else
                total += n;
        } else if (replay_file(argv[i], repeat) != 0) {
            failed = 1;
        } else {
            total++;
        }
    }
    if (argc < 2) {
        fprintf(stderr, "usage: %s [-r N] FILE|DIR...\n", argv[0]);
        return 2;
    }
    printf("fuzz-replay: %d inputs replayed %d time%s each, every invariant held\n", total, repeat,
           repeat == 1 ? "" : "s");
    if (total == 0) {
        fprintf(stderr, "fuzz-replay: no inputs found\n");
        return 1;
    }
    return failed;
}
