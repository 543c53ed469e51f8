// Audits one GraphQL endpoint against the GraphQL-over-HTTP spec and prints every result as
// one JSON array: id, name, status ("ok", or "notice"/"warn"/"error" for a MAY, SHOULD or
// MUST the server misses), and for a miss its reason and the response that missed.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <url>');
  process.exit(2);
}

const results = await auditServer({ url });
const report = [];
for (const result of results) {
  const entry = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    entry.reason = result.reason;
    const response = result.response;
    entry.response = {
      status: response.status,
      contentType: response.headers.get('content-type'),
    };
    try {
      entry.response.body = await response.text();
    } catch {
      entry.response.body = null; // the audit read it already
    }
  }
  report.push(entry);
}
console.log(JSON.stringify(report));
