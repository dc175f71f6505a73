// The domain's definition after an offline job's data is complete: the disk's <source>, <driver
// type> and (when the definition spells the chain out) <backingStore> are rewritten in the
// INACTIVE XML, and everything else is kept byte for byte, then defined again. The edit is made on
// the text itself rather than on a parsed-and-reprinted tree, so nothing else can change.
import { escapeXml } from '../../libvirt/xml.ts';

/** What the rewrite needs from libvirt; `xmlFlags` are virDomainGetXMLDesc's INACTIVE | SECURE. */
export interface DefinitionAccess {
  /** virDomainGetXMLDesc(VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE): secrets kept, so defining it loses none. */
  inactiveXml(domain: string): Promise<string>;
  /** virDomainDefineXML. */
  define(xml: string): Promise<void>;
}

export class DefinitionError extends Error {
  override name = 'DefinitionError';
}

export interface ChainImage {
  path: string;
  format: string;
}

interface Span {
  start: number;
  end: number;
}

const attr = (tag: string, name: string): string | null => {
  const m = new RegExp(`\\s${name}\\s*=\\s*(?:'([^']*)'|"([^"]*)")`).exec(tag);
  return m ? (m[1] ?? m[2] ?? '') : null;
};

const unescapeXml = (s: string): string =>
  s.replace(/&(lt|gt|quot|apos|amp|#(\d+)|#x([0-9a-fA-F]+));/g, (_, name: string, dec?: string, hex?: string) => {
    if (dec) return String.fromCodePoint(Number(dec));
    if (hex) return String.fromCodePoint(parseInt(hex, 16));
    return ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' } as Record<string, string>)[name]!;
  });

function setAttr(tag: string, name: string, value: string): string {
  const re = new RegExp(`(\\s${name}\\s*=\\s*)(?:'[^']*'|"[^"]*")`);
  const quoted = `'${escapeXml(value)}'`;
  if (re.test(tag)) return tag.replace(re, (_, lead: string) => `${lead}${quoted}`);
  return tag.replace(/\s*(\/?>)$/, ` ${name}=${quoted}$1`);
}

/** The span of the element opened at `start` (a start tag or an empty-element tag), nesting counted. */
function elementSpan(xml: string, start: number, name: string): Span {
  const firstEnd = xml.indexOf('>', start);
  if (xml[firstEnd - 1] === '/') return { start, end: firstEnd + 1 };
  const re = new RegExp(`<(/?)${name}\\b[^>]*?(/?)>`, 'g');
  re.lastIndex = firstEnd + 1;
  let depth = 1;
  for (let m = re.exec(xml); m; m = re.exec(xml)) {
    if (m[1]) depth -= 1;
    else if (!m[2]) depth += 1;
    if (depth === 0) return { start, end: m.index + m[0].length };
  }
  throw new DefinitionError(`the definition's <${name}> at offset ${start} is not closed`);
}

/** The <disk> element whose <target dev> is `target`. */
function findDisk(xml: string, target: string): Span {
  const re = /<disk\b/g;
  for (let m = re.exec(xml); m; m = re.exec(xml)) {
    const span = elementSpan(xml, m.index, 'disk');
    const body = xml.slice(span.start, span.end);
    const t = /<target\b[^>]*>/.exec(body);
    if (t && attr(t[0], 'dev') === target) return span;
    re.lastIndex = span.end;
  }
  throw new DefinitionError(`the domain's definition has no disk with target ${target}`);
}

function backingStoreXml(chain: readonly ChainImage[], indent: string): string {
  if (chain.length === 0) return '<backingStore/>';
  const [head, ...rest] = chain as [ChainImage, ...ChainImage[]];
  const inner = `${indent}  `;
  return (
    `<backingStore type='file'>\n${inner}<format type='${escapeXml(head.format)}'/>\n${inner}<source file='${escapeXml(head.path)}'/>\n` +
    `${inner}${backingStoreXml(rest, inner)}\n${indent}</backingStore>`
  );
}

/** The disk's active image as the definition names it: `<source file>`, and `<driver type>`. */
export function definedSource(xml: string, target: string): { path: string | null; format: string | null } {
  const disk = findDisk(xml, target);
  const body = xml.slice(disk.start, disk.end);
  const bs = /<backingStore\b/.exec(body);
  const own = bs ? body.slice(0, bs.index) : body;
  const source = /<source\b[^>]*>/.exec(own);
  const driver = /<driver\b[^>]*>/.exec(own);
  const file = source ? attr(source[0], 'file') : null;
  const type = driver ? attr(driver[0], 'type') : null;
  return { path: file === null ? null : unescapeXml(file), format: type === null ? null : unescapeXml(type) };
}

/**
 * `xml` with disk `target` on `chain` (active image first): its <source file>, its <driver type>,
 * and its <backingStore> when the definition has one; every other byte is left as it was.
 */
export function rewriteDiskChain(xml: string, target: string, chain: readonly ChainImage[]): string {
  const active = chain[0];
  if (!active) throw new DefinitionError('the new chain is empty');
  const disk = findDisk(xml, target);
  let body = xml.slice(disk.start, disk.end);
  const diskTag = /^<disk\b[^>]*>/.exec(body)![0];
  if (attr(diskTag, 'type') !== 'file') {
    throw new DefinitionError(`disk ${target} is of type '${attr(diskTag, 'type') ?? 'none'}': offline operations work on file disks only`);
  }
  const bsAt = body.search(/<backingStore\b/);
  if (bsAt >= 0) {
    const span = elementSpan(body, bsAt, 'backingStore');
    const lineStart = body.lastIndexOf('\n', bsAt) + 1;
    const indent = /^\s*/.exec(body.slice(lineStart, bsAt))![0];
    body = body.slice(0, bsAt) + backingStoreXml(chain.slice(1), indent) + body.slice(span.end);
  }
  const own = bsAt >= 0 ? bsAt : body.length;
  const source = /<source\b[^>]*>/.exec(body.slice(0, own));
  if (!source) throw new DefinitionError(`disk ${target} has no <source> in the definition`);
  body = body.slice(0, source.index) + setAttr(source[0], 'file', active.path) + body.slice(source.index + source[0].length);
  const ownEnd = body.search(/<backingStore\b/);
  const driver = /<driver\b[^>]*>/.exec(ownEnd >= 0 ? body.slice(0, ownEnd) : body);
  if (driver) {
    body = body.slice(0, driver.index) + setAttr(driver[0], 'type', active.format) + body.slice(driver.index + driver[0].length);
  }
  return xml.slice(0, disk.start) + body + xml.slice(disk.end);
}

/**
 * Writes the chain an offline job produced into the domain's persistent definition. Refused when
 * the definition no longer names the image the job started from (someone changed it meanwhile):
 * the data is complete either way, and the message says which file now holds the disk.
 */
export async function defineNewChain(access: DefinitionAccess, domain: string, target: string, before: ChainImage, after: readonly ChainImage[]): Promise<void> {
  const xml = await access.inactiveXml(domain);
  const now = definedSource(xml, target);
  const wanted = after[0]!;
  if (now.path !== before.path && now.path !== wanted.path) {
    throw new DefinitionError(
      `${domain}'s definition of ${target} changed during the job (it names ${now.path ?? 'no file'}, the job started from ${before.path}); ` +
        `the disk's data is now in ${wanted.path}: point ${target} at it yourself if that is what you want`,
    );
  }
  const rewritten = rewriteDiskChain(xml, target, after);
  if (rewritten !== xml) await access.define(rewritten);
}
