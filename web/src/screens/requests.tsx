// The customer's requests: a service on a product at a site, or a new quote or job.
import { useState } from "react";
import type { FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { ApiError, run, useQuery } from "../api";
import { day, moment, words } from "../format";
import { ContractorFilter } from "../filters";
import {
  CancelRequest,
  NewRequestForm,
  RequestWork,
  Requests as RequestsOperation,
  SubmitServiceRequest,
} from "../generated/operations";
import { Paged } from "../lists";
import { Field, FormError, Loaded, Page } from "../ui";

const OPEN = new Set(["NEW", "READ"]);

interface Cancelled {
  status: string;
  cancelReason?: string | null;
}

// Withdraws a request the office has not decided on yet, with the customer's reason.
function Cancel({ id, number, onCancelled }: { id: string; number: string; onCancelled: (cancelled: Cancelled) => void }) {
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState("");
  const [invalid, setInvalid] = useState<string>();
  const [error, setError] = useState<ApiError>();
  const [busy, setBusy] = useState(false);
  if (!open)
    return (
      <span>
        <button type="button" className="secondary" aria-label={`Cancel request ${number}`} onClick={() => setOpen(true)}>
          Cancel
        </button>
      </span>
    );
  async function submit(event: FormEvent) {
    event.preventDefault();
    const problem = reason.trim() ? undefined : "Say why you are cancelling.";
    setInvalid(problem);
    if (problem) return;
    setBusy(true);
    setError(undefined);
    try {
      const { cancelRequest } = await run(CancelRequest, { requestId: id, reason: reason.trim() });
      onCancelled(cancelRequest);
    } catch (failure) {
      setError(failure as ApiError);
      setBusy(false);
    }
  }
  return (
    <form onSubmit={submit} noValidate className="panel">
      <Field label={`Why are you cancelling request ${number}?`}>{(fieldId) => <textarea id={fieldId} value={reason} onChange={(e) => setReason(e.target.value)} rows={3} />}</Field>
      {invalid ? <p role="alert" className="form-error">{invalid}</p> : null}
      <FormError error={error} />
      <button type="submit" className="primary" disabled={busy}>
        Cancel the request
      </button>{" "}
      <button type="button" className="secondary" onClick={() => setOpen(false)}>
        Keep it
      </button>
    </form>
  );
}

export function Requests() {
  const [contractor, setContractor] = useState<string | null>(null);
  const [cancelled, setCancelled] = useState<Record<string, Cancelled>>({});
  return (
    <Page title="Requests">
      <p>
        <Link to="/requests/new" className="button primary">
          New request
        </Link>
      </p>
      <ContractorFilter value={contractor} onChange={setContractor} />
      <Paged operation={RequestsOperation} variables={{ contractor }} pick={(d) => d.requests} empty="You have not made any requests yet.">
        {(requests) => (
          <ul className="rows">
            {requests.map((shown) => ({ ...shown, ...cancelled[shown.id] })).map((request) => (
              <li key={request.id}>
                <span>
                  Request {request.number} · {[request.productName, request.serviceName].filter(Boolean).join(", ") || words(request.kind)}
                </span>
                <span className="status">{words(request.status)}</span>
                <span className="muted">
                  {request.site?.name ?? ""} · {request.contractor.name} · sent {moment(request.createdAt, request.contractor)}
                  {request.preferredDate ? ` · preferred ${day(request.preferredDate)}` : ""}
                  {request.poNumber ? ` · PO ${request.poNumber}` : ""}
                </span>
                {request.declineReason ? <span>Declined: {request.declineReason}</span> : null}
                {request.cancelReason ? <span>Cancelled: {request.cancelReason}</span> : null}
                {OPEN.has(request.status) ? (
                  <Cancel id={request.id} number={String(request.number)} onCancelled={(done) => setCancelled({ ...cancelled, [request.id]: done })} />
                ) : null}
              </li>
            ))}
          </ul>
        )}
      </Paged>
    </Page>
  );
}

export function requestProblem(kind: string, form: { siteId: string; productId: string; serviceId: string; rental: string; description: string }): string | undefined {
  if (!form.siteId) return "Choose the site.";
  if (kind === "SERVICE" && !form.productId && !form.serviceId) return "Choose a product or a service.";
  if (kind === "SERVICE" && !form.rental) return "Pick the rental this is for, or ask for a new one.";
  if (kind !== "SERVICE" && !form.description.trim()) return "Describe what you need.";
  return undefined;
}

export function NewRequest() {
  const navigate = useNavigate();
  const [contractor, setContractor] = useState<string | null>(null);
  const query = useQuery(NewRequestForm, { contractor });
  const [kind, setKind] = useState<"SERVICE" | "QUOTE" | "JOB">("SERVICE");
  const [form, setForm] = useState({ siteId: "", productId: "", serviceId: "", rental: "", description: "", poNumber: "", notes: "", preferredDate: "" });
  const [invalid, setInvalid] = useState<string>();
  const [error, setError] = useState<ApiError>();
  const [busy, setBusy] = useState(false);
  const set = (name: keyof typeof form) => (event: { target: { value: string } }) => setForm({ ...form, [name]: event.target.value });

  async function submit(event: FormEvent) {
    event.preventDefault();
    const problem = requestProblem(kind, form);
    setInvalid(problem);
    if (problem) return;
    setBusy(true);
    setError(undefined);
    try {
      const common = { siteId: form.siteId, poNumber: form.poNumber.trim() || null, preferredDate: form.preferredDate || null };
      if (kind === "SERVICE") {
        await run(SubmitServiceRequest, {
          input: {
            ...common,
            productId: form.productId || null,
            serviceId: form.serviceId || null,
            rentalId: form.rental && form.rental !== "new" ? form.rental : null,
            newRental: form.rental === "new",
            notes: form.notes.trim() || null,
          },
        });
      } else {
        await run(RequestWork, { input: { ...common, kind, description: form.description.trim() } });
      }
      navigate("/requests", { state: { sent: true } });
    } catch (failure) {
      setError(failure as ApiError);
      setBusy(false);
    }
  }

  return (
    <Page title="New request">
      <ContractorFilter value={contractor} onChange={setContractor} />
      <Loaded query={query}>
        {(data) => {
          const sites = data.customers.flatMap((c) => c.sites.map((s) => ({ ...s, customer: c.name })));
          const site = sites.find((s) => s.id === form.siteId);
          const products = data.requestableItems.filter((i) => i.kind === "PRODUCT");
          const services = data.requestableItems.filter((i) => i.kind === "SERVICE");
          return (
            <form onSubmit={submit} noValidate>
              <fieldset>
                <legend>What do you need?</legend>
                {(
                  [
                    ["SERVICE", "A service or product"],
                    ["QUOTE", "A new quote"],
                    ["JOB", "A new job"],
                  ] as const
                ).map(([value, label]) => (
                  <div className="check" key={value}>
                    <input id={`kind-${value}`} type="radio" name="kind" checked={kind === value} onChange={() => setKind(value)} />
                    <label htmlFor={`kind-${value}`}>{label}</label>
                  </div>
                ))}
              </fieldset>
              <Field label="Site">
                {(id) => (
                  <select id={id} value={form.siteId} onChange={set("siteId")}>
                    <option value="">Choose a site</option>
                    {sites.map((s) => (
                      <option key={s.id} value={s.id}>
                        {s.name}
                        {s.siteNumber ? ` (${s.siteNumber})` : ""}
                        {data.customers.length > 1 ? ` · ${s.customer}` : ""}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
              {kind === "SERVICE" ? (
                <>
                  <Field label="Product">
                    {(id) => (
                      <select id={id} value={form.productId} onChange={set("productId")}>
                        <option value="">No product</option>
                        {products.map((p) => (
                          <option key={p.id} value={p.id}>
                            {p.name}
                          </option>
                        ))}
                      </select>
                    )}
                  </Field>
                  <Field label="Service">
                    {(id) => (
                      <select id={id} value={form.serviceId} onChange={set("serviceId")}>
                        <option value="">No service</option>
                        {services.map((p) => (
                          <option key={p.id} value={p.id}>
                            {p.name}
                          </option>
                        ))}
                      </select>
                    )}
                  </Field>
                  <Field label="Rental">
                    {(id) => (
                      <select id={id} value={form.rental} onChange={set("rental")}>
                        <option value="">Choose a rental</option>
                        <option value="new">A new rental</option>
                        {(site?.rentals ?? []).map((r) => (
                          <option key={r.id} value={r.id}>
                            {r.reference} · {r.description}
                          </option>
                        ))}
                      </select>
                    )}
                  </Field>
                  <Field label="Notes">{(id) => <textarea id={id} value={form.notes} onChange={set("notes")} rows={3} />}</Field>
                </>
              ) : (
                <Field label="What should be done?">{(id) => <textarea id={id} value={form.description} onChange={set("description")} rows={4} />}</Field>
              )}
              <Field label="PO number">{(id) => <input id={id} value={form.poNumber} onChange={set("poNumber")} />}</Field>
              <Field label="Preferred date">{(id) => <input id={id} type="date" value={form.preferredDate} onChange={set("preferredDate")} />}</Field>
              {invalid ? <p role="alert" className="form-error">{invalid}</p> : null}
              <FormError error={error} />
              <button type="submit" className="primary" disabled={busy}>
                Send the request
              </button>
            </form>
          );
        }}
      </Loaded>
    </Page>
  );
}
