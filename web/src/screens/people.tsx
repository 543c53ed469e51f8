// Properties, contacts, portal users and my own profile.
import { useState } from "react";
import type { FormEvent, ReactNode } from "react";
import { ApiError, run } from "../api";
import { ContractorFilter } from "../filters";
import {
  AddContact,
  AddPortalUser,
  AddProperty,
  ChangePassword,
  Contacts as ContactsOperation,
  DeleteContact,
  PortalUsers as PortalUsersOperation,
  Properties as PropertiesOperation,
  RemovePortalUser,
  RequestEmailChange,
  ResendPortalUserInvitation,
  SetContactPortalAccess,
  SetPortalUserModules,
  UpdateContact,
  UpdateProfile,
} from "../generated/operations";
import type { PortalModule } from "../generated/graphql";
import { Paged } from "../lists";
import { allows, useSession, useSignedIn } from "../session";
import { Field, FormError, Page } from "../ui";
import { passwordProblem } from "./auth";
import { words } from "../format";

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

function useAction() {
  const [error, setError] = useState<ApiError>();
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<string>();
  async function act(action: () => Promise<unknown>, message?: string): Promise<boolean> {
    setBusy(true);
    setError(undefined);
    setDone(undefined);
    try {
      await action();
      setDone(message);
      return true;
    } catch (failure) {
      setError(failure as ApiError);
      return false;
    } finally {
      setBusy(false);
    }
  }
  return { error, busy, done, act };
}

function Notice({ text }: { text?: string }) {
  return text ? (
    <p role="status" className="notice">
      {text}
    </p>
  ) : null;
}

function Adding({ label, children }: { label: string; children: (close: () => void) => ReactNode }) {
  const [open, setOpen] = useState(false);
  return open ? (
    <div className="panel">{children(() => setOpen(false))}</div>
  ) : (
    <p>
      <button type="button" className="primary" onClick={() => setOpen(true)}>
        {label}
      </button>
    </p>
  );
}

export function Properties() {
  const session = useSignedIn();
  const [contractor, setContractor] = useState<string | null>(null);
  const [round, setRound] = useState(0);
  const canAdd = session.company;
  return (
    <Page title="Properties">
      {canAdd ? <Adding label="Add a property">{(close) => <PropertyForm onDone={() => { close(); setRound(round + 1); }} />}</Adding> : null}
      <ContractorFilter value={contractor} onChange={setContractor} />
      <Paged key={round} operation={PropertiesOperation} variables={{ contractor }} pick={(d) => d.properties} empty="No properties yet.">
        {(sites) => (
          <ul className="rows">
            {sites.map((site) => (
              <li key={site.id}>
                <span>
                  {site.name}
                  {site.siteNumber ? ` (${site.siteNumber})` : ""}
                  {site.isCompanySite ? " · company site" : ""}
                </span>
                <span className="muted">{[site.addressLine1, site.addressLine2, site.town, site.postcode].filter(Boolean).join(", ")}</span>
                <span className="muted">
                  {site.customer.name}
                  {site.uprn ? ` · UPRN ${site.uprn}` : ""}
                </span>
              </li>
            ))}
          </ul>
        )}
      </Paged>
    </Page>
  );
}

function CustomerChoice({ value, onChange }: { value: string; onChange: (id: string) => void }) {
  const session = useSignedIn();
  const customers = session.customers.filter((c) => c.contactKind === "COMPANY");
  if (customers.length < 2) return null;
  return (
    <Field label="Customer">
      {(id) => (
        <select id={id} value={value} onChange={(e) => onChange(e.target.value)}>
          <option value="">Choose a customer</option>
          {customers.map((c) => (
            <option key={c.id} value={c.id}>
              {c.name} ({c.contractor.name})
            </option>
          ))}
        </select>
      )}
    </Field>
  );
}

