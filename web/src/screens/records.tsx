// Quotes, jobs, certificates and appointments: what the contractor sends the customer.
import { useState } from "react";
import { Link, useParams } from "react-router-dom";
import { ApiError, run, useQuery } from "../api";
import { day, money, moment, words } from "../format";
import { ContractorFilter } from "../filters";
import {
  Appointments as AppointmentsOperation,
  Certificates as CertificatesOperation,
  DecideQuote,
  Job as JobOperation,
  Jobs as JobsOperation,
  Quote as QuoteOperation,
  Quotes as QuotesOperation,
} from "../generated/operations";
import type { JobQuery, QuoteQuery } from "../generated/graphql";
import { Paged } from "../lists";
import { Field, FormError, Loaded, Page } from "../ui";

export function Quotes() {
  const [contractor, setContractor] = useState<string | null>(null);
  return (
    <Page title="Quotes">
      <ContractorFilter value={contractor} onChange={setContractor} />
      <Paged operation={QuotesOperation} variables={{ contractor }} pick={(d) => d.quotes} empty="No quotes to show.">
        {(quotes) => (
          <ul className="rows">
            {quotes.map((quote) => (
              <li key={quote.id}>
                <Link to={`/quotes/${encodeURIComponent(quote.id)}`}>
                  Quote {quote.number} · {quote.title}
                </Link>
                <span className="status">{words(quote.status)}</span>
                <span className="muted">
                  {quote.contractor.name}
                  {quote.validUntil ? ` · valid until ${day(quote.validUntil)}` : ""}
                </span>
                <span>{money(quote.total)}</span>
              </li>
            ))}
          </ul>
        )}
      </Paged>
    </Page>
  );
}

type QuoteNode = Extract<NonNullable<QuoteQuery["node"]>, { title: string }>;

export function Quote() {
  const { id = "" } = useParams();
  const query = useQuery(QuoteOperation, { id });
  const [error, setError] = useState<ApiError>();
  const [busy, setBusy] = useState(false);
  async function decide(approve: boolean) {
    setBusy(true);
    setError(undefined);
    try {
      await run(DecideQuote, { quoteId: id, approve });
      query.reload();
    } catch (failure) {
      setError(failure as ApiError);
    } finally {
      setBusy(false);
    }
  }
  return (
    <Loaded query={query}>
      {(data) => {
        const quote = data.node as QuoteNode | null;
        if (!quote || !("title" in quote)) return <Page title="Quote not found"><p>There is no such quote, or it is not yours to see.</p></Page>;
        return (
          <Page title={`Quote ${quote.number}`}>
            <p>
              <Link to="/quotes">← All quotes</Link>
            </p>
            <p className="lead">{quote.title}</p>
            <dl className="facts">
              <dt>Status</dt>
              <dd>{words(quote.status)}</dd>
              <dt>From</dt>
              <dd>{quote.contractor.name}</dd>
              {quote.validUntil ? (
                <>
                  <dt>Valid until</dt>
                  <dd>{day(quote.validUntil)}</dd>
                </>
              ) : null}
              {quote.decidedAt ? (
                <>
                  <dt>Decided</dt>
                  <dd>{moment(quote.decidedAt, quote.contractor)}</dd>
                </>
              ) : null}
              <dt>Total</dt>
              <dd>{money(quote.total)}</dd>
            </dl>
            {quote.description ? <p>{quote.description}</p> : null}
            <ul className="rows">
              {quote.lines.map((line, index) => (
                <li key={index}>
                  <span>{line.description}</span>
                  <span className="muted">
                    {line.quantity} × {money(line.unitPrice)}
                  </span>
                  <span>{money(line.total)}</span>
                </li>
              ))}
            </ul>
            <FormError error={error} />
            {quote.status === "SENT" ? (
              <div className="actions">
                <button type="button" className="primary" disabled={busy} onClick={() => void decide(true)}>
                  Approve the quote
                </button>
                <button type="button" className="secondary" disabled={busy} onClick={() => void decide(false)}>
                  Decline it
                </button>
              </div>
            ) : null}
          </Page>
        );
      }}
    </Loaded>
  );
}

export function Jobs() {
  const [contractor, setContractor] = useState<string | null>(null);
  return (
    <Page title="Jobs">
      <ContractorFilter value={contractor} onChange={setContractor} />
      <Paged operation={JobsOperation} variables={{ contractor }} pick={(d) => d.jobs} empty="No jobs to show.">
        {(jobs) => (
          <ul className="rows">
            {jobs.map((job) => (
              <li key={job.id}>
                <Link to={`/jobs/${encodeURIComponent(job.id)}`}>
                  Job {job.number} · {job.title}
                </Link>
                <span className="status">{words(job.status)}</span>
                <span className="muted">
                  {job.contractor.name}
                  {job.poNumber ? ` · PO ${job.poNumber}` : ""}
                </span>
              </li>
            ))}
          </ul>
        )}
      </Paged>
    </Page>
  );
}

