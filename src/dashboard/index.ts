/**
 * `tasuki/dashboard`: the web dashboard and its JSON API (Hono). A subpath of its own, so apps that
 * do not serve it never load the web framework. See docs/dashboard.md.
 */
export {
  createDashboard,
  serveDashboard,
  type Dashboard,
  type DashboardOptions,
  type DashboardServer,
} from './dashboard.js';
export type { Overview, QueueRow, TaskView } from './overview.js';
export type { ChartPoint, LiveMessage, PageEvent } from './live.js';
