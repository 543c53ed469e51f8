import { useState } from "react";
import type { ReactNode } from "react";
import { BrowserRouter, Link, NavLink, Navigate, Route, Routes, useLocation } from "react-router-dom";
import type { PortalModule } from "./generated/graphql";
import { AcceptInvitationScreen, ConfirmEmailScreen, ResetPasswordScreen, SignIn } from "./screens/auth";
import { Home } from "./screens/home";
import { Invoice, Invoices } from "./screens/invoices";
import { MessageThread, Messages, NoticeLink, UnreadBadge, UnreadProvider } from "./screens/messages";
import { Contacts, PortalUsers, Profile, Properties } from "./screens/people";
import { Appointments, Certificates, Job, Jobs, Quote, Quotes } from "./screens/records";
import { NewRequest, Requests } from "./screens/requests";
import { allows, SessionProvider, useSession } from "./session";
import type { Session } from "./session";
import { Loading, Page } from "./ui";

interface Screen {
  path: string;
  label: string;
  module: PortalModule;
  companyOnly?: boolean;
  element: ReactNode;
  more?: { path: string; element: ReactNode }[];
}

const SCREENS: Screen[] = [
  { path: "invoices", label: "Invoices", module: "INVOICES", companyOnly: true, element: <Invoices />, more: [{ path: "invoices/:id", element: <Invoice /> }] },
  { path: "quotes", label: "Quotes", module: "QUOTES", element: <Quotes />, more: [{ path: "quotes/:id", element: <Quote /> }] },
  { path: "jobs", label: "Jobs", module: "JOBS", element: <Jobs />, more: [{ path: "jobs/:id", element: <Job /> }] },
  { path: "certificates", label: "Certificates", module: "CERTIFICATES", element: <Certificates /> },
  { path: "appointments", label: "Appointments", module: "DIARIES", element: <Appointments /> },
  { path: "requests", label: "Requests", module: "REQUESTS", element: <Requests />, more: [{ path: "requests/new", element: <NewRequest /> }] },
  { path: "properties", label: "Properties", module: "PROPERTIES", element: <Properties /> },
  { path: "contacts", label: "Contacts", module: "USERS", element: <Contacts /> },
  { path: "users", label: "Portal users", module: "USERS", element: <PortalUsers /> },
];

function visible(session: Session): Screen[] {
  return SCREENS.filter((screen) => allows(session, screen.module, screen.companyOnly));
}

function Shell({ session, children }: { session: Session; children: ReactNode }) {
  const { signOut } = useSession();
  const [open, setOpen] = useState(false);
  const location = useLocation();
  const [shownAt, setShownAt] = useState(location.pathname);
  if (shownAt !== location.pathname) {
    setShownAt(location.pathname);
    setOpen(false);
  }
  return (
    <UnreadProvider>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <Link to="/" className="brand-name">
          {session.customers[0]?.contractor.name ?? "Customer portal"}
        </Link>
        <button type="button" className="menu" aria-expanded={open} aria-controls="nav" onClick={() => setOpen(!open)}>
          Menu
        </button>
        <nav id="nav" aria-label="Portal" className={open ? "open" : ""}>
          <ul>
            <li>
              <NavLink to="/" end>
                Home
              </NavLink>
            </li>
            {visible(session).map((screen) => (
              <li key={screen.path}>
                <NavLink to={`/${screen.path}`}>{screen.label}</NavLink>
              </li>
            ))}
            <li>
              <NavLink to="/messages">
                Messages <UnreadBadge />
              </NavLink>
            </li>
            <li>
              <NavLink to="/profile">My profile</NavLink>
            </li>
            <li>
              <button type="button" className="link" onClick={() => void signOut()}>
                Sign out
              </button>
            </li>
          </ul>
        </nav>
      </header>
      <main id="main">{children}</main>
    </UnreadProvider>
  );
}

