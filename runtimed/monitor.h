/* The contract between runtimed and crisp-monitor, the per-container process
 * (runtimed/monitor.c). Both sides include this file; nothing else is shared.
 * man/crisp-monitor.8 says the same for operators.
 *
 * runtimed starts it through its launcher, detached (LAUNCH_DETACH), when
 * the container is to start (StartContainer; CreateContainer only writes
 * the bundle):
 *
 *   crisp-monitor --id <64 hex> --bundle <dir> --runtime <path>
 *                 --runtime-root <dir> --log <path> --exit-file <path>
 *                 [--cgroup-parent <path>] [--stdin] [--stdin-once] [--tty]
 *                 [--log-max <bytes>]
 *
 * with its stdout a pipe to runtimed (the sync pipe) and stdin/stderr on
 * /dev/null. Every path is absolute without "." or ".." components; the id
 * is 64 lowercase hex digits; --stdin-once needs --stdin; --log-max is in
 * [MONITOR_LOG_MAX_MIN, MONITOR_LOG_MAX_MAX]. The log's directory must
 * exist (the kubelet makes it); so must the exit file's: runtimed gives
 * each id a directory of its own, <root_dir>/runtimed/exits/<id>/, and the
 * exit file is exit.json in it (crisp-launch refuses any other), since the
 * monitor's Landlock rule covers that whole directory. The monitor does
 * not depend on being setsid'd, but must not be runtimed's child to
 * survive it.
 *
 * It becomes a child subreaper, runs
 *
 *   <runtime> --root <runtime-root> --log <bundle>/runc.log --log-format json
 *             run --detach --bundle <bundle> --pid-file <bundle>/container.pid
 *             [--console-socket <bundle>/console.sock] <id>
 *
 * with the container's stdio on pipes it holds (or, for --tty, the pty
 * master the runtime sends on MONITOR_CONSOLE_SOCKET: the spec must then
 * say process.terminal), and writes ONE line to the sync pipe, then closes
 * it:
 *
 *   {"pid": 1234, "run_ms": 41.7}               started: the init runs
 *   {"pid": 1234, "run_ms": 41.7, "landlock": false}
 *                                               the same, on a kernel
 *                                               without Landlock (below)
 *   {"error": "<runtime> run: <why>"}           failed; the monitor exits 1
 *
 * run_ms is the wall time of `<runtime> run --detach`, launch to exit (for
 * runtimed's debug log). <why> is the last "error" message of runc's JSON
 * log, else what the runtime printed on stderr, else its exit status. An
 * option error is reported the same way ({"error": "--id 'x': not 64
 * lowercase hex digits"}). After a failed run the monitor runs `<runtime>
 * --root <dir> delete --force <id>` so nothing stays behind (the runtime's
 * state, the container's cgroup), removes the pid file and its sockets and
 * writes no exit file. The init may run (and even exit) before the line is
 * written: its exit is kept and recorded after the line.
 *
 * runtimed waits for that line: the container is RUNNING once it came.
 * If the sync pipe closes without a line the monitor died: treat it as a
 * failure. A runtimed that went away meanwhile finds the outcome in the
 * bundle (runtimed/container.c, recovery): the exit file, else a live
 * monitor (MONITOR_SOCKET answers) and the pid file.
 *
 * From then on it copies the container's output to the log file in the CRI
 * format (PROTOCOLS.md: "<RFC 3339 nano, UTC> stdout|stderr P|F <text>\n";
 * a fragment without newline is held up to 100 ms for the rest of its line,
 * then written as P; lines longer than --log-max split into P records of
 * exactly --log-max bytes and a last F; "\r\n" is stripped like "\n"). The
 * log is never waited for: a record that cannot be written (disk full) is
 * dropped and counted, and what of it a full disk let through is cut off
 * again (ftruncate), so the file holds whole records only. It answers on the control socket MONITOR_SOCKET in
 * the bundle, and when the container's init exits (reaped as subreaper)
 * and its output is drained (both streams at EOF, or 2 s after the exit at
 * most) it writes the exit file atomically (<exit-file>.tmp, fsync, rename,
 * fsync of the directory):
 *
 *   {"exit_code": 3, "signal": 0, "finished_at": <unix ns>,
 *    "oom_killed": false, "log_dropped": 0}
 *
 * removes MONITOR_SOCKET and exits 0. When the disk is full (ENOSPC,
 * EDQUOT) it removes MONITOR_SOCKET first and tries again after 1, 2, 4 and
 * 8 s, then every 10 s, until the file is written or its directory is gone
 * (the record removed): an exit is never lost to a full disk. exit_code is the exit status, or
 * 128+signal when killed; finished_at is when the init was reaped;
 * oom_killed is true when the container's memory cgroup counted an OOM
 * kill ("oom_kill" of v1 memory.oom_control or v2 memory.events) while it
 * ran and SIGKILL ended it; log_dropped counts lost log records. The
 * monitor ignores SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1/2 and SIGPIPE:
 * stopping the container is runtimed's job (runc kill), never the
 * monitor's. It keeps uid 0 but, once the container runs, drops every
 * capability, sets no_new_privs, and confines itself
 * (runtimed/monitor_sandbox.c): Landlock lets it write, create, replace
 * and remove files only beneath the exit file's directory, and remove
 * files beneath the bundle; no path of the log's directory, the log's own
 * included (it writes the fd it opened at its start, then those runtimed
 * passes with reopen-fd); a seccomp filter allows only the system calls it
 * makes from then on. If a step fails it SIGKILLs the container's init
 * instead of serving it unconfined.
 *
 * Control socket (SOCK_SEQPACKET, mode 0600, peers must be uid 0; at most
 * MONITOR_CLIENTS_MAX connections, more get "error too many clients"). A
 * connection sends requests, one per packet, each answered by one packet:
 *   "reopen-fd" with one fd in SCM_RIGHTS -> "ok" | "error <why>"
 *                the new log file (ReopenContainerLog), which runtimed
 *                opened: the --log path, O_WRONLY | O_APPEND | O_CREAT |
 *                O_CLOEXEC | O_NOFOLLOW, mode 0640. It must be exactly one
 *                fd, a regular file, open for writing with O_APPEND; the
 *                monitor then writes the log there and closes the old one.
 *                On error every fd received is closed and the old file
 *                stays in use. Fds that come with any other packet (other
 *                requests, attach sessions) are closed.
 *   "reopen"  the request of monitors before reopen-fd (started by an
 *                older crisp, still running after an upgrade): they open
 *                the --log path themselves, under a Landlock rule on its
 *                directory, and answer reopen-fd with "error unknown
 *                request 'reopen-fd'" (the kernel drops the fd they do
 *                not take). runtimed then sends "reopen" on the same
 *                connection. Monitors of now answer "reopen" as unknown.
 *   "resize <rows> <cols>" -> "ok" | "error <why>"   (tty only; 1..65535)
 *   "attach"  -> "ok", then the same connection carries the output (packets
 *                "1<bytes>" stdout, "2<bytes>" stderr; a tty's output is
 *                "1"), as read, not split into lines, and takes stdin
 *                ("0<bytes>"; an empty "0", the client's stdin ending,
 *                and the end of the first attach session close it with
 *                --stdin-once; without, nothing closes it) and
 *                "resize <rows> <cols>" (no reply). Any other packet ends
 *                the session. An attach client whose socket buffer is full
 *                is disconnected: the container never waits for a reader.
 *                While the container's stdin pipe is full, attach clients
 *                are not read.
 * unknown requests get "error unknown request '<req>'".
 *
 * Socket paths: sun_path holds 107 bytes. When "<bundle>/monitor.sock" is
 * longer, the monitor binds it through "/proc/self/fd/<bundle fd>/..." and
 * a client must connect the same way (open the bundle O_PATH, connect to
 * "/proc/self/fd/<fd>/monitor.sock"); the runtime gets
 * "/proc/<monitor pid>/fd/<fd>/console.sock" for the console socket.
 */
#ifndef CRISP_RUNTIMED_MONITOR_H
#define CRISP_RUNTIMED_MONITOR_H

#define MONITOR_SOCKET "monitor.sock"
#define MONITOR_CONSOLE_SOCKET "console.sock"
#define MONITOR_PID_FILE "container.pid"
#define MONITOR_RUNTIME_LOG "runc.log"
#define MONITOR_LOG_MAX_DEFAULT (16u << 10)
#define MONITOR_LOG_MAX_MIN 1u
#define MONITOR_LOG_MAX_MAX (1u << 20)
#define MONITOR_PACKET_MAX 32768
#define MONITOR_CLIENTS_MAX 16

#endif
