// Signing in: password, an emailed link, a forgotten password, an invitation, a reset.
import { useEffect, useState } from "react";
import type { FormEvent, ReactNode } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";
import { ApiError, run, useQuery } from "../api";
import { applyAccent } from "../format";
import {
  AcceptInvitation,
  Branding,
  ConfirmEmailChange,
  RequestMagicLink,
  RequestPasswordReset,
  ResetPassword,
  SignIn as SignInOperation,
} from "../generated/operations";
import { useSession } from "../session";
import { Field, FormError, Page } from "../ui";

export const MIN_PASSWORD = 8;

function useBusy() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError>();
  async function attempt(action: () => Promise<void>) {
    setBusy(true);
    setError(undefined);
    try {
      await action();
    } catch (failure) {
      setError(failure instanceof ApiError ? failure : new ApiError("INTERNAL_ERROR", String(failure)));
    } finally {
      setBusy(false);
    }
  }
  return { busy, error, setError, attempt };
}

function Brand({ slug, customer }: { slug?: string; customer?: string | null }) {
  const branding = useQuery(Branding, { business: slug ?? "", customer: customer ?? null });
  const brand = slug ? branding.data?.branding : null;
  useEffect(() => {
    applyAccent(brand?.accentColour);
  }, [brand?.accentColour]);
  if (!brand) return null;
  return (
    <div className="brand">
      {brand.logoUrl ? <img src={brand.logoUrl} alt={`${brand.name} logo`} /> : null}
      <p className="brand-name">{brand.name}</p>
    </div>
  );
}

function AuthLayout({ slug, customer, title, children }: { slug?: string; customer?: string | null; title: string; children: ReactNode }) {
  return (
    <main className="auth" id="main">
      <Brand slug={slug} customer={customer} />
      <Page title={title}>{children}</Page>
    </main>
  );
}

const SIGN_IN_ERRORS: Record<string, string> = {
  INVALID_CREDENTIALS: "That email or username and password do not match an account.",
  PORTAL_DISABLED: "The portal is switched off for your account. Contact the business that invited you.",
  PORTAL_NOT_IN_PLAN: "This business does not offer a customer portal.",
  RATE_LIMITED: "Too many attempts. Wait a moment, then try again.",
};

