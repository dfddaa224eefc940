import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Asks `check` until it gives a value, every `intervalMs`; undefined once the next look would come after `deadline`
 * (epoch ms). It looks at once first.
 */
export async function poll<T>(
  check: () => Promise<T | undefined>,
  { intervalMs, deadline }: { intervalMs: number; deadline: number },
): Promise<T | undefined> {
  for (;;) {
    const found = await check();
    if (found !== undefined) return found;
    if (Date.now() + intervalMs >= deadline) return undefined;
    await sleep(intervalMs);
  }
}
