/* A per-process wall clock that txchaos can step and skew, loaded with LD_PRELOAD.
 *
 * Only the wall clock moves (CLOCK_REALTIME and its variants, gettimeofday, time),
 * as when NTP steps or slews a machine's clock; CLOCK_MONOTONIC and every sleep are
 * left alone. libfaketime 0.9.10 (Debian 12) cannot do this for Python: with its
 * FAKETIME_DONT_FAKE_MONOTONIC, time.sleep() fails with EINVAL.
 *
 * The control file (TXCHAOS_CLOCK_FILE) is 32 bytes that the harness rewrites in
 * place under a sequence lock, read on every call through a shared mapping:
 *   u64 seq (odd while being written), i64 offset_ns, f64 rate, i64 anchor_ns.
 * fake = real + offset + (rate - 1) * (real - anchor). Programs that bypass libc
 * (Go, static binaries) are not affected.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct control {
    volatile uint64_t seq;
    volatile int64_t offset_ns;
    volatile double rate;
    volatile int64_t anchor_ns;
};

static struct control *ctl;
static int (*real_clock_gettime)(clockid_t, struct timespec *);

__attribute__((constructor)) static void txchaos_clock_init(void) {
    real_clock_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    const char *path = getenv("TXCHAOS_CLOCK_FILE");
    if (path == NULL)
        return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    void *p = mmap(NULL, sizeof(struct control), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p != MAP_FAILED)
        ctl = (struct control *)p;
}

static int is_wall(clockid_t id) {
    return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE || id == CLOCK_TAI;
}

static int64_t faked(int64_t real) {
    if (ctl == NULL)
        return real;
    uint64_t s0, s1;
    int64_t offset, anchor;
    double rate;
    do {
        s0 = ctl->seq;
        __sync_synchronize();
        offset = ctl->offset_ns;
        rate = ctl->rate;
        anchor = ctl->anchor_ns;
        __sync_synchronize();
        s1 = ctl->seq;
    } while ((s0 & 1) || s0 != s1);
    if (rate <= 0.0) /* an unset file: the true time */
        rate = 1.0;
    return real + offset + (int64_t)((rate - 1.0) * (double)(real - anchor));
}

static int64_t real_ns(clockid_t id, int *err) {
    struct timespec ts;
    *err = real_clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int clock_gettime(clockid_t id, struct timespec *tp) {
    if (!is_wall(id) || ctl == NULL)
        return real_clock_gettime(id, tp);
    int err;
    int64_t ns = faked(real_ns(id, &err));
    if (err == 0) {
        tp->tv_sec = ns / 1000000000LL;
        tp->tv_nsec = ns % 1000000000LL;
    }
    return err;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    (void)tz;
    int err;
    int64_t ns = faked(real_ns(CLOCK_REALTIME, &err));
    if (err == 0) {
        tv->tv_sec = ns / 1000000000LL;
        tv->tv_usec = (ns % 1000000000LL) / 1000;
    }
    return err;
}

time_t time(time_t *t) {
    int err;
    time_t s = (time_t)(faked(real_ns(CLOCK_REALTIME, &err)) / 1000000000LL);
    if (t != NULL)
        *t = s;
    return s;
}
