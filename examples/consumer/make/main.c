/*
 * main.c - the smallest libgocc program, built by make against libgocc (see
 * ../README.md): a task sends 1, 2, 3 on an unbuffered channel and closes
 * it; main receives until the channel is closed and prints the sum.
 */
#include <gocc.h>

#include <stdio.h>

static int produce(gocc_ctx_t *ctx, void *ch) {
    for (int i = 1; i <= 3; i++)
        if (gocc_chan_send(ch, &i, ctx) != 0) break;
    gocc_chan_close(ch);
    gocc_chan_release(ch); /* the reference main gave this task */
    return 0;
}

int main(void) {
    gocc_chan_t *ch = gocc_chan_new(sizeof(int), 0);
    if (ch == NULL) return 1;
    if (gocc_go(produce, NULL, gocc_chan_retain(ch)) != 0) {
        gocc_chan_release(ch); /* the task's reference */
        gocc_chan_release(ch);
        return 1;
    }
    int v, sum = 0;
    while (gocc_chan_recv(ch, &v, NULL) == 0) sum += v;
    gocc_chan_release(ch);
    printf("make consumer: libgocc %s, sum %d\n", gocc_version(), sum);
    /* The task has ended (or ends within a second): nothing left running. */
    return sum == 6 && gocc_leakcheck(0, GOCC_SECOND, 2) == 0 ? 0 : 1;
}
