/**
 * The demo's purposes and clients: the four consumers the README's quick start and example walk through.
 * - roster-sync (an LMS): names and identifiers, no special categories;
 * - analytics (a data team): pseudonyms for people, generalised quasi-identifiers only, nothing direct or special;
 * - sso (an app signing people in): personBySignIn, and of a person only id, roles and classes;
 * - admin (operations): everything the store holds, plus webhooks and keys.
 * Special categories (race/ethnicity, IEP/504, free/reduced lunch, ELL) go to none of them, so
 * ingest minimisation keeps them out of the demo store altogether.
 */
export const DEMO_PURPOSES = {
  'roster-sync': {
    description: 'An LMS backend keeping classes and enrolments in step and showing names to teachers',
    legalBasis: 'Contract between the school and the LMS vendor (GDPR art. 6(1)(b)), under a processor agreement',
    categories: { NONE: 'allow', DIRECT: 'allow', IDENTIFIER: 'allow', QUASI: 'allow', SPECIAL: 'deny' },
    fields: { 'Person.photoUrl': 'deny' },
  },
  analytics: {
    description: 'The district data team measuring course participation, on pseudonymised extracts',
    legalBasis: 'Public task of the school board: evaluating education (GDPR art. 6(1)(e)), pseudonymised per art. 89',
    categories: { NONE: 'allow', DIRECT: 'deny', IDENTIFIER: 'pseudonymise', QUASI: 'deny', SPECIAL: 'deny' },
    fields: { 'Demographics.birthYear': 'allow', 'Demographics.ageBand': 'allow', 'Person.gradeBand': 'allow' },
    extracts: true,
  },
  // Only what signing a person in needs: who they are to the app (a stable id), their roles and
  // their classes. Nothing direct or quasi-identifying; the app has the name from the token itself.
  sso: {
    description: 'An edtech app resolving a teacher or student signing in (Google, Microsoft, Clever, ClassLink) to their roles and classes',
    legalBasis: 'Contract between the school and the app vendor (GDPR art. 6(1)(b)), under a processor agreement',
    categories: { NONE: 'deny', DIRECT: 'deny', IDENTIFIER: 'deny', QUASI: 'deny', SPECIAL: 'deny' },
    fields: {
      'Query.personBySignIn': 'allow', 'Person.id': 'allow', 'Person.roles': 'allow', 'Person.enrollments': 'allow',
      'Enrollment.role': 'allow', 'Enrollment.class': 'allow', 'Class.id': 'allow', 'Class.subjects': 'allow',
    },
  },
  admin: {
    description: 'District IT operating the gateway',
    legalBasis: 'Legitimate operation of the school’s systems (GDPR art. 6(1)(e))',
    categories: { NONE: 'allow', DIRECT: 'allow', IDENTIFIER: 'allow', QUASI: 'allow', SPECIAL: 'deny' },
    extracts: true,
    admin: true,
  },
} as const;

export const DEMO_CLIENTS = [
  { id: 'lms-demo', purpose: 'roster-sync', description: 'demo LMS backend' },
  { id: 'analytics-demo', purpose: 'analytics', description: 'demo data team' },
  { id: 'sso-demo', purpose: 'sso', description: 'demo sign-in app' },
  { id: 'admin-demo', purpose: 'admin', description: 'demo operator' },
];

/**
 * Who the demo's privacy report names (`privacy.controller`, `processor`, …): a synthetic school
 * board and vendor, with example.org contacts. Everything else in the report is derived.
 */
export const DEMO_PRIVACY = {
  tenant: 'rostergate-demo',
  controller: { name: 'Demo School Board (synthetic)', contact: 'privacy@school-board.example.org' },
  processor: { name: 'Rostergate Demo Vendor B.V.', contact: 'support@vendor.example.org', dpo: 'dpo@vendor.example.org' },
  processingLocations: ['Amsterdam, Netherlands (EU)'],
  subProcessors: [{ name: 'Example Hosting B.V.', purpose: 'Hosting of the gateway and its database', location: 'Amsterdam, Netherlands (EU)' }],
};
