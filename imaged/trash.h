/* imaged's trash: <root>/imaged/trash/.
 *
 * Removing a blob or a snapshot means deleting up to gigabytes, which would
 * hold imaged's one event loop (and with it every image call kubelet makes)
 * for as long. So the loop only takes it out of use, with one rename(2)
 * into the trash (the same filesystem: atomic and quick whatever the size),
 * after which nothing finds it by its old name; a worker thread deletes
 * what the trash holds. This is what containerd's overlay snapshotter and
 * CRI-O's storage do.
 *
 * Nothing ever leaves the trash but by deletion, so whatever a crash left in
 * it is garbage: the next start empties it. Entries get names nothing else
 * uses (what they were, a time, a counter; RENAME_NOREPLACE), so a blob
 * removed twice (pulled again, removed again) never replaces its earlier
 * self. Deleting never follows a symlink nor enters another mount.
 *
 * trash_move and trash_discard may be called from any thread; trash_empty
 * and trash_emptying from the event loop only. */
#ifndef CRISP_IMAGED_TRASH_H
#define CRISP_IMAGED_TRASH_H

#include <stdbool.h>

#include "common/error.h"

/* Open (creating with mode 0700) trash/ under root_dirfd, which the caller
 * keeps owning. */
int trash_open(int root_dirfd, struct crisp_error *err);
/* Forget the trash (tests; imaged keeps it until it exits). A job still
 * running keeps its own fd. */
void trash_close(void);

/* Rename name in dirfd (a file or a whole directory tree) into the trash;
 * what says what it is, for the entry's name and for errors (e.g.
 * "snapshot-12"). CRISP_E_NOT_FOUND if there is no such entry,
 * CRISP_E_PRECONDITION if no trash is open, CRISP_E_INTERNAL if it cannot
 * be renamed (EXDEV: dirfd is on another filesystem). Call trash_empty()
 * after a batch of moves. */
int trash_move(int dirfd, const char *name, const char *what, struct crisp_error *err);

/* Remove file name in dirfd (on the trash's filesystem) without its
 * deletion holding the event loop: the kernel frees a file's pages on the
 * thread that drops its last link or descriptor, which for a partial blob
 * of gigabytes takes a while. On the loop's thread (the one that opened
 * the trash), with every descriptor of the file closed already, it is
 * moved into the trash and the trash emptied (trash_empty); on any other
 * thread (a worker may take its time), or without a trash, or where it
 * cannot be renamed, it is unlinked at once. what names it in the trash
 * (see trash_move). 0, or -errno (-ENOENT: there is no such file). */
int trash_discard(int dirfd, const char *name, const char *what);

/* Delete everything in the trash on a worker thread. One job at a time: a
 * call while one runs makes another run after it, so that what was moved in
 * meanwhile goes too. */
void trash_empty(void);
/* Whether a job runs or is due to run (tests wait on it). */
bool trash_emptying(void);

#endif
