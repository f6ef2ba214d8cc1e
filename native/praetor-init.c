/*
 * praetor-init: the first process inside every Praetor sandbox.
 *
 * It runs in the sandbox's namespaces (started by bwrap, crun or runsc) and executes commands on
 * behalf of the host over its stdin/stdout, which are pipes held only by the praetor process that
 * created the sandbox. Why a pipe and not a socket file: an agent inside the sandbox could replace
 * or connect to a socket file and forge command output (reward hacking); nothing inside the
 * sandbox holds these pipes. When the host side closes (praetor exits or dies), init exits and the
 * pid namespace, with every agent process in it, goes with it.
 *
 * Each command is forked, moved to its own session, dropped to the agent uid/gid with an empty
 * capability set, no_new_privs and a seccomp filter, then exec'd. Its stdout/stderr are relayed
 * to the host as frames; its wait status is reported when it exits.
 *
 * Frame: u32 payload length (LE) | u8 type | u32 exec id (LE) | payload.
 *
 * A session exec (flag 2) gets one more fd for a session shell's framing: fd 4, a memfd that
 * holds the control blob sent with the exec request (the shell's saved state and the command)
 * and, when the command has exited, whatever the shell rewrote it to (the state after the
 * command), which init sends as R_STATE frames before R_EXIT. It is separate from the command's
 * stdin/stdout so that a command reading stdin cannot swallow the framing, and the command's
 * exit status is the wait status init reports, which nothing inside the sandbox can forge.
 * A memfd, not a pipe: the shell opens it by path (/proc/self/fd/4, so `source` reads it in
 * blocks and the dump truncates it), and a pipe opened by path checks the pipe's owner (root
 * here); the state comes back in one piece instead of a frame per builtin's write.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

enum { T_EXEC = 1, T_STDIN = 2, T_SIGNAL = 3, T_PING = 4 };
enum { R_READY = 10, R_STARTED = 11, R_STDOUT = 12, R_STDERR = 13, R_EXIT = 14, R_ERROR = 15, R_PONG = 16, R_STATE = 17 };
enum { F_STDIN = 1, F_SESSION = 2 };
#define PFDS_PER_EXEC 3
#define MAX_STATE (4u << 20) /* the host drops a larger state; send no more than one byte over */
#define MAX_FRAME (16u << 20)
#define MAX_EXECS 4096

/* Bytes for a pipe into the command that it has not accepted yet. */
struct outq { int fd; char *pending; size_t pending_len; int close_after; };

struct exec {
  uint32_t id;
  pid_t pid;
  struct outq in;       /* the command's stdin */
  int out_fd, err_fd;   /* stdout, stderr */
  int ctl_fd;           /* a session's memfd (its fd 4), read back when it exits */
  int exited; int status;
};

static struct exec execs[MAX_EXECS];
static int nexecs;

static void die(const char *what) { fprintf(stderr, "praetor-init: %s: %s\n", what, strerror(errno)); _exit(1); }

static void write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) { if (errno == EINTR) continue; _exit(0); /* host gone: sandbox ends */ }
    p += w; n -= (size_t)w;
  }
}

static void send_frame(uint8_t type, uint32_t id, const void *data, uint32_t len) {
  unsigned char h[9];
  memcpy(h, &len, 4); h[4] = type; memcpy(h + 5, &id, 4);
  write_all(1, h, 9);
  if (len) write_all(1, data, len);
}

/* ---- seccomp: deny what a task never needs; EPERM rather than kill so tools fail politely ---- */
#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#endif
#define DENY(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)
#define NS_FLAGS (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP)