function PropertyForm({ onDone }: { onDone: () => void }) {
  const [form, setForm] = useState({ customerId: "", name: "", addressLine1: "", addressLine2: "", town: "", postcode: "", uprn: "", isCompanySite: false });
  const [invalid, setInvalid] = useState<string>();
  const { error, busy, act } = useAction();
  const set = (name: keyof typeof form) => (event: { target: { value: string } }) => setForm({ ...form, [name]: event.target.value });
  async function submit(event: FormEvent) {
    event.preventDefault();
    const problem = !form.name.trim() ? "Give the property a name." : !form.addressLine1.trim() ? "Enter the first line of its address." : undefined;
    setInvalid(problem);
    if (problem) return;
    const blank = (v: string) => v.trim() || null;
    const ok = await act(() =>
      run(AddProperty, {
        input: {
          customerId: form.customerId || null,
          name: form.name.trim(),
          addressLine1: form.addressLine1.trim(),
          addressLine2: blank(form.addressLine2),
          town: blank(form.town),
          postcode: blank(form.postcode),
          uprn: blank(form.uprn),
          isCompanySite: form.isCompanySite,
        },
      }),
    );
    if (ok) onDone();
  }
  return (
    <form onSubmit={submit} noValidate>
      <h2>Add a property</h2>
      <CustomerChoice value={form.customerId} onChange={(customerId) => setForm({ ...form, customerId })} />
      <Field label="Name">{(id) => <input id={id} value={form.name} onChange={set("name")} />}</Field>
      <Field label="Address line 1">{(id) => <input id={id} autoComplete="address-line1" value={form.addressLine1} onChange={set("addressLine1")} />}</Field>
      <Field label="Address line 2">{(id) => <input id={id} autoComplete="address-line2" value={form.addressLine2} onChange={set("addressLine2")} />}</Field>
      <Field label="Town">{(id) => <input id={id} autoComplete="address-level2" value={form.town} onChange={set("town")} />}</Field>
      <Field label="Postcode">{(id) => <input id={id} autoComplete="postal-code" value={form.postcode} onChange={set("postcode")} />}</Field>
      <Field label="UPRN">{(id) => <input id={id} inputMode="numeric" value={form.uprn} onChange={set("uprn")} />}</Field>
      <div className="check">
        <input id="company-site" type="checkbox" checked={form.isCompanySite} onChange={(e) => setForm({ ...form, isCompanySite: e.target.checked })} />
        <label htmlFor="company-site">This is a company site</label>
      </div>
      {invalid ? <p role="alert" className="form-error">{invalid}</p> : null}
      <FormError error={error} />
      <button type="submit" className="primary" disabled={busy}>
        Add the property
      </button>
    </form>
  );
}

export function Contacts() {
  const [contractor, setContractor] = useState<string | null>(null);
  const [round, setRound] = useState(0);
  const { error, busy, done, act } = useAction();
  const reload = () => setRound((n) => n + 1);
  return (
    <Page title="Contacts">
      <Adding label="Add a contact">{(close) => <ContactForm onDone={() => { close(); reload(); }} />}</Adding>
      <ContractorFilter value={contractor} onChange={setContractor} />
      <FormError error={error} />
      <Notice text={done} />
      <Paged key={round} operation={ContactsOperation} variables={{ contractor }} pick={(d) => d.contacts} empty="No contacts yet.">
        {(contacts) => (
          <ul className="rows">
            {contacts.map((contact) => (
              <li key={contact.id}>
                <span>
                  {contact.name} · {contact.kind === "COMPANY" ? "company contact" : `site contact${contact.site ? ` at ${contact.site.name}` : ""}`}
                </span>
                <span className="muted">{[contact.email, contact.phone].filter(Boolean).join(" · ")}</span>
                <span>Portal access: {contact.portalAccess ? "on" : "off"}</span>
                <span className="actions">
                  <button type="button" className="secondary" disabled={busy} onClick={() => void act(() => run(SetContactPortalAccess, { id: contact.id, enabled: !contact.portalAccess }), contact.portalAccess ? `${contact.name} can no longer sign in.` : `${contact.name} is invited by email.`).then(reload)}>
                    {contact.portalAccess ? `Switch off portal access for ${contact.name}` : `Invite ${contact.name} to the portal`}
                  </button>
                  <EditContact contact={contact} onDone={reload} />
                  <button type="button" className="danger" disabled={busy} onClick={() => window.confirm(`Remove ${contact.name}?`) && void act(() => run(DeleteContact, { id: contact.id }), `${contact.name} is removed.`).then(reload)}>
                    Remove {contact.name}
                  </button>
                </span>
              </li>
            ))}
          </ul>
        )}
      </Paged>
    </Page>
  );
}

