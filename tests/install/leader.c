/* leader.c - a program that starts a leader (ai_leader_start) on 127.0.0.1
 * with plain HTTP, from an installed libagentiam linked statically by
 * tests/install/run.sh with `pkg-config --static --libs agent-iam`. It
 * prints the port, then serves until stdin closes.
 * Usage: leader HOME */
#include <stdio.h>

#include <agent_iam.h>

int main(int argc, char **argv)
{
    ai_leader_config c;
    ai_leader *l;
    ai_err err;

    if (argc != 2) {
        fprintf(stderr, "usage: leader HOME\n");
        return 2;
    }
    ai_leader_config_init(&c);
    c.home = argv[1];
    c.host = "127.0.0.1";
    c.port = 0;
    c.insecure_http = true;
    c.threads = 2;
    c.access_log_fd = -1;
    if (ai_leader_start(&c, &l, &err) != AI_OK) {
        fprintf(stderr, "leader: %s\n", err.msg);
        return 1;
    }
    printf("%u\n", (unsigned)ai_leader_port(l));
    fflush(stdout);
    while (getchar() != EOF)
        ;
    ai_leader_stop(l, 1000);
    return 0;
}
