// A practice lab's failure reaches the user as kind 'lab' with what to do, not as an internal
// error: through the real dispatcher, from the real lab code on a real folder.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { StrataApi } from '../../src/shared/contract.ts';
import { StrataError } from '../../src/shared/errors.ts';
import { Dispatcher } from '../../src/main/core/api/dispatcher.ts';
import { LabError, runTool } from '../../src/main/core/lab/images.ts';
import { removeLabDir } from '../../src/main/core/lab/lab.ts';
import { toStrataError } from '../../src/main/libvirt/errors.ts';

describe('LabError in the error envelope', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'strata-lab-error-'));
  after(() => rm(dir, { recursive: true, force: true }));

  it("a folder the lab did not make is refused as kind 'lab', with a hint", async () => {
    // Only lab.remove is reached; the dispatcher validates the request and calls it as the service would.
    const api = { 'lab.remove': async () => removeLabDir(dir) } as unknown as StrataApi;
    const reply = await new Dispatcher(api).handle('lab.remove', { hostId: 'default', domain: 'strata-lab-1' });
    assert.equal(reply.ok, false);
    const error = (reply as Extract<typeof reply, { ok: false }>).error;
    assert.equal(error.kind, 'lab');
    assert.match(error.message, /has no \.strata-lab marker: not removing a directory the lab did not make/);
    assert.match(error.hint ?? '', /removes only the folders it made/);
    assert.equal(error.libvirt, null);
  });

  it('a missing tool names the tool and says to install it', async () => {
    const err = await runTool('strata-no-such-tool', []).catch((e: unknown) => e);
    assert.ok(err instanceof LabError && err.code === 'TOOL_MISSING');
    const envelope = toStrataError(err, 'create a practice lab').toEnvelope();
    assert.equal(envelope.kind, 'lab');
    assert.match(envelope.message, /strata-no-such-tool was not found in PATH/);
    assert.match(envelope.hint ?? '', /install them/);
    // Rebuilt in the page as it left: the kind and hint survive the crossing.
    const shown = StrataError.fromEnvelope(JSON.parse(JSON.stringify(envelope)));
    assert.deepEqual([shown.kind, shown.hint], ['lab', envelope.hint]);
  });
});
