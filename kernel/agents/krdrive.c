// SPDX-License-Identifier: GPL-2.0
/*
 * krdrive: cmacheck kreplay command-script driver (runs in the guest as /init's child).
 *
 *   krdrive [SCRIPT]        (default /kreplay/script)
 *
 * Executes the script one line at a time against the cmacheck_cma module
 * (/sys/kernel/debug/cmacheck/ctl), the CMA debugfs files
 * (/sys/kernel/debug/cma/NAME/) and the agents krpressure and krpin, and prints
 * one result line per command:
 *
 *   KR <line> <verb> <status> [key=value ...]
 *
 * <line> is the 1-based line number in the script; <status> is ok, fail or err
 * (err: the command was not understood; free text follows).  Line 0 carries the
 * boot information, and the last line is "KR <n> end ok".  The lines go to
 * /dev/console (stdout) and, clean of kernel messages, to /dev/ttyS1.
 * The language is documented in kernel/README.md.
 */
#include "krcommon.h"
#include <ctype.h>
#include <dirent.h>
#include <signal.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

#define CTL "/sys/kernel/debug/cmacheck/ctl"
#define CMA_DFS "/sys/kernel/debug/cma"
#define MAX_HANDLES 1024
#define MAX_TOK 32

static int res_fd = -1; /* /dev/ttyS1 */
static int ctl_fd = -1;
static int echo_console = 1; /* result lines also to stdout (the console); `quiet` stops it */
static int stop_script;      /* a failed `reset`: the rest of the script is not run */

struct area {
	char name[64];
	unsigned long base, count, order_per_bit;
	uint32_t *last; /* `stats delta`: the bitmap at the previous stats (NULL: all clear) */
};
static struct area areas[KR_MAX_AREAS];
static int nareas;
static char areas_arg[256]; /* "areas=B:C,..." for the agents */

enum kind { H_FREE, H_CMA, H_HOLD, H_CONTIG, H_PRESSURE, H_PIN, H_BUDDY };
static const char *kind_name[] = { "-", "cma_alloc", "hold", "alloc_contig", "pressure", "pin", "buddy" };

struct handle {
	char id[64];
	enum kind kind;
	int area;
	unsigned long pfn, count;
	pid_t pid;
	int to, from; /* agent pipes */
};
static struct handle handles[MAX_HANDLES];

/* ---- output ---- */

static struct kr_str line_buf;

static void emit_start(int line, const char *verb, const char *status)
{
	line_buf.len = 0;
	kr_puts(&line_buf, "KR %d %s %s", line, verb, status);
}

static void emit_end(void)
{
	kr_puts(&line_buf, "\n");
	if (echo_console || res_fd < 0)
		kr_write_all(1, line_buf.s, line_buf.len);
	if (res_fd >= 0)
		kr_write_all(res_fd, line_buf.s, line_buf.len);
}

#define RESULT_BUF 4096

/* "KR line verb status REST" with REST as is (module replies can be long) */
static void emit_long(int line, const char *verb, const char *status, const char *rest)
{
	emit_start(line, verb, status);
	if (rest && *rest)
		kr_puts(&line_buf, " %s", rest);
	emit_end();
}

static void emit(int line, const char *verb, const char *status, const char *fmt, ...)
{
	va_list ap;
	char tmp[1024];

	emit_start(line, verb, status);
	if (fmt && *fmt) {
		va_start(ap, fmt);
		vsnprintf(tmp, sizeof(tmp), fmt, ap);
		va_end(ap);
		if (tmp[0])
			kr_puts(&line_buf, " %s", tmp);
	}
	emit_end();
}

/* ---- small file helpers ---- */

static long read_long(const char *dir, const char *name)
{
	char path[256], buf[64];
	int fd;
	ssize_t r;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r <= 0)
		return -1;
	buf[r] = 0;
	return strtol(buf, NULL, 0);
}

static char *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	size_t cap = 65536, n = 0;
	char *b;

	if (fd < 0)
		return NULL;
	b = malloc(cap);
	for (;;) {
		ssize_t r;

		if (n + 1 >= cap)
			b = realloc(b, cap *= 2);
		r = read(fd, b + n, cap - n - 1);
		if (r <= 0)
			break;
		n += r;
	}
	close(fd);
	b[n] = 0;
	if (len)
		*len = n;
	return b;
}

/* send a command to the module; the reply (first line) goes to reply */
static int ctl(char *reply, size_t cap, const char *fmt, ...)
{
	char cmd[256];
	va_list ap;
	ssize_t r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (ctl_fd < 0 || write(ctl_fd, cmd, strlen(cmd)) < 0) {
		snprintf(reply, cap, "err module not available");
		return -1;
	}
	r = pread(ctl_fd, reply, cap - 1, 0);
	if (r < 0)
		r = 0;
	reply[r] = 0;
	while (r > 0 && reply[r - 1] == '\n')
		reply[--r] = 0;
	return 0;
}

/* split a module reply "STATUS rest" */
static const char *status_of(char *reply, char **rest)
{
	char *sp = strchr(reply, ' ');

	if (sp) {
		*sp = 0;
		*rest = sp + 1;
	} else {
		*rest = reply + strlen(reply);
	}
	return reply;
}

/* ---- areas ---- */

