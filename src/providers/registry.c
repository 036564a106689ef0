/*
 * registry.c - the table of provider backends, by the scope's first
 * segment. API keys are not in it: they are looked up in the store by the
 * broker before this table.
 */
#include <string.h>

#include "providers/providers.h"

static const prov_ops *const backends[] = {&prov_github, &prov_google,
                                           &prov_aws};

/* See providers.h. */
const prov_ops *prov_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof backends / sizeof *backends; i++)
        if (strcmp(backends[i]->name, name) == 0)
            return backends[i];
    return NULL;
}
