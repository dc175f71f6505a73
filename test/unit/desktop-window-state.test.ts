// The window's remembered size and place: checked on read, kept on a screen that exists.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { defaultSize, minSize, parseWindowState, placeWindow, readWindowState, windowStateFile, writeWindowState, type Rect } from '../../src/main/desktop/window-state.ts';

const laptop: Rect = { x: 0, y: 0, width: 1920, height: 1050 };
const right: Rect = { x: 1920, y: 0, width: 2560, height: 1410 };

describe('parseWindowState', () => {
  it('reads what Strata writes', () => {
    const s = { bounds: { x: 10, y: 20, width: 1000, height: 700 }, maximized: true };
    assert.deepEqual(parseWindowState(JSON.stringify(s)), s);
  });

  it('ignores anything else', () => {
    for (const text of [
      '',
      'not json',
      'null',
      '[]',
      '{"bounds":{"x":0,"y":0,"width":800,"height":600}}',
      '{"bounds":{"x":0,"y":0,"width":800,"height":600},"maximized":"yes"}',
      '{"bounds":{"x":0.5,"y":0,"width":800,"height":600},"maximized":false}',
      '{"bounds":{"x":0,"y":0,"width":0,"height":600},"maximized":false}',
      '{"bounds":{"x":0,"y":0,"width":-800,"height":600},"maximized":false}',
      '{"bounds":{"x":1e12,"y":0,"width":800,"height":600},"maximized":false}',
      '{"bounds":{"x":0,"y":0,"width":800,"height":600,"z":1},"maximized":false}',
      '{"bounds":{"x":0,"y":0,"width":800,"height":600},"maximized":false,"__proto__":{}}',
    ]) {
      assert.equal(parseWindowState(text), null, text);
    }
  });
});

describe('placeWindow', () => {
  it('opens at the default size, centred on the primary display, the first time', () => {
    assert.deepEqual(placeWindow(null, [laptop], laptop), { bounds: { x: 320, y: 115, ...defaultSize }, maximized: false });
  });

  it('keeps a place that is on a screen', () => {
    const saved = { bounds: { x: 2000, y: 100, width: 1400, height: 900 }, maximized: false };
    assert.deepEqual(placeWindow(saved, [laptop, right], laptop), saved);
  });

  it('moves a window from an unplugged monitor onto the primary display', () => {
    const saved = { bounds: { x: 2000, y: 100, width: 1400, height: 900 }, maximized: true };
    assert.deepEqual(placeWindow(saved, [laptop], laptop), { bounds: { x: 520, y: 100, width: 1400, height: 900 }, maximized: true });
  });

  it('pulls a window hanging off an edge back in, onto the display it overlaps most', () => {
    const saved = { bounds: { x: 1800, y: -50, width: 1000, height: 800 }, maximized: false };
    assert.deepEqual(placeWindow(saved, [laptop, right], laptop), { bounds: { x: 1920, y: 0, width: 1000, height: 800 }, maximized: false });
  });

  it('shrinks a window larger than its screen, never below the minimum a screen allows', () => {
    const small: Rect = { x: 0, y: 0, width: 1366, height: 740 };
    assert.deepEqual(placeWindow({ bounds: { x: 0, y: 0, width: 2500, height: 1400 }, maximized: false }, [small], small).bounds, { x: 0, y: 0, width: 1366, height: 740 });
    assert.deepEqual(placeWindow({ bounds: { x: 5, y: 5, width: 100, height: 100 }, maximized: false }, [small], small).bounds, { x: 5, y: 5, ...minSize });
    const tiny: Rect = { x: 0, y: 0, width: 640, height: 400 };
    assert.deepEqual(placeWindow({ bounds: { x: 0, y: 0, width: 800, height: 600 }, maximized: false }, [tiny], tiny).bounds, tiny);
  });

  it('uses work areas with offsets (a panel on top or left)', () => {
    const withPanel: Rect = { x: 64, y: 32, width: 1856, height: 1048 };
    assert.deepEqual(placeWindow({ bounds: { x: 0, y: 0, width: 800, height: 600 }, maximized: false }, [withPanel], withPanel).bounds, { x: 64, y: 32, width: 800, height: 600 });
  });
});

describe('the file', () => {
  it('writes and reads back; a missing or corrupt file means none', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'strata-window-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = windowStateFile(dir);
    assert.equal(await readWindowState(file), null);
    const s = { bounds: { x: 1, y: 2, width: 900, height: 600 }, maximized: false };
    await writeWindowState(file, s);
    assert.deepEqual(await readWindowState(file), s);
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), s);
    await writeFile(file, '{"bounds":');
    assert.equal(await readWindowState(file), null);
  });
});