static void load_areas(void)
{
	DIR *d = opendir(CMA_DFS);
	struct dirent *e;
	size_t off = 0;

	if (!d)
		return;
	while ((e = readdir(d)) && nareas < KR_MAX_AREAS) {
		char dir[320];
		struct area *a = &areas[nareas];

		if (e->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof(dir), CMA_DFS "/%s", e->d_name);
		snprintf(a->name, sizeof(a->name), "%s", e->d_name);
		a->base = read_long(dir, "base_pfn");
		a->count = read_long(dir, "count");
		a->order_per_bit = read_long(dir, "order_per_bit");
		nareas++;
	}
	closedir(d);
	off = snprintf(areas_arg, sizeof(areas_arg), "areas=");
	for (int i = 0; i < nareas; i++)
		off += snprintf(areas_arg + off, sizeof(areas_arg) - off, "%s%lu:%lu", i ? "," : "",
				areas[i].base, areas[i].count);
}

static int find_area(const char *name)
{
	if (!name) {
		for (int i = 0; i < nareas; i++)
			if (!strcmp(areas[i].name, "reserved"))
				return i;
		return nareas ? 0 : -1;
	}
	for (int i = 0; i < nareas; i++)
		if (!strcmp(areas[i].name, name))
			return i;
	return -1;
}

/* ---- script parsing ---- */

struct cmd {
	int line;
	char *verb;
	char *pos[MAX_TOK]; /* positional arguments (handles, flags) */
	int npos;
	char *key[MAX_TOK], *val[MAX_TOK];
	int nkv;
	int *used_pos, used_kv[MAX_TOK];
};

static const char *kv(struct cmd *c, const char *key)
{
	for (int i = 0; i < c->nkv; i++)
		if (!strcmp(c->key[i], key)) {
			c->used_kv[i] = 1;
			return c->val[i];
		}
	return NULL;
}

/*
 * A number: decimal or 0x hex; with suffix K, M or G a size converted to
 * 4 KiB pages (must be whole pages).  Returns 0 on success.
 */
static int parse_num(const char *s, unsigned long *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	if (*end) {
		unsigned long long mult;

		switch (*end) {
		case 'K': mult = 1ULL << 10; break;
		case 'M': mult = 1ULL << 20; break;
		case 'G': mult = 1ULL << 30; break;
		default: return -1;
		}
		if (end[1])
			return -1;
		v *= mult;
		if (v % KR_PAGE)
			return -1;
		v /= KR_PAGE;
	}
	*out = v;
	return 0;
}

/* number argument: required (def == NULL) or optional with default */
static int num_arg(struct cmd *c, const char *key, unsigned long *out, const unsigned long *def)
{
	const char *v = kv(c, key);

	if (!v) {
		if (def) {
			*out = *def;
			return 0;
		}
		emit(c->line, c->verb, "err", "missing %s=", key);
		return -1;
	}
	if (parse_num(v, out)) {
		emit(c->line, c->verb, "err", "bad number %s=%s", key, v);
		return -1;
	}
	return 0;
}

static int has_flag(struct cmd *c, const char *flag)
{
	for (int i = 0; i < c->npos; i++)
		if (!strcmp(c->pos[i], flag)) {
			c->used_pos[i] = 1;
			return 1;
		}
	return 0;
}

/* anything not consumed by the command is an error */
static int leftovers(struct cmd *c)
{
	for (int i = 0; i < c->npos; i++)
		if (!c->used_pos[i]) {
			emit(c->line, c->verb, "err", "unexpected argument %s", c->pos[i]);
			return 1;
		}
	for (int i = 0; i < c->nkv; i++)
		if (!c->used_kv[i]) {
			emit(c->line, c->verb, "err", "unknown key %s=", c->key[i]);
			return 1;
		}
	return 0;
}

static int valid_id(const char *s)
{
	if (!isalpha((unsigned char)*s) || strlen(s) >= sizeof(handles[0].id))
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return 0;
	return 1;
}

static struct handle *lookup(const char *id)
{
	for (int i = 0; i < MAX_HANDLES; i++)
		if (handles[i].kind != H_FREE && !strcmp(handles[i].id, id))
			return &handles[i];
	return NULL;
}

/* the handle argument (first positional) */
static const char *id_arg(struct cmd *c)
{
	if (c->npos < 1 || !valid_id(c->pos[0])) {
		emit(c->line, c->verb, "err", "missing or invalid handle");
		return NULL;
	}
	c->used_pos[0] = 1;
	return c->pos[0];
}

/* a new handle: must not be live */
static struct handle *new_handle(struct cmd *c, const char *id)
{
	if (lookup(id)) {
		emit(c->line, c->verb, "err", "handle %s is live", id);
		return NULL;
	}
	for (int i = 0; i < MAX_HANDLES; i++)
		if (handles[i].kind == H_FREE) {
			memset(&handles[i], 0, sizeof(handles[i]));
			snprintf(handles[i].id, sizeof(handles[i].id), "%s", id);
			return &handles[i];
		}
	emit(c->line, c->verb, "err", "too many live handles");
	return NULL;
}

/* a live handle of the given kind */
static struct handle *live_handle(struct cmd *c, const char *id, enum kind k)
{
	struct handle *h = lookup(id);

