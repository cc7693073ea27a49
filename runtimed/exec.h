/* The contract between runtimed and crisp-exec (runtimed/exec.c), the
 * program runtimed's launcher runs to start a process inside a running
 * container without the OCI runtime:
 *
 *   crisp-exec --id ID --bundle <bundles>/ID
 *              --process <bundle>/exec-N.json --pid-file <bundle>/exec-N.pid
 *              --init-pid PID --init-start START
 *
 * (or stream-N.json and stream-N.pid for the streaming server's exec), in
 * exactly this order; launch/check_runtimed.c check_exec() holds the
 * grammar. PID and START are the container's init as runtimed recorded it:
 * its host pid and its /proc starttime.
 *
 * crisp-exec writes the started process's host pid to the pid file, then
 * waits for it and exits with its status: its exit code, or 128 + the
 * signal that killed it. The statuses below are its own, and come with a
 * message on stderr and no pid file. */
#ifndef CRISP_RUNTIMED_EXEC_H
#define CRISP_RUNTIMED_EXEC_H

/* The process could not be started (runc's status for the same): a bad
 * process file, a missing executable, a failed setns, setuid, ... */
#define EXEC_EXIT_FAILED 255
/* --init-pid is not the container's running init any more (it exited, or
 * the pid is another process's): the container is not running. */
#define EXEC_EXIT_NOT_RUNNING 254

#endif
