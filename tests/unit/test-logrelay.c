/* Unit tests of supervisor/logrelay.c: the form crispd gives each line a
 * child writes (attribution, priority, the child's own prefix, escapes,
 * cut lines), and the relay itself on a loop: partial lines at the end,
 * long lines cut, and a writer that floods an output nobody reads for a
 * while (the writer blocks, the loop does not, no line is lost). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervisor/logrelay.h"
#include "tests/unit/tap.h"

static char fmt_buf[LOGRELAY_FORMAT_MAX + 1];

static const char *fmt(const char *line, size_t len, bool continued)
{
	size_t n = logrelay_format(fmt_buf, "crisp-imaged", 77, line, len, continued);
	fmt_buf[n] = '\0';
	return fmt_buf;
}

#define F(s) fmt(s, sizeof(s) - 1, false)

static void test_format(void)
{
	is_str(F("<6>crisp-imaged[77]: ready"), "<6>crisp-imaged[77]: ready\n",
	       "an ordinary line reads as the child wrote it");
	is_str(F("<3>crisp-imaged[77]: bad: x"), "<3>crisp-imaged[77]: bad: x\n",
	       "its priority is kept");
	is_str(F("<6>crisp-frontend[12]: audit: method=RemovePodSandbox result=OK"),
	       "<6>crisp-imaged[77]: crisp-frontend[12]: audit: method=RemovePodSandbox "
	       "result=OK\n",
	       "a line forged as the frontend's is attributed to its writer, the forgery kept");
	is_str(F("<6>crisp-imaged[78]: x"), "<6>crisp-imaged[77]: crisp-imaged[78]: x\n",
	       "another pid under the same name is not stripped");
	is_str(F("<6>crisp-imaged-launch[79]: x"),
	       "<6>crisp-imaged[77]: crisp-imaged-launch[79]: x\n",
	       "a launcher's prefix stays behind its helper's");
	is_str(F("<6>crisp-imaged[77]:x"), "<6>crisp-imaged[77]: crisp-imaged[77]:x\n",
	       "only the exact prefix, with its space, is stripped");
	is_str(F("hello"), "<5>crisp-imaged[77]: hello\n", "no priority: notice");
	is_str(F(""), "<5>crisp-imaged[77]: \n", "an empty line");
	is_str(F("<6>"), "<6>crisp-imaged[77]: \n", "a priority alone");
	is_str(F("<0>crisp-imaged[77]: x"), "<2>crisp-imaged[77]: x\n", "emerg becomes crit");
	is_str(F("<1>x"), "<2>crisp-imaged[77]: x\n", "alert becomes crit");
	is_str(F("<7>x"), "<7>crisp-imaged[77]: x\n", "debug stays");
	is_str(F("<8>x"), "<5>crisp-imaged[77]: <8>x\n", "<8> is no priority");
	is_str(F("<14>x"), "<5>crisp-imaged[77]: <14>x\n", "nor is a facility");
	is_str(F(" <6>x"), "<5>crisp-imaged[77]:  <6>x\n", "only at the start");
	is_str(F("a\x1b[2Jb\rc\td\x7f"), "<5>crisp-imaged[77]: a\\x1b[2Jb\\x0dc\td\\x7f\n",
	       "escape sequences, carriage returns and DEL are escaped, tabs kept");
	is_str(fmt("a\0b", 3, false), "<5>crisp-imaged[77]: a\\x00b\n", "NUL is escaped");
	is_str(F("csi \xc2\x9b"
		 "2J, nel \xc2\x85"),
	       "<5>crisp-imaged[77]: csi \\xc2\\x9b2J, nel \\xc2\\x85\n",
	       "UTF-8 C1 controls are escaped");
	is_str(F("caf\xc3\xa9 \xc2\xa0 \\x41 \xc2"),
	       "<5>crisp-imaged[77]: caf\xc3\xa9 \xc2\xa0 \\x41 \xc2\n",
	       "other UTF-8, backslashes and a lone C2 stay");
	is_str(F("<6>crisp-frontend[12]: x"), "<6>crisp-imaged[77]: crisp-frontend[12]: x\n",
	       "(again, as a baseline for the next)");
	is_str(fmt("<6>crisp-imaged[77]: x", 22, true),
	       "<5>crisp-imaged[77]: [continued] <6>crisp-imaged[77]: x\n",
	       "the rest of a cut line has no priority and no prefix of its own");

	/* The worst case fits the bound. */
	static char all_ctl[LOGRELAY_LINE_MAX + 100];
	memset(all_ctl, 0x01, sizeof(all_ctl));
	size_t n = logrelay_format(fmt_buf, "crisp-runtimed-and-more-to-32-ch", 2147483647, all_ctl,
				   sizeof(all_ctl), true);
	ok(n <= LOGRELAY_FORMAT_MAX, "the worst case (%zu bytes) fits LOGRELAY_FORMAT_MAX", n);
	ok(fmt_buf[n - 1] == '\n' && memchr(fmt_buf, '\n', n - 1) == NULL,
	   "and is one line, cut at LOGRELAY_LINE_MAX input bytes");
	is_int(n,
	       strlen("<5>crisp-runtimed-and-more-to-32-ch[2147483647]: [continued] ") +
		       4 * LOGRELAY_LINE_MAX + 1,
	       "of exactly LOGRELAY_LINE_MAX input bytes");
}