	if (!h) {
		emit(c->line, c->verb, "err", "handle %s is not live", id);
		return NULL;
	}
	if (h->kind != k) {
		emit(c->line, c->verb, "err", "handle %s is a %s handle", id, kind_name[h->kind]);
		return NULL;
	}
	return h;
}

/* ---- agents ---- */

static int spawn(struct handle *h, char **argv)
{
	int in[2], outp[2];
	pid_t pid;

	if (pipe(in) || pipe(outp))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* agents are fair game for the OOM killer (the driver is not) */
		int fd = open("/proc/self/oom_score_adj", O_WRONLY);

		if (fd >= 0) {
			kr_write_all(fd, "0", 1);
			close(fd);
		}
		dup2(in[0], 0);
		dup2(outp[1], 1);
		close(in[0]); close(in[1]); close(outp[0]); close(outp[1]);
		execv(argv[0], argv);
		printf("fail reason=exec errno=%d\n", errno);
		_exit(127);
	}
	close(in[0]);
	close(outp[1]);
	h->pid = pid;
	h->to = in[1];
	h->from = outp[0];
	return 0;
}

static char *agent_line(struct handle *h)
{
	static char *buf;
	static const size_t cap = 4 << 20;

	if (!buf)
		buf = malloc(cap);
	if (kr_read_line(h->from, buf, cap) < 0) {
		int st = 0;

		/* the agent is gone (the OOM killer, a crash): reap it, free the handle */
		close(h->to);
		close(h->from);
		waitpid(h->pid, &st, 0);
		h->kind = H_FREE;
		if (WIFSIGNALED(st))
			snprintf(buf, cap, "fail reason=agent_died signal=%d", WTERMSIG(st));
		else
			snprintf(buf, cap, "fail reason=agent_died exit=%d", WEXITSTATUS(st));
	}
	return buf;
}

static void agent_stop(struct handle *h)
{
	int st;

	kr_write_all(h->to, "quit\n", 5);
	close(h->to);
	close(h->from);
	waitpid(h->pid, &st, 0);
}

/* emit "KR line verb <agent reply>" where the reply starts with its status */
static void emit_agent(struct cmd *c, char *reply)
{
	char *rest;
	const char *st = status_of(reply, &rest);

	emit_start(c->line, c->verb, st);
	if (*rest)
		kr_puts(&line_buf, " %s", rest);
	emit_end();
}

/* ---- commands ---- */

static void cmd_cma_alloc(struct cmd *c)
{
	char reply[512], *rest;
	const char *id = id_arg(c), *st;
	unsigned long count, align, zero = 0;
	int a = find_area(kv(c, "area"));
	struct handle *h;

	if (!id || num_arg(c, "count", &count, NULL) || num_arg(c, "align", &align, &zero) || leftovers(c))
		return;
	if (a < 0) {
		emit(c->line, c->verb, "err", "no such area");
		return;
	}
	if (!(h = new_handle(c, id)))
		return;
	ctl(reply, sizeof(reply), "alloc %s %lu %lu", areas[a].name, count, align);
	st = status_of(reply, &rest);
	if (!strcmp(st, "ok")) {
		h->kind = H_CMA;
		h->area = a;
		h->pfn = strtoul(rest + 4, NULL, 10); /* "pfn=" */
		h->count = count;
	}
	emit(c->line, c->verb, st, "%s", rest);
}

static void forget_cma(int a, unsigned long pfn, unsigned long count, int exact)
{
	for (int i = 0; i < MAX_HANDLES; i++) {
		struct handle *h = &handles[i];

		if (h->kind != H_CMA || h->area != a)
			continue;
		if (exact ? (h->pfn == pfn && h->count == count)
			  : (h->pfn < pfn + count && pfn < h->pfn + h->count))
			h->kind = H_FREE;
	}
}

static void cmd_cma_release(struct cmd *c, int raw)
{
	char reply[512], *rest;
	const char *st;
	unsigned long pfn, count;
	int a;

	if (!raw && c->npos >= 1) { /* cma_release ID */
		const char *id = id_arg(c);
		struct handle *h;

		if (!id || leftovers(c) || !(h = live_handle(c, id, H_CMA)))
			return;
		a = h->area;
		pfn = h->pfn;
		count = h->count;
	} else {
		a = find_area(kv(c, "area"));
		if (num_arg(c, "pfn", &pfn, NULL) || num_arg(c, "count", &count, NULL) || leftovers(c))
			return;
		if (a < 0) {
			emit(c->line, c->verb, "err", "no such area");
			return;
		}
	}
	ctl(reply, sizeof(reply), "%s %s %lu %lu", raw ? "rawrelease" : "release",
	    areas[a].name, pfn, count);
	st = status_of(reply, &rest);
	if (!strcmp(st, "ok"))
		forget_cma(a, pfn, count, !raw);
	emit(c->line, c->verb, st, "%s", rest);
}

