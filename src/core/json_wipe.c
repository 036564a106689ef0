/* json_wipe.c - zero the strings of a parsed JSON value (it may hold a
 * secret: an API key, a provider config, a token) before it is freed. */
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "core.h"

void json_wipe(json_t *j)
{
    const char *k;
    json_t *v;
    size_t i;

    if (json_is_string(j))
        explicit_bzero((char *)(uintptr_t)json_string_value(j),
                       json_string_length(j));
    else if (json_is_object(j))
        json_object_foreach(j, k, v) json_wipe(v);
    else if (json_is_array(j))
        json_array_foreach(j, i, v) json_wipe(v);
}

void json_wipe_decref(json_t *j)
{
    if (j != NULL && j->refcount <= 1)
        json_wipe(j);
    json_decref(j);
}
