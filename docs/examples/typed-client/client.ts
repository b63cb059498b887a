// A typed client for the demo's analytics purpose: every field it reads is checked against the
// schema the gateway serves to that client. Run `npm start` first; the key is printed at start-up.
import type { CourseParticipationQuery, CourseParticipationQueryVariables } from './analytics-types.ts';

const QUERY = `query CourseParticipation($after: Cursor) {
  enrollments(role: STUDENT, first: 500, after: $after) {
    edges { node { person { id gradeBand demographics { birthYear ageBand } } class { id subjects course { id subjects } } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

export async function* courseParticipation(url: string, apiKey: string) {
  let variables: CourseParticipationQueryVariables = { after: null };
  for (;;) {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': apiKey }, body: JSON.stringify({ query: QUERY, variables }) });
    const body = (await res.json()) as { data?: CourseParticipationQuery; errors?: { message: string }[] };
    if (!body.data) throw new Error(`gateway answered ${res.status}: ${body.errors?.map((e) => e.message).join('; ')}`);
    const { edges, pageInfo } = body.data.enrollments;
    // person.id is the purpose's pseudonym (typed Pseudonym); demographics holds only generalised forms.
    for (const { node } of edges) yield { pseudonym: node.person?.id, gradeBand: node.person?.gradeBand, ageBand: node.person?.demographics?.ageBand, courseSubjects: node.class?.course?.subjects ?? [] };
    if (!pageInfo.hasNextPage) return;
    variables = { after: pageInfo.endCursor };
  }
}
