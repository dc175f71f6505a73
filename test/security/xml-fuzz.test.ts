// The domain XML reader under generated and hostile input. Whatever libvirt hands over (and a
// domain's <metadata> may hold any XML its owner wrote) must come back as chains or as a clean
// error: no other exception, no hang, no entity expansion, memory in proportion to the input.
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseDomainXml } from '../../src/main/core/chains/domain-xml.ts';
import { child, parseXml, XmlSyntaxError, type XmlElement } from '../../src/main/core/chains/xml-tree.ts';
import { assertPrototypesClean, fuzz, pollutionKeys } from './fuzz.ts';

// Shaped like `virsh dumpxml` of a running lab domain during a copy, plus the disk kinds Strata
// reads without running jobs on them.
const realDomain = `<domain type='kvm' id='155'>
  <name>strata-lab-1</name>
  <uuid>0f8c2a6e-5d2b-4d7e-9d7c-1b2a3c4d5e6f</uuid>
  <metadata><app:note xmlns:app="http://example.org/app">kept &amp; ignored</app:note></metadata>
  <memory unit='KiB'>65536</memory>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/tmp/strata-lab/l1/layer-2.qcow2' index='3'/>
      <backingStore type='file' index='2'>
        <format type='qcow2'/>
        <source file='/tmp/strata-lab/l1/layer-1.qcow2'/>
        <backingStore type='file' index='1'>
          <format type='qcow2'/>
          <source file='/tmp/strata-lab/l1/layer-0-base.qcow2'/>
          <backingStore/>
        </backingStore>
      </backingStore>
      <mirror type='file' file='/tmp/strata-lab/l1/copy.qcow2' format='qcow2' job='copy' ready='yes'>
        <format type='qcow2'/>
        <source file='/tmp/strata-lab/l1/copy.qcow2' index='4'/>
      </mirror>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='nbd' name='export1' index='5'><host name='storage.example' port='10809'/></source>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='volume' device='disk'>
      <source pool='default' volume='v.qcow2'/>
      <target dev='vdc' bus='virtio'/>
      <readonly/><shareable/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
  </devices>
</domain>
`;

/** Only these may leave the reader: a syntax error, or "this is not a domain". */
function assertCleanFailure(err: unknown): void {
  assert.ok(err instanceof Error, `threw a non-Error: ${String(err)}`);
  assert.ok(
    err instanceof XmlSyntaxError || /not a libvirt domain XML document/.test(err.message),
    `an unexpected ${err.name}: ${err.message}`,
  );
}

/** Runs the domain parser; on success checks the result has the shape the rest of Strata reads. */
function parseBounded(xml: string, maxMs: number): void {
  const started = performance.now();
  try {
    const parsed = parseDomainXml(xml);
    assert.equal(typeof parsed.name, 'string');
    for (const disk of parsed.disks) {
      assert.equal(typeof disk.target, 'string');
      assert.ok(disk.chain.length <= 1001, 'a chain is capped');
      for (const layer of disk.chain) assert.equal(typeof layer.path, 'string');
    }
  } catch (err) {
    assertCleanFailure(err);
  }
  const ms = performance.now() - started;
  assert.ok(ms < maxMs, `took ${ms.toFixed(0)} ms on ${xml.length} characters`);
}

// Hostile pieces a mutation splices into real XML.
const snippets = [
  '<',
  '>',
  '</',
  '/>',
  '<!--',
  '-->',
  '<![CDATA[',
  ']]>',
  '<?',
  '?>',
  '<!DOCTYPE d [<!ENTITY a "&a;&a;">]>',
  '<!ENTITY x SYSTEM "file:///etc/passwd">',
  '&x;',
  '&a;',
  '&#0;',
  '&#xD800;',
  '&#1114112;',
  '&constructor;',
  '&__proto__;',
  '"',
  "'",
  '=',
  '<backingStore>',
  '</backingStore>',
  '<backingStore/>',
  "<source file='/etc/shadow'/>",
  "<disk type='network'><source protocol='nbd'/>",
  "<target dev='vda'/>",
  '<__proto__ constructor="x" prototype="y"/>',
  '\u0000',
  '\uFFFF',
  '\uD83D',
  'x'.repeat(10_000),
];

const mutation = fc.record({
  at: fc.nat(),
  cut: fc.nat({ max: 40 }),
  insert: fc.oneof(fc.constantFrom(...snippets), fc.string({ maxLength: 30, unit: 'binary' })),
});