static int install_seccomp(void) {
  struct sock_filter f[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#if defined(__x86_64__)
    /* x32 syscalls would bypass the numbers below */
    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
#endif
    /* clone3 passes flags in memory seccomp cannot read: make libc fall back to clone */
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
    /* clone/unshare: new namespaces (user namespaces above all) are an escalation path */
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 2, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unshare, 1, 0),
    BPF_STMT(BPF_JMP | BPF_JA, 4), /* k is the offset for JA */
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
    BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NS_FLAGS, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    DENY(SYS_mount), DENY(SYS_umount2), DENY(SYS_pivot_root), DENY(SYS_setns),
    DENY(SYS_init_module), DENY(SYS_finit_module), DENY(SYS_delete_module),
    DENY(SYS_kexec_load), DENY(SYS_kexec_file_load), DENY(SYS_reboot),
    DENY(SYS_bpf), DENY(SYS_perf_event_open), DENY(SYS_userfaultfd),
    DENY(SYS_keyctl), DENY(SYS_add_key), DENY(SYS_request_key),
    DENY(SYS_swapon), DENY(SYS_swapoff), DENY(SYS_acct), DENY(SYS_syslog),
    DENY(SYS_settimeofday), DENY(SYS_clock_settime), DENY(SYS_clock_adjtime), DENY(SYS_adjtimex),
    DENY(SYS_open_by_handle_at), DENY(SYS_name_to_handle_at), DENY(SYS_quotactl),
    DENY(SYS_vhangup), DENY(SYS_lookup_dcookie),
    DENY(SYS_open_tree), DENY(SYS_move_mount), DENY(SYS_fsopen), DENY(SYS_fsconfig),
    DENY(SYS_fsmount), DENY(SYS_fspick), DENY(SYS_mount_setattr),
    /* io_uring submits connect/open without passing through this filter */
    DENY(SYS_io_uring_setup), DENY(SYS_io_uring_enter), DENY(SYS_io_uring_register),
#if defined(__x86_64__)
    DENY(SYS_iopl), DENY(SYS_ioperm),
#endif
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* Runs in the forked child; never returns. Reports a failure as errno on errfd. */
static void child(int in_fd, int out_fd, int err_fd, int errfd, int ctl_fd, uint32_t uid, uint32_t gid,
                  const char *cwd, char **argv, char **envp) {
  int e;
  const char *step = "setup";
  sigset_t none; sigemptyset(&none); sigprocmask(SIG_SETMASK, &none, NULL);
  setsid();
  /* Lift every source above the targets first: a pipe that happens to be fd 4 must not be
   * overwritten by another before it is moved. */
  int src[5] = { in_fd, out_fd, err_fd, errfd, ctl_fd };
  int nfd = ctl_fd >= 0 ? 5 : 4;
  for (int i = 0; i < nfd; i++) if ((src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 64)) < 0) goto fail;
  for (int i = 0; i < nfd; i++) if (dup2(src[i], i) < 0) goto fail;
  errfd = 3;
  fcntl(3, F_SETFD, FD_CLOEXEC);
  syscall(SYS_close_range, (unsigned)nfd, ~0U, 0);
  step = "chdir"; if (chdir(cwd) < 0) goto fail;
  /* Drop every capability for good before leaving root: bounding set, ambient, then ids. */
  for (int cap = 0; cap <= 63; cap++) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  gid_t g = gid;
  step = "setgroups"; if (setgroups(1, &g) < 0) goto fail;
  step = "setresgid"; if (setresgid(gid, gid, gid) < 0) goto fail;
  step = "setresuid"; if (setresuid(uid, uid, uid) < 0) goto fail;
  struct { uint32_t version; int pid; } hdr = { 0x20080522, 0 };
  struct { uint32_t eff, perm, inh; } data[2] = { { 0, 0, 0 }, { 0, 0, 0 } };
  step = "capset"; if (syscall(SYS_capset, &hdr, data) < 0) goto fail;
  step = "no_new_privs"; if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) goto fail;
  step = "seccomp"; if (install_seccomp() < 0) goto fail;
  extern char **environ;
  environ = envp;
  step = "exec"; execvp(argv[0], argv);
fail:
  e = errno;
  char msg[128];
  int n = snprintf(msg, sizeof msg, "%s: %s", step, strerror(e));
  if (write(errfd, msg, (size_t)n) < 0) { /* nothing left to tell */ }
  _exit(127);
}