function EditContact({ contact, onDone }: { contact: { id: string; name: string; email: string | null; phone: string | null }; onDone: () => void }) {
  const [open, setOpen] = useState(false);
  const [form, setForm] = useState({ name: contact.name, email: contact.email ?? "", phone: contact.phone ?? "" });
  const { error, busy, act } = useAction();
  if (!open)
    return (
      <button type="button" className="secondary" onClick={() => setOpen(true)}>
        Edit {contact.name}
      </button>
    );
  async function submit(event: FormEvent) {
    event.preventDefault();
    const ok = await act(() => run(UpdateContact, { id: contact.id, input: { name: form.name.trim(), email: form.email.trim() || null, phone: form.phone.trim() || null } }));
    if (ok) {
      setOpen(false);
      onDone();
    }
  }
  const set = (name: keyof typeof form) => (event: { target: { value: string } }) => setForm({ ...form, [name]: event.target.value });
  return (
    <form onSubmit={submit} className="panel" noValidate>
      <Field label={`Name of ${contact.name}`}>{(id) => <input id={id} value={form.name} onChange={set("name")} />}</Field>
      <Field label={`Email of ${contact.name}`}>{(id) => <input id={id} type="email" value={form.email} onChange={set("email")} />}</Field>
      <Field label={`Phone of ${contact.name}`}>{(id) => <input id={id} type="tel" value={form.phone} onChange={set("phone")} />}</Field>
      <FormError error={error} />
      <button type="submit" className="primary" disabled={busy}>
        Save
      </button>
    </form>
  );
}

function ContactForm({ onDone }: { onDone: () => void }) {
  const [form, setForm] = useState({ customerId: "", name: "", email: "", phone: "", portalAccess: false });
  const [invalid, setInvalid] = useState<string>();
  const { error, busy, act } = useAction();
  const set = (name: "name" | "email" | "phone") => (event: { target: { value: string } }) => setForm({ ...form, [name]: event.target.value });
  async function submit(event: FormEvent) {
    event.preventDefault();
    const problem = !form.name.trim()
      ? "Enter the contact's name."
      : form.email.trim() && !EMAIL.test(form.email.trim())
        ? "Enter an email address such as name@example.com."
        : form.portalAccess && !form.email.trim()
          ? "A contact needs an email address to be invited."
          : undefined;
    setInvalid(problem);
    if (problem) return;
    const ok = await act(() =>
      run(AddContact, { input: { customerId: form.customerId || null, name: form.name.trim(), email: form.email.trim() || null, phone: form.phone.trim() || null, portalAccess: form.portalAccess } }),
    );
    if (ok) onDone();
  }
  return (
    <form onSubmit={submit} noValidate>
      <h2>Add a contact</h2>
      <CustomerChoice value={form.customerId} onChange={(customerId) => setForm({ ...form, customerId })} />
      <Field label="Name">{(id) => <input id={id} autoComplete="off" value={form.name} onChange={set("name")} />}</Field>
      <Field label="Email">{(id) => <input id={id} type="email" autoComplete="off" value={form.email} onChange={set("email")} />}</Field>
      <Field label="Phone">{(id) => <input id={id} type="tel" autoComplete="off" value={form.phone} onChange={set("phone")} />}</Field>
      <div className="check">
        <input id="portal-access" type="checkbox" checked={form.portalAccess} onChange={(e) => setForm({ ...form, portalAccess: e.target.checked })} />
        <label htmlFor="portal-access">Invite them to the portal</label>
      </div>
      {invalid ? <p role="alert" className="form-error">{invalid}</p> : null}
      <FormError error={error} />
      <button type="submit" className="primary" disabled={busy}>
        Add the contact
      </button>
    </form>
  );
}

