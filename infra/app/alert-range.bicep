// The query time range of the "no successful cycle" alert (alerts.bicep), in a file of its own so
// that test/integration/infra-consistency.test.ts can evaluate it with the Bicep CLI.
//
// A log search alert looks back at most two days, and only over these ranges. The smallest one
// that covers `minutes` is used, so the rule never fires before that many minutes have passed;
// above two days it is two days, and the rule fires earlier than the minutes asked for.

var ranges = [
  { minutes: 15, duration: 'PT15M' }
  { minutes: 20, duration: 'PT20M' }
  { minutes: 30, duration: 'PT30M' }
  { minutes: 45, duration: 'PT45M' }
  { minutes: 60, duration: 'PT1H' }
  { minutes: 120, duration: 'PT2H' }
  { minutes: 180, duration: 'PT3H' }
  { minutes: 240, duration: 'PT4H' }
  { minutes: 300, duration: 'PT5H' }
  { minutes: 360, duration: 'PT6H' }
  { minutes: 1440, duration: 'P1D' }
  { minutes: 2880, duration: 'P2D' }
]

@export()
@description('The ISO 8601 query time range for an alert that must look back at least `minutes` (at most two days).')
func alertTimeRange(minutes int) string => first(concat(filter(ranges, range => range.minutes >= minutes), [last(ranges)])).duration
