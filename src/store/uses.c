/* uses.c - use counters for maxUses budgets: one use of every budget a
 * credential counts against, consumed atomically across threads and
 * processes, so the last use of a budget is granted once and never twice.
 *
 * DESIGN: a budget's row (budget_id, used, max_uses) is made on its first
 * use. store_consume takes the write lock first (BEGIN IMMEDIATE), reads
 * every budget, and counts all of them or none: two processes can never
 * both read the same `used` and both grant. Counters are not replicated:
 * followers ask the leader (DESIGN §4, /v1/uses/consume). */
#include <string.h>

#include "store/db.h"

#define BUDGET_ID_MAX AI_ID_MAX
/* ai_token_budgets returns at most one budget per constraint. */
#define BUDGETS_MAX (AI_LIST_MAX * AI_BUDGETS_MAX)

/* One distinct budget of the call, with its count as read. */
typedef struct budget {
    const char *id; /* borrowed from the caller */
    int64_t max;
    int64_t used;
} budget;

static ai_code check_budget(const ai_budget_ref *b, ai_err *err)
{
    size_t n = b->id ? strlen(b->id) : 0;

    if (n == 0 || n > BUDGET_ID_MAX || !utf8_valid(b->id, n))
        return ai_err_set(err, AI_EINVAL,
                          "a budget id is 1 to %d bytes of UTF-8",
                          BUDGET_ID_MAX);
    return AI_OK;
}

/* Within the transaction: the count of b (0 for a budget not used yet);
 * a stored max below the caller's wins (fail closed). */
static ai_code read_used(store *st, budget *b, ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;
    int step;

    if ((rc = db_prepare(st,
                         "SELECT used, max_uses FROM uses WHERE budget_id = ?",
                         &q, err)) != AI_OK)
        return rc;
    sqlite3_bind_text(q, 1, b->id, -1, SQLITE_STATIC);
    step = sqlite3_step(q);
    if (step == SQLITE_ROW) {
        int64_t stored_max = sqlite3_column_int64(q, 1);
        b->used = sqlite3_column_int64(q, 0);
        if (stored_max < b->max)
            b->max = stored_max;
    } else if (step == SQLITE_DONE) {
        b->used = 0;
    } else {
        rc = db_fail(st, "use counters", err);
    }
    sqlite3_finalize(q);
    return rc;
}

static ai_code count_use(store *st, const budget *b, int64_t now_ms,
                         ai_err *err)
{
    sqlite3_stmt *q;
    ai_code rc;

    if ((rc = db_prepare(st,
                         "INSERT INTO uses (budget_id, used, max_uses, "
                         "updated_at) VALUES (?1, 1, ?2, ?3) "
                         "ON CONFLICT (budget_id) DO UPDATE SET "
                         "used = used + 1, "
                         "max_uses = min(max_uses, excluded.max_uses), "
                         "updated_at = excluded.updated_at",
                         &q, err)) != AI_OK)
        return rc;
    sqlite3_bind_text(q, 1, b->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, b->max);
    sqlite3_bind_int64(q, 3, now_ms);
    if (sqlite3_step(q) != SQLITE_DONE)
        rc = db_fail(st, "use counters", err);
    sqlite3_finalize(q);
    return rc;
}

/* One use of each distinct budget, all or none, in one write transaction:
 * *granted when every budget had used < max (a refusal writes nothing and
 * is AI_OK with *granted false); *remaining the smallest max - used after
 * the use, 0 when refused, UINT32_MAX when n is 0 (nothing limits it).
 * A budget's row is made on its first use; when the stored max and the
 * caller's differ, the smaller counts. AI_EINVAL for a bad id or more
 * than BUDGETS_MAX budgets; AI_ESTORE when SQLite fails (rolled back). */
ai_code store_consume(store *st, const ai_budget_ref *budgets, size_t n,
                      int64_t now_ms, bool *granted, uint32_t *remaining,
                      ai_err *err)
{
    budget *u = NULL;
    size_t nu = 0;
    int64_t room = INT64_MAX;
    bool ok = true;
    ai_code rc;

    ai_err_clear(err);
    if (granted != NULL)
        *granted = false;
    if (remaining != NULL)
        *remaining = 0;
    if (st == NULL || granted == NULL || remaining == NULL ||
        (budgets == NULL && n > 0))
        return ai_err_set(err, AI_EINVAL, "consume: missing argument");
    if (n > BUDGETS_MAX)
        return ai_err_set(err, AI_EINVAL, "consume: more than %d budgets",
                          BUDGETS_MAX);
    if (n == 0) {
        /* Nothing limits the use: granted, with no end in sight. */
        *granted = true;
        *remaining = UINT32_MAX;
        return AI_OK;
    }
    for (size_t i = 0; i < n; i++)
        if ((rc = check_budget(&budgets[i], err)) != AI_OK)
            return rc;
    if ((u = ai_malloc(n * sizeof *u)) == NULL)
        return ai_err_set(err, AI_ENOMEM, "out of memory");
    /* The same budget twice in one call is one use of it (the smaller
     * max wins). */
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < nu && strcmp(u[j].id, budgets[i].id) != 0)
            j++;
        if (j == nu) {
            u[nu].id = budgets[i].id;
            u[nu].max = budgets[i].max_uses;
            u[nu].used = 0;
            nu++;
        } else if (budgets[i].max_uses < u[j].max) {
            u[j].max = budgets[i].max_uses;
        }
    }

    /* The write lock before the first read: no other process can read
     * the same counts until this one has committed. */
    if ((rc = db_begin(st, err)) != AI_OK)
        goto done;
    for (size_t i = 0; i < nu; i++) {
        if ((rc = read_used(st, &u[i], err)) != AI_OK)
            goto fail;
        if (u[i].used >= u[i].max)
            ok = false;
        else if (u[i].max - u[i].used - 1 < room)
            room = u[i].max - u[i].used - 1;
    }
    if (!ok) {
        db_rollback(st); /* nothing written: a refusal counts nothing */
        goto done;
    }
    for (size_t i = 0; i < nu; i++)
        if ((rc = count_use(st, &u[i], now_ms, err)) != AI_OK)
            goto fail;
    if ((rc = db_commit(st, err)) != AI_OK)
        goto fail;
    *granted = true;
    *remaining = room > UINT32_MAX ? UINT32_MAX : (uint32_t)room;
    goto done;
fail:
    db_rollback(st);
done:
    ai_free(u);
    return rc;
}
