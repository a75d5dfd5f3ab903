// SPDX-License-Identifier: GPL-2.0
/*
 * krpin: cmacheck kreplay pin agent (runs in the guest).
 *
 *   krpin pages=N [longterm] [in_cma] [areas=BASE:COUNT,...]
 *
 * Gets N anonymous pages (touched, order 0), then pins them:
 *   longterm  io_uring IORING_REGISTER_BUFFERS: the kernel pins with
 *             pin_user_pages(FOLL_LONGTERM), which first migrates pages out of
 *             CMA (check_and_migrate_movable_pages);
 *   otherwise a short-term pin: vmsplice(2) of every page into pipes, which
 *             takes a page reference (get_user_pages, FOLL_GET) that stays while
 *             the data sits unread in the pipe; migration fails on such pages.
 * With in_cma, the N pages are chosen among pages that landed inside one of the
 * areas: the agent touches pages 256 at a time until N of them lie in an area
 * (giving up when MemFree drops under 2048 pages), then gives all others back
 * (MADV_DONTNEED) before pinning.
 *
 * Prints one line:
 *   ok pages=N longterm=0|1 before_in_cma=A after_in_cma=B moved=M before=LIST after=LIST
 * LIST: the PFNs of the N pages in virtual-address order, as comma-separated
 * runs "a-b" / "a".  Or "fail reason=...".
 * Then reads commands from stdin:
 *   check -> ok pages=N in_cma=K pfns=LIST
 *   quit / end of input -> unpins (IORING_UNREGISTER_BUFFERS, closing the pipes)
 *            synchronously, then exits.
 */
#include "krcommon.h"
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>

static struct kr_area areas[KR_MAX_AREAS];
static int nareas;
static int pagemap;

/* the N pinned pages: virtual addresses */
static unsigned char **page;
static size_t n;

static void pfns_of(uint64_t *out)
{
	for (size_t i = 0; i < n; i++)
		if (kr_pfns(pagemap, page[i], 1, &out[i]))
			out[i] = 0;
}

static size_t count_in(const uint64_t *v)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += v[i] && kr_in_areas(v[i], areas, nareas);
	return k;
}

static int ring_fd = -1;
static int *pipes; /* pairs */
static size_t npipes;

static int pin_longterm(void)
{
	struct io_uring_params p;
	struct iovec *iov = calloc(n, sizeof(*iov));
	size_t niov = 0;

	memset(&p, 0, sizeof(p));
	ring_fd = syscall(__NR_io_uring_setup, 1, &p);
	if (ring_fd < 0 || !iov)
		return -errno;
	/* one iovec per run of virtually contiguous pages */
	for (size_t i = 0; i < n; i++) {
		if (niov && (unsigned char *)iov[niov - 1].iov_base + iov[niov - 1].iov_len == page[i]) {
			iov[niov - 1].iov_len += KR_PAGE;
			continue;
		}
		iov[niov].iov_base = page[i];
		iov[niov].iov_len = KR_PAGE;
		niov++;
	}
	if (syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_BUFFERS, iov, niov) < 0)
		return -errno;
	free(iov);
	return 0;
}

static int pin_short(void)
{
	const size_t per_pipe = 256; /* 1 MiB pipes */

	npipes = (n + per_pipe - 1) / per_pipe;
	pipes = calloc(npipes * 2, sizeof(int));
	if (!pipes)
		return -ENOMEM;
	for (size_t k = 0; k < npipes; k++) {
		if (pipe(&pipes[2 * k]))
			return -errno;
		if (fcntl(pipes[2 * k], F_SETPIPE_SZ, (int)(per_pipe * KR_PAGE)) < 0)
			return -errno;
		for (size_t i = k * per_pipe; i < n && i < (k + 1) * per_pipe; i++) {
			struct iovec v = { page[i], KR_PAGE };

			if (vmsplice(pipes[2 * k + 1], &v, 1, 0) != (ssize_t)KR_PAGE)
				return -errno;
		}
	}
	return 0;
}

static void unpin(void)
{
	if (ring_fd >= 0) {
		syscall(__NR_io_uring_register, ring_fd, IORING_UNREGISTER_BUFFERS, NULL, 0);
		close(ring_fd);
	}
	for (size_t k = 0; k < 2 * npipes; k++)
		close(pipes[k]);
}

