#!/usr/bin/env python3
"""gen-corpus.py - write the seed inputs of tests/fuzz/corpus/ for fuzz-ops.c.

Each seed is a small program in fuzz-ops.c's input format (its header
comment is the reference), written here with a tiny assembler so that every
operation is covered in both modes: one task (checked against the
sequential model) and two to four tasks at once. A few seeds are random
programs from a fixed PRNG seed. The output is deterministic: running this
again rewrites the same files.

    tests/fuzz/gen-corpus.py [OUTDIR]     (default: the corpus/ beside it)
"""
import os
import random
import sys

CHAN_OPS = ["send", "recv", "try_send", "try_recv", "select", "select_try", "close",
            "cancel", "ctx_new", "len", "yield", "nil", "after_func"]
# Descriptor ops on socketpair k (the channel bits): extra bit 0 the end,
# bit 1 (read, write) a context already done; fd_wait's events: extra >> 1
# mod 3 + 1 (READ, WRITE, both).
OPS = CHAN_OPS + ["fd_write", "fd_read", "fd_wait", "fd_close", "fd_ref"]
OP = {name: i for i, name in enumerate(OPS)}

# Context selectors in an op's arg byte.
RUN, S1, S2, S3, P0, P1, NONE = 0, 1, 2, 3, 4, 5, 6
# Select case targets: channels 0-3, the nil channel, done channels of S1-S3.
NIL, DONE1, DONE2, DONE3 = 4, 5, 6, 7
# Shared context kinds (header byte 2) and timeouts (byte 3: index into 1/2/5/10 ms).
CANCEL, TIMEOUT, CANCEL_OF_PREV, TIMEOUT_OF_PREV = 0, 1, 2, 3


def header(nchan=1, ntask=1, caps=(0,), kinds=(CANCEL, CANCEL, CANCEL), ms=(0, 0, 0)):
    caps = list(caps) + [0] * (4 - len(caps))
    b0 = (nchan - 1) | (ntask - 1) << 2
    b1 = sum((c & 3) << (2 * i) for i, c in enumerate(caps))
    b2 = sum((k & 3) << (2 * i) for i, k in enumerate(kinds))
    b3 = sum((m & 3) << (2 * i) for i, m in enumerate(ms))
    return bytes([b0, b1, b2, b3])


def op(name, task=0, chan=0, ctx=RUN, extra=0):
    return bytes([(task & 3) << 6 | OP[name], (chan & 3) | (ctx & 7) << 2 | (extra & 7) << 5])


def sel(cases, task=0, ctx=RUN, try_=False):
    """cases: (target, "s" or "r") pairs."""
    out = op("select_try" if try_ else "select", task, 0, ctx, len(cases))
    return out + bytes((t & 7) | (8 if d == "s" else 0) for t, d in cases)


def cancel(slot, task=0, priv=0, cause=False):
    """slot 1-3: a shared context; 0: the task's own context number priv."""
    return bytes([(task & 3) << 6 | OP["cancel"], (slot & 3) | (priv & 1) << 2 | cause << 3])


def ctx_new(priv, parent=RUN, timeout=False, ms=0, task=0, value=False):
    return bytes([(task & 3) << 6 | OP["ctx_new"],
                  (priv & 1) | (parent & 3) << 1 | timeout << 3 | (ms & 3) << 4 | value << 6])


def after(slot, task=0, stop=False, stop_twice=False):
    return bytes([(task & 3) << 6 | OP["after_func"], (slot & 3) | stop << 2 | stop_twice << 3])


def sleep(task=0, ctx=RUN):
    return op("yield", task, 0, ctx, 1)


def nil(send, task=0, ctx=RUN):
    return op("nil", task, 0, ctx, 1 if send else 0)


def fd(name, task=0, pair=0, end=0, ctx=RUN, try_=False, events=0):
    """events (fd_wait): 0 READ, 1 WRITE, 2 both."""
    return op(name, task, pair, ctx, (end & 1) | (try_ << 1) | (events << 1 if name == "fd_wait" else 0))


def rep(n, *parts):
    return b"".join(parts) * n


SEEDS = {}

# ---- one task: every result checked against the sequential model ----
SEEDS["seq-buffered-fifo"] = header(1, 1, [3]) + rep(3, op("send")) + op("len") + \
    rep(3, op("recv")) + op("try_recv") + op("len")
