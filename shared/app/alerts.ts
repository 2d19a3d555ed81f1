/**
 * Failure emails (shared/notify/alerts.ts decides which): evaluated after every real cycle and at
 * heartbeats with no cycle.
 *
 * Invariants:
 * - Always under the run lease — one evaluator at a time: after a cycle, the cycle's lease; between
 *   cycles, a lease taken for the purpose (none is sent while a cycle holds it: it sends at its end).
 * - Never throws: a failed send is logged and retried at the next evaluation.
 */
import type { Settings } from '../config';
import type { Logger } from '../log';
import { redactText } from '../log';
import { ALERTS_KEY, decideAlerts, nextAlertState, type AlertState } from '../notify/alerts';
import type { EmailNotifier } from '../notify/email';
import type { StateStore } from '../state/store';
import { GUARD_KEY, stagedAllowed, type GuardState } from '../sync/guard';
import { acquireLease } from '../sync/lease';
import { QUARANTINE_KEY, type Quarantine } from '../sync/quarantine';

export interface FailureEmails {
  /** Sends what is due; the caller holds the run lease. */
  evaluate(): Promise<void>;
  /** At a heartbeat with no cycle: evaluates unless a cycle holds the lease. */
  betweenCycles(): Promise<void>;
}

export function failureEmails(store: StateStore, notifier: EmailNotifier | null, settings: Settings, logger: Logger): FailureEmails {
  const evaluate = async () => {
    if (!notifier) return;
    try {
      const now = new Date();
      const [row, quarantine, guard, cycles] = await Promise.all([
        store.getMeta<AlertState>(ALERTS_KEY),
        store.getMeta<Quarantine>(QUARANTINE_KEY),
        store.getMeta<GuardState>(GUARD_KEY),
        store.listCycles(20),
      ]);
      const state: AlertState = { sent: {}, ...row?.value };
      const staged = guard?.value.staged && !stagedAllowed(guard.value) ? guard.value.staged : null;
      const decision = decideAlerts(state, {
        quarantine: quarantine?.value ?? null,
        staged,
        release: guard?.value.lastRelease ?? null,
        cycles: cycles.filter((c) => !c.dryRun),
        intervalMinutes: settings.syncIntervalMinutes,
        alertAfterMissedCycles: settings.alertAfterMissedCycles,
        now,
      });
      const delivered: string[] = [];
      for (const item of decision.due) {
        const result = await notifier.send(item.notification);
        if (result.ok) delivered.push(item.key);
        else logger.warn(`could not send the ${item.notification.kind} email (retried later): ${result.code} ${result.message}`);
      }
      let recoveryDelivered = false;
      if (decision.recovery) {
        const result = await notifier.send(decision.recovery);
        recoveryDelivered = result.ok;
        if (!result.ok) logger.warn(`could not send the recovery email (retried later): ${result.code} ${result.message}`);
      }
      const next = nextAlertState(state, decision, delivered, recoveryDelivered, now);
      if (JSON.stringify(next) !== JSON.stringify(state)) await store.putMeta(ALERTS_KEY, next, row?.etag ?? null);
    } catch (err) {
      logger.warn(`could not evaluate failure emails: ${redactText((err as Error).message)}`);
    }
  };
  return {
    evaluate,
    async betweenCycles() {
      if (!notifier) return;
      const lease = await acquireLease(store, { purpose: 'failure emails', logger }).catch(() => null);
      if (!lease) return;
      try {
        await evaluate();
      } finally {
        await lease.release();
      }
    },
  };
}
