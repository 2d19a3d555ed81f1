// Registration only: the handler lives in shared/handlers (see functions/status.ts).
import { app } from '@azure/functions';
import { logsHandler } from '../shared/handlers/logs';

app.http('logs', { methods: ['GET'], authLevel: 'function', route: 'logs', handler: logsHandler });