SEEDS["seq-unbuffered-blocks"] = header(1, 1, [0]) + op("try_send") + op("send") + \
    op("recv") + op("try_recv") + op("close") + op("recv") + op("send")
SEEDS["seq-close-drain"] = header(1, 1, [2]) + op("send") + op("send") + op("close") + \
    op("recv") + op("try_recv") + op("recv") + op("close") + op("try_send") + op("send")
SEEDS["seq-full-buffer"] = header(2, 1, [1, 2]) + op("send") + op("send") + op("try_send") + \
    op("send", chan=1) + op("send", chan=1) + op("try_send", chan=1) + op("len", chan=1) + \
    op("recv") + op("recv", chan=1) + op("try_send")
SEEDS["seq-select-send-recv"] = header(2, 1, [1, 2]) + \
    sel([(0, "s"), (1, "s")]) + sel([(0, "s"), (1, "s")]) + sel([(0, "s"), (1, "s")]) + \
    sel([(0, "r"), (1, "r")]) + sel([(0, "r"), (1, "r")]) + sel([(0, "r"), (1, "r")]) + \
    sel([(0, "r"), (1, "r")])
SEEDS["seq-select-try"] = header(2, 1, [2, 0]) + sel([(0, "r"), (1, "r")], try_=True) + \
    sel([(0, "s"), (1, "s")], try_=True) + sel([(1, "s"), (0, "r")], try_=True) + \
    sel([], try_=True) + op("close", chan=1) + sel([(1, "r"), (1, "s")], try_=True)
SEEDS["seq-select-empty-and-nil"] = header(1, 1, [1]) + sel([]) + sel([(NIL, "r"), (NIL, "s")]) + \
    sel([(NIL, "s")], try_=True) + sel([(NIL, "r"), (0, "s")])
SEEDS["seq-select-same-channel"] = header(1, 1, [1]) + sel([(0, "s"), (0, "r")]) + \
    sel([(0, "s"), (0, "r")]) + sel([(0, "r"), (0, "r"), (0, "s"), (0, "s")])
SEEDS["seq-select-closed"] = header(2, 1, [0, 1]) + op("close") + sel([(0, "s"), (1, "r")]) + \
    sel([(0, "r"), (1, "s")]) + sel([(0, "r")], try_=True) + sel([(0, "s")], try_=True)
SEEDS["seq-cancel-then-block"] = header(1, 1, [0], kinds=(CANCEL, CANCEL_OF_PREV, CANCEL)) + \
    cancel(1) + op("recv", ctx=S1) + op("send", ctx=S2) + sel([(0, "r")], ctx=S1) + \
    op("recv", ctx=S3) + ctx_new(0, parent=S1) + op("recv", ctx=P0)
SEEDS["seq-cancel-cause"] = header(1, 1, [1], kinds=(CANCEL, CANCEL_OF_PREV, TIMEOUT_OF_PREV),
                                   ms=(0, 0, 3)) + \
    cancel(2, cause=True) + op("recv", ctx=S3) + cancel(1) + op("send", ctx=S1) + op("send")
SEEDS["seq-timeout-contexts"] = header(1, 1, [0], kinds=(TIMEOUT, TIMEOUT, TIMEOUT_OF_PREV),
                                       ms=(0, 1, 2)) + \
    op("recv", ctx=S1) + op("send", ctx=S2) + sel([(0, "r")], ctx=S3) + op("recv", ctx=S1)
SEEDS["seq-done-channel-case"] = header(1, 1, [0], kinds=(TIMEOUT, CANCEL, CANCEL), ms=(1, 0, 0)) + \
    sel([(0, "r"), (DONE1, "r")]) + sel([(DONE2, "r")], try_=True) + cancel(2) + \
    sel([(DONE2, "r"), (0, "s")]) + sel([(DONE3, "r"), (DONE2, "r")], try_=True)
SEEDS["seq-own-contexts"] = header(1, 1, [1]) + ctx_new(0) + ctx_new(1, timeout=True, ms=1) + \
    op("recv", ctx=P0) + op("recv", ctx=P1) + cancel(0, priv=0) + op("send", ctx=P0) + \
    ctx_new(0, parent=S1, timeout=True, ms=0) + op("send", ctx=P0) + op("recv", ctx=P0)