static struct exec *find(uint32_t id) {
  for (int i = 0; i < nexecs; i++) if (execs[i].id == id) return &execs[i];
  return NULL;
}

/* A memfd holding `data`, positioned at its start: what a session shell reads as fd 4. */
static int control_memfd(const unsigned char *data, uint32_t n) {
  int fd = memfd_create("praetor-session", MFD_CLOEXEC);
  if (fd < 0) return -1;
  for (uint32_t off = 0; off < n;) {
    ssize_t w = write(fd, data + off, n - off);
    if (w < 0) { if (errno == EINTR) continue; close(fd); return -1; }
    off += (uint32_t)w;
  }
  if (lseek(fd, 0, SEEK_SET) < 0) { close(fd); return -1; }
  return fd;
}

static void start_exec(uint32_t id, const unsigned char *p, uint32_t len) {
  if (len < 20 || nexecs >= MAX_EXECS) { send_frame(R_ERROR, id, "bad exec request", 16); return; }
  uint32_t uid, gid, flags, argc, envc, ctl_len = 0, head = 20;
  memcpy(&uid, p, 4); memcpy(&gid, p + 4, 4); memcpy(&flags, p + 8, 4);
  memcpy(&argc, p + 12, 4); memcpy(&envc, p + 16, 4);
  /* A session exec: u32 control length after the counts; the control blob ends the payload. */
  if (flags & F_SESSION) {
    if (len < 24) { send_frame(R_ERROR, id, "bad exec request", 16); return; }
    memcpy(&ctl_len, p + 20, 4); head = 24;
    if (ctl_len > len - head) { send_frame(R_ERROR, id, "bad exec request", 16); return; }
  }
  uint32_t slen = len - ctl_len; /* the strings end here */
  if (argc == 0 || argc > 65536 || envc > 65536 || slen <= head || p[slen - 1] != 0) { send_frame(R_ERROR, id, "bad exec request", 16); return; }
  char **argv = calloc(argc + 1, sizeof *argv), **envp = calloc(envc + 1, sizeof *envp);
  const char *s = (const char *)p + head, *end = (const char *)p + slen;
  const char *cwd = s; s += strlen(s) + 1;
  for (uint32_t i = 0; i < argc; i++) { if (s >= end) goto bad; argv[i] = (char *)s; s += strlen(s) + 1; }
  for (uint32_t i = 0; i < envc; i++) { if (s >= end) goto bad; envp[i] = (char *)s; s += strlen(s) + 1; }
  int inp[2], outp[2], errp[2], ep[2], ctl = -1;
  if (pipe2(inp, O_CLOEXEC) || pipe2(outp, O_CLOEXEC) || pipe2(errp, O_CLOEXEC) || pipe2(ep, O_CLOEXEC)) die("pipe");
  if (flags & F_SESSION) {
    if ((ctl = control_memfd(p + slen, ctl_len)) < 0) {
      close(inp[0]); close(inp[1]); close(outp[0]); close(outp[1]); close(errp[0]); close(errp[1]); close(ep[0]); close(ep[1]);
      send_frame(R_ERROR, id, "memfd failed", 12);
      goto done;
    }
  }
  pid_t pid = fork();
  if (pid < 0) { send_frame(R_ERROR, id, "fork failed", 11); goto closeall; }
  if (pid == 0) child(inp[0], outp[1], errp[1], ep[1], ctl, uid, gid, cwd, argv, envp);
  close(inp[0]); close(outp[1]); close(errp[1]); close(ep[1]);
  char why[128];
  ssize_t r;
  do r = read(ep[0], why, sizeof why); while (r < 0 && errno == EINTR);
  close(ep[0]);
  if (r > 0) {
    char msg[512];
    int n = snprintf(msg, sizeof msg, "%s: %.*s", argv[0], (int)r, why);
    send_frame(R_ERROR, id, msg, (uint32_t)n);
    close(inp[1]); close(outp[0]); close(errp[0]);
    if (ctl >= 0) close(ctl);
    waitpid(pid, NULL, 0);
    goto done;
  }
  fcntl(inp[1], F_SETFL, O_NONBLOCK); fcntl(outp[0], F_SETFL, O_NONBLOCK); fcntl(errp[0], F_SETFL, O_NONBLOCK);
  struct exec *x = &execs[nexecs++];
  memset(x, 0, sizeof *x);
  x->id = id; x->pid = pid; x->in.fd = inp[1]; x->out_fd = outp[0]; x->err_fd = errp[0];
  x->ctl_fd = ctl;
  /* No stdin asked for: the write end closes now, so the command reads EOF at once. */
  if (!(flags & F_STDIN)) { close(x->in.fd); x->in.fd = -1; }
  uint32_t upid = (uint32_t)pid;
  send_frame(R_STARTED, id, &upid, 4);
  goto done;
closeall:
  close(inp[0]); close(inp[1]); close(outp[0]); close(outp[1]); close(errp[0]); close(errp[1]); close(ep[0]); close(ep[1]);
  if (ctl >= 0) close(ctl);
  goto done;
bad:
  send_frame(R_ERROR, id, "bad exec request", 16);
done:
  free(argv); free(envp);
}

