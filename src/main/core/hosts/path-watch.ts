// Waits, cheaply, for a path to appear or be replaced (a daemon's socket made again, the system
// D-Bus coming up): one inotify watch on the nearest folder on the way that exists, moved deeper
// as folders appear. Nothing is polled.
import { existsSync, statSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { log } from '../../log/logger.ts';

/** The path's identity (device, inode, change time), or null when it is missing. */
export function pathStamp(path: string): string | null {
  try {
    const s = statSync(path, { bigint: true });
    return `${s.dev}:${s.ino}:${s.ctimeNs}`;
  } catch {
    return null;
  }
}

function nearestExisting(path: string): string {
  let dir = dirname(path);
  while (!existsSync(dir) && dir !== dirname(dir)) dir = dirname(dir);
  return dir;
}

/**
 * Calls `changed` once, when `path`'s stamp differs from `since` (the stamp when the failure was
 * seen); checks once at the start, so a change in between is not missed. Returns the way to stop.
 */
export function watchPath(path: string, since: string | null, changed: () => void): () => void {
  let watcher: FSWatcher | null = null;
  let watchedDir: string | null = null;
  let done = false;
  const stop = (): void => {
    done = true;
    watcher?.close();
    watcher = null;
  };
  const check = (): void => {
    if (done) return;
    if (pathStamp(path) !== since) {
      stop();
      changed();
      return;
    }
    const dir = nearestExisting(path);
    if (dir === watchedDir) return;
    watcher?.close();
    watchedDir = dir;
    try {
      // Not persistent: a host waiting for its daemon must not keep the process alive on its own.
      watcher = watch(dir, { persistent: false }, check);
      watcher.on('error', (err) => {
        log.debug('a watch for a path ended; Retry still works', { path, dir, err });
        watcher?.close();
        watcher = null;
      });
    } catch (err) {
      log.debug('cannot watch a folder for a path to appear; Retry still works', { path, dir, err });
      watcher = null;
    }
    // The folder may have gained what we wait for between the stat and the watch.
    check();
  };
  check();
  return stop;
}