const MODULES: PortalModule[] = ["QUOTES", "JOBS", "INVOICES", "CERTIFICATES", "DIARIES", "REQUESTS", "PROPERTIES", "USERS"];

function ModuleChoice({ prefix, value, onChange }: { prefix: string; value: PortalModule[]; onChange: (modules: PortalModule[]) => void }) {
  const session = useSignedIn();
  return (
    <fieldset>
      <legend>What they may see</legend>
      {MODULES.filter((m) => allows(session, m)).map((module) => (
        <div className="check" key={module}>
          <input
            id={`${prefix}-${module}`}
            type="checkbox"
            checked={value.includes(module)}
            onChange={(e) => onChange(e.target.checked ? [...value, module] : value.filter((m) => m !== module))}
          />
          <label htmlFor={`${prefix}-${module}`}>{words(module)}</label>
        </div>
      ))}
    </fieldset>
  );
}

export function PortalUsers() {
  const session = useSignedIn();
  const [contractor, setContractor] = useState<string | null>(null);
  const [round, setRound] = useState(0);
  const { error, busy, done, act } = useAction();
  const reload = () => setRound((n) => n + 1);
  return (
    <Page title="Portal users">
      <Adding label="Add a portal user">{(close) => <UserForm onDone={() => { close(); reload(); }} />}</Adding>
      <ContractorFilter value={contractor} onChange={setContractor} />
      <FormError error={error} />
      <Notice text={done} />
      <Paged key={round} operation={PortalUsersOperation} variables={{ contractor }} pick={(d) => d.users} empty="No portal users yet.">
        {(users) => (
          <ul className="rows">
            {users.map((user) => (
              <li key={user.id}>
                <span>
                  {user.name} · {words(user.status)}
                </span>
                <span className="muted">{[user.email, user.username].filter(Boolean).join(" · ")}</span>
                <span className="muted">Access: {user.moduleOverride ? user.moduleOverride.map(words).join(", ") : "the customer's default"}</span>
                {user.email !== session.viewer.email ? (
                  <span className="actions">
                    <UserModules user={user} onDone={reload} />
                    {user.status !== "ACTIVE" ? (
                      <button type="button" className="secondary" disabled={busy} onClick={() => void act(() => run(ResendPortalUserInvitation, { id: user.id }), `A new invitation is on its way to ${user.name}.`)}>
                        Resend the invitation to {user.name}
                      </button>
                    ) : null}
                    <button type="button" className="danger" disabled={busy} onClick={() => window.confirm(`Remove ${user.name}'s portal access?`) && void act(() => run(RemovePortalUser, { id: user.id }), `${user.name} is removed.`).then(reload)}>
                      Remove {user.name}
                    </button>
                  </span>
                ) : null}
              </li>
            ))}
          </ul>
        )}
      </Paged>
    </Page>
  );
}

