// The GraphQL-over-HTTP spec's public audit suite (graphql-http's serverAudits) against a live
// server: node audit.mjs <url>. Prints every audit that is not ok; exits 1 on any error or
// warning (notices, the spec's MAYs, are printed but allowed).
// Requests carry GraphQL-Require-Preflight, so the audits of bodies in other media types meet
// GraphQL over HTTP's rules rather than the CSRF rule (which refuses form and text POSTs
// without it).
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
const preflighted = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('graphql-require-preflight', '1');
  return fetch(input, { ...init, headers });
};
const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const audit of serverAudits({ url, fetchFn: preflighted })) {
  const result = await audit.fn();
  counts[result.status] += 1;
  if (result.status !== 'ok') {
    console.log(`${result.status.toUpperCase()} ${audit.id} ${audit.name}: ${result.reason}`);
  }
}
console.log(`audits: ${counts.ok} ok, ${counts.notice} notices, ${counts.warn} warnings, ${counts.error} errors`);
process.exit(counts.warn + counts.error > 0 ? 1 : 0);
