/* The contract between runtimed and crisp-monitor, the per-container process
 * (runtimed/monitor.c). Both sides include this file; nothing else is shared.
 *
 * runtimed starts it through its launcher, detached (LAUNCH_DETACH):
 *
 *   crisp-monitor --id <64 hex> --bundle <dir> --runtime <path>
 *                 --runtime-root <dir> --log <path> --exit-file <path>
 *                 [--cgroup-parent <path>] [--stdin] [--stdin-once] [--tty]
 *                 [--log-max <bytes>]
 *
 * with its stdout a pipe to runtimed (the sync pipe) and stdin/stderr on
 * /dev/null. It becomes a child subreaper, runs `<runtime> --root <dir>
 * create --bundle <dir> --pid-file <bundle>/container.pid <id>` with the
 * container's stdio on pipes it holds (or a pty, through --console-socket,
 * for --tty), and writes ONE line to the sync pipe, then closes it:
 *
 *   {"pid": 1234}                               created; runtimed runs start
 *   {"error": "runc create: <runc's stderr>"}   failed; the monitor exits 1
 *
 * From then on it copies the container's output to the log file in the CRI
 * format (PROTOCOLS.md: "<RFC 3339 nano> stdout|stderr P|F <text>\n", lines
 * longer than --log-max split into P records), answers on the control socket
 * MONITOR_SOCKET in the bundle, and when the container's init exits (reaped
 * as subreaper) and its output is drained it writes the exit file
 * atomically (temporary file, fsync, rename, fsync of the directory):
 *
 *   {"exit_code": 3, "signal": 0, "finished_at": <unix ns>, "oom_killed": false}
 *
 * and exits 0. exit_code is the exit status, or 128+signal when killed.
 *
 * Control socket (SOCK_SEQPACKET, one request per packet, one reply):
 *   "reopen"  -> "ok" | "error <why>"   reopen the log file (ReopenContainerLog)
 *   "attach"  -> "ok", then the same connection carries the output (packets
 *                "1<bytes>" stdout, "2<bytes>" stderr) and takes stdin
 *                ("0<bytes>", an empty "0" closes it); for the streaming issue.
 *   "resize <rows> <cols>" -> "ok" (tty only)
 */
#ifndef CRISP_RUNTIMED_MONITOR_H
#define CRISP_RUNTIMED_MONITOR_H

#define MONITOR_SOCKET "monitor.sock"
#define MONITOR_PID_FILE "container.pid"
#define MONITOR_LOG_MAX_DEFAULT (16u << 10)
#define MONITOR_PACKET_MAX 32768

#endif