/* Returns 0 at EOF or when nothing more is readable now. */
static void drain(int *fd, uint8_t type, uint32_t id) {
  static char buf[65536];
  while (*fd >= 0) {
    ssize_t n = read(*fd, buf, sizeof buf);
    if (n > 0) { send_frame(type, id, buf, (uint32_t)n); continue; }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    close(*fd); *fd = -1; return;
  }
}

static void flush_q(struct outq *q) {
  while (q->fd >= 0 && q->pending_len > 0) {
    ssize_t w = write(q->fd, q->pending, q->pending_len);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      q->pending_len = 0; break; /* reader gone: drop, like a closed pipe */
    }
    memmove(q->pending, q->pending + w, q->pending_len - (size_t)w);
    q->pending_len -= (size_t)w;
  }
  if (q->fd >= 0 && q->pending_len == 0 && q->close_after) { close(q->fd); q->fd = -1; }
}

static void queue(struct outq *q, const unsigned char *p, uint32_t len) {
  if (q->fd < 0) return;
  if (len == 0) { q->close_after = 1; flush_q(q); return; }
  q->pending = realloc(q->pending, q->pending_len + len);
  memcpy(q->pending + q->pending_len, p, len); q->pending_len += len;
  flush_q(q);
}

/* The session memfd as the shell left it, in frames of at most 1 MiB. */
static void send_state(int fd, uint32_t id) {
  static char buf[1 << 20];
  off_t off = 0;
  while ((uint32_t)off <= MAX_STATE) {
    ssize_t n = pread(fd, buf, sizeof buf, off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    send_frame(R_STATE, id, buf, (uint32_t)n);
    off += n;
  }
}

static void finish(struct exec *x) {
  drain(&x->out_fd, R_STDOUT, x->id);
  drain(&x->err_fd, R_STDERR, x->id);
  if (x->ctl_fd >= 0) { send_state(x->ctl_fd, x->id); close(x->ctl_fd); }
  /* Output still held open by a background grandchild is not waited for: the command is done. */
  if (x->out_fd >= 0) close(x->out_fd);
  if (x->err_fd >= 0) close(x->err_fd);
  if (x->in.fd >= 0) close(x->in.fd);
  send_frame(R_EXIT, x->id, &x->status, 4);
  free(x->in.pending);
  *x = execs[--nexecs];
}

static void handle_frame(uint8_t type, uint32_t id, const unsigned char *p, uint32_t len) {
  struct exec *x;
  switch (type) {
  case T_EXEC: start_exec(id, p, len); break;
  case T_STDIN: if ((x = find(id))) queue(&x->in, p, len); break;
  case T_SIGNAL: {
    uint32_t sig = 0;
    if (len >= 4) memcpy(&sig, p, 4);
    if ((x = find(id)) && !x->exited) { kill(-x->pid, (int)sig); kill(x->pid, (int)sig); }
    break;
  }
  case T_PING: send_frame(R_PONG, id, p, len); break;
  }
}

/*
 * `praetor-init --enter FILE… -- PROG ARGS…`: the host-side launcher. Writes its own pid into each
 * cgroup.procs FILE, then execs PROG. The runtime (and everything it starts) is inside the sandbox's
 * cgroups from its first instruction, so no fork can slip out between spawn and placement.
 */
static int enter(int argc, char **argv) {
  int i = 2;
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%d\n", getpid());
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    int fd = open(argv[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, pid, (size_t)n) != n) { fprintf(stderr, "praetor-init: joining cgroup %s: %s\n", argv[i], strerror(errno)); return 126; }
    close(fd);
  }
  if (i + 1 >= argc) { fprintf(stderr, "praetor-init: --enter needs -- PROG\n"); return 126; }
  execvp(argv[i + 1], argv + i + 1);
  fprintf(stderr, "praetor-init: exec %s: %s\n", argv[i + 1], strerror(errno));
  return 127;
}

