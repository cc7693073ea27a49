/* Socket activation and readiness notification, as sd_listen_fds(3) and
 * sd_notify(3) describe them (see systemd.h for why not libsystemd). */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "supervisor/systemd.h"

/* A number as systemd writes it into the environment: decimal digits only,
 * no sign, no space, no other base. */
static int parse_env_number(const char *s, uint64_t max, uint64_t *ret)
{
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	return parse_uint64(s, 10, max, ret);
}

static int listen_fds_from_env(struct crisp_error *err)
{
	const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
	uint64_t pid, n;
	int fd, r;

	if (!pid_s)
		return 0;
	if (parse_env_number(pid_s, INT_MAX, &pid) < 0 || pid == 0)
		return err_set(err, CRISP_E_INVALID, "LISTEN_PID '%.32s' is not a process id",
			       pid_s);
	/* The fds were meant for another process (the one that exec'd us
	 * without clearing LISTEN_PID): they are not ours to take. */
	if (pid != (uint64_t)getpid())
		return 0;
	if (!fds_s)
		return 0;
	if (parse_env_number(fds_s, INT_MAX - SYSTEMD_LISTEN_FDS_START, &n) < 0)
		return err_set(err, CRISP_E_INVALID,
			       "LISTEN_FDS '%.32s' is not a number of file descriptors", fds_s);
	/* They come without close-on-exec; without it every child would
	 * inherit the CRI socket. */
	for (fd = SYSTEMD_LISTEN_FDS_START; fd < SYSTEMD_LISTEN_FDS_START + (int)n; fd++) {
		r = fd_set_cloexec(fd, true);
		if (r < 0)
			return err_set_errno(err, CRISP_E_INVALID, r,
					     "LISTEN_FDS=%" PRIu64 " names fd %d", n, fd);
	}
	return (int)n;
}

int systemd_listen_fds(struct crisp_error *err)
{
	int n = listen_fds_from_env(err);

	/* Whatever they said: our children are not the activated service. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return n;
}

static int getsockopt_int(int fd, int opt, int *ret)
{
	socklen_t len = sizeof(*ret);

	return getsockopt(fd, SOL_SOCKET, opt, ret, &len);
}

int systemd_check_unix_listener(int fd, struct crisp_error *err)
{
	int domain, type, listening;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return err_set_errno(err, CRISP_E_INVALID, errno, "cannot stat fd %d", fd);
	if (!S_ISSOCK(st.st_mode))
		return err_set(err, CRISP_E_INVALID, "fd %d is not a socket", fd);
	if (getsockopt_int(fd, SO_DOMAIN, &domain) < 0 || getsockopt_int(fd, SO_TYPE, &type) < 0 ||
	    getsockopt_int(fd, SO_ACCEPTCONN, &listening) < 0)
		return err_set_errno(err, CRISP_E_INVALID, errno, "getsockopt on fd %d", fd);
	if (domain != AF_UNIX)
		return err_set(err, CRISP_E_INVALID,
			       "fd %d is not a unix socket (address family %d)", fd, domain);
	if (type != SOCK_STREAM)
		return err_set(err, CRISP_E_INVALID, "fd %d is not a stream socket (type %d)", fd,
			       type);
	if (!listening)
		return err_set(err, CRISP_E_INVALID, "fd %d is a unix stream socket not listening",
			       fd);
	return 0;
}

/* Where NOTIFY_SOCKET pointed at our start: addr_len 0 when nowhere. name is
 * NOTIFY_SOCKET as given, for the logs. */
static struct {
	struct sockaddr_un addr;
	socklen_t addr_len;
	char name[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
} notify;

void systemd_notify_init(void)
{
	const char *e = getenv("NOTIFY_SOCKET");
	const size_t max = sizeof(notify.addr.sun_path);
	size_t n;

	memset(&notify, 0, sizeof(notify));
	notify.addr.sun_family = AF_UNIX;
	if (!e)
		return;
	n = strlen(e);
	if (e[0] == '/' && n < max) {
		memcpy(notify.addr.sun_path, e, n + 1);
		notify.addr_len = offsetof(struct sockaddr_un, sun_path) + n + 1;
	} else if (e[0] == '@' && n > 1 && n <= max) {
		/* Abstract: sun_path starts with a NUL, and the address length,
		 * not a terminating NUL, says where the name ends. */
		memcpy(notify.addr.sun_path + 1, e + 1, n - 1);
		notify.addr_len = offsetof(struct sockaddr_un, sun_path) + n;
	} else {
		log_warn("NOTIFY_SOCKET '%.*s%s' is neither an absolute path nor an '@' abstract "
			 "name of at most %zu bytes: crispd will not notify systemd",
			 64, e, n > 64 ? "..." : "", max - 1);
	}
	if (notify.addr_len)
		memcpy(notify.name, e, n + 1);
	/* A child must not report our state, nor hand systemd a file. */
	unsetenv("NOTIFY_SOCKET");
}

void systemd_notify(const char *state)
{
	_cleanup_close_ int fd = -1;

	if (!notify.addr_len)
		return;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warn("cannot send %s to systemd: socket: %s", state, strerror(errno));
		return;
	}
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&notify.addr,
		   notify.addr_len) < 0) {
		log_warn("cannot send %s to systemd at %s: %s", state, notify.name,
			 strerror(errno));
		return;
	}
	log_debug("sent %s to systemd at %s", state, notify.name);
}
