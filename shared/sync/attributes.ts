/**
 * The source attribute catalogue: the Entra user attributes an attribute mapping expression or a
 * scoping filter may name, under the names Entra's provisioning UI and Microsoft Graph use.
 *
 * Invariant: every name a mapping or filter stores has gone through `canonicalAttribute`, so the
 * rest of the core compares attribute names with `===` and never meets an alias or odd casing.
 * Lookup is case-insensitive because Entra's is, and admins paste expressions written by hand.
 */

export type SourceAttributeType = 'string' | 'boolean' | 'string[]';

export interface SourceAttribute {
  /** Canonical name: the Graph property name, or Entra's name where Graph nests the value. */
  readonly name: string;
  readonly type: SourceAttributeType;
  /**
   * The `$select` property that brings the value back from Graph, or null for attributes we
   * compute ourselves (they are never read from Graph).
   */
  readonly graphProperty: string | null;
  /** Other names Entra's mapping UI or older docs use for the same value. */
  readonly aliases: readonly string[];
  /** True when tvsync computes the value (IsSoftDeleted, appRoleAssignments). */
  readonly computed: boolean;
}

function graph(name: string, type: SourceAttributeType = 'string', aliases: string[] = []): SourceAttribute {
  return { name, type, graphProperty: name, aliases, computed: false };
}

const EXTENSION_ATTRIBUTES: SourceAttribute[] = Array.from({ length: 15 }, (_, i) => ({
  // Entra's mapping UI calls them extensionAttribute1..15; Graph nests them in one object.
  name: `extensionAttribute${i + 1}`,
  type: 'string' as const,
  graphProperty: 'onPremisesExtensionAttributes',
  aliases: [`onPremisesExtensionAttributes.extensionAttribute${i + 1}`],
  computed: false,
}));

export const SOURCE_ATTRIBUTES: readonly SourceAttribute[] = [
  graph('id', 'string', ['objectId']),
  graph('userPrincipalName'),
  graph('displayName'),
  graph('givenName'),
  graph('surname'),
  graph('mail'),
  graph('mailNickname'),
  graph('accountEnabled', 'boolean'),
  graph('department'),
  graph('jobTitle'),
  graph('companyName'),
  graph('employeeId'),
  graph('employeeType'),
  // Entra's mapping UI shows the Azure AD Graph names for these two.
  graph('officeLocation', 'string', ['physicalDeliveryOfficeName']),
  graph('city'),
  graph('country'),
  graph('state'),
  graph('streetAddress'),
  graph('postalCode'),
  graph('usageLocation'),
  graph('preferredLanguage'),
  graph('mobilePhone', 'string', ['mobile']),
  graph('userType'),
  graph('onPremisesSamAccountName'),
  graph('onPremisesDomainName'),
  graph('onPremisesImmutableId'),
  ...EXTENSION_ATTRIBUTES,
  // True when the user is unassigned, out of scope, disabled or soft-deleted (computed by the planner).
  { name: 'IsSoftDeleted', type: 'boolean', graphProperty: null, aliases: [], computed: true },
  // Values of the app roles the user holds through the enterprise app's assignments.
  { name: 'appRoleAssignments', type: 'string[]', graphProperty: null, aliases: [], computed: true },
];

const BY_LOWER_NAME: ReadonlyMap<string, SourceAttribute> = (() => {
  const map = new Map<string, SourceAttribute>();
  for (const attribute of SOURCE_ATTRIBUTES) {
    for (const name of [attribute.name, ...attribute.aliases]) map.set(name.toLowerCase(), attribute);
  }
  return map;
})();

/** The catalogue entry for `name` (any case, any alias), or null when Entra has no such attribute here. */
export function sourceAttribute(name: string): SourceAttribute | null {
  return BY_LOWER_NAME.get(name.trim().toLowerCase()) ?? null;
}

/** The canonical spelling of `name` (case-insensitive, aliases resolved), or null if unknown. */
export function canonicalAttribute(name: string): string | null {
  return sourceAttribute(name)?.name ?? null;
}

/** Thrown by `graphSelectFor` for a name that is not in the catalogue (a bug in the caller). */
export class UnknownAttributeError extends Error {
  readonly code = 'ATTRIBUTE_UNKNOWN' as const;
  constructor(readonly attribute: string) {
    super(`"${attribute}" is not a known Entra user attribute`);
    this.name = 'UnknownAttributeError';
  }
}

/**
 * The Graph `$select` properties needed to read `names`, in first-use order without duplicates.
 * Extension attributes all come from `onPremisesExtensionAttributes`; computed attributes need
 * nothing from Graph. `id` is not added implicitly: the reader asks for it itself.
 */
export function graphSelectFor(names: Iterable<string>): string[] {
  const select: string[] = [];
  for (const name of names) {
    const attribute = sourceAttribute(name);
    if (!attribute) throw new UnknownAttributeError(name);
    if (attribute.graphProperty && !select.includes(attribute.graphProperty)) select.push(attribute.graphProperty);
  }
  return select;
}

/**
 * Reads `attribute` (a canonical name) from a user record whose keys may use any case, whether
 * extension attributes arrive flattened (`extensionAttribute5`) or nested as Graph returns them
 * (`onPremisesExtensionAttributes.extensionAttribute5`). Absent values are `undefined`.
 */
export function readAttribute(record: Record<string, unknown>, attribute: string): unknown {
  const entry = sourceAttribute(attribute);
  const names = entry ? [entry.name, ...entry.aliases] : [attribute];
  for (const name of names) {
    const found = readKey(record, name);
    if (found !== undefined) return found;
  }
  if (entry?.graphProperty === 'onPremisesExtensionAttributes') {
    const nested = readKey(record, 'onPremisesExtensionAttributes');
    if (nested && typeof nested === 'object' && !Array.isArray(nested)) {
      return readKey(nested as Record<string, unknown>, entry.name);
    }
  }
  return undefined;
}

function readKey(record: Record<string, unknown>, name: string): unknown {
  if (Object.prototype.hasOwnProperty.call(record, name)) return record[name];
  const lower = name.toLowerCase();
  for (const key of Object.keys(record)) {
    if (key.toLowerCase() === lower) return record[key];
  }
  return undefined;
}
