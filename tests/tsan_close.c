/* ThreadSanitizer and libuv: libuv closes every descriptor with
 * syscall(SYS_close, fd), which ThreadSanitizer does not see. It then
 * believes the descriptor is still open, and when the kernel hands the
 * same number to another thread's socket() or open(), it reports a race
 * between two creations of one descriptor (seen with the leader group's
 * voters, three in one process). Under -fsanitize=thread only, this
 * file gives libuv a syscall() that routes SYS_close to close(), which
 * the sanitizer intercepts, so its model of descriptors matches the
 * kernel's. Every other call goes to the C library's syscall(). */
#if defined(__SANITIZE_THREAD__)
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Default visibility: the project builds with -fvisibility=hidden. */
__attribute__((visibility("default"))) long syscall(long number, ...);

long syscall(long number, ...)
{
    static void *real_sym; /* several threads may look it up at once */
    long (*real)(long, ...);
    void *sym;
    long a[6];
    va_list ap;

    va_start(ap, number);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long); /* as glibc's syscall(): six registers */
    va_end(ap);
    if (number == SYS_close)
        return close((int)a[0]);
    sym = __atomic_load_n(&real_sym, __ATOMIC_ACQUIRE);
    if (sym == NULL) {
        sym = dlsym(RTLD_NEXT, "syscall");
        __atomic_store_n(&real_sym, sym, __ATOMIC_RELEASE);
    }
    *(void **)&real = sym;
    return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
#else
/* ISO C wants a translation unit to declare something. */
typedef int tsan_close_unused;
#endif
