// Registration only: the heartbeat lives in shared/handlers (see functions/status.ts).
import { app } from '@azure/functions';
import { syncTimer } from '../shared/handlers/sync';

app.timer('sync', { schedule: '%SYNC_SCHEDULE%', runOnStartup: false, useMonitor: true, handler: syncTimer });