function mutate(xml: string, ops: readonly { at: number; cut: number; insert: string }[]): string {
  let out = xml;
  for (const op of ops) {
    const at = op.at % (out.length + 1);
    out = out.slice(0, at) + op.insert + out.slice(at + op.cut);
  }
  return out;
}

// A generated well-formed document and the tree it stands for, to check the reader reads it back.
type Part = { element: Gen } | { text: string };
interface Gen {
  name: string;
  attrs: [string, string][];
  parts: Part[];
}

const xmlName = fc.oneof(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.:-]{0,8}$/), fc.constantFrom(...pollutionKeys));
const anyText = fc.string({ maxLength: 20, unit: 'binary' });
const { element: genElement } = fc.letrec<{ element: Gen; part: Part }>((tie) => ({
  element: fc.record({
    name: xmlName,
    attrs: fc.uniqueArray(fc.tuple(xmlName, anyText), { maxLength: 4, selector: ([n]) => n }),
    parts: fc.array(tie('part'), { maxLength: 4, depthIdentifier: 'xml' }),
  }),
  part: fc.oneof({ depthSize: 'small', depthIdentifier: 'xml' }, fc.record({ text: anyText }), fc.record({ element: tie('element') })),
}));

function escape(s: string, style: number, quote: string): string {
  let out = '';
  for (const ch of s) {
    if (ch === '&') out += style % 2 ? '&#38;' : '&amp;';
    else if (ch === '<') out += style % 3 ? '&lt;' : '&#x3C;';
    else if (ch === '>') out += '&gt;';
    else if (ch === quote) out += quote === '"' ? '&quot;' : '&apos;';
    else out += ch;
  }
  return out;
}

function serialise(e: Gen, style: number): string {
  const quote = style % 2 ? '"' : "'";
  const attrs = e.attrs.map(([n, v]) => ` ${n}=${quote}${escape(v, style, quote)}${quote}`).join('');
  if (e.parts.length === 0 && style % 3 === 0) return `<${e.name}${attrs}/>`;
  const body = e.parts
    .map((p, i) => {
      if ('element' in p) return serialise(p.element, style + i) + (i % 2 ? '<!-- c -->' : '<?pi x?>');
      return style % 5 === 0 && !p.text.includes(']]>') ? `<![CDATA[${p.text}]]>` : escape(p.text, style + i, '');
    })
    .join('');
  return `<${e.name}${attrs}${style % 4 ? ' ' : ''}>${body}</${e.name}>`;
}

function expected(e: Gen): unknown {
  return {
    name: e.name,
    attrs: Object.fromEntries(e.attrs),
    children: e.parts.flatMap((p) => ('element' in p ? [expected(p.element)] : [])),
    text: e.parts.map((p) => ('text' in p ? p.text : '')).join(''),
  };
}

function plain(e: XmlElement): unknown {
  return { name: e.name, attrs: Object.fromEntries(e.attrs), children: e.children.map(plain), text: e.text };
}

const runs = { roundTrip: 2000, mutations: 3000, noise: 3000 } as const;

describe('XML reader: generated well-formed documents', () => {
  it(`reads back exactly the tree it was given (${runs.roundTrip} documents)`, () => {
    fc.assert(
      fc.property(genElement, fc.nat({ max: 59 }), (e, style) => {
        assert.deepEqual(plain(parseXml(`<?xml version="1.0"?>\n${serialise(e, style)}\n`)), expected(e));
      }),
      fuzz(runs.roundTrip),
    );
    assertPrototypesClean();
  });
});

