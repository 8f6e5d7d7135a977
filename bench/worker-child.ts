/**
 * A worker process for the drain and latency scenarios: runs one system's worker against the
 * bench's Redis and reports to the parent over IPC. Throughput is measured here, inside the worker,
 * from the first handler call to the last finish confirmed by Redis.
 */
import { performance } from 'node:perf_hooks';
import { loadSystem } from './systems/system.js';
import type { ChildConfig, ChildReport, ParentCommand } from './worker-process.js';

const WATCHDOG_MS = 5 * 60_000;

function send(msg: ChildReport): Promise<void> {
  return new Promise((resolve) => process.send?.(msg, () => resolve()) ?? resolve());
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
  setTimeout(() => process.exit(3), WATCHDOG_MS).unref();
  const system = await loadSystem(config.system);
  let first: number | undefined;
  let cpu0: NodeJS.CpuUsage | undefined;
  let started = 0;
  const warmup = config.warmup ?? 0;
  const worker = await system.worker({
    ...config,
    onTask: () => {
      // The clock starts at the first task after the warm-up ones.
      if (++started === warmup + 1) {
        first = performance.now();
        cpu0 = process.cpuUsage();
      }
    },
  });
  const stopRequested = new Promise<void>((resolve) =>
    process.on('message', (m: ParentCommand) => {
      if (m.type === 'stop') resolve();
    }),
  );
  await send({ type: 'ready' });
  if (config.expect > 0) {
    const end = await worker.done;
    const cpu = process.cpuUsage(cpu0);
    await send({
      type: 'done',
      elapsedMs: end - (first ?? end),
      cpuUs: cpu.user + cpu.system,
      failures: worker.failures(),
    });
  }
  await stopRequested;
  await worker.stop();
  await send({ type: 'stopped', failures: worker.failures() });
  process.disconnect();
}

main().catch(async (err: unknown) => {
  await send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exit(1);
});
