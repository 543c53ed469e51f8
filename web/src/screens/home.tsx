import { Link } from "react-router-dom";
import { useQuery } from "../api";
import { money, moment, words } from "../format";
import { Home as HomeOperation } from "../generated/operations";
import { allows, useSignedIn } from "../session";
import { Empty, Loaded, Page } from "../ui";

export function Home() {
  const session = useSignedIn();
  const withInvoices = allows(session, "INVOICES", true);
  const withRequests = allows(session, "REQUESTS");
  const withJobs = allows(session, "JOBS");
  const home = useQuery(HomeOperation, { withInvoices, withRequests, withJobs });
  return (
    <Page title={`Hello, ${session.viewer.name}`}>
      <Loaded query={home}>
        {(data) => (
          <>
            <h2>Your accounts</h2>
            {data.customers.length === 0 ? <Empty>You are not a contact of any customer yet.</Empty> : null}
            <ul className="cards">
              {data.customers.map((customer) => (
                <li key={customer.id} className="card">
                  <h3>{customer.name}</h3>
                  <p className="muted">
                    with {customer.contractor.name} · {customer.contactKind === "COMPANY" ? "company contact" : "site contact"}
                  </p>
                  {customer.outstanding ? (
                    <p>
                      Balance due: <strong>{money(customer.outstanding)}</strong>{" "}
                      {customer.modules.includes("INVOICES") && customer.contactKind === "COMPANY" ? <Link to="/invoices">See invoices</Link> : null}
                    </p>
                  ) : null}
                  {customer.openRequestCount != null ? (
                    <p>
                      Open requests: <strong>{customer.openRequestCount}</strong> <Link to="/requests">See requests</Link>
                    </p>
                  ) : null}
                </li>
              ))}
            </ul>
            {data.upcomingVisits ? (
              <>
                <h2>Upcoming visits</h2>
                {data.upcomingVisits.length === 0 ? (
                  <Empty>No visits are booked.</Empty>
                ) : (
                  <ul className="rows">
                    {data.upcomingVisits.map((visit) => (
                      <li key={`${visit.job.id}-${visit.startsAt}`}>
                        <Link to={`/jobs/${encodeURIComponent(visit.job.id)}`}>
                          {visit.job.number} · {visit.job.title}
                        </Link>
                        <span className="muted">
                          {moment(visit.startsAt)} · {words(visit.status)}
                        </span>
                      </li>
                    ))}
                  </ul>
                )}
              </>
            ) : null}
          </>
        )}
      </Loaded>
    </Page>
  );
}