SEEDS["seq-null-context"] = header(1, 1, [2]) + op("send", ctx=NONE) + op("send", ctx=NONE) + \
    op("send", ctx=NONE) + op("recv", ctx=NONE) + sel([(0, "r")], ctx=NONE) + op("recv", ctx=NONE)
SEEDS["seq-nil-channel"] = header(1, 1, [0], kinds=(TIMEOUT, CANCEL, CANCEL), ms=(0, 0, 0)) + \
    nil(True, ctx=NONE) + nil(False, ctx=NONE) + nil(True, ctx=S1) + nil(False) + cancel(2) + \
    nil(False, ctx=S2)
SEEDS["seq-value-contexts"] = header(1, 1, [1], kinds=(TIMEOUT, CANCEL, CANCEL), ms=(2, 0, 0)) + \
    ctx_new(0, parent=S2, value=True) + ctx_new(1, parent=S1, timeout=True, ms=1, value=True) + \
    op("send", ctx=P0) + op("recv", ctx=P1) + op("recv", ctx=P1) + cancel(0, priv=0) + \
    op("send", ctx=P0) + cancel(2) + op("recv", ctx=P0) + cancel(0, priv=0)
SEEDS["seq-after-func"] = header(1, 1, [0], kinds=(CANCEL, TIMEOUT, CANCEL_OF_PREV), ms=(0, 0, 0)) + \
    after(1) + after(1, stop=True) + after(2) + after(3, stop=True, stop_twice=True) + \
    cancel(1) + after(1) + after(1, stop=True) + op("recv", ctx=S2) + after(2, stop=True)
SEEDS["seq-yield-sleep"] = header(1, 1, [1], kinds=(CANCEL, CANCEL, CANCEL)) + op("yield") + \
    sleep() + cancel(1) + sleep(ctx=S1) + sleep(ctx=NONE) + op("send") + op("len")
SEEDS["seq-four-channels"] = header(4, 1, [0, 1, 2, 3]) + \
    b"".join(op("send", chan=k) for k in range(4)) + b"".join(op("len", chan=k) for k in range(4)) + \
    sel([(3, "s"), (2, "s"), (1, "s"), (0, "s")]) + sel([(3, "r"), (2, "r"), (1, "r"), (0, "r")]) + \
    op("close", chan=2) + sel([(2, "r"), (3, "r")], try_=True) + op("close", chan=2)

SEEDS["seq-fd-records"] = header(1, 1, [0]) + rep(3, fd("fd_write", end=0)) + \
    fd("fd_write", end=1) + rep(3, fd("fd_read", end=1)) + fd("fd_read", end=1) + \
    fd("fd_wait", end=1, events=0) + fd("fd_wait", end=0, events=2) + fd("fd_wait", end=1, events=1) + \
    fd("fd_ref", end=0) + fd("fd_write", end=0) + fd("fd_close", end=0) + fd("fd_read", end=1) + \
    fd("fd_read", end=1) + fd("fd_write", end=1) + fd("fd_close", end=0) + fd("fd_read", end=0) + \
    fd("fd_wait", end=0) + fd("fd_ref", end=0)
# End 0 closes with a record unread: end 1's next call sees ECONNRESET, once,
# and the record end 0 wrote before is still there for the final drain.
SEEDS["seq-fd-reset-then-drain"] = header(1, 1, [0]) + fd("fd_write", end=0) + \
    fd("fd_write", end=1) + fd("fd_close", end=0)
SEEDS["seq-fd-done-contexts"] = header(2, 1, [0, 0], kinds=(TIMEOUT, CANCEL, CANCEL), ms=(0, 0, 0)) + \
    fd("fd_write", 0, 1, 0, try_=True) + fd("fd_read", 0, 1, 1, try_=True) + fd("fd_read", 0, 1, 1) + \
    fd("fd_read", 0, 0, 0, ctx=S1) + fd("fd_write", 0, 0, 1, ctx=S1) + sleep(ctx=RUN) + \
    sleep(ctx=RUN) + fd("fd_read", 0, 0, 0, ctx=S1) + cancel(2) + fd("fd_read", 0, 0, 0, ctx=S2) + \
    fd("fd_read", 0, 0, 0, ctx=S2, try_=True) + fd("fd_close", 0, 1, 1) + fd("fd_write", 0, 1, 0)