static void cmd_hold(struct cmd *c)
{
	char reply[512], *rest;
	const char *id = id_arg(c), *st;
	unsigned long pfn, count, one = 1;
	struct handle *h;

	const char *mt;

	if (!id || num_arg(c, "pfn", &pfn, NULL) || num_arg(c, "count", &count, &one))
		return;
	mt = kv(c, "mt");
	if (leftovers(c))
		return;
	if (mt && strcmp(mt, "movable") && strcmp(mt, "unmovable") && strcmp(mt, "reclaimable")) {
		emit(c->line, c->verb, "err", "mt= must be movable, unmovable or reclaimable");
		return;
	}
	if (!(h = new_handle(c, id)))
		return;
	ctl(reply, sizeof(reply), "hold %lu %lu%s%s", pfn, count, mt ? " " : "", mt ? mt : "");
	st = status_of(reply, &rest);
	if (!strcmp(st, "ok")) {
		h->kind = H_HOLD;
		h->pfn = pfn;
		h->count = count;
	}
	emit(c->line, c->verb, st, "%s", rest);
}

static void cmd_alloc_contig(struct cmd *c)
{
	char reply[512], *rest;
	const char *id = id_arg(c), *st;
	unsigned long count;
	struct handle *h;

	const char *node;
	unsigned long nid = 0;

	if (!id || num_arg(c, "count", &count, NULL))
		return;
	node = kv(c, "node");
	if (node && parse_num(node, &nid)) {
		emit(c->line, c->verb, "err", "bad number node=%s", node);
		return;
	}
	if (leftovers(c) || !(h = new_handle(c, id)))
		return;
	if (node)
		ctl(reply, sizeof(reply), "contig %lu %lu", count, nid);
	else
		ctl(reply, sizeof(reply), "contig %lu", count);
	st = status_of(reply, &rest);
	if (!strcmp(st, "ok")) {
		h->kind = H_CONTIG;
		h->pfn = strtoul(rest + 4, NULL, 10);
		h->count = count;
	}
	emit(c->line, c->verb, st, "%s", rest);
}

/*
 * balloc ID node=N [order=K] mt=T: a block from the buddy allocator of node N (the module's
 * `buddy`); bfree ID gives it back.
 */
static void cmd_balloc(struct cmd *c)
{
	char reply[512], *rest;
	const char *id = id_arg(c), *st, *mt;
	unsigned long nid, order, zero = 0;
	struct handle *h;

	if (!id || num_arg(c, "node", &nid, NULL) || num_arg(c, "order", &order, &zero))
		return;
	mt = kv(c, "mt");
	if (leftovers(c))
		return;
	if (!mt || (strcmp(mt, "movable") && strcmp(mt, "unmovable") && strcmp(mt, "reclaimable"))) {
		emit(c->line, c->verb, "err", "mt= must be movable, unmovable or reclaimable");
		return;
	}
	if (!(h = new_handle(c, id)))
		return;
	ctl(reply, sizeof(reply), "buddy %lu %lu %s", nid, order, mt);
	st = status_of(reply, &rest);
	if (!strcmp(st, "ok")) {
		h->kind = H_BUDDY;
		h->pfn = strtoul(rest + 4, NULL, 10);
		h->count = 1UL << order;
	}
	emit(c->line, c->verb, st, "%s", rest);
}

/* drop ID / free_contig ID / bfree ID */
static void cmd_give_back(struct cmd *c, enum kind k)
{
	char reply[512], *rest;
	const char *id = id_arg(c), *st;
	struct handle *h;

	if (!id || leftovers(c) || !(h = live_handle(c, id, k)))
		return;
	if (k == H_BUDDY)
		ctl(reply, sizeof(reply), "bfree %lu", h->pfn);
	else
		ctl(reply, sizeof(reply), "%s %lu %lu", k == H_HOLD ? "drop" : "freecontig", h->pfn, h->count);
	st = status_of(reply, &rest);
	if (!strcmp(st, "ok"))
		h->kind = H_FREE;
	emit(c->line, c->verb, st, "%s", rest);
}

/* labels / busy: "VERB pfn=P count=N", the module's reply as is */
static void cmd_range_query(struct cmd *c)
{
	char reply[RESULT_BUF], *rest;
	const char *st;
	unsigned long pfn, count;

	if (num_arg(c, "pfn", &pfn, NULL) || num_arg(c, "count", &count, NULL) || leftovers(c))
		return;
	ctl(reply, sizeof(reply), "%s %lu %lu", c->verb, pfn, count);
	st = status_of(reply, &rest);
	emit_long(c->line, c->verb, st, rest);
}

static void cmd_relabel(struct cmd *c)
{
	char reply[512], *rest;
	const char *st, *mt;
	unsigned long pfn;

	if (num_arg(c, "pfn", &pfn, NULL))
		return;
	mt = kv(c, "mt");
	if (leftovers(c))
		return;
	if (!mt) {
		emit(c->line, c->verb, "err", "missing mt=");
		return;
	}
	ctl(reply, sizeof(reply), "relabel %lu %s", pfn, mt);
	st = status_of(reply, &rest);
	emit(c->line, c->verb, st, "%s", rest);
}

/* bfirst node=N order=K mt=T pfn=P count=C (experimental: the buddy allocator) */
static void cmd_bfirst(struct cmd *c)
{
	char reply[512], *rest;
	const char *st, *mt;
	unsigned long nid, order, pfn, count, zero = 0;

	unsigned long keep, one = 1;

	if (num_arg(c, "node", &nid, NULL) || num_arg(c, "order", &order, &zero) ||
	    num_arg(c, "pfn", &pfn, NULL) || num_arg(c, "count", &count, NULL) ||
	    num_arg(c, "keep", &keep, &one))
		return;
	mt = kv(c, "mt");
	if (leftovers(c))
		return;
	if (!mt) {
		emit(c->line, c->verb, "err", "missing mt=");
		return;
	}
	ctl(reply, sizeof(reply), "bfirst %lu %lu %s %lu %lu %lu", nid, order, mt, pfn, count, keep);
	st = status_of(reply, &rest);
	emit(c->line, c->verb, st, "%s", rest);
}

