import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ON_RABBITMQ, RABBITMQ_SCENARIOS, SCENARIOS, SYSTEMS, type Row } from '../../bench/config.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Runs `npm run bench -- --smoke` into a temp file (never bench/results/latest.json). */
function runSmoke(out: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--smoke', '--out', out], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    // A hang guard, not a speed check: under a CPU hog per core a smoke run took close to 2 minutes.
    const timer = setTimeout(() => child.kill('SIGKILL'), 400_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

test(
  'bench --smoke runs every scenario for every system and writes latest-format rows',
  { timeout: 420_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tasuki-bench-'));
    try {
      const out = join(dir, 'smoke.json');
      const { code, output } = await runSmoke(out);
      assert.equal(code, 0, `bench --smoke failed:\n${output}`);
      const rows = JSON.parse(readFileSync(out, 'utf8')) as Row[];
      assert.ok(Array.isArray(rows));
      for (const r of rows) {
        assert.deepEqual(Object.keys(r).sort(), ['max', 'median', 'min', 'scenario', 'system', 'unit']);
        assert.ok((SYSTEMS as readonly string[]).includes(r.system), `unknown system ${r.system}`);
        assert.ok(Number.isFinite(r.median) && r.min <= r.median && r.median <= r.max, JSON.stringify(r));
        assert.ok(r.unit.length > 0);
      }
      for (const scenario of SCENARIOS) {
        for (const system of SYSTEMS) {
          // tasuki on RabbitMQ runs the enqueue, drain and latency scenarios only.
          if (system === ON_RABBITMQ && !RABBITMQ_SCENARIOS.has(scenario)) continue;
          assert.ok(
            rows.some((r) => r.scenario === scenario && r.system === system),
            `no row for ${scenario} / ${system}`,
          );
        }
      }
      assert.ok(
        rows.some((r) => r.scenario === 'ceiling-drain-P1' && r.system === 'tasuki'),
        'no redis-benchmark ceiling row',
      );
      assert.match(
        output,
        /\| scenario \| unit \| tasuki \| tasuki-full \| tasuki-rabbitmq \| bullmq \| bee-queue \| tasuki \/ bullmq \| tasuki \/ bee-queue \| tasuki-full \/ bullmq \|/,
      );
      assert.match(output, /tasuki on RabbitMQ \/ tasuki on Redis Streams:\n {2}enqueue-single: /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
