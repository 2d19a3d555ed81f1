// Registration only: the handler lives in shared/handlers, where the CLI and `tvsync serve` import
// it without registering anything (a registration outside the Functions host prints warnings).
import { app } from '@azure/functions';
import { statusHandler } from '../shared/handlers/status';

app.http('status', { methods: ['GET'], authLevel: 'function', route: 'status', handler: statusHandler });