type JobNode = Extract<NonNullable<JobQuery["node"]>, { visits: unknown }>;

export function Job() {
  const { id = "" } = useParams();
  const query = useQuery(JobOperation, { id });
  return (
    <Loaded query={query}>
      {(data) => {
        const job = data.node as JobNode | null;
        if (!job || !("visits" in job)) return <Page title="Job not found"><p>There is no such job, or it is not yours to see.</p></Page>;
        return (
          <Page title={`Job ${job.number}`}>
            <p>
              <Link to="/jobs">← All jobs</Link>
            </p>
            <p className="lead">{job.title}</p>
            <dl className="facts">
              <dt>Status</dt>
              <dd>{words(job.status)}</dd>
              <dt>From</dt>
              <dd>{job.contractor.name}</dd>
              {job.poNumber ? (
                <>
                  <dt>PO number</dt>
                  <dd>{job.poNumber}</dd>
                </>
              ) : null}
            </dl>
            {job.description ? <p>{job.description}</p> : null}
            <h2>Visits</h2>
            {job.visits.length === 0 ? (
              <p className="empty">No visits are booked.</p>
            ) : (
              <ul className="rows">
                {job.visits.map((visit) => (
                  <li key={visit.startsAt}>
                    <span>
                      {moment(visit.startsAt, job.contractor)} to {moment(visit.endsAt, job.contractor)}
                    </span>
                    <span className="status">{words(visit.status)}</span>
                  </li>
                ))}
              </ul>
            )}
          </Page>
        );
      }}
    </Loaded>
  );
}

export function Certificates() {
  const [contractor, setContractor] = useState<string | null>(null);
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  return (
    <Page title="Certificates">
      <div className="filters">
        <ContractorFilter value={contractor} onChange={setContractor} />
        <Field label="Issued from">{(id) => <input id={id} type="date" value={from} onChange={(e) => setFrom(e.target.value)} />}</Field>
        <Field label="Issued to">{(id) => <input id={id} type="date" value={to} onChange={(e) => setTo(e.target.value)} />}</Field>
      </div>
      <Paged
        operation={CertificatesOperation}
        variables={{ contractor, issuedFrom: from || null, issuedTo: to || null }}
        pick={(d) => d.certificates}
        empty="No certificates to show."
      >
        {(certificates) => (
          <ul className="rows">
            {certificates.map((certificate) => (
              <li key={certificate.id}>
                <span>
                  {certificate.number} · {certificate.title}
                </span>
                <span className="muted">
                  {certificate.contractor.name} · issued {day(certificate.issuedOn)}
                  {certificate.expiresOn ? ` · expires ${day(certificate.expiresOn)}` : ""}
                </span>
                {certificate.downloadUrl ? (
                  <a href={certificate.downloadUrl} download>
                    Download certificate {certificate.number}
                  </a>
                ) : null}
              </li>
            ))}
          </ul>
        )}
      </Paged>
    </Page>
  );
}

function isoDay(offset: number): string {
  const date = new Date();
  date.setDate(date.getDate() + offset);
  return date.toISOString().slice(0, 10);
}

export function Appointments() {
  const [contractor, setContractor] = useState<string | null>(null);
  const [from, setFrom] = useState(isoDay(-7));
  const [to, setTo] = useState(isoDay(60));
  return (
    <Page title="Appointments">
      <div className="filters">
        <ContractorFilter value={contractor} onChange={setContractor} />
        <Field label="From">{(id) => <input id={id} type="date" value={from} onChange={(e) => setFrom(e.target.value)} />}</Field>
        <Field label="To">{(id) => <input id={id} type="date" value={to} onChange={(e) => setTo(e.target.value)} />}</Field>
      </div>
      {from && to && from <= to ? (
        <Paged operation={AppointmentsOperation} variables={{ from, to, contractor }} pick={(d) => d.appointments} empty="No appointments in these dates.">
          {(appointments) => (
            <ul className="rows">
              {appointments.map((appointment) => (
                <li key={appointment.id}>
                  <span>{appointment.title}</span>
                  <span className="muted">
                    {moment(appointment.startsAt, appointment.contractor)} to {moment(appointment.endsAt, appointment.contractor)}
                    {appointment.jobNumber ? ` · job ${appointment.jobNumber}` : ""}
                    {appointment.quoteNumber ? ` · estimate ${appointment.quoteNumber}` : ""}
                  </span>
                  {appointment.address ? <span>{appointment.address}</span> : null}
                  {appointment.description ? <span className="muted">{appointment.description}</span> : null}
                </li>
              ))}
            </ul>
          )}
        </Paged>
      ) : (
        <p role="alert" className="form-error">
          Choose a start date on or before the end date.
        </p>
      )}
    </Page>
  );
}