function UserModules({ user, onDone }: { user: { id: string; name: string; moduleOverride: PortalModule[] | null }; onDone: () => void }) {
  const [open, setOpen] = useState(false);
  const [modules, setModules] = useState<PortalModule[]>(user.moduleOverride ?? []);
  const { error, busy, act } = useAction();
  if (!open)
    return (
      <button type="button" className="secondary" onClick={() => setOpen(true)}>
        Change {user.name}'s access
      </button>
    );
  return (
    <form
      className="panel"
      noValidate
      onSubmit={async (event) => {
        event.preventDefault();
        if (await act(() => run(SetPortalUserModules, { id: user.id, modules }))) {
          setOpen(false);
          onDone();
        }
      }}
    >
      <ModuleChoice prefix={`modules-${user.id}`} value={modules} onChange={setModules} />
      <FormError error={error} />
      <button type="submit" className="primary" disabled={busy}>
        Save access
      </button>
    </form>
  );
}

function UserForm({ onDone }: { onDone: () => void }) {
  const [form, setForm] = useState({ customerId: "", name: "", email: "", username: "" });
  const [modules, setModules] = useState<PortalModule[]>([]);
  const [invalid, setInvalid] = useState<string>();
  const { error, busy, act } = useAction();
  const set = (name: "name" | "email" | "username") => (event: { target: { value: string } }) => setForm({ ...form, [name]: event.target.value });
  async function submit(event: FormEvent) {
    event.preventDefault();
    const problem = !form.name.trim() ? "Enter their name." : !EMAIL.test(form.email.trim()) ? "Enter an email address such as name@example.com." : undefined;
    setInvalid(problem);
    if (problem) return;
    const ok = await act(() =>
      run(AddPortalUser, { input: { customerId: form.customerId || null, name: form.name.trim(), email: form.email.trim(), username: form.username.trim() || null, modules } }),
    );
    if (ok) onDone();
  }
  return (
    <form onSubmit={submit} noValidate>
      <h2>Add a portal user</h2>
      <CustomerChoice value={form.customerId} onChange={(customerId) => setForm({ ...form, customerId })} />
      <Field label="Name">{(id) => <input id={id} autoComplete="off" value={form.name} onChange={set("name")} />}</Field>
      <Field label="Email">{(id) => <input id={id} type="email" autoComplete="off" value={form.email} onChange={set("email")} />}</Field>
      <Field label="Username (optional)">{(id) => <input id={id} autoComplete="off" value={form.username} onChange={set("username")} />}</Field>
      <ModuleChoice prefix="new-user" value={modules} onChange={setModules} />
      {invalid ? <p role="alert" className="form-error">{invalid}</p> : null}
      <FormError error={error} />
      <button type="submit" className="primary" disabled={busy}>
        Invite them
      </button>
    </form>
  );
}

const PROFILE_ERRORS: Record<string, string> = {
  INVALID_CREDENTIALS: "Your current password is not right.",
  USERNAME_TAKEN: "That username is taken: choose another.",
  RATE_LIMITED: "Too many tries. Wait a few minutes and try again.",
};

function explained(error: ApiError | undefined): ApiError | undefined {
  return error && new ApiError(error.code, PROFILE_ERRORS[error.code] ?? error.message);
}

function NameAndUsername() {
  const session = useSignedIn();
  const { refresh } = useSession();
  const [name, setName] = useState(session.viewer.name);
  const [username, setUsername] = useState("");
  const [invalid, setInvalid] = useState<string>();
  const { error, busy, done, act } = useAction();
  async function submit(event: FormEvent) {
    event.preventDefault();
    const problem = !name.trim() ? "Enter your name." : username.includes("@") ? "A username cannot hold @." : undefined;
    setInvalid(problem);
    if (problem) return;
    const chosen = username.trim();
    const changed = chosen ? "Your name and username are saved." : "Your name is saved.";
    if (await act(() => run(UpdateProfile, { name: name.trim(), username: chosen || null }), changed)) {
      setUsername("");
      await refresh();
    }
  }
  return (
    <form onSubmit={submit} noValidate>
      <h2>My name and username</h2>
      <Field label="Your name">{(id) => <input id={id} autoComplete="name" value={name} onChange={(e) => setName(e.target.value)} />}</Field>
      <Field label="New username" hint="You can sign in with it instead of your email address. Leave it empty to keep yours.">
        {(id) => <input id={id} autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} />}
      </Field>
      {invalid ? <p role="alert" className="form-error">{invalid}</p> : null}
      <FormError error={invalid ? undefined : explained(error)} />
      <Notice text={done} />
      <button type="submit" className="primary" disabled={busy}>
        Save my name and username
      </button>
    </form>
  );
}

