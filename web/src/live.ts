// Live events over WebSocket (graphql-transport-ws) with the stock graphql-ws client. The
// socket signs in with the session cookie of this same-origin page, as HTTP does; over the
// socket the portal takes a trusted document by its exact text.
import { createClient } from "graphql-ws";
import type { Client } from "graphql-ws";
import { ENDPOINT } from "./api";
import type { Operation } from "./generated/operations";

let client: Client | undefined;

function live(): Client {
  if (!client) {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    client = createClient({ url: `${scheme}//${window.location.host}${ENDPOINT}`, lazy: true, retryAttempts: 5 });
  }
  return client;
}

// Calls `next` with each event until the returned function is called.
export function subscribe<TData, TVariables>(
  operation: Operation<TData, TVariables>,
  variables: TVariables,
  next: (data: TData) => void,
): () => void {
  if (!operation.text) throw new Error(`${operation.name} is not a subscription`);
  return live().subscribe<TData>(
    { query: operation.text, operationName: operation.name, variables: variables as Record<string, unknown> },
    {
      next: (result) => {
        if (result.data) next(result.data);
      },
      error: () => {},
      complete: () => {},
    },
  );
}