/*
 * `praetor-init --idmap-mount SRC DST AGENT_ID`: bind SRC at DST through an id-mapped mount in
 * which SRC's owner (uid and gid) appears as the agent's id. The agent can then read and write
 * a --workspace whatever its host owner, and what it creates lands on disk owned by that owner:
 * nothing on the host is chowned, and no other host id becomes reachable.
 */
#include <sys/stat.h>
#include <sys/mount.h> /* struct mount_attr, MOUNT_ATTR_IDMAP (glibc ≥ 2.36) */
static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  close(fd);
  return n == (ssize_t)strlen(text) ? 0 : -1;
}
static int idmap_mount(const char *src, const char *dst, unsigned agent) {
  struct stat st;
  if (stat(src, &st) < 0) { perror("praetor-init: workspace"); return 1; }
  int go[2], ready[2];
  /* The go write below must fail with EPIPE, not kill us, when the child already died. */
  signal(SIGPIPE, SIG_IGN);
  if (pipe(go) || pipe(ready)) { perror("praetor-init: pipe"); return 1; }
  pid_t c = fork();
  if (c < 0) { perror("praetor-init: fork"); return 1; }
  if (c == 0) {
    char b;
    close(ready[0]); close(go[1]);
    if (unshare(CLONE_NEWUSER) < 0) { perror("praetor-init: unshare(CLONE_NEWUSER)"); _exit(1); }
    if (write(ready[1], "x", 1) != 1) _exit(1);
    if (read(go[0], &b, 1) < 0) _exit(1);
    _exit(0);
  }
  /* Drop our copies of the child's pipe ends: if the child dies before writing (unshare refused),
   * read(ready[0]) sees EOF at once instead of blocking on our own write end until the caller's
   * timeout; likewise the child's read(go[0]) sees EOF if we exit early. */
  close(ready[1]); close(go[0]);
  char b, path[64], map[64];
  int rc = 1, ns = -1, fd = -1;
  if (read(ready[0], &b, 1) != 1) { fprintf(stderr, "praetor-init: the user-namespace helper exited before it was ready\n"); goto out; }
  snprintf(map, sizeof map, "%u %u 1\n", (unsigned)st.st_uid, agent);
  snprintf(path, sizeof path, "/proc/%d/uid_map", c);
  if (write_file(path, map) < 0) { perror("praetor-init: uid_map"); goto out; }
  snprintf(map, sizeof map, "%u %u 1\n", (unsigned)st.st_gid, agent);
  snprintf(path, sizeof path, "/proc/%d/gid_map", c);
  if (write_file(path, map) < 0) { perror("praetor-init: gid_map"); goto out; }
  snprintf(path, sizeof path, "/proc/%d/ns/user", c);
  if ((ns = open(path, O_RDONLY | O_CLOEXEC)) < 0) goto out;
  fd = (int)syscall(SYS_open_tree, AT_FDCWD, src, 1 /*OPEN_TREE_CLONE*/ | O_CLOEXEC | AT_RECURSIVE);
  if (fd < 0) { perror("praetor-init: open_tree"); goto out; }
  struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)ns };
  if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) { perror("praetor-init: id-mapping the workspace (filesystem without id-mapped mount support?)"); goto out; }
  if (syscall(SYS_move_mount, fd, "", AT_FDCWD, dst, 4 /*MOVE_MOUNT_F_EMPTY_PATH*/) < 0) { perror("praetor-init: move_mount"); goto out; }
  rc = 0;
