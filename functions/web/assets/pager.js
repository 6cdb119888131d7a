// "Load more" with infinite scroll: an IntersectionObserver on a sentinel loads the next page
// when it nears the viewport; the visible button is the fallback (and the keyboard path).

/**
 * `load()` fetches and renders one page and resolves to whether more pages exist. Returns
 * { reset(hasMore), loading }.
 */
export function pager({ button, sentinel, load, signal, rootMargin = "600px" }) {
  let hasMore = false;
  let loading = false;
  let generation = 0;

  function sync() {
    button.hidden = !hasMore;
    button.disabled = loading;
    button.textContent = loading ? "Loading…" : "Load more";
  }

  async function next() {
    if (loading || !hasMore || signal.aborted) return;
    loading = true;
    sync();
    const gen = generation;
    let more = false;
    try {
      more = await load();
    } finally {
      if (gen === generation) {
        loading = false;
        hasMore = Boolean(more) && !signal.aborted;
        sync();
        // Re-observing fires the callback again at once, so a page that still leaves the
        // sentinel on screen loads the next one.
        if (observer && hasMore) {
          observer.unobserve(sentinel);
          observer.observe(sentinel);
        }
      }
    }
  }

  const observer = "IntersectionObserver" in window
    ? new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) next().catch(() => {});
    }, { rootMargin })
    : null;
  observer?.observe(sentinel);
  button.addEventListener("click", () => next().catch(() => {}), { signal });
  signal.addEventListener("abort", () => observer?.disconnect(), { once: true });

  return {
    /** A new listing started (its first page already shown): `more` says whether to go on. */
    reset(more) {
      generation += 1;
      loading = false;
      hasMore = Boolean(more);
      sync();
      if (observer && hasMore) {
        observer.unobserve(sentinel);
        observer.observe(sentinel);
      }
    },
    next,
    get loading() {
      return loading;
    },
  };
}
