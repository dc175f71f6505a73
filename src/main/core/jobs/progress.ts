// libvirt's cur/end is a ratio, not a size: end = 1 means "cannot tell yet" (cur = 0) or an
// empty job that is ready (cur = 1).
export function progressOf(cur: number, end: number): number | null {
  if (end > 1) return Math.min(1, Math.max(0, cur / end));
  if (end === 1 && cur === 1) return 1;
  return null;
}