describe('XML reader: hostile documents', () => {
  it(`random mutations of real libvirt XML: chains or a clean error, each within 250 ms (${runs.mutations} documents)`, () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 8 }), (ops) => parseBounded(mutate(realDomain, ops), 250)),
      fuzz(runs.mutations),
    );
    assertPrototypesClean();
  });

  it(`random strings of XML's own punctuation (${runs.noise} documents)`, () => {
    const unit = fc.constantFrom('<', '>', '/', '!', '?', '[', ']', '-', '&', ';', '#', 'x', '"', "'", '=', ' ', 'a', 'domain', 'disk', 'CDATA[');
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 200 }), (s) => parseBounded(s, 250)),
      fuzz(runs.noise),
    );
  });

  it('does not expand entities: billion laughs, quadratic blow-up, external and parameter entities', () => {
    const lol = ['<!ENTITY l0 "lol">', ...Array.from({ length: 9 }, (_, i) => `<!ENTITY l${i + 1} "${`&l${i};`.repeat(10)}">`)].join('');
    const big = 'x'.repeat(100_000);
    const cases: [string, string][] = [
      [`<!DOCTYPE domain [${lol}]><domain><name>&l9;</name></domain>`, '&l9;'],
      [`<!DOCTYPE domain [<!ENTITY b "${big}">]><domain><name>${'&b;'.repeat(1000)}</name></domain>`, '&b;'.repeat(1000)],
      ['<!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/passwd">]><domain><name>&x;</name></domain>', '&x;'],
      ['<!DOCTYPE domain [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]><domain><name>&e;</name></domain>', '&e;'],
      ['<!DOCTYPE domain SYSTEM "http://127.0.0.1:9/d.dtd"><domain><name>n</name></domain>', 'n'],
    ];
    for (const [xml, name] of cases) assert.equal(parseDomainXml(xml).name, name);
  });

  it('reads an entity named after an Object member as written, not as the member', () => {
    for (const key of ['constructor', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf']) {
      const root = parseXml(`<domain a="&${key};"><name>&${key};</name></domain>`);
      assert.equal(root.attrs.get('a'), `&${key};`);
      assert.equal(child(root, 'name')?.text, `&${key};`);
    }
    assertPrototypesClean();
  });

  it('keeps a disk’s fields from an attribute or element named __proto__', () => {
    const xml = `<domain><name>d</name><devices><disk type='file' __proto__='x' constructor='y'><__proto__/><source file='/a' __proto__='{"polluted":1}'/><target dev='vda'/></disk></devices></domain>`;
    const disk = parseDomainXml(xml).disks[0];
    assert.deepEqual(disk?.chain.map((l) => l.path), ['/a']);
    assertPrototypesClean();
  });
});

// Shapes that made (or could make) a one-pass reader go quadratic: each is read at about 4 MB,
// where a quadratic scan takes tens of seconds and a linear one well under one.
const scaling: [string, (n: number) => string][] = [
  ['declarations', (n) => '<!x>'.repeat(n) + '<domain/>'],
  ['declarations inside', (n) => '<domain>' + '<!x>'.repeat(n) + '</domain>'],
  ['nesting', (n) => '<a>'.repeat(n) + '</a>'.repeat(n)],
  ['empty siblings', (n) => '<domain>' + '<a/>'.repeat(n) + '</domain>'],
  ['attributes', (n) => '<domain' + Array.from({ length: n / 4 }, (_, i) => ` a${i}='1'`).join('') + '/>'],
  ['one attribute repeated', (n) => '<domain' + " a='1'".repeat(n) + '/>'],
  ['entity-like text', (n) => '<domain>' + '&aaaa'.repeat(n) + '</domain>'],
  ['character references', (n) => '<domain>' + '&#65;'.repeat(n) + '</domain>'],
  ['comments', (n) => '<domain>' + '<!---->'.repeat(n) + '</domain>'],
  ['unclosed comment', (n) => '<domain><!--' + '-'.repeat(n)],
  ['unclosed attribute', (n) => "<domain a='" + 'x'.repeat(n)],
  ['unclosed tags', (n) => '<a'.repeat(n)],
  ['end tags only', (n) => '</a>'.repeat(n)],
  ['brackets', (n) => '<!DOCTYPE d ' + '['.repeat(n)],
  ['chain', (n) => `<domain><devices><disk type='file'><source file='/a'/>${"<backingStore type='file'><source file='/b'/>".repeat(n / 10)}</disk></devices></domain>`],
];

describe('XML reader: time and memory in proportion to the input', () => {
  for (const [shape, make] of scaling) {
    it(`${shape}: about 4 MB read in under 3 s`, { timeout: 30_000 }, () => {
      const xml = make(1_000_000).slice(0, 4_500_000);
      parseBounded(xml, 3000);
    });
  }

  it('the heap grows by less than 32 bytes per character of input, whatever the shape', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    for (const [shape, make] of [scaling[2]!, scaling[3]!, scaling[4]!, ['real domains', (n: number) => `<list>${realDomain.repeat(n / 500)}</list>`] as const]) {
      const xml = make(2_000_000);
      gc();
      const before = process.memoryUsage().heapUsed;
      const tree = parseXml(xml);
      gc();
      const perChar = (process.memoryUsage().heapUsed - before) / xml.length;
      assert.ok(tree.name.length > 0);
      assert.ok(perChar < 32, `${shape}: ${perChar.toFixed(1)} bytes per character of ${xml.length}`);
    }
  });
});