static void cmd_node(struct cmd *c)
{
	char reply[RESULT_BUF], *rest;
	const char *st;
	unsigned long nid;

	if (num_arg(c, "nid", &nid, NULL) || leftovers(c))
		return;
	ctl(reply, sizeof(reply), "node %lu", nid);
	st = status_of(reply, &rest);
	emit_long(c->line, c->verb, st, rest);
}

/* a key's value in a module reply ("... key=value ..."), or 0 */
static unsigned long reply_num(const char *reply, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), " %s=", key);
	if (!strncmp(reply, pat + 1, strlen(pat + 1)))
		return strtoul(reply + strlen(pat + 1), NULL, 10);
	p = strstr(reply, pat);
	return p ? strtoul(p + strlen(pat), NULL, 10) : 0;
}

/*
 * node_setup nid=N pfn=P count=C: node N must hold [P, P+C) (the trace's machine), and
 * those frames must all be free; every other frame of the node is then fenced off (held),
 * so that alloc_contig_pages on that node can succeed only inside [P, P+C).  With
 * scrub=1 the free frames no fence can hold (in the pageblocks of the kernel's own pages)
 * are taken too (the module's `scrub`), so that the buddy allocator of the node has free
 * frames only in [P, P+C): `taken=N` is how many.
 */
static void cmd_node_setup(struct cmd *c)
{
	char node[RESULT_BUF], busy[RESULT_BUF], fence[512], scrub[128] = "", *rest, *brest, *frest;
	unsigned long nid, pfn, count, start, end, held = 0, kernel = 0, doscrub, zero = 0;

	if (num_arg(c, "nid", &nid, NULL) || num_arg(c, "pfn", &pfn, NULL) ||
	    num_arg(c, "count", &count, NULL) || num_arg(c, "scrub", &doscrub, &zero) || leftovers(c))
		return;
	ctl(node, sizeof(node), "node %lu", nid);
	if (strcmp(status_of(node, &rest), "ok")) {
		emit(c->line, c->verb, "fail", "reason=node %s", rest);
		return;
	}
	start = reply_num(rest, "start_pfn");
	end = reply_num(rest, "end_pfn");
	if (start > pfn || end < pfn + count) {
		emit_start(c->line, c->verb, "fail");
		kr_puts(&line_buf, " reason=layout %s", rest);
		emit_end();
		return;
	}
	ctl(busy, sizeof(busy), "busy %lu %lu", pfn, count);
	status_of(busy, &brest);
	/* the node before the machine, then after it */
	for (int part = 0; part < 2; part++) {
		unsigned long a = part ? pfn + count : start, e = part ? end : pfn;

		if (a >= e)
			continue;
		ctl(fence, sizeof(fence), "fence %lu %lu", a, e - a);
		if (strcmp(status_of(fence, &frest), "ok")) {
			emit(c->line, c->verb, "fail", "reason=fence %s", frest);
			return;
		}
		held += reply_num(frest, "held");
		kernel += reply_num(frest, "kernel");
	}
	if (doscrub) {
		char sreply[128], *srest;

		ctl(sreply, sizeof(sreply), "scrub %lu %lu %lu", nid, pfn, count);
		if (strcmp(status_of(sreply, &srest), "ok")) {
			emit(c->line, c->verb, "fail", "reason=scrub %s", srest);
			return;
		}
		snprintf(scrub, sizeof(scrub), " %s", srest);
	}
	emit_start(c->line, c->verb, "ok");
	kr_puts(&line_buf, " %s %s held=%lu kernel=%lu%s", rest, brest, held, kernel, scrub);
	emit_end();
}

/* the area's bitmap from debugfs, as 32-bit words (bit j of the area = bit j%32 of word j/32) */
static uint32_t *read_bitmap(int a, unsigned long *nwords)
{
	char path[400], *bm, *p;
	unsigned long bits = areas[a].count >> areas[a].order_per_bit, n = (bits + 31) / 32, w = 0;
	uint32_t *words = calloc(n + 1, sizeof(*words));

	snprintf(path, sizeof(path), CMA_DFS "/%s/bitmap", areas[a].name);
	bm = read_file(path, NULL);
	for (p = bm; p && *p && w < n;) {
		char *end;
		unsigned long word = strtoul(p, &end, 0);

		if (end == p)
			break;
		words[w++] = (uint32_t)word;
		p = end;
	}
	free(bm);
	/* bits past the area's end are not the area's */
	if (bits % 32)
		words[n - 1] &= (uint32_t)((1UL << (bits % 32)) - 1);
	*nwords = n;
	return words;
}

