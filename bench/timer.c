/* Interleaved start-up timer for bench/run.sh.
 *
 *   timer [-u UID] [-j JOBS] ROUNDS SPEC...
 *
 * Each SPEC file holds a contestant: its name on the first line, then one argv entry per line.
 * Contestants run in turn, round after round (interleaved, so machine noise hits all alike), each
 * with posix_spawn() and wait4(); the wall time of spawn-to-exit is recorded. Output, one line per
 * contestant: name, median/p10/p90 in microseconds, max RSS in KiB, failures.
 * With -j JOBS, measures throughput instead: JOBS parallel workers each start the contestant
 * ROUNDS times; prints starts per second. With -u UID the timer drops to that uid/gid first.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct contestant {
	char *name;
	char **argv;
	long long *ns;
	long maxrss;
	int failures;
};

static long long now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void load(struct contestant *c, const char *path, int rounds) {
	FILE *f = fopen(path, "r");
	if (!f) { perror(path); exit(2); }
	char *line = NULL; size_t cap = 0; ssize_t n; int argc = 0, room = 16;
	c->argv = calloc(room, sizeof(char *));
	c->name = NULL;
	while ((n = getline(&line, &cap, f)) >= 0) {
		if (n > 0 && line[n - 1] == '\n') line[n - 1] = 0;
		if (!c->name) { c->name = strdup(line); continue; }
		if (argc + 2 > room) { room *= 2; c->argv = realloc(c->argv, room * sizeof(char *)); }
		c->argv[argc++] = strdup(line);
	}
	c->argv[argc] = NULL;
	fclose(f);
	c->ns = calloc(rounds, sizeof(long long));
	c->maxrss = 0; c->failures = 0;
}

static posix_spawn_file_actions_t quiet; /* children's stdout and stderr go to /dev/null */

static long long run_once(struct contestant *c) {
	pid_t pid; struct rusage ru; int status;
	long long start = now_ns();
	if (posix_spawn(&pid, c->argv[0], &quiet, NULL, c->argv, environ) != 0) { c->failures++; return 0; }
	if (wait4(pid, &status, 0, &ru) < 0) { c->failures++; return 0; }
	long long took = now_ns() - start;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) c->failures++;
	if (ru.ru_maxrss > c->maxrss) c->maxrss = ru.ru_maxrss;
	return took;
}

static int cmp(const void *a, const void *b) {
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv) {
	int opt, jobs = 0; long uid = -1;
	while ((opt = getopt(argc, argv, "u:j:")) != -1) {
		if (opt == 'u') uid = atol(optarg);
		else if (opt == 'j') jobs = atoi(optarg);
		else return 2;
	}
	if (argc - optind < 2) { fprintf(stderr, "usage: timer [-u UID] [-j JOBS] ROUNDS SPEC...\n"); return 2; }
	posix_spawn_file_actions_init(&quiet);
	posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&quiet, 2, "/dev/null", O_WRONLY, 0);
	int rounds = atoi(argv[optind]);
	int n = argc - optind - 1;
	struct contestant *cs = calloc(n, sizeof *cs);
	for (int i = 0; i < n; i++) load(&cs[i], argv[optind + 1 + i], rounds);
	if (uid >= 0) {
		if (setgroups(0, NULL) || setgid(uid) || setuid(uid)) { perror("drop privileges"); return 2; }
	}
	if (jobs > 0) {
		for (int i = 0; i < n; i++) {
			long long start = now_ns();
			for (int j = 0; j < jobs; j++) {
				if (fork() == 0) {
					int bad = 0;
					for (int r = 0; r < rounds; r++) { run_once(&cs[i]); bad += cs[i].failures; cs[i].failures = 0; }
					_exit(bad ? 1 : 0);
				}
			}
			int failed = 0, status;
			for (int j = 0; j < jobs; j++) { wait(&status); if (!WIFEXITED(status) || WEXITSTATUS(status)) failed++; }
			double secs = (now_ns() - start) / 1e9;
			printf("%s\t%.0f/s\t%d\n", cs[i].name, jobs * rounds / secs, failed);
		}
		return 0;
	}
	for (int r = 0; r < rounds; r++)
		for (int k = 0; k < n; k++) {
			int i = (k + r) % n; /* rotate who goes first */
			cs[i].ns[r] = run_once(&cs[i]);
		}
	for (int i = 0; i < n; i++) {
		qsort(cs[i].ns, rounds, sizeof(long long), cmp);
		printf("%s\t%.1f\t%.1f\t%.1f\t%ld\t%d\n", cs[i].name, cs[i].ns[rounds / 2] / 1e3, cs[i].ns[rounds / 10] / 1e3,
		       cs[i].ns[rounds * 9 / 10] / 1e3, cs[i].maxrss, cs[i].failures);
	}
	return 0;
}