# ---- several tasks at once: logged, then checked for loss, duplication, FIFO, close ----
SEEDS["conc-pingpong-unbuffered"] = header(1, 2, [0]) + rep(6, op("send", 0), op("recv", 1))
SEEDS["conc-pingpong-two-way"] = header(2, 2, [0, 0]) + \
    rep(4, op("send", 0, 0), op("recv", 1, 0), op("send", 1, 1), op("recv", 0, 1))
SEEDS["conc-producers-consumers"] = header(1, 4, [2]) + \
    rep(8, op("send", 0), op("send", 1), op("recv", 2), op("recv", 3))
SEEDS["conc-fifo-many-producers"] = header(1, 4, [3]) + \
    rep(6, op("send", 0), op("send", 1), op("send", 2)) + rep(18, op("recv", 3))
SEEDS["conc-close-wakes-senders"] = header(1, 3, [0]) + rep(3, op("send", 0), op("send", 1)) + \
    op("yield", 2) + sleep(2) + op("close", 2)
SEEDS["conc-close-wakes-receivers"] = header(2, 3, [0, 1]) + \
    rep(3, op("recv", 0), sel([(0, "r"), (1, "r")], task=1)) + sleep(2) + op("close", 2) + \
    op("close", 2, chan=1)
SEEDS["conc-close-races"] = header(1, 4, [1]) + \
    rep(3, op("send", 0), op("recv", 1), op("try_send", 2), op("close", 3), op("try_recv", 2))
SEEDS["conc-select-fan-in"] = header(2, 3, [0, 1]) + \
    rep(5, op("send", 0, 0), op("send", 1, 1), sel([(0, "r"), (1, "r")], task=2),
        sel([(0, "r"), (1, "r")], task=2))
SEEDS["conc-select-both-directions"] = header(1, 2, [0]) + \
    rep(5, sel([(0, "s"), (0, "r")], task=0), sel([(0, "s"), (0, "r")], task=1))
SEEDS["conc-select-try-race"] = header(2, 2, [1, 0]) + \
    rep(10, sel([(0, "s"), (1, "s")], task=0, try_=True), sel([(0, "r"), (1, "r")], task=1, try_=True))
SEEDS["conc-try-ops-race"] = header(1, 3, [1]) + \
    rep(10, op("try_send", 0), op("try_recv", 1), op("try_send", 2))
SEEDS["conc-cancel-blocked"] = header(1, 4, [0], kinds=(CANCEL, CANCEL_OF_PREV, CANCEL)) + \
    op("recv", 0, ctx=S1) + op("recv", 1, ctx=S2) + sel([(0, "s")], task=2, ctx=S2) + \
    op("yield", 3) + sleep(3) + cancel(1, task=3) + op("send", 3) + op("send", 0) + op("recv", 1)
SEEDS["conc-timeout-vs-send"] = header(1, 2, [0], kinds=(TIMEOUT, TIMEOUT, CANCEL), ms=(1, 2, 0)) + \
    sel([(0, "r"), (DONE1, "r")], task=0) + op("recv", 0, ctx=S2) + sleep(1) + op("send", 1, ctx=S2) + \
    op("send", 1)
SEEDS["conc-ctx-new-vs-cancel"] = header(1, 3, [1], kinds=(CANCEL, CANCEL_OF_PREV, CANCEL)) + \
    rep(6, ctx_new(0, parent=S2, task=0), op("send", 0, ctx=P0), ctx_new(1, parent=S1, timeout=True, task=1),
        op("recv", 1, ctx=P1)) + cancel(1, task=2, cause=True) + rep(3, ctx_new(0, parent=S1, task=2))
SEEDS["conc-after-func-vs-cancel"] = header(1, 3, [0], kinds=(CANCEL, TIMEOUT, CANCEL), ms=(0, 0, 0)) + \
    rep(4, after(1, task=0), after(2, task=1, stop=True), after(3, task=0, stop=True)) + \
    cancel(1, task=2) + cancel(3, task=2) + rep(3, after(1, task=1), after(2, task=0))
