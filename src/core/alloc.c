/* alloc.c - the one allocation hook of the library. Every allocation in
 * src/ goes through ai_malloc / ai_calloc / ai_free, so a program (or a
 * test that fails the Nth allocation) can supply its own, as jansson's
 * json_set_alloc_funcs and libuv's uv_replace_allocator allow. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core.h"

/* Set once, before any other call (not synchronized). */
static void *(*alloc_fn)(size_t) = malloc;
static void (*free_fn)(void *) = free;

/* jansson reports a failed allocation inside its parser as a syntax
 * error; this per-thread flag lets the library tell the two apart. */
static _Thread_local bool json_oom;

static void *json_alloc(size_t n)
{
    void *p = alloc_fn(n);

    if (p == NULL)
        json_oom = true;
    return p;
}

void ai_set_alloc_funcs(void *(*malloc_fn)(size_t), void (*release)(void *))
{
    alloc_fn = malloc_fn ? malloc_fn : malloc;
    free_fn = release ? release : free;
    json_set_alloc_funcs(json_alloc, free_fn);
}

void alloc_json_oom_clear(void)
{
    json_oom = false;
}

bool alloc_json_oom(void)
{
    return json_oom;
}

void *ai_malloc(size_t n)
{
    return alloc_fn(n ? n : 1);
}

void *ai_calloc(size_t count, size_t size)
{
    void *p;

    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    p = ai_malloc(count * size);
    if (p != NULL)
        memset(p, 0, count * size);
    return p;
}

void ai_free(void *p)
{
    if (p != NULL)
        free_fn(p);
}

char *ai_strdup(const char *s)
{
    size_t n;
    char *p;

    if (s == NULL)
        return NULL;
    n = strlen(s);
    if ((p = ai_malloc(n + 1)) != NULL)
        memcpy(p, s, n + 1);
    return p;
}
