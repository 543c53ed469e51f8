import { useState } from "react";
import { Link, useParams } from "react-router-dom";
import { useQuery } from "../api";
import { day, money, words } from "../format";
import { ContractorFilter } from "../filters";
import { Invoice as InvoiceOperation, Invoices as InvoicesOperation } from "../generated/operations";
import type { InvoiceQuery } from "../generated/graphql";
import { Paged } from "../lists";
import { Loaded, Page } from "../ui";
import { PayInvoice } from "./pay";

export function Invoices() {
  const [contractor, setContractor] = useState<string | null>(null);
  const [unpaidOnly, setUnpaidOnly] = useState(false);
  return (
    <Page title="Invoices">
      <div className="filters">
        <ContractorFilter value={contractor} onChange={setContractor} />
        <div className="check">
          <input id="unpaid-only" type="checkbox" checked={unpaidOnly} onChange={(e) => setUnpaidOnly(e.target.checked)} />
          <label htmlFor="unpaid-only">Unpaid only</label>
        </div>
      </div>
      <Paged operation={InvoicesOperation} variables={{ contractor, unpaidOnly }} pick={(d) => d.invoices} empty="No invoices to show.">
        {(invoices) => (
          <ul className="rows">
            {invoices.map((invoice) => (
              <li key={invoice.id}>
                <Link to={`/invoices/${encodeURIComponent(invoice.id)}`}>Invoice {invoice.number}</Link>
                <span className={`status status-${invoice.status.toLowerCase()}`}>{words(invoice.status)}</span>
                <span className="muted">
                  {invoice.contractor.name} · due {day(invoice.dueOn)}
                </span>
                <span>
                  Balance <strong>{money(invoice.balance)}</strong> of {money(invoice.total)}
                </span>
              </li>
            ))}
          </ul>
        )}
      </Paged>
    </Page>
  );
}

type InvoiceNode = Extract<NonNullable<InvoiceQuery["node"]>, { number: string }>;

export function Invoice() {
  const { id = "" } = useParams();
  const query = useQuery(InvoiceOperation, { id });
  return (
    <Loaded query={query}>
      {(data) => {
        const invoice = data.node as InvoiceNode | null;
        if (!invoice || !("number" in invoice)) return <Page title="Invoice not found"><p>There is no such invoice, or it is not yours to see.</p></Page>;
        return (
          <Page title={`Invoice ${invoice.number}`}>
            <p>
              <Link to="/invoices">← All invoices</Link>
            </p>
            <dl className="facts">
              <dt>Status</dt>
              <dd>{words(invoice.status)}</dd>
              <dt>From</dt>
              <dd>{invoice.contractor.name}</dd>
              <dt>Issued</dt>
              <dd>{day(invoice.issuedOn)}</dd>
              <dt>Due</dt>
              <dd>{day(invoice.dueOn)}</dd>
              {invoice.address ? (
                <>
                  <dt>Address</dt>
                  <dd>{invoice.address}</dd>
                </>
              ) : null}
              {invoice.uprn ? (
                <>
                  <dt>UPRN</dt>
                  <dd>{invoice.uprn}</dd>
                </>
              ) : null}
            </dl>
            {invoice.description ? <p>{invoice.description}</p> : null}
            <h2>Lines</h2>
            <div className="table-scroll">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Description</th>
                    <th scope="col">Qty</th>
                    <th scope="col">Price</th>
                    <th scope="col">Total</th>
                  </tr>
                </thead>
                <tbody>
                  {invoice.lines.map((line, index) => (
                    <tr key={index}>
                      <td>{line.description}</td>
                      <td>{line.quantity}</td>
                      <td>{money(line.unitPrice)}</td>
                      <td>{money(line.total)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <dl className="facts totals">
              <dt>Total</dt>
              <dd>{money(invoice.total)}</dd>
              <dt>Paid</dt>
              <dd>{money(invoice.paid)}</dd>
              <dt>Balance</dt>
              <dd data-testid="balance">
                <strong>{money(invoice.balance)}</strong>
              </dd>
            </dl>
            {invoice.canPay ? <PayInvoice invoice={invoice} onPaid={query.reload} /> : null}
          </Page>
        );
      }}
    </Loaded>
  );
}
