// graphql-http's serverAudits (the GraphQL-over-HTTP spec's audit suite) against GQL_FEED_URL:
// one JSON line per audit: {id, name, status ("ok" | "warn" | "error" | "notice"), reason}.
import { serverAudits } from "graphql-http";

const url = process.env.GQL_FEED_URL ?? "http://127.0.0.1:8000/graphql";
for (const audit of serverAudits({ url })) {
  const result = await audit.fn();
  process.stdout.write(
    JSON.stringify({ id: audit.id, name: audit.name, status: result.status, reason: result.reason ?? null }) + "\n",
  );
}
