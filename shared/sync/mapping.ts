/**
 * Attribute mappings: from an AssignedUser read from Entra to the values we want in TeamViewer.
 *
 * The defaults are TeamViewer's gallery defaults in Entra:
 *   userPrincipalName → userName                                  (always)
 *   displayName       → displayName                               (always)
 *   Switch([IsSoftDeleted], , "False", "True", "True", "False") → active (always)
 *   givenName → name.givenName, surname → name.familyName, mail → emails  (on create only)
 * Names and the email are sent on create only because TeamViewer derives givenName/familyName
 * from displayName and changing the email sends the user a verification mail.
 *
 * Invariant: a null value is never sent; an attribute whose mapped value is null is left out.
 */
import type { AssignedUser, TeamViewerPatch, TeamViewerUser, TeamViewerUserDraft } from './model';

export type TargetAttribute =
  | 'userName'
  | 'displayName'
  | 'name.givenName'
  | 'name.familyName'
  | 'emails'
  | 'active'
  | 'preferredLanguage'
  | 'ssoCustomerId';

export type ApplyOn = 'always' | 'create';

export interface DesiredValue {
  value: string | boolean | null;
  applyOn: ApplyOn;
}

/** An Entra user after scoping and mapping: what TeamViewer should hold for them. */
export interface DesiredUser {
  entraId: string;
  userPrincipalName: string;
  /** In scope and enabled: should have an active TeamViewer account. */
  entitled: boolean;
  /** Why the user is not entitled (plain words), when they are not. */
  notEntitledReason?: string;
  attributes: Partial<Record<TargetAttribute, DesiredValue>>;
}

/** Is the user "soft deleted" in Entra's sense: disabled (unassigned users never reach here). */
export function isSoftDeleted(user: AssignedUser): boolean {
  return !user.accountEnabled;
}

/** Applies the default (gallery) mappings to one assigned user. */
export function mapUser(user: AssignedUser): DesiredUser {
  const softDeleted = isSoftDeleted(user);
  const attributes: DesiredUser['attributes'] = {
    userName: { value: user.userPrincipalName, applyOn: 'always' },
    displayName: { value: user.displayName, applyOn: 'always' },
    active: { value: !softDeleted, applyOn: 'always' },
    'name.givenName': { value: user.givenName, applyOn: 'create' },
    'name.familyName': { value: user.surname, applyOn: 'create' },
    emails: { value: user.mail, applyOn: 'create' },
  };
  return {
    entraId: user.id,
    userPrincipalName: user.userPrincipalName,
    entitled: !softDeleted,
    notEntitledReason: softDeleted ? 'the account is disabled in Entra ID (accountEnabled=false)' : undefined,
    attributes,
  };
}

function str(value: DesiredValue | undefined): string | undefined {
  return typeof value?.value === 'string' && value.value !== '' ? value.value : undefined;
}

/** The body of a create: every mapped attribute with a value. */
export function draftFor(user: DesiredUser): TeamViewerUserDraft {
  const a = user.attributes;
  const draft: TeamViewerUserDraft = {
    userName: str(a.userName) ?? user.userPrincipalName,
    active: a.active?.value !== false,
  };
  const displayName = str(a.displayName);
  if (displayName) draft.displayName = displayName;
  const givenName = str(a['name.givenName']);
  if (givenName) draft.givenName = givenName;
  const familyName = str(a['name.familyName']);
  if (familyName) draft.familyName = familyName;
  const email = str(a.emails);
  if (email) draft.email = email;
  const language = str(a.preferredLanguage);
  if (language) draft.preferredLanguage = language;
  const sso = str(a.ssoCustomerId);
  if (sso) draft.ssoCustomerId = sso;
  return draft;
}

export interface AttributeChange {
  attribute: string;
  old: string | boolean | null;
  new: string | boolean | null;
}

const PATCHABLE: Array<[TargetAttribute, keyof TeamViewerPatch, keyof TeamViewerUser]> = [
  ['userName', 'userName', 'userName'],
  ['displayName', 'displayName', 'displayName'],
  ['name.givenName', 'givenName', 'givenName'],
  ['name.familyName', 'familyName', 'familyName'],
  ['emails', 'email', 'email'],
  ['active', 'active', 'active'],
];

/**
 * What must change on an existing TeamViewer user so it matches `user`: "apply always" mappings
 * only, nulls never sent. userName and email compare without case: TeamViewer logins are email
 * addresses, and a case-only PATCH would send the user a pointless verification mail.
 */
export function diff(user: DesiredUser, current: TeamViewerUser): { patch: TeamViewerPatch; changes: AttributeChange[] } {
  const patch: TeamViewerPatch = {};
  const changes: AttributeChange[] = [];
  for (const [target, patchKey, currentKey] of PATCHABLE) {
    const desired = user.attributes[target];
    if (!desired || desired.applyOn !== 'always' || desired.value === null || desired.value === '') continue;
    const now = current[currentKey] as string | boolean | null;
    const same =
      typeof desired.value === 'string' && typeof now === 'string' && (target === 'userName' || target === 'emails')
        ? desired.value.toLowerCase() === now.toLowerCase()
        : desired.value === now;
    if (same) continue;
    (patch as Record<string, string | boolean>)[patchKey] = desired.value;
    changes.push({ attribute: target, old: now ?? null, new: desired.value });
  }
  return { patch, changes };
}
