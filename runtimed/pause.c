/* crisp-pause: the pod sandbox's process, holding its namespaces.
 *
 * It is pid 1 of the pod's pid namespace when the pod shares one, so it
 * reaps every orphan that is reparented to it; SIGINT and SIGTERM end it
 * with status 0 (a pid 1 gets no default action for signals it does not
 * handle, so it must handle them itself). It prints nothing and reads
 * nothing. When it is not pid 1 (a pod without a shared pid namespace, or
 * a test) it behaves the same: reaping its own children does no harm.
 *
 * Static and built -Os: it runs from a rootfs that holds only itself. */
#include "autoconfig.h"

#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	/* Blocked and taken with sigwait: no handler runs, nothing races. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return 1;
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGINT || sig == SIGTERM)
			return 0;
		/* SIGCHLD: one signal may stand for many exits */
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
}
