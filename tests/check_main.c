/* check_main.c - runs every Check suite of the unit tests; exits nonzero
 * when any test fails. CK_FORK=no (make asan) runs them in one process so
 * leak reports cover every test. */
#include <stdlib.h>

#include "tests.h"

int main(void)
{
    Suite *(*const suites[])(void) = {
        suite_core_scope, suite_core_glob,  suite_core_time,
        suite_core_b64,   suite_core_json,  suite_core_token,
        suite_core_delegate,
        suite_core_oom,
        suite_core_threads,
        suite_http,
        suite_store_home,
        suite_store_revocations,
        suite_store_keys,
        suite_store_snapshot,
        suite_broker_audit,
        suite_broker_admin,
        suite_store_providers,
        suite_store_audit,
        suite_store_uses,
        suite_store_replica,
        suite_store_followers,
        suite_store_chain,
        suite_leader_feed,
        suite_follower_sync,
        suite_providers_sigv4, suite_providers_aws,
        suite_providers_cache,
        suite_providers_http,
        suite_providers_github, suite_providers_google,
        suite_providers_config,
        tls_suite,
        suite_cluster_transport,
        suite_runtime,
        suite_store_entries,
        suite_store_groupsnap,
        suite_cluster_codec,
        suite_cluster_fsm,
        suite_cluster_config,
        suite_cluster_node,
    };
    SRunner *sr = srunner_create(suites[0]());
    int failed;

    for (size_t i = 1; i < sizeof suites / sizeof *suites; i++)
        srunner_add_suite(sr, suites[i]());
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