function EmailChange() {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [invalid, setInvalid] = useState<string>();
  const { error, busy, done, act } = useAction();
  async function submit(event: FormEvent) {
    event.preventDefault();
    const chosen = email.trim();
    const problem = !EMAIL.test(chosen) ? "Enter the new email address." : !password ? "Enter your current password." : undefined;
    setInvalid(problem);
    if (problem) return;
    const sent = `We sent a link to ${chosen}. Open it to confirm; until then you keep signing in with your current address.`;
    if (await act(() => run(RequestEmailChange, { newEmail: chosen, currentPassword: password }), sent)) {
      setEmail("");
      setPassword("");
    }
  }
  return (
    <form onSubmit={submit} noValidate>
      <h2>Change my email address</h2>
      <Field label="New email address">{(id) => <input id={id} type="email" autoComplete="email" value={email} onChange={(e) => setEmail(e.target.value)} />}</Field>
      <Field label="Your password">{(id) => <input id={id} type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />}</Field>
      {invalid ? <p role="alert" className="form-error">{invalid}</p> : null}
      <FormError error={invalid ? undefined : explained(error)} />
      <Notice text={done} />
      <button type="submit" className="primary" disabled={busy}>
        Email me a confirmation link
      </button>
    </form>
  );
}

function SignOutEverywhere() {
  const { signOut } = useSession();
  const [busy, setBusy] = useState(false);
  return (
    <div>
      <h2>Sign out everywhere</h2>
      <p>Ends your sessions on every device and browser, this one included.</p>
      <button
        type="button"
        className="secondary"
        disabled={busy}
        onClick={() => {
          setBusy(true);
          void signOut(true);
        }}
      >
        Sign out everywhere
      </button>
    </div>
  );
}

export function Profile() {
  const session = useSignedIn();
  const [current, setCurrent] = useState("");
  const [password, setPassword] = useState("");
  const [repeated, setRepeated] = useState("");
  const [invalid, setInvalid] = useState<string>();
  const { error, busy, done, act } = useAction();
  async function submit(event: FormEvent) {
    event.preventDefault();
    const problem = !current ? "Enter your current password." : passwordProblem(password, repeated);
    setInvalid(problem);
    if (problem) return;
    if (await act(() => run(ChangePassword, { currentPassword: current, newPassword: password }), "Your password is changed.")) {
      setCurrent("");
      setPassword("");
      setRepeated("");
    }
  }
  return (
    <Page title="My profile">
      <dl className="facts">
        <dt>Name</dt>
        <dd>{session.viewer.name}</dd>
        <dt>Email</dt>
        <dd>{session.viewer.email}</dd>
      </dl>
      <form onSubmit={submit} noValidate>
        <h2>Change my password</h2>
        <Field label="Current password">{(id) => <input id={id} type="password" autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.target.value)} />}</Field>
        <Field label="New password">{(id) => <input id={id} type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} />}</Field>
        <Field label="Repeat the new password">{(id) => <input id={id} type="password" autoComplete="new-password" value={repeated} onChange={(e) => setRepeated(e.target.value)} />}</Field>
        {invalid ? <p role="alert" className="form-error">{invalid}</p> : null}
        <FormError error={invalid ? undefined : explained(error)} />
        <Notice text={done} />
        <button type="submit" className="primary" disabled={busy}>
          Change my password
        </button>
      </form>
      <NameAndUsername />
      <EmailChange />
      <SignOutEverywhere />
    </Page>
  );
}
