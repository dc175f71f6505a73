// Checks of qcow2 images that tests make after a block job: the data each layer was given is
// still readable through the chain, and the chain is the one expected. Test-only: the app itself
// never reads images behind QEMU's back.
import { LabError, runTool, type LayerWrite } from '../../src/main/core/lab/images.ts';

/**
 * Checks that `image` (read through its whole chain) holds every write's pattern; resolves to the
 * writes that do not match. `forceShare` reads an image a running QEMU holds locked (qemu-io -U).
 */
export async function findMissingWrites(
  image: string,
  writes: readonly LayerWrite[],
  options: { forceShare?: boolean } = {},
): Promise<LayerWrite[]> {
  const missing: LayerWrite[] = [];
  for (const w of writes) {
    if (w.length === 0) continue;
    const args = ['-r', '-f', 'qcow2'];
    if (options.forceShare) args.push('-U');
    args.push('-c', `read -q -P 0x${w.pattern.toString(16)} ${w.offset} ${w.length}`, image);
    // A mismatch prints "Pattern verification failed at offset …" and exits 1; other failures
    // (no such file, a lock held without forceShare) stay errors.
    try {
      const out = await runTool('qemu-io', args);
      if (/Pattern verification failed/i.test(out)) missing.push(w);
    } catch (err) {
      if (err instanceof LabError && /Pattern verification failed/i.test(err.message)) missing.push(w);
      else throw err;
    }
  }
  return missing;
}

/** The backing file names `qemu-img info --backing-chain` reports, from `image` down to its base. */
export async function readBackingChain(image: string, options: { forceShare?: boolean } = {}): Promise<string[]> {
  const args = ['info', '--backing-chain', '--output=json'];
  if (options.forceShare) args.push('-U');
  args.push(image);
  const parsed: unknown = JSON.parse(await runTool('qemu-img', args));
  if (!Array.isArray(parsed)) throw new LabError(`qemu-img info gave no list for ${image}`, 'TOOL_FAILED');
  return parsed.map((entry: unknown) => {
    const filename = typeof entry === 'object' && entry !== null ? (entry as { filename?: unknown }).filename : undefined;
    if (typeof filename !== 'string') throw new LabError(`qemu-img info gave a layer without filename for ${image}`, 'TOOL_FAILED');
    return filename;
  });
}