export function SignIn({ stay = false }: { stay?: boolean }) {
  const { slug } = useParams();
  const [search] = useSearchParams();
  const customer = search.get("customer");
  const { refresh } = useSession();
  const navigate = useNavigate();
  const [mode, setMode] = useState<"password" | "link" | "forgot">("password");
  const [login, setLogin] = useState("");
  const [password, setPassword] = useState("");
  const [sent, setSent] = useState<string>();
  const [invalid, setInvalid] = useState<string>();
  const { busy, error, attempt, setError } = useBusy();

  function switchTo(next: typeof mode) {
    setMode(next);
    setSent(undefined);
    setError(undefined);
    setInvalid(undefined);
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (!login.trim()) return setInvalid(mode === "password" ? "Enter your email or username." : "Enter your email address.");
    if (mode !== "password" && !/^[^@\s]+@[^@\s]+$/.test(login.trim())) return setInvalid("Enter an email address, like name@example.com.");
    if (mode === "password" && !password) return setInvalid("Enter your password.");
    setInvalid(undefined);
    await attempt(async () => {
      if (mode === "password") {
        await run(SignInOperation, { login: login.trim(), password }, { quiet: true });
        await refresh();
        if (!stay) navigate("/", { replace: true });
      } else if (mode === "link") {
        await run(RequestMagicLink, { email: login.trim() }, { quiet: true });
        setSent("If that address has a portal account, a sign-in link is on its way. It works once, for a short time.");
      } else {
        await run(RequestPasswordReset, { email: login.trim() }, { quiet: true });
        setSent("If that address has a portal account, an email with a link to choose a new password is on its way.");
      }
    });
  }

  const title = mode === "password" ? "Sign in" : mode === "link" ? "Email me a sign-in link" : "Forgot your password?";
  const shown = error ? new ApiError(error.code, SIGN_IN_ERRORS[error.code] ?? error.message) : undefined;
  return (
    <AuthLayout slug={slug} customer={customer} title={title}>
      <form onSubmit={submit} noValidate>
        <Field label={mode === "password" ? "Email or username" : "Email"}>
          {(id) => (
            <input
              id={id}
              name="login"
              autoComplete={mode === "password" ? "username" : "email"}
              inputMode={mode === "password" ? "text" : "email"}
              value={login}
              onChange={(e) => setLogin(e.target.value)}
              aria-invalid={invalid && !login.trim() ? true : undefined}
              required
            />
          )}
        </Field>
        {mode === "password" ? (
          <Field label="Password">
            {(id) => (
              <input
                id={id}
                name="password"
                type="password"
                autoComplete="current-password"
                value={password}
                onChange={(e) => setPassword(e.target.value)}
                required
              />
            )}
          </Field>
        ) : null}
        {invalid ? (
          <p role="alert" className="form-error">
            {invalid}
          </p>
        ) : null}
        <FormError error={shown} />
        {sent ? (
          <p role="status" className="notice">
            {sent}
          </p>
        ) : null}
        <button type="submit" className="primary" disabled={busy}>
          {mode === "password" ? "Sign in" : mode === "link" ? "Email me a link" : "Email me a reset link"}
        </button>
      </form>
      <div className="alternatives">
        {mode !== "password" ? (
          <button type="button" className="link" onClick={() => switchTo("password")}>
            Sign in with a password
          </button>
        ) : null}
        {mode !== "link" ? (
          <button type="button" className="link" onClick={() => switchTo("link")}>
            Email me a link instead
          </button>
        ) : null}
        {mode !== "forgot" ? (
          <button type="button" className="link" onClick={() => switchTo("forgot")}>
            Forgot password?
          </button>
        ) : null}
      </div>
    </AuthLayout>
  );
}

export function passwordProblem(password: string, repeated: string): string | undefined {
  if (password.length < MIN_PASSWORD) return `Choose a password of at least ${MIN_PASSWORD} characters.`;
  if (password !== repeated) return "The two passwords differ.";
  return undefined;
}

function NewPassword({ password, repeated, onPassword, onRepeated }: { password: string; repeated: string; onPassword: (v: string) => void; onRepeated: (v: string) => void }) {
  return (
    <>
      <Field label="New password" hint={`At least ${MIN_PASSWORD} characters.`}>
        {(id) => <input id={id} type="password" autoComplete="new-password" value={password} onChange={(e) => onPassword(e.target.value)} required />}
      </Field>
      <Field label="Repeat the new password">
        {(id) => <input id={id} type="password" autoComplete="new-password" value={repeated} onChange={(e) => onRepeated(e.target.value)} required />}
      </Field>
    </>
  );
}

const TOKEN_ERRORS: Record<string, string> = {
  INVALID_TOKEN: "This link has expired or was used already. Ask for a new one.",
  PASSWORD_TOO_WEAK: "Choose a longer password, one that is not easy to guess.",
  USERNAME_TAKEN: "That username is taken: choose another.",
  EMAIL_TAKEN: "Another account already signs in with that address, so yours stays as it was.",
  RATE_LIMITED: "Too many tries from here. Wait a few minutes and try again.",
};

function explained(error: ApiError | undefined): ApiError | undefined {
  return error && new ApiError(error.code, TOKEN_ERRORS[error.code] ?? error.message);
}