out:
  if (write(go[1], "x", 1) < 0) { /* child exits on EOF too */ }
  close(go[1]);
  close(ready[0]);
  waitpid(c, NULL, 0);
  if (fd >= 0) close(fd);
  if (ns >= 0) close(ns);
  return rc;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--enter") == 0) return enter(argc, argv);
  if (argc == 5 && strcmp(argv[1], "--idmap-mount") == 0) return idmap_mount(argv[2], argv[3], (unsigned)strtoul(argv[4], NULL, 10));
  sigset_t mask; sigemptyset(&mask); sigaddset(&mask, SIGCHLD); sigaddset(&mask, SIGPIPE);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) die("signalfd");
  size_t cap = 1 << 16, have = 0;
  unsigned char *buf = malloc(cap);
  send_frame(R_READY, 0, NULL, 0);
  struct pollfd pfd[2 + PFDS_PER_EXEC * MAX_EXECS];
  for (;;) {
    int n = 0;
    pfd[n++] = (struct pollfd){ .fd = 0, .events = POLLIN };
    pfd[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
    for (int i = 0; i < nexecs; i++) {
      pfd[n++] = (struct pollfd){ .fd = execs[i].out_fd, .events = POLLIN };
      pfd[n++] = (struct pollfd){ .fd = execs[i].err_fd, .events = POLLIN };
      pfd[n++] = (struct pollfd){ .fd = execs[i].in.pending_len ? execs[i].in.fd : -1, .events = POLLOUT };
    }
    if (poll(pfd, (nfds_t)n, -1) < 0) { if (errno == EINTR) continue; die("poll"); }
    for (int i = 0; i < nexecs; i++) {
      struct pollfd *q = &pfd[2 + PFDS_PER_EXEC * i];
      if (q[0].revents) drain(&execs[i].out_fd, R_STDOUT, execs[i].id);
      if (q[1].revents) drain(&execs[i].err_fd, R_STDERR, execs[i].id);
      if (q[2].revents) flush_q(&execs[i].in);
    }
    if (pfd[1].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) > 0) {}
      int status; pid_t pid;
      while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < nexecs; i++) if (execs[i].pid == pid) { execs[i].exited = 1; execs[i].status = status; finish(&execs[i]); break; }
      }
    }
    if (pfd[0].revents) {
      if (have == cap) { cap *= 2; buf = realloc(buf, cap); }
      ssize_t r = read(0, buf + have, cap - have);
      if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) _exit(0); /* host gone */
      if (r > 0) have += (size_t)r;
      size_t off = 0;
      while (have - off >= 9) {
        uint32_t len, id; memcpy(&len, buf + off, 4); memcpy(&id, buf + off + 5, 4);
        if (len > MAX_FRAME) { fprintf(stderr, "praetor-init: frame too large\n"); _exit(1); }
        if (have - off < 9 + (size_t)len) { if (cap < 9 + (size_t)len) { cap = 9 + (size_t)len; buf = realloc(buf, cap); } break; }
        handle_frame(buf[off + 4], id, buf + off + 9, len);
        off += 9 + len;
      }
      memmove(buf, buf + off, have - off); have -= off;
    }
  }
}
