import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createLogger, formatLine, LogOutput, type LogOptions } from '../../src/main/log/logger.ts';

const at = new Date('2026-01-02T03:04:05.678Z');

describe('formatLine', () => {
  it('writes logfmt: time, level, the fields in order, then the message', () => {
    assert.equal(
      formatLine(at, 'info', 'pull started', { host: 'default', job: 'j1', bandwidth: 1048576 }),
      'time=2026-01-02T03:04:05.678Z level=info host=default job=j1 bandwidth=1048576 msg="pull started"\n',
    );
  });
  it('quotes values with spaces, quotes, equals signs or newlines, and leaves out absent fields', () => {
    const line = formatLine(at, 'warn', 'x', { path: '/a b', said: 'he said "hi"', eq: 'a=b', nl: 'a\nb', gone: undefined, nil: null });
    assert.equal(line, 'time=2026-01-02T03:04:05.678Z level=warn path="/a b" said="he said \\"hi\\"" eq="a=b" nl="a\\nb" msg=x\n');
    assert.equal(line.split('\n').length, 2, 'one line per event');
  });
  it('writes an error as its code and message, and an object as JSON', () => {
    const err = Object.assign(new Error('no such file'), { code: 'ENOENT' });
    assert.match(formatLine(at, 'error', 'x', { err }), / err="ENOENT: no such file" /);
    assert.match(formatLine(at, 'error', 'x', { limits: { max: 2 } }), / limits="\{\\"max\\":2\}" /);
  });
  it('never throws on a value that cannot be serialised', () => {
    const cycle: Record<string, unknown> = {};
    cycle['self'] = cycle;
    assert.match(formatLine(at, 'info', 'x', { cycle }), /cycle="\[object Object\] \(/);
  });
});

describe('LogOutput', () => {
  let dataDir: string;
  let stderr: string[];
  let outputs: LogOutput[];
  const open = (options: LogOptions = {}): LogOutput => {
    const o = new LogOutput({ dataDir, stderr: (l) => stderr.push(l), now: () => at, ...options });
    outputs.push(o);
    return o;
  };
  const fileLines = (): string[] => readFileSync(join(dataDir, 'logs/strata.log'), 'utf8').split('\n').filter(Boolean);

  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'strata-log-'));
    stderr = [];
    outputs = [];
  });
  afterEach(() => {
    for (const o of outputs) o.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('by default: info and up in the file, warn and up on stderr, no debug anywhere', () => {
    const out = open();
    const log = createLogger(out);
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    out.flush();
    assert.deepEqual(
      fileLines().map((l) => /msg=(\w)/.exec(l)?.[1]),
      ['i', 'w', 'e'],
    );
    assert.deepEqual(
      stderr.map((l) => /msg=(\w)/.exec(l)?.[1]),
      ['w', 'e'],
    );
    assert.equal(out.filePath, join(dataDir, 'logs/strata.log'));
    assert.equal(log.enabled('debug'), false);
    assert.equal(log.enabled('info'), true);
  });

  it('verbose: debug lines in the file and on stderr', () => {
    const log = createLogger(open({ verbose: true }));
    log.debug('libvirt call failed', { code: 'VIR_ERR_NO_DOMAIN' });
    assert.match(stderr[0] ?? '', /level=debug code=VIR_ERR_NO_DOMAIN msg="libvirt call failed"/);
    outputs[0]!.flush();
    assert.equal(fileLines().length, 1);
  });

  it('a child adds its host and job to every line; a call can add more', () => {
    const log = createLogger(open());
    const jobLog = log.child({ host: 'default' }).child({ job: 'j1' });
    jobLog.warn('slow', { domain: 'vm1' });
    assert.match(stderr[0] ?? '', / host=default job=j1 domain=vm1 msg=slow\n$/);
  });

  it('is cheap when a level is off: fields are not looked at', () => {
    const log = createLogger(open());
    let read = false;
    const fields = {
      get costly() {
        read = true;
        return 1;
      },
    };
    log.debug('x', fields);
    assert.equal(read, false);
  });

  it('writes warnings to the file at once, info lines on the next flush', () => {
    const out = open();
    const log = createLogger(out);
    log.info('gathered');
    assert.equal(existsSync(join(dataDir, 'logs/strata.log')) ? fileLines().length : 0, 0);
    log.warn('now');
    assert.equal(fileLines().length, 2, 'a warning writes what was gathered before it too');
  });

  it('rotates at the size limit and keeps N old files', () => {
    const out = open({ maxFileBytes: 400, keepFiles: 2 });
    const log = createLogger(out);
    for (let i = 0; i < 40; i++) log.warn(`line ${i}`, { padding: 'x'.repeat(40) });
    const files = readdirSync(join(dataDir, 'logs')).sort();
    assert.deepEqual(files, ['strata.log', 'strata.log.1', 'strata.log.2']);
    for (const f of files) assert.ok(readFileSync(join(dataDir, 'logs', f)).length <= 400, `${f} is within the limit`);
    assert.match(fileLines().at(-1) ?? '', /msg="line 39"/);
  });

  it('appends to the log of an earlier run', () => {
    createLogger(open()).warn('first run');
    outputs[0]!.close();
    createLogger(open()).warn('second run');
    assert.equal(fileLines().length, 2);
  });

  it('never throws when the log folder cannot be made: says so on stderr and goes on', () => {
    // A file where the folder should be fails for root too, which permissions would not.
    writeFileSync(join(dataDir, 'logs'), '');
    const out = open();
    assert.equal(out.filePath, null);
    assert.match(stderr[0] ?? '', /level=warn path=.*logs\/strata.log err=.* msg="cannot write the log file: logging to stderr only"/);
    createLogger(out).error('still logged');
    assert.match(stderr[1] ?? '', /still logged/);
  });

  it('never throws when stderr itself fails', () => {
    const log = createLogger(
      open({
        stderr: () => {
          throw new Error('EPIPE');
        },
      }),
    );
    log.error('nobody listens');
    outputs[0]!.flush();
    assert.equal(fileLines().length, 1);
  });

  it('with no data folder: stderr only, warn and up', () => {
    const log = createLogger(open({ dataDir: null }));
    log.info('not shown');
    log.warn('shown');
    assert.equal(stderr.length, 1);
    assert.equal(outputs[0]!.filePath, null);
  });
});
