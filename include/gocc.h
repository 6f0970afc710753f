/**
 * @file gocc.h
 * gocc.h - the one public header of libgocc: Go's concurrency model for C11.
 *
 * Tasks (goroutines: coroutines on a few worker threads), channels with direct handoff,
 * select, context cancellation trees and one shared timer thread. Every
 * blocking call takes a context and is woken by its cancellation directly.
 *
 * This header is the contract: the names, argument order, return values
 * and behaviour written here are what programs may rely on (the README's
 * Versioning section says what may change between versions). Where it is
 * silent, libgocc does what a Go programmer moving to C would expect.
 *
 * Conventions:
 *  - Functions that can fail return int: 0 or a NEGATIVE errno (GOCC_E*);
 *    gocc_strerror gives Go's wording.
 *  - Constructors return a pointer, or NULL with errno set (ENOMEM, EINVAL).
 *  - Misuse that Go answers with a panic (send on a closed channel, closing
 *    a closed channel, a negative WaitGroup counter, releasing more
 *    semaphore weight than is held) returns an error and changes nothing.
 *    No function aborts the process on bad input.
 *  - Times are int64_t nanoseconds on the monotonic clock.
 *  - Reference-counted objects (channels, contexts) start with one reference
 *    owned by the creator.
 *  - Every blocking call takes a gocc_ctx_t *ctx as its cancellation source;
 *    NULL means "never cancelled: block until done". When the context is
 *    done the call returns gocc_ctx_err(ctx) and has had no effect.
 *  - Task functions take their context first (gocc_fn), as Go's rule says.
 *
 * Rules that hold for every module (the tests name them):
 *  - NULL: a NULL object pointer makes a function return GOCC_EINVAL (or do
 *    nothing, for void functions and release/free), never crash. Two NULLs
 *    mean something instead: the NULL channel is Go's nil channel, the NULL
 *    context the background context.
 *  - A context already done wins: a blocking call whose context is already
 *    done when it starts returns the context's error and has no effect, even
 *    if it could have completed at once (as x/sync's semaphore does). Once
 *    blocked, whichever happens first wins. The one exception is
 *    gocc_workpool_shutdown, which always stops the pool: with a context
 *    already done it is a forced shutdown at once.
 *  - Nothing can ever proceed: a call that could only wait for its context
 *    (send or receive on a NULL channel, gocc_select with no cases or only
 *    NULL-channel cases, and the few cases each module names) returns
 *    GOCC_EINVAL at once when the context can never be done (NULL, or any
 *    context whose gocc_ctx_done is NULL), instead of hanging forever.
 *  - Task accounting: gocc_tasks_live() counts every task any part of the
 *    library starts (gocc_go, groups, worker-pool jobs, after_func,
 *    gocc_chan_merge) from before the starting call returns until after its
 *    function has returned; a caller that sees the count drop sees all of
 *    the task's writes. What the runtime runs for itself is not counted:
 *    the timer thread, idle cached threads, worker-pool workers waiting for
 *    a job.
 *  - Sleep and timers never lie: a call that needs a timer and cannot get
 *    one (no memory, no timer thread) returns GOCC_ENOMEM or GOCC_EAGAIN; it
 *    never reports a sleep or a deadline that did not happen.
 *
 * Link with `pkg-config --libs gocc` (or `-lgocc -pthread`).
 */
#ifndef GOCC_H
#define GOCC_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h> /* struct sockaddr, socklen_t (I/O) */
#include <sys/types.h>  /* ssize_t (I/O) */