/* ---- the relay on a loop -------------------------------------------------- */

static int out_rd = -1; /* the test's end of what the relay writes */

static char *collected;
static size_t ncollected;

/* Read what the relay wrote so far (non-blocking). */
static void collect(void)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(out_rd, buf, sizeof(buf))) > 0) {
		collected = realloc(collected, ncollected + (size_t)n + 1);
		memcpy(collected + ncollected, buf, (size_t)n);
		ncollected += (size_t)n;
		collected[ncollected] = '\0';
	}
}

static void spin(struct event_base *base, int times)
{
	for (int i = 0; i < times; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
}

static void test_relay_lines(struct event_base *base)
{
	struct crisp_error err;
	struct logrelay *r;
	char big[5000];
	int w = logrelay_open(&r, "crisp-netd", &err);

	if (!ok(w >= 0, "logrelay_open"))
		return;
	logrelay_started(r, 42);
	const char *first = "<6>crisp-netd[42]: one\n<4>crisp-netd[42]: t";
	(void)!write(w, first, strlen(first));
	spin(base, 5);
	collect();
	is_str(collected, "<6>crisp-netd[42]: one\n",
	       "a complete line goes out, a partial one waits");
	(void)!write(w, "wo\n", 3);
	memset(big, 'x', sizeof(big));
	(void)!write(w, big, sizeof(big));
	(void)!write(w, "\nlast, no newline", strlen("\nlast, no newline"));
	close(w);
	spin(base, 5);
	logrelay_ended(r);
	spin(base, 5);
	collect();
	const char *p = collected + strlen("<6>crisp-netd[42]: one\n");
	ok(strncmp(p, "<4>crisp-netd[42]: two\n", 23) == 0, "the partial line, completed");
	p += 23;
	ok(strncmp(p, "<5>crisp-netd[42]: xxx", 22) == 0, "a long line is cut");
	const char *nl = strchr(p, '\n');
	is_int(nl ? nl - p : -1, strlen("<5>crisp-netd[42]: ") + LOGRELAY_LINE_MAX,
	       "after LOGRELAY_LINE_MAX bytes");
	p = nl ? nl + 1 : p;
	ok(strncmp(p, "<5>crisp-netd[42]: [continued] xxx", 34) == 0, "its rest is marked");
	nl = strchr(p, '\n');
	is_int(nl ? nl - p : -1,
	       strlen("<5>crisp-netd[42]: [continued] ") + sizeof(big) - LOGRELAY_LINE_MAX,
	       "and complete");
	p = nl ? nl + 1 : p;
	is_str(p, "<5>crisp-netd[42]: last, no newline\n",
	       "the partial line at the end goes out as a line");
	free(collected);
	collected = NULL;
	ncollected = 0;
}

#define FLOOD_LINES 20000

static void test_relay_flood(struct event_base *base)
{
	struct crisp_error err;
	struct logrelay *r;
	int w = logrelay_open(&r, "crisp-imaged", &err), status;
	pid_t pid;

	if (!ok(w >= 0, "logrelay_open"))
		return;
	pid = fork();
	if (pid == 0) {
		char line[128];
		for (int i = 0; i < FLOOD_LINES; i++) {
			int n = snprintf(line, sizeof(line), "<6>crisp-imaged[%d]: line %d %s\n",
					 (int)getpid(), i, "padding padding padding padding");
			if (write(w, line, (size_t)n) != n)
				_exit(1);
		}
		_exit(0);
	}
	close(w);
	logrelay_started(r, pid);
	/* Nobody reads the output: once it and the relay's buffer are full,
	 * the writer must block while the loop goes on. */
	spin(base, 300);
	ok(waitpid(pid, &status, WNOHANG) == 0,
	   "with the output full, the flooding writer is held back (it has not finished)");
	/* Now read: everything arrives, in order. */
	for (int i = 0; i < 20000 && waitpid(pid, &status, WNOHANG) == 0; i++) {
		spin(base, 1);
		collect();
	}
	logrelay_ended(r);
	for (int i = 0; i < 50; i++) {
		spin(base, 2);
		collect();
	}
	int expect = 0;
	bool in_order = true;
	char want[128];
	for (char *line = collected, *nl; line && (nl = strchr(line, '\n')); line = nl + 1) {
		snprintf(want, sizeof(want), "<6>crisp-imaged[%d]: line %d padding", (int)pid,
			 expect);
		if (strncmp(line, want, strlen(want)) != 0) {
			in_order = false;
			diag("line %d: %.80s", expect, line);
			break;
		}
		expect++;
	}
	ok(in_order, "every line arrived in order, attributed");
	is_int(expect, FLOOD_LINES, "none was lost");
	free(collected);
	collected = NULL;
	ncollected = 0;
}

/* The relay's output as a pipe (a terminal's and a pipe's path: a second,
 * non-blocking open of /proc/self/fd/2) or a socket (journald's: send()
 * with MSG_DONTWAIT), each in a process of its own, since the relay's state
 * is crispd's, one per process. */
static void relay_tests(bool socket_out)
{
	struct event_base *base;
	int p[2], report[2], counts[2];
	pid_t pid;

	if (pipe(report) < 0)
		return;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int before_run = tap_run, before_failed = tap_failed;

		if (socket_out ? socketpair(AF_UNIX, SOCK_STREAM, 0, p) < 0 : pipe(p) < 0)
			_exit(1);
		/* The relay writes to fd 2: the test reads the other end. */
		dup2(p[1], 2);
		close(p[1]);
		out_rd = p[0];
		fcntl(out_rd, F_SETFL, O_NONBLOCK);
		base = event_base_new();
		logrelay_init(base);
		diag("relay output on a %s", socket_out ? "socket" : "pipe");
		test_relay_lines(base);
		test_relay_flood(base);
		logrelay_finish(0);
		event_base_free(base);
		counts[0] = tap_run - before_run;
		counts[1] = tap_failed - before_failed;
		(void)!write(report[1], counts, sizeof(counts));
		_exit(0);
	}
	close(report[1]);
	if (read(report[0], counts, sizeof(counts)) != sizeof(counts)) {
		ok(0, "the relay tests on a %s ran to the end", socket_out ? "socket" : "pipe");
	} else {
		tap_run += counts[0];
		tap_failed += counts[1];
	}
	close(report[0]);
	waitpid(pid, NULL, 0);
}

int main(void)
{
	alarm(60); /* a relay that blocks the loop fails the test, not hangs it */
	test_format();
	relay_tests(false);
	relay_tests(true);
	return done_testing();
}
