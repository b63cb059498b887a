/**
 * The console's example query for each demo purpose (src/demo/demo-policy.ts), each written to run
 * as that purpose is allowed: the LMS reads names school by school, the data team walks from the
 * class side to pseudonyms and generalised ages, the sign-in app looks up a login, operations sees
 * people with their sources. test/e2e/landing.test.ts runs each with its purpose's key.
 */
import { cleverId } from '../../connectors/clever/sandbox.ts';
import { EXAMPLE_QUERY, type ConsoleExample } from '../server/landing.ts';
import { demoViews } from './demo.ts';
import type { RosterDataset } from './dataset.ts';

/** The gateway's own example (src/server/landing.ts), introduced as the LMS's. */
const ROSTER_SYNC = EXAMPLE_QUERY.replace(/^#.*\n/, '# An LMS keeping its rosters in step: schools, their classes, and the students by name.\n');

const ANALYTICS = `# The data team: participation per class, from the class side. People come as pseudonyms with a
# grade band and birth year only; names, schools' class lists and titles are withheld from this
# purpose (add \`title\` or \`givenName\` to see the error that says so).
query ClassParticipation {
  classes(first: 5) {
    totalCount
    edges {
      node {
        id
        subjects
        course { subjects }
        enrollments(role: STUDENT, first: 5) {
          totalCount
          edges { node { role person { id gradeBand demographics { birthYear } } } }
        }
      }
    }
  }
}
`;

const SSO = `# A sign-in app: which person and classes is this login? The subject is the id the provider puts
# in its sign-in token (here a Clever student of the demo district). Nothing else is granted.
query SignIn($provider: SignInProvider!, $subject: String!) {
  personBySignIn(provider: $provider, subject: $subject) {
    id
    roles
    enrollments(first: 10) {
      edges { node { role class { id subjects } } }
    }
  }
}
`;

const ADMIN = `# Operations: the teachers with every source that holds them, the webhooks, and the change feed's head.
query Operations {
  people(role: TEACHER, first: 5) {
    totalCount
    edges {
      node {
        id
        givenName
        familyName
        email
        sources { source system sourcedId }
      }
    }
  }
  webhooks { id client url events pending }
  changesHead
}
`;

/** The demo's examples; the sign-in one needs a subject that exists, so it is taken from the dataset. */
export function demoExamples(dataset: RosterDataset): ConsoleExample[] {
  const clever = demoViews(dataset).get('clever');
  const student = clever?.list('enrollment').find((e) => e.data.role === 'student');
  return [
    { purpose: 'roster-sync', title: 'School roster', query: ROSTER_SYNC },
    { purpose: 'analytics', title: 'Class participation', query: ANALYTICS },
    { purpose: 'sso', title: 'Sign-in lookup', query: SSO, variables: { provider: 'CLEVER', subject: student ? cleverId('person', student.data.personKey) : 'a-clever-user-id' } },
    { purpose: 'admin', title: 'Operations', query: ADMIN },
  ];
}
