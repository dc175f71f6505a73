// Runs an async task at most once at a time: a call made while it runs asks for one more run
// afterwards (so the latest state is always read) instead of starting a second one in parallel.
// Every caller's promise settles once the state it asked for has been read.
export function coalesced(task: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | null = null;
  let again = false;
  return () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await task();
        } while (again);
      } finally {
        running = null;
      }
    })();
    return running;
  };
}
