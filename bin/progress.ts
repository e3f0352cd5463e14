/** Progress lines on a terminal (one line, rewritten in place); silent when stderr is not a TTY or with --quiet. */
export type Progress = (done: number, total: number, label?: string) => void;

export function terminalProgress(quiet: boolean): Progress & { done(): void } {
  const enabled = !quiet && process.stderr.isTTY === true;
  let last = 0;
  let shown = false;
  const fn = ((done: number, total: number, label = '') => {
    if (!enabled) return;
    const now = Date.now();
    if (now - last < 80 && done < total) return;
    last = now;
    const pct = total > 0 ? ` ${done}/${total}` : '';
    process.stderr.write(`\r\x1b[2K${label}${pct}`);
    shown = true;
  }) as Progress & { done(): void };
  fn.done = () => {
    if (shown) process.stderr.write('\r\x1b[2K');
    shown = false;
  };
  return fn;
}
