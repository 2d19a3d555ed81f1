// Registration only: the operator handlers live in shared/handlers (see functions/status.ts).
// authLevel admin: in Azure only the host's master key opens these routes.
import { app } from '@azure/functions';
import { allowDeactivationsHandler, provisionHandler, restartHandler, runNowHandler, testConnectionHandler } from '../shared/handlers/operator';

app.http('run', { methods: ['POST'], authLevel: 'admin', route: 'run', handler: runNowHandler });
app.http('restart', { methods: ['POST'], authLevel: 'admin', route: 'restart', handler: restartHandler });
app.http('test-connection', { methods: ['POST'], authLevel: 'admin', route: 'test-connection', handler: testConnectionHandler });
app.http('provision', { methods: ['POST'], authLevel: 'admin', route: 'provision', handler: provisionHandler });
app.http('allow-deactivations', { methods: ['POST'], authLevel: 'admin', route: 'allow-deactivations', handler: allowDeactivationsHandler });