const BLOCKED: Record<string, [string, string]> = {
  UNAUTHENTICATED: ["Your session has ended", "For your security you were signed out. Sign in again to carry on."],
  PORTAL_DISABLED: ["The portal is switched off", "The business you are a customer of has switched off portal access for your account. Contact them if you need it back."],
  PORTAL_NOT_IN_PLAN: ["No customer portal here", "This business does not offer a customer portal at the moment."],
};

function Blocked({ code, message }: { code: string; message: string }) {
  const { refresh } = useSession();
  const [title, text] = BLOCKED[code] ?? ["Something went wrong", message];
  return (
    <main id="main" className="auth">
      <Page title={title}>
        <p>{text}</p>
        <p className="muted">Code: {code}</p>
        <p>
          <a href="/portal/" onClick={() => void refresh()}>
            Go to the sign-in page
          </a>
        </p>
      </Page>
    </main>
  );
}

function NotHere() {
  return (
    <Page title="Not available">
      <p>This part of the portal is not included in your access. Ask the person who manages your company's portal users.</p>
      <p>
        <Link to="/">Go to the home page</Link>
      </p>
    </Page>
  );
}

function Routed() {
  const { state } = useSession();
  if (state.kind === "loading")
    return (
      <main id="main" className="auth">
        <Loading />
      </main>
    );
  if (state.kind === "blocked") return <Blocked code={state.error.code} message={state.error.message} />;
  if (state.kind === "signed-out")
    return (
      <Routes>
        <Route path="/reset-password" element={<ResetPasswordScreen />} />
      <Route path="/confirm-email" element={<ConfirmEmailScreen />} />
        <Route path="/:slug/accept-invitation" element={<AcceptInvitationScreen />} />
        {/* A screen's own address signs in first, then opens that screen. */}
        {["profile", "messages", "messages/:id", ":slug/messages/*", ...SCREENS.flatMap((s) => [s.path, ...(s.more ?? []).map((m) => m.path)])].map((path) => (
          <Route key={path} path={`/${path}`} element={<SignIn stay />} />
        ))}
        <Route path="/:slug" element={<SignIn />} />
        <Route path="*" element={<SignIn stay />} />
      </Routes>
    );
  const session = state.session;
  const shown = visible(session);
  return (
    <Routes>
      <Route path="/reset-password" element={<ResetPasswordScreen />} />
      <Route path="/confirm-email" element={<ConfirmEmailScreen />} />
      <Route path="/:slug/accept-invitation" element={<AcceptInvitationScreen />} />
      <Route
        path="*"
        element={
          <Shell session={session}>
            <Routes>
              <Route path="/" element={<Home />} />
              <Route path="/profile" element={<Profile />} />
              <Route path="/messages" element={<Messages />} />
              <Route path="/messages/:id" element={<MessageThread />} />
              <Route path="/:slug/messages/*" element={<NoticeLink />} />
              {shown.map((screen) => (
                <Route key={screen.path} path={`/${screen.path}`} element={screen.element} />
              ))}
              {shown.flatMap((screen) => screen.more ?? []).map((more) => (
                <Route key={more.path} path={`/${more.path}`} element={more.element} />
              ))}
              {SCREENS.filter((s) => !shown.includes(s)).flatMap((s) => [s.path, ...(s.more ?? []).map((m) => m.path)]).map((path) => (
                <Route key={path} path={`/${path}`} element={<NotHere />} />
              ))}
              <Route path="/:slug" element={<Navigate to="/" replace />} />
              <Route path="*" element={<Page title="Page not found"><p><Link to="/">Go to the home page</Link></p></Page>} />
            </Routes>
          </Shell>
        }
      />
    </Routes>
  );
}

export function App() {
  return (
    <BrowserRouter basename="/portal" future={{ v7_startTransition: true, v7_relativeSplatPath: true }}>
      <SessionProvider>
        <Routed />
      </SessionProvider>
    </BrowserRouter>
  );
}
