#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "supervisor/listen.h"
#include "supervisor/systemd.h"

int lock_acquire(const char *path, struct crisp_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	char buf[32];
	ssize_t n;

	if (fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot open lock %s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK)
			return err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot lock %s", path);
		n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		return err_set(err, CRISP_E_EXISTS, "another crispd (pid %s) holds %s",
			       *buf ? buf : "unknown", path);
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, n, 0) != n)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot write lock %s", path);
	return TAKE_FD(fd);
}

/* Keep the socket clear of fds 0-9: children get theirs at fixed numbers
 * (3 and 4), and systemd hands us the socket at 3. */
static int move_high(int fd, struct crisp_error *err)
{
	int hi = fcntl(fd, F_DUPFD_CLOEXEC, 10);
	if (hi < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "dup of listening socket");
	close(fd);
	if (fd_set_nonblock(hi, true) < 0)
		return err_set(err, CRISP_E_INTERNAL, "cannot make the socket non-blocking");
	return hi;
}

static int listen_activated(int n, struct crisp_error *err)
{
	if (n != 1)
		return err_set(err, CRISP_E_INVALID,
			       "systemd passed %d sockets, crispd takes exactly one", n);
	if (systemd_check_unix_listener(SYSTEMD_LISTEN_FDS_START, err) < 0)
		return err_prefix(err, "socket activation");
	log_info("using the CRI socket from systemd socket activation");
	return move_high(SYSTEMD_LISTEN_FDS_START, err);
}

int listen_setup(const struct crisp_config *cfg, gid_t group, bool *ret_activated, int *ret_lock_fd,
		 struct crisp_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_free_ char *dir = NULL, *lock = NULL;
	_cleanup_close_ int fd = -1, lock_fd = -1;
	int n, r;
	mode_t old;

	*ret_lock_fd = -1;
	n = systemd_listen_fds(err);
	if (n < 0)
		return err_prefix(err, "socket activation");
	*ret_activated = n > 0;
	if (n > 0)
		return listen_activated(n, err);

	if (strlen(cfg->socket) >= sizeof(sa.sun_path))
		return err_set(err, CRISP_E_INVALID, "socket path %s is longer than %zu bytes",
			       cfg->socket, sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, cfg->socket);
	dir = xstrdup(cfg->socket);
	*strrchr(dir, '/') = '\0';
	if (*dir && (r = mkdir_p(dir, 0755)) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, r, "cannot create %s", dir);

	/* Only the holder of this lock may replace the socket file: a second
	 * crispd fails here instead of unlinking a live daemon's socket. */
	lock = xasprintf("%s.lock", cfg->socket);
	lock_fd = lock_acquire(lock, err);
	if (lock_fd < 0)
		return -1;
	if (unlink(cfg->socket) < 0 && errno != ENOENT)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot remove stale %s",
				     cfg->socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "socket");
	/* Nobody may connect before mode and group are right. */
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot bind %s", cfg->socket);
	if (chown(cfg->socket, 0, group) < 0 || chmod(cfg->socket, cfg->socket_mode) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "cannot set owner/mode of %s",
				     cfg->socket);
	if (listen(fd, 1024) < 0)
		return err_set_errno(err, CRISP_E_INTERNAL, errno, "listen on %s", cfg->socket);
	log_info("listening on %s (mode %04o, group %u)", cfg->socket, cfg->socket_mode, group);
	*ret_lock_fd = TAKE_FD(lock_fd);
	return move_high(TAKE_FD(fd), err);
}
