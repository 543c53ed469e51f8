// A cursor list with "show more", as every portal list is paged.
import { useEffect, useState } from "react";
import type { ReactNode } from "react";
import { ApiError, run } from "./api";
import type { Operation } from "./generated/operations";
import { Empty, Loading, Problem } from "./ui";

interface Connection<TNode> {
  edges: { cursor: string; node: TNode }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

export const PAGE = 20;

export function Paged<TData, TVariables extends { first?: number | null; after?: string | null }, TNode>({
  operation,
  variables,
  pick,
  empty,
  children,
}: {
  operation: Operation<TData, TVariables>;
  variables: Omit<TVariables, "first" | "after">;
  pick: (data: TData) => Connection<TNode>;
  empty: string;
  children: (nodes: TNode[]) => ReactNode;
}) {
  const key = JSON.stringify(variables);
  const [nodes, setNodes] = useState<TNode[]>();
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<ApiError>();
  const [busy, setBusy] = useState(false);

  async function load(after: string | null, previous: TNode[]) {
    setBusy(true);
    try {
      const data = await run(operation, { ...(JSON.parse(key) as TVariables), first: PAGE, after } as TVariables);
      const connection = pick(data);
      setNodes([...previous, ...connection.edges.map((e) => e.node)]);
      setNext(connection.pageInfo.hasNextPage ? connection.pageInfo.endCursor : null);
      setError(undefined);
    } catch (failure) {
      setError(failure as ApiError);
    } finally {
      setBusy(false);
    }
  }

  useEffect(() => {
    setNodes(undefined);
    void load(null, []);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [operation, key]);

  if (error && !nodes) return <Problem error={error} />;
  if (!nodes) return <Loading />;
  if (nodes.length === 0) return <Empty>{empty}</Empty>;
  return (
    <>
      {children(nodes)}
      {error ? <Problem error={error} /> : null}
      {next ? (
        <button type="button" className="secondary" disabled={busy} onClick={() => void load(next, nodes)}>
          Show more
        </button>
      ) : null}
    </>
  );
}