export function AcceptInvitationScreen() {
  const { slug = "" } = useParams();
  const [search] = useSearchParams();
  const token = search.get("token") ?? "";
  const { refresh } = useSession();
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [repeated, setRepeated] = useState("");
  const [invalid, setInvalid] = useState<string>();
  const { busy, error, attempt } = useBusy();

  async function submit(event: FormEvent) {
    event.preventDefault();
    const problem = !name.trim() ? "Enter your name." : !username.trim() ? "Choose a username." : passwordProblem(password, repeated);
    setInvalid(problem);
    if (problem) return;
    await attempt(async () => {
      await run(AcceptInvitation, { input: { tenant: slug, token, name: name.trim(), username: username.trim(), password } }, { quiet: true });
      await refresh();
      navigate("/", { replace: true });
    });
  }

  return (
    <AuthLayout slug={slug} title="Set up your portal account">
      {!token ? (
        <p role="alert" className="form-error">
          This link is incomplete. Open it again from your invitation email.
        </p>
      ) : (
        <form onSubmit={submit} noValidate>
          <Field label="Your name">{(id) => <input id={id} autoComplete="name" value={name} onChange={(e) => setName(e.target.value)} required />}</Field>
          <Field label="Username">{(id) => <input id={id} autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} required />}</Field>
          <NewPassword password={password} repeated={repeated} onPassword={setPassword} onRepeated={setRepeated} />
          {invalid ? <p role="alert" className="form-error">{invalid}</p> : null}
          <FormError error={explained(error)} />
          <button type="submit" className="primary" disabled={busy}>
            Create my account
          </button>
        </form>
      )}
    </AuthLayout>
  );
}

export function ResetPasswordScreen() {
  const [search] = useSearchParams();
  const token = search.get("token") ?? "";
  const [password, setPassword] = useState("");
  const [repeated, setRepeated] = useState("");
  const [invalid, setInvalid] = useState<string>();
  const [done, setDone] = useState(false);
  const { busy, error, attempt } = useBusy();

  async function submit(event: FormEvent) {
    event.preventDefault();
    const problem = passwordProblem(password, repeated);
    setInvalid(problem);
    if (problem) return;
    await attempt(async () => {
      await run(ResetPassword, { token, newPassword: password }, { quiet: true });
      setDone(true);
    });
  }

  return (
    <AuthLayout title="Choose a new password">
      {done ? (
        <p role="status" className="notice">
          Your password is changed. <Link to="/">Sign in with it</Link>.
        </p>
      ) : !token ? (
        <p role="alert" className="form-error">
          This link is incomplete. Open it again from your email.
        </p>
      ) : (
        <form onSubmit={submit} noValidate>
          <NewPassword password={password} repeated={repeated} onPassword={setPassword} onRepeated={setRepeated} />
          {invalid ? <p role="alert" className="form-error">{invalid}</p> : null}
          <FormError error={explained(error)} />
          <button type="submit" className="primary" disabled={busy}>
            Save the new password
          </button>
        </form>
      )}
    </AuthLayout>
  );
}

// A link is used once: a screen mounted twice (as in development) must not spend it twice.
const confirming = new Map<string, Promise<unknown>>();

export function ConfirmEmailScreen() {
  const [search] = useSearchParams();
  const token = search.get("token") ?? "";
  const { state, refresh } = useSession();
  const [outcome, setOutcome] = useState<{ done: boolean; error?: ApiError }>();
  useEffect(() => {
    if (!token) return;
    let current = true;
    const pending = confirming.get(token) ?? run(ConfirmEmailChange, { token }, { quiet: true });
    confirming.set(token, pending);
    pending.then(
      () => {
        if (!current) return;
        setOutcome({ done: true });
        void refresh();
      },
      (failure: unknown) =>
        current && setOutcome({ done: false, error: failure instanceof ApiError ? failure : new ApiError("INTERNAL_ERROR", String(failure)) }),
    );
    return () => {
      current = false;
    };
  }, [token, refresh]);
  const next = state.kind === "signed-in" ? "Go to my profile" : "Sign in with it";
  return (
    <AuthLayout title="Confirm your new email address">
      {!token ? (
        <p role="alert" className="form-error">
          This link is incomplete. Open it again from your email.
        </p>
      ) : !outcome ? (
        <p role="status" className="muted">
          Confirming…
        </p>
      ) : outcome.done ? (
        <p role="status" className="notice">
          Your email address is changed. <Link to={state.kind === "signed-in" ? "/profile" : "/"}>{next}</Link>.
        </p>
      ) : (
        <>
          <FormError error={explained(outcome.error)} />
          <p>Your email address has not changed.</p>
        </>
      )}
    </AuthLayout>
  );
}
