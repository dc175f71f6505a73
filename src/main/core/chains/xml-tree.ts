// A small, strict-enough XML reader for the documents libvirt writes (domain XML): elements,
// attributes and text, into a plain tree. It exists because reading chains is the hot path of
// every domain view and preview, and a general-purpose parser cost over 1 ms per domain; this
// one reads a domain of 200 layers in a small fraction of that.
//
// It never expands entities other than XML's five and character references, and skips
// DOCTYPE, comments and processing instructions, so entity tricks cannot grow the input; it
// walks the document in one pass without recursion, so deep nesting cannot exhaust the stack.
// The tree's size is bounded by the input's.

export interface XmlElement {
  name: string;
  attrs: ReadonlyMap<string, string>;
  children: XmlElement[];
  /** The element's own character data (CDATA included), entities decoded. */
  text: string;
}

export class XmlSyntaxError extends Error {
  override name = 'XmlSyntaxError';
}

// A Map, not an object literal: `&constructor;` or `&toString;` must not find Object.prototype's
// members and decode to a function's source text.
const predefined = new Map([
  ['amp', '&'],
  ['lt', '<'],
  ['gt', '>'],
  ['quot', '"'],
  ['apos', "'"],
]);

// A slice of the document would keep the whole document alive (V8 shares the characters): a
// path kept in a cache or in a job's history then held its domain's XML, and the memory soak saw
// one XML per job retained. Slicing a fresh concatenation copies just the value.
function own(s: string): string {
  return (' ' + s).slice(1);
}

function decode(raw: string): string {
  if (!raw.includes('&')) return own(raw);
  return raw.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z]+);/g, (whole, ref: string) => {
    if (ref.startsWith('#')) {
      const code = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : whole;
    }
    // An entity a DOCTYPE declared is left as written: it is never expanded.
    return predefined.get(ref) ?? whole;
  });
}

// Elements without attributes share one empty map: a Map each cost most of an element's memory,
// and a document of nested empty elements grew the heap by over 400 bytes per element.
const noAttributes: ReadonlyMap<string, string> = new Map();

// Most of a domain's text is layout between elements: a line break and the next line's spaces.
// Such a run is appended as one shared string per indentation, neither a slice of the document
// (which would keep it alive) nor a copy of its own.
const layouts: string[] = [];

function indentation(xml: string, from: number, to: number): string | null {
  if (xml.charCodeAt(from) !== 0x0a || to - from > 256) return null;
  for (let k = from + 1; k < to; k++) if (xml.charCodeAt(k) !== 0x20) return null;
  return (layouts[to - from] ??= '\n' + ' '.repeat(to - from - 1));
}

const nameEnd = /[\s/>]/g;
const attribute = /\s*([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/y;

/** Parses `xml` into its root element; throws XmlSyntaxError on what it cannot read. */
export function parseXml(xml: string): XmlElement {
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  let i = 0;
  const fail = (what: string): never => {
    throw new XmlSyntaxError(`${what} at offset ${i}`);
  };
  const skipPast = (marker: string, what: string): void => {
    const end = xml.indexOf(marker, i);
    if (end < 0) fail(`unterminated ${what}`);
    i = end + marker.length;
  };
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const top = stack[stack.length - 1];
    if (lt < 0 || lt > i) {
      const end = lt < 0 ? xml.length : lt;
      const layout = top ? indentation(xml, i, end) : null;
      if (layout !== null) top!.text += layout;
      else {
        const text = xml.slice(i, end);
        if (top) top.text += decode(text);
        else if (text.trim() !== '') fail('text outside the root element');
      }
      if (lt < 0) break;
      i = lt;
    }
    const next = xml.charCodeAt(i + 1);
    if (next === 0x21 /* ! */ && xml.startsWith('<!--', i)) {
      skipPast('-->', 'comment');
    } else if (next === 0x21 && xml.startsWith('<![CDATA[', i)) {
      const start = i + 9;
      skipPast(']]>', 'CDATA section');
      if (top) top.text += xml.slice(start, i - 3);
    } else if (next === 0x3f /* ? */) {
      skipPast('?>', 'processing instruction');
    } else if (next === 0x21) {
      // DOCTYPE, possibly with an internal subset in brackets: skipped whole, never used.
      // The '[' is looked for only up to the first '>': searching the rest of the document for
      // every declaration made a run of '<!x>' quadratic (a megabyte of them took seconds).
      const close = xml.indexOf('>', i);
      const bracket = close < 0 ? -1 : xml.slice(i, close).indexOf('[');
      if (bracket >= 0) {
        i += bracket;
        skipPast(']', 'DOCTYPE internal subset');
      }
      skipPast('>', 'declaration');
    } else if (next === 0x2f /* / */) {
      const end = xml.indexOf('>', i);
      if (end < 0) fail('unterminated end tag');
      const open = stack.pop();
      // The usual case, </name> right after its name, without slicing it out.
      const exact = open !== undefined && end === i + 2 + open.name.length && xml.startsWith(open.name, i + 2);
      if (!exact) {
        const name = xml.slice(i + 2, end).trim();
        if (!open || open.name !== name) fail(`</${name}> does not close <${open?.name ?? 'nothing'}>`);
      }
      // An array grown by push keeps room for 17 children; an exact copy keeps deep nesting of
      // single children from costing over 100 bytes more per element.
      if (open!.children.length > 0) open!.children = open!.children.slice();
      i = end + 1;
    } else {
      nameEnd.lastIndex = i + 1;
      const m = nameEnd.exec(xml);
      if (!m) fail('unterminated start tag');
      const name = xml.slice(i + 1, m!.index);
      if (name === '') fail('an element without a name');
      let attrs: Map<string, string> | null = null;
      i = m!.index;
      for (;;) {
        attribute.lastIndex = i;
        const a = attribute.exec(xml);
        if (!a) break;
        (attrs ??= new Map()).set(a[1]!, decode(a[2] ?? a[3] ?? ''));
        i = attribute.lastIndex;
      }
      const element: XmlElement = { name, attrs: attrs ?? noAttributes, children: [], text: '' };
      while (i < xml.length && /\s/.test(xml[i]!)) i++;
      const selfClosing = xml.startsWith('/>', i);
      if (!selfClosing && xml[i] !== '>') fail(`a malformed attribute in <${name}>`);
      i += selfClosing ? 2 : 1;
      if (top) top.children.push(element);
      else if (root) fail('a second root element');
      else root = element;
      if (!selfClosing) stack.push(element);
    }
  }
  if (stack.length > 0) fail(`<${stack[stack.length - 1]!.name}> is not closed`);
  if (!root) fail('no element');
  return root!;
}

/** The first child element named `name`. */
export function child(element: XmlElement | null | undefined, name: string): XmlElement | null {
  if (!element) return null;
  for (const c of element.children) if (c.name === name) return c;
  return null;
}

export function children(element: XmlElement | null | undefined, name: string): XmlElement[] {
  return element ? element.children.filter((c) => c.name === name) : [];
}
