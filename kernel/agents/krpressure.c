// SPDX-License-Identifier: GPL-2.0
/*
 * krpressure: cmacheck kreplay memory-pressure agent (runs in the guest).
 *
 *   krpressure (pages=N | free=N) [areas=BASE:COUNT,...]
 *
 * Fills memory with movable anonymous pages (private anonymous mapping, one
 * write per page, no THP in our kernel so every page is order 0) and keeps them:
 *   pages=N  touch exactly N pages;
 *   free=N   touch pages, 256 at a time, until MemFree <= N pages (N >= 1024).
 * Each page holds its own value (page index and magic, at both ends of the page)
 * so that migration can be checked to keep contents.
 *
 * Then prints one line on stdout:
 *   ok pages=N in_cma=K free=F free_cma=C
 * (K: pages whose PFN, from /proc/self/pagemap, lies in one of the areas;
 *  F, C: MemFree and CmaFree of /proc/meminfo in pages), or "fail reason=...".
 * Then reads commands from stdin, one per line:
 *   check  -> ok pages=N in_cma=K moved=M bad=B absent=A
 *             (moved: pages whose PFN changed since the previous report;
 *              bad: pages whose content changed; absent: pages not present)
 *   quit / end of input -> exits, freeing everything.
 */
#include "krcommon.h"
#include <sys/mman.h>

#define MAGIC 0x4b52505245535300ULL /* "KRPRESS\0" */

static struct kr_area areas[KR_MAX_AREAS];
static int nareas;
static unsigned char *mem;
static size_t npages;
static uint64_t *pfn, *prev;
static int pagemap;

static void report(int first)
{
	size_t in_cma = 0, moved = 0, bad = 0, absent = 0;

	if (kr_pfns(pagemap, mem, npages, pfn)) {
		printf("fail reason=pagemap errno=%d\n", errno);
		fflush(stdout);
		return;
	}
	for (size_t i = 0; i < npages; i++) {
		uint64_t *p = (uint64_t *)(mem + i * KR_PAGE);

		if (!pfn[i])
			absent++;
		else if (kr_in_areas(pfn[i], areas, nareas))
			in_cma++;
		if (!first && pfn[i] != prev[i])
			moved++;
		if (p[0] != (MAGIC ^ i) || p[KR_PAGE / 8 - 1] != ~(MAGIC ^ i))
			bad++;
	}
	memcpy(prev, pfn, npages * sizeof(*pfn));
	if (first)
		printf("ok pages=%zu in_cma=%zu free=%ld free_cma=%ld\n", npages, in_cma,
		       kr_meminfo("MemFree") / 4, kr_meminfo("CmaFree") / 4);
	else
		printf("ok pages=%zu in_cma=%zu moved=%zu bad=%zu absent=%zu\n", npages,
		       in_cma, moved, bad, absent);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	long want_pages = -1, want_free = -1;
	size_t maxpages;
	char line[256];

	for (int i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "pages=", 6))
			want_pages = strtol(argv[i] + 6, NULL, 0);
		else if (!strncmp(argv[i], "free=", 5))
			want_free = strtol(argv[i] + 5, NULL, 0);
		else if (!strncmp(argv[i], "areas=", 6))
			nareas = kr_parse_areas(argv[i] + 6, areas, KR_MAX_AREAS);
		else {
			printf("err unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	if (nareas < 0 || (want_pages < 0) == (want_free < 0) ||
	    (want_free >= 0 && want_free < 1024)) {
		printf("err usage: krpressure (pages=N | free=N>=1024) [areas=B:C,...]\n");
		return 2;
	}
	pagemap = open("/proc/self/pagemap", O_RDONLY);
	if (pagemap < 0) {
		printf("fail reason=pagemap errno=%d\n", errno);
		return 1;
	}
	maxpages = want_pages >= 0 ? (size_t)want_pages : (size_t)kr_meminfo("MemTotal") / 4;
	if (maxpages == 0)
		maxpages = 1;
	mem = mmap(NULL, maxpages * KR_PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	pfn = calloc(maxpages, sizeof(*pfn));
	prev = calloc(maxpages, sizeof(*prev));
	if (mem == MAP_FAILED || !pfn || !prev) {
		printf("fail reason=nomem\n");
		return 1;
	}
	for (npages = 0; npages < maxpages && want_pages != 0;) {
		if (want_free >= 0 && npages % 256 == 0 && kr_meminfo("MemFree") / 4 <= want_free)
			break;
		uint64_t *p = (uint64_t *)(mem + npages * KR_PAGE);

		p[0] = MAGIC ^ npages;
		p[KR_PAGE / 8 - 1] = ~(MAGIC ^ npages);
		npages++;
	}
	report(1);
	while (kr_read_line(0, line, sizeof(line)) >= 0) {
		if (!strcmp(line, "check"))
			report(0);
		else if (!strcmp(line, "quit"))
			break;
		else {
			printf("err unknown command\n");
			fflush(stdout);
		}
	}
	return 0;
}
