import { z } from 'zod';
import { tasuki } from 'tasuki';

export const app = tasuki({ queues: ['default', 'reports'] });

const report = app.task({
  name: 'report.daily',
  queue: 'reports',
  schema: z.object({ region: z.enum(['jp', 'eu']) }),
  handler: ({ region }) => ({ region, sent: true }),
});

// Checked here: the cron, the time zone, the task, and the arguments against the task's schema.
app.schedule({
  name: 'daily-report-jp',
  task: report,
  args: { region: 'jp' },
  cron: '0 9 * * *', // 5 fields; 6 with seconds first
  timezone: 'Asia/Tokyo',
  misfire: 'once', // ticks missed while no beat ran: one run for the window (or 'skip')
});
app.schedule({ name: 'heartbeat', task: report, args: { region: 'eu' }, every: '30s', expires: '30s' });

// At run time, from any process (or `tasuki schedule pause daily-report-jp --app ./app.ts`):
//   await app.schedules.pause('daily-report-jp');
// Run any number of `tasuki beat --app ./app.ts`: one is active, the others stand by.
