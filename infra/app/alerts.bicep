// The watchdog outside the app: Azure Monitor alert rules on Application Insights, and an action
// group that emails the notifyEmailTo recipients. tvsync's own failure emails cannot report an app
// that does not run at all (a bad deploy, a host that never starts, storage gone); these rules can,
// because Azure Monitor evaluates them whatever state the app is in.
//
// - "no successful cycle": no cycle record (shared/cycle-record.ts) with result succeeded or
//   partial for syncIntervalMinutes x alertAfterMissedCycles. A log search alert looks back at most
//   two days, so the range is that product rounded up to the next range Azure Monitor offers
//   (PT15M … PT6H, P1D, P2D) and capped at two days: with a longer product this rule fires after
//   two days without a successful cycle, before tvsync's own email would.
// - "sync failed": a failed invocation of the `sync` function, which is how a failed cycle (or a
//   host that cannot start the app) shows in Application Insights.
// Both rules always exist (they show in the portal under Alerts); they email only when
// notifyEmailTo names someone, through the action group, which exists only then. While
// syncDisabled pauses the timer, "no successful cycle" is switched off rather than fire.

import { alertTimeRange } from 'alert-range.bicep'

@description('Application Insights component the rules query.')
param appInsightsName string

@description('Azure region of the rules (the action group is global).')
param location string

@description('Tags for every resource.')
param tags object

@description('Name of the action group (created only when notifyEmailTo names someone).')
param actionGroupName string

@description('Name of the "no successful cycle" rule.')
param noSuccessfulCycleRuleName string

@description('Name of the "sync failed" rule.')
param syncFailedRuleName string

@description('Comma-separated email recipients (NOTIFY_EMAIL_TO). Empty: no action group, the rules only show in the portal.')
param notifyEmailTo string

@description('Minutes between two cycles (SYNC_INTERVAL_MINUTES).')
@minValue(5)
@maxValue(1440)
param syncIntervalMinutes int

@description('Alert when no cycle has succeeded for this many intervals (ALERT_AFTER_MISSED_CYCLES).')
@minValue(1)
@maxValue(1000)
param alertAfterMissedCycles int

@description('The sync timer is paused: "no successful cycle" is switched off.')
param syncDisabled bool

var recipients = filter(map(split(notifyEmailTo, ','), address => trim(address)), address => !empty(address))
var actionGroupIds = empty(recipients) ? [] : [resourceId('Microsoft.Insights/actionGroups', actionGroupName)]

var noSuccessRange = alertTimeRange(syncIntervalMinutes * alertAfterMissedCycles)

// One row with the count, so the rule compares a number (0 when nothing matched) over the whole
// range, not per time bin.
var successfulCyclesQuery = '''
traces
| where message startswith "tvsync.cycle "
| extend cycle = parse_json(substring(message, strlen("tvsync.cycle ")))
| where tostring(cycle.result) in ("succeeded", "partial")
| summarize successfulCycles = count()
'''

var failedSyncQuery = '''
requests
| where name == "sync" and success == false
| summarize failedInvocations = count()
'''

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(recipients)) {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'tvsync'
    enabled: true
    emailReceivers: [
      for (address, i) in recipients: {
        name: 'email-${i + 1}'
        emailAddress: address
        useCommonAlertSchema: true
      }
    ]
  }
}

resource noSuccessfulCycle 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: noSuccessfulCycleRuleName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'tvsync: no successful cycle'
    description: 'No tvsync cycle has succeeded for ${noSuccessRange} (sync interval ${syncIntervalMinutes} min x ${alertAfterMissedCycles} missed cycles, rounded up to a range Azure Monitor offers, at most two days). The app may not be running at all: check GET /api/status and the app\'s log stream.'
    severity: 1
    enabled: !syncDisabled
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    overrideQueryTimeRange: noSuccessRange
    criteria: {
      allOf: [
        {
          query: successfulCyclesQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'successfulCycles'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroupIds
    }
  }
  dependsOn: [
    actionGroup
  ]
}

resource syncFailed 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: syncFailedRuleName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'tvsync: sync failed'
    description: 'A run of the sync function failed: a cycle that could not finish, or a host that could not start the app. GET /api/status says why (lastCycle.error).'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: failedSyncQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'failedInvocations'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroupIds
    }
  }
  dependsOn: [
    actionGroup
  ]
}