/* the indices of the set bits of words[0..n) */
static uint64_t *bit_list(const uint32_t *words, unsigned long n, unsigned long *nset)
{
	uint64_t *set = NULL;
	unsigned long k = 0, cap = 0;

	for (unsigned long w = 0; w < n; w++)
		for (int b = 0; words[w] && b < 32; b++)
			if (words[w] & (1U << b)) {
				if (k == cap)
					set = realloc(set, (cap = cap ? cap * 2 : 256) * sizeof(*set));
				set[k++] = w * 32 + b;
			}
	*nset = k;
	return set;
}

/*
 * stats [area=NAME] [delta]: the area's debugfs values.  With `delta` (kfuzz: thousands of
 * stats per boot, and the serial line is the bottleneck) the set bits are given as
 * flip=LIST, the bits that changed since the previous `stats delta` of the area (the first
 * one, and the one after a `reset`, against a clear bitmap), and free/free_cma are left out.
 */
static void cmd_stats(struct cmd *c)
{
	int a = find_area(kv(c, "area")), delta = has_flag(c, "delta");
	char dir[320];
	unsigned long bits, n, nset;
	uint32_t *words;
	uint64_t *set;

	if (leftovers(c))
		return;
	if (a < 0) {
		emit(c->line, c->verb, "err", "no such area");
		return;
	}
	snprintf(dir, sizeof(dir), CMA_DFS "/%s", areas[a].name);
	bits = areas[a].count >> areas[a].order_per_bit;
	words = read_bitmap(a, &n);
	emit_start(c->line, c->verb, "ok");
	if (delta) {
		uint32_t *flip = calloc(n + 1, sizeof(*flip));

		for (unsigned long w = 0; w < n; w++)
			flip[w] = words[w] ^ (areas[a].last ? areas[a].last[w] : 0);
		free(areas[a].last);
		areas[a].last = words;
		words = NULL;
		set = bit_list(flip, n, &nset);
		free(flip);
		kr_puts(&line_buf,
			" area=%s base_pfn=%lu count=%lu order_per_bit=%lu used=%ld maxchunk=%ld bits=%lu flip=",
			areas[a].name, areas[a].base, areas[a].count, areas[a].order_per_bit,
			read_long(dir, "used"), read_long(dir, "maxchunk"), bits);
	} else {
		set = bit_list(words, n, &nset);
		kr_puts(&line_buf,
			" area=%s base_pfn=%ld count=%ld order_per_bit=%ld used=%ld maxchunk=%ld free=%ld free_cma=%ld bits=%lu set=",
			areas[a].name, read_long(dir, "base_pfn"), read_long(dir, "count"),
			read_long(dir, "order_per_bit"), read_long(dir, "used"), read_long(dir, "maxchunk"),
			kr_meminfo("MemFree") / 4, kr_meminfo("CmaFree") / 4, bits);
	}
	kr_put_runs(&line_buf, set, nset);
	emit_end();
	free(set);
	free(words);
}

/*
 * reset: gives back everything this run holds (cma_alloc allocations, holds, contiguous
 * allocations: the module's `reset`), stops the agents, forgets every handle, then checks
 * that every area is empty (debugfs used 0, bitmap clear).  kfuzz runs it between two
 * traces so that each starts from the state the model assumes.  A clean-up that leaves
 * an area not empty is "fail", and the rest of the script is not run (every later trace
 * would start from a state no model has).
 *   "ok released=N"  |  "fail released=N area=NAME used=U set=LIST"
 */
static void cmd_reset(struct cmd *c)
{
	char reply[512], *rest;
	const char *st;

	if (leftovers(c))
		return;
	for (int i = 0; i < MAX_HANDLES; i++) {
		struct handle *h = &handles[i];

		if (h->kind == H_PRESSURE || h->kind == H_PIN)
			agent_stop(h);
		h->kind = H_FREE;
	}
	ctl(reply, sizeof(reply), "reset");
	st = status_of(reply, &rest);
	if (strcmp(st, "ok")) {
		emit(c->line, c->verb, "fail", "reason=module %s", rest);
		stop_script = 1;
		return;
	}
	for (int a = 0; a < nareas; a++) {
		char dir[320];
		unsigned long n, nset;
		uint32_t *words = read_bitmap(a, &n);
		uint64_t *set = bit_list(words, n, &nset);
		long used;

		snprintf(dir, sizeof(dir), CMA_DFS "/%s", areas[a].name);
		used = read_long(dir, "used");
		free(areas[a].last); /* the next `stats delta` compares with a clear bitmap */
		areas[a].last = NULL;
		if (used != 0 || nset) {
			emit_start(c->line, c->verb, "fail");
			kr_puts(&line_buf, " %s area=%s used=%ld set=", rest, areas[a].name, used);
			kr_put_runs(&line_buf, set, nset);
			emit_end();
			stop_script = 1;
			free(words);
			free(set);
			return;
		}
		free(words);
		free(set);
	}
	emit(c->line, c->verb, "ok", "%s", rest);
}

/* trace n=K: a marker in the kernel log (the console), so that a BUG or WARNING can be
 * told to belong to the trace that ran when it was logged */
static void cmd_trace(struct cmd *c)
{
	unsigned long n;
	char msg[96];
	int fd;

	if (num_arg(c, "n", &n, NULL) || leftovers(c))
		return;
	fd = open("/dev/kmsg", O_WRONLY);
	if (fd >= 0) {
		int len = snprintf(msg, sizeof(msg), "<3>cmacheck kfuzz: trace %lu\n", n);

		kr_write_all(fd, msg, len);
		close(fd);
	}
	emit(c->line, c->verb, "ok", "n=%lu", n);
}