int main(int argc, char **argv)
{
	long want = -1;
	int longterm = 0, in_cma = 0, ret;
	uint64_t *before, *after;
	char line[256];
	struct kr_str out = { 0 };

	for (int i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "pages=", 6))
			want = strtol(argv[i] + 6, NULL, 0);
		else if (!strcmp(argv[i], "longterm"))
			longterm = 1;
		else if (!strcmp(argv[i], "in_cma"))
			in_cma = 1;
		else if (!strncmp(argv[i], "areas=", 6))
			nareas = kr_parse_areas(argv[i] + 6, areas, KR_MAX_AREAS);
		else {
			printf("err unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	if (want <= 0 || nareas < 0) {
		printf("err usage: krpin pages=N [longterm] [in_cma] [areas=B:C,...]\n");
		return 2;
	}
	pagemap = open("/proc/self/pagemap", O_RDONLY);
	page = calloc(want, sizeof(*page));
	before = calloc(want, sizeof(*before));
	after = calloc(want, sizeof(*after));
	if (pagemap < 0 || !page || !before || !after) {
		printf("fail reason=setup errno=%d\n", errno);
		return 1;
	}
	if (!in_cma) {
		unsigned char *m = mmap(NULL, want * KR_PAGE, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (m == MAP_FAILED) {
			printf("fail reason=nomem\n");
			return 1;
		}
		for (n = 0; n < (size_t)want; n++) {
			page[n] = m + n * KR_PAGE;
			page[n][0] = 1;
		}
	} else {
		size_t max = (size_t)kr_meminfo("MemTotal") / 4, touched = 0;
		unsigned char *m = mmap(NULL, max * KR_PAGE, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		uint64_t pfn[256];
		unsigned char *keep;

		if (m == MAP_FAILED || !(keep = calloc(max, 1))) {
			printf("fail reason=nomem\n");
			return 1;
		}
		while (n < (size_t)want && touched + 256 <= max && kr_meminfo("MemFree") / 4 > 2048) {
			for (size_t i = 0; i < 256; i++)
				m[(touched + i) * KR_PAGE] = 1;
			kr_pfns(pagemap, m + touched * KR_PAGE, 256, pfn);
			for (size_t i = 0; i < 256 && n < (size_t)want; i++)
				if (pfn[i] && kr_in_areas(pfn[i], areas, nareas)) {
					keep[touched + i] = 1;
					page[n++] = m + (touched + i) * KR_PAGE;
				}
			touched += 256;
		}
		/* give back every page we do not keep */
		for (size_t i = 0; i < touched;) {
			size_t j = i;

			if (keep[i]) {
				i++;
				continue;
			}
			while (j < touched && !keep[j])
				j++;
			madvise(m + i * KR_PAGE, (j - i) * KR_PAGE, MADV_DONTNEED);
			i = j;
		}
		if (n < (size_t)want) {
			printf("fail reason=nocma found=%zu touched=%zu\n", n, touched);
			return 1;
		}
	}
	pfns_of(before);
	ret = longterm ? pin_longterm() : pin_short();
	if (ret) {
		printf("fail reason=pin errno=%d\n", -ret);
		return 1;
	}
	pfns_of(after);
	{
		size_t moved = 0;

		for (size_t i = 0; i < n; i++)
			moved += before[i] != after[i];
		kr_puts(&out, "ok pages=%zu longterm=%d before_in_cma=%zu after_in_cma=%zu moved=%zu before=",
			n, longterm, count_in(before), count_in(after), moved);
	}
	kr_put_runs(&out, before, n);
	kr_puts(&out, " after=");
	kr_put_runs(&out, after, n);
	kr_puts(&out, "\n");
	kr_write_all(1, out.s, out.len);
	while (kr_read_line(0, line, sizeof(line)) >= 0) {
		if (!strcmp(line, "check")) {
			out.len = 0;
			pfns_of(after);
			kr_puts(&out, "ok pages=%zu in_cma=%zu pfns=", n, count_in(after));
			kr_put_runs(&out, after, n);
			kr_puts(&out, "\n");
			kr_write_all(1, out.s, out.len);
		} else if (!strcmp(line, "quit")) {
			break;
		} else {
			printf("err unknown command\n");
			fflush(stdout);
		}
	}
	unpin();
	return 0;
}
