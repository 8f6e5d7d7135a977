/**
 * The app module bench/beat.ts runs `tasuki beat` with: a task and a per-second schedule whose
 * tasks expire an hour after their tick, so each message carries its tick time (`x` − 1 h).
 */
import { z } from 'zod';
import { tasuki } from '../../src/index.js';

export const EXPIRES_MS = 3_600_000;

export const app = tasuki({ prefix: process.env.PREFIX ?? 'bench', queues: ['default'] });

const ping = app.task({ name: 'ping', schema: z.object({}), handler: () => 'pong' });

app.schedule({ name: 'per-second', task: ping, args: {}, cron: '* * * * * *', expires: EXPIRES_MS });
