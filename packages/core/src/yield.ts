/**
 * Lets the event loop run (timers, I/O, signals, IPC) between long synchronous compute steps, so
 * progress output, Ctrl-C and test runners stay responsive during minutes of model work.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
