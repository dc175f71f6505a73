// `npm run audit`: `npm audit --omit=dev` over the packages the app ships, failing on any high or
// critical advisory. Where the registry's audit endpoint cannot be reached (some mirrors and
// proxies refuse it), it prints a SKIPPED line with npm's answer and succeeds: no verdict is
// invented for a check that did not run.
import { spawnSync } from 'node:child_process';
import { repoRoot } from './electron-binary.mjs';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const r = spawnSync(npm, ['audit', '--omit=dev', '--json'], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
let report;
try {
  report = JSON.parse(r.stdout);
} catch {
  console.log(`SKIPPED: npm audit gave no report (${r.error?.message ?? `exit ${r.status}`}): ${(r.stderr || '').trim().split('\n').pop()}`);
  process.exit(0);
}

if (!report.metadata?.vulnerabilities) {
  // npm's message also names the registry's address; its status and reason say enough.
  const reason = /^\d+ (.+?) - /.exec(report.message ?? '')?.[1];
  const why = report.statusCode
    ? `the registry answered the audit request with ${report.statusCode}${reason ? ` ${reason}` : ''}`
    : report.error?.summary || 'no vulnerability counts in its answer';
  console.log(`SKIPPED: npm audit could not ask the registry: ${why}`);
  console.log('         Run `npm run audit` where the public registry is reachable.');
  process.exit(0);
}

const counts = report.metadata.vulnerabilities;
const serious = Object.values(report.vulnerabilities ?? {}).filter((v) => v.severity === 'high' || v.severity === 'critical');
const summary = ['critical', 'high', 'moderate', 'low', 'info'].map((s) => `${s} ${counts[s] ?? 0}`).join(', ');
const packages = report.metadata.dependencies?.prod ?? report.metadata.dependencies?.total ?? '?';
if (serious.length === 0) {
  console.log(`npm audit --omit=dev: ${packages} runtime packages, no high or critical advisory (${summary})`);
  process.exit(0);
}
console.log(`npm audit --omit=dev: ${serious.length} package(s) with a high or critical advisory (${summary}):`);
for (const v of serious) {
  const titles = v.via.filter((x) => typeof x === 'object').map((x) => `${x.title} (${x.url})`);
  const fix = v.fixAvailable === false ? 'no fix yet' : v.fixAvailable === true ? 'fixed by `npm audit fix`' : `fixed in ${v.fixAvailable.name}@${v.fixAvailable.version}`;
  console.log(`  ${v.severity} ${v.name} ${v.range}: ${titles.join('; ') || `through ${v.via.join(', ')}`}; ${fix}`);
}
process.exit(1);
