const WIDTH = 30;

/**
 * Redraws one line on stderr as `<before>[#########---------] done/total<after>`: `\r` returns to the line's start,
 * so each call overwrites the last and the caller ends the line when it is done. With nothing to do (total 0) the bar
 * is full.
 */
export function showProgress(done: number, total: number, { before = '', after = '' } = {}): void {
  const filled = total === 0 ? WIDTH : Math.min(WIDTH, Math.round((done / total) * WIDTH));
  const bar = '#'.repeat(filled) + '-'.repeat(WIDTH - filled);
  process.stderr.write(`\r${before}[${bar}] ${done.toLocaleString()}/${total.toLocaleString()}${after}`);
}