/* quiet: result lines go to ttyS1 only, no longer also to the console */
static void cmd_quiet(struct cmd *c)
{
	if (leftovers(c))
		return;
	emit(c->line, c->verb, "ok", NULL);
	if (res_fd >= 0)
		echo_console = 0;
}

static void cmd_pressure(struct cmd *c)
{
	const char *id = id_arg(c);
	const char *pages = kv(c, "pages"), *freev = kv(c, "free");
	unsigned long n;
	char arg[64];
	char *argv[] = { "/bin/krpressure", arg, areas_arg, NULL };
	struct handle *h;

	if (!id || leftovers(c))
		return;
	if ((pages != NULL) == (freev != NULL)) {
		emit(c->line, c->verb, "err", "need exactly one of pages= and free=");
		return;
	}
	if (parse_num(pages ? pages : freev, &n)) {
		emit(c->line, c->verb, "err", "bad number");
		return;
	}
	if (!(h = new_handle(c, id)))
		return;
	snprintf(arg, sizeof(arg), "%s=%lu", pages ? "pages" : "free", n);
	if (spawn(h, argv)) {
		emit(c->line, c->verb, "fail", "reason=spawn");
		return;
	}
	h->kind = H_PRESSURE;
	{
		char *reply = agent_line(h);

		if (strncmp(reply, "ok", 2) && h->kind != H_FREE) {
			agent_stop(h);
			h->kind = H_FREE;
		}
		emit_agent(c, reply);
	}
}

static void cmd_pin(struct cmd *c)
{
	const char *id = id_arg(c);
	unsigned long n;
	int longterm = has_flag(c, "longterm"), in_cma = has_flag(c, "in_cma");
	char arg[64];
	char *argv[6] = { "/bin/krpin", arg, areas_arg };
	int k = 3;
	struct handle *h;

	if (!id || num_arg(c, "pages", &n, NULL) || leftovers(c))
		return;
	if (!(h = new_handle(c, id)))
		return;
	snprintf(arg, sizeof(arg), "pages=%lu", n);
	if (longterm)
		argv[k++] = "longterm";
	if (in_cma)
		argv[k++] = "in_cma";
	argv[k] = NULL;
	if (spawn(h, argv)) {
		emit(c->line, c->verb, "fail", "reason=spawn");
		return;
	}
	h->kind = H_PIN;
	{
		char *reply = agent_line(h);

		if (strncmp(reply, "ok", 2) && h->kind != H_FREE) {
			agent_stop(h);
			h->kind = H_FREE;
		}
		emit_agent(c, reply);
	}
}

/* pressure_check / pin_check */
static void cmd_agent_check(struct cmd *c, enum kind k)
{
	const char *id = id_arg(c);
	struct handle *h;

	if (!id || leftovers(c) || !(h = live_handle(c, id, k)))
		return;
	kr_write_all(h->to, "check\n", 6);
	emit_agent(c, agent_line(h));
}

/* pressure_stop / unpin */
static void cmd_agent_stop(struct cmd *c, enum kind k)
{
	const char *id = id_arg(c);
	struct handle *h;

	if (!id || leftovers(c) || !(h = live_handle(c, id, k)))
		return;
	agent_stop(h);
	h->kind = H_FREE;
	emit(c->line, c->verb, "ok", NULL);
}

static void cmd_drain(struct cmd *c)
{
	char reply[512], *rest;
	const char *st;

	if (leftovers(c))
		return;
	ctl(reply, sizeof(reply), "drain");
	st = status_of(reply, &rest);
	emit(c->line, c->verb, st, "%s", rest);
}

static void cmd_sleep(struct cmd *c)
{
	unsigned long ms;
	struct timespec ts;

	if (num_arg(c, "ms", &ms, NULL) || leftovers(c))
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
	emit(c->line, c->verb, "ok", NULL);
}