SEEDS["conc-value-contexts"] = header(1, 2, [0], kinds=(CANCEL, CANCEL, CANCEL)) + \
    ctx_new(0, parent=S1, value=True, task=0) + ctx_new(0, parent=S1, value=True, timeout=True, ms=3, task=1) + \
    rep(3, op("send", 0, ctx=P0), op("recv", 1, ctx=P0)) + cancel(1, task=1) + op("send", 0, ctx=P0)
SEEDS["conc-deadlock-cut"] = header(2, 2, [0, 0]) + op("recv", 0, 0) + op("recv", 1, 1) + \
    op("send", 0, 1) + op("send", 1, 0)
SEEDS["conc-nil-and-cancel"] = header(1, 2, [0]) + nil(False, 0, ctx=S1) + nil(True, 0, ctx=NONE) + \
    sleep(1) + cancel(1, task=1) + sel([(NIL, "r"), (NIL, "s")], task=0, ctx=S1)
SEEDS["conc-len-under-load"] = header(1, 3, [3]) + rep(8, op("send", 0), op("len", 1), op("recv", 2))
SEEDS["conc-four-channels-four-tasks"] = header(4, 4, [0, 1, 2, 3]) + \
    rep(3, *(op("send", t, t) + sel([((t + 1) % 4, "r"), ((t + 2) % 4, "r")], task=t) for t in range(4))) + \
    b"".join(op("close", t, t) for t in range(4))
SEEDS["conc-fd-writers-readers"] = header(1, 4, [0]) + \
    rep(6, fd("fd_write", 0, 0, 0), fd("fd_write", 1, 0, 0), fd("fd_read", 2, 0, 1), fd("fd_read", 3, 0, 1))
SEEDS["conc-fd-two-way"] = header(2, 2, [0, 0]) + \
    rep(5, fd("fd_write", 0, 0, 0), fd("fd_read", 1, 0, 1), fd("fd_write", 1, 1, 1), fd("fd_read", 0, 1, 0))
SEEDS["conc-fd-close-wakes-readers"] = header(1, 3, [0]) + fd("fd_read", 0, 0, 1) + \
    fd("fd_wait", 1, 0, 1, events=0) + sleep(2) + sleep(2) + fd("fd_close", 2, 0, 1) + \
    fd("fd_write", 2, 0, 0) + fd("fd_read", 0, 0, 1) + fd("fd_ref", 1, 0, 1)
SEEDS["conc-fd-peer-close"] = header(1, 3, [0]) + rep(3, fd("fd_write", 0, 0, 0)) + \
    fd("fd_close", 0, 0, 0) + rep(5, fd("fd_read", 1, 0, 1)) + fd("fd_write", 2, 0, 1) + \
    fd("fd_wait", 2, 0, 1, events=2)
SEEDS["conc-fd-deadlines"] = header(1, 3, [0], kinds=(TIMEOUT, TIMEOUT, CANCEL), ms=(0, 1, 0)) + \
    rep(4, fd("fd_read", 0, 0, 1, ctx=S1), fd("fd_read", 1, 0, 1, ctx=S2), fd("fd_write", 2, 0, 0),
        sleep(2)) + cancel(3, task=2) + fd("fd_read", 0, 0, 1, ctx=S3)


def random_program(rng, nops, ops=CHAN_OPS):
    nchan, ntask = rng.randint(1, 4), rng.randint(1, 4)
    out = header(nchan, ntask, [rng.randint(0, 3) for _ in range(4)],
                 [rng.randint(0, 3) for _ in range(3)], [rng.randint(0, 3) for _ in range(3)])
    for _ in range(nops):
        b = rng.randrange(256) & 0xC0 | rng.randrange(len(ops))
        out += bytes([b, rng.randrange(256)])
        if b & 0x3F in (OP["select"], OP["select_try"]):
            out += bytes(rng.randrange(16) for _ in range(4))
    return out


for i in range(8):
    SEEDS["random-%02d" % i] = random_program(random.Random(1000 + i), 8 + 6 * i)
for i in range(4):
    SEEDS["random-fd-%02d" % i] = random_program(random.Random(2000 + i), 12 + 8 * i, OPS)


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "corpus")
    os.makedirs(outdir, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
    print("%d seeds written to %s" % (len(SEEDS), outdir))


if __name__ == "__main__":
    main()
