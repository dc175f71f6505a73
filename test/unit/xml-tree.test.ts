// The XML reader behind every chain: what libvirt writes, and what a hostile document tries.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDomainXml } from '../../src/main/core/chains/domain-xml.ts';
import { child, parseXml, XmlSyntaxError } from '../../src/main/core/chains/xml-tree.ts';

describe('parseXml', () => {
  it('reads elements, both quote kinds, self-closing tags, text, CDATA, comments and PIs', () => {
    const root = parseXml(`<?xml version="1.0"?>\n<!-- made by hand -->\n<a x="1" y='two words'><b/><c>t&amp;u<![CDATA[<raw>]]></c><?pi x?></a>\n`);
    assert.equal(root.name, 'a');
    assert.equal(root.attrs.get('x'), '1');
    assert.equal(root.attrs.get('y'), 'two words');
    assert.deepEqual(root.children.map((c) => c.name), ['b', 'c']);
    assert.equal(child(root, 'c')?.text, 't&u<raw>');
  });

  it('decodes the five entities and character references, in attributes and text', () => {
    const root = parseXml(`<a v="&lt;&gt;&quot;&apos;&amp;&#65;&#x42;">&#x1F600;</a>`);
    assert.equal(root.attrs.get('v'), `<>"'&AB`);
    assert.equal(root.text, '\u{1F600}');
  });

  it('never expands a DOCTYPE entity (no billion laughs)', () => {
    const lol = `<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><d><name>&b;</name></d>`;
    assert.equal(child(parseXml(lol), 'name')?.text, '&b;');
  });

  it('reads 100,000 levels of nesting without recursion', () => {
    const depth = 100_000;
    const root = parseXml('<e>'.repeat(depth) + '</e>'.repeat(depth));
    assert.equal(root.name, 'e');
  });

  it('refuses what it cannot read, with where', () => {
    for (const bad of ['', 'text', '<a>', '<a></b>', '<a><!-- x</a>', '<a x=1/>', '<a/><b/>', '<a><![CDATA[x</a>', '</a>', '<>']) {
      assert.throws(() => parseXml(bad), XmlSyntaxError, JSON.stringify(bad));
    }
  });
});

describe('parseDomainXml on hostile documents', () => {
  it('a chain nested deeper than any real disk stops at 1,000 layers', () => {
    const depth = 5000;
    let inner = '<backingStore/>';
    for (let i = depth; i > 0; i--) inner = `<backingStore type='file' index='${i}'><source file='/x/${i}'/>${inner}</backingStore>`;
    const xml = `<domain><name>d</name><uuid>u</uuid><devices><disk type='file'><source file='/x/top'/>${inner}<target dev='vda'/></disk></devices></domain>`;
    assert.equal(parseDomainXml(xml).disks[0]?.chain.length, 1001);
  });

  it('a disk without a source or target, a network disk without a host, a huge attribute', () => {
    const huge = 'p'.repeat(1 << 20);
    const xml = `<domain><name>d</name><uuid>u</uuid><devices>
      <disk type='file'><target dev='vda'/></disk>
      <disk type='file'><source file='/x/no-target'/></disk>
      <disk type='network'><source protocol='nbd' name='e'/><target dev='vdb'/></disk>
      <disk type='file'><source file='/${huge}'/><target dev='vdc'/></disk>
    </devices></domain>`;
    const disks = parseDomainXml(xml).disks;
    assert.deepEqual(disks.map((d) => [d.target, d.chain.length]), [['vda', 0], ['vdb', 1], ['vdc', 1]]);
    assert.equal(disks[1]?.chain[0]?.path, 'nbd:///e');
  });
});
