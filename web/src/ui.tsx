// Pieces every screen shares: headings that take focus, loading, empty and error states.
import { useEffect, useRef } from "react";
import type { ReactNode } from "react";
import { Link } from "react-router-dom";
import { ApiError } from "./api";
import type { QueryState } from "./api";

export function Page({ title, children }: { title: string; children: ReactNode }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · Customer portal`;
    heading.current?.focus();
  }, [title]);
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title" tabIndex={-1} ref={heading}>
        {title}
      </h1>
      {children}
    </section>
  );
}

export function Loading() {
  return (
    <p role="status" className="muted">
      Loading…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}

const EXPLAINED: Record<string, string> = {
  MODULE_FORBIDDEN: "Your portal access does not include this part of the portal. Ask the person who manages your company's portal users.",
  CONTACT_FORBIDDEN: "Only your company's main contacts can see this part of the portal.",
  NOT_FOUND: "There is nothing here: it may have been removed, or it is not yours to see.",
};

export function Problem({ error }: { error: ApiError }) {
  return (
    <div role="alert" className="problem">
      <p>{EXPLAINED[error.code] ?? error.message}</p>
      {error.code === "NOT_FOUND" || error.code === "MODULE_FORBIDDEN" ? <Link to="/">Go to the home page</Link> : null}
    </div>
  );
}

export function Loaded<TData>({
  query,
  children,
}: {
  query: QueryState<TData>;
  children: (data: TData) => ReactNode;
}) {
  if (query.error) return <Problem error={query.error} />;
  if (!query.data) return <Loading />;
  return <>{children(query.data)}</>;
}

export function FormError({ error }: { error: ApiError | undefined }) {
  if (!error) return null;
  return (
    <p role="alert" className="form-error">
      {error.message}
    </p>
  );
}

export function Field({
  label,
  children,
  hint,
}: {
  label: string;
  children: (id: string) => ReactNode;
  hint?: string;
}) {
  const id = "f-" + label.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children(id)}
      {hint ? <p className="hint">{hint}</p> : null}
    </div>
  );
}