static void run_line(int lineno, char *s)
{
	struct cmd c = { .line = lineno };
	int used_pos[MAX_TOK] = { 0 };
	char *tok[MAX_TOK + 1];
	int ntok = 0;
	char *hash = strchr(s, '#');

	if (hash)
		*hash = 0;
	for (char *t = strtok(s, " \t\r\n"); t; t = strtok(NULL, " \t\r\n")) {
		if (ntok == MAX_TOK) {
			emit(lineno, tok[0], "err", "too many arguments");
			return;
		}
		tok[ntok++] = t;
	}
	if (!ntok)
		return;
	c.verb = tok[0];
	c.used_pos = used_pos;
	for (int i = 1; i < ntok; i++) {
		char *eq = strchr(tok[i], '=');

		if (eq) {
			*eq = 0;
			for (int j = 0; j < c.nkv; j++)
				if (!strcmp(c.key[j], tok[i])) {
					emit(lineno, c.verb, "err", "repeated key %s=", tok[i]);
					return;
				}
			c.key[c.nkv] = tok[i];
			c.val[c.nkv++] = eq + 1;
		} else {
			c.pos[c.npos++] = tok[i];
		}
	}

	if (!strcmp(c.verb, "cma_alloc"))
		cmd_cma_alloc(&c);
	else if (!strcmp(c.verb, "cma_release"))
		cmd_cma_release(&c, 0);
	else if (!strcmp(c.verb, "cma_release_raw"))
		cmd_cma_release(&c, 1);
	else if (!strcmp(c.verb, "hold"))
		cmd_hold(&c);
	else if (!strcmp(c.verb, "drop"))
		cmd_give_back(&c, H_HOLD);
	else if (!strcmp(c.verb, "alloc_contig"))
		cmd_alloc_contig(&c);
	else if (!strcmp(c.verb, "free_contig"))
		cmd_give_back(&c, H_CONTIG);
	else if (!strcmp(c.verb, "balloc"))
		cmd_balloc(&c);
	else if (!strcmp(c.verb, "bfree"))
		cmd_give_back(&c, H_BUDDY);
	else if (!strcmp(c.verb, "stats"))
		cmd_stats(&c);
	else if (!strcmp(c.verb, "pressure"))
		cmd_pressure(&c);
	else if (!strcmp(c.verb, "pressure_check"))
		cmd_agent_check(&c, H_PRESSURE);
	else if (!strcmp(c.verb, "pressure_stop"))
		cmd_agent_stop(&c, H_PRESSURE);
	else if (!strcmp(c.verb, "pin"))
		cmd_pin(&c);
	else if (!strcmp(c.verb, "pin_check"))
		cmd_agent_check(&c, H_PIN);
	else if (!strcmp(c.verb, "unpin"))
		cmd_agent_stop(&c, H_PIN);
	else if (!strcmp(c.verb, "drain"))
		cmd_drain(&c);
	else if (!strcmp(c.verb, "labels") || !strcmp(c.verb, "busy"))
		cmd_range_query(&c);
	else if (!strcmp(c.verb, "node"))
		cmd_node(&c);
	else if (!strcmp(c.verb, "relabel"))
		cmd_relabel(&c);
	else if (!strcmp(c.verb, "bfirst"))
		cmd_bfirst(&c);
	else if (!strcmp(c.verb, "node_setup"))
		cmd_node_setup(&c);
	else if (!strcmp(c.verb, "sleep"))
		cmd_sleep(&c);
	else if (!strcmp(c.verb, "reset"))
		cmd_reset(&c);
	else if (!strcmp(c.verb, "trace"))
		cmd_trace(&c);
	else if (!strcmp(c.verb, "quiet"))
		cmd_quiet(&c);
	else
		emit(lineno, c.verb, "err", "unknown command");
}

int main(int argc, char **argv)
{
	const char *script = argc > 1 ? argv[1] : "/kreplay/script";
	struct utsname u;
	char reply[4096], *text, *p;
	int lineno = 0;

	signal(SIGPIPE, SIG_IGN);
	/* the OOM killer must never take the driver: the run would lose its results */
	{
		int fd = open("/proc/self/oom_score_adj", O_WRONLY);

		if (fd >= 0) {
			kr_write_all(fd, "-1000", 5);
			close(fd);
		}
	}
	res_fd = open("/dev/ttyS1", O_WRONLY | O_NOCTTY);
	if (res_fd >= 0) {
		struct termios t;

		if (!tcgetattr(res_fd, &t)) {
			cfmakeraw(&t);
			tcsetattr(res_fd, TCSANOW, &t);
		}
	}
	ctl_fd = open(CTL, O_RDWR);
	load_areas();
	uname(&u);

	/* line 0: boot information */
	{
		char *pb = "?", *mo = "?", *rest = "";

		if (ctl_fd >= 0 && !ctl(reply, sizeof(reply), "info")) {
			char *q;
			const char *st = status_of(reply, &rest);

			if (!strcmp(st, "ok")) {
				if ((q = strstr(rest, "pageblock_order=")))
					pb = q + 16;
				if ((q = strstr(rest, "max_order=")))
					mo = q + 10;
				for (q = rest; *q; q++)
					if (*q == ' ' || *q == '\n')
						*q = 0;
			}
		}
		emit(0, "boot", ctl_fd >= 0 ? "ok" : "fail",
		     "kernel=%s pageblock_order=%s max_order=%s mem_pages=%ld free=%ld free_cma=%ld areas=%d%s",
		     u.release, pb, mo, kr_meminfo("MemTotal") / 4, kr_meminfo("MemFree") / 4,
		     kr_meminfo("CmaFree") / 4, nareas, ctl_fd >= 0 ? "" : " reason=module");
		for (int i = 0; i < nareas; i++)
			emit(0, "area", "ok", "name=%s base_pfn=%lu count=%lu order_per_bit=%lu",
			     areas[i].name, areas[i].base, areas[i].count, areas[i].order_per_bit);
	}

	text = read_file(script, NULL);
	if (!text) {
		emit(0, "script", "fail", "reason=missing path=%s", script);
		emit(1, "end", "ok", NULL);
		return 1;
	}
	for (p = text; *p;) {
		char *nl = strchr(p, '\n');

		if (nl)
			*nl = 0;
		lineno++;
		run_line(lineno, p);
		if (!nl || stop_script)
			break;
		p = nl + 1;
	}
	emit(lineno + 1, "end", "ok", NULL);
	if (res_fd >= 0)
		tcdrain(res_fd);
	return 0;
}
