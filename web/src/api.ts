// Every request the app makes: a trusted document of the frontend contract, by its id.
import { useCallback, useEffect, useState } from "react";
import type { Operation } from "./generated/operations";

export const ENDPOINT = "/portal/graphql";

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

// Codes after which nothing on the page can work: the app shows a page of its own.
export const SESSION_CODES = new Set(["UNAUTHENTICATED", "PORTAL_DISABLED", "PORTAL_NOT_IN_PLAN"]);

type Listener = (error: ApiError) => void;
const listeners = new Set<Listener>();
export function onSessionError(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

interface GraphQLResponse<TData> {
  data?: TData | null;
  errors?: { message: string; extensions?: { code?: string; field?: string } }[];
}

export async function run<TData, TVariables>(
  operation: Operation<TData, TVariables>,
  variables: TVariables,
  { quiet = false }: { quiet?: boolean } = {},
): Promise<TData> {
  let response: Response;
  try {
    response = await fetch(ENDPOINT, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "content-type": "application/json",
        accept: "application/graphql-response+json, application/json",
        "x-csrf-protection": "1",
      },
      body: JSON.stringify({ documentId: operation.id, operationName: operation.name, variables }),
    });
  } catch {
    throw new ApiError("NETWORK", "The portal cannot be reached. Check your connection and try again.");
  }
  let body: GraphQLResponse<TData>;
  try {
    body = (await response.json()) as GraphQLResponse<TData>;
  } catch {
    throw new ApiError("INTERNAL_ERROR", "The portal answered in a way this page does not understand.");
  }
  const first = body.errors?.[0];
  if (first) {
    const error = new ApiError(
      first.extensions?.code ?? "INTERNAL_ERROR",
      first.message,
      first.extensions?.field,
    );
    if (!quiet && SESSION_CODES.has(error.code)) listeners.forEach((listener) => listener(error));
    throw error;
  }
  if (body.data == null) throw new ApiError("INTERNAL_ERROR", "The portal sent no data.");
  return body.data;
}

export interface QueryState<TData> {
  data: TData | undefined;
  error: ApiError | undefined;
  loading: boolean;
  reload: () => void;
}

export function useQuery<TData, TVariables>(
  operation: Operation<TData, TVariables>,
  variables: TVariables,
): QueryState<TData> {
  const key = JSON.stringify(variables);
  const [state, setState] = useState<{ data?: TData; error?: ApiError; loading: boolean }>({
    loading: true,
  });
  const [round, setRound] = useState(0);
  useEffect(() => {
    let current = true;
    setState((previous) => ({ data: previous.data, loading: true }));
    run(operation, JSON.parse(key) as TVariables).then(
      (data) => current && setState({ data, loading: false }),
      (error: ApiError) => current && setState({ error, loading: false }),
    );
    return () => {
      current = false;
    };
  }, [operation, key, round]);
  const reload = useCallback(() => setRound((n) => n + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}
