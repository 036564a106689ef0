/* time.c - RFC 3339 timestamps in and ISO 8601 UTC milliseconds out. */
#include <string.h>

#include "core.h"

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* n decimal digits of v, zero padded. */
static void put(char *p, int n, unsigned v)
{
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

void ai_time_format(int64_t ms, char buf[AI_TIME_BUF])
{
    int64_t days, y, rem;
    unsigned m, d;

    /* Years 0000-9999 only: clamp, as the format has four year digits. */
    if (ms < -62167219200000LL)
        ms = -62167219200000LL;
    if (ms > 253402300799999LL)
        ms = 253402300799999LL;
    days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    rem = ms - days * 86400000;
    civil_from_days(days, &y, &m, &d);
    put(buf, 4, (unsigned)y);
    buf[4] = '-';
    put(buf + 5, 2, m);
    buf[7] = '-';
    put(buf + 8, 2, d);
    buf[10] = 'T';
    put(buf + 11, 2, (unsigned)(rem / 3600000));
    buf[13] = ':';
    put(buf + 14, 2, (unsigned)(rem / 60000 % 60));
    buf[16] = ':';
    put(buf + 17, 2, (unsigned)(rem / 1000 % 60));
    buf[19] = '.';
    put(buf + 20, 3, (unsigned)(rem % 1000));
    buf[23] = 'Z';
    buf[24] = '\0';
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool time_parse(const char *s, size_t len, int64_t *ms)
{
    static const unsigned char mdays[12] = {31, 29, 31, 30, 31, 30,
                                            31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, frac = 0, oh = 0, om = 0, sign = 0;
    size_t i;

    /* The form written here, YYYY-MM-DDTHH:MM:SS.mmmZ, on a short path:
     * three 8-byte words checked at once (separators by mask, digits by
     * the usual add/subtract test on each byte). */
    if (len == 24) {
        static const uint64_t sep_m[3] = {0xff0000ff00000000ULL,
                                          0x0000ff0000ff0000ULL,
                                          0xff000000ff0000ffULL};
        static const uint64_t sep_v[3] = {0x2d00002d00000000ULL,
                                          0x00003a0000540000ULL,
                                          0x5a0000002e00003aULL};
        uint64_t w[3], bad = 0;
        memcpy(w, s, 24);
        for (int k = 0; k < 3; k++) {
            uint64_t dm = ~sep_m[k], x = w[k] & dm;
            uint64_t lo = 0x3030303030303030ULL & dm,
                     hi = 0x4646464646464646ULL & dm;
            bad |= ((w[k] & sep_m[k]) ^ sep_v[k]) |
                   (((x + hi) | (x - lo) | x) & 0x8080808080808080ULL & dm);
        }
        if (bad == 0) {
#define D(k) (s[k] - '0')
            y = D(0) * 1000 + D(1) * 100 + D(2) * 10 + D(3);
            mo = D(5) * 10 + D(6);
            d = D(8) * 10 + D(9);
            h = D(11) * 10 + D(12);
            mi = D(14) * 10 + D(15);
            sec = D(17) * 10 + D(18);
            frac = D(20) * 100 + D(21) * 10 + D(22);
#undef D
            goto check;
        }
    }
    if (len < 20 || !digits(s, 4, &y) || s[4] != '-' ||
        !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d) ||
        (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &sec))
        return false;
    i = 19;
    if (s[i] == '.') {
        int n = 0;
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, n++)
            if (n < 3)
                frac = frac * 10 + (s[i] - '0');
        if (n == 0)
            return false;
        for (; n < 3; n++)
            frac *= 10;
    }
    if (i >= len)
        return false;
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
        /* UTC */
    } else if ((s[i] == '+' || s[i] == '-') && i + 6 == len &&
               digits(s + i + 1, 2, &oh) && s[i + 3] == ':' &&
               digits(s + i + 4, 2, &om)) {
        sign = s[i] == '+' ? 1 : -1;
        if (oh > 23 || om > 59)
            return false;
    } else {
        return false;
    }
check:
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 ||
        mi > 59 || sec > 60)
        return false;
    if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return false;
    *ms = ((days_from_civil(y, (unsigned)mo, (unsigned)d) * 24 + h) * 60 + mi -
           sign * (oh * 60 + om)) * 60000LL + sec * 1000LL + frac;
    return true;
}

ai_code ai_time_parse(const char *s, size_t len, int64_t *ms, ai_err *err)
{
    ai_err_clear(err); /* callers need not zero it */
    if (s == NULL || !time_parse(s, len, ms))
        return ai_err_set(err, AI_EINVAL, "not an RFC 3339 time");
    return AI_OK;
}
