import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

test(
  'bench:cluster --smoke measures every mode and the task path (3 masters, no replicas)',
  { timeout: 300_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tasuki-bench-cluster-'));
    try {
      const out = join(dir, 'cluster.json');
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'bench/cluster.ts', '--smoke', '--masters', '3', '--replicas', '0', '--out', out],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      assert.equal(code, 0, `bench:cluster --smoke failed:\n${output}`);
      const result = JSON.parse(readFileSync(out, 'utf8')) as {
        bandwidth: { mode: string; totalPerMessage: number; busPerMessage: number }[];
        taskPath: { one: { drain: number }; clustered: { drain: number } };
      };
      assert.deepEqual(
        result.bandwidth.map((r) => r.mode),
        ['PUBLISH', 'SPUBLISH', 'tasuki channel'],
      );
      const [publish, , channel] = result.bandwidth;
      // Classic PUBLISH crosses the cluster bus to the other masters (~3 KB each); a channel does not
      // (what it shows is the bus's own pings during the run).
      const pub = publish?.busPerMessage ?? 0;
      const ch = channel?.busPerMessage ?? Infinity;
      assert.ok(pub > 4000 && ch * 4 < pub, `cluster bus bytes per message: PUBLISH ${pub}, channel ${ch}`);
      assert.ok(result.taskPath.one.drain > 0 && result.taskPath.clustered.drain > 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
