// Subscribes with the stock graphql-ws client, unchanged, and prints one JSON line per
// event: {"connected": true}, then {"next": <payload>} for each, then {"done": true}.
// Usage: node subscribe.mjs <ws url> <bearer token> <number of events> <query file>
import { readFileSync } from "node:fs";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, count, queryFile] = process.argv.slice(2);
const query = readFileSync(queryFile, "utf8");
const print = (value) => process.stdout.write(JSON.stringify(value) + "\n");

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${token}` },
  retryAttempts: 0,
  on: { connected: () => print({ connected: true }) },
});

let seen = 0;
const failed = (error) => {
  print({ error: String(error?.reason ?? error?.message ?? error), code: error?.code ?? null });
  process.exit(1);
};
const timer = setTimeout(() => failed(new Error("timed out")), 60_000);
client.subscribe(
  { query, operationName: "MessageAdded", variables: {} },
  {
    next: (payload) => {
      print({ next: payload });
      seen += 1;
      if (seen >= Number(count)) {
        clearTimeout(timer);
        print({ done: true });
        client.dispose().then(() => process.exit(0));
      }
    },
    error: failed,
    complete: () => {},
  },
);
