// Who is signed in, the customers they speak for and what each lets them see.
import { createContext, useCallback, useContext, useEffect, useMemo, useState } from "react";
import type { ReactNode } from "react";
import { ApiError, onSessionError, run } from "./api";
import { applyAccent, setTimeZones } from "./format";
import { Home, SignOut, SignOutEverywhere, Viewer } from "./generated/operations";
import type { HomeQuery, PortalModule } from "./generated/graphql";

export type Customer = HomeQuery["customers"][number];

export interface Session {
  viewer: NonNullable<HomeQuery["viewer"]>;
  customers: Customer[];
  modules: Set<PortalModule>;
  company: boolean;
}

type State =
  | { kind: "loading" }
  | { kind: "signed-out" }
  | { kind: "signed-in"; session: Session }
  | { kind: "blocked"; error: ApiError };

interface SessionContext {
  state: State;
  refresh: () => Promise<void>;
  signOut: (everywhere?: boolean) => Promise<void>;
}

const Context = createContext<SessionContext | null>(null);

export function sessionOf(home: HomeQuery): Session {
  const modules = new Set<PortalModule>(home.customers.flatMap((c) => c.modules));
  return {
    viewer: home.viewer!,
    customers: home.customers,
    modules,
    company: home.customers.some((c) => c.contactKind === "COMPANY"),
  };
}

// A screen is there when some customer gives the module, and for company-only screens,
// when the user is a company contact of that customer.
export function allows(session: Session, module: PortalModule, companyOnly = false): boolean {
  return session.customers.some(
    (c) => c.modules.includes(module) && (!companyOnly || c.contactKind === "COMPANY"),
  );
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<State>({ kind: "loading" });

  const refresh = useCallback(async () => {
    try {
      const { viewer } = await run(Viewer, {}, { quiet: true });
      if (!viewer) {
        setState({ kind: "signed-out" });
        return;
      }
      const home = await run(
        Home,
        { withInvoices: false, withRequests: false, withJobs: false },
        { quiet: true },
      );
      const session = sessionOf(home);
      const contractor = home.customers[0]?.contractor;
      applyAccent(contractor?.accentColour);
      setTimeZones(home.customers.map((c) => c.contractor));
      setState({ kind: "signed-in", session });
    } catch (error) {
      const failure = error instanceof ApiError ? error : new ApiError("INTERNAL_ERROR", String(error));
      setState(failure.code === "UNAUTHENTICATED" ? { kind: "signed-out" } : { kind: "blocked", error: failure });
    }
  }, []);

  // Everywhere: every session of the account ends, this one included.
  const signOut = useCallback(async (everywhere = false) => {
    try {
      await (everywhere ? run(SignOutEverywhere, {}, { quiet: true }) : run(SignOut, {}, { quiet: true }));
    } finally {
      setState({ kind: "signed-out" });
    }
  }, []);

  useEffect(() => {
    void refresh();
    return onSessionError((error) => setState({ kind: "blocked", error }));
  }, [refresh]);

  const value = useMemo(() => ({ state, refresh, signOut }), [state, refresh, signOut]);
  return <Context.Provider value={value}>{children}</Context.Provider>;
}

export function useSession(): SessionContext {
  const context = useContext(Context);
  if (!context) throw new Error("useSession outside SessionProvider");
  return context;
}

export function useSignedIn(): Session {
  const { state } = useSession();
  if (state.kind !== "signed-in") throw new Error("this screen needs a signed-in user");
  return state.session;
}
