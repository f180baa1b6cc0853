/**
 * Releases the waiters of one group commit in chunks, a millisecond apart. A commit of 200 leases used to
 * let 200 ACKs go in one burst: a relay's socket buffer is small (perfdhcp's is 32 KiB, about 50 replies),
 * and everything past it was dropped by the receiver's kernel although the server had answered. A commit
 * of up to `chunk` waiters (the usual case) is released at once, with no delay.
 */
export function releasePaced<T>(items: readonly T[], release: (item: T) => void, chunk = 32, gapMs = 1): void {
  let i = 0;
  let lastEnd: number | undefined;
  const next = (): void => {
    // A timer counts from the event loop's cached clock, so after a busy turn it can fire well before gapMs of
    // real time has passed: wait out the rest.
    const wait = lastEnd === undefined ? 0 : lastEnd + gapMs - performance.now();
    if (wait > 0) {
      setTimeout(next, wait);
      return;
    }
    const end = Math.min(items.length, i + chunk);
    for (; i < end; i++) release(items[i]!);
    lastEnd = performance.now();
    if (i < items.length) setTimeout(next, gapMs);
  };
  next();
}
