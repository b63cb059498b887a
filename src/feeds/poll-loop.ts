/**
 * A round of work run again `everyMs` after the previous one ends — not at a fixed rate, so a slow
 * round never overlaps the next — until stopped. `stop()` waits for the round in flight. A round
 * that throws is handed to `onError` and the loop goes on. The webhook dispatcher of one store and
 * serve's round over every tenant's dispatcher both poll through this.
 */
export interface PollLoop {
  /** True once stop() was called: a long round may check it between its steps and end early. */
  readonly stopped: boolean;
  stop(): Promise<void>;
}

export function startPollLoop(round: () => Promise<void>, everyMs: number, onError: (e: unknown) => void): PollLoop {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const loop = () => {
    if (stopped) return;
    running = round()
      .catch(onError)
      .finally(() => {
        if (!stopped) timer = setTimeout(loop, everyMs);
      });
  };
  loop();
  return {
    get stopped() {
      return stopped;
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
