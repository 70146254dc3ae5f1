/* A team of threads for the training step (included by _ckernels.c).
 *
 *     team_run(work, arg, T)   runs work(arg, t, T) for t = 0 … T−1, t = 0 on the calling thread, the others on
 *                              worker threads started on first use; returns when all are done, and the T it used
 *     team_barrier(T)          inside work: waits until all T threads of the run have reached it
 *
 * Each thread calls BLAS itself, so BLAS must be single-threaded while a team runs (deltaprop.compiled_step sets it
 * so for the whole training run: see CompiledBackprop.sharing); otherwise every thread's products would start
 * BLAS's own threads too. Where threads are not available (Windows, other compilers), while another thread of the
 * process holds the team, or for T = 1, the caller runs work(arg, 0, 1) alone. Workers spin for about a
 * millisecond after a run (the next step usually follows within microseconds), then sleep on a condition
 * variable; a fork()ed child starts its own.
 */
#if !defined(_WIN32) && (defined(__GNUC__) || defined(__clang__))
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SPIN_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define SPIN_PAUSE() __asm__ __volatile__("yield")
#else
#define SPIN_PAUSE() ((void)0)
#endif
#define TEAM_THREADS 1
#endif

#define MAX_TEAM 64
typedef void (*team_work)(void *arg, int t, int T);

#ifdef TEAM_THREADS
static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_llong run;        /* (number of the run << 8) | its T: a new value tells the workers to start */
    atomic_int sleepers;     /* workers waiting on `wake` */
    atomic_int done;         /* workers that have finished this run's work */
    atomic_int arrived;      /* threads at the current barrier */
    atomic_int opened;       /* barriers opened so far */
    atomic_int busy;         /* a run is going on (a second caller runs alone) */
    int workers;             /* worker threads started (the caller is not one) */
    team_work work;
    void *arg;
    long long first_run[MAX_TEAM]; /* the value of `run` when each worker was started */
} team = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* Spins until (*value == target) == equal: PAUSE at first, then giving the core away (more threads than cores) */
static void team_spin(atomic_int *value, int target, int equal) {
    for (unsigned spins = 0; (atomic_load(value) == target) != equal; spins++) {
        if (spins < 4096)
            SPIN_PAUSE();
        else
            sched_yield();
    }
}

static void team_barrier(int T) {
    if (T < 2) return;
    int opened = atomic_load(&team.opened);
    if (atomic_fetch_add(&team.arrived, 1) == T - 1) { /* the last one in opens it */
        atomic_store(&team.arrived, 0);
        atomic_fetch_add(&team.opened, 1);
    } else {
        team_spin(&team.opened, opened, 0);
    }
}

static double team_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

/* Waits for a run after `seen`: spinning for about a millisecond, then asleep. Returns the run. */
static long long team_wait(long long seen) {
    double since = team_seconds();
    for (unsigned spins = 1;; spins++) {
        long long run = atomic_load(&team.run);
        if (run != seen) return run;
        SPIN_PAUSE();
        if (spins % 256 == 0 && team_seconds() - since > 1e-3) break;
    }
    pthread_mutex_lock(&team.lock);
    atomic_fetch_add(&team.sleepers, 1);
    while (atomic_load(&team.run) == seen) pthread_cond_wait(&team.wake, &team.lock);
    atomic_fetch_sub(&team.sleepers, 1);
    pthread_mutex_unlock(&team.lock);
    return atomic_load(&team.run);
}

static void *team_worker(void *index) {
    int t = (int)(intptr_t)index;
    for (long long run = team.first_run[t];;) {
        run = team_wait(run);
        int T = (int)(run & 0xff);
        if (t < T) {
            team.work(team.arg, t, T);
            atomic_fetch_add(&team.done, 1);
        }
    }
    return NULL;
}

static void team_after_fork(void) { /* the child has no workers: it starts its own */
    pthread_mutex_init(&team.lock, NULL);
    pthread_cond_init(&team.wake, NULL);
    atomic_store(&team.sleepers, 0);
    atomic_store(&team.busy, 0);
    atomic_store(&team.arrived, 0);
    team.workers = 0;
}

/* Starts workers until there are n (the caller holds the team); returns how many there are */
static int team_start(int n) {
    static int fork_handled;
    if (!fork_handled) fork_handled = pthread_atfork(NULL, NULL, team_after_fork) == 0;
    while (team.workers < n) {
        int t = team.workers + 1; /* worker t: thread t of a run */
        pthread_t thread;
        pthread_attr_t attributes;
        team.first_run[t] = atomic_load(&team.run);
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attributes, team_worker, (void *)(intptr_t)t);
        pthread_attr_destroy(&attributes);
        if (failed) break;
        team.workers = t;
    }
    return team.workers;
}

static int team_run(team_work work, void *arg, int T) {
    int free_ = 0;
    if (T > MAX_TEAM) T = MAX_TEAM;
    if (T > 1 && atomic_compare_exchange_strong(&team.busy, &free_, 1)) {
        int workers = team_start(T - 1);
        if (T > workers + 1) T = workers + 1;
        if (T > 1) {
            team.work = work;
            team.arg = arg;
            atomic_store(&team.done, 0);
            atomic_store(&team.run, ((atomic_load(&team.run) >> 8) + 1) << 8 | T);
            if (atomic_load(&team.sleepers) > 0) {
                pthread_mutex_lock(&team.lock);
                pthread_cond_broadcast(&team.wake);
                pthread_mutex_unlock(&team.lock);
            }
            work(arg, 0, T);
            team_spin(&team.done, T - 1, 1);
        } else {
            work(arg, 0, 1);
        }
        atomic_store(&team.busy, 0);
        return T;
    }
    work(arg, 0, 1);
    return 1;
}
#else
static void team_barrier(int T) { (void)T; }

static int team_run(team_work work, void *arg, int T) {
    (void)T;
    work(arg, 0, 1);
    return 1;
}
#endif