#ifdef __cplusplus
extern "C" {
#endif

/** Marks a public symbol: exported from the shared library, hidden otherwise. */
#if defined(_WIN32)
#define GOCC_API
#elif defined(__GNUC__) && __GNUC__ >= 4
#define GOCC_API __attribute__((visibility("default")))
#else
#define GOCC_API
#endif

/**
 * Marks a constructor whose result must be used: a NULL it returns (no
 * memory, a bad argument) passed on unchecked is a silent bug (a NULL
 * context means "never cancelled": a bounded wait becomes a hang). C23 and
 * C++17 spell it [[nodiscard]]; GCC and Clang warn_unused_result (which a
 * cast to void does not silence: check the result); empty elsewhere.
 */
#if defined(__cplusplus) && defined(__has_cpp_attribute)
#if __has_cpp_attribute(nodiscard) && __cplusplus >= 201703L
#define GOCC_NODISCARD [[nodiscard]]
#endif
#endif
#if !defined(GOCC_NODISCARD) && defined(__GNUC__)
#define GOCC_NODISCARD __attribute__((warn_unused_result))
#endif
#if !defined(GOCC_NODISCARD)
#define GOCC_NODISCARD
#endif

/** @name Version */
/** @{ */
#define GOCC_VERSION_MAJOR 0 /**< major version of this header (semantic versioning) */
#define GOCC_VERSION_MINOR 1 /**< minor version of this header */
#define GOCC_VERSION_PATCH 0 /**< patch version of this header */
/**
 * The library's version as "MAJOR.MINOR.PATCH" (that of the linked library).
 * @return the version string, static; never NULL.
 */
GOCC_API const char *gocc_version(void);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Conventions: error codes, time */
/** @{ */

#define GOCC_OK 0                   /**< success */
#define GOCC_ECLOSED (-EPIPE)       /**< channel closed / send on closed channel */
#define GOCC_ECANCELED (-ECANCELED) /**< context canceled */
#define GOCC_EDEADLINE (-ETIMEDOUT) /**< context deadline exceeded */
#define GOCC_EAGAIN (-EAGAIN)       /**< would block / queue full / no thread */
#define GOCC_ENOMEM (-ENOMEM)       /**< out of memory */
#define GOCC_EINVAL (-EINVAL)       /**< invalid argument or misuse */
#define GOCC_ESHUTDOWN (-ESHUTDOWN) /**< the pool is shut down */

#define GOCC_NANOSECOND 1LL        /**< one nanosecond */
#define GOCC_MICROSECOND 1000LL    /**< one microsecond in ns */
#define GOCC_MILLISECOND 1000000LL /**< one millisecond in ns */
#define GOCC_SECOND 1000000000LL   /**< one second in ns */

/**
 * Text for an error code, in Go's wording ("context canceled", ...).
 * @param err a GOCC_E* code (or any negative errno).
 * @return a static string; never NULL. Unknown codes use strerror(-err).
 */
GOCC_API const char *gocc_strerror(int err);

/**
 * Nanoseconds on the monotonic clock (CLOCK_MONOTONIC).
 * @return nanoseconds since an arbitrary start (never negative, never
 *         decreasing).
 */
GOCC_API int64_t gocc_now(void);

/** @} */

/** A context (Go's context.Context): cancellation, deadline and values;
 *  reference-counted, opaque. */
typedef struct gocc_ctx gocc_ctx_t;
/** A channel of fixed-size elements; reference-counted, opaque. */
typedef struct gocc_chan gocc_chan_t;

/**
 * A task function: context first, as Go's rule says. A non-zero return is
 * the task's error (ignored by gocc_go; groups collect it).
 */
typedef int (*gocc_fn)(gocc_ctx_t *ctx, void *arg);

/* ------------------------------------------------------------------------ */
/** @name Tasks (goroutines) */
/** @{ */

/**
 * Run fn(ctx, arg) concurrently as a task (Go's `go` statement).
 *
 * A task is a coroutine with its own stack, run by one of the runtime's
 * worker threads (see gocc_runtime_config_t.procs); it may resume on
 * another worker after any libgocc call that can block. Starting one makes
 * no system call when a cached task record and stack exist. The task holds
 * a reference to @p ctx (NULL means background) until fn returns. The task
 * is counted in gocc_tasks_live() before this call returns.
 *
 * @return 0; GOCC_EINVAL if fn is NULL; GOCC_ENOMEM (no task record or
 *         stack); GOCC_EAGAIN when no thread could be made to run it (the
 *         runtime has no worker yet and pthread_create failed, or the
 *         max_threads limit is reached; gocc_strerror says "no thread
 *         could be started"). No task started in any of these cases.
 */
GOCC_API int gocc_go(gocc_fn fn, gocc_ctx_t *ctx, void *arg);

/** Options for gocc_go_opts; a zeroed struct means the defaults. */
typedef struct gocc_task_opts {
    /** Bytes reserved for the task's stack (address space, committed as
     *  touched; rounded up to whole pages); 0 = the runtime default
     *  (gocc_runtime_config_t.stack_size). */
    size_t stack_size;
    /** Run on an OS thread of its own, which runs nothing else while the
     *  task lives (Go's LockOSThread): thread-locals, signal masks and
     *  thread identity behave as on any thread, and its blocking calls
     *  sleep in the kernel. For tasks that block in foreign code for long. */
    bool own_thread;
    /** The task's name from its start (copied; first 31 bytes), or NULL.
     *  For an own_thread task it is also the OS thread name. */
    const char *name;
} gocc_task_opts_t;

/**
 * gocc_go with options; @p opts NULL means defaults.
 * @return as gocc_go; GOCC_EINVAL or GOCC_ENOMEM for a stack size the
 *         runtime cannot provide (then no task starts).
 */
GOCC_API int gocc_go_opts(gocc_fn fn, gocc_ctx_t *ctx, void *arg, const gocc_task_opts_t *opts);

/**
 * Let other ready tasks run before the caller continues (Go's
 * runtime.Gosched). From a thread that is not a coroutine task (main, the
 * program's own threads, own_thread tasks) it is sched_yield().
 */
GOCC_API void gocc_yield(void);

/**
 * Number of tasks started by any part of the library whose function has not
 * returned yet. Exact. A drop is release/acquire ordered: a caller that sees
 * it also sees every write the finished task made.
 * @return the count; 0 when no task is running.
 */
GOCC_API size_t gocc_tasks_live(void);

/** max_threads value that removes the limit on task threads. */
#define GOCC_RUNTIME_UNLIMITED SIZE_MAX

/** Runtime settings; a zero field means "keep the current value". */
typedef struct gocc_runtime_config {
    /** Default task stack reservation (bytes; default 256 KiB, 1 MiB under
     *  sanitizers): address space, of which only touched pages cost
     *  memory. Also the stack of own_thread tasks' threads. */
    size_t stack_size;
    /** How long an idle extra thread (a spare worker, a cached own_thread
     *  thread) waits for work before it exits (ns; default 10 s). */
    int64_t idle_timeout_ns;
    /** Most OS threads the runtime makes for tasks (workers and own_thread
     *  threads, each kind counted on its own); beyond it a task that needs
     *  a new thread gets GOCC_EAGAIN. By default there is no limit but the
     *  OS's (reported as 0); pass GOCC_RUNTIME_UNLIMITED to remove a limit
     *  set earlier. */
    size_t max_threads;
    /** Worker threads running tasks at once (Go's GOMAXPROCS). Read when
     *  the workers start, on first use of the library; default: the CPUs
     *  the process may run on (sched_getaffinity). Changing it later is
     *  GOCC_EINVAL (and applies none of the fields). */
    size_t procs;
    /** A worker that has not come back to its scheduler for this long
     *  (a task blocked in read(2), a long computation) while other tasks
     *  are ready gets help: another thread runs the ready tasks (ns;
     *  default 10 ms). */
    int64_t block_threshold_ns;
} gocc_runtime_config_t;

/**
 * Change runtime settings. May be called at any time, except that
 * @c procs can only be set before first use; a new stack size applies to
 * tasks started afterwards, a new idle timeout to threads that go idle
 * afterwards.
 * @return 0, or GOCC_EINVAL for a NULL @p cfg, a negative time, or a
 *         @c procs change after first use (nothing is applied then).
 */
GOCC_API int gocc_runtime_configure(const gocc_runtime_config_t *cfg);

/** Current runtime settings (defaults filled in) into @p out. */
GOCC_API void gocc_runtime_config_get(gocc_runtime_config_t *out);

/**
 * Number of OS threads that run tasks now: scheduler workers and
 * own_thread threads (running a task or idle).
 * @return the count; 0 before the runtime started or after
 *         gocc_runtime_shutdown.
 */
GOCC_API size_t gocc_runtime_threads(void);

/** Memory functions for every allocation libgocc makes (not stacks: OS
 *  thread stacks are the C library's, task stacks are mapped by libgocc
 *  with mmap). @p ud is passed to each. */
typedef struct gocc_allocator {
    void *(*malloc_fn)(size_t size, void *ud);           /**< as malloc(size) */
    void *(*realloc_fn)(void *p, size_t size, void *ud); /**< as realloc(p, size) */
    void (*free_fn)(void *p, void *ud);                  /**< as free(p) */
    void *ud;                                            /**< passed to each function */
} gocc_allocator_t;

/**
 * Route the library's allocations through @p a (NULL: back to malloc,
 * realloc and free). Call before the library allocates anything, that is
 * before any other libgocc call but gocc_runtime_configure/_config_get,
 * gocc_version and gocc_strerror; memory from one allocator never goes to
 * another's free.
 * @return 0; GOCC_EINVAL (a NULL function in @p a); GOCC_EAGAIN (the
 *         library has allocated already: nothing changed).
 */
GOCC_API int gocc_runtime_set_allocator(const gocc_allocator_t *a);

/**
 * Stop the runtime's own threads and free what it holds, so that a program
 * can end valgrind-clean or dlclose the library with nothing of it running:
 * idle cached threads exit, the I/O poller's epoll instance closes, and
 * the timer thread and the watchdog/signal thread stop when nothing needs
 * them. The runtime starts again on its next
 * use. (The shared library is linked with -z nodelete: dlclose leaves it
 * mapped, because threads that once used it run its per-thread destructors
 * when they exit.)
 *
 * fork(): the child may use libgocc freely for objects it creates. Objects
 * created before the fork may be used in the child only if no other thread
 * was using them at the fork (as with any pthread program); timers,
 * tickers and deadlines armed before the fork do not fire in the child, and
 * gocc_watch_stuck and gocc_dump_on_signal are off there.
 * @return 0 when everything stopped; GOCC_EAGAIN when something still
 *         needs the runtime (tasks live or just finishing, timer objects,
 *         contexts with a deadline or rate limiters not yet freed, object
 *         pools or worker pools alive, descriptor handles (gocc_fd_t) not
 *         yet released, gocc_watch_stuck or
 *         gocc_dump_on_signal on): what could stop did. Nothing is
 *         printed; until a later shutdown succeeds, gocc_dump says what
 *         held this one (a line after the object counts: tasks, busy
 *         threads, timers in use, the watch thread, registered fds).
 */
GOCC_API int gocc_runtime_shutdown(void);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Channels */
/** @{ */

/**
 * Make a channel of @p capacity elements of @p elem_size bytes each.
 * Capacity 0 is unbuffered (a send completes when a receiver takes the
 * value); elem_size 0 makes a signal channel (elem/out may be NULL).
 * Elements are copied by value. Each channel is FIFO: values come out in
 * the order they went in, never lost or duplicated.
 * @return the channel with one reference owned by the caller, or NULL with
 *         errno ENOMEM (or EINVAL when elem_size * capacity overflows).
 */
GOCC_NODISCARD GOCC_API gocc_chan_t *gocc_chan_new(size_t elem_size, size_t capacity);

/** Add a reference. @return @p ch (NULL stays NULL). */
GOCC_API gocc_chan_t *gocc_chan_retain(gocc_chan_t *ch);

/**
 * Drop a reference; the last one frees the channel and any values still
 * buffered. Releasing does not close: a thread blocked on the channel must
 * hold its own reference. NULL does nothing.
 */
GOCC_API void gocc_chan_release(gocc_chan_t *ch);

/**
 * Send a copy of *elem (elem_size bytes). Blocks until a receiver takes it
 * or a buffer slot is free, FIFO among blocked senders.
 * @param ch  the channel; NULL is Go's nil channel: blocks until @p ctx is
 *            done (GOCC_EINVAL at once when ctx can never be done).
 * @param ctx cancellation; NULL = block until done.
 * @return 0; GOCC_ECLOSED (closed before or while blocked: the value was
 *         not delivered); the context's error (the send had no effect);
 *         GOCC_EINVAL (NULL @p elem with elem_size > 0); GOCC_ENOMEM (this
 *         thread's first blocking call could not allocate its wait record).
 */
GOCC_API int gocc_chan_send(gocc_chan_t *ch, const void *elem, gocc_ctx_t *ctx);

/**
 * Receive the oldest value into @p out (NULL discards it). After close,
 * buffered values still drain; then GOCC_ECLOSED with @p out zero-filled.
 * @return 0; GOCC_ECLOSED; the context's error (nothing was taken);
 *         GOCC_ENOMEM as for gocc_chan_send. A NULL channel behaves as in
 *         gocc_chan_send.
 */
GOCC_API int gocc_chan_recv(gocc_chan_t *ch, void *out, gocc_ctx_t *ctx);

/**
 * gocc_chan_send without blocking: GOCC_EAGAIN where it would block
 * (always for a NULL channel). Fails without taking the lock when the
 * answer is plain.
 * @return 0 (sent); GOCC_EAGAIN (it would block, or a NULL channel);
 *         GOCC_ECLOSED (closed: nothing sent); GOCC_EINVAL (NULL @p elem with a
 *         non-zero element size).
 */
GOCC_API int gocc_chan_try_send(gocc_chan_t *ch, const void *elem);

/**
 * gocc_chan_recv without blocking: GOCC_EAGAIN where it would block.
 * @return 0 (received); GOCC_EAGAIN (it would block, or a NULL channel);
 *         GOCC_ECLOSED (closed and drained: @p out zero-filled).
 */
GOCC_API int gocc_chan_try_recv(gocc_chan_t *ch, void *out);

/**
 * Close: blocked receivers get GOCC_ECLOSED (after the buffer drains),
 * blocked senders GOCC_ECLOSED with their value not delivered.
 * @return 0; GOCC_ECLOSED if already closed; GOCC_EINVAL for NULL.
 */
GOCC_API int gocc_chan_close(gocc_chan_t *ch);

/**
 * Number of buffered values (0 for NULL). A snapshot.
 * @return the number of buffered values; 0 for NULL.
 */
GOCC_API size_t gocc_chan_len(gocc_chan_t *ch);

/**
 * Capacity given at creation (0 for NULL).
 * @return the capacity; 0 for NULL.
 */
GOCC_API size_t gocc_chan_cap(gocc_chan_t *ch);

/**
 * Element size given at creation (0 for NULL).
 * @return the element size; 0 for NULL.
 */
GOCC_API size_t gocc_chan_elem_size(const gocc_chan_t *ch);

/**
 * gocc_chan_send that first checks the size of what @p elem points to.
 * @return GOCC_EINVAL (nothing sent) when @p size differs from the
 *         channel's element size (and for a NULL channel: its size is
 *         unknown); otherwise as gocc_chan_send.
 */
GOCC_API int gocc_chan_send_sized(gocc_chan_t *ch, const void *elem, size_t size, gocc_ctx_t *ctx);

/**
 * gocc_chan_recv that first checks the size of @p out's object, as
 * gocc_chan_send_sized.
 * @return GOCC_EINVAL (nothing received) when @p size differs from the
 *         channel's element size, and for a NULL channel; otherwise as
 *         gocc_chan_recv.
 */
GOCC_API int gocc_chan_recv_sized(gocc_chan_t *ch, void *out, size_t size, gocc_ctx_t *ctx);

/**
 * Send *value_ptr, checked against the channel's element size: receiving
 * a timer's int64_t into an int, or sending a struct into a channel of
 * pointers, returns GOCC_EINVAL instead of copying the wrong number of
 * bytes. @p value_ptr must point to a complete type.
 */
#define GOCC_SEND(ch, value_ptr, ctx) \
    gocc_chan_send_sized((ch), (value_ptr), sizeof *(value_ptr), (ctx))
/** Receive into *value_ptr, size-checked as GOCC_SEND. */
#define GOCC_RECV(ch, value_ptr, ctx) \
    gocc_chan_recv_sized((ch), (value_ptr), sizeof *(value_ptr), (ctx))

/**
 * Call @p dtor(elem, ud) for each value still buffered when the channel is
 * freed (its last release), oldest first, so pointers left in the buffer
 * do not leak. Set it before the channel is shared; NULL removes it.
 * @return 0, or GOCC_EINVAL for a NULL channel.
 */
GOCC_API int gocc_chan_set_elem_destructor(gocc_chan_t *ch, void (*dtor)(void *elem, void *ud),
                                           void *ud);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Select */
/** @{ */

/** Direction of a select case (gocc_case_t::dir). */
enum { GOCC_RECV = 1, GOCC_SEND = 2 };

/** One case of a select. */
typedef struct gocc_case {
    gocc_chan_t *ch; /**< NULL: this case is never ready (nil channel) */
    int dir;         /**< GOCC_RECV or GOCC_SEND */
    void *elem;      /**< SEND: value to send; RECV: where to store, may be NULL */
    bool ok;         /**< out: true if the op completed with a value, false if
                          it completed because ch is closed */
} gocc_case_t;

/**
 * Wait until one case can proceed and do exactly that one operation.
 *
 * Ready cases are chosen uniformly at random. A closed channel makes its
 * case ready: RECV gets ok=false and a zero-filled elem; SEND is chosen with
 * ok=false and nothing sent. Send and receive cases on the same channel
 * are allowed. Channels are locked in address order (no deadlock between
 * selects) and the context's cancellation wakes the select directly.
 *
 * @return the index of the case that proceeded; the context's error;
 *         GOCC_EINVAL for a bad case (dir, NULL cases with n > 0, a SEND
 *         case with NULL elem on a channel of elem_size > 0), or when
 *         nothing can ever proceed (n == 0 or only nil cases) and ctx can
 *         never be done; GOCC_ENOMEM when n is large and memory ran out.
 *         With a context that can be done, n == 0 waits for it (Go's
 *         `select {}`).
 */
GOCC_API int gocc_select(gocc_case_t *cases, size_t n, gocc_ctx_t *ctx);

/**
 * Go's select with a default branch: the index of a ready case, else
 * GOCC_EAGAIN.
 * @return the index of the case that proceeded (check its ok); GOCC_EAGAIN when
 *         none is ready (also for no cases); GOCC_EINVAL (NULL @p cases with n
 *         > 0, a case direction that is neither GOCC_SEND nor GOCC_RECV, or too
 *         many cases); GOCC_ENOMEM (no memory for the poll order of many
 *         cases).
 */
GOCC_API int gocc_select_try(gocc_case_t *cases, size_t n);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Contexts */
/** @{ */

/**
 * The root context: never done; retain/release are no-ops.
 * @return the background context, static; never NULL.
 */
GOCC_API gocc_ctx_t *gocc_ctx_background(void);

/**
 * A child of @p parent (NULL = background) that is done when cancelled or
 * when the parent is done. Retains the parent. A child of a done parent is
 * born done. Owner pattern: create, use, gocc_ctx_cancel, gocc_ctx_release.
 * @return the context (one reference), or NULL with errno ENOMEM.
 */
GOCC_NODISCARD GOCC_API gocc_ctx_t *gocc_ctx_with_cancel(gocc_ctx_t *parent);

/**
 * with_deadline(parent, gocc_now() + timeout_ns).
 * @return as gocc_ctx_with_deadline: a new context (one reference, the
 *         caller's), or NULL with errno ENOMEM, or EAGAIN when no timer thread
 *         could be started. A NULL result is not a context to pass on: NULL
 *         means background, never cancelled.
 */
GOCC_NODISCARD GOCC_API gocc_ctx_t *gocc_ctx_with_timeout(gocc_ctx_t *parent, int64_t timeout_ns);

/**
 * A cancellable child that becomes done with GOCC_EDEADLINE at
 * @p deadline_ns (monotonic), or earlier when the parent's deadline is
 * earlier. A deadline in the past is done at once. Driven by the runtime's
 * one timer thread.
 * @return the context, or NULL with errno ENOMEM / EAGAIN (no timer thread).
 */
GOCC_NODISCARD GOCC_API gocc_ctx_t *gocc_ctx_with_deadline(gocc_ctx_t *parent, int64_t deadline_ns);

/**
 * A child carrying @p key -> @p value (keys compare by pointer). Done when
 * the parent is; cannot be cancelled itself. The value is borrowed: it must
 * outlive the context. A NULL key is misuse (Go panics on a nil key): it
 * makes nothing and leaves the parent as it was.
 * @return the context (one reference), or NULL with errno EINVAL (NULL
 *         @p key) or ENOMEM.
 */
GOCC_NODISCARD GOCC_API gocc_ctx_t *gocc_ctx_with_value(gocc_ctx_t *parent, const void *key,
                                                        void *value);

/**
 * A child with the parent's values that is never done.
 * @return a new context (one reference, the caller's), or NULL with errno
 *         ENOMEM.
 */
GOCC_NODISCARD GOCC_API gocc_ctx_t *gocc_ctx_without_cancel(gocc_ctx_t *parent);

/**
 * Cancel @p ctx and every descendant with GOCC_ECANCELED. Idempotent, any
 * thread, also from a task waiting on ctx. Does nothing for background,
 * value and without_cancel contexts, and for NULL.
 */
GOCC_API void gocc_ctx_cancel(gocc_ctx_t *ctx);

/** As gocc_ctx_cancel, recording @p cause (0 = no cause) for gocc_ctx_cause
 *  on ctx and its descendants. A cause is any int the caller chooses: a
 *  negative errno or an application code. */
GOCC_API void gocc_ctx_cancel_cause(gocc_ctx_t *ctx, int cause);

/**
 * 0 while not done, else GOCC_ECANCELED or GOCC_EDEADLINE. One atomic
 * load. NULL is background (0).
 * @return 0; GOCC_ECANCELED; GOCC_EDEADLINE.
 */
GOCC_API int gocc_ctx_err(gocc_ctx_t *ctx);

/**
 * The cause given to the cancellation that made ctx done, else err.
 * @return 0 while not done; the cause given to gocc_ctx_cancel_cause; else as
 *         gocc_ctx_err.
 */
GOCC_API int gocc_ctx_cause(gocc_ctx_t *ctx);

/**
 * A channel closed when ctx is done (made on first call), borrowed: valid
 * while the caller holds ctx. NULL when ctx can never be done (background,
 * without_cancel and their value children), or with errno ENOMEM.
 * @return the done channel (borrowed); NULL when ctx can never be done; NULL
 *         with errno ENOMEM when it could not be made.
 */
GOCC_API gocc_chan_t *gocc_ctx_done(gocc_ctx_t *ctx);

/**
 * True, with *deadline_ns set (may be NULL), if ctx has a deadline.
 * @return true if ctx or an ancestor it follows has a deadline; false otherwise
 *         (also for NULL).
 */
GOCC_API bool gocc_ctx_deadline(gocc_ctx_t *ctx, int64_t *deadline_ns);

/**
 * The value for @p key on ctx or its nearest ancestor, else NULL (always
 * NULL for a NULL @p key: no context carries one).
 * @return the value (may itself be NULL); NULL when no context on the way up
 *         carries @p key.
 */
GOCC_API void *gocc_ctx_value(gocc_ctx_t *ctx, const void *key);

/** Add a reference. @return ctx. */
GOCC_API gocc_ctx_t *gocc_ctx_retain(gocc_ctx_t *ctx);

/** Drop a reference (does NOT cancel). The memory goes with the last
 *  reference; children and tasks hold their own. NULL does nothing. */
GOCC_API void gocc_ctx_release(gocc_ctx_t *ctx);

/** A pending gocc_ctx_after_func, for gocc_ctx_after_func_stop; opaque. */
typedef struct gocc_after_func gocc_after_func_t;

/**
 * Run fn(arg) in its own task once ctx is done (Go 1.21 context.AfterFunc);
 * at once if it is already done. A pending function holds a reference to
 * the context it waits on. If no task can be started, fn runs on the thread
 * that cancelled. The task is started by whichever cancellation made ctx
 * done (a deadline: the timer thread), so a gocc_ctx_cancel that finds ctx
 * already done may return before fn has begun.
 * On a context that can never be done (gocc_ctx_done gives NULL) nothing
 * is registered that could run; the handle's first stop returns true.
 * @param stop_handle out, may be NULL: a handle owned by the context, valid
 *        while the caller holds its reference to ctx.
 * @return 0, GOCC_EINVAL (NULL ctx or fn), GOCC_ENOMEM.
 */
GOCC_API int gocc_ctx_after_func(gocc_ctx_t *ctx, void (*fn)(void *), void *arg,
                                 gocc_after_func_t **stop_handle);

/**
 * Stop a pending after_func: true if this call stopped it from running
 * (the first stop before it started); false afterwards or for NULL.
 * @return true if this call stopped the function; false if it already started
 *         or was stopped, or for NULL.
 */
GOCC_API bool gocc_ctx_after_func_stop(gocc_after_func_t *h);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Timers and tickers (Go 1.23 semantics) */
/** @{ */

/** A one-shot timer (Go's time.Timer); opaque, freed by gocc_timer_free. */
typedef struct gocc_timer gocc_timer_t;
/** A periodic ticker (Go's time.Ticker); opaque, freed by gocc_ticker_free. */
typedef struct gocc_ticker gocc_ticker_t;

/**
 * A timer that delivers one int64_t (the fire time, gocc_now() clock) on its
 * channel after @p d_ns (<= 0: at once). All timers share one timer thread.
 * @return the timer, or NULL with errno ENOMEM / EAGAIN.
 */
GOCC_NODISCARD GOCC_API gocc_timer_t *gocc_timer_new(int64_t d_ns);

/**
 * The timer's channel (capacity 1), borrowed: valid until gocc_timer_free
 * unless retained.
 * @return the channel (borrowed); NULL for NULL @p t.
 */
GOCC_API gocc_chan_t *gocc_timer_chan(gocc_timer_t *t);

/**
 * Stop the timer. A fire whose value was not received yet is discarded:
 * after stop returns no stale value can be received.
 * @return true if it stopped a pending fire (armed or sent-but-unreceived);
 *         false if the value was received, the timer was already stopped, or t is NULL.
 */
GOCC_API bool gocc_timer_stop(gocc_timer_t *t);

/** Stop, then arm to fire after @p d_ns. @return what stop would have
 *  returned. */
GOCC_API bool gocc_timer_reset(gocc_timer_t *t, int64_t d_ns);

/** Stop and free. The channel lives on while retained elsewhere. */
GOCC_API void gocc_timer_free(gocc_timer_t *t);

/**
 * A ticker: its channel (capacity 1) receives the tick time every
 * @p period_ns; ticks are dropped for a slow receiver.
 * @return the ticker, or NULL with errno EINVAL (period <= 0), ENOMEM, EAGAIN.
 */
GOCC_NODISCARD GOCC_API gocc_ticker_t *gocc_ticker_new(int64_t period_ns);

/**
 * The ticker's channel, borrowed like gocc_timer_chan.
 * @return the channel (borrowed); NULL for NULL @p t.
 */
GOCC_API gocc_chan_t *gocc_ticker_chan(gocc_ticker_t *t);

/** Change the period (and restart it); discards a pending tick.
 *  @return 0 or GOCC_EINVAL (NULL, period <= 0). */
GOCC_API int gocc_ticker_reset(gocc_ticker_t *t, int64_t period_ns);

/** Stop ticking; discards a pending tick. Reset starts it again. */
GOCC_API void gocc_ticker_stop(gocc_ticker_t *t);

/** Stop and free. */
GOCC_API void gocc_ticker_free(gocc_ticker_t *t);

/**
 * Sleep @p d_ns (<= 0 returns at once), woken early by ctx's cancellation.
 * Needs the runtime's timer thread: when it cannot be had the call says so
 * at once and never passes that off as a finished sleep.
 * @return 0 once the full duration has passed; the context's error;
 *         GOCC_ENOMEM (no memory for the wait or its timer) / GOCC_EAGAIN
 *         (the timer thread could not be started), having slept nothing.
 */
GOCC_API int gocc_sleep(int64_t d_ns, gocc_ctx_t *ctx);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Error groups (structured tasks; golang.org/x/sync/errgroup) */
/** @{ */

/** An error group (x/sync errgroup.Group); opaque, freed by gocc_group_free. */
typedef struct gocc_group gocc_group_t;

/**
 * A group of tasks working on one job. Its context derives from @p parent
 * (NULL = background) and is cancelled with the first task error as its
 * cause, and when gocc_group_wait returns.
 * @return the group, or NULL with errno ENOMEM.
 */
GOCC_NODISCARD GOCC_API gocc_group_t *gocc_group_new(gocc_ctx_t *parent);

/**
 * The group's context, borrowed: valid until gocc_group_free.
 * @return the group's context (borrowed); NULL for NULL @p g.
 */
GOCC_API gocc_ctx_t *gocc_group_ctx(gocc_group_t *g);

/**
 * Bound the number of tasks running at once (n < 0: no limit; 0 admits
 * nothing). @return 0, or GOCC_EINVAL while tasks are active or for NULL.
 */
GOCC_API int gocc_group_set_limit(gocc_group_t *g, int n);

/**
 * Run fn(group_ctx, arg) as a task of the group, on a cached runtime thread.
 * Blocks while the limit is reached, until a slot frees or the PARENT
 * context is done. A non-zero return of fn is a task error: the first one
 * cancels the group context (cause = that error) and is what wait returns.
 * With a free slot (always, without a limit) the task starts even when the
 * parent or the group context is already done: it runs and sees the done
 * context, as errgroup.Go does. Only a call that would have to wait for a
 * slot answers to the parent: at once when the parent is already done.
 * @return 0; the parent context's error (no free slot, and the parent was
 *         done or became done while waiting; no task started); GOCC_EINVAL
 *         (NULL g or fn, or limit 0 with a parent that can never be done);
 *         GOCC_ENOMEM / GOCC_EAGAIN when no task could be started.
 */
GOCC_API int gocc_group_go(gocc_group_t *g, gocc_fn fn, void *arg);

/**
 * gocc_group_go that returns GOCC_EAGAIN instead of blocking at the limit
 * (whatever the state of the parent); with a free slot it starts the task
 * as go does, also under a done parent.
 * @return 0; GOCC_EAGAIN (the limit is reached; no task started); GOCC_EINVAL
 *         (NULL g or fn); GOCC_ENOMEM / GOCC_EAGAIN when no task could be
 *         started.
 */
GOCC_API int gocc_group_try_go(gocc_group_t *g, gocc_fn fn, void *arg);

/**
 * Wait for every task started so far, cancel the group context, and return
 * the first non-zero task error of the group's whole life (0 if none). The
 * group stays usable: later tasks run with the cancelled context.
 * @return 0 or the first task error; GOCC_EINVAL (NULL @p g); GOCC_ENOMEM (the
 *         calling thread could not get its wait record: nothing was waited
 *         for).
 */
GOCC_API int gocc_group_wait(gocc_group_t *g);

/** Wait for running tasks (if any), then free the group. NULL does nothing. */
GOCC_API void gocc_group_free(gocc_group_t *g);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name WaitGroup and Once (value types: on the stack or static) */
/** @{ */

/**
 * Go's sync.WaitGroup. Initialise with GOCC_WAITGROUP_INIT (or zero it).
 * The fields are private: use the functions. Reusable once wait returned.
 * A waitgroup on the stack may go out of scope as soon as wait returned 0:
 * the last done stores the final state and touches nothing after it.
 */
typedef struct gocc_waitgroup {
    uint64_t state_; /**< private: counter << 1 | lock bit (atomic) */
    void *waiters_;  /**< private: parked waiters */
} gocc_waitgroup_t;
/** Static initialiser of a gocc_waitgroup_t (counter 0). */
#define GOCC_WAITGROUP_INIT \
    { 0, NULL }

/** Add @p delta (may be negative) to the counter. @return 0, or GOCC_EINVAL
 *  (NULL, or the counter would go negative or past 2^62 - 1: nothing
 *  changes). */
GOCC_API int gocc_waitgroup_add(gocc_waitgroup_t *wg, int64_t delta);

/** add(wg, -1). Misuse (counter already 0) is ignored. */
GOCC_API void gocc_waitgroup_done(gocc_waitgroup_t *wg);

/**
 * Block until the counter is zero or @p ctx is done (a Go extension).
 * @return 0, the context's error, GOCC_EINVAL (NULL), GOCC_ENOMEM.
 */
GOCC_API int gocc_waitgroup_wait(gocc_waitgroup_t *wg, gocc_ctx_t *ctx);

/** Go's sync.Once / OnceValue. Initialise with GOCC_ONCE_INIT (or zero it). */
typedef struct gocc_once {
    uint32_t state_; /**< private: new / running / done, lock bit (atomic) */
    int result_;     /**< private: fn's result */
    void *waiters_;  /**< private: callers waiting for the first */
} gocc_once_t;
/** Static initialiser of a gocc_once_t (not yet run). */
#define GOCC_ONCE_INIT \
    { 0, 0, NULL }

/**
 * Run fn(arg) exactly once across all threads. Every call returns the first
 * call's result; concurrent callers block until it is known. After that the
 * fast path is one atomic load. fn must not call gocc_once_do on the same
 * once (it would wait for itself, as in Go).
 * @return fn's result; GOCC_EINVAL for NULL o or fn; GOCC_ENOMEM when fn is
 *         still running in another caller and this thread could not get the
 *         record it waits with (fn's result is not known yet: call again).
 */
GOCC_API int gocc_once_do(gocc_once_t *o, int (*fn)(void *arg), void *arg);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Weighted semaphore (golang.org/x/sync/semaphore) */
/** @{ */

/** A weighted semaphore; opaque, freed by gocc_sem_free. */
typedef struct gocc_sem gocc_sem_t;

/** A semaphore of total weight @p size (>= 0). @return it, or NULL with
 *  errno EINVAL / ENOMEM. */
GOCC_NODISCARD GOCC_API gocc_sem_t *gocc_sem_new(int64_t size);

/**
 * Take weight @p n, waiting in strict FIFO order: a large request at the head
 * is not overtaken by later small ones. A request larger than the size waits
 * until ctx is done. A cancelled acquire leaves no weight taken and wakes
 * whoever it held up. Weight 0 succeeds at once unless someone waits.
 * @return 0; the context's error; GOCC_EINVAL (NULL, n < 0, or n > size with
 *         a context that can never be done); GOCC_ENOMEM.
 */
GOCC_API int gocc_sem_acquire(gocc_sem_t *s, int64_t n, gocc_ctx_t *ctx);

/**
 * Take @p n without waiting; fails while anyone waits.
 * @return true if @p n were taken; false (nothing taken) when they are not
 *         free, anyone waits, @p n < 0 or @p s is NULL.
 */
GOCC_API bool gocc_sem_try_acquire(gocc_sem_t *s, int64_t n);

/** Give back @p n. @return 0, or GOCC_EINVAL (more than held, n < 0, NULL). */
GOCC_API int gocc_sem_release(gocc_sem_t *s, int64_t n);

/** Free (no thread may be waiting on it). NULL does nothing. */
GOCC_API void gocc_sem_free(gocc_sem_t *s);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Worker pool (bounded queue, backpressure, load shedding) */
/** @{ */

/** A worker pool; opaque, freed by gocc_workpool_free. */
typedef struct gocc_workpool gocc_workpool_t;

/**
 * A snapshot of a pool's counters, all taken at one instant, so that
 * submitted == completed + failed + queued + running + dropped.
 */
typedef struct gocc_workpool_stats {
    uint64_t submitted; /**< accepted by submit/try_submit */
    uint64_t rejected;  /**< shed by try_submit (queue full) */
    uint64_t completed; /**< tasks that returned 0 */
    uint64_t failed;    /**< tasks that returned non-zero */
    size_t queued;      /**< accepted, not started (<= queue_cap) */
    size_t running;     /**< started, not returned */
    size_t workers;     /**< worker threads the pool has now (0 after shutdown) */
    uint64_t dropped;   /**< accepted but never started: a forced shutdown (added) */
} gocc_workpool_stats_t;

/** Options for gocc_workpool_new_opts: an adaptive size, an idle timeout
 *  and an error callback, beyond gocc_workpool_new's fixed size. */
typedef struct gocc_workpool_options {
    size_t min_workers;      /**< always kept (started at creation) */
    size_t max_workers;      /**< grown to when the queue backs up (>= min, >= 1) */
    size_t queue_cap;        /**< queue bound; 0: hand-off to an idle worker only */
    int64_t idle_timeout_ns; /**< a worker above min exits after this idle (0: 1 s) */
    /** Called on the worker's thread after a task returned err != 0 (may be NULL). */
    void (*on_error)(void *ud, int err, gocc_fn fn, void *arg);
    void *ud; /**< passed to on_error */
} gocc_workpool_options_t;

/**
 * A pool of @p workers threads (fixed size) running tasks from a queue of at
 * most @p queue_cap entries. Tasks run as fn(pool_ctx, arg); the pool context
 * derives from @p parent. Workers count in gocc_tasks_live only while they
 * run a task. @p queue_cap 0 is valid: a submit then succeeds only by
 * handing the task straight to an idle worker (one the pool may still start
 * counts as idle), and try_submit sheds when there is none. @return the pool, or NULL with errno EINVAL (workers == 0),
 * ENOMEM or EAGAIN (no thread).
 */
GOCC_NODISCARD GOCC_API gocc_workpool_t *gocc_workpool_new(size_t workers, size_t queue_cap,
                                                           gocc_ctx_t *parent);

/**
 * An adaptive pool: min_workers always, up to max_workers while the queue
 * backs up; surplus workers exit after idle_timeout_ns.
 * @return a new pool, or NULL with errno EINVAL (NULL @p opts, max_workers 0,
 *         min_workers above max_workers, a negative idle_timeout_ns), ENOMEM,
 *         or EAGAIN (a min worker could not be started).
 */
GOCC_NODISCARD GOCC_API gocc_workpool_t *gocc_workpool_new_opts(const gocc_workpool_options_t *opts,
                                                                gocc_ctx_t *parent);

/**
 * Queue fn(pool_ctx, arg). Blocks while the queue is full (backpressure)
 * until accepted, @p ctx is done, or the pool shuts down. Safe to call from
 * the pool's own tasks (shutdown wakes a blocked submitter).
 * @return 0; the context's error (not accepted); GOCC_ESHUTDOWN;
 *         GOCC_EINVAL (NULL p or fn); GOCC_ENOMEM; GOCC_EAGAIN when the pool
 *         has no worker and none could be started (nothing was queued).
 */
GOCC_API int gocc_workpool_submit(gocc_workpool_t *p, gocc_fn fn, void *arg, gocc_ctx_t *ctx);

/**
 * Queue without blocking: GOCC_EAGAIN (counted in rejected) when full or
 * when no worker could be started; GOCC_ESHUTDOWN; GOCC_EINVAL (NULL p or
 * fn).
 * @return 0 (queued or handed to a worker); GOCC_EAGAIN (full, or no worker
 *         could be started); GOCC_ESHUTDOWN; GOCC_EINVAL (NULL p or fn).
 */
GOCC_API int gocc_workpool_try_submit(gocc_workpool_t *p, gocc_fn fn, void *arg);

/**
 * Stop accepting, run everything already queued, wait for every worker to
 * exit. If @p ctx ends first (or is already done): cancel the pool context
 * (running tasks see it), drop the tasks that never started (counted in
 * dropped), wait for the workers anyway, and return the context's error.
 * Idempotent; concurrent callers all wait. @return 0 or the context's error;
 * GOCC_EINVAL for NULL, or when called from one of the pool's own tasks (it
 * would wait for itself; nothing changes).
 */
GOCC_API int gocc_workpool_shutdown(gocc_workpool_t *p, gocc_ctx_t *ctx);

/** Fill @p out with one consistent snapshot of the counters. */
GOCC_API void gocc_workpool_stats(gocc_workpool_t *p, gocc_workpool_stats_t *out);

/** Shut down (waiting, no deadline) if that was not done, then free. */
GOCC_API void gocc_workpool_free(gocc_workpool_t *p);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Object pool (sync.Pool) */
/** @{ */

/** An object pool (Go's sync.Pool); opaque, freed by gocc_pool_free. */
typedef struct gocc_pool gocc_pool_t;

/** Most objects a pool keeps however many are put (the rest go to free_fn). */
#define GOCC_POOL_MAX_KEPT 65536

/**
 * A pool of reusable objects. get returns a cached object, else
 * new_fn(ud), else NULL. Each thread keeps a small private cache (a hot
 * get/put pair on one thread takes no shared lock); surplus goes to a shared
 * bounded depot and beyond that to free_fn(obj, ud). Objects unused for two
 * trims are freed (trims run every few seconds on the timer thread, or by
 * gocc_pool_trim). The pool is not a cache: any object may be dropped.
 * @return the pool, or NULL with errno EINVAL (NULL free_fn) / ENOMEM /
 *         EAGAIN (the timer thread could not be started).
 */
GOCC_NODISCARD GOCC_API gocc_pool_t *gocc_pool_new(void *(*new_fn)(void *ud),
                                                   void (*free_fn)(void *obj, void *ud), void *ud);

/**
 * A cached object (the one this thread put last, if any), else new_fn(ud),
 * else NULL (also when new_fn is NULL). After several puts, which of the
 * put objects comes back first is not specified.
 * @return an object, or NULL (no cached object and new_fn is NULL or returned
 *         NULL; also for a NULL @p p).
 */
GOCC_API void *gocc_pool_get(gocc_pool_t *p);

/** Give @p obj back (NULL does nothing). */
GOCC_API void gocc_pool_put(gocc_pool_t *p, void *obj);

/** Free every cached object with free_fn, then the pool. No thread may use
 *  the pool during or after the call. */
GOCC_API void gocc_pool_free(gocc_pool_t *p);

/** One trim cycle (Go's victim cache): objects not used since the last trim
 *  are freed; the others become candidates for the next one. */
GOCC_API void gocc_pool_trim(gocc_pool_t *p);

/** Debug/test mode (Go's race-detector behaviour): drop about @p percent
 *  of puts at random (to free_fn), so code that relies on getting its
 *  object back fails early. 0 turns it off. */
GOCC_API void gocc_pool_set_drop_percent(gocc_pool_t *p, unsigned percent);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Fan-in (merge channels) */
/** @{ */

/**
 * Forward every value of the @p n channels in @p in to @p out, then close
 * @p out once every input is closed and drained (Go's FanIn/merge).
 * One task per input does the forwarding (counted in gocc_tasks_live, run
 * with @p ctx); the channels are retained until those tasks end. Values of
 * one input keep their order; values of different inputs interleave.
 * When @p ctx ends the tasks stop and close @p out: a value already taken
 * from an input but not yet sent is dropped (the caller asked to stop), and
 * values still buffered in the inputs stay there. @p out must not be closed
 * by anyone else.
 * @return 0; GOCC_EINVAL (NULL @p out, @p n > 0 with NULL @p in, a NULL input,
 *         element sizes that differ, @p out among the inputs); GOCC_ENOMEM /
 *         GOCC_EAGAIN when the tasks cannot be started (then nothing was
 *         started and @p out is left open). With @p n == 0, or a context
 *         already done, @p out is closed at once and nothing is forwarded.
 */
GOCC_API int gocc_chan_merge(gocc_chan_t *const *in, size_t n, gocc_chan_t *out, gocc_ctx_t *ctx);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Rate limiter (token bucket; golang.org/x/time/rate) */
/** @{ */

/** A token-bucket rate limiter; opaque, freed by gocc_ratelimit_free. */
typedef struct gocc_ratelimit gocc_ratelimit_t;

/**
 * A token bucket that fills at @p per_second tokens a second up to @p burst
 * tokens, and starts full. @p per_second may be 0 (only the first @p burst
 * tokens are ever given) but not negative, NaN or infinite; @p burst >= 1.
 * @return the limiter, or NULL with errno EINVAL / ENOMEM.
 */
GOCC_NODISCARD GOCC_API gocc_ratelimit_t *gocc_ratelimit_new(double per_second, int64_t burst);

/**
 * Take @p n tokens now if the bucket holds them (true), else take nothing
 * (false). Never blocks; false for @p n < 0 or NULL @p rl.
 * @return true (taken); false (nothing taken).
 */
GOCC_API bool gocc_ratelimit_allow(gocc_ratelimit_t *rl, int64_t n);

/**
 * Wait until @p n tokens are free and take them. Waiters are served in
 * arrival order (each reserves its tokens on arrival, as x/time/rate does).
 * When @p ctx ends first, or its deadline is before the tokens could be
 * free, the whole reservation is given back (waiters behind it move up) and
 * the context's error returned (GOCC_EDEADLINE at once when the deadline is
 * too soon). At rate 0 a wait that needs more than the bucket holds fails
 * at once with a deadline, and otherwise waits for the context or for
 * gocc_ratelimit_set to give a rate. The dump shows such a wait as `sleep`.
 * @return 0; GOCC_EINVAL (@p n < 0 or @p n > burst: it could never be
 *         satisfied); the context's error; GOCC_ENOMEM / GOCC_EAGAIN when
 *         the wait could not be set up (as for gocc_sleep).
 */
GOCC_API int gocc_ratelimit_wait(gocc_ratelimit_t *rl, int64_t n, gocc_ctx_t *ctx);

/**
 * Tokens in the bucket now (negative while waiters hold reservations).
 * @return the tokens now; 0 for NULL @p rl.
 */
GOCC_API double gocc_ratelimit_tokens(gocc_ratelimit_t *rl);

/** Change rate and burst from now on (same rules as new). Queued waiters
 *  are re-timed at the new rate (x/time/rate keeps their old times); a
 *  waiter queued for more than a lowered burst is still served.
 *  @return 0 or GOCC_EINVAL (nothing changed). */
GOCC_API int gocc_ratelimit_set(gocc_ratelimit_t *rl, double per_second, int64_t burst);

/** Free the limiter. No thread may use it during or after the call. */
GOCC_API void gocc_ratelimit_free(gocc_ratelimit_t *rl);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Publish/subscribe (broadcast with per-subscriber buffers) */
/** @{ */

/** A broadcaster to subscriber channels; opaque, freed by gocc_pubsub_free. */
typedef struct gocc_pubsub gocc_pubsub_t;

/** A broadcaster of elements of @p elem_size bytes (> 0).
 *  @return the broadcaster, or NULL with errno EINVAL / ENOMEM. */
GOCC_NODISCARD GOCC_API gocc_pubsub_t *gocc_pubsub_new(size_t elem_size);

/**
 * A new subscriber: a channel with room for @p buffer elements (>= 1) that
 * receives every element published from now on, while it has room. The
 * caller owns one reference to the channel (release it when done); the
 * broadcaster holds another until unsubscribe or close, which close the
 * channel (the subscriber drains what is buffered, then sees GOCC_ECLOSED).
 * @return the channel, or NULL with errno EINVAL (buffer 0), ENOMEM, or
 *         EPIPE (the broadcaster is closed).
 */
GOCC_NODISCARD GOCC_API gocc_chan_t *gocc_pubsub_subscribe(gocc_pubsub_t *ps, size_t buffer);

/**
 * Offer @p elem to every subscriber without blocking: a subscriber whose
 * buffer is full misses it and its drop count grows (a slow subscriber
 * never slows the publisher or the others).
 * @return how many subscribers got it (>= 0), GOCC_ECLOSED after close,
 *         GOCC_EINVAL for NULL arguments.
 */
GOCC_API int gocc_pubsub_publish(gocc_pubsub_t *ps, const void *elem);

/** Stop delivering to @p sub and close it (values already buffered stay
 *  receivable). Its drop count is forgotten: read it first.
 *  @return 0, or GOCC_EINVAL if @p sub is not a current subscriber of @p ps. */
GOCC_API int gocc_pubsub_unsubscribe(gocc_pubsub_t *ps, gocc_chan_t *sub);

/**
 * Elements @p sub missed because its buffer was full, or because the
 * subscriber closed its channel itself (0 for a channel that is not a
 * current subscriber).
 * @return the count; 0 for a NULL @p ps or @p sub, or a channel that is not a
 *         current subscriber.
 */
GOCC_API uint64_t gocc_pubsub_dropped(gocc_pubsub_t *ps, gocc_chan_t *sub);

/**
 * Number of current subscribers.
 * @return the count; 0 for NULL @p ps.
 */
GOCC_API size_t gocc_pubsub_subscribers(gocc_pubsub_t *ps);

/** Close every subscriber and refuse later publish/subscribe.
 *  @return 0, GOCC_ECLOSED when already closed, GOCC_EINVAL for NULL. */
GOCC_API int gocc_pubsub_close(gocc_pubsub_t *ps);

/** Close (if not closed) and free. No thread may use @p ps during or after. */
GOCC_API void gocc_pubsub_free(gocc_pubsub_t *ps);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Snapshot (atomic.Pointer with safe reclamation) */
/** @{ */

/** A snapshot pointer (Go's atomic.Pointer); opaque, freed by gocc_snapshot_free. */
typedef struct gocc_snapshot gocc_snapshot_t;

/**
 * A shared pointer to an immutable value that writers replace atomically
 * and readers borrow without locks (Go's atomic.Value / atomic.Pointer for
 * read-mostly configuration). A replaced value is passed to
 * @p free_fn(value, ud) once no reader holds it any more, so a reader
 * never touches freed memory. @p initial may be NULL; @p free_fn may be
 * NULL (values are then never freed by the snapshot); free_fn is never
 * called for NULL. Each stored value is owned by the snapshot from then
 * on: store a given pointer once (storing the current value again is
 * harmless; storing one that an older, still borrowed version holds would
 * free it twice).
 * @return the snapshot, or NULL with errno ENOMEM.
 */
GOCC_NODISCARD GOCC_API gocc_snapshot_t *
gocc_snapshot_new(void *initial, void (*free_fn)(void *value, void *ud), void *ud);

/** A borrow of a snapshot's value (on the caller's stack). */
typedef struct gocc_snapshot_ref {
    void *value; /**< the borrowed value (may be NULL) */
    void *node;  /**< private: what release gives back */
} gocc_snapshot_ref_t;

/**
 * Borrow the current value into @p ref and return it (also in
 * ref->value): it stays valid until gocc_snapshot_release(@p ref), however
 * many stores happen meanwhile. Lock-free; never blocks. A NULL @p s gives
 * NULL and a ref that release ignores; a NULL @p ref gives NULL and
 * borrows nothing.
 * @return the current value (borrowed through @p ref); NULL for a NULL @p s or
 *         @p ref, or when the current value is NULL.
 */
GOCC_API void *gocc_snapshot_acquire(gocc_snapshot_t *s, gocc_snapshot_ref_t *ref);

/** End the borrow in @p ref (NULL, or a ref already released, does nothing;
 *  release clears it). */
GOCC_API void gocc_snapshot_release(gocc_snapshot_ref_t *ref);

/** Make @p value the current value; the old one is freed when its last
 *  borrow ends. @return 0, GOCC_EINVAL (NULL @p s), GOCC_ENOMEM (nothing
 *  changed). */
GOCC_API int gocc_snapshot_store(gocc_snapshot_t *s, void *value);

/**
 * Store @p value only if the current value is @p expected (Go's
 * CompareAndSwap). @return 1 swapped, 0 not swapped (current value differs),
 * GOCC_EINVAL, GOCC_ENOMEM.
 */
GOCC_API int gocc_snapshot_compare_and_swap(gocc_snapshot_t *s, void *expected, void *value);

/** Free the snapshot and, with free_fn, its current value. No borrow may
 *  be outstanding and no thread may use @p s during or after the call. */
GOCC_API void gocc_snapshot_free(gocc_snapshot_t *s);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name I/O: file descriptors a task can wait on (Go's net.Conn, os.File)
 *
 * A descriptor adopted by gocc_fd_open becomes a handle whose reads,
 * writes, accepts and connects wait the way every other libgocc call does:
 * a task that has to wait parks (its worker runs other tasks; one runtime
 * thread, the poller, watches every descriptor for readiness, so waiting
 * costs no thread), a plain thread sleeps in the kernel, and the call's
 * context ends the wait at once (Go's netpoller and SetDeadline, with
 * deadlines given as contexts).
 *
 * Rules of every call on a handle:
 *  - A context already done wins: the call returns the context's error and
 *    has consumed nothing (no byte read or written, no connection taken).
 *    A context that ends while the call waits makes it return the
 *    context's error; a read or accept has then taken nothing, a write
 *    reports through @c written what went out before.
 *  - Any number of calls may wait on one handle at once, from any tasks
 *    and threads. Read-side calls (read, accept, wait for READ or for
 *    both) are served in arrival order among themselves, and so are
 *    write-side calls (write, connect, wait for WRITE); a read never waits
 *    behind a write, nor a write behind a read.
 *  - gocc_fd_close wakes every call waiting on the handle, which returns
 *    GOCC_ECLOSED; calls made after it return GOCC_ECLOSED at once. The OS
 *    descriptor is closed once no call is inside it.
 *  - Waiting costs no thread: 100,000 tasks may wait on 100,000 handles
 *    at once. A plain thread may call every function; it blocks in the
 *    kernel (on its own futex), and its context still ends the wait.
 *  - A descriptor the kernel cannot watch for readiness (a regular file, a
 *    directory) is always ready: calls on it make the system call directly.
 *  - A task blocked in a handle call shows in gocc_dump as `io wait`, with
 *    the descriptor and the direction.
 *  - Writes to a pipe or socket whose reader is gone return GOCC_ECLOSED
 *    (-EPIPE). Sockets are written with MSG_NOSIGNAL; on a pipe the kernel
 *    sends SIGPIPE to the writing thread, which tasks block (every runtime
 *    thread blocks every signal) and a plain thread must block or ignore
 *    itself, as with write(2).
 */
/** @{ */

/** A descriptor adopted by libgocc; reference-counted, opaque. */
typedef struct gocc_fd gocc_fd_t;

/** Readiness a call waits for: flags, or-ed together. */
enum {
    GOCC_FD_READ = 1,  /**< readable, or a connection to accept, or end of file */
    GOCC_FD_WRITE = 2, /**< writable, or a connect finished */
};

/**
 * Adopt @p fd (any descriptor: socket, pipe, terminal, eventfd, regular
 * file): the handle owns it from now on and makes it non-blocking
 * (O_NONBLOCK on the open file description, which descriptors dup()ed from
 * it share). The first adopted descriptor opens the poller's epoll
 * instance (idle workers wait in it; there is no poller thread).
 * @return the handle with one reference owned by the caller; NULL with
 *         errno EINVAL (a negative or closed @p fd, or one adopted already),
 *         ENOMEM, or EAGAIN (no epoll instance could be made). On
 *         failure nothing was adopted: the caller still owns @p fd.
 */
GOCC_NODISCARD GOCC_API gocc_fd_t *gocc_fd_open(int fd);

/** Add a reference. @return @p f (NULL stays NULL). */
GOCC_API gocc_fd_t *gocc_fd_retain(gocc_fd_t *f);

/**
 * Drop a reference; the last one closes the OS descriptor if gocc_fd_close
 * did not, and frees the handle. Releasing does not wake waiting calls: a
 * caller inside a call holds its own reference. NULL does nothing.
 */
GOCC_API void gocc_fd_release(gocc_fd_t *f);

/**
 * Close the handle (Go: closing a net.Conn unblocks its reader): every
 * call waiting on it returns GOCC_ECLOSED, later calls return GOCC_ECLOSED,
 * and the OS descriptor is closed now, or by the last call still inside
 * it when it returns. The handle itself lives until its last release.
 * @return 0; GOCC_ECLOSED when it was closed already; GOCC_EINVAL (NULL).
 */
GOCC_API int gocc_fd_close(gocc_fd_t *f);

/** The adopted descriptor, for calls libgocc does not wrap (setsockopt,
 *  getsockname). @return it; -1 for NULL and once gocc_fd_close was called. */
GOCC_API int gocc_fd_num(gocc_fd_t *f);

/**
 * read(2) that waits: up to @p n bytes into @p buf.
 * @return the bytes read (> 0); 0 at end of file, and 0 at once for
 *         @p n == 0; the context's error (nothing was read); GOCC_ECLOSED
 *         (closed before or while waiting); GOCC_EINVAL (NULL @p f, NULL
 *         @p buf with @p n > 0); GOCC_ENOMEM (could not wait); any other
 *         failure of the system call as -errno. Never GOCC_EAGAIN.
 */
GOCC_API ssize_t gocc_fd_read(gocc_fd_t *f, void *buf, size_t n, gocc_ctx_t *ctx);

/**
 * Write all @p n bytes of @p buf, waiting as needed. Writes on one handle
 * never interleave: each goes out whole before the next one starts (Go
 * holds a lock per Write), in arrival order.
 * @param written when not NULL, how many bytes went out (all @p n on
 *        success; on failure those sent before it).
 * @return @p n; the context's error (some bytes may have gone out: see
 *         @p written); GOCC_ECLOSED (the handle was closed, or the reader
 *         is gone: a broken pipe or a reset connection, -EPIPE);
 *         GOCC_EINVAL (NULL @p f, NULL @p buf with @p n > 0, @p n over
 *         SSIZE_MAX); GOCC_ENOMEM (could not wait); any other failure of
 *         the system call as -errno. 0 at once for @p n == 0.
 */
GOCC_API ssize_t gocc_fd_write(gocc_fd_t *f, const void *buf, size_t n, size_t *written,
                               gocc_ctx_t *ctx);

/**
 * Wait until the descriptor is ready for @p events (GOCC_FD_READ,
 * GOCC_FD_WRITE or both), for libraries that do their own non-blocking
 * system calls. An error or hang-up on the descriptor counts as ready for
 * both. A wait for both takes its turn on the read side.
 * @return the ready subset of @p events (> 0); the context's error;
 *         GOCC_ECLOSED; GOCC_EINVAL (NULL @p f, no or unknown @p events);
 *         GOCC_ENOMEM (could not wait); a failed poll(2) as -errno.
 */
GOCC_API int gocc_fd_wait(gocc_fd_t *f, int events, gocc_ctx_t *ctx);

/**
 * Wait for a connection on the listening socket @p l and adopt it (Go's
 * Listener.Accept): *conn is a new handle (non-blocking, close-on-exec)
 * with one reference owned by the caller.
 * @param addr, addrlen as for accept(2) (both may be NULL).
 * @return 0; the context's error (no connection taken); GOCC_ECLOSED;
 *         GOCC_EINVAL (NULL @p l or @p conn); GOCC_ENOMEM (could not wait,
 *         or no handle for the connection: it is closed); GOCC_EAGAIN (no
 *         epoll instance for it); any other failure of accept(2) as -errno
 *         (-EMFILE: out of descriptors). *conn is NULL on failure.
 */
GOCC_API int gocc_fd_accept(gocc_fd_t *l, gocc_fd_t **conn, struct sockaddr *addr,
                            socklen_t *addrlen, gocc_ctx_t *ctx);

/**
 * Connect the socket @p f to @p addr and wait until the connection is
 * established (Go's Dialer.DialContext on a socket made by the caller).
 * A connect that the context ends leaves the socket half-made: close it.
 * @return 0; the context's error; GOCC_ECLOSED; GOCC_EINVAL (NULL @p f or
 *         @p addr); GOCC_ENOMEM (could not wait); the failure as -errno
 *         (-ECONNREFUSED, -ENETUNREACH, ...).
 */
GOCC_API int gocc_fd_connect(gocc_fd_t *f, const struct sockaddr *addr, socklen_t addrlen,
                             gocc_ctx_t *ctx);

/**
 * One wait for @p events on a descriptor the caller keeps: not adopted,
 * its blocking mode untouched (a descriptor owned by another library).
 * Each call registers it with the poller for the one wait and removes it
 * afterwards (a dup of it, briefly), so it costs more than gocc_fd_wait.
 * @return the ready subset of @p events (> 0; an error or hang-up counts
 *         as ready for both); the context's error; GOCC_EINVAL (negative
 *         @p fd, no or unknown @p events); GOCC_ENOMEM (could not wait);
 *         GOCC_EAGAIN (no epoll instance); a failed poll(2) or dup as
 *         -errno (-EBADF: not open).
 */
GOCC_API int gocc_fd_poll(int fd, int events, gocc_ctx_t *ctx);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Observability (seeing inside a running program) */
/** @{ */

/**
 * Name the calling task (or, outside a task, the calling thread). The name
 * is copied (its first 31 bytes kept); NULL clears it. The OS thread name
 * is set too (first 15 bytes) so gdb's `info threads` and `top -H` show it.
 * A task's name ends with the task.
 * @return 0, or GOCC_ENOMEM (this thread's record could not be made).
 */
GOCC_API int gocc_task_set_name(const char *name);

/**
 * The caller's name, "" when it has none; never NULL. Valid until the
 * caller renames itself or its task ends.
 * @return the name; "" when there is none; never NULL.
 */
GOCC_API const char *gocc_task_name(void);

/**
 * Write a report of every live task, and every non-task thread blocked in
 * a libgocc call, to @p fd. Fixed lines (the rest is free-form):
 *
 *     libgocc dump: <T> tasks live, <B> blocked
 *     task <ID> "<NAME>" [<STATE>]:
 *     thread <ID> "<NAME>" [<STATE>]:
 *
 * T counts the task entries, B the blocked entries (tasks and threads).
 * The line after the first counts the objects made and not yet released
 * (channels, contexts, timers and tickers, object pools, worker pools, fd
 * handles; the library's own included), and while the last
 * gocc_runtime_shutdown was refused a line says what held it (their
 * wording may change).
 * STATE is one of
 *  - `running`: on its thread (a task on a scheduler worker, or an
 *    own_thread task, or a thread);
 *  - `running, <SECONDS>s`: a task that has held its worker thread that
 *    long without coming back to the scheduler (blocked outside libgocc,
 *    in read(2) say, or computing), shown once that is at least the
 *    runtime's block threshold (gocc_runtime_config_t.block_threshold_ns,
 *    default 10 ms: the time after which the scheduler gets other threads
 *    to run the ready tasks);
 *  - `runnable`: ready (woken), waiting for a worker thread;
 *  - `<REASON>, <SECONDS>s`: blocked in libgocc that long.
 * Seconds have three decimals. REASON is one of `chan receive`,
 * `chan send`, `select`, `select (no cases)`, `sleep` (also a rate
 * limiter's wait), `semaphore acquire`, `group go`, `group wait`,
 * `waitgroup wait`, `once`, `workpool submit`, `workpool shutdown`,
 * `io wait` (a gocc_fd_* call; the next line names the descriptor and
 * the direction).
 * Indented lines after an entry say more (their wording may change): what
 * it waits on, its context, its start function, an own_thread task's OS
 * thread, and for a blocked task (not an own_thread one) its call stack as
 * far as it can be walked: `at` lines, innermost first, named where
 * dladdr(3) finds a name. The walk follows saved frame pointers: it gets
 * from where the task waits in libgocc to the task's own frames only when
 * libgocc and the caller keep them (-fno-omit-frame-pointer), and there is
 * none under ThreadSanitizer, with the ucontext context switch, or on other
 * architectures than x86-64 and AArch64. A task that has not started to
 * run yet has no entry yet. Safe from any thread at any time; never blocks
 * a running task (a consistent-enough snapshot).
 * @return the number of entries written; GOCC_EINVAL for @p fd < 0;
 *         GOCC_ENOMEM; a failed write(2) as a negative errno.
 */
GOCC_API int gocc_dump(int fd);

/**
 * Go's goleak for C tests: wait up to @p timeout_ns for gocc_tasks_live()
 * to be at most @p baseline. On failure, when @p fd >= 0, one line
 * `libgocc: <N> tasks still running after <T>s (expected at most <B>)`,
 * then the dump (whose object line shows leaked channels and contexts that
 * no task count sees).
 * @return 0; GOCC_EDEADLINE when tasks are still running at the end.
 */
GOCC_API int gocc_leakcheck(size_t baseline, int64_t timeout_ns, int fd);

/**
 * Opt in: from now on signal @p signo writes the dump to stderr. The
 * handler only wakes a runtime thread, which writes the dump.
 * @return 0, or GOCC_EINVAL (SIGKILL, SIGSTOP, outside 1..NSIG-1).
 */
GOCC_API int gocc_dump_on_signal(int signo);

/**
 * Opt in (@p threshold_ns <= 0 turns it off): a runtime thread reports to
 * @p fd, once per episode, each task blocked in libgocc longer than the
 * threshold (never a running task, also not one busy outside libgocc, nor
 * a runnable one), and when every live task and libgocc-blocked thread has
 * been blocked that long with nothing that could wake it, the line
 * `libgocc: all tasks are asleep - possible deadlock` and the dump. Once
 * it returns, the fd given before is no longer written.
 * @return 0, or GOCC_EINVAL for @p fd < 0 while turning it on.
 */
GOCC_API int gocc_watch_stuck(int64_t threshold_ns, int fd);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* GOCC_H */
