import { EXIT, reportError } from './errors.js';

/**
 * Run a long-lived process (node, beacon) in the foreground until SIGINT,
 * SIGTERM or (with `stopOnStdinClose`, as the devnet launcher uses) stdin
 * closing; then stop it cleanly. A stop requested while it is still starting
 * is remembered; a second Ctrl-C exits at once without waiting.
 */
export async function runUntilStopped(start: () => Promise<{ stop(): Promise<void> }>, opts: { stopOnStdinClose?: boolean }): Promise<void> {
  let stopRequested = false;
  let onStop: (() => void) | undefined;
  let signals = 0;
  const requestStop = (why: string) => {
    if (why === 'SIGINT' && ++signals > 1) process.exit(EXIT.INTERRUPTED);
    if (stopRequested) return;
    stopRequested = true;
    onStop?.();
  };
  const onSigint = () => requestStop('SIGINT');
  const onSigterm = () => requestStop('SIGTERM');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  if (opts.stopOnStdinClose) {
    process.stdin.on('end', () => requestStop('stdin'));
    process.stdin.on('error', () => requestStop('stdin'));
    process.stdin.resume();
  }
  const running = await start();
  await new Promise<void>((resolve) => {
    onStop = resolve;
    if (stopRequested) resolve();
  });
  try {
    await running.stop();
  } catch (e) {
    process.exit(reportError(e));
  }
  process.off('SIGINT', onSigint);
  process.off('SIGTERM', onSigterm);
  if (opts.stopOnStdinClose) process.stdin.pause();
}
